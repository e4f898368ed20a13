//! The writer's own accounting, logged at debug level every few seconds:
//! how many requests each commit carried and where the writer's time went.
//! It is what shows whether group commit works (requests per transaction)
//! and whether anything but the COMMIT itself delays the ACKs.
//!
//! Counts only: no request content, so nothing here can carry PHI.

use std::time::{Duration, Instant};

use super::request::Batch;

/// How often the tally is logged (when there was work).
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Counters since the last report.
#[derive(Debug)]
pub(crate) struct Tally {
    since: Instant,
    transactions: u64,
    inserts: u64,
    deletes: u64,
    deleted_rows: u64,
    commit_time: Duration,
    slowest_commit: Duration,
    checkpoints: u64,
    checkpoint_time: Duration,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            transactions: 0,
            inserts: 0,
            deletes: 0,
            deleted_rows: 0,
            commit_time: Duration::ZERO,
            slowest_commit: Duration::ZERO,
            checkpoints: 0,
            checkpoint_time: Duration::ZERO,
        }
    }
}

impl Tally {
    /// Counts one committed transaction holding `batch`, which took `took`
    /// from BEGIN to the end of COMMIT.
    pub(crate) fn committed(&mut self, batch: &Batch, took: Duration) {
        self.transactions += 1;
        self.inserts += count(batch.inserts.len());
        self.deletes += count(batch.forwarded.len());
        self.deleted_rows += batch
            .forwarded
            .iter()
            .map(|p| count(p.req.seqs.len()))
            .sum::<u64>();
        self.commit_time += took;
        self.slowest_commit = self.slowest_commit.max(took);
    }

    /// Counts one checkpoint run by the writer, which took `took`.
    pub(crate) fn checkpointed(&mut self, took: Duration) {
        self.checkpoints += 1;
        self.checkpoint_time += took;
    }

    /// Logs and restarts the tally when a report is due.
    pub(crate) fn report_if_due(&mut self) {
        if self.since.elapsed() < REPORT_EVERY || self.transactions == 0 {
            return;
        }
        let per_tx = |n: u64| n as f64 / self.transactions as f64;
        tracing::debug!(
            window_ms = self.since.elapsed().as_millis() as u64,
            transactions = self.transactions,
            inserts_per_tx = per_tx(self.inserts),
            delete_requests_per_tx = per_tx(self.deletes),
            deleted_rows_per_tx = per_tx(self.deleted_rows),
            commit_ms_avg = self.commit_time.as_secs_f64() * 1000.0 / self.transactions as f64,
            commit_ms_max = self.slowest_commit.as_secs_f64() * 1000.0,
            checkpoints = self.checkpoints,
            checkpoint_ms = self.checkpoint_time.as_secs_f64() * 1000.0,
            "store writer tally"
        );
        *self = Self::default();
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_restarts_the_counters() {
        let mut tally = Tally::default();
        tally.committed(&Batch::default(), Duration::from_millis(3));
        tally.checkpointed(Duration::from_millis(1));
        assert_eq!(tally.transactions, 1);
        assert_eq!(tally.slowest_commit, Duration::from_millis(3));
        tally.since -= REPORT_EVERY;
        tally.report_if_due();
        assert_eq!(tally.transactions, 0);
        assert_eq!(tally.checkpoints, 0);
    }
}
