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
//! - A source's `resends`, `control_id_reused`, `no_ack_requested` and
//!   `refused_full` come from the store's lifetime counters
//!   (`source_stats`); the other per-source counters are the listener's
//!   since start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hl7edge_protocol::telemetry::{Custody, Refusing, SourceStats, UnmappedCode};
use tracing::debug;

use super::build::{Snapshot, SourceReading, StoreReading};
use crate::forwarder::task::ForwarderMetrics;
use crate::ingest::Interface;
use crate::listener::Shared;
use crate::store::{SourceStats as StoreSourceStats, StoreHandle, StoreReader};

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
}

/// The limits the store runs with (as `StoreConfig` sets them), for the refusal outlook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// `storage.max_bytes`.
    pub max_bytes: u64,
    /// Filesystem bytes kept free for deletes.
    pub reserve_bytes: u64,
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
            .map(|l| source(l, lifetime))
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
        }
    }

    async fn read_store(&mut self) -> Option<(StoreReading, Vec<StoreSourceStats>, Custody)> {
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
        let joined = tokio::task::spawn_blocking(move || {
            let reading = store_reading(&reader, limits);
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
) -> Result<(StoreReading, Vec<StoreSourceStats>, Custody), crate::store::StoreError> {
    let stats = reader.stats()?;
    let refusal = reader
        .space_outlook(limits.max_bytes, limits.reserve_bytes)?
        .refusal(crate::store::PROBE_MESSAGE_BYTES);
    let custody = Custody {
        refusing: refusal.map(|cause| Refusing {
            cause: cause.kind().to_owned(),
            reason: cause.to_string(),
        }),
        quarantine_open: stats.quarantine_count,
        ..Custody::default()
    };
    let (audit_head, audit_lines) = reader.audit_head()?;
    let custody = Custody {
        audit_head,
        audit_lines,
        ..custody
    };
    let reading = StoreReading {
        queue_depth: stats.queue_depth,
        oldest_unsent_ms: stats.oldest_unsent_ms,
        parked: stats.parked,
        db_bytes: stats.db_bytes.saturating_add(stats.wal_bytes),
        live_bytes: reader.live_bytes()?,
    };
    Ok((reading, stats.sources, custody))
}

/// One interface's reading: its listener's counters since start, the
/// store's lifetime resend and reuse counts (zero when the store could not
/// be read), and its recent drift alerts.
fn source(shared: &Shared, lifetime: &[StoreSourceStats]) -> SourceReading {
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
        ..SourceStats::default()
    };
    let mut refused_full = 0;
    if let Some(s) = lifetime.iter().find(|s| s.source == stats.name) {
        stats.resends = s.duplicates;
        stats.control_id_reused = s.control_id_reuse;
        stats.no_ack_requested = s.no_ack_requested;
        refused_full = s.refused_full;
    }
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

    #[tokio::test]
    async fn a_fresh_store_reads_as_an_empty_queue_with_its_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::StoreConfig::new(dir.path().join("queue.db"));
        let opened = crate::store::Store::open(cfg).unwrap();
        let forwarder = Arc::new(ForwarderMetrics::default());
        forwarder.connects.store(2, Ordering::Relaxed);
        let mut collector = Collector::new(Probes {
            store: opened.handle.clone(),
            listeners: Vec::new(),
            forwarder,
            limits: StoreLimits {
                max_bytes: 1 << 30,
                reserve_bytes: 0,
            },
        });
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

    #[test]
    fn free_space_of_an_existing_directory_is_known() {
        assert!(disk_free(Path::new("/")).is_some());
        assert_eq!(disk_free(Path::new("/nonexistent/hl7edge")), None);
    }
}
