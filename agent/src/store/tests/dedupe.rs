//! Promise 5: a resend is not a second record.

use std::time::Duration;

use super::*;

fn resend_of(msg: &NewMessage) -> NewMessage {
    let mut again = msg.clone();
    again.received_at_ms += 30_000;
    again.ack = b"a different ACK the listener built for the resend".to_vec();
    again
}

#[tokio::test]
async fn resent_control_id_gets_stored_ack_even_after_the_record_was_forwarded() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let first = message("lab", "C1", "OBX|1|glucose");
    let (id, seq) = stored(store.handle.insert(first.clone()).await);
    store.handle.forwarded(vec![seq], now_ms()).await.unwrap();
    assert_eq!(count_rows(&cfg.path, "SELECT count(*) FROM records"), 0);

    let again = store.handle.insert(resend_of(&first)).await.unwrap();
    assert_eq!(
        again,
        Inserted::Duplicate {
            id,
            ack: first.ack.clone()
        }
    );
    assert_eq!(count_rows(&cfg.path, "SELECT count(*) FROM records"), 0);
    let lab = reader(&cfg).stats().unwrap().sources.remove(0);
    assert_eq!((lab.received, lab.stored, lab.duplicates), (2, 1, 1));
    close(store).await.unwrap();
}

#[tokio::test]
async fn resend_survives_a_restart() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let first = message("lab", "C1", "OBX|1");
    let (id, _) = stored(store.handle.insert(first.clone()).await);
    close(store).await.unwrap();

    let store = open_store(&cfg);
    let again = store.handle.insert(resend_of(&first)).await.unwrap();
    assert_eq!(again, Inserted::Duplicate { id, ack: first.ack });
    assert_eq!(pending_seqs(&cfg), [1]);
    close(store).await.unwrap();
}

#[tokio::test]
async fn reused_control_id_with_new_content_is_stored_and_counted() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let (first, _) = stored(
        store
            .handle
            .insert(message("lab", "C1", "OBX|1|glucose"))
            .await,
    );
    let (second, _) = stored(
        store
            .handle
            .insert(message("lab", "C1", "OBX|1|potassium"))
            .await,
    );
    assert_ne!(first, second);
    // Another source may use the same control id without it being a reuse.
    stored(
        store
            .handle
            .insert(message("monitor", "C1", "OBX|1|glucose"))
            .await,
    );
    let stats = reader(&cfg).stats().unwrap();
    let reuse: Vec<(String, u64)> = stats
        .sources
        .into_iter()
        .map(|s| (s.source, s.control_id_reuse))
        .collect();
    assert_eq!(reuse, [("lab".to_owned(), 1), ("monitor".to_owned(), 0)]);
    assert_eq!(pending_seqs(&cfg).len(), 3);
    close(store).await.unwrap();
}

#[tokio::test]
async fn identical_messages_in_one_batch_are_one_record() {
    let (_dir, cfg) = temp_config();
    let msg = message("lab", "C1", "OBX|1");
    let other = message("lab", "C1", "OBX|2");
    let (results, transactions) =
        insert_as_one_batch(&cfg, vec![msg.clone(), resend_of(&msg), other]).await;
    assert_eq!(transactions, 1);
    let mut results = results.into_iter();
    let (id, _) = stored(results.next().unwrap());
    assert_eq!(
        results.next().unwrap().unwrap(),
        Inserted::Duplicate { id, ack: msg.ack }
    );
    stored(results.next().unwrap());
    assert_eq!(pending_seqs(&cfg), [1, 2]);
}

#[tokio::test]
async fn resend_after_the_window_is_a_new_record() {
    let (_dir, mut cfg) = temp_config();
    cfg.dedupe_window = Duration::from_secs(60);
    let store = open_store(&cfg);
    let first = message("lab", "C1", "OBX|1");
    let (id, _) = stored(store.handle.insert(first.clone()).await);
    let mut late = first.clone();
    late.received_at_ms += 61_000;
    let (late_id, _) = stored(store.handle.insert(late.clone()).await);
    assert_ne!(id, late_id);
    // The late copy is now the one a further resend is matched against.
    late.received_at_ms += 1_000;
    assert!(
        matches!(store.handle.insert(late).await.unwrap(), Inserted::Duplicate { id, .. } if id == late_id)
    );
    close(store).await.unwrap();
}
