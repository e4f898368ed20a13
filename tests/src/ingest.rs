//! The real `hl7edge-hub ingest` as a child process against the test broker and PostgreSQL,
//! plus the queries the ingest tests make of its tables.
//!
//! Invariants:
//! - the process runs in its own temporary directory with its own log; it never outlives its
//!   value (killed on drop) and its log tail is printed then;
//! - [`Ingest::start`] returns once the ingest has subscribed (its log says so), so nothing
//!   published afterwards is missed; a restart keeps the client id, so the broker hands the
//!   restarted process its session.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::hub::{self, HubError};
use crate::pki::CertPaths;
use crate::process::{self, Process};

/// How long an ingest may take to connect and subscribe.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines printed when dropped.
const LOG_LINES: usize = 60;
/// What the ingest logs once its subscription is in place.
const SUBSCRIBED: &str = "subscribed";

/// How one ingest process is started.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    /// `mqtts://127.0.0.1:PORT`.
    pub broker_url: String,
    /// The CA of the broker.
    pub ca: PathBuf,
    /// The ingest's client certificate.
    pub identity: CertPaths,
    /// The PostgreSQL URL.
    pub database: String,
    /// The MQTT client id (stable across restarts).
    pub client_id: String,
    /// The shared subscription group, if any.
    pub share: Option<String>,
    /// Extra arguments (e.g. `--batch-records`).
    pub extra: Vec<String>,
}

/// A running (or killed) ingest.
pub struct Ingest {
    spec: IngestSpec,
    binary: PathBuf,
    dir: TempDir,
    metrics: SocketAddr,
    process: Option<Process>,
}

impl Ingest {
    /// Starts the ingest and waits until it has subscribed.
    pub async fn start(spec: IngestSpec) -> Result<Ingest, HubError> {
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-ingest-")
            .tempdir()?;
        let metrics = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
        let mut ingest = Ingest {
            spec,
            binary: hub::binary()?,
            dir,
            metrics,
            process: None,
        };
        ingest.launch().await?;
        Ok(ingest)
    }

    /// SIGKILL, and wait for the exit.
    pub async fn kill(&mut self) -> Result<(), HubError> {
        if let Some(mut p) = self.process.take() {
            p.kill().await?;
        }
        Ok(())
    }

    /// Starts it again (same client id, same log) and waits until it has subscribed.
    pub async fn restart(&mut self) -> Result<(), HubError> {
        self.kill().await?;
        self.launch().await
    }

    /// Stops it (SIGTERM) and runs `hl7edge-hub ingest --retire` with the same client id until
    /// it exits: the session drained, then ended.
    pub async fn retire(&mut self) -> Result<std::process::ExitStatus, HubError> {
        if self.process.is_some() {
            self.terminate().await?;
        }
        let mut args = self.args();
        args.push("--retire".into());
        let log = self.log_path();
        let mut p = Process::spawn("hl7edge-hub ingest --retire", &self.binary, &args, &log)?;
        Ok(p.wait_exit(Duration::from_secs(90)).await?)
    }

    /// SIGTERM and wait for the exit (it commits what it holds first).
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus, HubError> {
        match self.process.take() {
            Some(mut p) => {
                p.signal(nix::sys::signal::Signal::SIGTERM)?;
                Ok(p.wait_exit(Duration::from_secs(40)).await?)
            }
            None => Err(HubError::NotReady {
                what: "terminate (not running)".into(),
                log: self.log(),
            }),
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The Prometheus text of its `/metrics`.
    pub async fn metrics(&self) -> Result<String, HubError> {
        hub::http_get(self.metrics, "/metrics").await
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("ingest.log")
    }

    fn args(&self) -> Vec<String> {
        let s = &self.spec;
        let mut args: Vec<String> = [
            "ingest",
            "--url",
            &s.broker_url,
            "--ca",
            &s.ca.display().to_string(),
            "--cert",
            &s.identity.cert.display().to_string(),
            "--key",
            &s.identity.key.display().to_string(),
            "--keep-alive",
            "5s",
            "--database",
            &s.database,
            "--client-id",
            &s.client_id,
            "--metrics",
            &self.metrics.to_string(),
        ]
        .map(String::from)
        .to_vec();
        if let Some(group) = &s.share {
            args.extend(["--share".to_owned(), group.clone()]);
        }
        args.extend(s.extra.iter().cloned());
        args
    }

    async fn launch(&mut self) -> Result<(), HubError> {
        let args = self.args();
        let log = self.log_path();
        let mut p = Process::spawn("hl7edge-hub ingest", &self.binary, &args, &log)?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if process::latest_start_logged(&log, SUBSCRIBED) {
                self.process = Some(p);
                return Ok(());
            }
            if !p.is_running() || tokio::time::Instant::now() >= deadline {
                return Err(HubError::NotReady {
                    what: "its subscription".into(),
                    log: process::log_tail(&log, LOG_LINES),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.process = None;
        process::print_log("hl7edge-hub ingest", &self.log_path(), LOG_LINES);
        if process::keep_files() {
            self.dir.disable_cleanup(true);
        }
    }
}

/// A metric's value in a Prometheus exposition (`name` with `labels`), if present.
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    hub::sample(exposition, name, labels)
}

/// What the ingest tests read back from the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Landed {
    /// `(gateway, source, control id)` → record ids with that key (one, if nothing split).
    pub records: BTreeMap<(String, String, String), Vec<String>>,
    /// Record id → number of observation rows.
    pub observations: BTreeMap<String, i64>,
    /// Record id → number of patient identifier rows.
    pub identifiers: BTreeMap<String, i64>,
}

impl Landed {
    /// Reads every record with its typed row counts.
    pub async fn read(client: &tokio_postgres::Client) -> Result<Landed, tokio_postgres::Error> {
        let mut landed = Landed::default();
        for row in client
            .query(
                "SELECT id::text, gateway, source, control_id FROM records",
                &[],
            )
            .await?
        {
            landed
                .records
                .entry((row.get(1), row.get(2), row.get(3)))
                .or_default()
                .push(row.get(0));
        }
        for (table, map) in [
            ("observations", &mut landed.observations),
            ("patient_identifiers", &mut landed.identifiers),
        ] {
            let sql = format!("SELECT record_id::text, count(*) FROM {table} GROUP BY 1");
            for row in client.query(&sql, &[]).await? {
                map.insert(row.get(0), row.get(1));
            }
        }
        Ok(landed)
    }

    /// Number of record rows.
    pub fn len(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Waits until `client`'s `SELECT count(*) FROM records` reaches `n` (or `timeout`); returns the
/// last count.
pub async fn wait_records(
    client: &tokio_postgres::Client,
    n: i64,
    timeout: Duration,
) -> Result<i64, tokio_postgres::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let count: i64 = client
            .query_one("SELECT count(*) FROM records", &[])
            .await?
            .get(0);
        if count >= n || tokio::time::Instant::now() >= deadline {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ACL template the tests run the broker with (`hub/broker/mosquitto-acl`).
pub const ACL_TEMPLATE: &str = include_str!("../../hub/broker/mosquitto-acl");

/// The ingest's certificate common name in the ACL template.
pub const INGEST_USER: &str = "hl7edge-ingest";

/// The shared subscription group of the tests' ingests.
pub const SHARE_GROUP: &str = "ingest";

/// The second gateway of an [`IngestRig`].
pub const SECOND_GATEWAY: (&str, &str, &str) = ("acme-health", "clinic-12", "gw-0002");

/// Everything the hub landing tests need: certificates, PostgreSQL, mosquitto over mutual TLS
/// with the ACL template, two gateways (the default `acme-health/clinic-12/gw-0001` and
/// [`SECOND_GATEWAY`]) and ingest processes in one share group.
pub struct IngestRig {
    /// The agents, gw-0001 first (dropped first).
    pub agents: Vec<crate::agent::Agent>,
    /// The ingests.
    pub ingests: Vec<Ingest>,
    /// The broker.
    pub broker: crate::broker::Broker,
    /// The database.
    pub pg: crate::postgres::Postgres,
    /// The second gateway's certificate.
    pub second: CertPaths,
    /// The ingests' certificate (CN [`INGEST_USER`]).
    pub ingest_identity: CertPaths,
    /// The certificates.
    pub pki: crate::pki::Pki,
}

/// What can go wrong while setting up an [`IngestRig`].
#[derive(Debug, thiserror::Error)]
pub enum IngestRigError {
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// The broker.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] crate::postgres::PostgresError),
    /// An agent.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// An ingest.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Writing the ACL file.
    #[error("writing the ACL file: {0}")]
    Io(#[from] std::io::Error),
}

impl IngestRig {
    /// Starts PostgreSQL, the broker with the ACL, `ingests` ingest processes in
    /// [`SHARE_GROUP`] and the two agents (`configure` adjusts both agents' configuration).
    pub async fn start(
        ingests: usize,
        configure: impl Fn(crate::agent::AgentConfig) -> crate::agent::AgentConfig,
    ) -> Result<IngestRig, IngestRigError> {
        let pki = crate::pki::Pki::generate()?;
        let (org, site, id) = SECOND_GATEWAY;
        let second = pki.gateway(org, site, id)?;
        let ingest_identity = pki.client(INGEST_USER)?;
        let acl = pki.dir().join("mosquitto-acl");
        std::fs::write(&acl, ACL_TEMPLATE)?;
        let options = crate::broker::BrokerOptions {
            extra_config: vec![format!("acl_file {}", acl.display())],
            ..Default::default()
        };
        let broker = crate::broker::Broker::start_with(&pki, options).await?;
        let pg = crate::postgres::Postgres::start().await?;
        let mut rig = IngestRig {
            agents: Vec::new(),
            ingests: Vec::new(),
            broker,
            pg,
            second,
            ingest_identity,
            pki,
        };
        for n in 0..ingests {
            let ingest = Ingest::start(rig.ingest_spec(&format!("hl7edge-ingest-{n}"))).await?;
            rig.ingests.push(ingest);
        }
        let first = crate::agent::AgentConfig::new(&rig.pki, &rig.broker.url());
        let mut second_config = first.clone();
        second_config.gateway = (org.into(), site.into(), id.into());
        second_config.hub_identity = rig.second.clone();
        for config in [first, second_config] {
            rig.agents
                .push(crate::agent::Agent::start(&configure(config)).await?);
        }
        Ok(rig)
    }

    /// How an ingest of this rig is started (client id `client_id`, in [`SHARE_GROUP`]).
    pub fn ingest_spec(&self, client_id: &str) -> IngestSpec {
        IngestSpec {
            broker_url: self.broker.url(),
            ca: self.pki.ca.clone(),
            identity: self.ingest_identity.clone(),
            database: self.pg.url(),
            client_id: client_id.to_owned(),
            share: Some(SHARE_GROUP.to_owned()),
            extra: Vec::new(),
        }
    }

    /// A sender with short timeouts to agent `n`'s `lab` listener.
    pub fn sender(&self, n: usize) -> crate::mllp::Sender {
        let addr = self.agents[n]
            .mllp_addr("lab")
            .unwrap_or_else(|| panic!("agent {n} has no lab listener"));
        crate::mllp::Sender::new(crate::rig::quick(addr))
    }

    /// The gateway name (`org/site/id`) of agent `n`.
    pub fn gateway(n: usize) -> String {
        if n == 0 {
            "acme-health/clinic-12/gw-0001".into()
        } else {
            let (org, site, id) = SECOND_GATEWAY;
            format!("{org}/{site}/{id}")
        }
    }

    /// MQTT client options presenting gateway `n`'s certificate.
    pub fn gateway_client(&self, n: usize, client_id: &str) -> crate::mqtt::ClientOptions {
        let identity = if n == 0 {
            &self.pki.agent
        } else {
            &self.second
        };
        crate::mqtt::ClientOptions::new(client_id, &self.pki.ca, Some(identity))
    }
}
