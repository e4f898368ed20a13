//! The service's account, and the one rule for who may read the files the agent needs.
//!
//! The unit (`systemd/hl7edge.service`) runs the agent as the system user `hl7edge` (created by
//! `systemd/hl7edge.sysusers`); `/etc/hl7edge` is `root:hl7edge 0750`. The device key is
//! **`root:hl7edge 0640`**: root owns it, so the service can read its identity but never rewrite,
//! replace or re-permission it (a compromised agent cannot swap the key or open it to other
//! users), and only the `hl7edge` group, whose only member is the service, can read it.
//! `provision` (as root, where the group exists) writes it so; `doctor` accepts that, or `0600`
//! owned by the user that runs the agent (a lab setup without the service account), and fails
//! anything else with the exact command that fixes it. Configuration, CA and mapping files may be
//! world-readable but never writable by others.
//!
//! The account is read from `/etc/passwd` and `/etc/group` directly (no NSS: the appliance binary
//! is static).

use std::path::Path;

/// The service's user and group name.
pub const SERVICE_USER: &str = "hl7edge";

/// Mode of the device key when the service account exists (owner root, group hl7edge).
pub const KEY_MODE_SERVICE: u32 = 0o640;
/// Mode of the device key without the service account (owner: whoever runs the agent).
pub const KEY_MODE_OWNER: u32 = 0o600;

/// A user's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// User id.
    pub uid: u32,
    /// Group id of the user's `hl7edge` group (its primary group).
    pub gid: u32,
}

/// The `hl7edge` account of this system, if it exists.
pub fn lookup() -> Option<Account> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    from_files(&passwd, &group, SERVICE_USER)
}

/// `name`'s account from the texts of `/etc/passwd` and `/etc/group`: its uid, and the gid of
/// the group of the same name (else its primary group).
pub fn from_files(passwd: &str, group: &str, name: &str) -> Option<Account> {
    let field = |line: &str, n: usize| line.split(':').nth(n).map(str::to_owned);
    let user = passwd.lines().find(|l| l.split(':').next() == Some(name))?;
    let uid = field(user, 2)?.parse().ok()?;
    let primary: u32 = field(user, 3)?.parse().ok()?;
    let gid = group
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .and_then(|l| field(l, 2))
        .and_then(|g| g.parse().ok())
        .unwrap_or(primary);
    Some(Account { uid, gid })
}

/// How `provision` writes the device key (and the directories it creates for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The key's mode.
    pub mode: u32,
    /// The group to give the key and new directories (the service's), if any.
    pub group: Option<u32>,
    /// Mode of a directory `provision` creates for the key.
    pub dir_mode: u32,
}

/// The rule: run as root where the service account exists, `root:hl7edge 0640` (directories
/// `root:hl7edge 0750`); otherwise `0600` owned by the caller (directories `0700`), who is then
/// the one to run the agent.
pub fn key_policy(euid: u32, service: Option<Account>) -> KeyPolicy {
    match service {
        Some(account) if euid == 0 => KeyPolicy {
            mode: KEY_MODE_SERVICE,
            group: Some(account.gid),
            dir_mode: 0o750,
        },
        _ => KeyPolicy {
            mode: KEY_MODE_OWNER,
            group: None,
            dir_mode: 0o700,
        },
    }
}

/// Owner, group and mode of a file, as `stat` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    /// Owner's uid.
    pub uid: u32,
    /// Group's gid.
    pub gid: u32,
    /// Permission bits (`st_mode`; only the low 12 bits are looked at).
    pub mode: u32,
}

impl FileMode {
    /// The metadata's owner, group and mode.
    pub fn of(meta: &std::fs::Metadata) -> FileMode {
        use std::os::unix::fs::MetadataExt;
        FileMode {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        }
    }

    /// True when `account` is granted `bit` (4 read, 2 write, 1 execute) by these bits, as the
    /// kernel decides (owner class first, then group, then others).
    pub fn grants(self, account: Account, bit: u32) -> bool {
        if account.uid == 0 {
            return bit != 1 || self.mode & 0o111 != 0;
        }
        let class = if self.uid == account.uid {
            self.mode >> 6
        } else if self.gid == account.gid {
            self.mode >> 3
        } else {
            self.mode
        };
        class & bit != 0
    }
}

/// The first directory above `path` that `account` cannot enter (no search permission), if any.
pub fn blocking_directory(path: &Path, account: Account) -> Option<std::path::PathBuf> {
    path.ancestors().skip(1).find_map(|dir| {
        let meta = std::fs::metadata(dir).ok()?;
        (!FileMode::of(&meta).grants(account, 1)).then(|| dir.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        hl7edge:x:998:997:hl7edge clinic HL7 gateway:/:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nhl7edge:x:997:\n";

    #[test]
    fn the_service_account_is_read_from_passwd_and_group() {
        assert_eq!(
            from_files(PASSWD, GROUP, SERVICE_USER),
            Some(Account { uid: 998, gid: 997 })
        );
        assert_eq!(from_files(PASSWD, GROUP, "nobody"), None);
        assert_eq!(
            from_files("hl7edge:x:bad:1::/:\n", GROUP, SERVICE_USER),
            None
        );
    }

    #[test]
    fn provision_as_root_with_the_service_account_writes_root_hl7edge_0640() {
        let service = Some(Account { uid: 998, gid: 997 });
        assert_eq!(
            key_policy(0, service),
            KeyPolicy {
                mode: 0o640,
                group: Some(997),
                dir_mode: 0o750
            }
        );
        assert_eq!(key_policy(1000, service).mode, 0o600);
        assert_eq!(key_policy(0, None).group, None);
    }

    #[test]
    fn a_root_owned_0640_key_in_the_service_group_is_readable_by_the_service_only() {
        let service = Account { uid: 998, gid: 997 };
        let stranger = Account {
            uid: 1000,
            gid: 1000,
        };
        let key = FileMode {
            uid: 0,
            gid: 997,
            mode: KEY_MODE_SERVICE,
        };
        assert!(key.grants(service, 4));
        assert!(!key.grants(service, 2), "the service cannot rewrite it");
        assert!(!key.grants(stranger, 4));
        let root_only = FileMode { mode: 0o600, ..key };
        assert!(!root_only.grants(service, 4), "the old provision's key");
    }
}
