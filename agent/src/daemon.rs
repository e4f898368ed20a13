//! The running gateway: opens the store, binds the listeners, starts the
//! forwarder, and shuts everything down in order.
//!
//! Shutdown order (SIGTERM/SIGINT or [`RunningAgent::shutdown`]): listeners
//! stop accepting and every connection answers the frames it already holds;
//! the forwarder waits briefly for outstanding PUBACKs and publishes the
//! offline status; then the store writer drains and closes. Everything is
//! bounded so the process exits within about five seconds.
//!
//! A fatal store error (I/O error, failed fsync, corruption) stops
//! everything at once and is returned as an error, so the process exits
//! non-zero and systemd restarts it; SQLite recovers from its WAL on the
//! next start.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hl7edge_protocol::hl7::ack::AckMode;
use hl7edge_protocol::normalize::mapping::{MappingTable, UnmappedCounter};
use hl7edge_protocol::topic::GatewayTopics;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::forwarder::task::{self as forwarder, ForwarderMetrics, ForwarderSettings};
use crate::ingest::{AckIds, Interface, PayloadLimit};
use crate::listener::{ConnectionSettings, ListenerHandle, ListenerMetrics, PreparePool, Shared};
use crate::store::{OpenedStore, Store, StoreConfig, StoreHandle, StoreHealth, StoreWriter};
use crate::telemetry::{self, collect::Probes, drift::DriftWatch};

/// How long listeners get to answer what they hold at shutdown.
const LISTENER_DRAIN: Duration = Duration::from_millis(2500);

/// A started agent.
pub struct RunningAgent {
    shutdown: watch::Sender<bool>,
    listeners: Vec<Started>,
    listener_tasks: Vec<JoinHandle<()>>,
    forwarder: JoinHandle<Result<(), forwarder::ForwardError>>,
    forwarder_metrics: Arc<ForwarderMetrics>,
    /// The heartbeat task (holds a store handle: joined before the writer).
    telemetry: Option<JoinHandle<()>>,
    store: Option<StoreHandle>,
    writer: Option<StoreWriter>,
    /// The systemd watchdog task (holds a store handle: stopped first).
    watchdog: Option<JoinHandle<()>>,
}

/// Opens the store and starts every part. Returns once the listeners are
/// bound (ready to accept).
pub async fn start(config: Config, version: &str) -> anyhow::Result<RunningAgent> {
    let store_cfg = store_config(&config);
    let path = store_cfg.path.clone();
    let OpenedStore {
        handle,
        writer,
        report,
    } = tokio::task::spawn_blocking(move || Store::open(store_cfg))
        .await
        .context("opening the store")?
        .with_context(|| format!("cannot open the queue database {}", path.display()))?;
    if let Some(recovery) = &report.recovered {
        error!(detail = %recovery.describe(), "the queue database was damaged and set aside");
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let prepared = prepare_listeners(&config, &handle)?;
    let (push_inbox, pushes) = start_pushes(&config, &prepared, &handle, &shutdown_rx)?;
    let (listeners, listener_tasks) =
        start_listeners(&config, prepared, pushes.as_deref(), &shutdown_rx).await?;
    let settings = ForwarderSettings {
        gateway_name: gateway_name(&config),
        topics: GatewayTopics::new(
            &config.hub.topic_prefix,
            &config.gateway.org,
            &config.gateway.site,
            &config.gateway.id,
        ),
        hub: config.hub.clone(),
        include_raw: config
            .listeners
            .iter()
            .filter(|l| l.include_raw)
            .map(|l| l.name.clone())
            .collect::<HashSet<_>>(),
        interfaces: Arc::new(
            listeners
                .iter()
                .map(|(name, _, shared)| {
                    let how = crate::upgrade::Normalization {
                        time_zone: shared.iface.time_zone.clone(),
                        mapping: shared.iface.mapping.current(),
                    };
                    (name.clone(), how)
                })
                .collect(),
        ),
        version: version.to_string(),
        started_at_ms: crate::store::now_ms(),
        pushes: push_inbox,
    };
    let forwarder_metrics = Arc::new(ForwarderMetrics::default());
    let (outbox, inbox) = telemetry::channel();
    let recovery = report.recovered.as_ref().map(|r| r.describe());
    let probes = probes(&config, &handle, &listeners, &forwarder_metrics, pushes);
    // A box with a claim credential and no device certificate enrolls first; the listeners and
    // the store run meanwhile, so messages are acknowledged and queued (`crate::enroll`). Its
    // heartbeat starts once it is enrolled: before, it has no connection to publish on and no
    // certificate whose expiry to report.
    let enrollment =
        crate::enroll::Enrollment::new(&config, handle.clone(), Arc::clone(&forwarder_metrics));
    let (enrolled, enrolled_rx) = tokio::sync::oneshot::channel::<()>();
    let telemetry = tokio::spawn({
        let (config, version, started_at_ms, shutdown) = (
            config.clone(),
            version.to_owned(),
            settings.started_at_ms,
            shutdown_rx.clone(),
        );
        let enrolling = enrollment.is_some();
        async move {
            if enrolling && enrolled_rx.await.is_err() {
                return;
            }
            let identity = telemetry::identity(&config, &version, started_at_ms, recovery);
            telemetry::run(identity, probes, outbox, shutdown).await;
        }
    });
    let forwarder = spawn_forwarder(
        settings,
        enrollment.map(|e| (e, enrolled)),
        handle.clone(),
        Arc::clone(&forwarder_metrics),
        inbox,
        shutdown_rx.clone(),
    );
    info!(listeners = listeners.len(), "hl7edge started");
    Ok(RunningAgent {
        shutdown,
        listeners,
        listener_tasks,
        forwarder,
        forwarder_metrics,
        telemetry: Some(telemetry),
        store: Some(handle),
        writer: Some(writer),
        watchdog: None,
    })
}

/// What the heartbeat reads: the store, the listeners, the forwarder, the pushes and the limits
/// of `config`.
fn probes(
    config: &Config,
    handle: &StoreHandle,
    listeners: &[Started],
    forwarder_metrics: &Arc<ForwarderMetrics>,
    pushes: Option<Arc<crate::push::Pushes>>,
) -> Probes {
    Probes {
        store: handle.clone(),
        listeners: listeners.iter().map(|(_, _, s)| Arc::clone(s)).collect(),
        forwarder: Arc::clone(forwarder_metrics),
        limits: telemetry::collect::StoreLimits {
            max_bytes: config.storage.max_bytes,
            reserve_bytes: crate::store::DEFAULT_RESERVE_BYTES,
            quarantine: quarantine_limits(config),
        },
        pushes,
        silence: config.silence,
        unwatched: config
            .listeners
            .iter()
            .filter(|l| !l.silence)
            .map(|l| l.name.clone())
            .collect(),
    }
}

/// The forwarder's task; a box that must enroll first does so in it (and says so on `enrolled`,
/// which starts the heartbeat), so only the hub side waits for the certificate.
fn spawn_forwarder(
    settings: ForwarderSettings,
    enrollment: Option<(crate::enroll::Enrollment, tokio::sync::oneshot::Sender<()>)>,
    store: StoreHandle,
    metrics: Arc<ForwarderMetrics>,
    inbox: telemetry::HeartbeatInbox,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<Result<(), forwarder::ForwardError>> {
    tokio::spawn(async move {
        if let Some((enrollment, enrolled)) = enrollment {
            if !enrollment.run(shutdown.clone()).await {
                return Ok(());
            }
            let _ = enrolled.send(());
        }
        forwarder::run(settings, store, metrics, inbox, shutdown).await
    })
}

/// The shared state of each listener of `config` (ingest settings with the mapping table
/// loaded, counters, the prepare pool), in config order.
fn prepare_listeners(
    config: &Config,
    store: &StoreHandle,
) -> anyhow::Result<Vec<(String, Arc<Shared>)>> {
    let pool = PreparePool::for_this_machine();
    info!(
        threads = pool.threads(),
        "frames are prepared on a pool of blocking threads"
    );
    config
        .listeners
        .iter()
        .map(|l| {
            let shared = Arc::new(Shared {
                iface: interface(config, l)?,
                store: store.clone(),
                ids: AckIds::default(),
                metrics: ListenerMetrics::default(),
                settings: ConnectionSettings {
                    name: l.name.clone(),
                    max_frame_bytes: l.max_frame_bytes,
                    idle_timeout: l.idle_timeout,
                },
                pool: pool.clone(),
            });
            Ok((l.name.clone(), shared))
        })
        .collect()
}

/// With `hub.push_key`: the pushes of this agent, their last pushed mappings restored (before
/// the first connection), and the task that applies new ones with the inbox the forwarder
/// hands them to.
fn start_pushes(
    config: &Config,
    prepared: &[(String, Arc<Shared>)],
    store: &StoreHandle,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<(Option<crate::push::Inbox>, Option<Arc<crate::push::Pushes>>)> {
    let Some(path) = &config.hub.push_key else {
        return Ok((None, None));
    };
    let key = crate::push::load_key(path).map_err(|e| anyhow::anyhow!("hub.push_key: {e}"))?;
    let pushes = Arc::new(crate::push::Pushes::new(
        config,
        key,
        prepared,
        store.clone(),
    ));
    pushes.restore(crate::store::now_ms());
    let (tx, rx) = tokio::sync::mpsc::channel(crate::push::INBOX);
    tokio::spawn(crate::push::run(Arc::clone(&pushes), rx, shutdown.clone()));
    Ok((Some(tx), Some(pushes)))
}

/// A listener and its supervisor's handle, as the running agent keeps them.
type Started = (String, ListenerHandle, Arc<Shared>);

/// Starts each listener on its last pushed settings and switch (rolled back to the configured
/// settings by itself when those cannot be bound), then hands the supervisors to the pushes.
async fn start_listeners(
    config: &Config,
    prepared: Vec<(String, Arc<Shared>)>,
    pushes: Option<&crate::push::Pushes>,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Started>, Vec<JoinHandle<()>>)> {
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();
    for (l, (name, shared)) in config.listeners.iter().zip(prepared) {
        let (handle, task) = crate::push::listener::start(
            pushes,
            l,
            Arc::clone(&shared),
            shutdown.clone(),
            crate::store::now_ms(),
        )
        .await?;
        listeners.push((name, handle, shared));
        tasks.push(task);
    }
    if let Some(pushes) = pushes {
        pushes.attach(
            listeners
                .iter()
                .map(|(name, handle, _)| (name.clone(), handle.clone()))
                .collect(),
        );
    }
    Ok((listeners, tasks))
}

/// The store settings of a configuration: `[storage]`, `[quarantine]`, and `hub.custody`
/// (receipt mode keeps PUBACKed rows until their receipt).
pub(crate) fn store_config(config: &Config) -> StoreConfig {
    let storage = &config.storage;
    StoreConfig {
        max_bytes: storage.max_bytes,
        retain_sent: storage.retain_sent,
        dedupe_window: storage.dedupe_window,
        quarantine_max_bytes: config.quarantine.max_bytes,
        quarantine_retention: config.quarantine.retention,
        receipt_timeout: (config.hub.custody == config::Custody::Receipt)
            .then_some(config.hub.receipt_timeout),
        rhythm_hour: config.silence.hour,
        ..StoreConfig::new(storage.path.clone())
    }
}

/// The quarantine's cap, retention and warning period of a configuration (for the readers that
/// report them: `status`, `doctor`, the heartbeat).
pub(crate) fn quarantine_limits(config: &Config) -> crate::store::QuarantineLimits {
    let q = &config.quarantine;
    crate::store::QuarantineLimits::new(q.max_bytes, q.retention, q.warn_before)
}

/// `org/site/id`, as every envelope names the gateway.
pub(crate) fn gateway_name(config: &Config) -> String {
    let g = &config.gateway;
    format!("{}/{}/{}", g.org, g.site, g.id)
}

/// The ingest view of listener `l` of `config`, with its mapping table
/// loaded and the hub's payload limit.
pub(crate) fn interface(config: &Config, l: &config::Listener) -> anyhow::Result<Interface> {
    let mapping = match &l.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "listener {}: cannot read mapping file {}",
                    l.name,
                    path.display()
                )
            })?;
            MappingTable::parse(&text)
                .with_context(|| format!("listener {}: mapping file {}", l.name, path.display()))?
        }
        None => MappingTable::empty(),
    };
    info!(listener = %l.name, mapping_version = %mapping.version(), "interface ready");
    Ok(Interface {
        name: l.name.clone(),
        ack_mode: match l.ack_mode {
            config::AckMode::Always => AckMode::Always,
            config::AckMode::AsRequested => AckMode::AsRequested,
            config::AckMode::Original => AckMode::Original,
        },
        time_zone: l.time_zone.clone(),
        mapping: crate::ingest::MappingSlot::new(mapping),
        unmapped: Mutex::new(UnmappedCounter::default()),
        drift: Mutex::new(DriftWatch::new(u64::from(l.drift_learning_messages.get()))),
        payload: PayloadLimit {
            max_payload: config.hub.max_payload,
            gateway: gateway_name(config),
            include_raw: l.include_raw,
        },
    })
}

/// What identifies the running configuration and device certificate in the audit trail:
/// `config sha256:…, certificate sha256:…` (hashes of the file's bytes and of the certificate's
/// DER; no content).
pub fn start_fingerprint(config_path: &std::path::Path, config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let short = |bytes: &[u8]| crate::store::hex(&Sha256::digest(bytes));
    let config_hash = std::fs::read(config_path).map_or_else(
        |_| "unreadable".to_owned(),
        |b| format!("sha256:{}", short(&b)),
    );
    let cert = match &config.hub.transport {
        config::HubTransport::Tls(tls) => crate::tls::load_certs(&tls.cert)
            .ok()
            .and_then(|chain| chain.into_iter().next())
            .map_or_else(
                || "unreadable".to_owned(),
                |der| format!("sha256:{}", short(der.as_ref())),
            ),
        config::HubTransport::Plaintext => "none (plaintext hub)".to_owned(),
    };
    format!("config {config_hash}, certificate {cert}")
}

impl RunningAgent {
    /// Writes `agent.configuration` to the audit trail when the configuration file or the
    /// device certificate differs from the last start's (one line per change, none otherwise).
    pub async fn audit_start(&self, config_path: &std::path::Path, config: &Config) {
        let Some(store) = &self.store else { return };
        let now = start_fingerprint(config_path, config);
        let reader = store.open_reader();
        let last = tokio::task::spawn_blocking(move || {
            reader.and_then(|r| r.audit_last_of_kind("agent.configuration"))
        })
        .await;
        let last = match last {
            Ok(Ok(last)) => last,
            _ => None,
        };
        if last.as_ref().map(|e| e.detail.as_str()) == Some(now.as_str()) {
            return;
        }
        let detail = match &last {
            None => format!("first start: {now}"),
            Some(_) => format!("changed since the last start: {now}"),
        };
        if let Err(e) = store
            .audit("agent.configuration", detail, crate::store::now_ms())
            .await
        {
            warn!(cause = %e, "configuration fingerprint not written to the audit trail");
        }
    }

    /// The bound address of each listener that accepts connections, by name.
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(n, h, _)| h.running().addr.map(|a| (n.clone(), a)))
            .collect()
    }

    /// Shared state (counters) of each listener.
    pub fn listener_shared(&self) -> Vec<Arc<Shared>> {
        self.listeners
            .iter()
            .map(|(_, _, s)| Arc::clone(s))
            .collect()
    }

    /// Forwarder counters.
    pub fn forwarder_metrics(&self) -> Arc<ForwarderMetrics> {
        Arc::clone(&self.forwarder_metrics)
    }

    /// The store's health: resolves when the writer fails.
    pub fn store_health(&self) -> Option<watch::Receiver<StoreHealth>> {
        self.store.as_ref().map(StoreHandle::health)
    }

    /// Runs until `stop` resolves (a signal) or the store fails, then shuts
    /// down. Returns an error when the store failed (exit non-zero).
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut health = self.store_health().context("store already closed")?;
        let notifier = Arc::new(crate::notify::Notifier::from_env().unwrap_or_else(|e| {
            warn!(cause = %e, "NOTIFY_SOCKET is unusable; running without systemd notifications");
            crate::notify::Notifier::disabled()
        }));
        let store = self.store.clone().context("store already closed")?;
        self.watchdog = Some(crate::watchdog::start(
            Arc::clone(&notifier),
            store,
            self.forwarder_metrics(),
        ));
        let result = self.run_inner(&mut health, stop).await;
        let _ = notifier.stopping();
        result
    }

    async fn run_inner(
        &mut self,
        health: &mut watch::Receiver<StoreHealth>,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let failed = async {
            loop {
                if health.borrow().is_failed() {
                    return health.borrow().clone();
                }
                if health.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = stop => {
                info!("shutting down");
                self.shutdown().await
            }
            state = failed => {
                error!(state = ?state, "the store failed; stopping without further ACKs");
                let _ = self.shutdown().await;
                anyhow::bail!("the queue database failed ({state:?}); exiting so the service restarts")
            }
            r = &mut self.forwarder => {
                let r = r.context("forwarder task")?;
                let _ = self.shutdown().await;
                r.context("the forwarder stopped")?;
                anyhow::bail!("the forwarder stopped unexpectedly")
            }
        }
    }

    /// Stops accepting, answers what is in hand, flushes and closes.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.abort();
            let _ = watchdog.await;
        }
        let _ = self.shutdown.send(true);
        let drain = futures_join_all(std::mem::take(&mut self.listener_tasks));
        if tokio::time::timeout(LISTENER_DRAIN, drain).await.is_err() {
            warn!("some connections did not finish in time");
        }
        if !self.forwarder.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut self.forwarder).await;
        }
        if let Some(telemetry) = self.telemetry.take()
            && tokio::time::timeout(Duration::from_secs(1), telemetry)
                .await
                .is_err()
        {
            warn!("the heartbeat task did not stop in time");
        }
        self.listeners.clear();
        self.store.take();
        if let Some(writer) = self.writer.take() {
            // The writer ends when the last handle is gone; a task that is
            // still holding one (it should not) must not hang the exit.
            let join = tokio::task::spawn_blocking(move || writer.join());
            match tokio::time::timeout(Duration::from_secs(2), join).await {
                Ok(r) => r
                    .context("store writer")?
                    .context("the store writer stopped with an error")?,
                Err(_) => warn!("the store writer did not stop in time; committed data is safe"),
            }
        }
        info!("stopped");
        Ok(())
    }
}

async fn futures_join_all(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
