//! How queued rows become publishes, without IO: consecutive rows with the
//! same topic share an envelope, up to a number of records *and* a number
//! of bytes; a row that cannot fit an envelope on its own is set aside.
//!
//! Invariants:
//! - Order is kept: the steps come out in the rows' order, so publishes
//!   and set-asides happen in seq order and the forwarder's cursor never
//!   passes a row that was neither published nor set aside.
//! - Every [`Step::Publish`] holds at least one row and at most
//!   `max_records`, and its envelope (as the caller's `envelope_len`
//!   measures it, byte-exact with what `EnvelopeWriter` writes) is at most
//!   `max_payload` bytes. A payload over the broker's limit is what used to
//!   stop forwarding for good: the broker (or the MQTT client) refused it,
//!   and the same batch was rebuilt after every reconnect.
//! - A row whose envelope alone is over `max_payload` becomes a
//!   [`Step::SetAside`]; the rows after it still flow. The listener refuses
//!   such messages at ingest (AE), so only rows queued before the limit was
//!   lowered (or by an older build) ever get here.

/// What to do with the next rows, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Publish these rows in one envelope.
    Publish(Vec<T>),
    /// This row can never fit a payload: keep it, do not send it.
    SetAside {
        /// The row.
        row: T,
        /// The bytes its envelope would need.
        needs: usize,
    },
}

/// The bounds of one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most records per envelope.
    pub max_records: usize,
    /// Most bytes per envelope.
    pub max_payload: usize,
}

/// One row as the planner sees it.
pub trait Planned {
    /// True when `other` goes to the same topic in the same kind of
    /// envelope (same source and message type).
    fn same_topic(&self, other: &Self) -> bool;
    /// Bytes this row adds to an envelope.
    fn entry_len(&self) -> usize;
    /// Bytes of an envelope of this row's key holding `count` entries of
    /// `entries` bytes in total.
    fn envelope_len(&self, count: usize, entries: usize) -> usize;
}

/// Splits `rows` into publishes and set-asides (see the module invariants).
pub fn plan<T: Planned>(rows: Vec<T>, bounds: Bounds) -> Vec<Step<T>> {
    let max_records = bounds.max_records.max(1);
    let mut steps = Vec::new();
    let mut group: Vec<T> = Vec::new();
    let mut entries = 0_usize;
    for row in rows {
        let len = row.entry_len();
        let alone = row.envelope_len(1, len);
        if alone > bounds.max_payload {
            flush(&mut group, &mut entries, &mut steps);
            steps.push(Step::SetAside { row, needs: alone });
            continue;
        }
        let joins = group.first().is_some_and(|first| {
            group.len() < max_records
                && first.same_topic(&row)
                && first.envelope_len(group.len() + 1, entries.saturating_add(len))
                    <= bounds.max_payload
        });
        if !joins {
            flush(&mut group, &mut entries, &mut steps);
        }
        entries = entries.saturating_add(len);
        group.push(row);
    }
    flush(&mut group, &mut entries, &mut steps);
    steps
}

fn flush<T>(group: &mut Vec<T>, entries: &mut usize, steps: &mut Vec<Step<T>>) {
    if !group.is_empty() {
        steps.push(Step::Publish(std::mem::take(group)));
    }
    *entries = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row: topic key, sequence number, entry bytes. Envelopes cost a
    /// 10-byte head plus one byte per entry on top of the entries.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Row(&'static str, i64, usize);

    impl Planned for Row {
        fn same_topic(&self, other: &Self) -> bool {
            self.0 == other.0
        }
        fn entry_len(&self) -> usize {
            self.2
        }
        fn envelope_len(&self, count: usize, entries: usize) -> usize {
            10 + count + entries
        }
    }

    fn shape(steps: &[Step<Row>]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Publish(rows) => rows
                    .iter()
                    .map(|r| r.1.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                Step::SetAside { row, needs } => format!("aside {} ({needs})", row.1),
            })
            .collect()
    }

    const WIDE: Bounds = Bounds {
        max_records: 2,
        max_payload: 1_000_000,
    };

    #[test]
    fn consecutive_rows_with_the_same_topic_share_a_publish_up_to_the_record_cap() {
        let rows = vec![
            Row("a", 1, 1),
            Row("a", 2, 1),
            Row("b", 3, 1),
            Row("a", 4, 1),
            Row("a", 5, 1),
            Row("a", 6, 1),
        ];
        assert_eq!(shape(&plan(rows, WIDE)), ["1,2", "3", "4,5", "6"]);
    }

    #[test]
    fn envelopes_are_split_by_bytes_as_well_as_by_count() {
        let bounds = Bounds {
            max_records: 64,
            max_payload: 100,
        };
        // 10 + 2 + 40 + 40 = 92 fits; a third 40-byte entry would be 133.
        let rows = (1..=5).map(|n| Row("a", n, 40)).collect();
        assert_eq!(shape(&plan(rows, bounds)), ["1,2", "3,4", "5"]);
        // Exactly at the limit still fits: 10 + 2 + 44 + 44 = 100.
        let rows = vec![Row("a", 1, 44), Row("a", 2, 44)];
        assert_eq!(shape(&plan(rows, bounds)), ["1,2"]);
    }

    #[test]
    fn a_row_that_cannot_fit_alone_is_set_aside_and_the_rows_behind_it_flow() {
        let bounds = Bounds {
            max_records: 64,
            max_payload: 100,
        };
        let rows = vec![
            Row("a", 1, 10),
            Row("a", 2, 10),
            Row("a", 3, 2_000_000),
            Row("a", 4, 10),
            Row("a", 5, 89),
            Row("a", 6, 90),
        ];
        assert_eq!(
            shape(&plan(rows, bounds)),
            ["1,2", "aside 3 (2000011)", "4", "5", "aside 6 (101)"]
        );
    }

    proptest::proptest! {
        #[test]
        fn every_planned_envelope_respects_both_bounds_and_keeps_every_row_in_order(
            rows in proptest::collection::vec((0_u8..3, 0_usize..600), 0..300),
            max_records in 1_usize..8,
            max_payload in 50_usize..800,
        ) {
            let keys = ["a", "b", "c"];
            let rows: Vec<Row> = rows
                .into_iter()
                .enumerate()
                .map(|(n, (k, len))| Row(keys[usize::from(k)], n as i64, len))
                .collect();
            let bounds = Bounds { max_records, max_payload };
            let mut order = Vec::new();
            for step in plan(rows.clone(), bounds) {
                match step {
                    Step::Publish(group) => {
                        proptest::prop_assert!(!group.is_empty() && group.len() <= max_records);
                        let bytes: usize = group.iter().map(|r| r.2).sum();
                        proptest::prop_assert!(group[0].envelope_len(group.len(), bytes) <= max_payload);
                        proptest::prop_assert!(group.iter().all(|r| r.0 == group[0].0));
                        order.extend(group.iter().map(|r| r.1));
                    }
                    Step::SetAside { row, needs } => {
                        proptest::prop_assert!(needs > max_payload);
                        proptest::prop_assert_eq!(needs, row.envelope_len(1, row.2));
                        order.push(row.1);
                    }
                }
            }
            let expected: Vec<i64> = rows.iter().map(|r| r.1).collect();
            proptest::prop_assert_eq!(order, expected, "order kept, nothing lost");
        }
    }
}
