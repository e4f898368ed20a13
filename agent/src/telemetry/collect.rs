//! Reading the agent's counters for a heartbeat: the listeners' and the
//! forwarder's atomics (shared through `Arc`s, no global state), one
//! read-only store snapshot and the filesystem's free space. (The client
//! certificate's expiry is read once at start, with [`crate::device_cert`].)
//!
//! Invariants:
//! - Reading never blocks the data path: counters are relaxed atomic loads,
//!   the store is read on its own read-only connection in a blocking task,
//!   and the unmapped-code counters are locked only to copy a bounded list.
//! - A part that cannot be read is reported as unknown (`None`) with a
//!   debug log, never as an error that would stop the heartbeat.
//! - Every per-listener counter of the heartbeat is the listener's own,
//!   since the agent started (one scope, as the hub's metrics need); only
//!   `refused_full`, which the storage alarm compares between readings, comes
//!   from the store's lifetime counters (`source_stats`).
//! - A listener's rhythm (`telemetry::rhythm`) is read from the store, so it
//!   holds over restarts: its hourly counts (`source_rhythm`) and its last
//!   message as the store committed it, not the listener's since start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hl7edge_protocol::telemetry::{
    Custody, QuarantineHold, Refusing, Rhythm, SetAsideFiles, SourceStats, UnmappedCode,
};
use tracing::debug;

use super::build::{Snapshot, SourceReading, StoreReading};
use super::rhythm::{self, SilenceConfig};
use crate::forwarder::task::ForwarderMetrics;
use crate::ingest::Interface;
use crate::listener::Shared;
use crate::store::{
    QuarantineLimits, QuarantineOutlook, SourceStats as StoreSourceStats, StoreHandle, StoreReader,
};

/// How many unmapped codes per interface a heartbeat lists.
const TOP_UNMAPPED: usize = 5;

/// Where the counters live.
#[derive(Debug, Clone)]
pub struct Probes {
    /// The store (path and read-only connections).
    pub store: StoreHandle,
    /// Each listener's shared state, in config order.
    pub listeners: Vec<Arc<Shared>>,
    /// The forwarder's counters.
    pub forwarder: Arc<ForwarderMetrics>,
    /// The store's limits, to tell whether it refuses messages now.
    pub limits: StoreLimits,
    /// Signed pushes (`None` without `hub.push_key`).
    pub pushes: Option<Arc<crate::push::Pushes>>,
    /// The silent-feed watch (`[silence]`).
    pub silence: SilenceConfig,
    /// Listeners the watch leaves out (`silence = false`).
    pub unwatched: Vec<String>,
}

/// A source's lifetime counters in the store, and its quiet time against its learned rhythm.
type Lifetime = (StoreSourceStats, Option<Rhythm>);

/// The limits the store runs with (as `StoreConfig` sets them), for the refusal outlook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// `storage.max_bytes`.
    pub max_bytes: u64,
    /// Filesystem bytes kept free for deletes.
    pub reserve_bytes: u64,
    /// The quarantine's cap, retention and warning period.
    pub quarantine: QuarantineLimits,
}

/// Reads from a [`Probes`], keeping its store connection between reads.
#[derive(Debug)]
pub struct Collector {
    probes: Probes,
    reader: Option<StoreReader>,
}

impl Collector {
    /// A collector; the store connection is opened on first use.
    pub fn new(probes: Probes) -> Self {
        Collector {
            probes,
            reader: None,
        }
    }

    /// Reads everything now.
    pub async fn snapshot(&mut self) -> Snapshot {
        let read = self.read_store().await;
        let lifetime = read.as_ref().map_or(&[][..], |(_, s, _)| s.as_slice());
        let sources = self
            .probes
            .listeners
            .iter()
            .map(|l| {
                let watched = !self.probes.unwatched.contains(&l.iface.name);
                source(l, lifetime, watched)
            })
            .collect();
        let f = &self.probes.forwarder;
        Snapshot {
            now_ms: crate::store::now_ms(),
            custody: read.as_ref().map(|(_, _, c)| c.clone()).unwrap_or_default(),
            store: read.map(|(store, _, _)| store),
            disk_free_bytes: disk_free(self.probes.store.path()),
            connects: f.connects.load(Ordering::Relaxed),
            forwarded: f.forwarded.load(Ordering::Relaxed),
            sources,
            link: f.link(),
            receipted: f.receipted.load(Ordering::Relaxed),
            pushes: self
                .probes
                .pushes
                .as_ref()
                .map(|p| p.reports())
                .unwrap_or_default(),
        }
    }

    async fn read_store(&mut self) -> Option<(StoreReading, Vec<Lifetime>, Custody)> {
        let reader = match self.reader.take() {
            Some(r) => r,
            None => match self.probes.store.open_reader() {
                Ok(r) => r,
                Err(e) => {
                    debug!(cause = %e, "telemetry cannot open the store");
                    return None;
                }
            },
        };
        let limits = self.probes.limits;
        let silence = self.probes.silence;
        let db = self.probes.store.path().to_owned();
        let joined = tokio::task::spawn_blocking(move || {
            let reading = store_reading(&reader, limits, &silence, &db);
            (reader, reading)
        })
        .await;
        let (reader, reading) = joined.ok()?;
        self.reader = Some(reader);
        reading
            .map_err(|e| debug!(cause = %e, "telemetry cannot read the store"))
            .ok()
    }
}

fn store_reading(
    reader: &StoreReader,
    limits: StoreLimits,
    silence: &SilenceConfig,
    db: &Path,
) -> Result<(StoreReading, Vec<Lifetime>, Custody), crate::store::StoreError> {
    let stats = reader.stats()?;
    let now_ms = crate::store::now_ms();
    let space = reader.space_outlook(limits.max_bytes, limits.reserve_bytes)?;
    let refusal = space.refusal(crate::store::PROBE_MESSAGE_BYTES);
    let custody = Custody {
        refusing: refusal.map(|cause| Refusing {
            cause: cause.kind().to_owned(),
            reason: cause.to_string(),
        }),
        quarantine_open: stats.quarantine_count,
        ..Custody::default()
    };
    let (audit_head, audit_lines) = reader.audit_head()?;
    let quarantine = reader.quarantine_outlook(crate::store::now_ms(), limits.quarantine)?;
    let custody = Custody {
        audit_head,
        audit_lines,
        quarantine: quarantine_hold(&quarantine),
        set_aside: set_aside_files(db),
        ..custody
    };
    let reading = StoreReading {
        queue_depth: stats.queue_depth,
        oldest_unsent_ms: stats.oldest_unsent_ms,
        parked: stats.parked,
        db_bytes: stats.db_bytes.saturating_add(stats.wal_bytes),
        // What counts against `max_bytes`: the quarantine has its own cap.
        live_bytes: space.used,
        awaiting_receipt: stats.awaiting.count,
        oldest_awaiting_since_ms: stats.awaiting.oldest_since_ms,
    };
    let sources = stats
        .sources
        .into_iter()
        .map(|s| {
            let rhythm = source_rhythm(reader, &s, silence, now_ms)?;
            Ok((s, rhythm))
        })
        .collect::<Result<_, crate::store::StoreError>>()?;
    Ok((reading, sources, custody))
}

/// A source's quiet time against its rhythm, from its hourly counts in the store (the window
/// before its last message) and its last message over restarts.
fn source_rhythm(
    reader: &StoreReader,
    source: &StoreSourceStats,
    silence: &SilenceConfig,
    now_ms: i64,
) -> Result<Option<Rhythm>, crate::store::StoreError> {
    let Some(last_ms) = source.last_message_at_ms.filter(|_| silence.enabled) else {
        return Ok(None);
    };
    let hour_ms = silence.hour_ms();
    let window = i64::from(silence.window_days) * rhythm::HOURS_PER_DAY;
    let from = last_ms.div_euclid(hour_ms).saturating_sub(window + 1);
    let Some(hourly) = reader.rhythm(&source.source, hour_ms, from)? else {
        return Ok(None);
    };
    let history = rhythm::History {
        since_period: hourly.since_period,
        counts: hourly.counts,
    };
    Ok(rhythm::assess(&history, Some(last_ms), now_ms, silence))
}

/// The heartbeat's view of the quarantine: sizes, counts and the next expiry.
fn quarantine_hold(o: &QuarantineOutlook) -> QuarantineHold {
    QuarantineHold {
        bytes: o.bytes,
        max_bytes: o.max_bytes,
        expiring: o.expiring,
        next_expiry_ms: o.next_expiry_ms,
    }
}

/// The damaged databases set aside beside `db` (none when the directory cannot be listed).
fn set_aside_files(db: &Path) -> SetAsideFiles {
    let found = crate::store::set_aside::list(db).unwrap_or_else(|e| {
        debug!(cause = %e, "telemetry cannot list set-aside databases");
        Vec::new()
    });
    SetAsideFiles {
        files: u64::try_from(found.len()).unwrap_or(u64::MAX),
        bytes: crate::store::set_aside::total_bytes(&found),
        oldest_ms: found.first().map(|s| s.set_aside_at_ms),
    }
}

/// One listener's reading: its counters since start, the store's lifetime
/// count of refusals for space (zero when the store could not be read), its
/// recent drift alerts, and its rhythm unless the listener is `unwatched`.
fn source(shared: &Shared, lifetime: &[Lifetime], watched: bool) -> SourceReading {
    let m = &shared.metrics;
    let last = m.last_message_ms.load(Ordering::Relaxed);
    let mut stats = SourceStats {
        name: shared.iface.name.clone(),
        last_message_ms: (last > 0).then(|| i64::try_from(last).unwrap_or(i64::MAX)),
        received: m.received.load(Ordering::Relaxed),
        acknowledged: m.acked.load(Ordering::Relaxed),
        rejected: m.rejected.load(Ordering::Relaxed),
        quarantined: m.quarantined.load(Ordering::Relaxed),
        acks_received: m.acks_received.load(Ordering::Relaxed),
        oversize_frames: m.oversize.load(Ordering::Relaxed),
        garbage_bytes: m.garbage_bytes.load(Ordering::Relaxed),
        refused_connections: m
            .refused_address
            .load(Ordering::Relaxed)
            .saturating_add(m.refused_cap.load(Ordering::Relaxed)),
        tls_failures: m.tls_failures.load(Ordering::Relaxed),
        resends: m.duplicates.load(Ordering::Relaxed),
        control_id_reused: m.control_id_reused.load(Ordering::Relaxed),
        no_ack_requested: m.no_ack_requested.load(Ordering::Relaxed),
        ..SourceStats::default()
    };
    let store = lifetime.iter().find(|(s, _)| s.source == stats.name);
    let refused_full = store.map_or(0, |(s, _)| s.refused_full);
    stats.rhythm = store.and_then(|(_, r)| *r).filter(|_| watched);
    interface_codes(&shared.iface, &mut stats);
    SourceReading {
        stats,
        duplicates: m.duplicates.load(Ordering::Relaxed),
        refused_full,
    }
}

/// What an interface's code counters and drift watch put into its heartbeat entry: counts,
/// the most frequent unmapped code *identifiers* (never coded answers: those are counted only,
/// see `ingest`), and the recent drift alerts (structural words only, see
/// `hl7edge_protocol::profile::facts`).
pub fn interface_codes(iface: &Interface, stats: &mut SourceStats) {
    if let Ok(drift) = iface.drift.lock() {
        stats.drift = drift.recent();
    }
    // A poisoned lock means a panic elsewhere; report the codes as unknown.
    if let Ok(unmapped) = iface.unmapped.lock() {
        let snap = unmapped.snapshot(TOP_UNMAPPED);
        stats.codes_mapped = snap.mapped_total;
        stats.codes_unmapped = snap.unmapped_total;
        stats.top_unmapped = snap
            .top
            .into_iter()
            .map(|c| UnmappedCode {
                system: c.system,
                code: c.code,
                count: c.count,
            })
            .collect();
    }
}

/// Free bytes (for unprivileged users) on the filesystem holding `path`.
pub fn disk_free(path: &Path) -> Option<u64> {
    match rustix::fs::statvfs(path) {
        Ok(s) => Some(s.f_bavail.saturating_mul(s.f_frsize)),
        Err(e) => {
            debug!(cause = %e, "telemetry cannot read free disk space");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collector of `store` without listeners: a 1 GiB queue, a 1 MiB quarantine that keeps
    /// messages a day and announces their expiry an hour before.
    fn collector(store: &StoreHandle, forwarder: Arc<ForwarderMetrics>) -> Collector {
        Collector::new(Probes {
            store: store.clone(),
            listeners: Vec::new(),
            forwarder,
            pushes: None,
            silence: SilenceConfig::default(),
            unwatched: Vec::new(),
            limits: StoreLimits {
                max_bytes: 1 << 30,
                reserve_bytes: 0,
                quarantine: QuarantineLimits::new(
                    1 << 20,
                    std::time::Duration::from_secs(86_400),
                    std::time::Duration::from_secs(3_600),
                ),
            },
        })
    }

    #[tokio::test]
    async fn a_fresh_store_reads_as_an_empty_queue_with_its_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::StoreConfig::new(dir.path().join("queue.db"));
        let opened = crate::store::Store::open(cfg).unwrap();
        let forwarder = Arc::new(ForwarderMetrics::default());
        forwarder.connects.store(2, Ordering::Relaxed);
        let mut collector = collector(&opened.handle, forwarder);
        let snap = collector.snapshot().await;
        let store = snap.store.expect("the store is readable");
        assert_eq!(store.queue_depth, 0);
        assert_eq!(store.oldest_unsent_ms, None);
        assert!(store.db_bytes > 0 && store.live_bytes > 0, "{store:?}");
        assert!(snap.disk_free_bytes.is_some());
        assert_eq!(snap.connects, 2);
        drop(collector);
        drop(opened.handle);
        opened.writer.join().unwrap();
    }

    #[tokio::test]
    async fn the_heartbeat_carries_the_quarantines_hold_its_expiry_alarm_and_set_aside_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::StoreConfig::new(dir.path().join("queue.db"));
        let aside = crate::store::sibling(&cfg.path, ".corrupt-1790000000");
        std::fs::write(&aside, vec![0u8; 5000]).unwrap();
        let opened = crate::store::Store::open(cfg).unwrap();
        let received = crate::store::now_ms() - 23 * 3_600_000;
        let entry = crate::store::Quarantined {
            source: "lab".into(),
            peer: "10.0.0.7:4000".into(),
            received_at_ms: received,
            raw: b"PID|1||ZZSECRET".to_vec(),
            error: "error 100 at PID: no MSH".into(),
            error_code: 100,
            ack: Vec::new(),
            no_ack_requested: false,
        };
        opened.handle.quarantine(entry).await.unwrap();
        // Kept a day, announced an hour before: this one expires within the hour.
        let mut collector = collector(&opened.handle, Arc::new(ForwarderMetrics::default()));
        let custody = collector.snapshot().await.custody;
        assert_eq!(custody.quarantine.expiring, 1);
        assert_eq!(custody.quarantine.max_bytes, 1 << 20);
        assert_eq!(
            custody.quarantine.next_expiry_ms,
            Some(received + 86_400_000)
        );
        assert!(custody.quarantine.bytes > 15, "{:?}", custody.quarantine);
        assert_eq!(custody.set_aside.files, 1);
        assert_eq!(custody.set_aside.bytes, 5000);
        assert_eq!(custody.set_aside.oldest_ms, Some(1_790_000_000_000));
        drop(collector);
        drop(opened.handle);
        opened.writer.join().unwrap();
    }

    #[test]
    fn free_space_of_an_existing_directory_is_known() {
        assert!(disk_free(Path::new("/")).is_some());
        assert_eq!(disk_free(Path::new("/nonexistent/hl7edge")), None);
    }
}
