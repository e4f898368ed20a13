//! Per-source counters, kept in `source_stats` and updated in the same
//! transaction as the rows they count, so they survive restarts and never
//! disagree with what was committed. Read by `hl7edge status` and telemetry.

use std::collections::BTreeMap;

use rusqlite::{Connection, Transaction, params};

/// Lifetime counters of one source (interface).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// The listener (interface) name.
    pub source: String,
    /// Messages that reached the store (stored, duplicate, quarantined or
    /// refused for space).
    pub received: u64,
    /// Messages stored as new records.
    pub stored: u64,
    /// Resends answered with the stored ACK.
    pub duplicates: u64,
    /// Messages put in quarantine.
    pub quarantined: u64,
    /// New messages that reused a control id seen within the dedupe window.
    pub control_id_reuse: u64,
    /// Messages refused because the store was at its size limit.
    pub refused_full: u64,
    /// Records acknowledged by the broker.
    pub forwarded: u64,
    /// Messages whose MSH-15/MSH-16 asked for no acknowledgement (answered
    /// anyway unless the interface's `ack_mode` is `as_requested`).
    pub no_ack_requested: u64,
    /// Receive time of the newest message, Unix milliseconds.
    pub last_message_at_ms: Option<i64>,
}

/// Counter increments collected during a batch, written once at its end.
#[derive(Debug, Default)]
pub(crate) struct StatsDelta {
    by_source: BTreeMap<String, SourceStats>,
}

impl StatsDelta {
    /// The increments of one source.
    pub(crate) fn source(&mut self, source: &str) -> &mut SourceStats {
        self.by_source
            .entry(source.to_owned())
            .or_insert_with(|| SourceStats {
                source: source.to_owned(),
                ..SourceStats::default()
            })
    }

    /// Notes a message received at `at_ms`.
    pub(crate) fn seen(&mut self, source: &str, at_ms: i64) -> &mut SourceStats {
        let s = self.source(source);
        s.received += 1;
        s.last_message_at_ms = Some(s.last_message_at_ms.map_or(at_ms, |t| t.max(at_ms)));
        s
    }

    /// Adds the increments to `source_stats`.
    pub(crate) fn flush(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO source_stats (source, received, stored, duplicates, quarantined,
                 control_id_reuse, refused_full, forwarded, last_message_at_ms,
                 no_ack_requested)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (source) DO UPDATE SET
                 received = received + excluded.received,
                 stored = stored + excluded.stored,
                 duplicates = duplicates + excluded.duplicates,
                 quarantined = quarantined + excluded.quarantined,
                 control_id_reuse = control_id_reuse + excluded.control_id_reuse,
                 refused_full = refused_full + excluded.refused_full,
                 forwarded = forwarded + excluded.forwarded,
                 no_ack_requested = no_ack_requested + excluded.no_ack_requested,
                 last_message_at_ms = max(coalesce(last_message_at_ms, excluded.last_message_at_ms),
                                          coalesce(excluded.last_message_at_ms, last_message_at_ms))",
        )?;
        for s in self.by_source.values() {
            stmt.execute(params![
                s.source,
                s.received,
                s.stored,
                s.duplicates,
                s.quarantined,
                s.control_id_reuse,
                s.refused_full,
                s.forwarded,
                s.last_message_at_ms,
                s.no_ack_requested
            ])?;
        }
        Ok(())
    }
}

/// Every source's counters, by name.
pub(crate) fn read_all(conn: &Connection) -> rusqlite::Result<Vec<SourceStats>> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, received, stored, duplicates, quarantined, control_id_reuse,
                refused_full, forwarded, last_message_at_ms, no_ack_requested
         FROM source_stats ORDER BY source",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SourceStats {
            source: r.get(0)?,
            received: r.get(1)?,
            stored: r.get(2)?,
            duplicates: r.get(3)?,
            quarantined: r.get(4)?,
            control_id_reuse: r.get(5)?,
            refused_full: r.get(6)?,
            forwarded: r.get(7)?,
            last_message_at_ms: r.get(8)?,
            no_ack_requested: r.get(9)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema;

    #[test]
    fn deltas_add_up_across_transactions_and_keep_newest_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("q.db")).unwrap();
        schema::migrate(&mut conn).unwrap();
        for (at, dup) in [(2_000, 0), (1_000, 1)] {
            let tx = conn.transaction().unwrap();
            let mut delta = StatsDelta::default();
            let s = delta.seen("lab", at);
            s.stored += 1;
            s.duplicates += dup;
            delta.flush(&tx).unwrap();
            tx.commit().unwrap();
        }
        let all = read_all(&conn).unwrap();
        assert_eq!(all.len(), 1);
        let lab = &all[0];
        assert_eq!((lab.received, lab.stored, lab.duplicates), (2, 2, 1));
        assert_eq!(lab.last_message_at_ms, Some(2_000));
    }
}
