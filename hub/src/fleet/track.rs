//! How much a counter of a listener rose within a recent window, from the cumulative values
//! successive heartbeats carry.
//!
//! A heartbeat's counters count since the agent started; what matters to an alert is what
//! happened lately. [`Rises`] turns successive values into dated increases and sums those
//! within the window.
//!
//! Invariants:
//! - An increase is dated when the hub saw the heartbeat that showed it.
//! - The first heartbeat a hub sees of a listener is a baseline, not news, unless the agent
//!   started within the window (then everything it counted happened within the window): a hub
//!   started next to a gateway that had errors yesterday shows no failure today.
//! - After an agent restart (its uptime went down) the new values are all new: they were
//!   counted after the previous heartbeat.
//! - Memory is bounded: increases older than the window are dropped, and at most
//!   [`MAX_ENTRIES`] are kept (the oldest two are merged into one, dated at the later).

use std::collections::VecDeque;

/// Most dated increases kept per counter.
pub const MAX_ENTRIES: usize = 512;

/// What the previous heartbeat of the same agent says about a new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The hub saw no earlier heartbeat of this listener; `recent_start` is true when the agent
    /// started within the window.
    FirstSight {
        /// The agent's uptime is within the window.
        recent_start: bool,
    },
    /// The agent restarted since the previous heartbeat: its counters began again at zero.
    Restart,
    /// The same run of the agent as the previous heartbeat.
    SameRun,
}

/// One counter's recent increases.
#[derive(Debug, Clone, Default)]
pub struct Rises {
    /// The value of the previous heartbeat.
    last: u64,
    /// `(seen at, increase)`, oldest first.
    recent: VecDeque<(i64, u64)>,
}

impl Rises {
    /// Takes the value `value` of a heartbeat seen at `seen_ms`; increases older than
    /// `window_ms` before it are dropped.
    pub fn observe(&mut self, value: u64, since: Since, seen_ms: i64, window_ms: i64) {
        let increase = match since {
            Since::FirstSight { recent_start: true } | Since::Restart => value,
            Since::FirstSight {
                recent_start: false,
            } => 0,
            // A value that went down without a restart (a store replaced underneath) starts over.
            Since::SameRun if value < self.last => value,
            Since::SameRun => value - self.last,
        };
        self.last = value;
        let oldest = seen_ms.saturating_sub(window_ms);
        while self.recent.front().is_some_and(|(at, _)| *at <= oldest) {
            self.recent.pop_front();
        }
        if increase == 0 {
            return;
        }
        if self.recent.len() >= MAX_ENTRIES
            && let Some((_, first)) = self.recent.pop_front()
            && let Some((_, second)) = self.recent.front_mut()
        {
            *second = second.saturating_add(first);
        }
        self.recent.push_back((seen_ms, increase));
    }

    /// The increases seen within the `window_ms` before `now_ms` (one seen exactly a window
    /// ago has left it).
    pub fn within(&self, now_ms: i64, window_ms: i64) -> u64 {
        let oldest = now_ms.saturating_sub(window_ms);
        self.recent
            .iter()
            .filter(|(at, _)| *at > oldest)
            .fold(0, |sum, (_, n)| sum.saturating_add(*n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn increases_count_within_the_window_and_then_no_more() {
        let mut r = Rises::default();
        r.observe(0, Since::FirstSight { recent_start: true }, 0, HOUR);
        r.observe(3, Since::SameRun, 60_000, HOUR);
        r.observe(5, Since::SameRun, 120_000, HOUR);
        assert_eq!(r.within(120_000, HOUR), 5);
        assert_eq!(r.within(60_000 + HOUR, HOUR), 2, "the first rise left");
        assert_eq!(r.within(120_000 + HOUR, HOUR), 0);
    }

    #[test]
    fn a_first_sight_of_an_old_agent_is_a_baseline_and_of_a_new_one_is_news() {
        let mut old = Rises::default();
        old.observe(
            40,
            Since::FirstSight {
                recent_start: false,
            },
            0,
            HOUR,
        );
        assert_eq!(old.within(0, HOUR), 0);
        old.observe(41, Since::SameRun, 1_000, HOUR);
        assert_eq!(old.within(1_000, HOUR), 1);
        let mut new = Rises::default();
        new.observe(2, Since::FirstSight { recent_start: true }, 0, HOUR);
        assert_eq!(new.within(0, HOUR), 2);
    }

    #[test]
    fn after_a_restart_the_new_values_are_new_and_zero_is_nothing() {
        let mut r = Rises::default();
        r.observe(
            7,
            Since::FirstSight {
                recent_start: false,
            },
            0,
            HOUR,
        );
        r.observe(0, Since::Restart, 1_000, HOUR);
        assert_eq!(r.within(1_000, HOUR), 0, "a clean restart is not a failure");
        r.observe(1, Since::SameRun, 2_000, HOUR);
        r.observe(2, Since::Restart, 3_000, HOUR);
        assert_eq!(r.within(3_000, HOUR), 3);
    }

    #[test]
    fn the_kept_increases_are_bounded_and_their_sum_kept() {
        let mut r = Rises::default();
        r.observe(0, Since::FirstSight { recent_start: true }, 0, HOUR);
        for i in 1..=(MAX_ENTRIES as u64 * 3) {
            r.observe(i, Since::SameRun, i64::try_from(i).unwrap(), HOUR);
        }
        assert!(r.recent.len() <= MAX_ENTRIES);
        assert_eq!(
            r.within(MAX_ENTRIES as i64 * 3, HOUR),
            MAX_ENTRIES as u64 * 3
        );
    }
}
