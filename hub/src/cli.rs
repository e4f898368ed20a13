//! Command-line arguments: raw flags (clap) and their checks into the typed
//! settings the commands use.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use hl7edge_protocol::topic::DEFAULT_PREFIX;

use crate::error::CommandError;
use crate::fleet::FleetConfig;
use crate::mqtt::{Broker, BrokerTransport, BrokerUrl, SettingsError};

/// The hub side of hl7edge: watch the gateway fleet, read the records
/// they forward, export metrics.
#[derive(Debug, Parser)]
#[command(name = "hl7edge-hub", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every gateway: online, late or offline, backlog, unmapped
    /// codes, alerts. Redraws once a second; `--once` prints the table once,
    /// `--json` one snapshot of everything, and exit.
    Fleet(FleetArgs),
    /// Print the records the gateways forward as NDJSON, one line per
    /// record, dropping duplicates by record id.
    Tail(TailArgs),
    /// Serve the fleet as Prometheus metrics on `GET /metrics`.
    Serve(ServeArgs),
    /// Store every gateway's records and heartbeats in PostgreSQL, exactly
    /// once by record id, and send each gateway a custody receipt for what
    /// was committed. Run several with the same --share group to scale out.
    #[command(after_long_help = INGEST_HELP)]
    Ingest(IngestArgs),
    /// Send a signed change to one gateway, a site or the whole organization (retained, so a
    /// gateway that is offline gets it when it returns).
    #[command(subcommand)]
    Push(PushCommand),
    /// Answer the enrollment requests of boxes shipped with a claim credential: check each
    /// against the allowlist, sign its request with the device CA, answer on its own topic.
    Enroll(crate::enroll::EnrollArgs),
}

/// `hl7edge-hub push ...`.
#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// A mapping table for one listener: the gateways verify the signature, refuse an older
    /// sequence, check the table as `doctor` would, and code the next message with it.
    Mapping(PushMappingArgs),
    /// A listener's settings (a TOML file with keys of the agent's `[[listener]]`: bind,
    /// allow, max_frame, idle_timeout, max_connections, tls), or the listener switched off
    /// (--disable) or on (--enable). The gateways bind the new socket before closing the old
    /// one and roll back when it cannot be bound.
    Listener(PushListenerArgs),
}

/// `hl7edge-hub push listener`.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["file", "disable", "enable"])))]
pub struct PushListenerArgs {
    /// Broker connection (a certificate the broker ACL lets write push topics).
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The organization's Ed25519 private key (PKCS#8 PEM, e.g. from
    /// `openssl genpkey -algorithm ed25519`).
    #[arg(long = "signing-key", value_name = "FILE")]
    pub signing_key: PathBuf,
    /// Who gets it: org, org/site or org/site/gateway. A site or organization push goes to
    /// every gateway of it whose retained status the broker holds.
    #[arg(long, value_name = "SCOPE")]
    pub to: String,
    /// The listener (`[[listener]] name`).
    #[arg(long, value_name = "NAME")]
    pub listener: String,
    /// The push's sequence (must be higher than the one the gateways run for this listener's
    /// settings, or its switch; default: now in Unix ms).
    #[arg(long = "sequence", value_name = "N")]
    pub sequence: Option<u64>,
    /// How long to collect the gateways of a site or organization, and to wait for the broker.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
    /// Switch the listener off: it closes its port (new connections are refused, senders queue
    /// on their side); open connections finish the message in hand and close.
    #[arg(long)]
    pub disable: bool,
    /// Switch the listener on again.
    #[arg(long)]
    pub enable: bool,
    /// The listener's settings (TOML: the keys it holds replace the configured ones).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `hl7edge-hub push mapping`.
#[derive(Debug, Clone, Args)]
pub struct PushMappingArgs {
    /// Broker connection (a certificate the broker ACL lets write push topics).
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The organization's Ed25519 private key (PKCS#8 PEM, e.g. from
    /// `openssl genpkey -algorithm ed25519`).
    #[arg(long = "signing-key", value_name = "FILE")]
    pub signing_key: PathBuf,
    /// Who gets it: org, org/site or org/site/gateway. A site or organization push goes to
    /// every gateway of it whose retained status the broker holds.
    #[arg(long, value_name = "SCOPE")]
    pub to: String,
    /// The listener whose table this is.
    #[arg(long, value_name = "NAME")]
    pub listener: String,
    /// The push's sequence (must be higher than the one the gateways run; default: now in
    /// Unix ms).
    #[arg(long = "sequence", value_name = "N")]
    pub sequence: Option<u64>,
    /// How long to collect the gateways of a site or organization, and to wait for the broker.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
    /// The mapping file (CSV, as `[[listener]] mapping` names it).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// The end of `hl7edge-hub ingest --help`.
const INGEST_HELP: &str = "\
What it does:
  Subscribes (persistent session, --client-id) to {prefix}/+/+/+/records/# and
  {prefix}/+/+/+/telemetry, optionally as a member of --share GROUP. Each batch
  is committed to PostgreSQL in one transaction; only then are its MQTT
  messages acknowledged and a receipt published to each gateway on
  {prefix}/{org}/{site}/{gateway}/receipts (QoS 1). The schema is created and
  migrated at start (table schema_migrations).

  Payloads that do not decode, or name another gateway than their topic, are
  kept in the dead_letters table with the reason. While PostgreSQL is down the
  batch waits and is retried with backoff; nothing is acknowledged meanwhile.

Example:
  hl7edge-hub ingest --database postgres://hl7edge:SECRET@localhost/hl7edge \\
      --url mqtts://broker.example.org:8883 --ca ca.pem --cert ingest.pem --key ingest.key \\
      --client-id hl7edge-ingest-1 --share ingest --metrics 127.0.0.1:9899

The broker must let this client keep enough unacknowledged messages in flight
for a batch (mosquitto: max_inflight_messages 1000) and queue enough for its
session while it is away (max_queued_messages).";

/// How to reach the broker (every command).
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// The broker: mqtts://host:port (mutual TLS), or mqtt://host:port with
    /// --insecure-plaintext.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate (PEM) that signed the broker's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Allow a plaintext mqtt:// broker (lab use only).
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// Topic prefix the gateways publish under.
    #[arg(long, default_value = DEFAULT_PREFIX, value_name = "PREFIX")]
    pub prefix: String,
    /// MQTT keep-alive.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub keep_alive: Duration,
    /// Largest MQTT packet read from the broker (bytes, or e.g. 17MiB). The
    /// default admits any agent's payload; a larger packet cannot be read
    /// (set the broker's largest packet to at most this).
    #[arg(long, default_value = "17MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_packet: usize,
}

/// A size in bytes: a number, or a number with a unit (`17MiB`, `512 KiB`).
fn parse_size(text: &str) -> Result<usize, String> {
    let bytes: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a size (e.g. 17MiB or 1048576): {e}"))?;
    let bytes = usize::try_from(bytes.as_u64()).map_err(|_| format!("{text:?} is too large"))?;
    if bytes < 1024 {
        return Err(format!("{text:?} is too small: at least 1 KiB"));
    }
    Ok(bytes)
}

/// When a fact becomes an alert (`fleet` and `serve`).
#[derive(Debug, Clone, Args)]
pub struct ThresholdArgs {
    /// Heartbeat interval assumed for gateways that have not declared one.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub heartbeat_interval: Duration,
    /// Alert when the oldest unsent record on a gateway is older than this.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub backlog_alert: Duration,
    /// Alert when the oldest record a gateway in receipt mode holds for the hub's custody
    /// receipt has waited longer than this since its PUBACK.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub receipt_alert: Duration,
    /// Alert when a client certificate expires within this many days.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub cert_warn_days: i64,
    /// A listener is failing while it quarantined messages within this window (control-id
    /// reuse within it is an alert too).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub error_window: Duration,
    /// Alert when a buffer is estimated to be full within this many hours.
    #[arg(long, default_value_t = 24.0, value_name = "HOURS")]
    pub full_warn_hours: f64,
    /// Most gateways tracked; status and heartbeats of further gateways are counted and
    /// logged, not tracked (bounds memory and metric series).
    #[arg(long, default_value_t = crate::fleet::DEFAULT_MAX_GATEWAYS, value_name = "N")]
    pub max_gateways: usize,
    /// Most interfaces tracked per gateway; a heartbeat's further interfaces are counted and
    /// logged, not kept.
    #[arg(long, default_value_t = crate::fleet::DEFAULT_MAX_SOURCES, value_name = "N")]
    pub max_sources: usize,
}

/// `hl7edge-hub fleet`.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Broker connection.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Alert thresholds.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// MQTT client id (default: a fresh one per run).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Print one JSON snapshot and exit.
    #[arg(long)]
    pub json: bool,
    /// Print the table once and exit (for scripts and a quick look).
    #[arg(long, conflicts_with = "json")]
    pub once: bool,
    /// With --json or --once: how long to collect retained status and
    /// heartbeats after connecting.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// `hl7edge-hub tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Broker connection.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// MQTT client id; the broker keeps this session (and queues records
    /// for it) between runs, so keep it stable and distinct per process.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// Shared subscription group: processes with the same group (and the
    /// same --types) split the records between them.
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,
    /// Only these message types, comma-separated (e.g. ORU_R01,ADT_A01).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub types: Vec<String>,
    /// How many recent record ids to remember for dropping duplicates.
    #[arg(long, default_value = "100000", value_name = "N")]
    pub dedupe_capacity: NonZeroUsize,
    /// Include the raw HL7 when a gateway forwards it (contains PHI).
    #[arg(long, conflicts_with = "fhir")]
    pub raw: bool,
    /// Print each record as a FHIR R4 transaction bundle (one per line)
    /// instead: conditional creates and updates keyed on business
    /// identifiers, for loading into a FHIR server.
    #[arg(long)]
    pub fhir: bool,
    /// Serve this tail's counters (records, duplicates, undecodable
    /// payloads) as Prometheus metrics on `GET /metrics` at this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Stop after printing N records (duplicates not counted). `--count 0` subscribes, so the
    /// broker keeps this client id's session and queues records for it, and stops at once.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// `hl7edge-hub ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Broker connection.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// PostgreSQL connection string: postgres://USER:PASSWORD@HOST:PORT/DATABASE
    /// or key=value form ("host=/var/run/postgresql dbname=hl7edge"). Also read
    /// from HL7EDGE_HUB_DATABASE, which keeps a password out of the process list.
    #[arg(
        long,
        env = "HL7EDGE_HUB_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: String,
    /// MQTT client id; the broker keeps this session (and queues records for
    /// it) between runs, so keep it stable and distinct per process.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// Shared subscription group: ingest processes with the same group split
    /// the records and heartbeats between them.
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Most records per database commit.
    #[arg(long, default_value = "2000", value_name = "N")]
    pub batch_records: NonZeroUsize,
    /// Most payload bytes per database commit.
    #[arg(long, default_value = "16777216", value_name = "BYTES")]
    pub batch_bytes: usize,
    /// How long the first message of a batch may wait for more before the
    /// batch is committed (while a commit runs, the next batch fills anyway).
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub linger: Duration,
    /// Retire this ingest for good: unsubscribe (no new messages come to its
    /// session), commit what the session still holds, then end the session
    /// and exit. Without it a stopped ingest's session stays in the share
    /// group and keeps receiving its share, waiting for it to come back.
    #[arg(long)]
    pub retire: bool,
    /// Also write every committed record as a FHIR R4 transaction bundle, one NDJSON line each:
    /// into DIR, one complete file per committed batch (`bundles-{ms}-{n}.ndjson`), or to
    /// standard output with `-` (for a FHIR server's loader or a stream). Written after the
    /// commit and before the acknowledgement, so at least once; the bundles' conditional
    /// requests make a record written twice load once.
    #[arg(long, value_name = "DIR|-")]
    pub fhir_out: Option<std::path::PathBuf>,
}

/// `hl7edge-hub serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Broker connection.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Alert thresholds.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// MQTT client id (default: a fresh one per run).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Address for the Prometheus endpoint.
    #[arg(long, default_value = "127.0.0.1:9898", value_name = "ADDR")]
    pub metrics: SocketAddr,
}

impl BrokerArgs {
    /// The validated broker settings.
    pub fn broker(&self, client_id: String) -> Result<Broker, CommandError> {
        let url = crate::mqtt::url::parse(&self.url).map_err(SettingsError::from)?;
        let transport = match (url.tls, self.insecure_plaintext) {
            (true, true) => {
                return Err(SettingsError::PlaintextFlagWithTls {
                    url: url.to_string(),
                }
                .into());
            }
            (false, false) => {
                return Err(SettingsError::PlaintextNotAllowed {
                    url: url.to_string(),
                }
                .into());
            }
            (false, true) => BrokerTransport::Plaintext,
            (true, false) => self.tls_files(&url)?,
        };
        check_prefix(&self.prefix)?;
        check_client_id(&client_id)?;
        Ok(Broker {
            url,
            transport,
            client_id,
            keep_alive: self.keep_alive.max(Duration::from_secs(5)),
            max_packet: self.max_packet,
        })
    }

    fn tls_files(&self, url: &BrokerUrl) -> Result<BrokerTransport, SettingsError> {
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Ok(BrokerTransport::Tls {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => {
                let missing: Vec<&str> = [
                    (self.ca.is_none(), "--ca"),
                    (self.cert.is_none(), "--cert"),
                    (self.key.is_none(), "--key"),
                ]
                .into_iter()
                .filter_map(|(missing, flag)| missing.then_some(flag))
                .collect();
                Err(SettingsError::MissingTlsFiles {
                    url: url.to_string(),
                    missing: missing.join(" and "),
                })
            }
        }
    }
}

impl ThresholdArgs {
    /// The fleet thresholds for topics under `prefix`.
    pub fn config(&self, prefix: &str) -> FleetConfig {
        FleetConfig {
            prefix: prefix.to_owned(),
            default_interval: self.heartbeat_interval.max(Duration::from_secs(1)),
            backlog_alert: self.backlog_alert,
            receipt_alert: self.receipt_alert,
            cert_warn_days: self.cert_warn_days,
            error_window: self.error_window,
            full_warn_hours: self.full_warn_hours,
            max_gateways: self.max_gateways,
            max_sources: self.max_sources,
        }
    }
}

/// A client id for a command run without `--client-id`: unique per process.
pub fn fresh_client_id(command: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("hl7edge-hub-{command}-{}-{nanos:x}", std::process::id())
}

/// A topic prefix: non-empty levels, no wildcards, not a `$` system topic.
fn check_prefix(prefix: &str) -> Result<(), CommandError> {
    let ok = !prefix.is_empty()
        && !prefix.starts_with('$')
        && !prefix.contains(['+', '#'])
        && prefix
            .trim_end_matches('/')
            .split('/')
            .all(|l| !l.is_empty());
    ok.then_some(()).ok_or_else(|| {
        CommandError::Usage(format!(
            "--prefix {prefix:?}: expected topic levels without wildcards, e.g. hl7edge/v1"
        ))
    })
}

fn check_client_id(id: &str) -> Result<(), CommandError> {
    let ok = (1..=256).contains(&id.chars().count())
        && id.chars().all(|c| !c.is_whitespace() && !c.is_control());
    ok.then_some(()).ok_or_else(|| {
        CommandError::Usage(format!(
            "--client-id {id:?}: expected 1 to 256 visible characters"
        ))
    })
}

/// A shared-subscription group name: one topic level without wildcards.
pub fn check_share_group(group: &str) -> Result<(), CommandError> {
    let ok = !group.is_empty() && !group.contains(['/', '+', '#']);
    ok.then_some(()).ok_or_else(|| {
        CommandError::Usage(format!(
            "--share {group:?}: a group name is one topic level without '/', '+' or '#'"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut argv = vec!["hl7edge-hub", "fleet"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
    }

    fn broker_of(cli: Cli) -> Result<Broker, CommandError> {
        match cli.command {
            Command::Fleet(f) => f.broker.broker("id".into()),
            _ => unreachable!("parsed as fleet"),
        }
    }

    #[test]
    fn mqtts_needs_all_three_tls_files_and_says_which_are_missing() {
        let cli = args(&["--url", "mqtts://hub", "--ca", "ca.pem"]).unwrap();
        let err = broker_of(cli).unwrap_err().to_string();
        assert!(err.contains("pass --cert and --key"), "{err}");
    }

    #[test]
    fn plaintext_needs_the_explicit_flag() {
        let err = broker_of(args(&["--url", "mqtt://lab"]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--insecure-plaintext"), "{err}");
        let ok = broker_of(args(&["--url", "mqtt://lab", "--insecure-plaintext"]).unwrap());
        assert!(matches!(ok.unwrap().transport, BrokerTransport::Plaintext));
    }

    #[test]
    fn the_plaintext_flag_with_tls_is_a_contradiction() {
        let cli = args(&["--url", "mqtts://hub", "--insecure-plaintext"]).unwrap();
        let err = broker_of(cli).unwrap_err().to_string();
        assert!(err.contains("contradicts"), "{err}");
    }

    #[test]
    fn wildcard_prefixes_and_share_groups_are_refused() {
        let cli = args(&[
            "--url",
            "mqtt://lab",
            "--insecure-plaintext",
            "--prefix",
            "a/#",
        ])
        .unwrap();
        assert!(broker_of(cli).unwrap_err().to_string().contains("--prefix"));
        assert!(check_share_group("hub/1").is_err());
        assert!(check_share_group("hub-1").is_ok());
    }

    #[test]
    fn tail_requires_a_stable_client_id_and_splits_types() {
        let missing = Cli::try_parse_from(["hl7edge-hub", "tail", "--url", "mqtt://x"]);
        assert!(missing.is_err());
        let cli = Cli::try_parse_from([
            "hl7edge-hub",
            "tail",
            "--url",
            "mqtt://x",
            "--client-id",
            "hub-1",
            "--types",
            "ORU_R01,ADT_A01",
        ])
        .unwrap();
        let Command::Tail(t) = cli.command else {
            unreachable!("parsed as tail")
        };
        assert_eq!(t.types, ["ORU_R01", "ADT_A01"]);
        assert_eq!(t.dedupe_capacity.get(), 100_000);
    }

    #[test]
    fn ingest_needs_a_database_and_a_client_id() {
        let missing = Cli::try_parse_from([
            "hl7edge-hub",
            "ingest",
            "--url",
            "mqtt://x",
            "--client-id",
            "i",
        ]);
        // HL7EDGE_HUB_DATABASE is not set in tests.
        assert!(missing.is_err());
        let cli = Cli::try_parse_from([
            "hl7edge-hub",
            "ingest",
            "--url",
            "mqtt://x",
            "--client-id",
            "ingest-1",
            "--database",
            "postgres://h/db",
            "--share",
            "ingest",
        ])
        .unwrap();
        let Command::Ingest(i) = cli.command else {
            unreachable!("parsed as ingest")
        };
        assert_eq!(i.batch_records.get(), 2000);
        assert_eq!(i.share.as_deref(), Some("ingest"));
    }

    #[test]
    fn fresh_client_ids_name_the_command() {
        assert!(fresh_client_id("fleet").starts_with("hl7edge-hub-fleet-"));
    }
}
