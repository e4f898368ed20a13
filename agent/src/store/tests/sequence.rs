//! Per-source sequence numbers: 1, 2, 3, ... per source in commit order,
//! without gaps, never reused, kept across restarts; a store queued by the
//! previous schema gets its unsent rows numbered when it is migrated.

use rusqlite::Connection;

use super::*;

/// `(source, source_seq)` of every unsent record, in commit order.
fn numbers(cfg: &StoreConfig) -> Vec<(String, u64)> {
    reader(cfg)
        .pending(0, 10_000)
        .expect("pending")
        .into_iter()
        .map(|r| (r.source, r.source_seq))
        .collect()
}

fn expect(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[tokio::test]
async fn each_source_counts_its_own_records_from_one_across_restarts() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    for (source, id) in [("lab", "L1"), ("adt", "A1"), ("lab", "L2")] {
        stored(store.handle.insert(message(source, id, id)).await);
    }
    // A resend is not a record: it takes no number.
    let again = store.handle.insert(message("lab", "L2", "L2")).await;
    assert!(matches!(again, Ok(Inserted::Duplicate { .. })), "{again:?}");
    close(store).await.unwrap();
    assert_eq!(numbers(&cfg), expect(&[("lab", 1), ("adt", 1), ("lab", 2)]));
    // Forwarded and deleted rows keep their numbers used.
    let store = open_store(&cfg);
    let seqs = pending_seqs(&cfg);
    store.handle.forwarded(seqs, now_ms()).await.unwrap();
    stored(store.handle.insert(message("lab", "L3", "L3")).await);
    stored(store.handle.insert(message("adt", "A2", "A2")).await);
    close(store).await.unwrap();
    assert_eq!(numbers(&cfg), expect(&[("lab", 3), ("adt", 2)]));
}

#[tokio::test]
async fn one_batch_numbers_its_records_in_commit_order() {
    let (_dir, cfg) = temp_config();
    let msgs = (0..20)
        .map(|i| {
            message(
                if i % 3 == 0 { "adt" } else { "lab" },
                &format!("C{i}"),
                &format!("{i}"),
            )
        })
        .collect();
    let (results, _) = insert_as_one_batch(&cfg, msgs).await;
    assert!(results.iter().all(Result::is_ok));
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    for (source, n) in numbers(&cfg) {
        let previous = last.insert(source.clone(), n).unwrap_or(0);
        assert_eq!(n, previous + 1, "{source}");
    }
    assert_eq!((last["adt"], last["lab"]), (7, 13));
}

#[tokio::test]
async fn a_store_of_the_previous_schema_numbers_its_queued_rows_when_migrated() {
    let (_dir, cfg) = temp_config();
    // The version before per-source numbers, as the previous schema left
    // it: three queued rows of two sources and one already sent (retained).
    let store = open_store(&cfg);
    for (source, id) in [("lab", "L1"), ("adt", "A1"), ("lab", "L2"), ("lab", "L3")] {
        stored(store.handle.insert(message(source, id, id)).await);
    }
    close(store).await.unwrap();
    {
        let conn = Connection::open(&cfg.path).unwrap();
        conn.execute_batch(
            "UPDATE records SET sent_at_ms = 1 WHERE control_id = 'L1';
             DROP TABLE source_sequence;
             ALTER TABLE records DROP COLUMN source_seq;
             DROP TABLE source_rhythm;
             DROP TABLE source_rhythm_since;
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let store = open_store(&cfg);
    stored(store.handle.insert(message("lab", "L4", "L4")).await);
    close(store).await.unwrap();
    assert_eq!(
        numbers(&cfg),
        expect(&[("adt", 1), ("lab", 1), ("lab", 2), ("lab", 3)])
    );
}
