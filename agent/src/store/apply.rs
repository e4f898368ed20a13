//! The body of one group-commit transaction: every request of a batch,
//! applied in a fixed order inside one transaction.
//!
//! Order: forwarded deletes (and the retention purge) first, because they
//! free space; then parked records, quarantine resolutions and audit lines; then space is
//! measured and inserts and quarantines are applied in arrival order. The
//! caller commits; nothing here is visible, or answered, before that.

use std::path::PathBuf;

use rusqlite::{Transaction, params};

use super::{
    audit, batch_audit, custody,
    error::StoreError,
    hub_link, ingest, offline, parked, quarantine,
    request::{Batch, BatchResults, Forward, OpRef, Replay, Resolve},
    space::{Space, SpacePolicy},
    stats::StatsDelta,
};

/// The store's limits, as the writer applies them.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// See [`StoreConfig::max_bytes`](super::StoreConfig::max_bytes).
    pub(crate) max_bytes: u64,
    /// Sent rows are kept this long; 0 deletes at once.
    pub(crate) retain_sent_ms: i64,
    /// See [`StoreConfig::dedupe_window`](super::StoreConfig::dedupe_window).
    pub(crate) dedupe_window_ms: i64,
    /// Receipt mode's timeout (see `custody.rs`); `None` in puback mode, where a PUBACK
    /// deletes.
    pub(crate) receipt_timeout_ms: Option<i64>,
    /// See [`StoreConfig::reserve_bytes`](super::StoreConfig::reserve_bytes).
    pub(crate) reserve_bytes: u64,
    /// The database file.
    pub(crate) db_path: PathBuf,
    /// Its write-ahead log.
    pub(crate) wal_path: PathBuf,
    /// See [`StoreConfig::quarantine_max_bytes`](super::StoreConfig::quarantine_max_bytes).
    pub(crate) quarantine_max_bytes: u64,
    /// See [`StoreConfig::quarantine_retention`](super::StoreConfig::quarantine_retention).
    pub(crate) quarantine_retention_ms: i64,
    /// See [`StoreConfig::rhythm_hour`](super::StoreConfig::rhythm_hour).
    pub(crate) rhythm_hour_ms: i64,
}

impl Limits {
    pub(crate) fn space_policy(&self) -> SpacePolicy<'_> {
        SpacePolicy {
            db_path: &self.db_path,
            wal_path: &self.wal_path,
            max_bytes: self.max_bytes,
            reserve_bytes: self.reserve_bytes,
            quarantine_max_bytes: self.quarantine_max_bytes,
        }
    }
}

/// Why a batch's transaction failed, and which request caused it, if one
/// request did (a failure outside any single request has no culprit).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) culprit: Option<OpRef>,
    pub(crate) error: rusqlite::Error,
}

impl Failure {
    /// A failure not tied to one request (measurement, counters, COMMIT).
    pub(crate) fn whole(error: rusqlite::Error) -> Self {
        Self {
            culprit: None,
            error,
        }
    }

    fn at(culprit: OpRef) -> impl FnOnce(rusqlite::Error) -> Self {
        move |error| Self {
            culprit: Some(culprit),
            error,
        }
    }
}

/// What a batch did, to answer once it has committed.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) results: BatchResults,
    /// The highest seq inserted, if any record was.
    pub(crate) last_seq: Option<i64>,
}

/// Applies every request of `batch` inside `tx`.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    batch: &Batch,
    limits: &Limits,
) -> Result<Applied, Failure> {
    let mut stats = StatsDelta::with_rhythm(limits.rhythm_hour_ms);
    let mut applied = Applied::default();
    for (i, p) in batch.forwarded.iter().enumerate() {
        let n = match limits.receipt_timeout_ms {
            None => forward(tx, &p.req, limits.retain_sent_ms, &mut stats),
            Some(timeout_ms) => {
                let runs = consecutive_runs(&p.req.seqs);
                custody::mark_at_broker(tx, &runs, p.req.now_ms, timeout_ms, &mut stats)
            }
        }
        .map_err(Failure::at(OpRef::Forwarded(i)))?;
        applied.results.forwarded.push(n);
    }
    for (i, p) in batch.receipts.iter().enumerate() {
        let seqs = custody::apply_receipt(tx, &p.req, limits.retain_sent_ms)
            .map_err(Failure::at(OpRef::Receipt(i)))?;
        applied.results.receipts.push(seqs);
    }
    for (i, p) in batch.links.iter().enumerate() {
        hub_link::write(tx, &p.req).map_err(Failure::at(OpRef::HubLink(i)))?;
    }
    if let Some(now_ms) = batch.forwarded.iter().map(|p| p.req.now_ms).max() {
        purge_sent(tx, now_ms, limits.retain_sent_ms).map_err(Failure::whole)?;
    }
    for (i, p) in batch.parks.iter().enumerate() {
        let req = &p.req;
        let parked = parked::park(tx, req.seq, req.at_ms, &req.detail)
            .map_err(Failure::at(OpRef::Park(i)))?;
        applied.results.parks.push(parked);
    }
    for (i, p) in batch.resolves.iter().enumerate() {
        let r = resolve(tx, &p.req).map_err(Failure::at(OpRef::Resolve(i)))?;
        applied.results.resolves.push(r);
    }
    for (i, p) in batch.audits.iter().enumerate() {
        let line = &p.req;
        audit::append(tx, line.at_ms, &line.kind, &line.detail)
            .map_err(Failure::at(OpRef::Audit(i)))?;
    }
    if batch.grows() {
        let mut space = Space::measure(tx, limits.space_policy()).map_err(Failure::whole)?;
        apply_growth(tx, batch, limits, &mut space, &mut stats, &mut applied)?;
    }
    stats.flush(tx).map_err(Failure::whole)?;
    audit_batch(tx, batch, &applied.results).map_err(Failure::whole)?;
    Ok(applied)
}

/// One audit line for what the batch received and answered, one for what the broker
/// acknowledged (see `batch_audit.rs`).
fn audit_batch(
    tx: &Transaction<'_>,
    batch: &Batch,
    results: &super::request::BatchResults,
) -> rusqlite::Result<()> {
    let now = super::now_ms();
    if let Some(detail) = batch_audit::received_line(batch, results) {
        audit::append(tx, now, "messages.received", &detail)?;
    }
    if let Some(detail) = batch_audit::forwarded_line(batch, results) {
        audit::append(tx, now, "records.forwarded", &detail)?;
    }
    if let Some(detail) = batch_audit::receipted_line(results) {
        audit::append(tx, now, "records.receipted", &detail)?;
    }
    Ok(())
}

fn apply_growth(
    tx: &Transaction<'_>,
    batch: &Batch,
    limits: &Limits,
    space: &mut Space,
    stats: &mut StatsDelta,
    applied: &mut Applied,
) -> Result<(), Failure> {
    for (i, p) in batch.inserts.iter().enumerate() {
        let r = ingest::insert(tx, &p.req, limits.dedupe_window_ms, space, stats)
            .map_err(Failure::at(OpRef::Insert(i)))?;
        if let Ok(super::Inserted::Stored { seq, .. }) = &r {
            applied.last_seq = Some(applied.last_seq.map_or(*seq, |s| s.max(*seq)));
        }
        applied.results.inserts.push(r);
    }
    for (i, p) in batch.quarantines.iter().enumerate() {
        let r = ingest::quarantine(tx, &p.req, space, stats)
            .map_err(Failure::at(OpRef::Quarantine(i)))?;
        applied.results.quarantines.push(r);
    }
    for (i, p) in batch.replays.iter().enumerate() {
        let r = replay(tx, &p.req, limits, space).map_err(Failure::at(OpRef::Replay(i)))?;
        if let Ok(super::Inserted::Stored { seq, .. }) = &r {
            applied.last_seq = Some(applied.last_seq.map_or(*seq, |s| s.max(*seq)));
        }
        applied.results.replays.push(r);
    }
    if space.refused().is_some() && limits.retain_sent_ms > 0 {
        purge_sent_early(tx).map_err(Failure::whole)?;
    }
    Ok(())
}

/// Frees room for refused messages (whose senders will retry) by purging
/// the oldest *sent* records before their retention ends: a delivered copy
/// is never worth refusing new clinical data for.
fn purge_sent_early(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let purged = tx
        .prepare_cached(
            "DELETE FROM records WHERE seq IN (SELECT seq FROM records
             WHERE sent_at_ms IS NOT NULL ORDER BY sent_at_ms LIMIT ?1)",
        )?
        .execute([PURGE_LIMIT])?;
    if purged > 0 {
        let detail = format!("{purged} sent records before retention: store full");
        audit::append(tx, super::now_ms(), "records.purged", &detail)?;
    }
    Ok(())
}

/// Deletes (or marks sent) the broker-acknowledged records; returns how
/// many rows it found. Unknown or already handled seqs are skipped.
///
/// Seqs are handled in runs of consecutive numbers, one statement per run:
/// a run names every seq in its range, so no row outside `req.seqs` is
/// ever touched, and a drain (whose acknowledged rows are mostly
/// consecutive) costs one statement per publish instead of one per row.
fn forward(
    tx: &Transaction<'_>,
    req: &Forward,
    retain_sent_ms: i64,
    stats: &mut StatsDelta,
) -> rusqlite::Result<u64> {
    let mut stmt = if retain_sent_ms == 0 {
        tx.prepare_cached("DELETE FROM records WHERE seq BETWEEN ?1 AND ?2 RETURNING source")?
    } else {
        tx.prepare_cached(
            "UPDATE records SET sent_at_ms = ?3
             WHERE seq BETWEEN ?1 AND ?2 AND sent_at_ms IS NULL RETURNING source",
        )?
    };
    let mut done = 0;
    let mut counted = SourceCount::default();
    for (first, last) in consecutive_runs(&req.seqs) {
        let mut rows = if retain_sent_ms == 0 {
            stmt.query(params![first, last])?
        } else {
            stmt.query(params![first, last, req.now_ms])?
        };
        while let Some(row) = rows.next()? {
            counted.add(row.get_ref(0)?.as_str()?, stats);
            done += 1;
        }
    }
    counted.flush(stats);
    Ok(done)
}

/// Counts rows per source without a map lookup per row: consecutive rows
/// mostly share their source.
#[derive(Default)]
struct SourceCount {
    source: String,
    rows: u64,
}

impl SourceCount {
    fn add(&mut self, source: &str, stats: &mut StatsDelta) {
        if self.source != source {
            self.flush(stats);
            source.clone_into(&mut self.source);
        }
        self.rows += 1;
    }

    fn flush(&mut self, stats: &mut StatsDelta) {
        if self.rows > 0 {
            stats.source(&self.source).forwarded += std::mem::take(&mut self.rows);
        }
    }
}

/// Splits seqs into inclusive ranges of consecutive numbers, in order
/// (`[1, 2, 3, 7, 8, 5]` gives `(1, 3), (7, 8), (5, 5)`).
fn consecutive_runs(seqs: &[i64]) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &seq in seqs {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(seq) => *last = seq,
            _ => runs.push((seq, seq)),
        }
    }
    runs
}

/// Most sent records purged per transaction, so that a purge's WAL frames
/// (every freed page is rewritten, with `secure_delete`) stay small.
pub(crate) const PURGE_LIMIT: usize = 1_000;

/// Deletes up to [`PURGE_LIMIT`] sent records older than the retention;
/// audits and returns how many.
pub(crate) fn purge_sent(
    tx: &Transaction<'_>,
    now_ms: i64,
    retain_sent_ms: i64,
) -> rusqlite::Result<usize> {
    if retain_sent_ms == 0 {
        return Ok(0);
    }
    let purged = tx
        .prepare_cached(
            "DELETE FROM records WHERE seq IN (SELECT seq FROM records
             WHERE sent_at_ms IS NOT NULL AND sent_at_ms < ?1 LIMIT ?2)",
        )?
        .execute(params![now_ms.saturating_sub(retain_sent_ms), PURGE_LIMIT])?;
    if purged > 0 {
        let detail = format!("{purged} sent records past retention");
        audit::append(tx, now_ms, "records.purged", &detail)?;
    }
    Ok(purged)
}

/// One replay in a savepoint of its own: a replay that fails (entry no longer open, store
/// full) leaves nothing behind, and the rest of the batch commits. Its counters are its own
/// (a replay is not an arrival: no hour of the rhythm counts it).
fn replay(
    tx: &Transaction<'_>,
    req: &Replay,
    limits: &Limits,
    space: &mut Space,
) -> rusqlite::Result<Result<super::Inserted, StoreError>> {
    tx.execute_batch("SAVEPOINT replay")?;
    let mut delta = StatsDelta::default();
    let r = offline::replay_in(
        tx,
        req.id,
        &req.message,
        req.at_ms,
        limits.dedupe_window_ms,
        space,
        &mut delta,
    )?;
    if r.is_ok() {
        delta.flush(tx)?;
        tx.execute_batch("RELEASE replay")?;
    } else {
        tx.execute_batch("ROLLBACK TO replay; RELEASE replay")?;
    }
    Ok(r)
}

fn resolve(tx: &Transaction<'_>, req: &Resolve) -> rusqlite::Result<Result<(), StoreError>> {
    if !quarantine::resolve(tx, req.id, req.how, req.at_ms)? {
        return Ok(Err(StoreError::NotFound {
            what: "unresolved quarantine entry",
            id: req.id,
        }));
    }
    if let Some(record) = req.record {
        quarantine::link_record(tx, req.id, record)?;
    }
    let kind = req.how.audit_kind();
    audit::append(tx, req.at_ms, kind, &format!("quarantine entry {}", req.id))?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_split_into_runs_of_consecutive_numbers_in_order() {
        assert_eq!(
            consecutive_runs(&[1, 2, 3, 7, 8, 5, 5]),
            vec![(1, 3), (7, 8), (5, 5), (5, 5)]
        );
        assert!(consecutive_runs(&[]).is_empty());
        assert_eq!(
            consecutive_runs(&[i64::MAX, 1]),
            vec![(i64::MAX, i64::MAX), (1, 1)]
        );
    }
}
