//! The agent's configuration: one TOML file, read once at start.
//!
//! Loading happens in two steps, so that every mistake is reported before the agent does anything:
//!
//! 1. the text is deserialized into a *raw* form (`raw.rs`) that mirrors the file: every key is
//!    optional and every table has `deny_unknown_fields`, so a misspelt key is an error, not a
//!    silently ignored line;
//! 2. the raw form is validated into the typed [`Config`] (`validate.rs`): sizes and durations are
//!    parsed from human units ("2 GiB", "30s"), addresses and networks are parsed, defaults are
//!    filled in, and relative paths are resolved against the directory of the config file.
//!
//! Invariants of a [`Config`] (anything that does not hold is a [`ConfigError`]):
//! - identity strings (`gateway.org/site/id`) and listener names are non-empty and use only
//!   characters that are safe as MQTT topic levels;
//! - there is at least one listener, listener names are unique and no two listeners bind the same
//!   port on overlapping addresses;
//! - every listener has a non-empty allowlist; IPv4-mapped IPv6 entries are stored as IPv4;
//! - every path is non-empty and absolute, or was resolved against the config file's directory;
//!   whether the files exist is *not* checked here (`doctor` does that);
//! - the hub uses TLS unless `insecure_plaintext = true` was set explicitly.
//!
//! Every error names the file, the position (line:column) where known, the key path (for example
//! `listener[1].allow[0]`) and what was expected. The reference of all keys is
//! `docs/configuration.md`; [`Config::example`] is the commented example it shows.

mod error;
mod example;
mod hub_url;
mod raw;
mod validate;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use jiff::tz::TimeZone;
use serde::Deserialize;

pub use error::{ConfigError, Position, Problem};

/// Where the agent looks for its configuration when no path is given.
pub const DEFAULT_PATH: &str = "/etc/hl7edge/hl7edge.toml";

/// The validated configuration of the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Identity of this gateway (`[gateway]`).
    pub gateway: Gateway,
    /// The durable message queue (`[storage]`).
    pub storage: Storage,
    /// Rejected messages kept for a technician (`[quarantine]`).
    pub quarantine: Quarantine,
    /// The MLLP listeners (`[[listener]]`), at least one, in file order.
    pub listeners: Vec<Listener>,
    /// The MQTT connection to the hub (`[hub]`).
    pub hub: Hub,
    /// Periodic heartbeat to the hub (`[telemetry]`).
    pub telemetry: Telemetry,
    /// The silent-feed watch (`[silence]`).
    pub silence: crate::telemetry::rhythm::SilenceConfig,
    /// Local logging (`[log]`).
    pub log: Log,
    /// Enrollment by claim (`[enroll]`), when the box was shipped with a claim credential.
    pub enroll: Option<Enroll>,
}

/// The claim credential a box enrolls with when it has no device certificate yet
/// (`[enroll]`; see `crate::enroll`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enroll {
    /// The claim certificate (PEM), shared by a batch of boxes; its CN is `enroll/{claim}`.
    pub claim_cert: std::path::PathBuf,
    /// The claim certificate's private key (PEM).
    pub claim_key: std::path::PathBuf,
}

/// Identity of the gateway; each part becomes one MQTT topic level.
///
/// Invariant: each string is 1 to 64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The organization operating the gateway, e.g. `acme-health`.
    pub org: String,
    /// The site (clinic, ward) the gateway is installed at, e.g. `clinic-12`.
    pub site: String,
    /// The gateway's own id, unique within the site, e.g. `gw-0001`.
    pub id: String,
}

/// The durable SQLite queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The database file (resolved; may not exist yet).
    pub path: PathBuf,
    /// Cap on database plus WAL size, in bytes; past it new messages are refused with AR.
    pub max_bytes: u64,
    /// How long forwarded rows are kept; zero deletes them when the hub acknowledges (PUBACK).
    pub retain_sent: Duration,
    /// How long a message control id is remembered to recognise a resent message; zero disables.
    pub dedupe_window: Duration,
}

/// The quarantine: rejected messages (answered AE) kept with their raw bytes for a technician,
/// bounded by its own cap and a retention.
///
/// Invariant: `warn_before < retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarantine {
    /// Cap on the bytes of the messages kept; past it a message that would be quarantined is
    /// refused with AR. Not part of `storage.max_bytes`.
    pub max_bytes: u64,
    /// How long an entry keeps its raw message; older ones are erased (audited).
    pub retention: Duration,
    /// How long before an entry expires it is reported (`status`, `doctor`, the heartbeat).
    pub warn_before: Duration,
}

/// One MLLP listener (one local interface, e.g. the lab system).
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Unique name, used in topics and logs; 1 to 64 characters of `a-z`, `0-9`, `-`, `_`.
    pub name: String,
    /// Local address and port to listen on.
    pub bind: SocketAddr,
    /// Source networks allowed to connect; never empty. Use [`Listener::allows`] to check a peer.
    pub allow: Vec<IpNet>,
    /// Largest accepted MLLP frame in bytes, within 1 KiB..=64 MiB.
    pub max_frame_bytes: usize,
    /// Close a connection after this long without data; `None` keeps idle connections open.
    pub idle_timeout: Option<Duration>,
    /// Most simultaneous connections; further connections are refused.
    pub max_connections: NonZeroU16,
    /// Local-code mapping table (resolved path), if any.
    pub mapping: Option<PathBuf>,
    /// Time zone for HL7 timestamps that carry no offset.
    pub time_zone: TimeZone,
    /// How acknowledgements are chosen.
    pub ack_mode: AckMode,
    /// Forward the raw HL7 with each record (off by default: PHI minimization).
    pub include_raw: bool,
    /// Messages the interface's drift profile learns from before new
    /// structural facts (segments, units, versions) are reported as drift.
    pub drift_learning_messages: NonZeroU16,
    /// Whether the silent-feed watch (`[silence]`) covers this listener (`silence`).
    pub silence: bool,
    /// What a message with a code the mapping table does not map gets (`unmapped`).
    pub unmapped: UnmappedPolicy,
    /// MLLP over TLS, if configured.
    pub tls: Option<ListenerTls>,
}

impl Listener {
    /// Whether a peer address may connect to this listener.
    ///
    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.7`, as seen on dual-stack sockets) is checked
    /// against the IPv4 entries, exactly like `10.0.0.7`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = values::canonical_ip(ip);
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// This listener with pushed settings laid over it: `text` has the keys of a
    /// `[[listener]]` table (named `origin` in errors); each key it holds replaces this
    /// listener's, validated as the file's are; the result must not clash with `others` (the
    /// other listeners as they run). Relative paths resolve against `base_dir`. See
    /// `validate/pushed.rs` for which keys a push may change.
    pub fn with_pushed(
        &self,
        text: &str,
        origin: &Path,
        others: &[Listener],
        base_dir: &Path,
    ) -> Result<Listener, ConfigError> {
        validate::pushed_listener(text, origin, self, others, base_dir)
    }

    /// A short SHA-256 (16 hex digits) of the settings a listener push may change, written
    /// out in a fixed form: the same settings give the same hash on every box and every start.
    pub fn settings_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let allow: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
        let tls = self.tls.as_ref().map(|t| {
            format!(
                "{}|{}|{}",
                t.cert.display(),
                t.key.display(),
                t.client_ca
                    .as_deref()
                    .map(Path::display)
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            )
        });
        let canonical = format!(
            "name={}\nbind={}\nallow={}\nmax_frame={}\nidle_timeout_ms={}\nmax_connections={}\ntls={}\n",
            self.name,
            self.bind,
            allow.join(","),
            self.max_frame_bytes,
            self.idle_timeout.map_or(0, |d| d.as_millis()),
            self.max_connections,
            tls.unwrap_or_default(),
        );
        let digest = Sha256::digest(canonical.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// TLS settings of an MLLP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// If set, clients must present a certificate issued by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// How the listener chooses the acknowledgement of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Every message gets an answer: enhanced mode as MSH-15/MSH-16 ask,
    /// and where they ask for none (`NE`), the original-mode AA/AE/AR.
    /// `auto`, this mode's name before it answered `NE` messages, is read
    /// as `always`.
    #[default]
    #[serde(alias = "auto")]
    Always,
    /// MSH-15/MSH-16 to the letter: a message that asks for no
    /// acknowledgement (`NE`) gets none. Only for senders that never read
    /// answers.
    AsRequested,
    /// Always answer in original mode (AA/AE/AR).
    Original,
}

impl AckMode {
    /// The configuration value naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Always => "always",
            AckMode::AsRequested => "as_requested",
            AckMode::Original => "original",
        }
    }
}

/// What a listener does with a message carrying a local code its mapping table does not map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedPolicy {
    /// Store it (AA); the code is counted as unmapped and reported to the hub.
    #[default]
    Accept,
    /// Answer AE (ERR 103, table value not found) and keep it in quarantine, to be replayed
    /// once the table maps the code (`hl7edge quarantine replay`, or a replay push).
    Quarantine,
}

/// The MQTT connection to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// Broker host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Broker port (default 8883).
    pub port: u16,
    /// TLS settings, or plaintext (lab tests only).
    pub transport: HubTransport,
    /// MQTT client id.
    pub client_id: String,
    /// MQTT keep-alive interval, 1 s..=65535 s.
    pub keep_alive: Duration,
    /// Most QoS 1 publishes awaiting PUBACK at once.
    pub inflight: NonZeroU16,
    /// Topic prefix, e.g. `hl7edge/v1` (no leading or trailing `/`, no wildcards).
    pub topic_prefix: String,
    /// Most records per published message.
    pub batch_max_records: NonZeroU16,
    /// Most bytes in one published payload (an envelope of records), within
    /// 16 KiB..=64 MiB; must not exceed what the broker accepts. A record
    /// that cannot fit on its own is refused at ingest (AE) or, if queued,
    /// set aside (`hl7edge parked`).
    pub max_payload: usize,
    /// How long a connection attempt (TCP + TLS + CONNACK) may take.
    pub connect_timeout: Duration,
    /// When a forwarded record leaves the queue: at the broker's PUBACK, or
    /// at the hub's custody receipt.
    pub custody: Custody,
    /// In receipt mode, how long a record the broker acknowledged may wait
    /// for its receipt before it is published again (same record id).
    pub receipt_timeout: Duration,
    /// The organization's public key (Ed25519, PEM) that signed pushes must verify with;
    /// `None`: the gateway takes no pushes (and does not subscribe to them).
    pub push_key: Option<PathBuf>,
}

/// When a forwarded record's custody passes to the hub (`hub.custody`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Custody {
    /// At the broker's PUBACK: the row is deleted then. Right for a hub
    /// without `hl7edge-hub ingest` (nothing would ever send a receipt).
    #[default]
    Puback,
    /// At the hub's custody receipt, after its database commit: a PUBACKed
    /// row is kept (awaiting receipt) and published again under the same
    /// record id when no receipt came within `receipt_timeout`.
    Receipt,
}

impl Custody {
    /// The configuration value naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Custody::Puback => "puback",
            Custody::Receipt => "receipt",
        }
    }
}

/// How the agent talks to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubTransport {
    /// MQTT over mutually authenticated TLS (`mqtts://`).
    Tls(HubTls),
    /// Unencrypted MQTT (`mqtt://`), only with `insecure_plaintext = true`; for lab tests.
    Plaintext,
}

/// TLS material for the hub connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTls {
    /// CA certificate(s) that issued the broker's certificate (PEM).
    pub ca: PathBuf,
    /// This gateway's client certificate chain (PEM).
    pub cert: PathBuf,
    /// This gateway's private key (PEM).
    pub key: PathBuf,
}

/// The periodic heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Telemetry {
    /// Time between heartbeats, 1 s..=1 day.
    pub interval: Duration,
}

/// Local logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Log {
    /// Most verbose level written.
    pub level: LogLevel,
    /// Line format.
    pub format: LogFormat,
}

/// Log verbosity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// Normal operation (no PHI at this level or above).
    #[default]
    Info,
    /// Diagnostics.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    ///
    /// Relative paths inside the file are resolved against the file's directory (made absolute
    /// against the current directory first). Files named in the config are not opened.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = std::fs::read_to_string(&origin).map_err(|source| ConfigError::Read {
            path: origin.clone(),
            source,
        })?;
        Config::from_toml_str(&text, &origin)
    }

    /// Validates configuration text as if it had been read from `origin`.
    ///
    /// `origin` names the file in errors, and relative paths in the text are resolved against
    /// its directory (as given; no file system access).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        validate::parse(text, origin)
    }

    /// A complete, commented example configuration that parses; used by the docs and `provision`.
    pub fn example() -> &'static str {
        example::EXAMPLE
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::Path;

    use super::*;

    fn listener_allowing(allow: &str) -> Listener {
        let text = Config::example().replace(r#"["10.0.0.0/24", "127.0.0.1"]"#, allow);
        let config = Config::from_toml_str(&text, Path::new(DEFAULT_PATH)).unwrap();
        config.listeners.into_iter().next().unwrap()
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn mapped(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V6(Ipv4Addr::new(a, b, c, d).to_ipv6_mapped())
    }

    #[test]
    fn allowlist_matches_networks_and_single_addresses() {
        let lab = listener_allowing(r#"["10.0.0.0/24", "127.0.0.1", "2001:db8::/32"]"#);
        assert!(lab.allows(v4(10, 0, 0, 200)));
        assert!(lab.allows(v4(127, 0, 0, 1)));
        assert!(lab.allows("2001:db8::7".parse().unwrap()));
        assert!(!lab.allows(v4(10, 0, 1, 1)));
        assert!(!lab.allows(v4(127, 0, 0, 2)));
        assert!(!lab.allows(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn ipv4_mapped_peers_follow_the_ipv4_rules() {
        let lab = listener_allowing(r#"["10.0.0.0/24"]"#);
        assert!(lab.allows(mapped(10, 0, 0, 7)));
        assert!(!lab.allows(mapped(192, 0, 2, 7)));
        let any_v6 = listener_allowing(r#"["::/0"]"#);
        assert!(
            !any_v6.allows(mapped(10, 0, 0, 7)),
            "an IPv4 peer needs an IPv4 rule"
        );
        let mapped_rule = listener_allowing(r#"["::ffff:10.0.0.0/120"]"#);
        assert!(mapped_rule.allows(v4(10, 0, 0, 7)));
        assert!(mapped_rule.allows(mapped(10, 0, 0, 7)));
    }

    fn lab_and_others() -> (Listener, Vec<Listener>) {
        let text = format!(
            "{}\n[[listener]]\nname = \"adt\"\nbind = \"0.0.0.0:2600\"\nallow = [\"10.0.0.0/24\"]\n",
            Config::example()
        );
        let config = Config::from_toml_str(&text, Path::new(DEFAULT_PATH)).unwrap();
        let lab = config.listeners[0].clone();
        (lab, config.listeners)
    }

    fn push(text: &str) -> Result<Listener, ConfigError> {
        let (lab, all) = lab_and_others();
        lab.with_pushed(
            text,
            Path::new("pushed listener lab"),
            &all,
            Path::new("/var/lib/hl7edge"),
        )
    }

    #[test]
    fn pushed_keys_replace_the_configured_ones_and_the_rest_stay() {
        let (lab, _) = lab_and_others();
        let moved = push("bind = \"0.0.0.0:2590\"\nidle_timeout = \"30s\"\n").unwrap();
        assert_eq!(moved.bind.port(), 2590);
        assert_eq!(moved.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(moved.allow, lab.allow);
        assert_eq!(moved.max_frame_bytes, lab.max_frame_bytes);
        assert_eq!(moved.mapping, lab.mapping);
        assert_ne!(moved.settings_hash(), lab.settings_hash());
        assert_eq!(
            push("").unwrap(),
            lab,
            "an empty push is the configured listener"
        );
        assert_eq!(push("").unwrap().settings_hash(), lab.settings_hash());
    }

    #[test]
    fn a_pushed_setting_is_checked_as_the_file_is_and_the_error_points_into_the_push() {
        let err = push("bind = \"0.0.0.0:2590\"\nmax_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pushed listener lab:2:") && err.contains("max_connections"),
            "{err}"
        );
        let err = push("bnid = \"0.0.0.0:2590\"\n").unwrap_err().to_string();
        assert!(err.contains("bnid"), "{err}");
        let err = push("bind = \"0.0.0.0:2600\"\n").unwrap_err().to_string();
        assert!(err.contains("2600"), "a port another listener holds: {err}");
        let err = push("ack_mode = \"original\"\n").unwrap_err().to_string();
        assert!(err.contains("ack_mode stays"), "{err}");
        let err = push("name = \"adt\"\n").unwrap_err().to_string();
        assert!(err.contains("pushed for"), "{err}");
    }

    #[test]
    fn log_levels_map_onto_tracing_levels() {
        assert_eq!(tracing::Level::from(LogLevel::Warn), tracing::Level::WARN);
        assert_eq!(tracing::Level::from(LogLevel::Trace), tracing::Level::TRACE);
    }
}
