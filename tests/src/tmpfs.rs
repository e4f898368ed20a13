//! A small `tmpfs` mounted for one test: a real filesystem that fills up (`ENOSPC`), for the
//! disk-full scenarios. Mounting needs root; tests that need it skip loudly without it.
//!
//! Invariants:
//! - the filesystem is unmounted (lazily, so a still-open file cannot keep it) when the value is
//!   dropped, before its mount point directory is removed;
//! - [`Tmpfs::mount_or_skip`] never passes silently: without root, or when the mount fails, it
//!   prints `SKIPPED: needs root to mount tmpfs` with the reason (past the test harness's output
//!   capture) and the test returns.

use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// What can go wrong mounting a tmpfs.
#[derive(Debug, thiserror::Error)]
pub enum TmpfsError {
    /// The test does not run as root.
    #[error("not running as root (uid {0})")]
    NotRoot(u32),
    /// The mount point could not be created.
    #[error("creating the mount point: {0}")]
    MountPoint(#[from] std::io::Error),
    /// `mount -t tmpfs` failed.
    #[error("mount -t tmpfs -o size={size}: {detail}")]
    Mount {
        /// The requested size.
        size: String,
        /// Exit status or error of `mount`.
        detail: String,
    },
}

/// A mounted tmpfs, unmounted on drop.
pub struct Tmpfs {
    mount: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `"18m"`) in a fresh
    /// temporary directory.
    pub fn mount(size: &str) -> Result<Tmpfs, TmpfsError> {
        let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
        if uid != 0 {
            return Err(TmpfsError::NotRoot(uid));
        }
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-tmpfs-")
            .tempdir()?;
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount)?;
        let failed = |detail: String| TmpfsError::Mount {
            size: size.to_owned(),
            detail,
        };
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .map_err(|err| failed(err.to_string()))?;
        if !status.success() {
            return Err(failed(status.to_string()));
        }
        Ok(Tmpfs { mount, _dir: dir })
    }

    /// Like [`Tmpfs::mount`], but prints a loud `SKIPPED` line naming `test` and returns `None`
    /// when the filesystem cannot be mounted.
    pub fn mount_or_skip(size: &str, test: &str) -> Option<Tmpfs> {
        match Tmpfs::mount(size) {
            Ok(fs) => Some(fs),
            Err(why) => {
                crate::process::print_skipped(test, &format!("needs root to mount tmpfs ({why})"));
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Writes `name` until the filesystem is full (another program filling the disk); returns
    /// the bytes written. Remove the file to give the space back.
    pub fn fill(&self, name: &str) -> std::io::Result<u64> {
        let mut file = std::fs::File::create(self.mount.join(name))?;
        let chunk = [b'.'; 4096];
        let mut written = 0;
        loop {
            match file.write(&chunk) {
                Ok(0) => return Ok(written),
                Ok(n) => written += n as u64,
                Err(err) if err.kind() == ErrorKind::StorageFull => return Ok(written),
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg("-l").arg(&self.mount).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            eprintln!(
                "could not unmount the test tmpfs at {}",
                self.mount.display()
            );
        }
    }
}
