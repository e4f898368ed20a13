//! Writing provisioning files safely: atomically (a temporary file in the same directory,
//! fsynced, then renamed over the target, then the directory fsynced), with the final mode set
//! from creation on, so a private key is never readable by others, not even for a moment.
//!
//! A directory created on the way gets mode 0700, or the mode and group of the
//! [`KeyPolicy`] given (see [`crate::service_account`]).

use std::fs::{DirBuilder, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::service_account::KeyPolicy;

/// Mode of private keys.
pub const SECRET: u32 = 0o600;
/// Mode of certificates, CSRs and the configuration.
pub const PUBLIC: u32 = 0o644;

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {}: {source}", .path.display())]
pub struct WriteError {
    /// The target file.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Writes `contents` to `path` atomically with `mode`. With `replace` false an existing file is
/// an error (`AlreadyExists`) and is left alone.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: bool,
) -> Result<(), WriteError> {
    write(path, contents, mode, None, replace).map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the device key atomically with the mode and group of `policy` (set on the temporary
/// file before it is renamed into place, so the key is never readable by anyone else); a
/// directory created for it gets the policy's directory mode and group.
pub fn write_key(
    path: &Path,
    contents: &[u8],
    policy: KeyPolicy,
    replace: bool,
) -> Result<(), WriteError> {
    let at = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(policy.dir_mode)
            .create(parent)
            .map_err(at)?;
        if let Some(gid) = policy.group {
            chown_group(&File::open(parent).map_err(at)?, gid).map_err(at)?;
        }
    }
    write(path, contents, policy.mode, policy.group, replace).map_err(at)
}

fn chown_group(file: &File, gid: u32) -> io::Result<()> {
    // `None` keeps the owner.
    rustix::fs::fchown(file, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(io::Error::from)
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist yet.
pub fn private_dir(dir: &Path) -> Result<(), WriteError> {
    create_private(dir).map_err(|source| WriteError {
        path: dir.to_path_buf(),
        source,
    })
}

fn create_private(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn write(
    path: &Path,
    contents: &[u8],
    mode: u32,
    group: Option<u32>,
    replace: bool,
) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_private(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".hl7edge-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(parent)?;
    if let Some(gid) = group {
        chown_group(tmp.as_file(), gid)?;
    }
    // The umask may have cleared bits of `mode` (and a chown clears set-id bits); set it exactly.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    if replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_key_in_a_new_directory_gets_0600_and_the_directory_0700() {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("etc/hl7edge/device.key");
        write_atomic(&key, b"secret", SECRET, false).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"secret");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&root.path().join("etc/hl7edge")), 0o700);
    }

    #[test]
    fn the_key_gets_the_policy_mode_and_group_from_its_first_byte_on_disk() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("etc/hl7edge/device.key");
        let gid = rustix::process::getegid().as_raw();
        let policy = KeyPolicy {
            mode: 0o640,
            group: Some(gid),
            dir_mode: 0o750,
        };
        write_key(&key, b"secret", policy, false).unwrap();
        assert_eq!(mode(&key), 0o640);
        assert_eq!(std::fs::metadata(&key).unwrap().gid(), gid);
        assert_eq!(mode(&root.path().join("etc/hl7edge")), 0o750);
    }

    #[test]
    fn an_existing_file_is_kept_unless_replacing() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("hl7edge.toml");
        write_atomic(&path, b"old", PUBLIC, false).unwrap();
        let err = write_atomic(&path, b"new", PUBLIC, false).unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_atomic(&path, b"new", PUBLIC, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o644);
        let leftovers = std::fs::read_dir(root.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }
}
