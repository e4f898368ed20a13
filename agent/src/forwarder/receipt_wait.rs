//! Receipt mode's decisions, without IO: when to look for rows whose custody receipt did not
//! come in time, and which rows a sweep publishes again. Time is passed in: `now` (the
//! monotonic clock) paces the checks, `now_ms` (the wall clock, which the store's
//! `awaiting_receipt.due_ms` is written in) says what is due.
//!
//! Invariants:
//! - The rows awaiting a receipt live in the store, never here: this holds one sweep's position
//!   and two times, whatever the backlog, so memory stays bounded.
//! - A check runs at most every [`ReceiptWait::check_every`] (a quarter of the timeout, 1 s to
//!   60 s): a row is published again between its due time and one check period later. A check
//!   asks the store for the earliest `due_ms` (one index lookup) and starts a sweep only when a
//!   row is due.
//! - A sweep reads due rows in seq order, from the lowest, so records published again keep
//!   their order per source; its reads go before reads of new rows (`state.rs`).
//! - A new sweep starts only when no row of the previous one is still waiting for its PUBACK
//!   (the PUBACK sets the row's next wait); otherwise it would publish that row once more.
//! - A connection on which the broker no longer has this gateway's session (CONNACK
//!   `session_present = 0`: it restarted without persistence, or the session expired) makes
//!   the next sweep take every row awaiting a receipt at once: such a broker has most likely
//!   lost what it held for the hub too.

use std::time::{Duration, Instant};

use super::state::Sweep;

/// The shortest period between two checks for due rows.
const MIN_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest period between two checks for due rows.
const MAX_CHECK_EVERY: Duration = Duration::from_secs(60);

/// When to publish again the rows whose receipt did not come.
#[derive(Debug, Clone)]
pub struct ReceiptWait {
    check_every: Duration,
    next_check: Instant,
    sweep: Option<Sweep>,
    everything_due: bool,
}

impl ReceiptWait {
    /// Waits for receipts `timeout` long; the first check is due at `now`.
    pub fn new(timeout: Duration, now: Instant) -> Self {
        ReceiptWait {
            check_every: (timeout / 4).clamp(MIN_CHECK_EVERY, MAX_CHECK_EVERY),
            next_check: now,
            sweep: None,
            everything_due: false,
        }
    }

    /// The period between two checks for due rows.
    pub fn check_every(&self) -> Duration {
        self.check_every
    }

    /// Whether to ask the store for the earliest due time now: no sweep runs, none of its rows
    /// still waits for a PUBACK (`republishing`), and the check period has passed.
    pub fn wants_check(&self, now: Instant, republishing: bool) -> bool {
        self.sweep.is_none() && !republishing && now >= self.next_check
    }

    /// The store's answer: the earliest `due_ms` of a row awaiting its receipt (`None`: no
    /// row awaits). Starts a sweep of every row due by `now_ms` (every row, after a lost
    /// session).
    pub fn on_check(&mut self, next_due_ms: Option<i64>, now: Instant, now_ms: i64) {
        self.next_check = now + self.check_every;
        let before_ms = if std::mem::take(&mut self.everything_due) {
            i64::MAX
        } else {
            now_ms
        };
        if next_due_ms.is_some_and(|due| due <= before_ms) {
            self.sweep = Some(Sweep {
                after_seq: 0,
                before_ms,
            });
        }
    }

    /// The running sweep's next read, if a sweep runs.
    pub fn sweep(&self) -> Option<Sweep> {
        self.sweep
    }

    /// A sweep read returned `rows` rows: none ends the sweep.
    pub fn on_sweep_read(&mut self, rows: usize) {
        if rows == 0 {
            self.sweep = None;
        }
    }

    /// Rows up to `seq` were handed to the client (or set aside) by the sweep: its next read
    /// starts after them.
    pub fn on_swept(&mut self, seq: i64) {
        if let Some(sweep) = &mut self.sweep {
            sweep.after_seq = sweep.after_seq.max(seq);
        }
    }

    /// The broker accepted a connection at `now`; without our session it has forgotten what
    /// it held, so every row awaiting a receipt is due at the next check, which is now.
    pub fn on_connack(&mut self, session_present: bool, now: Instant) {
        if !session_present {
            self.everything_due = true;
            self.next_check = now;
        }
    }

    /// The connection is gone: the sweep stops (what it published without a PUBACK is still
    /// due, and the next connection's first check finds it).
    pub fn on_connection_lost(&mut self, now: Instant) {
        self.sweep = None;
        self.next_check = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(60);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn checks_come_every_quarter_of_the_timeout_within_one_second_and_one_minute() {
        let t0 = Instant::now();
        assert_eq!(ReceiptWait::new(T, t0).check_every(), secs(15));
        assert_eq!(ReceiptWait::new(secs(2), t0).check_every(), secs(1));
        assert_eq!(ReceiptWait::new(secs(3600), t0).check_every(), secs(60));
    }

    #[test]
    fn a_sweep_starts_only_when_a_row_is_due_and_takes_what_is_due_by_now() {
        let t0 = Instant::now();
        let mut w = ReceiptWait::new(T, t0);
        assert!(w.wants_check(t0, false));
        w.on_check(None, t0, 1_000);
        assert_eq!(w.sweep(), None, "nothing awaits a receipt");
        assert!(!w.wants_check(t0 + secs(14), false), "not before 15 s");
        assert!(w.wants_check(t0 + secs(15), false));
        w.on_check(Some(50_000), t0 + secs(15), 16_000);
        assert_eq!(w.sweep(), None, "the oldest row is due later");
        w.on_check(Some(50_000), t0 + secs(30), 50_000);
        assert_eq!(
            w.sweep(),
            Some(Sweep {
                after_seq: 0,
                before_ms: 50_000
            })
        );
        assert!(!w.wants_check(t0 + secs(60), false), "a sweep runs");
    }

    #[test]
    fn a_sweep_walks_the_due_rows_in_seq_order_and_ends_on_an_empty_read() {
        let t0 = Instant::now();
        let mut w = ReceiptWait::new(T, t0);
        w.on_check(Some(0), t0, 10);
        w.on_sweep_read(3);
        w.on_swept(7);
        w.on_swept(5);
        assert_eq!(w.sweep().map(|s| s.after_seq), Some(7), "never backwards");
        w.on_sweep_read(0);
        assert_eq!(w.sweep(), None);
    }

    #[test]
    fn no_new_sweep_while_rows_published_again_wait_for_their_puback() {
        let t0 = Instant::now();
        let mut w = ReceiptWait::new(T, t0);
        w.on_check(Some(0), t0, 10);
        w.on_sweep_read(0);
        let later = t0 + secs(20);
        assert!(
            !w.wants_check(later, true),
            "the last sweep's rows are in flight"
        );
        assert!(w.wants_check(later, false));
    }

    #[test]
    fn a_broker_without_our_session_makes_every_awaiting_row_due_at_once() {
        let t0 = Instant::now();
        let mut w = ReceiptWait::new(T, t0);
        w.on_check(None, t0, 1_000);
        let t1 = t0 + secs(2);
        w.on_connack(true, t1);
        assert!(!w.wants_check(t1, false), "a kept session changes nothing");
        w.on_connack(false, t1);
        assert!(w.wants_check(t1, false));
        // The oldest row is due only in an hour, yet it goes now.
        w.on_check(Some(3_600_000), t1, 2_000);
        assert_eq!(w.sweep().map(|s| s.before_ms), Some(i64::MAX));
        w.on_sweep_read(0);
        w.on_check(Some(3_600_000), t1 + secs(15), 17_000);
        assert_eq!(w.sweep(), None, "only once");
    }

    #[test]
    fn a_lost_connection_stops_the_sweep_and_checks_again_on_the_next_one() {
        let t0 = Instant::now();
        let mut w = ReceiptWait::new(T, t0);
        w.on_check(Some(0), t0, 10);
        w.on_swept(40);
        w.on_connection_lost(t0 + secs(1));
        assert_eq!(w.sweep(), None);
        assert!(w.wants_check(t0 + secs(1), false));
        w.on_check(Some(0), t0 + secs(1), 20);
        assert_eq!(
            w.sweep().map(|s| s.after_seq),
            Some(0),
            "from the lowest row again"
        );
    }
}
