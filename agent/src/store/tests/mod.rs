//! Tests of the store as a whole: through [`StoreHandle`] and
//! [`StoreReader`], against real files in temporary directories.

mod basics;
mod crash;
mod dedupe;
mod fatal;
mod model;
mod parked;
mod recovery;
mod sequence;
mod space;

use std::{path::Path, time::Duration};

use tempfile::TempDir;
use tokio::sync::mpsc;

use super::{
    Inserted, NewMessage, OpenedStore, Store, StoreConfig, StoreError, StoreReader,
    handle::StoreHandle as RawHandle, now_ms, open, writer::Writer,
};

/// A store in a fresh temporary directory (kept alive by the `TempDir`).
pub(super) fn temp_config() -> (TempDir, StoreConfig) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = StoreConfig::new(dir.path().join("queue.db"));
    (dir, cfg)
}

/// A content hash good enough for tests: distinct contents, distinct hashes.
pub(super) fn hash(content: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (i, b) in content.bytes().enumerate() {
        h[i % 32] = h[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    h[31] ^= u8::try_from(content.len() % 256).unwrap_or(0);
    h
}

/// An ORU message from `source` with control id `control_id`.
pub(super) fn message(source: &str, control_id: &str, content: &str) -> NewMessage {
    NewMessage {
        no_ack_requested: false,
        source: source.to_owned(),
        control_id: control_id.to_owned(),
        content_hash: hash(content),
        message_type: "ORU^R01".to_owned(),
        received_at_ms: now_ms(),
        raw: format!(
            "MSH|^~\\&|LAB|CLINIC|HUB|ORG|20250101||ORU^R01|{control_id}|P|2.5\r{content}"
        )
        .into_bytes(),
        record: content.as_bytes().to_vec(),
        ack: format!("MSH|...|ACK\rMSA|AA|{control_id}").into_bytes(),
    }
}

/// A message with a payload of `size` bytes.
pub(super) fn sized_message(source: &str, control_id: &str, size: usize) -> NewMessage {
    let mut msg = message(source, control_id, control_id);
    msg.raw = vec![b'x'; size];
    msg
}

pub(super) fn open_store(cfg: &StoreConfig) -> OpenedStore {
    Store::open(cfg.clone()).expect("store opens")
}

/// Drops the handle and waits for the writer to stop.
pub(super) async fn close(store: OpenedStore) -> Result<(), StoreError> {
    let OpenedStore { handle, writer, .. } = store;
    drop(handle);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("join task")
}

pub(super) fn reader(cfg: &StoreConfig) -> StoreReader {
    StoreReader::open(&cfg.path).expect("reader opens")
}

/// Seqs of every unsent record, in order.
pub(super) fn pending_seqs(cfg: &StoreConfig) -> Vec<i64> {
    reader(cfg)
        .pending(0, 100_000)
        .expect("pending")
        .iter()
        .map(|r| r.seq)
        .collect()
}

pub(super) fn stored(result: Result<Inserted, StoreError>) -> (uuid::Uuid, i64) {
    match result {
        Ok(Inserted::Stored { id, seq, .. }) => (id, seq),
        other => panic!("expected Stored, got {other:?}"),
    }
}

/// Queues every message before the writer starts, so they all arrive in
/// one batch; returns each answer and the number of transactions used.
pub(super) async fn insert_as_one_batch(
    cfg: &StoreConfig,
    msgs: Vec<NewMessage>,
) -> (Vec<Result<Inserted, StoreError>>, u64) {
    let opened = open::open(cfg).expect("open");
    let (ops, receiver) = mpsc::channel(msgs.len().max(1));
    let (handle, signals) = RawHandle::new(ops, cfg.path.clone(), opened.report.last_seq);
    let count = msgs.len();
    let tasks: Vec<_> = msgs
        .into_iter()
        .map(|m| {
            let h = handle.clone();
            tokio::spawn(async move { h.insert(m).await })
        })
        .collect();
    while receiver.len() < count {
        tokio::task::yield_now().await;
    }
    let writer = Writer::new(opened.conn, cfg.limits(), 512, signals);
    let thread = writer.spawn(receiver).expect("writer starts");
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let transactions = handle.metrics().transactions;
    drop(handle);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("join task")
        .expect("writer thread")
        .expect("writer ok");
    (results, transactions)
}

/// Waits until `f` holds, polling, for at most `limit`.
pub(super) async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Row count of a table, read with a plain connection.
pub(super) fn count_rows(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}
