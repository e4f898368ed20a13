//! What the disk under the agent's data directory allows: the latency of a synchronous 4 KiB
//! overwrite (`pwrite` + `fdatasync`, what one WAL commit costs at least), and the throughput
//! ceiling that implies for senders that each wait for their ACK.
//!
//! Invariant: the probe writes only a temporary file of its own in the given directory (removed
//! when the probe ends) and overwrites blocks it allocated and synced first, so it measures the
//! cost of a commit into the standing write-ahead log, not of growing a file.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::report::quantile;

/// Bytes of one probe write: one SQLite page, one filesystem block.
const BLOCK: usize = 4096;
/// Blocks the probe cycles through (a small standing file, like the WAL's first frames).
const BLOCKS: u64 = 16;

/// Latency of synchronous 4 KiB overwrites in one directory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncLatency {
    /// How many timed overwrites were made.
    pub samples: usize,
    /// Median latency of one overwrite + `fdatasync`.
    pub median: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
}

impl SyncLatency {
    /// The most messages per second `senders` closed-loop senders can get acknowledged when every
    /// ACK waits for a commit that costs at least one median `fdatasync`: each commit carries at
    /// most one message per sender.
    pub fn ceiling(&self, senders: usize) -> Option<f64> {
        let secs = self.median.as_secs_f64();
        (secs > 0.0).then(|| senders as f64 / secs)
    }
}

/// Times `samples` synchronous 4 KiB overwrites in a temporary file in `dir`.
pub fn probe(dir: &Path, samples: usize) -> std::io::Result<SyncLatency> {
    let mut file = tempfile::Builder::new()
        .prefix(".fdatasync-probe-")
        .tempfile_in(dir)?;
    let block = [0x5a_u8; BLOCK];
    for _ in 0..BLOCKS {
        file.write_all(&block)?;
    }
    file.as_file().sync_all()?;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        latencies.push(overwrite(file.as_file(), &block, i as u64 % BLOCKS)?);
    }
    let median = quantile(&mut latencies, 0.5).unwrap_or_default();
    let p99 = quantile(&mut latencies, 0.99).unwrap_or_default();
    Ok(SyncLatency {
        samples,
        median,
        p99,
    })
}

fn overwrite(file: &File, block: &[u8], index: u64) -> std::io::Result<Duration> {
    let started = Instant::now();
    file.write_all_at(block, index * BLOCK as u64)?;
    file.sync_data()?;
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_measures_every_sample_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let latency = probe(dir.path(), 20).unwrap();
        assert_eq!(latency.samples, 20);
        assert!(latency.median > Duration::ZERO && latency.p99 >= latency.median);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_ceiling_is_senders_per_commit_latency() {
        let latency = SyncLatency {
            samples: 1,
            median: Duration::from_micros(800),
            p99: Duration::from_millis(2),
        };
        let ceiling = latency.ceiling(16).unwrap();
        assert!((ceiling - 20_000.0).abs() < 1e-6, "{ceiling}");
        let instant = SyncLatency {
            median: Duration::ZERO,
            ..latency
        };
        assert_eq!(instant.ceiling(16), None);
    }
}
