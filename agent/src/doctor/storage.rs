//! `doctor` storage checks: the queue's directory is writable, the filesystem has room for the
//! queue to grow to `storage.max_bytes`, and the database (if it exists yet) passes SQLite's
//! `PRAGMA quick_check`, opened read-only so a running agent is not disturbed.

use std::path::Path;
use std::time::Duration;

use bytesize::ByteSize;
use rusqlite::{Connection, OpenFlags};

use crate::config::Storage;

use super::check::Check;

/// Below this much free space the gateway cannot work reliably.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// Runs the storage checks.
pub fn checks(storage: &Storage) -> Vec<Check> {
    let dir = storage.path.parent().unwrap_or(Path::new("/"));
    let mut out = vec![directory(dir)];
    let fs = rustix::fs::statvfs(dir).ok();
    if let Some(total) = fs.as_ref().map(|s| s.f_blocks.saturating_mul(s.f_frsize)) {
        out.push(partition(dir, total, storage.max_bytes));
    }
    let available = fs.map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    if let Some(available) = available {
        out.push(disk(
            available,
            used_bytes(&storage.path),
            storage.max_bytes,
        ));
    }
    out.push(database(&storage.path));
    out.push(database_files(&storage.path));
    out
}

/// The database and its `-wal`/`-shm` files: readable by their owner only (the agent sets 0600
/// itself; an older build's files, or a copy made by hand, may not be).
fn database_files(db: &Path) -> Check {
    let files: Vec<(std::path::PathBuf, u32)> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| crate::store::sibling(db, suffix))
        .filter_map(|p| {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).ok()?.permissions().mode() & 0o7777;
            Some((p, mode))
        })
        .collect();
    judge_database_files(&files)
}

/// The verdict on the database files found, with their modes.
pub fn judge_database_files(files: &[(std::path::PathBuf, u32)]) -> Check {
    const NAME: &str = "database permissions";
    let open: Vec<&(std::path::PathBuf, u32)> =
        files.iter().filter(|(_, mode)| mode & 0o077 != 0).collect();
    if open.is_empty() {
        return match files.first() {
            Some((path, mode)) => Check::ok(
                NAME,
                format!(
                    "{} and its log are private (mode {mode:04o})",
                    path.display()
                ),
            ),
            None => Check::ok(NAME, "no database yet"),
        };
    }
    let names: Vec<String> = open.iter().map(|(p, _)| p.display().to_string()).collect();
    let modes: Vec<String> = open
        .iter()
        .map(|(p, m)| format!("{} mode {m:04o}", p.display()))
        .collect();
    Check::fail(
        NAME,
        format!("patient data readable by other users: {}", modes.join(", ")),
        format!("chmod 600 {}", names.join(" ")),
    )
}

fn directory(dir: &Path) -> Check {
    const NAME: &str = "storage directory";
    let shown = dir.display();
    if !dir.is_dir() {
        return Check::fail(
            NAME,
            format!("{shown} does not exist"),
            format!("mkdir -p {shown} (or correct storage.path)"),
        );
    }
    match tempfile::tempfile_in(dir) {
        Ok(_) => Check::ok(NAME, format!("{shown} is writable")),
        Err(e) => Check::fail(
            NAME,
            format!("cannot create files in {shown}: {e}"),
            format!(
                "give the service's user write access: chown hl7edge:hl7edge {shown} && chmod 700 {shown}"
            ),
        ),
    }
}

/// What the store needs on its partition: `max_bytes`, plus the write-ahead log's standing size
/// and the reserve it keeps free for deletes (the overhead is documented with
/// `storage.max_bytes` in docs/configuration.md).
pub fn needed_bytes(max_bytes: u64) -> u64 {
    max_bytes.saturating_add(crate::store::overhead_bytes(
        crate::store::DEFAULT_RESERVE_BYTES,
    ))
}

/// The data partition's size against what the store needs: a partition too small refuses
/// messages long before the queue reaches its cap (every message gets AR on a small enough one).
pub fn partition(dir: &Path, total: u64, max_bytes: u64) -> Check {
    const NAME: &str = "data partition";
    let size = |b: u64| ByteSize(b).display().iec().to_string();
    let needed = needed_bytes(max_bytes);
    let overhead = needed.saturating_sub(max_bytes);
    if total >= needed {
        return Check::ok(
            NAME,
            format!(
                "{} holds {}; the store needs {} (storage.max_bytes {} + {} for its write-ahead log and the reserve kept for deletes)",
                dir.display(),
                size(total),
                size(needed),
                size(max_bytes),
                size(overhead)
            ),
        );
    }
    let fits = total.saturating_sub(overhead);
    let lower = if fits >= (1 << 20) {
        format!(", or lower storage.max_bytes to at most {}", size(fits))
    } else {
        String::new()
    };
    Check::fail(
        NAME,
        format!(
            "{} holds only {}; the store needs at least {}: storage.max_bytes {} + {} for its write-ahead log and the reserve kept for deletes. Messages are refused (AR) long before the queue is full",
            dir.display(),
            size(total),
            size(needed),
            size(max_bytes),
            size(overhead)
        ),
        format!(
            "move storage.path to a partition of at least {}{lower}",
            size(needed)
        ),
    )
}

/// Bytes the database and its WAL take now.
fn used_bytes(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db) + size(Path::new(&wal))
}

/// Free space against what the queue may still grow by.
pub fn disk(available: u64, used: u64, max_bytes: u64) -> Check {
    const NAME: &str = "disk space";
    let growth = max_bytes.saturating_sub(used);
    let free = ByteSize(available).display().iec();
    if available < MIN_FREE_BYTES {
        Check::fail(
            NAME,
            format!("only {free} free"),
            "free space on this filesystem (old logs, files), or move storage.path to a larger one",
        )
    } else if available < growth {
        Check::warn(
            NAME,
            format!(
                "{free} free, less than the queue may grow (storage.max_bytes {}, {} used)",
                ByteSize(max_bytes).display().iec(),
                ByteSize(used).display().iec()
            ),
            "free space, or lower storage.max_bytes below the free space",
        )
    } else {
        Check::ok(
            NAME,
            format!(
                "{free} free; the queue may use up to {}",
                ByteSize(max_bytes).display().iec()
            ),
        )
    }
}

fn database(path: &Path) -> Check {
    const NAME: &str = "database";
    let shown = path.display();
    if !path.exists() {
        return Check::ok(
            NAME,
            format!("{shown} not created yet (the agent creates it)"),
        );
    }
    match quick_check(path) {
        Ok(result) if result == ["ok"] => Check::ok(NAME, format!("{shown} passes quick_check")),
        Ok(problems) => Check::fail(
            NAME,
            format!("{shown} is damaged: {}", problems.join("; ")),
            "restart the agent (systemctl restart hl7edge): it checks the file fully and sets a damaged one aside",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{shown} cannot be read as a database: {e}"),
            "run doctor as root or as the service user (sudo -u hl7edge hl7edge doctor); if the file is not a database, move it away",
        ),
    }
}

/// `PRAGMA quick_check` on a read-only connection: `["ok"]` or the problems found.
pub fn quick_check(path: &Path) -> rusqlite::Result<Vec<String>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    const GIB: u64 = 1 << 30;

    #[test]
    fn free_space_below_the_queue_cap_warns_and_almost_none_fails() {
        assert_eq!(disk(10 * GIB, 0, 2 * GIB).outcome, Outcome::Ok);
        assert_eq!(disk(GIB, 0, 2 * GIB).outcome, Outcome::Warn);
        assert_eq!(disk(GIB, 2 * GIB, 2 * GIB).outcome, Outcome::Ok);
        assert_eq!(disk(1 << 20, 0, 2 * GIB).outcome, Outcome::Fail);
    }

    #[test]
    fn a_partition_smaller_than_the_store_needs_fails_naming_the_size() {
        let dir = Path::new("/var/lib/hl7edge");
        let small = partition(dir, 20 << 20, 2 * GIB);
        assert_eq!(small.outcome, Outcome::Fail);
        assert!(small.detail.contains("2.0 GiB"), "{}", small.detail);
        assert!(small.fix.contains("at least 2.0 GiB"), "{}", small.fix);
        assert!(
            !small.fix.contains("lower"),
            "nothing fits 20 MiB: {}",
            small.fix
        );
        let roomy_cap = partition(dir, GIB, 2 * GIB);
        assert!(
            roomy_cap
                .fix
                .contains("lower storage.max_bytes to at most 992.0 MiB"),
            "{}",
            roomy_cap.fix
        );
        assert_eq!(partition(dir, 4 * GIB, 2 * GIB).outcome, Outcome::Ok);
    }

    #[test]
    fn a_database_readable_by_others_fails_with_chmod_600_of_each_file() {
        let db = std::path::PathBuf::from("/var/lib/hl7edge/queue.db");
        let wal = std::path::PathBuf::from("/var/lib/hl7edge/queue.db-wal");
        let check = judge_database_files(&[(db.clone(), 0o644), (wal.clone(), 0o600)]);
        assert_eq!(check.outcome, Outcome::Fail);
        assert_eq!(check.fix, "chmod 600 /var/lib/hl7edge/queue.db");
        assert!(check.detail.contains("mode 0644"), "{}", check.detail);
        let ok = judge_database_files(&[(db, 0o600), (wal, 0o600)]);
        assert_eq!(ok.outcome, Outcome::Ok);
    }

    #[test]
    fn a_healthy_database_passes_and_garbage_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(database(&db).outcome, Outcome::Ok);
        std::fs::write(&db, vec![7_u8; 8192]).unwrap();
        assert_eq!(database(&db).outcome, Outcome::Fail);
        assert_eq!(database(&dir.path().join("new.db")).outcome, Outcome::Ok);
    }
}
