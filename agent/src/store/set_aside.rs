//! Damaged databases set aside at open (`recovery.rs`): finding them beside
//! the store, their size and age, and erasing them when a technician asks.
//!
//! Invariants:
//! - A set-aside database is `<db>.corrupt-<unix-seconds>` (or with `.<n>`
//!   appended) in the store's directory, with its own `-wal` and `-shm`
//!   when it had them; its size counts all three, its age comes from the
//!   time in its name. Nothing else is ever listed or deleted here.
//! - These files hold patient data (the queue and quarantine of the damaged
//!   store), so they count against the store's disk budget and are reported
//!   by `status`, `doctor` and the heartbeat until they are purged.
//! - Purging overwrites each file with zeros and syncs it before unlinking
//!   it (best effort against recovery from the filesystem's free blocks; a
//!   flash device may keep older copies of a block, which only disk
//!   encryption covers), log and shared-memory files first, so an
//!   interrupted purge leaves the main file, still listed.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

/// One damaged database set aside beside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The set-aside database file (its `-wal`/`-shm` are beside it).
    pub path: PathBuf,
    /// Bytes of the file and its `-wal` and `-shm`.
    pub bytes: u64,
    /// When it was set aside (from its name), Unix ms.
    pub set_aside_at_ms: i64,
}

/// The companions of a database file, purged before it.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// When a file named `candidate` was set aside from the database file named `db_name`, if it
/// is such a file (`queue.db.corrupt-1790000000`, `queue.db.corrupt-1790000000.2`); `None` for
/// anything else, its `-wal` and `-shm` included.
pub fn set_aside_time(db_name: &str, candidate: &str) -> Option<i64> {
    let rest = candidate.strip_prefix(db_name)?.strip_prefix(".corrupt-")?;
    let (seconds, n) = match rest.split_once('.') {
        Some((seconds, n)) => (seconds, Some(n)),
        None => (rest, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(seconds) || n.is_some_and(|n| !digits(n)) {
        return None;
    }
    seconds.parse::<i64>().ok()?.checked_mul(1000)
}

/// The databases set aside beside `db`, oldest first.
pub fn list(db: &Path) -> io::Result<Vec<SetAside>> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(db_name) = db.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(at_ms) = name.to_str().and_then(|n| set_aside_time(db_name, n)) else {
            continue;
        };
        let path = entry.path();
        let bytes = std::iter::once(path.clone())
            .chain(COMPANIONS.iter().map(|s| super::sibling(&path, s)))
            .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        found.push(SetAside {
            path,
            bytes,
            set_aside_at_ms: at_ms,
        });
    }
    found.sort_by(|a, b| (a.set_aside_at_ms, &a.path).cmp(&(b.set_aside_at_ms, &b.path)));
    Ok(found)
}

/// Bytes of every set-aside database in `found`.
pub fn total_bytes(found: &[SetAside]) -> u64 {
    found.iter().map(|s| s.bytes).sum()
}

/// Overwrites and deletes one set-aside database with its `-wal` and `-shm`, companions
/// first, and syncs the directory.
pub fn purge(item: &SetAside) -> io::Result<()> {
    for suffix in COMPANIONS {
        erase_file(&super::sibling(&item.path, suffix))?;
    }
    erase_file(&item.path)?;
    let dir = item.path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)?.sync_all()
}

/// Overwrites a file with zeros, syncs it, and unlinks it; a missing file is not an error.
fn erase_file(path: &Path) -> io::Result<()> {
    let mut file = match fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut left = file.metadata()?.len();
    let zeros = [0u8; 64 * 1024];
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_aside_databases_are_recognised_by_name() {
        let at = |n: &str| set_aside_time("queue.db", n);
        assert_eq!(at("queue.db.corrupt-1790000000"), Some(1_790_000_000_000));
        assert_eq!(at("queue.db.corrupt-1790000000.2"), Some(1_790_000_000_000));
        for other in [
            "queue.db",
            "queue.db-wal",
            "queue.db.corrupt-1790000000-wal",
            "queue.db.corrupt-1790000000.2-shm",
            "queue.db.corrupt-",
            "queue.db.corrupt-17x",
            "queue.db.corrupt-1790000000.",
            "other.db.corrupt-1790000000",
            "queue.db.check-failed",
        ] {
            assert_eq!(at(other), None, "{other}");
        }
    }

    #[test]
    fn a_set_aside_database_is_listed_with_its_companions_and_purged_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.db");
        std::fs::write(&db, b"live").unwrap();
        let aside = dir.path().join("queue.db.corrupt-1790000000");
        std::fs::write(&aside, vec![7u8; 3000]).unwrap();
        std::fs::write(super::super::sibling(&aside, "-wal"), vec![7u8; 1000]).unwrap();
        let newer = dir.path().join("queue.db.corrupt-1790000500.1");
        std::fs::write(&newer, vec![7u8; 10]).unwrap();
        let found = list(&db).unwrap();
        let summary: Vec<(PathBuf, u64)> =
            found.iter().map(|s| (s.path.clone(), s.bytes)).collect();
        assert_eq!(summary, [(aside.clone(), 4000), (newer.clone(), 10)]);
        assert_eq!(total_bytes(&found), 4010);
        purge(&found[0]).unwrap();
        assert!(!aside.exists() && !super::super::sibling(&aside, "-wal").exists());
        assert!(db.exists() && newer.exists(), "nothing else is touched");
        assert_eq!(list(&db).unwrap().len(), 1);
    }
}
