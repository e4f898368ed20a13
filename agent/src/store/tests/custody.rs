//! Receipt mode in the store: a PUBACK marks rows at broker, only a receipt removes them, rows
//! whose receipt did not come are read again in seq order, and switching back to puback mode
//! queues them again.

use super::*;
use crate::store::{HubLinkRow, PendingQuery, Pick};

const TIMEOUT: Duration = Duration::from_secs(60);

fn receipt_config() -> (TempDir, StoreConfig) {
    let (dir, mut cfg) = temp_config();
    cfg.receipt_timeout = Some(TIMEOUT);
    (dir, cfg)
}

async fn insert_n(store: &OpenedStore, n: usize) -> Vec<(uuid::Uuid, i64)> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = format!("C{i}");
        out.push(stored(store.handle.insert(message("lab", &c, &c)).await));
    }
    out
}

fn read(cfg: &StoreConfig, pick: Pick) -> Vec<i64> {
    reader(cfg)
        .pending_records(&PendingQuery {
            after_seq: 0,
            max_rows: 10_000,
            max_bytes: usize::MAX,
            max_record: usize::MAX,
            with_raw: false,
            pick,
        })
        .expect("read")
        .iter()
        .map(|r| r.seq)
        .collect()
}

#[tokio::test]
async fn a_puback_keeps_the_row_at_broker_and_only_its_receipt_removes_it() {
    let (_dir, cfg) = receipt_config();
    let store = open_store(&cfg);
    let rows = insert_n(&store, 3).await;
    let seqs: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let at = now_ms();
    assert_eq!(
        store
            .handle
            .forwarded(seqs[..2].to_vec(), at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        read(&cfg, Pick::NotAtBroker),
        &seqs[2..],
        "not sent again as new"
    );
    let stats = reader(&cfg).stats().unwrap();
    assert_eq!((stats.queue_depth, stats.awaiting.count), (1, 2));
    assert_eq!(stats.awaiting.oldest_since_ms, Some(at));
    assert_eq!(stats.sources[0].forwarded, 2);

    // A receipt naming one of them, one unknown id and the unsent row's id: the held rows go.
    let unknown = uuid::Uuid::now_v7();
    let found = store
        .handle
        .receipted(vec![rows[0].0, unknown, rows[2].0], now_ms())
        .await
        .unwrap();
    assert_eq!(found, 2, "the hub has them: they leave, PUBACKed or not");
    let again = store
        .handle
        .receipted(vec![rows[0].0], now_ms())
        .await
        .unwrap();
    assert_eq!(again, 0, "a repeated receipt is a no-op");
    let stats = reader(&cfg).stats().unwrap();
    assert_eq!((stats.queue_depth, stats.awaiting.count), (0, 1));
    let audit = reader(&cfg).audit_recent(10).unwrap();
    assert!(
        audit
            .iter()
            .any(|l| l.kind == "records.receipted" && l.detail.starts_with("2 receipted")),
        "{audit:?}"
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn rows_whose_receipt_is_overdue_are_read_again_in_seq_order_and_wait_longer_each_time() {
    let (_dir, cfg) = receipt_config();
    let store = open_store(&cfg);
    let seqs: Vec<i64> = insert_n(&store, 4).await.iter().map(|r| r.1).collect();
    let t0 = 1_000_000;
    store
        .handle
        .forwarded(vec![seqs[2], seqs[0]], t0)
        .await
        .unwrap();
    store
        .handle
        .forwarded(vec![seqs[1]], t0 + 30_000)
        .await
        .unwrap();
    let due = |before_ms| read(&cfg, Pick::Due { before_ms });
    assert!(due(t0 + 59_999).is_empty(), "within the timeout");
    assert_eq!(due(t0 + 60_000), [seqs[0], seqs[2]], "seq order");
    assert_eq!(due(t0 + 90_000), &seqs[..3]);
    assert_eq!(reader(&cfg).next_receipt_due().unwrap(), Some(t0 + 60_000));
    // Published again and PUBACKed: the next wait is twice as long, the age is kept.
    store
        .handle
        .forwarded(vec![seqs[0]], t0 + 61_000)
        .await
        .unwrap();
    let second = crate::store::custody::wait_ms(60_000, 2);
    assert_eq!(second, 120_000);
    assert_eq!(due(t0 + 61_000 + second - 1), [seqs[1], seqs[2]]);
    assert_eq!(due(t0 + 61_000 + second), &seqs[..3]);
    // Later PUBACKs wait as `wait_ms` says: at most eight timeouts.
    for (n, at) in [(3, 300_000), (4, 600_000), (5, 1_200_000)] {
        store
            .handle
            .forwarded(vec![seqs[0]], t0 + at)
            .await
            .unwrap();
        let wait = crate::store::custody::wait_ms(60_000, n);
        assert!(!due(t0 + at + wait - 1).contains(&seqs[0]), "PUBACK {n}");
        assert!(due(t0 + at + wait).contains(&seqs[0]), "PUBACK {n}");
    }
    let stats = reader(&cfg).stats().unwrap();
    assert_eq!(
        stats.awaiting.oldest_since_ms,
        Some(t0),
        "age counts from the first PUBACK"
    );
    assert_eq!(
        stats.sources[0].forwarded, 3,
        "a second PUBACK is not counted twice"
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn a_receipt_of_four_thousand_ninety_six_ids_is_one_transaction() {
    let (_dir, cfg) = receipt_config();
    let store = open_store(&cfg);
    let rows = insert_n(&store, 4096).await;
    let seqs: Vec<i64> = rows.iter().map(|r| r.1).collect();
    store.handle.forwarded(seqs, now_ms()).await.unwrap();
    let before = store.handle.metrics().transactions;
    let ids = rows.iter().map(|r| r.0).collect();
    assert_eq!(store.handle.receipted(ids, now_ms()).await.unwrap(), 4096);
    assert_eq!(store.handle.metrics().transactions, before + 1);
    let stats = reader(&cfg).stats().unwrap();
    assert_eq!((stats.queue_depth, stats.awaiting.count), (0, 0));
    close(store).await.unwrap();
}

#[tokio::test]
async fn a_store_opened_in_puback_mode_queues_rows_awaiting_a_receipt_again() {
    let (_dir, cfg) = receipt_config();
    let store = open_store(&cfg);
    let seqs: Vec<i64> = insert_n(&store, 2).await.iter().map(|r| r.1).collect();
    store
        .handle
        .forwarded(seqs.clone(), now_ms())
        .await
        .unwrap();
    close(store).await.unwrap();
    let puback = StoreConfig {
        receipt_timeout: None,
        ..cfg.clone()
    };
    let store = open_store(&puback);
    assert_eq!(read(&puback, Pick::Unsent), seqs);
    let stats = reader(&puback).stats().unwrap();
    assert_eq!((stats.queue_depth, stats.awaiting.count), (2, 0));
    store.handle.forwarded(seqs, now_ms()).await.unwrap();
    assert!(read(&puback, Pick::Unsent).is_empty(), "deleted at PUBACK");
    close(store).await.unwrap();
}

#[tokio::test]
async fn the_hub_link_row_is_replaced_and_read_back() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    assert_eq!(reader(&cfg).hub_link().unwrap(), None);
    let row = HubLinkRow {
        state: "disconnected".into(),
        since_ms: 5,
        custody: "receipt".into(),
        cause: Some("hub_certificate_untrusted".into()),
        error: Some("invalid peer certificate: BadSignature".into()),
        error_at_ms: Some(5),
        failures: 3,
        updated_at_ms: 6,
        ..HubLinkRow::default()
    };
    store.handle.record_hub_link(row.clone()).await.unwrap();
    assert_eq!(reader(&cfg).hub_link().unwrap(), Some(row.clone()));
    let connected = HubLinkRow {
        state: "connected".into(),
        cause: None,
        ..row
    };
    store
        .handle
        .record_hub_link(connected.clone())
        .await
        .unwrap();
    assert_eq!(reader(&cfg).hub_link().unwrap(), Some(connected));
    close(store).await.unwrap();
}
