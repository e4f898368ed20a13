//! The watchdog gate: decides whether the process deserves a `WATCHDOG=1` ping.
//!
//! Each long-running loop the daemon depends on (the store writer, the forwarder) is *watched*: it
//! gets a [`Heartbeat`] handle and an allowed staleness. The gate is sans-IO: it never reads a
//! clock; callers pass `now`. It answers [`Verdict::Healthy`] only while every watched component has
//! beaten within its allowance.
//!
//! Idle is not stuck. A component beats
//! - after every unit of progress (a committed batch, a PUBACK, a reconnect attempt), and
//! - on a periodic tick of its loop while it waits for work (for example a 1 s interval in the
//!   same `select!` as its input channel),
//!
//! and does not beat while it is blocked inside one operation (an fsync that never returns, a
//! publish that never completes). A loop that is waiting has a turning tick and stays healthy; a
//! loop that is wedged stops ticking, its heartbeat goes stale, the pings stop and systemd restarts
//! the process. The heartbeat measures that the loop turns, not that the hub is reachable: a broker
//! that is down for hours is the forwarder's business (backoff, telemetry), not a reason to restart.
//!
//! Choose each allowance well above the tick period plus the slowest acceptable single operation
//! (a commit on a slow SD card can take seconds), and below `WatchdogSec` minus the ping interval,
//! so that a wedged loop is caught by systemd within one watchdog period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A cheap, clonable handle a component uses to report progress; safe to share across threads.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The gate's reference point; beats are stored as an offset from it.
    epoch: Instant,
    /// Nanoseconds from `epoch` to the latest beat.
    since_epoch: Arc<AtomicU64>,
}

impl Heartbeat {
    /// Records progress at `at`. A beat older than the latest one never moves it backwards.
    pub fn beat(&self, at: Instant) {
        let nanos =
            u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.since_epoch.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The time of the latest beat.
    pub fn last(&self) -> Instant {
        let since = Duration::from_nanos(self.since_epoch.load(Ordering::Relaxed));
        self.epoch.checked_add(since).unwrap_or(self.epoch)
    }
}

/// The gate's answer for one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every watched component has beaten within its allowance: ping.
    Healthy,
    /// A component has not beaten for longer than allowed: do not ping.
    Stuck {
        /// The component's name, as given to [`WatchdogGate::watch`].
        component: &'static str,
        /// How long ago it last beat.
        stale_for: Duration,
        /// Its allowance.
        allowed: Duration,
    },
}

impl Verdict {
    /// Whether a `WATCHDOG=1` ping is deserved.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Verdict::Healthy)
    }
}

/// A watched component.
#[derive(Debug)]
struct Watched {
    /// Name used in the verdict and the status line.
    name: &'static str,
    /// Longest time without a beat that still counts as healthy.
    allowed: Duration,
    /// Shared with the component.
    heartbeat: Heartbeat,
}

/// Decides from the components' heartbeats whether the process is making progress.
#[derive(Debug)]
pub struct WatchdogGate {
    /// Reference point for all heartbeats created by this gate.
    epoch: Instant,
    /// In registration order.
    components: Vec<Watched>,
}

impl WatchdogGate {
    /// A gate with no watched components (always healthy until one is added).
    pub fn new(now: Instant) -> Self {
        WatchdogGate {
            epoch: now,
            components: Vec::new(),
        }
    }

    /// Watches a component that must beat at least every `allowed`. Returns its heartbeat, which
    /// counts as having beaten at `now` (a component gets its full allowance to start).
    pub fn watch(&mut self, name: &'static str, allowed: Duration, now: Instant) -> Heartbeat {
        let heartbeat = Heartbeat {
            epoch: self.epoch,
            since_epoch: Arc::new(AtomicU64::new(0)),
        };
        heartbeat.beat(now);
        self.components.push(Watched {
            name,
            allowed,
            heartbeat: heartbeat.clone(),
        });
        heartbeat
    }

    /// The verdict at `now`: the first component (in registration order) past its allowance, or
    /// healthy.
    pub fn verdict(&self, now: Instant) -> Verdict {
        self.components
            .iter()
            .find_map(|c| {
                let stale_for = now.saturating_duration_since(c.heartbeat.last());
                (stale_for > c.allowed).then_some(Verdict::Stuck {
                    component: c.name,
                    stale_for,
                    allowed: c.allowed,
                })
            })
            .unwrap_or(Verdict::Healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn new_component_is_healthy_for_its_whole_allowance() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let _writer = gate.watch("store writer", 20 * SEC, t0);
        assert_eq!(gate.verdict(t0 + 20 * SEC), Verdict::Healthy);
    }

    #[test]
    fn component_silent_past_its_allowance_is_named_as_stuck() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 20 * SEC, t0);
        let _forwarder = gate.watch("forwarder", 20 * SEC, t0);
        writer.beat(t0 + 5 * SEC);
        let verdict = gate.verdict(t0 + 21 * SEC);
        assert_eq!(
            verdict,
            Verdict::Stuck {
                component: "forwarder",
                stale_for: 21 * SEC,
                allowed: 20 * SEC
            }
        );
        assert!(!verdict.is_healthy());
    }

    #[test]
    fn idle_loop_that_keeps_ticking_stays_healthy() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 5 * SEC, t0);
        for tick in 1..=600 {
            let now = t0 + tick * SEC;
            writer.beat(now);
            assert!(
                gate.verdict(now + SEC).is_healthy(),
                "unhealthy after idle tick {tick}"
            );
        }
    }

    #[test]
    fn loop_blocked_in_one_operation_turns_stuck_and_recovers_on_its_next_beat() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 5 * SEC, t0);
        writer.beat(t0 + SEC);
        assert!(!gate.verdict(t0 + 7 * SEC).is_healthy());
        writer.beat(t0 + 7 * SEC);
        assert!(gate.verdict(t0 + 8 * SEC).is_healthy());
    }

    #[test]
    fn older_beat_does_not_move_the_heartbeat_back() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 5 * SEC, t0);
        writer.beat(t0 + 10 * SEC);
        writer.beat(t0 + 2 * SEC);
        assert_eq!(writer.last(), t0 + 10 * SEC);
    }

    #[test]
    fn beat_from_another_thread_reaches_the_gate() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let forwarder = gate.watch("forwarder", 5 * SEC, t0);
        let joined = std::thread::spawn(move || forwarder.beat(t0 + 30 * SEC)).join();
        assert!(joined.is_ok());
        assert!(gate.verdict(t0 + 33 * SEC).is_healthy());
    }

    #[test]
    fn gate_without_components_is_healthy() {
        let t0 = Instant::now();
        assert!(WatchdogGate::new(t0).verdict(t0 + 3600 * SEC).is_healthy());
    }
}
