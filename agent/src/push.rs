//! Signed pushes on the box: verify, decide, keep the last-known-good copy, swap the mapping;
//! a replay push re-runs quarantined messages (`push/replay.rs`).
//!
//! This module verifies every push and applies the checks every kind shares (scope, topic,
//! listener, sequence), then dispatches on the kind: a mapping table here, a listener's
//! settings or switch in [`listener`] (graceful rebind, rollback). Each kind of each listener
//! has its own sequence and its own copy on disk.
//!
//! A push arrives on this gateway's push topics (the forwarder hands it over). It is applied
//! only when its signature verifies with the pinned organization key (`hub.push_key`), its
//! scope covers this gateway, it names a listener of this configuration, its sequence is
//! newer than the one the listener runs ([`decide`]: no downgrade), and its mapping table
//! loads as `doctor` and the start would load it. Then, in this order: the signed bytes are
//! written to `{database dir}/pushed/{listener}.push` (temporary file, fsync, rename, fsync of
//! the directory), and the listener's [`crate::ingest::MappingSlot`] is replaced, so the next
//! message is coded with the new table and its record carries the new mapping version; a
//! message already in processing finishes with the table it started with.
//!
//! Invariants:
//! - The copy on disk is the signed push itself: at start ([`restore`]) it is verified again
//!   with the pinned key, so a file changed on the box is refused, and the box serves on the
//!   last pushed table whether or not the hub is reachable.
//! - Every outcome (applied, rejected with its reason, restored at start) is a log line, an
//!   audit line (`push.applied`, `push.rejected`) and the listener's entry in the heartbeat.
//!   A retained push delivered again after a reconnect is no news: the same bytes are neither
//!   applied nor reported twice.
//! - No PHI: a push carries mapping rows (codes and units), never patient data; logs and
//!   the audit name listener, sequence, scope, versions and hashes only.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::push::{self, Bundle, Change, PushKey};
use hl7edge_protocol::telemetry::PushReport;
use hl7edge_protocol::topic::GatewayTopics;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::{Config, Listener as ListenerConfig};
use crate::listener::{ListenerHandle, Shared};
use crate::store::StoreHandle;

pub mod listener;

/// Pushes waiting for the push task; a full queue drops the delivery with a log line (the push
/// is retained: the next connection delivers it again).
pub const INBOX: usize = 16;

/// Different refused pushes remembered, so a retained one is reported once per start.
const REMEMBERED_REFUSALS: usize = 64;

/// A push as the broker delivered it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The topic it came on.
    pub topic: String,
    /// The signed bytes.
    pub payload: Vec<u8>,
}

/// The sending half the forwarder holds.
pub type Inbox = mpsc::Sender<Delivery>;

/// What a listener runs from a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    /// The push's sequence.
    pub sequence: u64,
    /// The SHA-256 of its signed bytes.
    pub digest: String,
}

/// What to do with a push that verified, given what the listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Newer: apply it.
    Apply,
    /// The push the listener runs, delivered again: nothing to do.
    Same,
    /// Older than what runs (`downgrade`), or different under the same sequence
    /// (`sequence_reused`).
    Refuse(&'static str),
}

/// The no-downgrade rule.
pub fn decide(active: Option<&Active>, sequence: u64, digest: &str) -> Verdict {
    match active {
        None => Verdict::Apply,
        Some(a) if a.digest == digest => Verdict::Same,
        Some(a) if sequence > a.sequence => Verdict::Apply,
        Some(a) if sequence == a.sequence => Verdict::Refuse("sequence_reused"),
        Some(_) => Verdict::Refuse("downgrade"),
    }
}

/// Reads the organization's public key (a PEM `PUBLIC KEY` block, Ed25519).
pub fn load_key(path: &Path) -> Result<PushKey, String> {
    use rustls_pki_types::SubjectPublicKeyInfoDer;
    use rustls_pki_types::pem::PemObject as _;
    let der = SubjectPublicKeyInfoDer::from_pem_file(path)
        .map_err(|e| format!("{}: not a PEM public key: {e}", path.display()))?;
    PushKey::from_spki_der(der.as_ref()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where the last-known-good pushes are kept: `pushed/` beside the queue database.
pub fn dir(config: &Config) -> PathBuf {
    config
        .storage
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join("pushed")
}

/// The pushes of one running agent.
pub struct Pushes {
    key: PushKey,
    dir: PathBuf,
    identity: [String; 3],
    topics: GatewayTopics,
    listeners: BTreeMap<String, Arc<Shared>>,
    /// The listeners as the configuration file sets them, in its order.
    configured: Vec<ListenerConfig>,
    /// The supervisors, once the listeners run.
    handles: std::sync::OnceLock<BTreeMap<String, ListenerHandle>>,
    store: StoreHandle,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What runs from a push, by `{kind}/{listener}`.
    active: BTreeMap<String, Active>,
    reports: BTreeMap<String, PushReport>,
    refused: HashSet<String>,
    replay: replay::ReplayState,
}

impl std::fmt::Debug for Pushes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushes")
            .field("key", &self.key.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Pushes {
    /// The pushes of `config` for these listeners (`(name, shared)` in config order).
    pub fn new(
        config: &Config,
        key: PushKey,
        listeners: &[(String, Arc<Shared>)],
        store: StoreHandle,
    ) -> Pushes {
        let g = &config.gateway;
        Pushes {
            key,
            dir: dir(config),
            identity: [g.org.clone(), g.site.clone(), g.id.clone()],
            topics: GatewayTopics::new(&config.hub.topic_prefix, &g.org, &g.site, &g.id),
            listeners: listeners.iter().cloned().collect(),
            configured: config.listeners.clone(),
            handles: std::sync::OnceLock::new(),
            store,
            state: Mutex::new(State::default()),
        }
    }

    /// The latest outcome per listener (and of the latest replay push), for the heartbeat, with
    /// what each listener runs now (settings hash, switch).
    pub fn reports(&self) -> Vec<PushReport> {
        let mut reports: Vec<PushReport> = self
            .state
            .lock()
            .map(|s| {
                let replay = s.replay.report.iter().cloned();
                s.reports
                    .values()
                    .cloned()
                    .chain(replay)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for r in &mut reports {
            if let Some(running) = self
                .handles
                .get()
                .and_then(|h| h.get(&r.listener))
                .map(ListenerHandle::running)
                && r.change != "replay"
            {
                r.config_hash = running.target.config.settings_hash();
                r.disabled = !running.target.enabled;
            }
        }
        reports
    }

    /// Verifies a push and returns its bundle, or the reason it is refused (with detail).
    fn verify(&self, payload: &[u8]) -> Result<Bundle, (&'static str, String)> {
        verify(&self.key, &self.identity, payload)
    }

    /// At start: the last applied push of each listener, verified again, replaces the table of
    /// the configuration. A copy that no longer verifies is named and left aside.
    pub fn restore(&self, now_ms: i64) {
        self.restore_replay();
        for (name, shared) in &self.listeners {
            let path = self.dir.join(format!("{name}.push"));
            let payload = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warn!(listener = %name, path = %path.display(), cause = %e, "cannot read the last pushed mapping; serving on the configured one");
                    continue;
                }
            };
            let table = self.verify(&payload).map_err(|(_, d)| d).and_then(|b| {
                let Change::Mapping { listener, table } = &b.change else {
                    return Err(format!("the copy is a {} push", b.change.kind()));
                };
                if listener != name {
                    return Err(format!("the copy is for listener {listener}"));
                }
                MappingTable::parse(table)
                    .map(|t| (b.sequence, t))
                    .map_err(|e| e.to_string())
            });
            match table {
                Ok((sequence, table)) => {
                    let version = table.version().to_string();
                    shared.iface.mapping.replace(table);
                    info!(listener = %name, sequence, mapping_version = %version, "serving on the last pushed mapping");
                    let _ = version;
                    let report =
                        self.report(name, "mapping", Some(sequence), "restored", None, now_ms);
                    if let Ok(mut s) = self.state.lock() {
                        s.active.insert(
                            active_key("mapping", name),
                            Active {
                                sequence,
                                digest: push::digest(&payload),
                            },
                        );
                        s.reports.insert(name.clone(), report);
                    }
                }
                Err(why) => {
                    warn!(listener = %name, path = %path.display(), reason = %why, "the last pushed mapping does not verify; serving on the configured one");
                }
            }
        }
    }

    /// Handles one delivered push.
    pub async fn handle(&self, delivery: Delivery, now_ms: i64) {
        if !self.topics.is_push(&delivery.topic) {
            debug!(topic = %delivery.topic, "not a push topic of this gateway");
            return;
        }
        if delivery.topic == self.topics.push_replay() {
            return self.handle_replay(delivery, now_ms).await;
        }
        let digest = push::digest(&delivery.payload);
        if self.state.lock().is_ok_and(|s| s.refused.contains(&digest)) {
            debug!(push = %digest, "a refused push delivered again");
            return;
        }
        let bundle = match self.verify(&delivery.payload) {
            Ok(b) => b,
            Err((reason, detail)) => {
                // `…/push/{kind}/{listener}`: name the listener the topic names.
                let (kind, listener) = delivery
                    .topic
                    .rsplit_once("/push/")
                    .and_then(|(_, rest)| rest.split_once('/'))
                    .unwrap_or_default();
                let kind = ["mapping", "listener", "switch"]
                    .into_iter()
                    .find(|k| *k == kind)
                    .unwrap_or("");
                let to = Refusal {
                    listener,
                    kind,
                    sequence: None,
                };
                return self.refuse(to, reason, &detail, &digest, now_ms).await;
            }
        };
        let kind = bundle.change.kind();
        let listener = bundle.change.listener();
        let to = Refusal {
            listener,
            kind,
            sequence: Some(bundle.sequence),
        };
        if delivery.topic != self.topics.push(kind, listener) {
            let detail = "the push came on another topic than its kind's and listener's";
            return self
                .refuse(to, "wrong_topic", detail, &digest, now_ms)
                .await;
        }
        let Some(shared) = self.listeners.get(listener) else {
            let detail = "this gateway has no such listener";
            return self
                .refuse(to, "unknown_listener", detail, &digest, now_ms)
                .await;
        };
        let active = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.active.get(&active_key(kind, listener)).cloned());
        match decide(active.as_ref(), bundle.sequence, &digest) {
            Verdict::Same => {
                debug!(listener = %listener, kind, sequence = bundle.sequence, "the running push delivered again");
                return;
            }
            Verdict::Refuse(reason) => {
                let runs = active.map_or(0, |a| a.sequence);
                let detail = format!(
                    "sequence {} is not newer than the running {runs}",
                    bundle.sequence
                );
                return self.refuse(to, reason, &detail, &digest, now_ms).await;
            }
            Verdict::Apply => {}
        }
        let pushed = Pushed {
            bundle: &bundle,
            digest: &digest,
            payload: delivery.payload,
            now_ms,
        };
        match &bundle.change {
            Change::Mapping { table, .. } => self.apply_mapping(pushed, shared, table).await,
            Change::Listener { .. } | Change::Switch { .. } => {
                listener::apply(self, pushed).await;
            }
            Change::Replay { .. } => {
                let detail = "a replay comes on the gateway's push/replay topic";
                self.refuse(to, "wrong_topic", detail, &digest, now_ms)
                    .await;
            }
        }
    }

    /// Applies a verified, newer mapping push: parse, save, swap.
    async fn apply_mapping(&self, pushed: Pushed<'_>, shared: &Shared, table: &str) {
        let Pushed {
            bundle,
            digest,
            payload,
            now_ms,
        } = pushed;
        let listener = bundle.change.listener();
        let to = Refusal {
            listener,
            kind: "mapping",
            sequence: Some(bundle.sequence),
        };
        let table = match MappingTable::parse(table) {
            Ok(t) => t,
            Err(e) => {
                return self
                    .refuse(to, "invalid_mapping", &e.to_string(), digest, now_ms)
                    .await;
            }
        };
        if let Err(e) = self.keep(listener, "mapping", payload).await {
            // Not applied: a table the box could not boot from again must not run.
            let detail = format!("cannot keep the copy: {e}");
            return self.refuse(to, "not_saved", &detail, digest, now_ms).await;
        }
        let version = table.version().to_string();
        let previous = shared.iface.mapping.current().version().to_string();
        shared.iface.mapping.replace(table);
        info!(listener = %listener, sequence = bundle.sequence, scope = %bundle.scope, from = %previous, mapping_version = %version, "applied a pushed mapping");
        self.ran(listener, "mapping", bundle.sequence, digest, now_ms);
        let detail = format!(
            "listener {listener}: mapping {previous} -> {version} (sequence {}, scope {}, push sha256:{digest})",
            bundle.sequence, bundle.scope
        );
        self.audit("push.applied", detail, now_ms).await;
        self.run_waiting_replay(now_ms).await;
    }

    /// Writes the signed bytes of a `kind` push for `listener` as its last-known-good copy.
    async fn keep(&self, listener: &str, kind: &str, payload: Vec<u8>) -> Result<(), String> {
        let path = self.dir.join(file_name(listener, kind));
        tokio::task::spawn_blocking(move || save(&path, &payload))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
    }

    /// Records that `listener` runs this `kind` push now (reported `applied`).
    fn ran(&self, listener: &str, kind: &str, sequence: u64, digest: &str, now_ms: i64) {
        let report = self.report(listener, kind, Some(sequence), "applied", None, now_ms);
        if let Ok(mut s) = self.state.lock() {
            s.active.insert(
                active_key(kind, listener),
                Active {
                    sequence,
                    digest: digest.to_owned(),
                },
            );
            s.reports.insert(listener.to_owned(), report);
        }
    }

    /// The heartbeat entry of `listener` after an outcome of a `kind` push: what it runs now.
    fn report(
        &self,
        listener: &str,
        kind: &str,
        sequence: Option<u64>,
        outcome: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> PushReport {
        let running = self
            .handles
            .get()
            .and_then(|h| h.get(listener))
            .map(ListenerHandle::running);
        let configured = self.configured.iter().find(|l| l.name == listener);
        PushReport {
            listener: listener.to_owned(),
            sequence,
            outcome: outcome.to_owned(),
            reason: reason.map(str::to_owned),
            at_ms: now_ms,
            mapping_version: self
                .listeners
                .get(listener)
                .map(|s| s.iface.mapping.current().version().to_string())
                .unwrap_or_default(),
            change: kind.to_owned(),
            config_hash: running
                .as_ref()
                .map(|r| r.target.config.settings_hash())
                .or_else(|| configured.map(ListenerConfig::settings_hash))
                .unwrap_or_default(),
            disabled: running.is_some_and(|r| !r.target.enabled),
            replay: None,
        }
    }

    async fn refuse(
        &self,
        to: Refusal<'_>,
        reason: &'static str,
        detail: &str,
        digest: &str,
        now_ms: i64,
    ) {
        let Refusal {
            listener,
            kind,
            sequence,
        } = to;
        warn!(listener = %listener, kind, sequence, reason, detail = %detail, "refused a push; the listener keeps what it runs");
        // Only listeners of this configuration get an entry (the list stays bounded).
        let key = if self.listeners.contains_key(listener) {
            listener
        } else {
            ""
        };
        let report = self.report(key, kind, sequence, "rejected", Some(reason), now_ms);
        self.remember_refused(key, digest, report);
        let seq = sequence.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let detail = format!(
            "listener {listener}: {kind} sequence {seq} rejected ({reason}): {detail} (push sha256:{digest})"
        );
        self.audit("push.rejected", detail, now_ms).await;
    }

    /// Remembers a push that is not applied (a redelivery is no news) and its report.
    fn remember_refused(&self, listener: &str, digest: &str, report: PushReport) {
        if let Ok(mut s) = self.state.lock() {
            if s.refused.len() >= REMEMBERED_REFUSALS {
                s.refused.clear();
            }
            s.refused.insert(digest.to_owned());
            s.reports.insert(listener.to_owned(), report);
        }
    }

    async fn audit(&self, kind: &str, detail: String, now_ms: i64) {
        if let Err(e) = self.store.audit(kind, detail, now_ms).await {
            warn!(cause = %e, kind, "a push outcome was not written to the audit trail");
        }
    }
}

/// Verifies a push for the gateway `identity` (org, site, id) and returns its bundle, or the
/// reason it is refused (with detail).
fn verify(
    key: &PushKey,
    identity: &[String; 3],
    payload: &[u8],
) -> Result<Bundle, (&'static str, String)> {
    let bundle = push::open(payload, key).map_err(|e| (e.reason(), e.to_string()))?;
    let [org, site, id] = identity;
    if !push::covers(&bundle.scope, org, site, id) {
        return Err((
            "not_for_this_gateway",
            format!("the push is for {:?}", bundle.scope),
        ));
    }
    Ok(bundle)
}

/// Whom a refusal is about, as far as the push could be read.
#[derive(Clone, Copy)]
struct Refusal<'a> {
    listener: &'a str,
    kind: &'static str,
    sequence: Option<u64>,
}

/// A verified push that is newer than what runs: what applying it needs.
struct Pushed<'a> {
    bundle: &'a Bundle,
    digest: &'a str,
    payload: Vec<u8>,
    now_ms: i64,
}

/// The key of what runs from a push: `{kind}/{listener}`.
fn active_key(kind: &str, listener: &str) -> String {
    format!("{kind}/{listener}")
}

/// The last-known-good copy's file name: `{listener}.push` for a mapping (as the first release
/// wrote it), `{listener}.{kind}.push` for the other kinds.
fn file_name(listener: &str, kind: &str) -> String {
    if kind == "mapping" {
        format!("{listener}.push")
    } else {
        format!("{listener}.{kind}.push")
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never a mix.
fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("push.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The pushed mapping `listener` of `config` boots with, read by another process (`status`,
/// `quarantine replay`): its sequence and table, verified with `key` as the agent verifies it
/// at start. `Ok(None)`: no pushed copy (the configured table runs); `Err`: a copy that does
/// not verify (the agent serves on the configured table and says why).
pub fn pushed_mapping(
    config: &Config,
    key: &PushKey,
    listener: &str,
) -> Result<Option<(u64, MappingTable)>, String> {
    let path = dir(config).join(format!("{listener}.push"));
    let payload = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bundle = push::open(&payload, key).map_err(|e| e.to_string())?;
    let g = &config.gateway;
    if !push::covers(&bundle.scope, &g.org, &g.site, &g.id) {
        return Err(format!("the copy is for {:?}", bundle.scope));
    }
    match bundle.change {
        Change::Mapping { listener: l, table } if l == listener => MappingTable::parse(&table)
            .map(|t| Some((bundle.sequence, t)))
            .map_err(|e| e.to_string()),
        _ => Err("the copy is not this listener's mapping".to_owned()),
    }
}

/// Applies pushes as they arrive until shutdown.
pub async fn run(
    pushes: Arc<Pushes>,
    mut inbox: mpsc::Receiver<Delivery>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            d = inbox.recv() => match d {
                Some(d) => pushes.handle(d, crate::store::now_ms()).await,
                None => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

mod replay;

#[cfg(test)]
mod tests;
