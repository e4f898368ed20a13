//! `hl7edge status` and `hl7edge quarantine` as a technician runs them:
//! the real binary against a queue database made with the store API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use hl7edge::config::Config;
use hl7edge::ingest::{self, AckIds, Interface, PayloadLimit, Prepared, Stamp};
use hl7edge::store::{OpenedStore, Quarantined, Store, StoreConfig};
use hl7edge_protocol::hl7::ack::AckMode;
use hl7edge_protocol::normalize::mapping::{MappingTable, UnmappedCounter};

fn oru(control_id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
OBX|1|NM|2345-7^Glucose^LN||112|mg/dL|70-99|H|||F\r"
    )
    .into_bytes()
}

const NO_CONTROL_ID: &[u8] =
    b"MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01||P|2.5.1\rPID|1||123||DOE^JANE\r";

fn lab() -> Interface {
    Interface {
        name: "lab".into(),
        ack_mode: AckMode::Always,
        time_zone: jiff::tz::TimeZone::UTC,
        mapping: hl7edge::ingest::MappingSlot::new(MappingTable::empty()),
        unmapped: Mutex::new(UnmappedCounter::default()),
        drift: Mutex::new(hl7edge::telemetry::drift::DriftWatch::default()),
        payload: PayloadLimit {
            max_payload: 128_000,
            gateway: "acme-health/clinic-12/gw-0001".into(),
            include_raw: false,
        },
        quarantine_unmapped: false,
    }
}

/// Writes a configuration for a database at `db`; returns its path.
fn config(dir: &Path, db: &Path) -> PathBuf {
    let text = Config::example()
        .replace("/var/lib/hl7edge/queue.db", &db.display().to_string())
        .replace("mapping = \"/etc/hl7edge/maps/lab.csv\"", "");
    let path = dir.join("hl7edge.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Stores one message, quarantines one that is still broken and one that
/// now passes; returns (broken id, passing id).
async fn fill(db: &Path) -> (i64, i64) {
    let OpenedStore { handle, writer, .. } = Store::open(StoreConfig::new(db)).unwrap();
    let iface = lab();
    let ids = AckIds::default();
    let peer = "10.0.0.7:4000";
    let Prepared::Store { message, .. } =
        ingest::prepare(&iface, &oru("C1"), peer, &Stamp::now(), &ids)
    else {
        panic!("a valid message is stored");
    };
    handle.insert(*message).await.unwrap();
    let Prepared::Quarantine(broken) =
        ingest::prepare(&iface, NO_CONTROL_ID, peer, &Stamp::now(), &ids)
    else {
        panic!("a message without control id is rejected");
    };
    let broken = handle.quarantine(*broken).await.unwrap();
    let passing = Quarantined {
        no_ack_requested: false,
        source: "lab".into(),
        peer: peer.into(),
        received_at_ms: hl7edge::store::now_ms(),
        raw: oru("Q7"),
        error: "error 207 at message: the normalized record could not be encoded".into(),
        error_code: 207,
        ack: Vec::new(),
    };
    let passing = handle.quarantine(passing).await.unwrap();
    drop(handle);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap()
        .unwrap();
    (broken, passing)
}

fn hl7edge(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hl7edge"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn status(config: &Path) -> serde_json::Value {
    let out = hl7edge(config, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn status_and_quarantine_commands_work_on_a_real_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let (broken, passing) = fill(&db).await;
    let config = config(dir.path(), &db);

    let before = status(&config);
    assert_eq!(before["queue"]["depth"], 1);
    assert_eq!(before["quarantine"]["open"], 2);
    assert_eq!(before["interfaces"][0]["received"], 3);

    let list = hl7edge(&config, &["quarantine", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success() && text.contains(" Q7 "), "{text}");
    assert!(!text.contains("DOE"), "{text}");

    let still = hl7edge(&config, &["quarantine", "replay", &broken.to_string()]);
    assert_eq!(still.status.code(), Some(1), "{still:?}");
    let replayed = hl7edge(&config, &["quarantine", "replay", &passing.to_string()]);
    assert!(replayed.status.success(), "{replayed:?}");

    let unconfirmed = hl7edge(&config, &["quarantine", "drop", &broken.to_string()]);
    assert_eq!(unconfirmed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    let dropped = hl7edge(
        &config,
        &["quarantine", "drop", &broken.to_string(), "--yes"],
    );
    assert!(dropped.status.success(), "{dropped:?}");

    let after = status(&config);
    assert_eq!(after["queue"]["depth"], 2);
    assert_eq!(after["quarantine"]["open"], 0);
    assert_eq!(after["interfaces"][0]["received"], 3);
    let kinds: Vec<&str> = after["recent_audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .filter(|k| k.starts_with("quarantine."))
        .collect();
    assert_eq!(kinds, ["quarantine.dropped", "quarantine.replayed"]);
    assert_eq!(after["attention"], serde_json::json!([]));
}

#[test]
fn a_missing_database_fails_with_its_path_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    let config = config(dir.path(), &db);
    let out = hl7edge(&config, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!db.exists());
}

/// The README's audit commands: `quarantine show` is recorded before it prints, `audit verify`
/// passes on the untouched trail and fails (exit 1, naming the line) once a line was edited, and
/// `audit export --syslog` prints one RFC 5424 line per audit line.
#[tokio::test]
async fn audit_verify_and_export_work_on_a_real_database_and_detect_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let (broken, _) = fill(&db).await;
    let config = config(dir.path(), &db);
    let shown = hl7edge(&config, &["quarantine", "show", &broken.to_string()]);
    assert!(shown.status.success(), "{shown:?}");
    let verify = hl7edge(&config, &["audit", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && text.contains("audit trail intact"),
        "{verify:?}"
    );
    let export = hl7edge(&config, &["audit", "export", "--syslog"]);
    let lines = String::from_utf8_lossy(&export.stdout).into_owned();
    assert!(export.status.success(), "{export:?}");
    assert!(lines.lines().all(|l| l.starts_with("<85>1 ")), "{lines}");
    assert!(
        lines.contains(" hl7edge - quarantine.shown [hl7edge@32473 id="),
        "{lines}"
    );
    assert!(lines.contains("messages.received"), "{lines}");
    assert!(!lines.contains("DOE"), "no patient data: {lines}");

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE audit SET detail = 'nothing' WHERE id = 1", [])
        .unwrap();
    drop(conn);
    let verify = hl7edge(&config, &["audit", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    assert!(text.contains("BROKEN at line 1"), "{text}");
}

#[test]
fn a_port_in_use_is_said_once_with_how_to_find_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let path = dir.path().join("hl7edge.toml");
    let text = format!(
        "[gateway]\norg = \"acme\"\nsite = \"s1\"\nid = \"gw-1\"\n\
         [storage]\npath = \"{}\"\n\
         [[listener]]\nname = \"lab\"\nbind = \"127.0.0.1:{port}\"\nallow = [\"127.0.0.1\"]\n\
         [hub]\nurl = \"mqtt://127.0.0.1:1\"\ninsecure_plaintext = true\n",
        dir.path().join("queue.db").display()
    );
    std::fs::write(&path, text).unwrap();
    let out = hl7edge(&path, &["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let error = stderr
        .lines()
        .find(|l| l.starts_with("hl7edge: error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert_eq!(
        error.matches("Address already in use").count(),
        1,
        "the reason once: {error}"
    );
    assert!(
        error.contains(&format!("ss -ltnp 'sport = :{port}'")),
        "{error}"
    );
}
