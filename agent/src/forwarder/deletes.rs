//! Deleting PUBACKed rows without holding up the MQTT event loop.
//!
//! A PUBACK's rows are handed to the store writer as a request; the
//! forwarder does not wait for that commit before reading the next event.
//! At most one request is in flight: rows acknowledged while it commits
//! wait here and go together in the next request (up to
//! [`MAX_REQUEST_ROWS`]), so the writer sees one delete request per commit
//! (folded into the same transaction as whatever ingest is waiting), not
//! one per PUBACK, and no transaction grows past the standing WAL.
//!
//! Invariants:
//! - Only rows whose PUBACK arrived are ever passed here (the caller's
//!   promise), so nothing is deleted before the broker has it.
//! - Rows waiting here are few: the caller stops publishing while
//!   [`Deletes::backlog`] is at its limit, so memory stays bounded.
//! - A request that fails leaves its rows queued in the store. A full disk
//!   or a busy database is retried (the rows wait here, and the caller stops
//!   publishing while they are many); any other failure ends the connection
//!   and the rows are published again later (at-least-once; the hub drops
//!   duplicates).

use std::future::pending;

use tokio::task::JoinHandle;

use crate::store::{StoreError, StoreHandle, now_ms};

/// Most rows deleted by one request: every deleted row's pages are
/// rewritten (secure delete), and a transaction this size still fits the
/// store's standing write-ahead log.
pub const MAX_REQUEST_ROWS: usize = 256;

/// Most acknowledged rows allowed to wait for their delete before the
/// forwarder stops publishing: enough to keep the next request full while
/// one commits, and a bound that does not grow with the window or batch
/// settings. Deletes (every freed page is rewritten, then checkpointed)
/// are what limits a drain; publishing further ahead of them would only
/// add rows that a restart publishes again.
pub const MAX_BACKLOG_ROWS: usize = 4 * MAX_REQUEST_ROWS;

/// A delete request on its way to the store and the rows it carries.
type Running = (JoinHandle<Result<u64, StoreError>>, Vec<i64>);

/// The delete requests of one forwarder connection.
#[derive(Debug)]
pub struct Deletes {
    store: StoreHandle,
    /// Acknowledged rows not yet sent to the store.
    waiting: Vec<i64>,
    /// The request in flight, how many rows it carries, and which (kept to
    /// send again if the request fails for a reason that passes).
    running: Option<Running>,
}

impl Deletes {
    /// Nothing waiting, nothing in flight.
    pub fn new(store: StoreHandle) -> Self {
        Deletes {
            store,
            waiting: Vec::new(),
            running: None,
        }
    }

    /// Rows acknowledged by the broker whose delete has not committed yet.
    pub fn backlog(&self) -> usize {
        self.waiting.len() + self.running.as_ref().map_or(0, |(_, seqs)| seqs.len())
    }

    /// Queues PUBACKed rows for deletion; sends them at once when no
    /// request is in flight.
    pub fn push(&mut self, seqs: Vec<i64>) {
        self.waiting.extend(seqs);
        self.start();
    }

    /// Waits for the request in flight to commit, then sends the rows that
    /// waited meanwhile. Returns how many rows the finished request
    /// carried; never completes when nothing is in flight (for `select!`).
    pub async fn next_done(&mut self) -> Result<usize, StoreError> {
        let Some((handle, seqs)) = self.running.as_mut() else {
            return pending().await;
        };
        let rows = seqs.len();
        let outcome = handle.await;
        let failed = self.running.take().map(|(_, seqs)| seqs);
        match outcome {
            Ok(Ok(_found)) => {
                self.start();
                Ok(rows)
            }
            Ok(Err(e)) => {
                if let Some(seqs) = failed.filter(|_| is_retryable(&e)) {
                    // Kept, in order, ahead of rows that arrived meanwhile;
                    // sent again by the next [`Deletes::retry`].
                    self.waiting.splice(0..0, seqs);
                }
                Err(e)
            }
            Err(_join) => Err(StoreError::Closed),
        }
    }

    /// Sends the waiting rows again after a retryable failure (a full disk
    /// or a busy database); does nothing while a request is in flight.
    pub fn retry(&mut self) {
        self.start();
    }

    /// Waits until every queued row is deleted; returns how many rows were.
    pub async fn flush(&mut self) -> Result<usize, StoreError> {
        self.start();
        let mut done = 0;
        while self.running.is_some() {
            done += self.next_done().await?;
        }
        Ok(done)
    }

    fn start(&mut self) {
        if self.running.is_some() || self.waiting.is_empty() {
            return;
        }
        let take = self.waiting.len().min(MAX_REQUEST_ROWS);
        let seqs: Vec<i64> = self.waiting.drain(..take).collect();
        let store = self.store.clone();
        let request = seqs.clone();
        let handle = tokio::spawn(async move { store.forwarded(request, now_ms()).await });
        self.running = Some((handle, seqs));
    }
}

/// Whether a failed delete may simply be tried again later: the disk or
/// the size limit is full (deletes are what frees it), or the database was
/// busy. Anything else ends the connection.
pub fn is_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Full { .. } | StoreError::Transient { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Inserted, NewMessage, Store, StoreConfig};

    fn message(n: usize) -> NewMessage {
        NewMessage {
            no_ack_requested: false,
            source: "lab".to_owned(),
            control_id: format!("c{n}"),
            content_hash: [u8::try_from(n % 256).unwrap_or(0); 32],
            message_type: "ORU^R01".to_owned(),
            received_at_ms: now_ms(),
            raw: b"MSH|^~\\&|".to_vec(),
            record: vec![1, 2, 3],
            ack: b"MSA|AA".to_vec(),
        }
    }

    #[tokio::test]
    async fn rows_pushed_while_a_delete_commits_go_in_one_later_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opened = Store::open(StoreConfig::new(dir.path().join("queue.db"))).expect("open");
        let mut seqs = Vec::new();
        for n in 0..5 {
            match opened.handle.insert(message(n)).await.expect("insert") {
                Inserted::Stored { seq, .. } => seqs.push(seq),
                Inserted::Duplicate { .. } => panic!("distinct messages"),
            }
        }
        let mut deletes = Deletes::new(opened.handle.clone());
        deletes.push(seqs[..1].to_vec());
        deletes.push(seqs[1..3].to_vec());
        deletes.push(seqs[3..].to_vec());
        assert_eq!(deletes.backlog(), 5);
        assert_eq!(deletes.next_done().await.expect("first delete"), 1);
        assert_eq!(deletes.backlog(), 4, "the rest went out in one request");
        assert_eq!(deletes.flush().await.expect("flush"), 4);
        assert_eq!(deletes.backlog(), 0);
        let reader = opened.handle.open_reader().expect("reader");
        assert!(reader.pending(0, 10).expect("read").is_empty());
    }
}
