//! Patient data at rest beside the queue: raw HL7 stored only where it is
//! forwarded, the quarantine's own cap, its retention with an alarm first,
//! replayed entries erased once forwarded, and every erasure overwritten in
//! the file (`secure_delete`). Time is passed in: housekeeping runs with a
//! `now` the test chooses.

use std::time::Duration;

use super::*;
use crate::store::{
    FullCause, QuarantineLimits, Quarantined, StoreHealth, offline, open::open, writer,
};

const DAY_MS: i64 = 86_400_000;
/// A marker no other byte sequence of the tests contains, to look for in the files.
const SECRET: &[u8] = b"ZZSECRET-PATIENT-SAID-SOMETHING-PRIVATE";

fn rejected(received_at_ms: i64, raw_len: usize) -> Quarantined {
    let mut raw = b"MSH|^~\\&|LAB|F|GW|C|2024||ORU^R01|Q1|P|2.5\rPID|1||".to_vec();
    raw.extend_from_slice(SECRET);
    raw.resize(raw_len.max(raw.len()), b'x');
    Quarantined {
        no_ack_requested: false,
        source: "lab".into(),
        peer: "10.0.0.7:4000".into(),
        received_at_ms,
        raw,
        error: "error 101 at MSH-10: missing".into(),
        error_code: 101,
        ack: b"MSA|AE|Q1".to_vec(),
    }
}

/// Runs the writer's housekeeping once, at `now`, on a connection of its own.
fn housekeeping_at(cfg: &StoreConfig, now: i64) {
    let mut opened = open(cfg).expect("open");
    writer::housekeeping(&mut opened.conn, &cfg.limits(), now).expect("housekeeping");
}

fn limits(cfg: &StoreConfig, warn_days: i64) -> QuarantineLimits {
    QuarantineLimits::new(
        cfg.quarantine_max_bytes,
        cfg.quarantine_retention,
        Duration::from_millis(u64::try_from(warn_days * DAY_MS).unwrap_or(0)),
    )
}

fn kinds(cfg: &StoreConfig) -> Vec<String> {
    reader(cfg)
        .audit_recent(50)
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect()
}

/// Whether `needle` is anywhere in the database file (after a full checkpoint).
fn file_contains(cfg: &StoreConfig, needle: &[u8]) -> bool {
    let conn = rusqlite::Connection::open(&cfg.path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(&cfg.path).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_record_without_raw_hl7_is_stored_and_read_without_it() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut lean = message("lab", "C1", "OBX|1");
    lean.raw = None;
    store.handle.insert(lean).await.unwrap();
    store
        .handle
        .insert(message("lab", "C2", "OBX|2"))
        .await
        .unwrap();
    close(store).await.unwrap();
    let rows = reader(&cfg).pending(0, 10).unwrap();
    let raws: Vec<bool> = rows.iter().map(|r| r.raw.is_some()).collect();
    assert_eq!(raws, [false, true]);
    assert_eq!(
        count_rows(&cfg.path, "SELECT count(*) FROM records WHERE raw IS NULL"),
        1
    );
}

#[tokio::test]
async fn rejected_messages_fill_their_own_cap_and_good_messages_are_still_stored() {
    let (_dir, mut cfg) = temp_config();
    cfg.max_bytes = 1 << 20;
    cfg.quarantine_max_bytes = 1 << 20;
    let store = open_store(&cfg);
    // Three quarters of a MiB of bad messages: over half the queue's own limit.
    for _ in 0..3 {
        store
            .handle
            .quarantine(rejected(now_ms(), 250_000))
            .await
            .unwrap();
    }
    let refused = store.handle.quarantine(rejected(now_ms(), 300_000)).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Full {
                cause: FullCause::Quarantine { .. }
            })
        ),
        "{refused:?}"
    );
    for n in 0..3 {
        let msg = sized_message("lab", &format!("G{n}"), 250_000);
        stored(store.handle.insert(msg).await);
    }
    close(store).await.unwrap();
    let outlook = reader(&cfg)
        .quarantine_outlook(now_ms(), limits(&cfg, 7))
        .unwrap();
    assert_eq!(outlook.held, 3);
    assert!(
        (750_000..800_000).contains(&outlook.bytes),
        "{}",
        outlook.bytes
    );
    assert!(outlook.full_for(300_000));
}

#[tokio::test]
async fn the_quarantines_byte_count_follows_inserts_erasures_and_deletes() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let start = now_ms();
    let a = store.handle.quarantine(rejected(start, 500)).await.unwrap();
    store.handle.quarantine(rejected(start, 700)).await.unwrap();
    let usage = |cfg: &StoreConfig| {
        count_rows(&cfg.path, "SELECT bytes FROM quarantine_usage WHERE id = 1")
    };
    let one = i64::try_from(crate::store::quarantine::held_bytes(500, 9)).unwrap();
    let two = i64::try_from(crate::store::quarantine::held_bytes(700, 9)).unwrap();
    assert_eq!(usage(&cfg), one + two);
    store.handle.drop_quarantine(a, now_ms()).await.unwrap();
    assert_eq!(usage(&cfg), two);
    close(store).await.unwrap();
    housekeeping_at(&cfg, start + 100 * DAY_MS);
    assert_eq!(usage(&cfg), 0, "the second expired");
    assert_eq!(
        count_rows(&cfg.path, "SELECT count(*) FROM quarantine"),
        1,
        "the first, dropped 100 days before, is forgotten"
    );
}

#[tokio::test]
async fn entries_past_retention_are_erased_audited_and_announced_before() {
    let (_dir, mut cfg) = temp_config();
    cfg.quarantine_retention = Duration::from_secs(30 * 86_400);
    // Far enough ahead that the writer's own housekeeping (on the wall clock) expires nothing.
    let now = now_ms() + 400 * DAY_MS;
    let store = open_store(&cfg);
    let old = store
        .handle
        .quarantine(rejected(now - 31 * DAY_MS, 0))
        .await
        .unwrap();
    let soon = store
        .handle
        .quarantine(rejected(now - 25 * DAY_MS, 0))
        .await
        .unwrap();
    let fresh = store
        .handle
        .quarantine(rejected(now - DAY_MS, 0))
        .await
        .unwrap();
    close(store).await.unwrap();

    let before = reader(&cfg)
        .quarantine_outlook(now, limits(&cfg, 7))
        .unwrap();
    assert_eq!(
        (before.held, before.expiring),
        (3, 2),
        "the 31- and 25-day-old entries are due within 7 days"
    );
    assert_eq!(before.next_expiry_ms, Some(now - DAY_MS));

    housekeeping_at(&cfg, now);
    let r = reader(&cfg);
    let expired = r.quarantine_get(old).unwrap().unwrap();
    assert!(expired.raw.is_empty() && expired.ack.is_empty());
    assert_eq!(expired.summary.expired_at_ms, Some(now));
    assert_eq!(expired.summary.dropped_at_ms, Some(now), "no longer open");
    for id in [soon, fresh] {
        assert!(!r.quarantine_get(id).unwrap().unwrap().raw.is_empty());
    }
    let line = r.audit_last_of_kind("quarantine.expired").unwrap().unwrap();
    assert!(
        line.detail.starts_with("1 entries") && line.detail.ends_with(&format!("entries {old}")),
        "{}",
        line.detail
    );
    assert!(!line.detail.contains("ZZSECRET"), "{}", line.detail);
    let after = r.quarantine_outlook(now, limits(&cfg, 7)).unwrap();
    assert_eq!((after.held, after.expiring), (2, 1));
    assert_eq!(r.stats().unwrap().quarantine_count, 2);
    drop(r);

    // Thirty days after the erasure the tombstone goes too; the audit line stays.
    housekeeping_at(&cfg, now + 31 * DAY_MS);
    assert!(reader(&cfg).quarantine_get(old).unwrap().is_none());
    assert!(kinds(&cfg).contains(&"quarantine.forgotten".to_owned()));
    assert!(matches!(
        reader(&cfg).audit_verify().unwrap(),
        crate::store::Verdict::Intact { .. }
    ));
}

#[tokio::test]
async fn an_expired_messages_bytes_are_overwritten_in_the_file() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let start = now_ms();
    store
        .handle
        .quarantine(rejected(start, 6_000))
        .await
        .unwrap();
    close(store).await.unwrap();
    assert!(file_contains(&cfg, SECRET), "the marker is there to find");
    housekeeping_at(&cfg, start + 31 * DAY_MS);
    assert!(
        !file_contains(&cfg, SECRET),
        "erased, not left in free pages"
    );
}

#[tokio::test]
async fn a_replayed_entry_keeps_its_message_until_its_record_is_forwarded() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let id = store
        .handle
        .quarantine(rejected(now_ms(), 6_000))
        .await
        .unwrap();
    close(store).await.unwrap();
    let mut fixed = message("lab", "Q1", "fixed");
    fixed.raw = None; // an interface that does not forward raw HL7
    let inserted = offline::replay(&cfg, id, &fixed, now_ms()).unwrap();
    let (_, seq) = stored(Ok(inserted));

    housekeeping_at(&cfg, now_ms());
    let held = reader(&cfg).quarantine_get(id).unwrap().unwrap();
    assert!(!held.raw.is_empty(), "the record is not forwarded yet");
    assert_eq!(held.summary.erased_at_ms, None);

    let store = open_store(&cfg);
    assert_eq!(
        store.handle.forwarded(vec![seq], now_ms()).await.unwrap(),
        1
    );
    close(store).await.unwrap();
    housekeeping_at(&cfg, now_ms());
    let erased = reader(&cfg).quarantine_get(id).unwrap().unwrap();
    assert!(erased.raw.is_empty() && erased.ack.is_empty());
    assert!(erased.summary.erased_at_ms.is_some());
    assert_eq!(erased.summary.expired_at_ms, None);
    let line = reader(&cfg)
        .audit_last_of_kind("quarantine.erased")
        .unwrap()
        .unwrap();
    assert!(
        line.detail.ends_with(&format!("entries {id}")),
        "{}",
        line.detail
    );
    assert!(!file_contains(&cfg, SECRET), "overwritten in the file");
}

#[tokio::test]
async fn an_entry_replayed_by_an_older_build_is_erased_at_the_first_housekeeping() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let id = store
        .handle
        .quarantine(rejected(now_ms(), 100))
        .await
        .unwrap();
    close(store).await.unwrap();
    // What a build before schema 5 left: replayed, its record stored with its own raw copy, no
    // link between them.
    let conn = rusqlite::Connection::open(&cfg.path).unwrap();
    conn.execute(
        "UPDATE quarantine SET replayed_at_ms = 5 WHERE id = ?1",
        [id],
    )
    .unwrap();
    drop(conn);
    housekeeping_at(&cfg, now_ms());
    assert!(
        reader(&cfg)
            .quarantine_get(id)
            .unwrap()
            .unwrap()
            .raw
            .is_empty()
    );
}

#[tokio::test]
async fn the_writer_sweeps_the_quarantine_soon_after_it_starts() {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let id = store
        .handle
        .quarantine(rejected(now_ms() - 40 * DAY_MS, 100))
        .await
        .unwrap();
    let health = store.handle.health();
    let swept = eventually(Duration::from_secs(10), || {
        reader(&cfg)
            .quarantine_get(id)
            .unwrap()
            .is_some_and(|e| e.raw.is_empty())
    })
    .await;
    assert!(swept, "not erased within 10 s of the start");
    assert!(matches!(*health.borrow(), StoreHealth::Running));
    close(store).await.unwrap();
}
