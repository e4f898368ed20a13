//! Test fixture of the CLI commands: a configuration file, a mapping table
//! and a queue database in a temporary directory, filled through the
//! store's own API the way the listener fills it.

use std::path::PathBuf;

use tempfile::TempDir;

use crate::config::Config;
use crate::daemon;
use crate::ingest::{self, AckIds, Prepared, Stamp};
use crate::store::{OpenedStore, Quarantined, Store, StoreConfig};

/// Patient data in [`oru`]: must never appear in summaries. The result has
/// decimals: a bare `112` turned up in the milliseconds of a printed time.
pub(crate) const PHI: [&str; 4] = ["DOE", "JANE", "19800101", "112.49"];

/// A valid ORU^R01 with control id `control_id`.
pub(crate) fn oru(control_id: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
OBR|1|P1|F1|24323-8^Panel^LN|||20260102020000\r\
OBX|1|NM|GLU^Glucose^99LAB||112.49|mg/dl|70-99|H|||F\r"
    )
    .into_bytes()
}

/// A message the gateway rejects: its header has no control id.
pub(crate) fn without_control_id() -> Vec<u8> {
    b"MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01||P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r".to_vec()
}

/// A mapping table with version label `label`.
pub(crate) fn mapping(label: &str) -> String {
    format!(
        "# version: {label}\nkind,local_system,local_code,target_system,target_code,target_display\n\
         code,99LAB,GLU,LN,2345-7,Glucose\n"
    )
}

/// A configuration and its store in a temporary directory.
pub(crate) struct Fixture {
    pub(crate) dir: TempDir,
    /// The configuration file.
    pub(crate) config: PathBuf,
    /// What the configuration says.
    pub(crate) loaded: Config,
}

impl Fixture {
    /// Writes the configuration and mapping table and creates the store.
    pub(crate) fn new() -> Self {
        let fixture = Self::without_database();
        let store = fixture.open();
        close(store);
        fixture
    }

    /// Writes the configuration and mapping table, but no database.
    pub(crate) fn without_database() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("queue.db");
        let map = dir.path().join("lab.csv");
        std::fs::write(&map, mapping("lab-v1")).expect("mapping written");
        let text = Config::example()
            .replace("/var/lib/hl7edge/queue.db", &db.display().to_string())
            .replace("/etc/hl7edge/maps/lab.csv", &map.display().to_string());
        let config = dir.path().join("hl7edge.toml");
        std::fs::write(&config, text).expect("config written");
        let loaded = Config::load(&config).expect("config loads");
        Self {
            dir,
            config,
            loaded,
        }
    }

    /// The store settings of the configuration.
    pub(crate) fn store_config(&self) -> StoreConfig {
        daemon::store_config(&self.loaded)
    }

    /// Opens the store as the agent does (the writer runs until closed).
    pub(crate) fn open(&self) -> OpenedStore {
        Store::open(self.store_config()).expect("store opens")
    }

    /// Receives `raw` on the `lab` interface as the listener would: stored,
    /// or quarantined (then its quarantine id is returned).
    pub(crate) fn receive(&self, raw: &[u8]) -> Option<i64> {
        let listener = self.loaded.listeners.first().expect("a listener");
        let iface = daemon::interface(&self.loaded, listener).expect("interface");
        let prepared = ingest::prepare(
            &iface,
            raw,
            "10.0.0.7:4000",
            &Stamp::now(),
            &AckIds::default(),
        );
        let store = self.open();
        let id = runtime().block_on(async {
            match prepared {
                Prepared::Store { message, .. } => {
                    store.handle.insert(*message).await.expect("stored");
                    None
                }
                Prepared::Quarantine(entry) => {
                    Some(store.handle.quarantine(*entry).await.expect("kept"))
                }
            }
        });
        close(store);
        id
    }

    /// Pins a new organization push key (`hub.push_key`) and keeps `table` as listener lab's
    /// pushed mapping, sequence 10, signed with it, as the agent keeps an applied push.
    pub(crate) fn push_mapping(&mut self, table: &str) {
        use hl7edge_protocol::push::{Bundle, Change, PushSigner};
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
        let signer = PushSigner::from_pkcs8_der(&pair.serialize_der()).expect("pkcs8");
        let key = self.dir.path().join("org-push.pub");
        std::fs::write(&key, pair.public_key_pem()).expect("key written");
        let text = std::fs::read_to_string(&self.config).expect("config");
        let pinned = format!("[hub]\npush_key = \"{}\"\n", key.display());
        std::fs::write(&self.config, text.replacen("[hub]\n", &pinned, 1)).expect("config");
        self.loaded = Config::load(&self.config).expect("config loads");
        let sealed = signer
            .seal(&Bundle {
                scope: "acme-health/clinic-12".to_owned(),
                sequence: 10,
                issued_at_ms: 0,
                change: Change::Mapping {
                    listener: "lab".to_owned(),
                    table: table.to_owned(),
                },
            })
            .expect("sealed");
        let dir = crate::push::dir(&self.loaded);
        std::fs::create_dir_all(&dir).expect("pushed/");
        std::fs::write(dir.join("lab.push"), sealed).expect("push kept");
    }

    /// Stores `raw` on the `lab` interface (it must pass) and sets the
    /// record aside as the forwarder does for one too big for the hub;
    /// returns its seq.
    pub(crate) fn park(&self, raw: &[u8]) -> i64 {
        assert!(self.receive(raw).is_none(), "stored");
        let store = self.open();
        let seq = runtime().block_on(async {
            let reader = store.handle.open_reader().expect("reader");
            let last = reader.pending(0, 100_000).expect("pending");
            let seq = last.last().expect("a record").seq;
            let parked = store
                .handle
                .park(seq, format!("record {seq}: too big"), 1_000);
            assert!(parked.await.expect("parked"));
            seq
        });
        close(store);
        seq
    }

    /// Puts a message in quarantine as an agent with stricter rules would
    /// have; returns the entry id.
    pub(crate) fn quarantine(&self, raw: &[u8], received_at_ms: i64) -> i64 {
        let entry = Quarantined {
            no_ack_requested: false,
            source: "lab".into(),
            peer: "10.0.0.7:4000".into(),
            received_at_ms,
            raw: raw.to_vec(),
            error: "error 101 at OBX(1)-3: OBX-3 (observation identifier) is missing".into(),
            error_code: 101,
            ack:
                b"\x0bMSH|^~\\&|GW|ORG|LAB|HOSP|20260102030405||ACK|HE1|P|2.5.1\rMSA|AE|Q7\r\x1c\r"
                    .to_vec(),
        };
        let store = self.open();
        let id = runtime()
            .block_on(store.handle.quarantine(entry))
            .expect("kept");
        close(store);
        id
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Stops the store's writer (as the agent does at shutdown).
pub(crate) fn close(store: OpenedStore) {
    let OpenedStore { handle, writer, .. } = store;
    drop(handle);
    writer.join().expect("writer stops cleanly");
}
