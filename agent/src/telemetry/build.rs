//! Assembling a [`Heartbeat`] from one reading of the agent's counters,
//! without IO: the readings come from [`super::collect`], the clock from the
//! caller.
//!
//! Invariants:
//! - Everything here is a count, a size, a time, a name from the config or
//!   a terminology code: no field is taken from a message's content.
//! - The totals in [`Counters`] are the sums of the per-source readings, so
//!   the two never disagree.
//! - The fill estimate is `None` unless the queue's live bytes grew over the
//!   last interval: a draining or steady queue never looks like it will fill.

use std::time::Duration;

use hl7edge_protocol::telemetry::{
    Counters, Custody, GatewayId, HEARTBEAT_SCHEMA_VERSION, Heartbeat, QueueStats, SourceStats,
    StorageStats,
};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Weight of the newest interval's growth rate in the smoothed rate.
const RATE_WEIGHT: f64 = 0.5;

/// What stays the same while the agent runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The configured gateway identity.
    pub gateway: GatewayId,
    /// Agent version.
    pub version: String,
    /// Process start, Unix ms.
    pub started_at_ms: i64,
    /// The heartbeat interval.
    pub interval: Duration,
    /// The store's size limit in bytes.
    pub max_bytes: u64,
    /// When the client certificate expires, Unix ms; `None` when unknown.
    pub cert_not_after_ms: Option<i64>,
    /// What was set aside when the store was found damaged at start.
    pub recovery: Option<String>,
}

/// One reading of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreReading {
    /// Records not yet acknowledged by the broker.
    pub queue_depth: u64,
    /// Receive time of the oldest unsent record, Unix ms.
    pub oldest_unsent_ms: Option<i64>,
    /// Records set aside as too big for the hub.
    pub parked: u64,
    /// Database file plus WAL, bytes.
    pub db_bytes: u64,
    /// Bytes in live pages (what counts against `max_bytes`).
    pub live_bytes: u64,
}

/// One reading of one interface's counters: what its heartbeat entry
/// says, plus what only the totals carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceReading {
    /// The heartbeat entry.
    pub stats: SourceStats,
    /// Resends answered with the stored ACK.
    pub duplicates: u64,
    /// Messages the store refused for space (its size limit or a full filesystem) over its
    /// lifetime: the store's own count, so transient refusals (AR because the database was
    /// busy) are not in it; zero when the store could not be read.
    pub refused_full: u64,
}

/// Everything that changes, read at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// When the reading was taken, Unix ms.
    pub now_ms: i64,
    /// The store; `None` when it could not be read this time.
    pub store: Option<StoreReading>,
    /// Free bytes on the database's filesystem; `None` when unknown.
    pub disk_free_bytes: Option<u64>,
    /// Broker connections established since start.
    pub connects: u64,
    /// Records acknowledged by the broker since start.
    pub forwarded: u64,
    /// One reading per interface, in config order.
    pub sources: Vec<SourceReading>,
    /// Data at rest: refusals, open quarantine entries, audit head (default when the store
    /// could not be read).
    pub custody: Custody,
}

/// What the heartbeat derives from the previous one: the queue's growth
/// rate and whether the store refused messages for space since.
///
/// The storage alarm means storage trouble: the store at its size limit, or
/// messages refused for space (limit or full filesystem) since the previous
/// reading. A message answered AR because the database was busy for a
/// moment is not storage trouble (the sender's retry gets in), so the
/// listeners' AR count, which includes those, does not raise it.
#[derive(Debug, Clone, Default)]
pub struct Trend {
    last: Option<(i64, u64)>,
    rate_bytes_per_s: Option<f64>,
    /// The store's lifetime refused-for-space count at the previous reading
    /// (`None` before the first: refusals of earlier runs are not news).
    last_refused_full: Option<u64>,
}

impl Trend {
    /// Takes a reading into account and returns `(hours_until_full, alarm)`.
    /// Without a store reading both are unknown: `(None, false)`.
    pub fn observe(&mut self, snapshot: &Snapshot, max_bytes: u64) -> (Option<f64>, bool) {
        let Some(store) = snapshot.store else {
            return (None, false);
        };
        let refused_full: u64 = snapshot.sources.iter().map(|s| s.refused_full).sum();
        let refused_since = self
            .last_refused_full
            .is_some_and(|last| refused_full > last);
        self.last_refused_full = Some(refused_full);
        if let Some(rate) = growth_rate(self.last, (snapshot.now_ms, store.live_bytes)) {
            self.rate_bytes_per_s = Some(match self.rate_bytes_per_s {
                Some(old) => RATE_WEIGHT * rate + (1.0 - RATE_WEIGHT) * old,
                None => rate,
            });
        }
        self.last = Some((snapshot.now_ms, store.live_bytes));
        let at_limit = store.live_bytes >= max_bytes;
        let hours = self
            .rate_bytes_per_s
            .and_then(|rate| hours_until_full(max_bytes, store.live_bytes, rate));
        (hours, refused_since || at_limit)
    }
}

/// Bytes per second between two `(unix_ms, bytes)` samples; `None` when
/// there is no earlier sample or no time passed.
pub fn growth_rate(earlier: Option<(i64, u64)>, now: (i64, u64)) -> Option<f64> {
    let (t0, b0) = earlier?;
    let (t1, b1) = now;
    let dt_ms = t1.checked_sub(t0).filter(|dt| *dt > 0)?;
    // Sizes stay far below 2^53 bytes, where f64 is exact.
    Some((b1 as f64 - b0 as f64) * 1000.0 / dt_ms as f64)
}

/// Hours until `used` reaches `max` at `rate` bytes per second; `None`
/// when the queue is not growing. Zero once the limit is reached.
pub fn hours_until_full(max: u64, used: u64, rate_bytes_per_s: f64) -> Option<f64> {
    let growing = rate_bytes_per_s.is_finite() && rate_bytes_per_s > 0.0;
    let left = max.saturating_sub(used) as f64;
    growing.then(|| left / rate_bytes_per_s / 3600.0)
}

/// Whole days from `now_ms` until `not_after_ms`, rounded down (negative
/// once expired).
pub fn cert_days_left(not_after_ms: i64, now_ms: i64) -> i64 {
    not_after_ms.saturating_sub(now_ms).div_euclid(DAY_MS)
}

/// The heartbeat for `snapshot`, with the estimate and alarm of [`Trend`].
pub fn heartbeat(
    identity: &Identity,
    snapshot: &Snapshot,
    hours_until_full: Option<f64>,
    alarm: bool,
) -> Heartbeat {
    let store = snapshot.store.unwrap_or_default();
    let now = snapshot.now_ms;
    Heartbeat {
        schema_version: HEARTBEAT_SCHEMA_VERSION,
        gateway: identity.gateway.clone(),
        version: identity.version.clone(),
        sent_at_ms: now,
        uptime_s: u64::try_from(now.saturating_sub(identity.started_at_ms) / 1000).unwrap_or(0),
        interval_s: u32::try_from(identity.interval.as_secs()).unwrap_or(u32::MAX),
        queue: QueueStats {
            depth: store.queue_depth,
            oldest_unsent_age_ms: store
                .oldest_unsent_ms
                .map(|t| u64::try_from(now.saturating_sub(t)).unwrap_or(0)),
            parked: store.parked,
        },
        storage: StorageStats {
            disk_free_bytes: snapshot.disk_free_bytes.unwrap_or(0),
            db_bytes: store.db_bytes,
            alarm: alarm || snapshot.custody.refusing.is_some(),
            recovery: identity.recovery.clone(),
        },
        counters: totals(snapshot),
        broker_reconnects: snapshot.connects.saturating_sub(1),
        cert_days_left: identity.cert_not_after_ms.map(|t| cert_days_left(t, now)),
        hours_until_full,
        clock_offset_ms: None,
        sources: snapshot.sources.iter().map(|s| s.stats.clone()).collect(),
        custody: snapshot.custody.clone(),
    }
}

fn totals(snapshot: &Snapshot) -> Counters {
    let mut c = Counters {
        forwarded: snapshot.forwarded,
        ..Counters::default()
    };
    for reading in &snapshot.sources {
        let s = &reading.stats;
        c.received = c.received.saturating_add(s.received);
        c.acknowledged = c.acknowledged.saturating_add(s.acknowledged);
        c.rejected = c.rejected.saturating_add(s.rejected);
        c.quarantined = c.quarantined.saturating_add(s.quarantined);
        c.duplicates = c.duplicates.saturating_add(reading.duplicates);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            gateway: GatewayId {
                org: "o".into(),
                site: "s".into(),
                id: "g".into(),
            },
            version: "1.2.3".into(),
            started_at_ms: 1_000_000,
            interval: Duration::from_secs(60),
            max_bytes: 1_000_000,
            cert_not_after_ms: Some(1_000_000 + 10 * DAY_MS + 5),
            recovery: None,
        }
    }

    fn source(name: &str, received: u64, acked: u64, quarantined: u64) -> SourceReading {
        SourceReading {
            stats: SourceStats {
                name: name.into(),
                received,
                acknowledged: acked,
                quarantined,
                ..SourceStats::default()
            },
            duplicates: 1,
            refused_full: 0,
        }
    }

    fn snapshot(now_ms: i64, live_bytes: u64) -> Snapshot {
        Snapshot {
            now_ms,
            store: Some(StoreReading {
                queue_depth: 3,
                oldest_unsent_ms: Some(now_ms - 2_500),
                parked: 1,
                db_bytes: 4096,
                live_bytes,
            }),
            disk_free_bytes: Some(7),
            connects: 3,
            forwarded: 9,
            sources: vec![source("lab", 10, 8, 2), source("icu", 5, 4, 0)],
            custody: Custody::default(),
        }
    }

    #[test]
    fn totals_are_the_sums_of_the_sources_plus_forwarded() {
        let hb = heartbeat(&identity(), &snapshot(2_000_000, 0), None, false);
        assert_eq!(
            hb.counters,
            Counters {
                received: 15,
                acknowledged: 12,
                rejected: 0,
                quarantined: 2,
                duplicates: 2,
                forwarded: 9,
            }
        );
        assert_eq!(hb.sources.len(), 2);
        assert_eq!(hb.sources[1].name, "icu");
        assert_eq!(hb.sources[1].received, 5);
    }

    #[test]
    fn times_become_ages_and_the_first_connect_is_not_a_reconnect() {
        let hb = heartbeat(&identity(), &snapshot(2_000_000, 0), Some(1.5), true);
        assert_eq!(hb.uptime_s, 1_000);
        assert_eq!(hb.interval_s, 60);
        assert_eq!(hb.queue.depth, 3);
        assert_eq!(hb.queue.oldest_unsent_age_ms, Some(2_500));
        assert_eq!(hb.queue.parked, 1, "records set aside are an alarm");
        assert_eq!(hb.broker_reconnects, 2);
        assert_eq!(hb.storage.disk_free_bytes, 7);
        assert!(hb.storage.alarm);
        assert_eq!(hb.hours_until_full, Some(1.5));
        assert_eq!(hb.schema_version, HEARTBEAT_SCHEMA_VERSION);
    }

    #[test]
    fn an_unreadable_store_reports_an_empty_queue_not_a_stale_one() {
        let mut snap = snapshot(2_000_000, 0);
        snap.store = None;
        let hb = heartbeat(&identity(), &snap, None, false);
        assert_eq!(hb.queue, QueueStats::default());
        assert_eq!(hb.storage.db_bytes, 0);
    }

    #[test]
    fn certificate_days_round_down_and_go_negative_after_expiry() {
        assert_eq!(cert_days_left(10 * DAY_MS + 5, 0), 10);
        assert_eq!(cert_days_left(DAY_MS - 1, 0), 0);
        assert_eq!(cert_days_left(0, 1), -1);
        assert_eq!(cert_days_left(0, 2 * DAY_MS), -2);
        let hb = heartbeat(&identity(), &snapshot(1_000_000, 0), None, false);
        assert_eq!(hb.cert_days_left, Some(10));
    }

    #[test]
    fn the_fill_estimate_divides_the_room_left_by_the_growth_rate() {
        // 100 bytes/s, 360_000 bytes left: one hour.
        assert_eq!(hours_until_full(400_000, 40_000, 100.0), Some(1.0));
        assert_eq!(hours_until_full(400_000, 500_000, 100.0), Some(0.0));
        assert_eq!(hours_until_full(400_000, 40_000, 0.0), None);
        assert_eq!(hours_until_full(400_000, 40_000, -5.0), None);
        assert_eq!(hours_until_full(400_000, 40_000, f64::NAN), None);
    }

    #[test]
    fn growth_needs_two_samples_and_elapsed_time() {
        assert_eq!(growth_rate(None, (1_000, 10)), None);
        assert_eq!(growth_rate(Some((1_000, 10)), (1_000, 20)), None);
        assert_eq!(growth_rate(Some((1_000, 10)), (3_000, 210)), Some(100.0));
        assert_eq!(growth_rate(Some((1_000, 210)), (3_000, 10)), Some(-100.0));
    }

    #[test]
    fn a_growing_queue_gets_an_estimate_and_a_draining_one_loses_it() {
        let mut trend = Trend::default();
        let max = 1_000_000;
        assert_eq!(trend.observe(&snapshot(0, 100_000), max), (None, false));
        // +100_000 bytes in 1000 s: 100 B/s, 800_000 left: 8000 s.
        let (hours, _) = trend.observe(&snapshot(1_000_000, 200_000), max);
        let hours = hours.unwrap();
        assert!((hours - 8_000.0 / 3600.0).abs() < 1e-9, "{hours}");
        // Drains fast: the smoothed rate turns negative, no estimate.
        let (hours, _) = trend.observe(&snapshot(2_000_000, 0), max);
        assert_eq!(hours, None);
    }

    #[test]
    fn the_alarm_is_raised_by_new_refusals_for_space_or_a_full_store() {
        let mut trend = Trend::default();
        let mut snap = snapshot(0, 10);
        snap.sources[0].refused_full = 4;
        assert!(!trend.observe(&snap, 1_000).1, "refusals of an earlier run");
        snap.sources[0].refused_full = 5;
        assert!(trend.observe(&snap, 1_000).1);
        assert!(!trend.observe(&snap, 1_000).1, "no new refusal since");
        snap.store = Some(StoreReading {
            live_bytes: 1_000,
            ..StoreReading::default()
        });
        assert!(trend.observe(&snap, 1_000).1, "at the size limit");
    }

    #[test]
    fn busy_store_rejections_do_not_raise_the_storage_alarm() {
        let mut trend = Trend::default();
        let mut snap = snapshot(0, 10);
        assert!(!trend.observe(&snap, 1_000).1);
        // ARs answered while the database was busy: the listener counts them, the store's
        // refused-for-space count does not move.
        snap.sources[0].stats.rejected = 3;
        snap.sources[1].stats.rejected = 2;
        let (_, alarm) = trend.observe(&snap, 1_000);
        assert!(!alarm, "transient ARs are not storage trouble");
        assert_eq!(
            heartbeat(&identity(), &snap, None, alarm).counters.rejected,
            5
        );
    }

    #[test]
    fn without_a_store_reading_the_alarm_is_not_guessed() {
        let mut trend = Trend::default();
        let mut snap = snapshot(0, 10);
        assert!(!trend.observe(&snap, 1_000).1);
        snap.store = None;
        snap.sources[0].refused_full = 0;
        assert_eq!(trend.observe(&snap, 1_000), (None, false));
        snap.store = snapshot(0, 10).store;
        snap.sources[0].refused_full = 2;
        assert!(
            trend.observe(&snap, 1_000).1,
            "refusals while unreadable count once read"
        );
    }
}
