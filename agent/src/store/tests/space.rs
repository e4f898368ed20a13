//! Scenario 4: the size limit and a really full filesystem.

use std::{os::unix::fs::MetadataExt, path::PathBuf, process::Command};

use super::*;
use crate::store::{FullCause, IntegrityCheck, StoreHealth};

#[tokio::test]
async fn size_limit_refuses_with_full_until_forwarding_frees_space() {
    let (_dir, mut cfg) = temp_config();
    cfg.max_bytes = 2 << 20;
    let store = open_store(&cfg);
    let mut seqs = Vec::new();
    let refused = loop {
        match store
            .handle
            .insert(sized_message("lab", &format!("C{}", seqs.len()), 200_000))
            .await
        {
            Ok(inserted) => seqs.push(stored(Ok(inserted)).1),
            Err(err) => break err,
        }
        assert!(seqs.len() < 20, "the limit never applied");
    };
    assert!(
        matches!(
            refused,
            StoreError::Full {
                cause: FullCause::Limit { .. }
            }
        ),
        "{refused:?}"
    );
    assert!(seqs.len() >= 5, "only {} fit in 2 MiB", seqs.len());
    // A resend of a stored message is still answered: it adds nothing.
    let resend = sized_message("lab", "C0", 200_000);
    assert!(matches!(
        store.handle.insert(resend).await,
        Ok(Inserted::Duplicate { .. })
    ));

    assert_eq!(
        store
            .handle
            .forwarded(seqs.clone(), now_ms())
            .await
            .unwrap(),
        u64::try_from(seqs.len()).unwrap()
    );
    stored(
        store
            .handle
            .insert(sized_message("lab", "after", 200_000))
            .await,
    );
    let lab = reader(&cfg).stats().unwrap().sources.remove(0);
    assert_eq!(lab.refused_full, 1);
    close(store).await.unwrap();
}

#[tokio::test]
async fn retained_sent_records_make_room_before_new_messages_are_refused_twice() {
    let (_dir, mut cfg) = temp_config();
    cfg.max_bytes = 2 << 20;
    cfg.retain_sent = std::time::Duration::from_secs(3600);
    let store = open_store(&cfg);
    let mut seqs = Vec::new();
    while let Ok(inserted) = store
        .handle
        .insert(sized_message("lab", &format!("C{}", seqs.len()), 200_000))
        .await
    {
        seqs.push(stored(Ok(inserted)).1);
    }
    store
        .handle
        .forwarded(seqs.clone(), now_ms())
        .await
        .unwrap();
    // Marked sent, still retained: the next message is refused, and that
    // refusal purges sent records early so the retry fits.
    let refused = store
        .handle
        .insert(sized_message("lab", "next", 200_000))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Full {
                cause: FullCause::Limit { .. }
            })
        ),
        "{refused:?}"
    );
    stored(
        store
            .handle
            .insert(sized_message("lab", "next", 200_000))
            .await,
    );
    let audit = reader(&cfg).audit_recent(5).unwrap();
    assert!(
        audit.iter().any(|a| a.detail.contains("before retention")),
        "{audit:?}"
    );
    close(store).await.unwrap();
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    _dir: TempDir,
    mount: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if !is_root {
            return Err("needs root".to_owned());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed: {status}"));
        }
        Ok(Self { _dir: dir, mount })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ignored = Command::new("umount").arg(&self.mount).status();
    }
}

/// Inserts `size`-byte messages until one is refused; returns the seqs
/// stored and the refusal.
async fn fill(store: &OpenedStore, size: usize) -> (Vec<i64>, StoreError) {
    let mut seqs = Vec::new();
    loop {
        match store
            .handle
            .insert(sized_message("lab", &format!("C{}", seqs.len()), size))
            .await
        {
            Ok(inserted) => seqs.push(stored(Ok(inserted)).1),
            Err(err) => return (seqs, err),
        }
        assert!(seqs.len() < 500, "the filesystem never filled");
    }
}

macro_rules! tmpfs_or_skip {
    ($test:literal, $size:literal) => {
        match Tmpfs::mount($size) {
            Ok(fs) => fs,
            Err(why) => {
                eprintln!("SKIPPED (needs root): {}: {why}", $test);
                return;
            }
        }
    };
}

#[tokio::test]
async fn full_filesystem_keeps_a_reserve_so_deletes_work_and_ingest_resumes() {
    let fs = tmpfs_or_skip!(
        "full_filesystem_keeps_a_reserve_so_deletes_work_and_ingest_resumes",
        // The standing WAL (16 MiB, allocated as it fills) plus a few MiB.
        "20m"
    );
    let mut cfg = StoreConfig::new(fs.mount.join("queue.db"));
    cfg.max_bytes = u64::MAX;
    cfg.reserve_bytes = 1 << 20;
    let store = open_store(&cfg);
    let (seqs, refused) = fill(&store, 50_000).await;
    assert!(
        matches!(
            refused,
            StoreError::Full {
                cause: FullCause::Reserve { .. }
            }
        ),
        "{refused:?}"
    );
    assert!(matches!(
        *store.handle.health().borrow(),
        StoreHealth::Running
    ));
    assert!(seqs.len() >= 10, "only {} messages fit", seqs.len());

    // The forwarder acknowledges in small windows; every delete commits.
    for chunk in seqs.chunks(5) {
        let done = store
            .handle
            .forwarded(chunk.to_vec(), now_ms())
            .await
            .unwrap();
        assert_eq!(done, u64::try_from(chunk.len()).unwrap());
    }
    // Like a sender after an AR, retry: the WAL that grew during the deletes
    // is cut back to its standing size at the next write.
    let mut retries = 0;
    let after = loop {
        match store
            .handle
            .insert(sized_message("lab", "after", 50_000))
            .await
        {
            Ok(inserted) => break stored(Ok(inserted)).1,
            Err(StoreError::Full { .. }) if retries < 3 => retries += 1,
            Err(err) => panic!("ingest did not resume: {err:?}"),
        }
    };
    close(store).await.unwrap();

    let store = open_store(&cfg);
    assert!(matches!(
        store.report.integrity,
        IntegrityCheck::Passed { .. }
    ));
    assert!(store.report.recovered.is_none());
    assert_eq!(pending_seqs(&cfg), [after]);
    close(store).await.unwrap();
    drop(fs);
}

#[tokio::test]
async fn real_enospc_answers_full_keeps_running_and_resumes_when_space_returns() {
    let fs = tmpfs_or_skip!(
        "real_enospc_answers_full_keeps_running_and_resumes_when_space_returns",
        "1m"
    );
    let filler = fs.mount.join("other-program.log");
    std::fs::write(&filler, vec![b'.'; 300 << 10]).unwrap();
    let mut cfg = StoreConfig::new(fs.mount.join("queue.db"));
    cfg.max_bytes = u64::MAX;
    cfg.reserve_bytes = 0; // check off: SQLite itself hits ENOSPC
    let store = open_store(&cfg);
    let (mut seqs, refused) = fill(&store, 20_000).await;
    assert!(
        matches!(
            refused,
            StoreError::Full {
                cause: FullCause::Filesystem
            }
        ),
        "{refused:?}"
    );
    assert!(matches!(
        *store.handle.health().borrow(),
        StoreHealth::Running
    ));

    std::fs::remove_file(&filler).unwrap();
    seqs.push(
        stored(
            store
                .handle
                .insert(sized_message("lab", "after", 20_000))
                .await,
        )
        .1,
    );
    close(store).await.unwrap();

    let store = open_store(&cfg);
    assert!(matches!(
        store.report.integrity,
        IntegrityCheck::Passed { .. }
    ));
    assert!(store.report.recovered.is_none());
    assert_eq!(pending_seqs(&cfg), seqs);
    close(store).await.unwrap();
    drop(fs);
}
