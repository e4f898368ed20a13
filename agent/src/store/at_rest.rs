//! Patient data held beside the queue, kept minimal and bounded: the
//! quarantine's retention, the erasure of replayed entries once their
//! record was forwarded, and what the quarantine holds now (for `status`,
//! `doctor` and the heartbeat).
//!
//! Invariants:
//! - **Erasures go through the store's connections**, which run with
//!   `secure_delete=ON` (`schema.rs`): the erased bytes are overwritten in
//!   the database file, not left in free pages.
//! - **A replayed entry keeps its raw message until its record has left
//!   the queue** (deleted at PUBACK, marked sent, or dropped by a
//!   technician), then it is erased: until then the record may be the only
//!   other copy, and it has none when its interface does not forward raw
//!   HL7. An entry replayed by a build before schema 5 has no link to its
//!   record; that build stored the raw message with the record, so its
//!   entry is erased at once.
//! - **An entry's raw message is erased when it is older than the
//!   retention**, replayed or not; an open one counts as dropped then
//!   (`expired_at_ms`). Warnings come first: [`QuarantineOutlook`] counts
//!   the open entries that expire within the warning period.
//! - **Resolved entries are forgotten after the retention**: a tombstone
//!   (times, interface, error text; no message) is deleted once its
//!   erasure is older than the retention, so the table stays bounded.
//! - Every erasure, expiry and deletion writes one audit line per run with
//!   the entry ids as ranges, in the transaction that does it. Time is the
//!   caller's (`now_ms`).

use rusqlite::{Connection, Transaction, params};

use super::{audit, batch_audit::ranges};

/// Most entries handled per kind and transaction.
pub(crate) const ERASE_LIMIT: i64 = 500;

/// What one housekeeping pass did to the quarantine.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Replayed entries whose raw message was erased (their record left the queue).
    pub(crate) erased: Vec<i64>,
    /// Entries whose raw message was erased past the retention.
    pub(crate) expired: Vec<i64>,
    /// Tombstones deleted past the retention.
    pub(crate) forgotten: usize,
}

impl Swept {
    /// True when a kind reached its limit, so another pass has work.
    pub(crate) fn more(&self) -> bool {
        let limit = usize::try_from(ERASE_LIMIT).unwrap_or(usize::MAX);
        self.erased.len() >= limit || self.expired.len() >= limit || self.forgotten >= limit
    }
}

/// One bounded pass over the quarantine at `now_ms` with retention `retention_ms`: erases
/// replayed entries whose record has left the queue, expires entries past the retention and
/// forgets old tombstones, each with its audit line.
pub(crate) fn sweep(
    tx: &Transaction<'_>,
    now_ms: i64,
    retention_ms: i64,
) -> rusqlite::Result<Swept> {
    let erased = erase_forwarded(tx, now_ms)?;
    if !erased.is_empty() {
        let detail = format!(
            "{} replayed entries: raw message erased, their record left the queue: entries {}",
            erased.len(),
            ranges(&erased)
        );
        audit::append(tx, now_ms, "quarantine.erased", &detail)?;
    }
    let before = now_ms.saturating_sub(retention_ms);
    let expired = expire(tx, now_ms, before)?;
    if !expired.is_empty() {
        let detail = format!(
            "{} entries received before {}: raw message erased past the quarantine's retention \
             ({} days): entries {}",
            expired.len(),
            rfc3339(before),
            retention_ms / 86_400_000,
            ranges(&expired)
        );
        audit::append(tx, now_ms, "quarantine.expired", &detail)?;
    }
    let forgotten = forget(tx, before)?;
    if forgotten > 0 {
        let detail = format!(
            "{forgotten} resolved entries erased before {} removed (their audit lines remain)",
            rfc3339(before)
        );
        audit::append(tx, now_ms, "quarantine.forgotten", &detail)?;
    }
    Ok(Swept {
        erased,
        expired,
        forgotten,
    })
}

/// Erases replayed entries whose record is no longer waiting in the queue; returns their ids.
fn erase_forwarded(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<Vec<i64>> {
    tx.prepare_cached(
        "UPDATE quarantine SET raw = X'', ack = X'', erased_at_ms = ?1
         WHERE id IN (SELECT q.id FROM quarantine q
                      WHERE q.erased_at_ms IS NULL AND q.replayed_at_ms IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM records r
                                        WHERE r.id = q.record_id AND r.sent_at_ms IS NULL)
                      ORDER BY q.id LIMIT ?2)
         RETURNING id",
    )?
    .query_map(params![now_ms, ERASE_LIMIT], |r| r.get(0))?
    .collect::<rusqlite::Result<Vec<i64>>>()
    .map(sorted)
}

/// Erases entries received before `before_ms` that still hold their message; an open one
/// counts as dropped. Returns their ids.
fn expire(tx: &Transaction<'_>, now_ms: i64, before_ms: i64) -> rusqlite::Result<Vec<i64>> {
    tx.prepare_cached(
        "UPDATE quarantine SET raw = X'', ack = X'', erased_at_ms = ?1, expired_at_ms = ?1,
             dropped_at_ms = iif(replayed_at_ms IS NULL, coalesce(dropped_at_ms, ?1), dropped_at_ms)
         WHERE id IN (SELECT id FROM quarantine
                      WHERE erased_at_ms IS NULL AND received_at_ms < ?2
                      ORDER BY received_at_ms LIMIT ?3)
         RETURNING id",
    )?
    .query_map(params![now_ms, before_ms, ERASE_LIMIT], |r| r.get(0))?
    .collect::<rusqlite::Result<Vec<i64>>>()
    .map(sorted)
}

/// Deletes tombstones erased before `before_ms`; returns how many.
fn forget(tx: &Transaction<'_>, before_ms: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine
             WHERE erased_at_ms IS NOT NULL AND erased_at_ms < ?1 LIMIT ?2)",
    )?
    .execute(params![before_ms, ERASE_LIMIT])
}

fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// What the quarantine holds at one moment, against its cap and retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuarantineOutlook {
    /// Bytes counted against the quarantine's cap (messages and NAKs still held).
    pub bytes: u64,
    /// The cap, `quarantine.max_bytes`.
    pub max_bytes: u64,
    /// Entries that still hold their raw message (open, or replayed and not yet forwarded).
    pub held: u64,
    /// Open entries whose raw message is erased within the warning period (or already due).
    pub expiring: u64,
    /// When the next open entry's raw message is erased, Unix ms.
    pub next_expiry_ms: Option<i64>,
    /// The retention, ms.
    pub retention_ms: i64,
    /// The warning period before expiry, ms.
    pub warn_ms: i64,
}

impl QuarantineOutlook {
    /// True when a message of `cost` bytes would not fit the quarantine's cap.
    pub fn full_for(&self, cost: u64) -> bool {
        self.bytes.saturating_add(cost) > self.max_bytes
    }

    /// True when the quarantine holds 90 % of its cap or more: rejected messages larger than
    /// the room left are refused (AR) already, and soon any will be (`status`, `doctor`).
    pub fn nearly_full(&self) -> bool {
        self.bytes.saturating_mul(10) >= self.max_bytes.saturating_mul(9)
            || self.full_for(super::PROBE_MESSAGE_BYTES)
    }
}

/// Reads the [`QuarantineOutlook`] at `now_ms`.
pub(crate) fn outlook(
    conn: &Connection,
    now_ms: i64,
    limits: QuarantineLimits,
) -> rusqlite::Result<QuarantineOutlook> {
    let bytes = super::quarantine::usage(conn)?;
    let held: u64 = conn
        .prepare_cached("SELECT count(*) FROM quarantine WHERE erased_at_ms IS NULL")?
        .query_row([], |r| r.get(0))?;
    let next_expiry_ms: Option<i64> = conn
        .prepare_cached(
            "SELECT min(received_at_ms) FROM quarantine
             WHERE erased_at_ms IS NULL AND replayed_at_ms IS NULL AND dropped_at_ms IS NULL",
        )?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?
        .map(|t| t.saturating_add(limits.retention_ms));
    let warn_from = now_ms
        .saturating_sub(limits.retention_ms)
        .saturating_add(limits.warn_ms);
    let expiring: u64 = conn
        .prepare_cached(
            "SELECT count(*) FROM quarantine
             WHERE erased_at_ms IS NULL AND replayed_at_ms IS NULL AND dropped_at_ms IS NULL
               AND received_at_ms <= ?1",
        )?
        .query_row([warn_from], |r| r.get(0))?;
    Ok(QuarantineOutlook {
        bytes,
        max_bytes: limits.max_bytes,
        held,
        expiring,
        next_expiry_ms,
        retention_ms: limits.retention_ms,
        warn_ms: limits.warn_ms,
    })
}

/// The quarantine's cap, retention and warning period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineLimits {
    /// `quarantine.max_bytes`.
    pub max_bytes: u64,
    /// `quarantine.retention`, ms.
    pub retention_ms: i64,
    /// `quarantine.warn_before`, ms.
    pub warn_ms: i64,
}

impl QuarantineLimits {
    /// The limits of a cap, a retention and a warning period.
    pub fn new(
        max_bytes: u64,
        retention: std::time::Duration,
        warn_before: std::time::Duration,
    ) -> Self {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            max_bytes,
            retention_ms: ms(retention),
            warn_ms: ms(warn_before),
        }
    }
}
