//! Measures how the store behaves with a large backlog: bulk ingest through
//! the group-commit writer, then the time to reopen (ready to accept) and the
//! cost of `PRAGMA quick_check`, which decides whether the integrity check
//! can run during open or must run in the background.
//!
//! Usage: `cargo run --release --example store_open_timing -- [DIR] [ROWS] [open-only]`
//! (default: a temporary directory and 1,000,000 rows of ~1 KB raw message
//! plus a ~300 byte record). As root it also measures with a cold page cache.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use hl7edge::store::{IntegrityCheck, NewMessage, Store, StoreConfig, StoreReader};

const IN_FLIGHT: usize = 1024;

fn main() -> anyhow::Result<()> {
    hl7edge::logging::init(&hl7edge::config::Log::default());
    let mut args = std::env::args().skip(1);
    let temp = tempfile_dir()?;
    let dir = args.next().map_or_else(|| temp.clone(), PathBuf::from);
    let rows: usize = args
        .next()
        .map_or(Ok(1_000_000), |s| s.parse())
        .context("ROWS")?;
    let with_quick_check = args.next().as_deref() != Some("open-only");
    let path = dir.join("queue.db");
    let runtime = tokio::runtime::Runtime::new()?;

    if !path.exists() {
        runtime.block_on(fill(&path, rows))?;
    }
    let db_len = std::fs::metadata(&path)?.len();
    println!("database: {} ({:.1} MiB)", path.display(), mib(db_len));

    let default_check = StoreConfig::new(&path).sync_check_max_bytes;
    if with_quick_check {
        let (t, problems) = timed(|| quick_check(&path))?;
        println!("warm: PRAGMA quick_check: {t:?} ({problems})");
        runtime.block_on(reopen(&path, "warm", u64::MAX))?;
    }
    runtime.block_on(reopen(&path, "warm", default_check))?;
    if drop_page_cache() {
        for _ in 0..3 {
            drop_page_cache();
            runtime.block_on(reopen(&path, "cold", default_check))?;
        }
        if with_quick_check {
            drop_page_cache();
            let (t, problems) = timed(|| quick_check(&path))?;
            println!("cold: PRAGMA quick_check: {t:?} ({problems})");
        }
    } else {
        println!("cold-cache runs skipped (needs root to drop the page cache)");
    }
    let reader = StoreReader::open(&path)?;
    let (t, stats) = timed(|| reader.stats())?;
    println!("reader.stats(): {t:?} (queue depth {})", stats.queue_depth);
    let (t, page) = timed(|| reader.pending(0, 256))?;
    println!("reader.pending(0, 256): {t:?} ({} rows)", page.len());
    if dir == temp {
        std::fs::remove_dir_all(&temp)?;
    }
    Ok(())
}

/// Ingests `rows` messages through the public API, `IN_FLIGHT` at a time.
async fn fill(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut cfg = StoreConfig::new(path);
    cfg.max_bytes = u64::MAX;
    let store = Store::open(cfg)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..rows {
        if tasks.len() >= IN_FLIGHT
            && let Some(done) = tasks.join_next().await
        {
            done??;
        }
        let handle = store.handle.clone();
        tasks.spawn(async move { handle.insert(message(n)).await.map(drop) });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let transactions = store.handle.metrics().transactions;
    println!(
        "ingest: {rows} messages in {elapsed:?} ({:.0}/s, {transactions} transactions, {:.0} per commit)",
        rows as f64 / elapsed.as_secs_f64(),
        rows as f64 / transactions.max(1) as f64
    );
    drop(store.handle);
    tokio::task::spawn_blocking(move || store.writer.join()).await??;
    Ok(())
}

async fn reopen(path: &Path, label: &str, sync_check_max_bytes: u64) -> anyhow::Result<()> {
    let mut cfg = StoreConfig::new(path);
    cfg.max_bytes = u64::MAX;
    cfg.sync_check_max_bytes = sync_check_max_bytes;
    let started = Instant::now();
    let store = Store::open(cfg)?;
    let msg = message(usize::MAX);
    store.handle.insert(msg).await?;
    let ready = started.elapsed();
    let mode = match store.report.integrity {
        IntegrityCheck::Passed { elapsed } => format!("quick_check during open took {elapsed:?}"),
        IntegrityCheck::Background => "quick_check in the background".to_owned(),
    };
    println!(
        "{label}: open {:?}, first insert committed after {ready:?}; {mode}",
        store.report.elapsed
    );
    drop(store.handle);
    tokio::task::spawn_blocking(move || store.writer.join()).await??;
    Ok(())
}

fn message(n: usize) -> NewMessage {
    let control_id = format!("MSG{n:010}");
    let mut content_hash = [0u8; 32];
    content_hash[..8].copy_from_slice(&(n as u64).to_le_bytes());
    let mut raw =
        format!("MSH|^~\\&|LAB|CLINIC|HUB|ORG|20250101120000||ORU^R01|{control_id}|P|2.5\r")
            .into_bytes();
    raw.resize(1024, b'O');
    NewMessage {
        no_ack_requested: false,
        source: "lab".to_owned(),
        control_id: control_id.clone(),
        content_hash,
        message_type: "ORU^R01".to_owned(),
        received_at_ms: 1_750_000_000_000 + n as i64 % 1_000_000,
        raw: Some(raw),
        record: vec![b'r'; 300],
        ack: format!(
            "MSH|^~\\&|HUB|ORG|LAB|CLINIC|20250101120000||ACK|A{n}|P|2.5\rMSA|AA|{control_id}\r"
        )
        .into_bytes(),
    }
}

fn quick_check(path: &Path) -> anyhow::Result<String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?)
}

fn timed<T, E: Into<anyhow::Error>>(
    f: impl FnOnce() -> Result<T, E>,
) -> anyhow::Result<(Duration, T)> {
    let started = Instant::now();
    let value = f().map_err(Into::into)?;
    Ok((started.elapsed(), value))
}

fn drop_page_cache() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hl7edge-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
