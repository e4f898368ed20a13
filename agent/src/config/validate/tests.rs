//! Whole-file tests: each mistake is reported at the right key, defaults and path resolution.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::{Config, ConfigError, HubTransport, LogLevel, Problem};

const ORIGIN: &str = "/etc/hl7edge/hl7edge.toml";

const MINIMAL: &str = r#"
[gateway]
org = "acme-health"
site = "clinic-12"
id = "gw-0001"

[[listener]]
name = "lab"
bind = "0.0.0.0:2575"
allow = ["10.0.0.0/24"]

[hub]
url = "mqtts://hub.example.org"
ca = "hub-ca.pem"
cert = "device.pem"
key = "device.key"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new(ORIGIN))
}

/// The example with the first `from` replaced by `to`; panics if `from` is not there, so a
/// case can never pass by not changing anything.
fn example_with(from: &str, to: &str) -> String {
    let example = Config::example();
    assert!(example.contains(from), "the example has no {from:?}");
    example.replacen(from, to, 1)
}

fn error_of(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(err) => err,
    }
}

#[test]
fn every_invalid_value_is_reported_at_its_key_with_file_and_position() {
    let cases = [
        (
            "org = \"acme-health\"",
            "org = \"Acme/Health\"",
            "gateway.org",
        ),
        ("org = \"acme-health\"", "", "gateway.org"),
        (
            "site = \"clinic-12\"",
            "site = \"clinic+12\"",
            "gateway.site",
        ),
        ("id = \"gw-0001\"", "id = \"\"", "gateway.id"),
        (
            "path = \"/var/lib/hl7edge/queue.db\"",
            "path = \"\"",
            "storage.path",
        ),
        (
            "max_bytes = \"2 GiB\"",
            "max_bytes = \"512 KiB\"",
            "storage.max_bytes",
        ),
        (
            "max_bytes = \"2 GiB\"",
            "max_bytes = \"2 gigs\"",
            "storage.max_bytes",
        ),
        (
            "retain_sent = \"0s\"",
            "retain_sent = 0",
            "storage.retain_sent",
        ),
        (
            "dedupe_window = \"7d\"",
            "dedupe_window = \"a week\"",
            "storage.dedupe_window",
        ),
        ("name = \"lab\"", "name = \"Lab\"", "listener[0].name"),
        (
            "bind = \"0.0.0.0:2575\"",
            "bind = \"0.0.0.0\"",
            "listener[0].bind",
        ),
        ("\"127.0.0.1\"]", "\"10.0.0.0/33\"]", "listener[0].allow[1]"),
        (
            "allow = [\"10.0.0.0/24\", \"127.0.0.1\"]",
            "allow = []",
            "listener[0].allow",
        ),
        (
            "allow = [\"10.0.0.0/24\", \"127.0.0.1\"]",
            "",
            "listener[0].allow",
        ),
        (
            "max_frame = \"1 MiB\"",
            "max_frame = \"128 MiB\"",
            "listener[0].max_frame",
        ),
        (
            "idle_timeout = \"5m\"",
            "idle_timeout = \"5 parsecs\"",
            "listener[0].idle_timeout",
        ),
        (
            "max_connections = 32",
            "max_connections = 0",
            "listener[0].max_connections",
        ),
        (
            "mapping = \"/etc/hl7edge/maps/lab.csv\"",
            "mapping = \"\"",
            "listener[0].mapping",
        ),
        (
            "time_zone = \"Europe/Berlin\"",
            "time_zone = \"Europe/Springfield\"",
            "listener[0].time_zone",
        ),
        (
            "ack_mode = \"always\"",
            "ack_mode = \"enhanced\"",
            "listener[0].ack_mode",
        ),
        (
            "include_raw = false",
            "include_raw = \"no\"",
            "listener[0].include_raw",
        ),
        (
            "drift_learning_messages = 50",
            "drift_learning_messages = 0",
            "listener[0].drift_learning_messages",
        ),
        (
            "cert = \"/etc/hl7edge/mllp.pem\"",
            "",
            "listener[0].tls.cert",
        ),
        (
            "client_ca = \"/etc/hl7edge/clients-ca.pem\"",
            "client_ca = \"~/ca.pem\"",
            "listener[0].tls.client_ca",
        ),
        (
            "url = \"mqtts://hub.example.org:8883\"",
            "url = \"mqtt://hub.example.org\"",
            "hub.url",
        ),
        (
            "url = \"mqtts://hub.example.org:8883\"",
            "url = \"https://hub.example.org\"",
            "hub.url",
        ),
        ("ca = \"/etc/hl7edge/hub-ca.pem\"", "", "hub.ca"),
        ("key = \"/etc/hl7edge/device.key\"", "key = \"\"", "hub.key"),
        (
            "client_id = \"acme-health-clinic-12-gw-0001\"",
            "client_id = \"acme health\"",
            "hub.client_id",
        ),
        (
            "keep_alive = \"30s\"",
            "keep_alive = \"500ms\"",
            "hub.keep_alive",
        ),
        ("inflight = 64", "inflight = 0", "hub.inflight"),
        ("inflight = 64", "inflight = 65536", "hub.inflight"),
        (
            "topic_prefix = \"hl7edge/v1\"",
            "topic_prefix = \"hl7edge/#\"",
            "hub.topic_prefix",
        ),
        (
            "batch_max_records = 64",
            "batch_max_records = 0",
            "hub.batch_max_records",
        ),
        (
            "max_payload = \"128 KB\"",
            "max_payload = \"1 KiB\"",
            "hub.max_payload",
        ),
        (
            "max_payload = \"128 KB\"",
            "max_payload = \"65 MiB\"",
            "hub.max_payload",
        ),
        (
            "connect_timeout = \"10s\"",
            "connect_timeout = \"0s\"",
            "hub.connect_timeout",
        ),
        (
            "interval = \"60s\"",
            "interval = \"0s\"",
            "telemetry.interval",
        ),
        ("factor = 6", "factor = 1", "silence.factor"),
        ("floor = \"30m\"", "floor = \"30\"", "silence.floor"),
        ("learn_days = 3", "learn_days = 0", "silence.learn_days"),
        (
            "window_days = 14",
            "window_days = 61",
            "silence.window_days",
        ),
        ("hour = \"1h\"", "hour = \"2h\"", "silence.hour"),
        ("level = \"info\"", "level = \"verbose\"", "log.level"),
        ("format = \"text\"", "format = \"xml\"", "log.format"),
    ];
    for (from, to, key) in cases {
        let err = error_of(&example_with(from, to));
        assert_eq!(err.key(), Some(key), "{from:?} -> {to:?}: {err}");
        assert!(
            err.position().is_some(),
            "{from:?} -> {to:?} has no position: {err}"
        );
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("{ORIGIN}:")), "{shown}");
        assert!(shown.contains(&format!(": {key}: ")), "{shown}");
    }
}

#[test]
fn the_enroll_organization_is_refused_at_its_line_as_reserved_for_enrollment_topics() {
    let text = MINIMAL.replace("org = \"acme-health\"", "org = \"enroll\"");
    let err = error_of(&text);
    assert_eq!(err.key(), Some("gateway.org"));
    assert_eq!(
        err.problem(),
        Some(&Problem::Reserved {
            value: "enroll".into()
        })
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "{ORIGIN}:3:7: gateway.org: \"enroll\" is reserved: "
        )),
        "{shown}"
    );
    assert!(shown.contains("enrollment topics"), "{shown}");
    // Only the exact level is reserved: a name that merely starts with it is a name.
    let near = MINIMAL.replace("org = \"acme-health\"", "org = \"enroll-health\"");
    assert_eq!(parse(&near).unwrap().gateway.org, "enroll-health");
}

#[test]
fn a_bad_network_in_a_second_listener_reads_like_the_reference() {
    let second =
        "\n[[listener]]\nname = \"ward\"\nbind = \"0.0.0.0:2576\"\nallow = [\"10.0.0.0/33\"]\n";
    let err = error_of(&format!("{}{second}", Config::example()));
    let line = Config::example().lines().count() + 5;
    assert_eq!(
        err.to_string(),
        format!(
            "{ORIGIN}:{line}:10: listener[1].allow[0]: \"10.0.0.0/33\" is not an IP address or network \
             (expected e.g. \"10.0.0.0/24\" or \"192.0.2.7\")"
        )
    );
}

#[test]
fn misspelt_keys_are_rejected_with_the_list_of_valid_ones() {
    let cases = [
        ("[log]", "[logging]", "logging"),
        ("url = ", "urll = ", "hub.urll"),
        ("client_ca = ", "clientca = ", "listener[0].tls.clientca"),
        (
            "max_frame = ",
            "max_frame_size = ",
            "listener[0].max_frame_size",
        ),
    ];
    for (from, to, key) in cases {
        let err = error_of(&example_with(from, to));
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(err.to_string().contains("expected one of"), "{err}");
    }
}

#[test]
fn a_missing_required_key_says_which_and_gives_an_example() {
    let err = error_of(&MINIMAL.replace("site = \"clinic-12\"\n", ""));
    assert!(
        err.to_string()
            .ends_with("gateway.site: required key is missing (add e.g. site = \"clinic-12\")"),
        "{err}"
    );
    assert_eq!(
        err.position().map(|p| p.line),
        Some(2),
        "points at the [gateway] table"
    );
}

#[test]
fn a_file_without_listeners_is_rejected() {
    let text = MINIMAL.replace(
        "[[listener]]\nname = \"lab\"\nbind = \"0.0.0.0:2575\"\nallow = [\"10.0.0.0/24\"]\n",
        "",
    );
    let err = error_of(&text);
    assert_eq!(err.key(), Some("listener"));
    assert!(
        matches!(err.problem(), Some(Problem::Missing { .. })),
        "{err}"
    );
}

#[test]
fn a_listener_written_with_single_brackets_gets_a_hint() {
    let err = error_of(&MINIMAL.replace("[[listener]]", "[listener]"));
    assert!(
        err.to_string()
            .contains("[[listener]], with double brackets"),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let err = error_of("[gateway]\norg = acme\n");
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{ORIGIN}:2:7: invalid TOML:")),
        "{err}"
    );
}

#[test]
fn duplicate_listener_names_and_binds_are_rejected() {
    let second = |name: &str, bind: &str| {
        format!(
            "{MINIMAL}\n[[listener]]\nname = \"{name}\"\nbind = \"{bind}\"\nallow = [\"10.0.0.9\"]\n"
        )
    };
    let err = error_of(&second("lab", "0.0.0.0:2576"));
    assert_eq!(err.key(), Some("listener[1].name"));
    assert!(
        err.to_string().contains("already used by listener[0]"),
        "{err}"
    );
    let err = error_of(&second("ward", "10.0.0.1:2575"));
    assert_eq!(err.key(), Some("listener[1].bind"));
    assert!(parse(&second("ward", "0.0.0.0:2576")).is_ok());
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.storage.path, Path::new("/var/lib/hl7edge/queue.db"));
    assert_eq!(config.storage.max_bytes, 2 << 30);
    assert_eq!(config.storage.retain_sent, Duration::ZERO);
    assert_eq!(
        config.storage.dedupe_window,
        Duration::from_secs(7 * 86_400)
    );
    let lab = config.listeners.first().unwrap();
    assert_eq!(lab.max_frame_bytes, 1 << 20);
    assert_eq!(lab.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(lab.max_connections.get(), 32);
    assert_eq!(lab.drift_learning_messages.get(), 50);
    assert!(lab.silence, "listeners are watched for silence unless told");
    assert!(!lab.include_raw && lab.tls.is_none() && lab.mapping.is_none());
    assert_eq!(config.hub.client_id, "acme-health-clinic-12-gw-0001");
    assert_eq!(
        (config.hub.host.as_str(), config.hub.port),
        ("hub.example.org", 8883)
    );
    assert_eq!(config.hub.keep_alive, Duration::from_secs(30));
    assert_eq!(config.hub.inflight.get(), 64);
    assert_eq!(config.hub.topic_prefix, "hl7edge/v1");
    assert_eq!(config.hub.batch_max_records.get(), 64);
    assert_eq!(config.hub.max_payload, 128_000);
    assert_eq!(config.hub.connect_timeout, Duration::from_secs(10));
    assert_eq!(config.telemetry.interval, Duration::from_secs(60));
    assert_eq!(
        config.silence,
        crate::telemetry::rhythm::SilenceConfig::default()
    );
    assert_eq!(config.log.level, LogLevel::Info);
    assert_eq!(config.quarantine.max_bytes, 256 << 20);
    assert_eq!(
        config.quarantine.retention,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        config.quarantine.warn_before,
        Duration::from_secs(7 * 86_400)
    );
}

#[test]
fn the_quarantine_warning_comes_before_its_retention_ends() {
    let short = parse(&format!("{MINIMAL}\n[quarantine]\nretention = \"4d\"\n")).unwrap();
    assert_eq!(
        short.quarantine.warn_before,
        Duration::from_secs(2 * 86_400),
        "the default lead is half of a retention shorter than two weeks"
    );
    let err = error_of(&format!(
        "{MINIMAL}\n[quarantine]\nretention = \"2d\"\nwarn_before = \"2d\"\n"
    ));
    assert_eq!(err.key(), Some("quarantine.warn_before"));
    let text = err.to_string();
    assert!(
        text.contains("2d must be shorter than quarantine.retention (2d)"),
        "{text}"
    );
    let err = error_of(&format!("{MINIMAL}\n[quarantine]\nretention = \"10m\"\n"));
    assert_eq!(err.key(), Some("quarantine.retention"));
}

#[test]
fn zero_idle_timeout_means_never() {
    let config = parse(&MINIMAL.replace("allow = [", "idle_timeout = \"0s\"\nallow = [")).unwrap();
    assert_eq!(config.listeners.first().and_then(|l| l.idle_timeout), None);
}

#[test]
fn relative_paths_resolve_against_the_config_files_directory() {
    let text = MINIMAL.replace("[hub]", "[storage]\npath = \"state/queue.db\"\n\n[hub]");
    let config = parse(&text).unwrap();
    assert_eq!(
        config.storage.path,
        Path::new("/etc/hl7edge/state/queue.db")
    );
    let HubTransport::Tls(tls) = &config.hub.transport else {
        panic!("expected TLS")
    };
    assert_eq!(tls.ca, Path::new("/etc/hl7edge/hub-ca.pem"));
    let bare = Config::from_toml_str(MINIMAL, Path::new("hl7edge.toml")).unwrap();
    let HubTransport::Tls(tls) = &bare.hub.transport else {
        panic!("expected TLS")
    };
    assert_eq!(tls.key, Path::new("device.key"));
}

#[test]
fn plaintext_mqtt_needs_the_explicit_opt_in_and_no_tls_keys() {
    let plain = MINIMAL.replace("mqtts://hub.example.org", "mqtt://127.0.0.1");
    assert!(matches!(
        error_of(&plain).problem(),
        Some(Problem::PlaintextRefused { .. })
    ));
    let opted_in = plain.replace("[hub]\n", "[hub]\ninsecure_plaintext = true\n");
    assert_eq!(
        error_of(&opted_in).key(),
        Some("hub.ca"),
        "TLS files with plaintext are refused"
    );
    let lab = opted_in.replace(
        "ca = \"hub-ca.pem\"\ncert = \"device.pem\"\nkey = \"device.key\"\n",
        "",
    );
    let config = parse(&lab).unwrap();
    assert_eq!(config.hub.transport, HubTransport::Plaintext);
    assert_eq!(config.hub.port, 1883);
}

#[test]
fn load_reads_the_file_and_resolves_paths_next_to_it() {
    let dir = std::env::temp_dir().join(format!("hl7edge-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hl7edge.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    let loaded = Config::load(&file);
    let missing = Config::load(&dir.join("absent.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
    let config = loaded.unwrap();
    let HubTransport::Tls(tls) = &config.hub.transport else {
        panic!("expected TLS")
    };
    assert_eq!(tls.cert, dir.join("device.pem"));
    assert_eq!(
        config.listeners.first().map(|l| l.bind),
        "0.0.0.0:2575".parse::<SocketAddr>().ok()
    );
    match missing {
        Err(ConfigError::Read { path, .. }) => {
            assert_eq!(path, dir.join("absent.toml"))
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn an_enroll_table_names_both_claim_files_next_to_the_configuration() {
    let text =
        format!("{MINIMAL}\n[enroll]\nclaim_cert = \"claim.pem\"\nclaim_key = \"claim.key\"\n");
    let enroll = parse(&text).unwrap().enroll.unwrap();
    assert_eq!(enroll.claim_cert, Path::new("/etc/hl7edge/claim.pem"));
    assert_eq!(enroll.claim_key, Path::new("/etc/hl7edge/claim.key"));
    assert_eq!(parse(MINIMAL).unwrap().enroll, None);
}

#[test]
fn an_enroll_table_without_a_key_or_with_a_plaintext_hub_is_refused_at_its_key() {
    let missing = format!("{MINIMAL}\n[enroll]\nclaim_cert = \"claim.pem\"\n");
    let err = error_of(&missing);
    assert_eq!(err.key(), Some("enroll.claim_key"), "{err}");
    assert!(err.to_string().contains(ORIGIN), "{err}");
    let unknown =
        format!("{MINIMAL}\n[enroll]\nclaim_cert = \"c\"\nclaim_key = \"k\"\ntoken = \"x\"\n");
    assert!(error_of(&unknown).to_string().contains("token"));
    let plain = MINIMAL
        .replace("mqtts://hub.example.org", "mqtt://127.0.0.1")
        .replace("[hub]\n", "[hub]\ninsecure_plaintext = true\n")
        .replace(
            "ca = \"hub-ca.pem\"\ncert = \"device.pem\"\nkey = \"device.key\"\n",
            "",
        );
    let plain = format!("{plain}\n[enroll]\nclaim_cert = \"c\"\nclaim_key = \"k\"\n");
    assert_eq!(error_of(&plain).key(), Some("enroll.claim_cert"));
}
