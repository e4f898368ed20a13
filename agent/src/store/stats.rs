//! Per-source counters, kept in `source_stats` and updated in the same
//! transaction as the rows they count, so they survive restarts and never
//! disagree with what was committed. Read by `hl7edge status` and telemetry.
//!
//! Beside them, each source's messages per hour (`source_rhythm`), from which telemetry learns
//! its usual rhythm (`telemetry::rhythm`); a message counts in the hour it was received, in the
//! same transaction, and rows older than [`RHYTHM_KEEP_DAYS`] are pruned as new ones are written.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

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

/// Days of hourly counts kept per source (the longest `silence.window_days`).
pub const RHYTHM_KEEP_DAYS: i64 = 60;

/// Counter increments collected during a batch, written once at its end.
#[derive(Debug, Default)]
pub(crate) struct StatsDelta {
    by_source: BTreeMap<String, SourceStats>,
    /// The rhythm's hour in ms, when messages are counted per hour (not for replays, which are
    /// not arrivals).
    rhythm_hour_ms: Option<i64>,
    /// Messages per (source, hour).
    by_hour: BTreeMap<(String, i64), u64>,
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

    /// Increments that also count each message in its hour of `hour_ms` milliseconds.
    pub(crate) fn with_rhythm(hour_ms: i64) -> Self {
        Self {
            rhythm_hour_ms: Some(hour_ms.max(1)),
            ..Self::default()
        }
    }

    /// Notes a message received at `at_ms`.
    pub(crate) fn seen(&mut self, source: &str, at_ms: i64) -> &mut SourceStats {
        if let Some(hour_ms) = self.rhythm_hour_ms {
            *self
                .by_hour
                .entry((source.to_owned(), at_ms.div_euclid(hour_ms)))
                .or_default() += 1;
        }
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
        if let Some(hour_ms) = self.rhythm_hour_ms {
            flush_rhythm(tx, hour_ms, &self.by_hour)?;
        }
        Ok(())
    }
}

fn flush_rhythm(
    tx: &Transaction<'_>,
    hour_ms: i64,
    by_hour: &BTreeMap<(String, i64), u64>,
) -> rusqlite::Result<()> {
    let mut add = tx.prepare_cached(
        "INSERT INTO source_rhythm (source, hour_ms, period, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source, hour_ms, period) DO UPDATE SET count = count + excluded.count",
    )?;
    let mut since = tx.prepare_cached(
        "INSERT OR IGNORE INTO source_rhythm_since (source, hour_ms, first_period)
         VALUES (?1, ?2, ?3)",
    )?;
    let mut prune = tx.prepare_cached(
        "DELETE FROM source_rhythm WHERE source = ?1 AND hour_ms = ?2 AND period < ?3",
    )?;
    let keep = RHYTHM_KEEP_DAYS * 24;
    for ((source, period), n) in by_hour {
        add.execute(params![source, hour_ms, period, n])?;
        since.execute(params![source, hour_ms, period])?;
        prune.execute(params![source, hour_ms, period.saturating_sub(keep)])?;
    }
    Ok(())
}

/// A source's messages per hour, as kept in `source_rhythm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourlyCounts {
    /// The hour counting began (Unix ms / hour length).
    pub since_period: i64,
    /// Messages per hour; hours without messages are absent.
    pub counts: BTreeMap<i64, u64>,
}

/// A source's hourly counts from `from_period` on, and the hour counting began; `None` when
/// nothing was counted for it at this hour length.
pub(crate) fn read_rhythm(
    conn: &Connection,
    source: &str,
    hour_ms: i64,
    from_period: i64,
) -> rusqlite::Result<Option<HourlyCounts>> {
    let since: Option<i64> = conn
        .query_row(
            "SELECT first_period FROM source_rhythm_since WHERE source = ?1 AND hour_ms = ?2",
            params![source, hour_ms],
            |r| r.get(0),
        )
        .optional()?;
    let Some(since) = since else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT period, count FROM source_rhythm
         WHERE source = ?1 AND hour_ms = ?2 AND period >= ?3 ORDER BY period",
    )?;
    let counts = stmt
        .query_map(params![source, hour_ms, from_period], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?))
        })?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(Some(HourlyCounts {
        since_period: since,
        counts,
    }))
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

    #[test]
    fn messages_are_counted_per_hour_across_transactions_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate(&mut conn).unwrap();
            for at in [10, 20, 1_005, 3_010] {
                let tx = conn.transaction().unwrap();
                let mut delta = StatsDelta::with_rhythm(1_000);
                delta.seen("lab", at);
                delta.seen("ward", at + 1_000);
                delta.flush(&tx).unwrap();
                tx.commit().unwrap();
            }
            // A replay is not an arrival: not counted.
            let tx = conn.transaction().unwrap();
            let mut delta = StatsDelta::default();
            delta.seen("lab", 10);
            delta.flush(&tx).unwrap();
            tx.commit().unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let lab = read_rhythm(&conn, "lab", 1_000, 0).unwrap().unwrap();
        assert_eq!(lab.since_period, 0);
        assert_eq!(lab.counts, BTreeMap::from([(0, 2), (1, 1), (3, 1)]));
        let ward = read_rhythm(&conn, "ward", 1_000, 0).unwrap().unwrap();
        assert_eq!(ward.since_period, 1);
        assert_eq!(read_rhythm(&conn, "lab", 2_000, 0).unwrap(), None);
        let recent = read_rhythm(&conn, "lab", 1_000, 2).unwrap().unwrap();
        assert_eq!(recent.counts.len(), 1);
    }

    #[test]
    fn hourly_counts_older_than_the_kept_days_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("q.db")).unwrap();
        schema::migrate(&mut conn).unwrap();
        let keep = RHYTHM_KEEP_DAYS * 24;
        for period in [0, 1, keep + 1] {
            let tx = conn.transaction().unwrap();
            let mut delta = StatsDelta::with_rhythm(1);
            delta.seen("lab", period);
            delta.flush(&tx).unwrap();
            tx.commit().unwrap();
        }
        let lab = read_rhythm(&conn, "lab", 1, 0).unwrap().unwrap();
        assert_eq!(lab.since_period, 0, "the start of counting is kept");
        assert_eq!(
            lab.counts.keys().copied().collect::<Vec<_>>(),
            vec![1, keep + 1]
        );
    }
}
