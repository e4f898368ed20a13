//! Reading the agent's counters for a heartbeat: the listeners' and the
//! forwarder's atomics (shared through `Arc`s, no global state), one
//! read-only store snapshot, the filesystem's free space, and the client
//! certificate's expiry (read once at start).
//!
//! Invariants:
//! - Reading never blocks the data path: counters are relaxed atomic loads,
//!   the store is read on its own read-only connection in a blocking task,
//!   and the unmapped-code counters are locked only to copy a bounded list.
//! - A part that cannot be read is reported as unknown (`None`) with a
//!   debug log, never as an error that would stop the heartbeat.
//! - A source's `resends` and `control_id_reused` come from the store's
//!   lifetime counters (`source_stats`); the other per-source counters are
//!   the listener's since start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hl7edge_protocol::telemetry::{SourceStats, UnmappedCode};
use tracing::debug;

use super::build::{Snapshot, SourceReading, StoreReading};
use crate::forwarder::task::ForwarderMetrics;
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
        let lifetime = read.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
        let sources = self
            .probes
            .listeners
            .iter()
            .map(|l| source(l, lifetime))
            .collect();
        let f = &self.probes.forwarder;
        Snapshot {
            now_ms: crate::store::now_ms(),
            store: read.map(|(store, _)| store),
            disk_free_bytes: disk_free(self.probes.store.path()),
            connects: f.connects.load(Ordering::Relaxed),
            forwarded: f.forwarded.load(Ordering::Relaxed),
            sources,
        }
    }

    async fn read_store(&mut self) -> Option<(StoreReading, Vec<StoreSourceStats>)> {
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
        let joined = tokio::task::spawn_blocking(move || {
            let reading = store_reading(&reader);
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
) -> Result<(StoreReading, Vec<StoreSourceStats>), crate::store::StoreError> {
    let stats = reader.stats()?;
    let reading = StoreReading {
        queue_depth: stats.queue_depth,
        oldest_unsent_ms: stats.oldest_unsent_ms,
        db_bytes: stats.db_bytes.saturating_add(stats.wal_bytes),
        live_bytes: reader.live_bytes()?,
    };
    Ok((reading, stats.sources))
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
        ..SourceStats::default()
    };
    if let Some(s) = lifetime.iter().find(|s| s.source == stats.name) {
        stats.resends = s.duplicates;
        stats.control_id_reused = s.control_id_reuse;
    }
    if let Ok(drift) = shared.iface.drift.lock() {
        stats.drift = drift.recent();
    }
    // A poisoned lock means a panic elsewhere; report the codes as unknown.
    if let Ok(unmapped) = shared.iface.unmapped.lock() {
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
    SourceReading {
        stats,
        duplicates: m.duplicates.load(Ordering::Relaxed),
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

/// Why the client certificate's expiry is unknown.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read.
    #[error("cannot read the client certificate {path}: {source}")]
    Read {
        /// The certificate file.
        path: String,
        /// The read error.
        source: std::io::Error,
    },
    /// The file holds no parsable PEM certificate.
    #[error("{path} holds no readable PEM certificate: {detail}")]
    Parse {
        /// The certificate file.
        path: String,
        /// What the parser said.
        detail: String,
    },
}

/// When the first certificate in the PEM file at `path` expires, Unix ms.
pub fn cert_not_after_ms(path: &Path) -> Result<i64, CertError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CertError::Read {
        path: shown.clone(),
        source,
    })?;
    not_after_ms(&bytes).map_err(|detail| CertError::Parse {
        path: shown,
        detail,
    })
}

/// The `notAfter` of the first certificate in PEM text, Unix ms.
fn not_after_ms(pem_text: &[u8]) -> Result<i64, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    Ok(cert.validity().not_after.timestamp().saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(not_after_ms(b"not a pem").is_err());
        let err = cert_not_after_ms(Path::new("/nonexistent/hl7edge/cert.pem")).unwrap_err();
        assert!(matches!(err, CertError::Read { .. }), "{err}");
    }

    #[test]
    fn the_expiry_of_a_pem_certificate_is_read() {
        // Self-signed test certificate (no key kept), notAfter 2036-11-19 22:03:17 UTC.
        let pem = include_bytes!("testdata/expires-2036.pem");
        assert_eq!(not_after_ms(pem), Ok(2_110_744_997_000));
    }

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
