//! Silent feeds: whether a listener has been quiet far longer than it usually is at this hour of
//! day, decided from its message counts per hour (kept in the store's `source_rhythm`, so a
//! restart keeps what was learned).
//!
//! The decision is a pure function of the hourly counts, the time of the last message and the
//! time now (passed in): no clock, no IO.
//!
//! Invariants:
//! - The norm is learned only from the hours before the listener's last message: an outage in
//!   progress never teaches the listener that silence is normal.
//! - Nothing is judged before the listener has `learn_days` of history before its last message
//!   (a new listener, or one that never sent, is never silent).
//! - An hour of day in which the listener usually sends nothing adds nothing to the messages it
//!   "should" have sent: a feed quiet every night is not silent at night, however long the night.
//! - The work is bounded: at most `window_days` of hours are read and summed, whatever the
//!   counts or the length of the silence.

use std::collections::BTreeMap;
use std::time::Duration;

use hl7edge_protocol::telemetry::Rhythm;

/// Hours in the learned day.
pub const HOURS_PER_DAY: i64 = 24;

/// The `[silence]` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SilenceConfig {
    /// Whether listeners are watched at all.
    pub enabled: bool,
    /// Silent once the quiet time holds this many of the messages usually sent in it.
    pub factor: u32,
    /// Never silent before this long without a message.
    pub floor: Duration,
    /// History (before the last message) needed before anything is judged, in days.
    pub learn_days: u32,
    /// How many days of hourly counts the norm averages.
    pub window_days: u32,
    /// The length of an "hour" (one hour; shorter only for tests).
    pub hour: Duration,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            factor: 6,
            floor: Duration::from_secs(30 * 60),
            learn_days: 3,
            window_days: 14,
            hour: Duration::from_secs(3600),
        }
    }
}

impl SilenceConfig {
    /// The hour's length in milliseconds (at least 1).
    pub fn hour_ms(&self) -> i64 {
        i64::try_from(self.hour.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }
}

/// One listener's history: its message counts per hour (`period` = Unix ms / hour length),
/// and the first hour it was counted in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The hour counting began.
    pub since_period: i64,
    /// Messages per hour; hours without messages are absent.
    pub counts: BTreeMap<i64, u64>,
}

/// The listener's quiet time against its norm, or `None` while there is nothing to judge
/// (watching off, no message yet, not enough history).
pub fn assess(
    history: &History,
    last_message_ms: Option<i64>,
    now_ms: i64,
    cfg: &SilenceConfig,
) -> Option<Rhythm> {
    if !cfg.enabled {
        return None;
    }
    let last_ms = last_message_ms?;
    let hour_ms = cfg.hour_ms();
    let last_period = last_ms.div_euclid(hour_ms);
    let now_period = now_ms.div_euclid(hour_ms).max(last_period);
    let learn = i64::from(cfg.learn_days) * HOURS_PER_DAY;
    if last_period.saturating_sub(history.since_period) < learn.max(1) {
        return None;
    }
    let rate = hourly_rate(history, last_period, cfg);
    let quiet_ms = now_ms.saturating_sub(last_ms).max(0);
    let expected = expected_between(&rate, last_ms, now_ms, hour_ms, cfg);
    let now_hour = usize::try_from(now_period.rem_euclid(HOURS_PER_DAY)).unwrap_or(0);
    let usual_gap_s = (rate[now_hour] > 0.0)
        .then(|| (hour_ms as f64 / rate[now_hour] / 1000.0).ceil() as u64)
        .map(|s| s.max(1));
    let floor_ms = i64::try_from(cfg.floor.as_millis()).unwrap_or(i64::MAX);
    Some(Rhythm {
        quiet_s: u64::try_from(quiet_ms / 1000).unwrap_or(0),
        usual_gap_s,
        silent: quiet_ms >= floor_ms && expected >= f64::from(cfg.factor),
    })
}

/// Messages per hour for each hour of day, averaged over the `window_days` of whole hours
/// before `last_period` (hours without a row count as zero).
fn hourly_rate(history: &History, last_period: i64, cfg: &SilenceConfig) -> [f64; 24] {
    let window = i64::from(cfg.window_days.max(1)) * HOURS_PER_DAY;
    let start = history.since_period.max(last_period.saturating_sub(window));
    let mut sums = [0u64; 24];
    let mut hours = [0u32; 24];
    for period in start..last_period {
        let h = usize::try_from(period.rem_euclid(HOURS_PER_DAY)).unwrap_or(0);
        hours[h] += 1;
        sums[h] = sums[h].saturating_add(history.counts.get(&period).copied().unwrap_or(0));
    }
    let mut rate = [0.0; 24];
    for h in 0..24 {
        if hours[h] > 0 {
            rate[h] = sums[h] as f64 / f64::from(hours[h]);
        }
    }
    rate
}

/// The messages the norm says arrive in `(from_ms, to_ms]`, summed hour by hour over at most
/// `window_days` (a longer silence counts as that long: far past any sensible factor).
fn expected_between(
    rate: &[f64; 24],
    from_ms: i64,
    to_ms: i64,
    hour_ms: i64,
    cfg: &SilenceConfig,
) -> f64 {
    let max_span = (i64::from(cfg.window_days.max(1)) * HOURS_PER_DAY).saturating_mul(hour_ms);
    let from_ms = from_ms.max(to_ms.saturating_sub(max_span));
    let mut total = 0.0;
    let mut at = from_ms;
    while at < to_ms {
        let period = at.div_euclid(hour_ms);
        let end = period.saturating_add(1).saturating_mul(hour_ms).min(to_ms);
        if end <= at {
            break;
        }
        let h = usize::try_from(period.rem_euclid(HOURS_PER_DAY)).unwrap_or(0);
        total += rate[h] * (end - at) as f64 / hour_ms as f64;
        at = end;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const DAY: i64 = 24 * H;
    /// A Monday, 00:00 UTC.
    const T0: i64 = 1_796_947_200_000;

    fn cfg() -> SilenceConfig {
        SilenceConfig::default()
    }

    /// A lab that sends 30 messages an hour from 08:00 to 18:00 and nothing at night, for
    /// `days` days from T0; returns its history and the time of its last message.
    fn day_shift_lab(days: i64) -> (History, i64) {
        let mut h = History {
            since_period: T0 / H,
            counts: BTreeMap::new(),
        };
        for d in 0..days {
            for hour in 8..18 {
                h.counts.insert((T0 + d * DAY) / H + hour, 30);
            }
        }
        (h, T0 + (days - 1) * DAY + 18 * H - 60_000)
    }

    #[test]
    fn a_listener_is_not_judged_before_it_has_learned_enough_days() {
        let (h, last) = day_shift_lab(2);
        assert_eq!(assess(&h, Some(last), last + DAY, &cfg()), None);
        let (h, last) = day_shift_lab(4);
        assert!(assess(&h, Some(last), last + 60_000, &cfg()).is_some());
    }

    #[test]
    fn a_listener_that_never_sent_is_never_silent() {
        let (h, _) = day_shift_lab(5);
        assert_eq!(assess(&h, None, T0 + 10 * DAY, &cfg()), None);
    }

    #[test]
    fn the_learned_rate_gives_the_usual_gap_of_the_hour() {
        let (h, last) = day_shift_lab(5);
        // Next morning 10:00: 30 an hour, one every two minutes.
        let r = assess(&h, Some(last), T0 + 5 * DAY + 10 * H, &cfg()).unwrap();
        assert_eq!(r.usual_gap_s, Some(120));
        // At night it usually sends nothing: no gap to speak of.
        let r = assess(&h, Some(last), T0 + 4 * DAY + 23 * H, &cfg()).unwrap();
        assert_eq!(r.usual_gap_s, None);
    }

    #[test]
    fn quiet_night_hours_are_not_silence() {
        let (h, last) = day_shift_lab(5);
        // From 17:59 to 07:59 next morning: fourteen hours without a message.
        let r = assess(&h, Some(last), T0 + 5 * DAY + 8 * H - 60_000, &cfg()).unwrap();
        assert_eq!(r.quiet_s, 14 * 3600);
        assert!(!r.silent, "{r:?}");
        // And just after 08:00, before the usual gaps add up.
        let r = assess(&h, Some(last), T0 + 5 * DAY + 8 * H + 5 * 60_000, &cfg()).unwrap();
        assert!(!r.silent, "{r:?}");
    }

    #[test]
    fn a_stop_during_busy_hours_is_silence_after_the_threshold() {
        let (mut h, _) = day_shift_lab(5);
        // Day 6: sends from 08:00, last message at 10:00, then stops.
        for hour in 8..10 {
            h.counts.insert((T0 + 5 * DAY) / H + hour, 30);
        }
        let last = T0 + 5 * DAY + 10 * H;
        // Six usual gaps of two minutes = 12 minutes, but the floor is 30 minutes.
        let r = assess(&h, Some(last), last + 20 * 60_000, &cfg()).unwrap();
        assert!(!r.silent, "under the floor: {r:?}");
        let r = assess(&h, Some(last), last + 31 * 60_000, &cfg()).unwrap();
        assert!(r.silent, "{r:?}");
        assert_eq!((r.quiet_s, r.usual_gap_s), (31 * 60, Some(120)));
        // With a short floor, the factor decides: 6 messages' worth is 12 minutes.
        let short = SilenceConfig {
            floor: Duration::from_secs(60),
            ..cfg()
        };
        assert!(
            !assess(&h, Some(last), last + 11 * 60_000, &short)
                .unwrap()
                .silent
        );
        assert!(
            assess(&h, Some(last), last + 13 * 60_000, &short)
                .unwrap()
                .silent
        );
    }

    #[test]
    fn a_stop_in_the_evening_is_silence_the_next_morning_after_the_threshold() {
        let (h, last) = day_shift_lab(5);
        // The night was long past the floor; six messages' worth is the threshold: half a
        // message in the evening's last minute, then eleven minutes of the morning.
        let morning = T0 + 5 * DAY + 8 * H;
        assert!(
            !assess(&h, Some(last), morning + 10 * 60_000, &cfg())
                .unwrap()
                .silent
        );
        assert!(
            assess(&h, Some(last), morning + 13 * 60_000, &cfg())
                .unwrap()
                .silent
        );
    }

    #[test]
    fn an_outage_in_progress_does_not_teach_that_silence_is_normal() {
        let (h, last) = day_shift_lab(5);
        // Ten days later it is still silent at 10:00, the norm unchanged.
        let r = assess(&h, Some(last), T0 + 15 * DAY + 10 * H, &cfg()).unwrap();
        assert!(r.silent);
        assert_eq!(r.usual_gap_s, Some(120));
    }

    #[test]
    fn a_message_ends_the_silence() {
        let (mut h, _) = day_shift_lab(5);
        let now = T0 + 5 * DAY + 11 * H;
        h.counts.insert(now / H, 1);
        let r = assess(&h, Some(now - 1_000), now, &cfg()).unwrap();
        assert_eq!(r.quiet_s, 1);
        assert!(!r.silent);
    }

    #[test]
    fn watching_can_be_turned_off() {
        let (h, last) = day_shift_lab(5);
        let off = SilenceConfig {
            enabled: false,
            ..cfg()
        };
        assert_eq!(assess(&h, Some(last), last + 10 * DAY, &off), None);
    }

    #[test]
    fn a_short_hour_scales_the_whole_day_for_tests() {
        let short = SilenceConfig {
            hour: Duration::from_millis(100),
            floor: Duration::from_millis(500),
            learn_days: 1,
            window_days: 1,
            ..cfg()
        };
        // 10 messages per 100 ms hour, for 3 s (more than one 2.4 s day).
        let mut h = History {
            since_period: 1_000,
            counts: BTreeMap::new(),
        };
        for p in 1_000..1_030 {
            h.counts.insert(p, 10);
        }
        let last = 1_030 * 100 - 5;
        assert!(!assess(&h, Some(last), last + 400, &short).unwrap().silent);
        let r = assess(&h, Some(last), last + 600, &short).unwrap();
        assert!(r.silent, "{r:?}");
        assert_eq!(r.usual_gap_s, Some(1), "rounded up to a second");
    }

    #[test]
    fn times_far_apart_or_backwards_cost_little_and_do_not_panic() {
        let (h, last) = day_shift_lab(5);
        for now in [i64::MIN, -1, 0, last - DAY, i64::MAX] {
            let _ = assess(&h, Some(last), now, &cfg());
        }
        let _ = assess(&h, Some(i64::MIN), i64::MAX, &cfg());
        let _ = assess(&h, Some(i64::MAX), i64::MIN, &cfg());
    }
}
