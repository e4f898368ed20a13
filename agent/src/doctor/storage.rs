//! `doctor` storage checks: the queue's directory is writable, the filesystem has room for the
//! queue to grow to `storage.max_bytes` and the quarantine to its own cap (the [`DiskBudget`],
//! which also counts damaged databases set aside beside the store), and the database (if it
//! exists yet) passes SQLite's `PRAGMA quick_check`, opened read-only so a running agent is not
//! disturbed.

use std::path::Path;
use std::time::Duration;

use bytesize::ByteSize;
use rusqlite::{Connection, OpenFlags};

use crate::config::Storage;

use super::check::Check;

/// Below this much free space the gateway cannot work reliably.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// What the store may take on its partition: the queue's cap, the quarantine's cap, and the
/// damaged databases set aside beside it (they stay until purged), plus the fixed overhead of
/// [`needed_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskBudget {
    /// `storage.max_bytes`.
    pub queue: u64,
    /// `quarantine.max_bytes`.
    pub quarantine: u64,
    /// Bytes of the set-aside databases now.
    pub set_aside: u64,
}

impl DiskBudget {
    /// The caps the store may grow to: queue and quarantine.
    pub fn caps(&self) -> u64 {
        self.queue.saturating_add(self.quarantine)
    }

    /// The caps and the set-aside databases: everything but the fixed overhead.
    pub fn data(&self) -> u64 {
        self.caps().saturating_add(self.set_aside)
    }

    /// The parts in words, for a check's detail.
    fn parts(&self) -> String {
        let size = |b: u64| ByteSize(b).display().iec().to_string();
        let set_aside = if self.set_aside > 0 {
            format!(" + {} of damaged databases set aside", size(self.set_aside))
        } else {
            String::new()
        };
        format!(
            "storage.max_bytes {} + quarantine.max_bytes {}{set_aside}",
            size(self.queue),
            size(self.quarantine)
        )
    }
}

/// Runs the storage checks.
pub fn checks(storage: &Storage, budget: &DiskBudget) -> Vec<Check> {
    let dir = storage.path.parent().unwrap_or(Path::new("/"));
    let mut out = vec![directory(dir)];
    let fs = rustix::fs::statvfs(dir).ok();
    if let Some(total) = fs.as_ref().map(|s| s.f_blocks.saturating_mul(s.f_frsize)) {
        out.push(partition(dir, total, budget));
    }
    let available = fs.map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    if let Some(available) = available {
        out.push(disk(available, used_bytes(&storage.path), budget.caps()));
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

/// What the store needs on its partition: the budget's data (queue and quarantine caps, set-aside
/// databases), plus the write-ahead log's standing size and the reserve it keeps free for deletes
/// (the overhead is documented with `storage.max_bytes` in docs/configuration.md).
pub fn needed_bytes(budget: &DiskBudget) -> u64 {
    budget.data().saturating_add(crate::store::overhead_bytes(
        crate::store::DEFAULT_RESERVE_BYTES,
    ))
}

/// The data partition's size against what the store needs: a partition too small refuses
/// messages long before the queue reaches its cap (every message gets AR on a small enough one).
pub fn partition(dir: &Path, total: u64, budget: &DiskBudget) -> Check {
    const NAME: &str = "data partition";
    let size = |b: u64| ByteSize(b).display().iec().to_string();
    let needed = needed_bytes(budget);
    let overhead = needed.saturating_sub(budget.data());
    if total >= needed {
        return Check::ok(
            NAME,
            format!(
                "{} holds {}; the store needs {} ({} + {} for its write-ahead log and the reserve kept for deletes)",
                dir.display(),
                size(total),
                size(needed),
                budget.parts(),
                size(overhead)
            ),
        );
    }
    let fits = total
        .saturating_sub(overhead)
        .saturating_sub(budget.quarantine)
        .saturating_sub(budget.set_aside);
    let lower = if fits >= (1 << 20) {
        format!(", or lower storage.max_bytes to at most {}", size(fits))
    } else {
        String::new()
    };
    let purge = if budget.set_aside > 0 {
        ", erase the damaged databases set aside once recovered (hl7edge storage purge-set-aside)"
    } else {
        ""
    };
    Check::fail(
        NAME,
        format!(
            "{} holds only {}; the store needs at least {}: {} + {} for its write-ahead log and the reserve kept for deletes. Messages are refused (AR) long before the queue is full",
            dir.display(),
            size(total),
            size(needed),
            budget.parts(),
            size(overhead)
        ),
        format!(
            "move storage.path to a partition of at least {}{lower}{purge}",
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

/// Free space against what the queue and the quarantine may still grow by (`caps`: their caps
/// together).
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
                "{free} free, less than the queue and quarantine may grow (storage.max_bytes + quarantine.max_bytes {}, {} used)",
                ByteSize(max_bytes).display().iec(),
                ByteSize(used).display().iec()
            ),
            "free space, or lower storage.max_bytes (or quarantine.max_bytes) below the free space",
        )
    } else {
        Check::ok(
            NAME,
            format!(
                "{free} free; the queue and quarantine may use up to {}",
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

    fn budget(queue: u64) -> DiskBudget {
        DiskBudget {
            queue,
            quarantine: 0,
            set_aside: 0,
        }
    }

    #[test]
    fn the_quarantine_cap_and_set_aside_databases_count_against_the_partition() {
        let dir = Path::new("/var/lib/hl7edge");
        let with_all = DiskBudget {
            queue: GIB,
            quarantine: 256 << 20,
            set_aside: 512 << 20,
        };
        let check = partition(dir, 3 * GIB / 2, &with_all);
        assert_eq!(
            check.outcome,
            Outcome::Fail,
            "1.75 GiB + 32 MiB do not fit 1.5 GiB"
        );
        assert!(
            check.detail.contains(
                "quarantine.max_bytes 256.0 MiB + 512.0 MiB of damaged databases set aside"
            ),
            "{}",
            check.detail
        );
        assert!(check.fix.contains("at least 1.8 GiB"), "{}", check.fix);
        assert!(
            check.fix.contains("hl7edge storage purge-set-aside"),
            "{}",
            check.fix
        );
        let without = DiskBudget {
            set_aside: 0,
            ..with_all
        };
        assert_eq!(partition(dir, 3 * GIB / 2, &without).outcome, Outcome::Ok);
    }

    #[test]
    fn a_partition_smaller_than_the_store_needs_fails_naming_the_size() {
        let dir = Path::new("/var/lib/hl7edge");
        let small = partition(dir, 20 << 20, &budget(2 * GIB));
        assert_eq!(small.outcome, Outcome::Fail);
        assert!(small.detail.contains("2.0 GiB"), "{}", small.detail);
        assert!(small.fix.contains("at least 2.0 GiB"), "{}", small.fix);
        assert!(
            !small.fix.contains("lower"),
            "nothing fits 20 MiB: {}",
            small.fix
        );
        let roomy_cap = partition(dir, GIB, &budget(2 * GIB));
        assert!(
            roomy_cap
                .fix
                .contains("lower storage.max_bytes to at most 992.0 MiB"),
            "{}",
            roomy_cap.fix
        );
        assert_eq!(
            partition(dir, 4 * GIB, &budget(2 * GIB)).outcome,
            Outcome::Ok
        );
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
