//! Scenario 5: a write I/O error stops the writer, answers nothing with
//! success, and loses nothing that was acknowledged.
//!
//! The I/O error is real: the test runs itself again as a child process
//! under `prlimit --fsize`, so once the store's files reach the limit the
//! kernel fails the write with `EFBIG` and SQLite reports `SQLITE_IOERR`.

use std::{path::Path, process::Command};

use super::*;

const CHILD_DIR: &str = "HL7EDGE_STORE_FATAL_CHILD_DIR";
const THIS_TEST: &str =
    "store::tests::fatal::write_error_stops_the_writer_and_loses_nothing_acknowledged";
// Each commit also writes its audit line's page (`batch_audit.rs`) and its
// source's sequence row (`source_sequence`) to the log.
const FILE_SIZE_LIMIT: u64 = 640 * 1024;

#[test]
fn write_error_stops_the_writer_and_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // SIGXFSZ is ignored so the write fails with EFBIG instead of killing us.
    let output = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; exec prlimit --fsize="$1" "$0" --exact "$2" --nocapture --test-threads=1"#)
        .arg(exe)
        .arg(FILE_SIZE_LIMIT.to_string())
        .arg(THIS_TEST)
        .env(CHILD_DIR, dir.path())
        .output();
    let output = match output {
        Ok(o) if o.status.code() != Some(127) => o,
        other => {
            eprintln!("SKIPPED (needs bash and prlimit): {THIS_TEST}: {other:?}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("WRITER STOPPED FATAL"), "{stdout}");
    let acked: Vec<uuid::Uuid> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACKED "))
        .map(|id| id.trim().parse().unwrap())
        .collect();
    assert!(
        acked.len() >= 10,
        "only {} inserts before the limit",
        acked.len()
    );

    let cfg = StoreConfig::new(dir.path().join("queue.db"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open_store(&cfg);
        assert!(store.report.recovered.is_none());
        let kept: Vec<uuid::Uuid> = reader(&cfg)
            .pending(0, 10_000)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let missing: Vec<_> = acked.iter().filter(|id| !kept.contains(id)).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        close(store).await.unwrap();
    });
}

/// Runs in the child process, under the file size limit.
fn child(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cfg = StoreConfig::new(dir.join("queue.db"));
        let store = open_store(&cfg);
        let mut n = 0;
        let err = loop {
            match store
                .handle
                .insert(sized_message("lab", &format!("C{n}"), 8_000))
                .await
            {
                Ok(inserted) => println!("ACKED {}", stored(Ok(inserted)).0),
                Err(err) => break err,
            }
            n += 1;
            assert!(n < 1_000, "the file size limit never applied");
        };
        assert!(matches!(err, StoreError::Fatal { .. }), "{err:?}");
        assert!(store.handle.health().borrow().is_failed());
        let again = store.handle.insert(message("lab", "again", "OBX")).await;
        assert!(matches!(again, Err(StoreError::Fatal { .. })), "{again:?}");
        assert!(matches!(close(store).await, Err(StoreError::Fatal { .. })));
        println!("WRITER STOPPED FATAL");
    });
}
