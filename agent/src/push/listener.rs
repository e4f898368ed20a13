//! Listener pushes on the box: a listener's settings ([`Change::Listener`]) and its switch
//! ([`Change::Switch`]), applied by the listener's supervisor
//! ([`crate::listener::supervisor`]) with a graceful rebind, rolled back when the new socket
//! cannot be bound.
//!
//! After the checks every push gets (`super`: signature, scope, topic, listener, sequence), in
//! this order: the pushed settings are laid over the configured listener and validated as the
//! configuration file is (`Listener::with_pushed`: same rules, no clash with the other
//! listeners); the supervisor binds the new socket (or closes, or opens); only then is the
//! signed push written as the last-known-good copy (`pushed/{listener}.listener.push`,
//! `pushed/{listener}.switch.push`) and reported `applied`. A bind that fails leaves the old
//! socket serving and the disk as it was, and is reported `rolled_back` with its reason
//! (`port_in_use`, `permission_denied`, `address_not_available`, `tls_unusable`, `bind_failed`).
//!
//! At start ([`start`]) the copies are verified again with the pinned key and the listener
//! starts on them whether or not the hub is reachable; pushed settings that cannot be bound at
//! start are rolled back by the agent itself to the configured ones (log, audit
//! `push.rolled_back`, heartbeat), the switch kept. The copy stays on disk: the next start tries
//! it again (central IT's choice stands until a new push).
//!
//! No PHI: logs and the audit name listener, kind, sequence, addresses and hashes only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hl7edge_protocol::push::{self, Change, PushKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{Active, ListenerHandle, Pushed, Pushes, active_key, file_name};
use crate::config::{Config, Listener as ListenerConfig};
use crate::listener::supervisor::{self, SetError, Target};
use crate::listener::{BindError, Shared};

/// The fixed word for why a listener could not take new settings.
pub fn bind_reason(e: &BindError) -> &'static str {
    match e {
        BindError::Bind { source, .. } => match source.kind() {
            std::io::ErrorKind::AddrInUse => "port_in_use",
            std::io::ErrorKind::PermissionDenied => "permission_denied",
            std::io::ErrorKind::AddrNotAvailable => "address_not_available",
            _ => "bind_failed",
        },
        BindError::Tls(_) => "tls_unusable",
    }
}

impl Pushes {
    /// Hands over the running listeners' supervisors (once, after they started).
    pub fn attach(&self, handles: Vec<(String, ListenerHandle)>) {
        let _ = self.handles.set(handles.into_iter().collect());
    }

    /// The directory for relative paths in pushed settings.
    fn base_dir(&self) -> PathBuf {
        base_dir(&self.dir)
    }

    /// The listener's target from its last-known-good copies (verified again), or as
    /// configured. Copies that do not verify are named and left aside.
    fn restore_listener(&self, configured: &ListenerConfig, now_ms: i64) -> Target {
        let name = &configured.name;
        let copies = Copies {
            key: &self.key,
            identity: &self.identity,
            dir: &self.dir,
            all: &self.configured,
        };
        let mut target = Target {
            config: configured.clone(),
            enabled: true,
        };
        for kind in ["listener", "switch"] {
            match copies.lay_over(configured, kind, &mut target) {
                None => {}
                Some(Ok((sequence, digest))) => {
                    info!(listener = %name, kind, sequence, enabled = target.enabled, config_hash = %target.config.settings_hash(), "starting on the last pushed listener change");
                    let report = self.report(name, kind, Some(sequence), "restored", None, now_ms);
                    if let Ok(mut s) = self.state.lock() {
                        s.active
                            .insert(active_key(kind, name), Active { sequence, digest });
                        s.reports.insert(name.clone(), report);
                    }
                }
                Some(Err(why)) => {
                    warn!(listener = %name, kind, reason = %why, "the last pushed listener change does not verify; starting without it");
                }
            }
        }
        target
    }

    /// Records a listener change that was not applied (the listener keeps what it ran).
    async fn rolled_back(
        &self,
        to: super::Refusal<'_>,
        reason: &'static str,
        detail: &str,
        digest: &str,
        now_ms: i64,
    ) {
        let super::Refusal {
            listener,
            kind,
            sequence,
        } = to;
        warn!(listener = %listener, kind, sequence, reason, detail = %detail, "rolled back a listener push; the listener keeps what it ran");
        let report = self.report(
            listener,
            kind,
            sequence,
            "rolled_back",
            Some(reason),
            now_ms,
        );
        self.remember_refused(listener, digest, report);
        let seq = sequence.unwrap_or_default();
        let detail = format!(
            "listener {listener}: {kind} sequence {seq} rolled back ({reason}): {detail} (push sha256:{digest})"
        );
        self.audit("push.rolled_back", detail, now_ms).await;
    }
}

/// The directory for relative paths in pushed settings: the data directory (where the queue
/// database and `pushed/` are).
fn base_dir(pushed: &Path) -> PathBuf {
    pushed.parent().unwrap_or(Path::new("/")).to_path_buf()
}

/// The last-known-good copies of a gateway, read as the agent reads them at start.
struct Copies<'a> {
    key: &'a PushKey,
    identity: &'a [String; 3],
    dir: &'a Path,
    /// The listeners as configured.
    all: &'a [ListenerConfig],
}

impl Copies<'_> {
    /// Lays the copy of `kind` for `configured` over `target`: `None` when there is none,
    /// the copy's sequence and digest, or why it does not verify (then `target` is unchanged).
    fn lay_over(
        &self,
        configured: &ListenerConfig,
        kind: &str,
        target: &mut Target,
    ) -> Option<Result<(u64, String), String>> {
        let name = &configured.name;
        let path = self.dir.join(file_name(name, kind));
        let payload = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
        };
        let bundle = match super::verify(self.key, self.identity, &payload) {
            Ok(b) => b,
            Err((_, detail)) => return Some(Err(format!("{}: {detail}", path.display()))),
        };
        if bundle.change.listener() != name || bundle.change.kind() != kind {
            return Some(Err(format!(
                "{}: a {} push for listener {}",
                path.display(),
                bundle.change.kind(),
                bundle.change.listener()
            )));
        }
        match &bundle.change {
            Change::Listener { settings, .. } => {
                let origin = PathBuf::from(file_name(name, kind));
                match configured.with_pushed(settings, &origin, self.all, &base_dir(self.dir)) {
                    Ok(config) => target.config = config,
                    Err(e) => return Some(Err(e.to_string())),
                }
            }
            Change::Switch { enabled, .. } => target.enabled = *enabled,
            _ => return Some(Err("not a listener change".to_owned())),
        }
        Some(Ok((bundle.sequence, push::digest(&payload))))
    }
}

/// What each listener of `config` runs after the last-known-good copies in `pushed/` (as the
/// agent starts on them, before any bind), for `status`; `None` for a listener without copies
/// that verify. Reads files only.
pub fn pushed_targets(config: &Config) -> Result<Vec<Option<Target>>, String> {
    let Some(key_path) = &config.hub.push_key else {
        return Ok(vec![None; config.listeners.len()]);
    };
    let key = super::load_key(key_path)?;
    let g = &config.gateway;
    let identity = [g.org.clone(), g.site.clone(), g.id.clone()];
    let dir = super::dir(config);
    let copies = Copies {
        key: &key,
        identity: &identity,
        dir: &dir,
        all: &config.listeners,
    };
    Ok(config
        .listeners
        .iter()
        .map(|l| {
            let mut target = Target {
                config: l.clone(),
                enabled: true,
            };
            let laid = ["listener", "switch"]
                .into_iter()
                .filter(|kind| matches!(copies.lay_over(l, kind, &mut target), Some(Ok(_))))
                .count();
            (laid > 0).then_some(target)
        })
        .collect())
}

/// Applies a verified, newer listener push (settings or switch).
pub(super) async fn apply(pushes: &Pushes, pushed: Pushed<'_>) {
    let Pushed {
        bundle,
        digest,
        payload,
        now_ms,
    } = pushed;
    let (listener, kind, sequence) = (
        bundle.change.listener(),
        bundle.change.kind(),
        bundle.sequence,
    );
    let to = super::Refusal {
        listener,
        kind,
        sequence: Some(sequence),
    };
    let handles = pushes.handles.get();
    let (Some(handle), Some(configured)) = (
        handles.and_then(|h| h.get(listener)),
        pushes.configured.iter().find(|l| l.name == listener),
    ) else {
        let detail = "the listener is not running yet";
        return pushes
            .refuse(to, "not_running", detail, digest, now_ms)
            .await;
    };
    let running = handle.running();
    let mut asked = running.target.clone();
    match &bundle.change {
        Change::Listener { settings, .. } => {
            let others: Vec<ListenerConfig> = handles
                .into_iter()
                .flatten()
                .filter(|(name, _)| name.as_str() != listener)
                .map(|(_, h)| h.running().target.config)
                .collect();
            let origin = PathBuf::from(file_name(listener, kind));
            match configured.with_pushed(settings, &origin, &others, &pushes.base_dir()) {
                Ok(config) => asked.config = config,
                Err(e) => {
                    return pushes
                        .refuse(to, "invalid_config", &e.to_string(), digest, now_ms)
                        .await;
                }
            }
        }
        Change::Switch { enabled, .. } => asked.enabled = *enabled,
        _ => return,
    }
    let from = describe(&running.target);
    let to_text = describe(&asked);
    let step = match handle.set(asked).await {
        Ok(step) => step,
        Err(e) => {
            let reason = match &e {
                SetError::Bind(b) => bind_reason(b),
                SetError::Stopped => "not_running",
            };
            return pushes
                .rolled_back(to, reason, &e.to_string(), digest, now_ms)
                .await;
        }
    };
    if let Err(e) = pushes.keep(listener, kind, payload).await {
        // A change the box could not boot from again must not run: back to what ran.
        let detail = format!("cannot keep the copy: {e}");
        if let Err(undo) = handle.set(running.target).await {
            warn!(listener = %listener, cause = %undo, "cannot go back to the settings that ran");
        }
        return pushes
            .rolled_back(to, "not_saved", &detail, digest, now_ms)
            .await;
    }
    info!(listener = %listener, kind, sequence, scope = %bundle.scope, step = ?step, from = %from, to = %to_text, "applied a pushed listener change");
    pushes.ran(listener, kind, sequence, digest, now_ms);
    let detail = format!(
        "listener {listener}: {kind} {from} -> {to_text} ({step:?}, sequence {sequence}, scope {}, push sha256:{digest})",
        bundle.scope
    );
    pushes.audit("push.applied", detail, now_ms).await;
}

/// `on 0.0.0.0:2575 (settings 0123456789abcdef)` or `off (...)`: for logs and the audit.
fn describe(target: &Target) -> String {
    let hash = target.config.settings_hash();
    if target.enabled {
        format!("on {} (settings {hash})", target.config.bind)
    } else {
        format!("off (settings {hash})")
    }
}

/// Starts listener `configured`: on its last-known-good pushed settings and switch when there
/// are pushes, rolled back to the configured settings when the pushed ones cannot be bound.
pub async fn start(
    pushes: Option<&Pushes>,
    configured: &ListenerConfig,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    now_ms: i64,
) -> Result<(ListenerHandle, JoinHandle<()>), BindError> {
    let as_configured = Target {
        config: configured.clone(),
        enabled: true,
    };
    let Some(pushes) = pushes else {
        return supervisor::start(as_configured, shared, shutdown).await;
    };
    let restored = pushes.restore_listener(configured, now_ms);
    let error =
        match supervisor::start(restored.clone(), Arc::clone(&shared), shutdown.clone()).await {
            Ok(started) => return Ok(started),
            Err(e) if restored.config != *configured => e,
            Err(e) => return Err(e),
        };
    let name = &configured.name;
    // The push stays the newest accepted one: an older push is still a downgrade, and the same
    // push delivered again is no change (the next start tries it again).
    let sequence = pushes
        .state
        .lock()
        .ok()
        .and_then(|s| s.active.get(&active_key("listener", name)).cloned())
        .map_or(0, |a| a.sequence);
    let fallback = Target {
        config: configured.clone(),
        enabled: restored.enabled,
    };
    let started = supervisor::start(fallback, shared, shutdown).await?;
    let reason = bind_reason(&error);
    warn!(listener = %name, sequence, reason, cause = %error, "the pushed listener settings cannot be bound at start; rolled back to the configured ones");
    let report = pushes.report(
        name,
        "listener",
        Some(sequence),
        "rolled_back",
        Some(reason),
        now_ms,
    );
    if let Ok(mut s) = pushes.state.lock() {
        s.reports.insert(name.clone(), report);
    }
    let detail = format!(
        "listener {name}: listener sequence {sequence} rolled back at start ({reason}): {error}; serving on the configured settings"
    );
    pushes.audit("push.rolled_back", detail, now_ms).await;
    Ok(started)
}
