//! Scenario 6: a damaged database at start is set aside, not crash-looped on.

use std::{
    fs,
    io::{Seek, SeekFrom, Write},
    time::Duration,
};

use super::*;
use crate::store::{IntegrityCheck, StoreHealth, recovery::marker_path};

const PAGE: u64 = 4096;

/// A closed store holding `n` records of about 1.2 KB each.
async fn store_with_records(cfg: &StoreConfig, n: usize) {
    let store = open_store(cfg);
    for i in 0..n {
        let mut msg = sized_message("lab", &format!("C{i}"), 1_000);
        msg.record = vec![b'r'; 300];
        store.handle.insert(msg).await.unwrap();
    }
    close(store).await.unwrap();
}

fn overwrite_page(cfg: &StoreConfig, page: u64) {
    let mut file = fs::OpenOptions::new().write(true).open(&cfg.path).unwrap();
    file.seek(SeekFrom::Start((page - 1) * PAGE)).unwrap();
    file.write_all(&[0xAA; PAGE as usize]).unwrap();
    file.sync_all().unwrap();
}

async fn assert_fresh_and_usable(store: OpenedStore, cfg: &StoreConfig) {
    let (_, seq) = stored(store.handle.insert(message("lab", "new", "OBX")).await);
    assert_eq!(seq, 1);
    let audit = reader(cfg).audit_recent(5).unwrap();
    assert!(
        audit.iter().any(|a| a.kind == "store.recovered"),
        "{audit:?}"
    );
    close(store).await.unwrap();
}

#[tokio::test]
async fn garbage_file_is_set_aside_and_a_fresh_store_starts() {
    let (_dir, cfg) = temp_config();
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&cfg.path, &garbage).unwrap();

    let store = open_store(&cfg);
    let recovery = store.report.recovered.clone().expect("recovered");
    assert_eq!(fs::read(&recovery.set_aside).unwrap(), garbage);
    assert!(
        recovery
            .set_aside
            .to_string_lossy()
            .contains("queue.db.corrupt-")
    );
    assert_eq!(recovery.lost, None);
    assert_fresh_and_usable(store, &cfg).await;
}

#[tokio::test]
async fn truncated_database_is_set_aside() {
    let (_dir, cfg) = temp_config();
    store_with_records(&cfg, 300).await;
    let len = fs::metadata(&cfg.path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&cfg.path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let store = open_store(&cfg);
    let recovery = store.report.recovered.clone().expect("recovered");
    assert_eq!(fs::metadata(&recovery.set_aside).unwrap().len(), len / 2);
    assert_fresh_and_usable(store, &cfg).await;
}

#[tokio::test]
async fn damaged_page_is_found_by_the_check_at_open() {
    let (_dir, cfg) = temp_config();
    store_with_records(&cfg, 300).await;
    overwrite_page(&cfg, 60);

    let store = open_store(&cfg);
    let recovery = store.report.recovered.clone().expect("recovered");
    assert!(!recovery.reason.is_empty());
    assert!(recovery.describe().contains("set aside"));
    assert_fresh_and_usable(store, &cfg).await;
}

#[tokio::test]
async fn background_check_halts_the_writer_and_the_next_start_sets_the_file_aside() {
    let (_dir, mut cfg) = temp_config();
    store_with_records(&cfg, 300).await;
    overwrite_page(&cfg, 60);
    cfg.sync_check_max_bytes = 0;

    let store = open_store(&cfg);
    assert_eq!(store.report.integrity, IntegrityCheck::Background);
    assert!(store.report.recovered.is_none());
    let health = store.handle.health();
    let halted = eventually(Duration::from_secs(20), || {
        matches!(*health.borrow(), StoreHealth::Corrupt { .. })
    })
    .await;
    assert!(halted, "health stayed {:?}", *health.borrow());
    assert!(marker_path(&cfg.path).exists());
    let refused = store.handle.insert(message("lab", "late", "OBX")).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        close(store).await,
        Err(StoreError::Corrupt { .. })
    ));

    // The marker forces the full check at this start, whatever the size.
    let store = open_store(&cfg);
    assert!(store.report.recovered.is_some());
    assert!(!marker_path(&cfg.path).exists());
    assert_fresh_and_usable(store, &cfg).await;
}

#[tokio::test]
async fn stale_marker_on_a_sound_file_forces_a_check_and_keeps_the_data() {
    let (_dir, mut cfg) = temp_config();
    store_with_records(&cfg, 5).await;
    fs::write(marker_path(&cfg.path), "earlier failure").unwrap();
    cfg.sync_check_max_bytes = 0;

    let store = open_store(&cfg);
    assert!(matches!(
        store.report.integrity,
        IntegrityCheck::Passed { .. }
    ));
    assert!(store.report.recovered.is_none());
    assert!(!marker_path(&cfg.path).exists());
    assert_eq!(pending_seqs(&cfg), [1, 2, 3, 4, 5]);
    close(store).await.unwrap();
}

#[tokio::test]
async fn set_aside_moves_the_log_along_and_reports_what_it_held() {
    let (_dir, cfg) = temp_config();
    store_with_records(&cfg, 4).await;
    let wal = crate::store::recovery::with_suffix(&cfg.path, "-wal");
    fs::write(&wal, b"not a valid log: ignored by SQLite").unwrap();

    let aside = crate::store::recovery::set_aside(&cfg.path, "test".to_owned(), 42).unwrap();
    assert_eq!(
        aside.set_aside,
        cfg.path.with_file_name("queue.db.corrupt-42")
    );
    assert!(cfg.path.with_file_name("queue.db.corrupt-42-wal").exists());
    assert!(!cfg.path.exists() && !wal.exists());
    let lost = aside.lost.expect("readable");
    assert_eq!((lost.unsent_records, lost.open_quarantine), (4, 0));

    fs::write(&cfg.path, b"x").unwrap();
    let again = crate::store::recovery::set_aside(&cfg.path, "test".to_owned(), 42).unwrap();
    assert_eq!(
        again.set_aside,
        cfg.path.with_file_name("queue.db.corrupt-42.1")
    );
}
