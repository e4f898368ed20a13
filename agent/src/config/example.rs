//! The commented example configuration shown by the docs and written by `provision`.
//!
//! Invariant: it parses and validates (tested below), and `docs/configuration.md` shows it
//! verbatim (also tested), so the reference cannot drift from the code.

/// Every key, with the default value where there is one.
pub(super) const EXAMPLE: &str = r#"# hl7edge configuration. Reference: docs/configuration.md
# Sizes take units ("512 MiB", "2 GiB"), durations too ("30s", "5m", "7d").
# Relative paths are resolved against the directory of this file.

[gateway]                       # identity; each becomes an MQTT topic level: a-z 0-9 - _ .
org = "acme-health"
site = "clinic-12"
id = "gw-0001"

[storage]
path = "/var/lib/hl7edge/queue.db"
max_bytes = "2 GiB"             # database + WAL cap; past it new messages get an AR NAK
retain_sent = "0s"              # keep forwarded rows this long (0s = delete at PUBACK)
dedupe_window = "7d"            # recognise resent message control ids for this long

[quarantine]                    # rejected messages (AE) kept for a technician
max_bytes = "256 MiB"           # own cap, apart from storage.max_bytes; past it: AR
retention = "30d"               # then the raw message is erased (audited)
warn_before = "7d"              # status, doctor and the heartbeat warn this long before

[[listener]]                    # one per local interface; add more [[listener]] tables
name = "lab"                    # unique; a-z 0-9 - _
bind = "0.0.0.0:2575"
allow = ["10.0.0.0/24", "127.0.0.1"]  # required; allow any: ["0.0.0.0/0", "::/0"]
max_frame = "1 MiB"             # largest HL7 message accepted (1 KiB to 64 MiB)
idle_timeout = "5m"             # close idle connections (0s = never)
max_connections = 32
mapping = "/etc/hl7edge/maps/lab.csv"  # optional local code -> LOINC/UCUM table
time_zone = "Europe/Berlin"     # optional; default: the system's time zone
ack_mode = "always"             # always (answer every message; enhanced where MSH-15/16 ask)
                                # | as_requested (MSH-15/16 to the letter: NE gets no answer)
                                # | original (always one AA/AE/AR)
include_raw = false             # forward the raw HL7 too (off: PHI minimization)
drift_learning_messages = 50    # messages learned before changes count as drift
silence = true                  # watch for a silent feed ([silence]); false for a sporadic one
unmapped = "accept"             # accept | quarantine (AE 103 until the table maps the code)

[listener.tls]                  # optional: MLLP over TLS for this listener
cert = "/etc/hl7edge/mllp.pem"
key = "/etc/hl7edge/mllp.key"
client_ca = "/etc/hl7edge/clients-ca.pem"  # optional: require client certificates

[hub]
url = "mqtts://hub.example.org:8883"
ca = "/etc/hl7edge/hub-ca.pem"
cert = "/etc/hl7edge/device.pem"
key = "/etc/hl7edge/device.key"
client_id = "acme-health-clinic-12-gw-0001"  # default: "{org}-{site}-{id}"
keep_alive = "30s"
inflight = 64                   # QoS 1 publishes awaiting PUBACK (1 to 65535)
topic_prefix = "hl7edge/v1"
batch_max_records = 64          # records per publish (1 = one record per message)
max_payload = "128 KB"          # bytes per publish; never above the broker's limit
connect_timeout = "10s"
custody = "puback"              # puback (delete at the broker's PUBACK) | receipt (at the hub's receipt)
receipt_timeout = "5m"          # receipt mode: publish again when no receipt came within this

[telemetry]
interval = "60s"                # heartbeat period

[silence]                       # silent-feed alerts: each listener learns its hourly rhythm
enabled = true
factor = 6                      # silent once the quiet time holds this many usual messages
floor = "30m"                   # and never before this long without a message
learn_days = 3                  # history needed before a listener is judged
window_days = 14                # days of hourly counts the norm averages
hour = "1h"                     # tests only: a shorter "hour" makes a day pass in seconds

[log]
level = "info"                  # error | warn | info | debug | trace
format = "text"                 # text | json
"#;

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{AckMode, Config, HubTransport, LogFormat};

    #[test]
    fn the_example_parses_with_the_values_it_shows() {
        let config =
            Config::from_toml_str(super::EXAMPLE, Path::new("/etc/hl7edge/hl7edge.toml")).unwrap();
        assert_eq!(config.gateway.id, "gw-0001");
        assert_eq!(config.storage.max_bytes, 2 << 30);
        assert_eq!(
            config.storage.dedupe_window,
            Duration::from_secs(7 * 86_400)
        );
        let lab = &config.listeners[..];
        assert_eq!(lab.len(), 1);
        assert_eq!(lab[0].bind, "0.0.0.0:2575".parse::<SocketAddr>().unwrap());
        assert_eq!(lab[0].max_frame_bytes, 1 << 20);
        assert_eq!(lab[0].ack_mode, AckMode::Always);
        assert!(
            lab[0]
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_ca.is_some())
        );
        assert!(matches!(config.hub.transport, HubTransport::Tls(_)));
        assert_eq!(config.hub.port, 8883);
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn the_reference_doc_shows_the_example_verbatim() {
        let doc = include_str!("../../../docs/configuration.md");
        assert!(
            doc.contains(super::EXAMPLE),
            "docs/configuration.md must contain Config::example()"
        );
    }
}
