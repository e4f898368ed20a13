//! The hub connection as the forwarder last saw it, kept in one row (`hub_link`) so that
//! `hl7edge status`, a separate process, can tell what the agent knows: connected or not, the
//! last error in plain words with its cause, and when the last publish, PUBACK and receipt
//! happened.
//!
//! Invariants:
//! - One row (`id = 1`), replaced whole. The forwarder writes it when the connection state or
//!   the error changes, and otherwise at most every few seconds while publishes progress, so
//!   the hot path never pays a write per message; times are therefore accurate to that.
//! - No PHI: states, cause kinds, error texts of the TLS and MQTT stacks (which name
//!   certificates and addresses, never message content), times and counts.
//! - Written without its own fsync: a lost update is replaced by the next one.

use rusqlite::{Connection, OptionalExtension, params};

/// What the forwarder knows about its hub connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubLinkRow {
    /// `connecting` (not connected yet since the agent started), `connected` or
    /// `disconnected`.
    pub state: String,
    /// Since when connected, or since when not (retries do not move it), Unix ms.
    pub since_ms: i64,
    /// `puback` or `receipt` (`hub.custody`).
    pub custody: String,
    /// The last error's cause kind (`hub_certificate_untrusted`, `not_listening`, ...), while
    /// the connection is not up or until the next success.
    pub cause: Option<String>,
    /// The last error as the TLS or MQTT stack said it.
    pub error: Option<String>,
    /// When the last error happened, Unix ms.
    pub error_at_ms: Option<i64>,
    /// Failed attempts since the last successful connection.
    pub failures: u64,
    /// The last CONNACK, Unix ms.
    pub connected_at_ms: Option<i64>,
    /// The last publish of records handed to the connection, Unix ms.
    pub publish_at_ms: Option<i64>,
    /// The last PUBACK of records, Unix ms.
    pub puback_at_ms: Option<i64>,
    /// The last custody receipt that named a queued record, Unix ms.
    pub receipt_at_ms: Option<i64>,
    /// When the row was written, Unix ms.
    pub updated_at_ms: i64,
}

/// Replaces the row.
pub(crate) fn write(conn: &Connection, row: &HubLinkRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO hub_link (id, state, since_ms, custody, cause, error, error_at_ms,
             failures, connected_at_ms, publish_at_ms, puback_at_ms, receipt_at_ms, updated_at_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        row.state,
        row.since_ms,
        row.custody,
        row.cause,
        row.error,
        row.error_at_ms,
        i64::try_from(row.failures).unwrap_or(i64::MAX),
        row.connected_at_ms,
        row.publish_at_ms,
        row.puback_at_ms,
        row.receipt_at_ms,
        row.updated_at_ms,
    ])?;
    Ok(())
}

/// The row, if a forwarder ever wrote one.
pub(crate) fn read(conn: &Connection) -> rusqlite::Result<Option<HubLinkRow>> {
    conn.query_row(
        "SELECT state, since_ms, custody, cause, error, error_at_ms, failures, connected_at_ms,
                publish_at_ms, puback_at_ms, receipt_at_ms, updated_at_ms
         FROM hub_link WHERE id = 1",
        [],
        |r| {
            Ok(HubLinkRow {
                state: r.get(0)?,
                since_ms: r.get(1)?,
                custody: r.get(2)?,
                cause: r.get(3)?,
                error: r.get(4)?,
                error_at_ms: r.get(5)?,
                failures: r.get::<_, i64>(6)?.try_into().unwrap_or(0),
                connected_at_ms: r.get(7)?,
                publish_at_ms: r.get(8)?,
                puback_at_ms: r.get(9)?,
                receipt_at_ms: r.get(10)?,
                updated_at_ms: r.get(11)?,
            })
        },
    )
    .optional()
}
