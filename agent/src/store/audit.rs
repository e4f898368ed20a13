//! The audit trail: who did what to the data, with no PHI in it, hash-chained so that an edited,
//! deleted or reordered line is detected.
//!
//! Lines: the store writes one line per transaction for the messages it received and answered
//! (`messages.received`: per interface, stored records as seq ranges with AA, resends, quarantine
//! entries with AE, refusals with AR and their cause) and one for the records the broker
//! acknowledged (`records.forwarded`, seq ranges), never one per message, so the hot path pays one
//! small insert per commit; plus `store.recovered`, `records.purged`, `quarantine.*`,
//! `audit.pruned`; the agent adds `agent.started` (configuration hash and certificate
//! fingerprint, one line when either changed), `provision` and `provision.install-cert` lines
//! come from those commands. A detail names counts, ids, sequence numbers, hashes and file
//! names, never patient data.
//!
//! Invariants:
//! - **Chained.** Line `n` stores `hash_n = SHA-256(hash_{n-1} ‖ id ‖ at_ms ‖ kind ‖ detail)`
//!   (lengths prefixed, integers big-endian); ids are consecutive. [`verify`] recomputes the
//!   chain: a changed field breaks that line's hash, a deleted line breaks the id sequence and
//!   the next line's hash, a reordering breaks both. Only truncation of the newest lines keeps a
//!   valid chain, which is why the head hash travels in every heartbeat (the hub keeps it).
//! - **Appended in the writer's transaction** (or the offline command's), so a line commits
//!   exactly when what it describes does.
//! - **Pruned by age from the oldest end only**, keeping an anchor (`audit_anchor`: the last
//!   pruned line's id and hash), so the kept lines still verify from the first one.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

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

/// A line with its chain hash, as [`lines`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// The line.
    pub entry: AuditEntry,
    /// Its hash (32 bytes).
    pub hash: Vec<u8>,
}

/// The hash before the first line ever written.
pub const GENESIS: [u8; 32] = [0; 32];

/// Audit lines older than this are pruned (with an anchor; see the module doc).
pub const RETENTION_MS: i64 = 400 * 86_400_000;

/// Most lines pruned per transaction.
const PRUNE_BATCH: i64 = 5_000;

/// The hash of a line given the previous line's hash.
pub fn line_hash(prev: &[u8], id: i64, at_ms: i64, kind: &str, detail: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(id.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    for text in [kind, detail] {
        h.update(u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

/// The newest line's id and hash, or the anchor's, or `(0, GENESIS)`.
fn head(conn: &Connection) -> rusqlite::Result<(i64, Vec<u8>)> {
    let newest: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match newest {
        Some((id, Some(hash))) => Ok((id, hash)),
        Some((_, None)) => {
            seal(conn)?;
            head(conn)
        }
        None => anchor(conn),
    }
}

/// The anchor left by pruning, or `(0, GENESIS)`.
fn anchor(conn: &Connection) -> rusqlite::Result<(i64, Vec<u8>)> {
    Ok(conn
        .prepare_cached("SELECT last_id, last_hash FROM audit_anchor WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec())))
}

/// Appends a line (inside the caller's transaction, if any), chained to the newest one.
pub(crate) fn append(
    conn: &Connection,
    at_ms: i64,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    let (prev_id, prev_hash) = head(conn)?;
    let id = prev_id.saturating_add(1);
    let hash = line_hash(&prev_hash, id, at_ms, kind, detail);
    conn.prepare_cached(
        "INSERT INTO audit (id, at_ms, kind, detail, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, at_ms, kind, detail, hash.as_slice()])?;
    Ok(())
}

/// Chains lines written by a build without hashes (schema 2 and older), in id order, after the
/// last hashed line. Run at open; a no-op once every line has its hash.
pub(crate) fn seal(conn: &Connection) -> rusqlite::Result<usize> {
    let unsealed: Vec<AuditEntry> = conn
        .prepare("SELECT id, at_ms, kind, detail FROM audit WHERE hash IS NULL ORDER BY id")?
        .query_map([], entry_from_row)?
        .collect::<Result<_, _>>()?;
    let Some(first) = unsealed.first() else {
        return Ok(0);
    };
    let mut prev: Vec<u8> = conn
        .query_row(
            "SELECT hash FROM audit WHERE id < ?1 AND hash IS NOT NULL ORDER BY id DESC LIMIT 1",
            [first.id],
            |r| r.get(0),
        )
        .optional()?
        .map_or_else(|| anchor(conn).map(|(_, h)| h), Ok)?;
    let mut update = conn.prepare("UPDATE audit SET hash = ?2 WHERE id = ?1")?;
    for e in &unsealed {
        let hash = line_hash(&prev, e.id, e.at_ms, &e.kind, &e.detail);
        update.execute(params![e.id, hash.as_slice()])?;
        prev = hash.to_vec();
    }
    Ok(unsealed.len())
}

/// The newest `limit` lines, newest first.
pub(crate) fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt =
        conn.prepare_cached("SELECT id, at_ms, kind, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
    let rows = stmt.query_map([limit], entry_from_row)?;
    rows.collect()
}

/// The newest `limit` lines whose kind starts with `prefix` (e.g. `push.`), newest first.
pub(crate) fn recent_of(
    conn: &Connection,
    prefix: &str,
    limit: usize,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, kind, detail FROM audit WHERE substr(kind, 1, length(?1)) = ?1
         ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![prefix, limit], entry_from_row)?;
    rows.collect()
}

/// Lines with `id > after`, oldest first, at most `limit`, with their hashes.
pub(crate) fn lines(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<ChainedEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, kind, detail, coalesce(hash, x'') FROM audit
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map([after, limit], |r| {
        Ok(ChainedEntry {
            entry: entry_from_row(r)?,
            hash: r.get(4)?,
        })
    })?;
    rows.collect()
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        detail: r.get(3)?,
    })
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every kept line chains from the anchor to the head.
    Intact {
        /// Lines checked.
        lines: u64,
        /// The first kept line's id (0 when there are none).
        first_id: i64,
        /// The head hash, hex (the anchor's when no line is kept).
        head: String,
        /// Lines pruned before the first kept one.
        pruned: u64,
    },
    /// The chain breaks at line `id`.
    Broken {
        /// The first line that does not verify.
        id: i64,
        /// What is wrong there.
        why: String,
    },
}

/// Recomputes the chain over every kept line.
pub(crate) fn verify(conn: &Connection) -> rusqlite::Result<Verdict> {
    let (anchor_id, anchor_hash) = anchor(conn)?;
    let pruned: u64 = conn
        .query_row("SELECT pruned FROM audit_anchor WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    let (mut prev_id, mut prev_hash) = (anchor_id, anchor_hash);
    let mut count = 0_u64;
    let mut first_id = 0;
    let mut after = anchor_id;
    loop {
        let batch = lines(conn, after, 2_000)?;
        if batch.is_empty() {
            break;
        }
        for line in &batch {
            let e = &line.entry;
            if count == 0 {
                first_id = e.id;
            }
            if e.id != prev_id.saturating_add(1) {
                return Ok(Verdict::Broken {
                    id: e.id,
                    why: format!(
                        "line {} follows line {prev_id}: lines were deleted or reordered",
                        e.id
                    ),
                });
            }
            let expected = line_hash(&prev_hash, e.id, e.at_ms, &e.kind, &e.detail);
            if line.hash != expected {
                return Ok(Verdict::Broken {
                    id: e.id,
                    why: format!(
                        "line {} does not match its hash: it, or a line before it, was changed",
                        e.id
                    ),
                });
            }
            prev_id = e.id;
            prev_hash = expected.to_vec();
            count += 1;
            after = e.id;
        }
    }
    Ok(Verdict::Intact {
        lines: count,
        first_id,
        head: hex(&prev_hash),
        pruned,
    })
}

/// The head hash (hex) and the number of kept lines, for the heartbeat.
pub(crate) fn head_summary(conn: &Connection) -> rusqlite::Result<(Option<String>, u64)> {
    let count: u64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
    let newest: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok((newest.flatten().map(|h| hex(&h)), count))
}

/// Prunes lines older than `now_ms - RETENTION_MS` from the oldest end (a bounded batch),
/// moving the anchor to the last pruned line; returns how many were pruned.
pub(crate) fn prune(conn: &Connection, now_ms: i64) -> rusqlite::Result<u64> {
    let cutoff = now_ms.saturating_sub(RETENTION_MS);
    let Some(first) = conn.query_row("SELECT min(id) FROM audit", [], |r| {
        r.get::<_, Option<i64>>(0)
    })?
    else {
        return Ok(0);
    };
    // The oldest lines, in id order, as long as each is older than the cutoff.
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT id, hash FROM audit WHERE id < ?1 + ?2 AND id < coalesce(
                 (SELECT min(id) FROM audit WHERE at_ms >= ?3), 9223372036854775807)
             ORDER BY id DESC LIMIT 1",
            params![first, PRUNE_BATCH, cutoff],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((last_id, last_hash)) = last else {
        return Ok(0);
    };
    let pruned = conn.execute("DELETE FROM audit WHERE id <= ?1", [last_id])?;
    let pruned = u64::try_from(pruned).unwrap_or(0);
    conn.execute(
        "INSERT INTO audit_anchor (id, last_id, last_hash, pruned) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET last_id = excluded.last_id,
             last_hash = excluded.last_hash, pruned = pruned + excluded.pruned",
        params![last_id, last_hash, pruned],
    )?;
    append(
        conn,
        now_ms,
        "audit.pruned",
        &format!("{pruned} lines older than 400 days, up to line {last_id}"),
    )?;
    Ok(pruned)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;

    fn trail(lines: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("q.db")).unwrap();
        schema::migrate(&mut conn).unwrap();
        for i in 0..lines {
            let at = i64::try_from(i).unwrap() * 1_000;
            append(
                &conn,
                at,
                "messages.received",
                &format!("lab: {i} stored (AA)"),
            )
            .unwrap();
        }
        (dir, conn)
    }

    fn intact(conn: &Connection) -> bool {
        matches!(verify(conn).unwrap(), Verdict::Intact { .. })
    }

    fn broken_at(conn: &Connection) -> i64 {
        match verify(conn).unwrap() {
            Verdict::Broken { id, .. } => id,
            v => panic!("not detected: {v:?}"),
        }
    }

    #[test]
    fn an_untouched_trail_verifies_and_reports_its_head() {
        let (_dir, conn) = trail(5);
        let Verdict::Intact { lines, head, .. } = verify(&conn).unwrap() else {
            panic!("broken");
        };
        assert_eq!(lines, 5);
        assert_eq!(Some(head), head_summary(&conn).unwrap().0);
    }

    #[test]
    fn a_tampered_line_is_detected() {
        let (_dir, conn) = trail(5);
        conn.execute("UPDATE audit SET detail = 'lab: 0 stored' WHERE id = 3", [])
            .unwrap();
        assert_eq!(broken_at(&conn), 3);
    }

    #[test]
    fn a_tampered_line_with_a_recomputed_hash_breaks_the_next_line() {
        let (_dir, conn) = trail(5);
        let prev: Vec<u8> = conn
            .query_row("SELECT hash FROM audit WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        let forged = line_hash(&prev, 3, 2_000, "messages.received", "nothing happened");
        conn.execute(
            "UPDATE audit SET detail = 'nothing happened', hash = ?1 WHERE id = 3",
            [forged.as_slice()],
        )
        .unwrap();
        assert_eq!(broken_at(&conn), 4);
    }

    #[test]
    fn a_deleted_line_is_detected() {
        let (_dir, conn) = trail(5);
        conn.execute("DELETE FROM audit WHERE id = 2", []).unwrap();
        assert_eq!(broken_at(&conn), 3);
    }

    #[test]
    fn reordered_lines_are_detected() {
        let (_dir, conn) = trail(5);
        conn.execute_batch(
            "UPDATE audit SET id = -2 WHERE id = 2;
             UPDATE audit SET id = 2 WHERE id = 4;
             UPDATE audit SET id = 4 WHERE id = -2;",
        )
        .unwrap();
        assert_eq!(broken_at(&conn), 2);
    }

    #[test]
    fn pruning_keeps_the_rest_verifiable_from_the_anchor() {
        let (_dir, conn) = trail(10);
        // Lines 1..=10 are at 0..9 s; prune everything older than 5 s "400 days ago".
        let pruned = prune(&conn, RETENTION_MS + 5_000).unwrap();
        assert_eq!(pruned, 5);
        let Verdict::Intact {
            lines,
            first_id,
            pruned,
            ..
        } = verify(&conn).unwrap()
        else {
            panic!("pruning broke the chain");
        };
        assert_eq!(
            (lines, first_id, pruned),
            (6, 6, 5),
            "5 kept + the prune line"
        );
        conn.execute("UPDATE audit SET at_ms = 1 WHERE id = 6", [])
            .unwrap();
        assert_eq!(broken_at(&conn), 6);
    }

    #[test]
    fn lines_of_an_older_build_are_sealed_once() {
        let (_dir, conn) = trail(2);
        conn.execute(
            "INSERT INTO audit (id, at_ms, kind, detail) VALUES (3, 5, 'store.recovered', 'x')",
            [],
        )
        .unwrap();
        assert!(!intact(&conn));
        assert_eq!(seal(&conn).unwrap(), 1);
        assert!(intact(&conn));
        assert_eq!(seal(&conn).unwrap(), 0);
        append(&conn, 6, "agent.started", "y").unwrap();
        assert!(intact(&conn));
    }
}
