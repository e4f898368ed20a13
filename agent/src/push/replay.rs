//! A replay push on the box: re-runs the quarantined messages its filter takes, through the
//! running agent's listeners and writer ([`crate::replay::run`]), once per sequence.
//!
//! Invariants:
//! - It runs only when its signature verifies with the pinned key, its scope covers this
//!   gateway, it came on this gateway's replay topic, the listener it names (if any) is one
//!   of this configuration, and its sequence is newer than the last replay run
//!   ([`super::decide`], the no-downgrade rule).
//! - A replay that follows a mapping push (`after_mapping`) waits until the listeners it
//!   names run that mapping: retained pushes on different topics reach a box that was
//!   offline in no set order. It is reported `waiting` and runs when the mapping push is
//!   applied (or at its next delivery).
//! - A replay that ran to the end is kept as `pushed/replay.push` (the signed bytes, saved as
//!   a mapping push is): at start ([`Pushes::restore_replay`]) it is verified again and its
//!   sequence is the one that ran, so the retained push delivered again on every reconnect
//!   and after a restart does not run again. A replay that stopped (store full) is not kept:
//!   its next delivery runs it again, and the entries it replayed are no longer open, so no
//!   message becomes a second record.
//! - Every outcome is a log line, an audit line (`push.applied` with the counts,
//!   `push.rejected`, `push.failed`) and the replay entry of the heartbeat's push reports.
//!   No PHI: counts, the filter (a listener name, an error code, times), sequence, scope,
//!   hash.

use hl7edge_protocol::push::{self, Change, ReplayFilter};
use hl7edge_protocol::telemetry::{PushReport, ReplayCounts};
use tracing::{debug, info, warn};

use super::{Active, Delivery, Pushes, REMEMBERED_REFUSALS, Verdict, decide, save};

/// The file the last replay that ran is kept in, in `pushed/`.
const FILE: &str = "replay.push";

/// The replay push that ran last, and the latest replay outcome.
#[derive(Debug, Default)]
pub(super) struct ReplayState {
    pub(super) active: Option<Active>,
    pub(super) report: Option<PushReport>,
    /// A replay that waits for the mapping push it follows (`after_mapping`).
    pub(super) waiting: Option<Delivery>,
}

/// The filter in words for logs and the audit trail: `listener lab, error code 103, received
/// from ... to ...` (names, codes and times only).
pub fn describe(filter: &ReplayFilter) -> String {
    let mut parts = vec![match &filter.listener {
        Some(l) => format!("listener {l}"),
        None => "every listener".to_owned(),
    }];
    if let Some(code) = filter.error_code {
        parts.push(format!("error code {code}"));
    }
    if let Some(t) = filter.since_ms {
        parts.push(format!("received from {}", crate::cli::text::utc(t)));
    }
    if let Some(t) = filter.until_ms {
        parts.push(format!("received before {}", crate::cli::text::utc(t)));
    }
    parts.join(", ")
}

impl Pushes {
    /// At start: the replay that ran last (verified again) is the one a redelivery must not
    /// run again. A copy that no longer verifies is named and left aside.
    pub(super) fn restore_replay(&self) {
        let path = self.dir.join(FILE);
        let payload = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                warn!(path = %path.display(), cause = %e, "cannot read the last replay push; a redelivered one runs again");
                return;
            }
        };
        match self.verify(&payload) {
            Ok(b) if matches!(b.change, Change::Replay { .. }) => {
                debug!(sequence = b.sequence, "the last replay push that ran");
                if let Ok(mut s) = self.state.lock() {
                    s.replay.active = Some(Active {
                        sequence: b.sequence,
                        digest: push::digest(&payload),
                    });
                }
            }
            Ok(_) => {
                warn!(path = %path.display(), "the last replay push is not a replay; a redelivered one runs again");
            }
            Err((_, why)) => {
                warn!(path = %path.display(), reason = %why, "the last replay push does not verify; a redelivered one runs again");
            }
        }
    }

    /// Handles a delivery on this gateway's replay topic.
    pub(super) async fn handle_replay(&self, delivery: Delivery, now_ms: i64) {
        let digest = push::digest(&delivery.payload);
        if self.state.lock().is_ok_and(|s| s.refused.contains(&digest)) {
            debug!(push = %digest, "a refused replay push delivered again");
            return;
        }
        let bundle = match self.verify(&delivery.payload) {
            Ok(b) => b,
            Err((reason, detail)) => {
                let refusal = Refusal::new(None, reason, detail);
                return self.refuse_replay(refusal, &digest, now_ms).await;
            }
        };
        let seq = Some(bundle.sequence);
        let Change::Replay {
            filter,
            after_mapping,
        } = &bundle.change
        else {
            let detail = "the push came on the replay topic and is not a replay".to_owned();
            let refusal = Refusal::new(seq, "wrong_topic", detail);
            return self.refuse_replay(refusal, &digest, now_ms).await;
        };
        if let Some(l) = &filter.listener
            && !self.listeners.contains_key(l)
        {
            let detail = format!("this gateway has no listener {l}");
            let refusal = Refusal::new(seq, "unknown_listener", detail);
            return self.refuse_replay(refusal, &digest, now_ms).await;
        }
        let active = self.state.lock().ok().and_then(|s| s.replay.active.clone());
        match decide(active.as_ref(), bundle.sequence, &digest) {
            Verdict::Same => {
                info!(
                    sequence = bundle.sequence,
                    "a replay push that already ran, delivered again; not run again"
                );
                return;
            }
            Verdict::Refuse(reason) => {
                let runs = active.map_or(0, |a| a.sequence);
                let detail = format!(
                    "sequence {} is not newer than the replay {runs} that ran",
                    bundle.sequence
                );
                let refusal = Refusal::new(seq, reason, detail);
                return self.refuse_replay(refusal, &digest, now_ms).await;
            }
            Verdict::Apply => {}
        }
        let listener = filter.listener.clone().unwrap_or_default();
        if let Some(min) = *after_mapping
            && !self.mappings_at_least(filter, min)
        {
            info!(
                sequence = bundle.sequence,
                after_mapping = min,
                "a replay push waits for the mapping push it follows; it runs once that is applied"
            );
            let report = self.replay_report(
                &listener,
                seq,
                "waiting",
                Some("mapping_not_applied"),
                now_ms,
            );
            self.set_replay_report(report, None);
            if let Ok(mut s) = self.state.lock() {
                s.replay.waiting = Some(delivery);
            }
            return;
        }
        let what = describe(filter);
        info!(sequence = bundle.sequence, scope = %bundle.scope, filter = %what, "replaying quarantined messages");
        let mut report = self.replay_report(&listener, seq, "applied", None, now_ms);
        let (done, stopped) =
            match crate::replay::run(&self.store, &self.listeners, filter, now_ms).await {
                Ok(done) => (done, None),
                Err(stopped) => (stopped.done, Some(stopped)),
            };
        report.replay = Some(ReplayCounts {
            replayed: done.replayed,
            still_quarantined: done.still_quarantined,
        });
        let counts = format!(
            "{} replayed, {} still quarantined",
            done.replayed, done.still_quarantined
        );
        let detail = format!(
            "replay sequence {} ({what}; scope {}): {counts} (push sha256:{digest})",
            bundle.sequence, bundle.scope
        );
        if let Some(stopped) = stopped {
            // Not kept: its next delivery runs it again (what it replayed is no longer open).
            warn!(sequence = bundle.sequence, replayed = done.replayed, reason = stopped.reason(), cause = %stopped.source, "a replay push stopped before the end; it runs again when it is delivered again");
            report.outcome = "failed".to_owned();
            report.reason = Some(stopped.reason().to_owned());
            self.set_replay_report(report, None);
            let detail = format!("{detail}: stopped ({})", stopped.reason());
            return self.audit("push.failed", detail, now_ms).await;
        }
        let path = self.dir.join(FILE);
        let payload = delivery.payload;
        let saved = tokio::task::spawn_blocking(move || save(&path, &payload)).await;
        if let Err(e) = saved
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            // It ran; a redelivery runs it again, which replays only what is still open.
            warn!(sequence = bundle.sequence, cause = %e, "cannot keep the replay push that ran; a redelivery runs it again");
        }
        info!(
            sequence = bundle.sequence,
            replayed = done.replayed,
            still_quarantined = done.still_quarantined,
            "replayed quarantined messages"
        );
        let active = Active {
            sequence: bundle.sequence,
            digest: digest.clone(),
        };
        self.set_replay_report(report, Some(active));
        self.audit("push.applied", detail, now_ms).await;
    }

    /// Runs the replay that waited for a mapping push, if one waits (after a mapping push was
    /// applied).
    pub(super) async fn run_waiting_replay(&self, now_ms: i64) {
        let waiting = self
            .state
            .lock()
            .ok()
            .and_then(|mut s| s.replay.waiting.take());
        if let Some(delivery) = waiting {
            self.handle_replay(delivery, now_ms).await;
        }
    }

    /// True when the listeners `filter` names (every listener without one) run a pushed
    /// mapping of sequence `min` or later.
    fn mappings_at_least(&self, filter: &ReplayFilter, min: u64) -> bool {
        let Ok(s) = self.state.lock() else {
            return false;
        };
        let runs = |name: &String| {
            s.active
                .get(&super::active_key("mapping", name))
                .is_some_and(|a| a.sequence >= min)
        };
        match &filter.listener {
            Some(name) => runs(name),
            None => self.listeners.keys().all(runs),
        }
    }

    fn mapping_version(&self, listener: &str) -> String {
        self.listeners
            .get(listener)
            .map(|s| s.iface.mapping.current().version().to_string())
            .unwrap_or_default()
    }

    /// The heartbeat entry of the replay push: `outcome` (with `reason`), no counts yet.
    fn replay_report(
        &self,
        listener: &str,
        sequence: Option<u64>,
        outcome: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> PushReport {
        PushReport {
            listener: listener.to_owned(),
            sequence,
            outcome: outcome.to_owned(),
            reason: reason.map(str::to_owned),
            at_ms: now_ms,
            mapping_version: self.mapping_version(listener),
            change: "replay".to_owned(),
            replay: None,
            ..PushReport::default()
        }
    }

    fn set_replay_report(&self, report: PushReport, active: Option<Active>) {
        if let Ok(mut s) = self.state.lock() {
            if active.is_some() {
                s.replay.active = active;
            }
            s.replay.report = Some(report);
        }
    }

    async fn refuse_replay(&self, refusal: Refusal, digest: &str, now_ms: i64) {
        let Refusal {
            listener,
            sequence,
            reason,
            detail,
        } = refusal;
        warn!(sequence, reason, detail = %detail, "refused a replay push; nothing was replayed");
        if let Ok(mut s) = self.state.lock() {
            if s.refused.len() >= REMEMBERED_REFUSALS {
                s.refused.clear();
            }
            s.refused.insert(digest.to_owned());
        }
        let report = self.replay_report(&listener, sequence, "rejected", Some(reason), now_ms);
        self.set_replay_report(report, None);
        let seq = sequence.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let detail =
            format!("replay sequence {seq} rejected ({reason}): {detail} (push sha256:{digest})");
        self.audit("push.rejected", detail, now_ms).await;
    }
}

/// Why a replay push is refused (the report names no listener: a name this gateway does not
/// have is not echoed into telemetry).
struct Refusal {
    listener: String,
    sequence: Option<u64>,
    reason: &'static str,
    detail: String,
}

impl Refusal {
    fn new(sequence: Option<u64>, reason: &'static str, detail: String) -> Refusal {
        Refusal {
            listener: String::new(),
            sequence,
            reason,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_described_by_names_codes_and_times_only() {
        assert_eq!(describe(&ReplayFilter::default()), "every listener");
        let f = ReplayFilter {
            listener: Some("lab".to_owned()),
            error_code: Some(103),
            since_ms: Some(0),
            until_ms: None,
        };
        assert_eq!(
            describe(&f),
            "listener lab, error code 103, received from 1970-01-01 00:00:00 UTC"
        );
    }
}
