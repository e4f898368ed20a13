//! The audit trail: who did what to the data, with no PHI in it.
//!
//! The store itself writes `store.recovered` (a corrupt file set aside),
//! `records.purged` (retention), `quarantine.replayed` and
//! `quarantine.dropped`; other parts of the agent add lines (configuration
//! and certificate changes) through
//! [`StoreHandle::audit`](super::StoreHandle::audit). A detail names
//! counts, ids and file names, never patient data.

use rusqlite::{Connection, params};

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The line's id (increasing).
    pub id: i64,
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
    /// A dotted kind, for example `quarantine.dropped`.
    pub kind: String,
    /// What happened, without PHI.
    pub detail: String,
}

/// Appends a line (inside the caller's transaction, if any).
pub(crate) fn append(
    conn: &Connection,
    at_ms: i64,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO audit (at_ms, kind, detail) VALUES (?1, ?2, ?3)")?
        .execute(params![at_ms, kind, detail])?;
    Ok(())
}

/// The newest `limit` lines, newest first.
pub(crate) fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt =
        conn.prepare_cached("SELECT id, at_ms, kind, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
    let rows = stmt.query_map([limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            kind: r.get(2)?,
            detail: r.get(3)?,
        })
    })?;
    rows.collect()
}
