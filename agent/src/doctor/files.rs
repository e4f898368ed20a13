//! `doctor` file checks: the configuration and every file it names exist and can be read, by
//! the service's account too (`hl7edge`, where it exists); private keys are readable by their
//! owner or the service's group only (see [`crate::service_account`] for the one rule shared
//! with `provision`, `systemd/install.sh` and the unit); nothing is writable by other users.
//!
//! The verdict for one file ([`judge`]) is pure; [`checks`] only gathers metadata.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::{Config, HubTransport};
use crate::service_account::{self, Account, FileMode, SERVICE_USER};

use super::check::Check;

/// Whether a file is secret (a private key) or may be read by anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Certificates, CA files, mapping tables.
    Public,
    /// Private keys: must not be readable by group or others.
    Secret,
}

/// One file named by the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// What it is, e.g. `device key`.
    pub label: String,
    /// The config key that names it, e.g. `hub.key`.
    pub key: String,
    /// The file.
    pub path: PathBuf,
    /// Secret or not.
    pub kind: Kind,
}

/// Every file the configuration names, hub files first.
pub fn named_files(config: &Config) -> Vec<Named> {
    let named = |label: &str, key: String, path: &Path, kind| Named {
        label: label.to_owned(),
        key,
        path: path.to_path_buf(),
        kind,
    };
    let mut files = Vec::new();
    if let HubTransport::Tls(tls) = &config.hub.transport {
        files.push(named("hub CA", "hub.ca".into(), &tls.ca, Kind::Public));
        match &config.enroll {
            // Not enrolled yet: the claim is what the box needs; the device files come later.
            Some(claim) if crate::enroll::needed(config) => {
                files.push(named(
                    "claim certificate",
                    "enroll.claim_cert".into(),
                    &claim.claim_cert,
                    Kind::Public,
                ));
                files.push(named(
                    "claim key",
                    "enroll.claim_key".into(),
                    &claim.claim_key,
                    Kind::Secret,
                ));
            }
            _ => {
                files.push(named(
                    "device certificate",
                    "hub.cert".into(),
                    &tls.cert,
                    Kind::Public,
                ));
                files.push(named(
                    "device key",
                    "hub.key".into(),
                    &tls.key,
                    Kind::Secret,
                ));
            }
        }
    }
    for (i, listener) in config.listeners.iter().enumerate() {
        let label = |what: &str| format!("listener {} {what}", listener.name);
        if let Some(map) = &listener.mapping {
            files.push(named(
                &label("mapping"),
                format!("listener[{i}].mapping"),
                map,
                Kind::Public,
            ));
        }
        if let Some(tls) = &listener.tls {
            let key = |k: &str| format!("listener[{i}].tls.{k}");
            files.push(named(
                &label("TLS certificate"),
                key("cert"),
                &tls.cert,
                Kind::Public,
            ));
            files.push(named(&label("TLS key"), key("key"), &tls.key, Kind::Secret));
            if let Some(ca) = &tls.client_ca {
                files.push(named(
                    &label("client CA"),
                    key("client_ca"),
                    ca,
                    Kind::Public,
                ));
            }
        }
    }
    files
}

/// The configuration file itself, as a [`Named`] public file.
pub fn configuration_file(path: &Path) -> Named {
    Named {
        label: "configuration file".into(),
        key: "--config".into(),
        path: path.to_path_buf(),
        kind: Kind::Public,
    }
}

/// Checks the configuration file and every file it names.
pub fn checks(config_path: &Path, config: &Config) -> Vec<Check> {
    let service = service_account::lookup();
    std::iter::once(configuration_file(config_path))
        .chain(named_files(config))
        .map(|file| {
            let opened = std::fs::File::open(&file.path).and_then(|f| f.metadata());
            let found = opened.map(|meta| Found {
                mode: FileMode::of(&meta),
                service,
                blocked_at: service
                    .and_then(|a| service_account::blocking_directory(&file.path, a)),
            });
            judge(&file, found.as_ref())
        })
        .collect()
}

/// What `doctor` found about a file it could open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its owner, group and mode.
    pub mode: FileMode,
    /// The service's account, where it exists.
    pub service: Option<Account>,
    /// A directory above the file the service's account cannot enter.
    pub blocked_at: Option<PathBuf>,
}

/// The verdict for one file given what was found, or the error opening it.
pub fn judge(file: &Named, opened: Result<&Found, &io::Error>) -> Check {
    let path = file.path.display();
    let name = file.label.as_str();
    let found = match opened {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Check::fail(
                name,
                format!("{path} does not exist"),
                format!(
                    "put the file there, or correct `{}` in the configuration",
                    file.key
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                name,
                format!("{path} cannot be read: {e}"),
                format!(
                    "run doctor as root (sudo hl7edge doctor), or fix the owner of {path}: {}",
                    owner_fix(file)
                ),
            );
        }
    };
    let mode = found.mode.mode;
    let shown = format!(
        "mode {mode:04o}, owner {}:{}",
        found.mode.uid, found.mode.gid
    );
    if let Some(problem) = permission_problem(file.kind, found) {
        return Check::fail(
            name,
            format!("{path} {problem} ({shown})"),
            fix_for(file, found),
        );
    }
    if let Some(dir) = &found.blocked_at {
        return Check::fail(
            name,
            format!(
                "the service user {SERVICE_USER} cannot reach {path}: it may not enter {}",
                dir.display()
            ),
            format!(
                "chgrp {SERVICE_USER} {d} && chmod g+x {d}",
                d = dir.display()
            ),
        );
    }
    Check::ok(name, format!("{path} ({shown})"))
}

/// What is wrong with a readable file's ownership and mode, in words, if anything.
fn permission_problem(kind: Kind, found: &Found) -> Option<&'static str> {
    let m = found.mode;
    let service_group = found.service.is_some_and(|a| a.gid == m.gid);
    let unreadable_by_service = found.service.is_some_and(|a| !m.grants(a, 4));
    match kind {
        Kind::Secret if m.mode & 0o007 != 0 => {
            Some("is readable by other users; a private key must be private")
        }
        Kind::Secret if m.mode & 0o020 != 0 => Some("is writable by its group"),
        Kind::Secret if m.mode & 0o040 != 0 && !service_group => {
            Some("is readable by a group other than the service's; a private key must be private")
        }
        Kind::Public if m.mode & 0o002 != 0 => {
            Some("is writable by other users: anyone on the box could change it")
        }
        _ if unreadable_by_service => Some("cannot be read by the service user hl7edge"),
        _ => None,
    }
}

/// The exact command that gives a file the ownership and mode the rule wants.
fn fix_for(file: &Named, found: &Found) -> String {
    let path = file.path.display();
    match (file.kind, found.service) {
        (Kind::Public, _) if found.mode.mode & 0o002 != 0 => format!("chmod o-w {path}"),
        _ => owner_fix(file),
    }
}

/// `chown`/`chmod` to the rule's ownership: keys `root:hl7edge 0640` where the service account
/// exists (`0600` without it), other files readable by the service group.
fn owner_fix(file: &Named) -> String {
    let path = file.path.display();
    let service = service_account::lookup().is_some();
    match (file.kind, service) {
        (Kind::Secret, true) => format!("chown root:{SERVICE_USER} {path} && chmod 0640 {path}"),
        (Kind::Secret, false) => format!("chmod 600 {path}"),
        (Kind::Public, true) => format!("chown root:{SERVICE_USER} {path} && chmod 0640 {path}"),
        (Kind::Public, false) => format!("chmod 0644 {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    fn key_file() -> Named {
        Named {
            label: "device key".into(),
            key: "hub.key".into(),
            path: PathBuf::from("/etc/hl7edge/device.key"),
            kind: Kind::Secret,
        }
    }

    const SERVICE: Account = Account { uid: 998, gid: 997 };

    fn found(uid: u32, gid: u32, mode: u32, service: Option<Account>) -> Found {
        Found {
            mode: FileMode { uid, gid, mode },
            service,
            blocked_at: None,
        }
    }

    #[test]
    fn a_key_readable_by_others_fails_with_the_fix() {
        let check = judge(&key_file(), Ok(&found(0, 0, 0o644, None)));
        assert_eq!(check.outcome, Outcome::Fail);
        assert!(check.detail.contains("mode 0644"), "{}", check.detail);
        assert!(
            check.fix.contains("/etc/hl7edge/device.key"),
            "{}",
            check.fix
        );
        assert!(check.fix.starts_with("ch"), "{}", check.fix);
    }

    #[test]
    fn the_provisioned_key_root_hl7edge_0640_passes_and_root_only_0600_fails_for_the_service() {
        let ok = judge(&key_file(), Ok(&found(0, 997, 0o640, Some(SERVICE))));
        assert_eq!(ok.outcome, Outcome::Ok, "{ok:?}");
        let unreadable = judge(&key_file(), Ok(&found(0, 0, 0o600, Some(SERVICE))));
        assert_eq!(unreadable.outcome, Outcome::Fail);
        assert!(
            unreadable
                .detail
                .contains("cannot be read by the service user hl7edge"),
            "{}",
            unreadable.detail
        );
        let other_group = judge(&key_file(), Ok(&found(0, 4, 0o640, Some(SERVICE))));
        assert_eq!(other_group.outcome, Outcome::Fail, "{other_group:?}");
        let owned = judge(&key_file(), Ok(&found(998, 997, 0o600, Some(SERVICE))));
        assert_eq!(owned.outcome, Outcome::Ok, "hl7edge 0600 is readable too");
    }

    #[test]
    fn a_private_key_and_a_readable_certificate_pass_without_a_service_account() {
        assert_eq!(
            judge(&key_file(), Ok(&found(1000, 1000, 0o600, None))).outcome,
            Outcome::Ok
        );
        let cert = Named {
            kind: Kind::Public,
            ..key_file()
        };
        assert_eq!(
            judge(&cert, Ok(&found(0, 0, 0o644, None))).outcome,
            Outcome::Ok
        );
    }

    #[test]
    fn config_ca_and_mapping_files_writable_by_others_fail_with_chmod_o_w() {
        for file in [
            configuration_file(Path::new("/etc/hl7edge/hl7edge.toml")),
            Named {
                kind: Kind::Public,
                path: PathBuf::from("/etc/hl7edge/maps/lab.csv"),
                ..key_file()
            },
        ] {
            let check = judge(&file, Ok(&found(0, 0, 0o666, None)));
            assert_eq!(check.outcome, Outcome::Fail, "{check:?}");
            assert_eq!(check.fix, format!("chmod o-w {}", file.path.display()));
        }
    }

    #[test]
    fn a_directory_the_service_cannot_enter_fails_naming_it() {
        let mut f = found(0, 997, 0o640, Some(SERVICE));
        f.blocked_at = Some(PathBuf::from("/etc/hl7edge"));
        let check = judge(&key_file(), Ok(&f));
        assert_eq!(check.outcome, Outcome::Fail);
        assert_eq!(
            check.fix,
            "chgrp hl7edge /etc/hl7edge && chmod g+x /etc/hl7edge"
        );
    }

    #[test]
    fn a_missing_file_names_the_config_key_to_correct() {
        let err = io::Error::from(io::ErrorKind::NotFound);
        let check = judge(&key_file(), Err(&err));
        assert_eq!(check.outcome, Outcome::Fail);
        assert!(check.fix.contains("`hub.key`"), "{}", check.fix);
    }

    #[test]
    fn the_example_names_hub_and_listener_files() {
        let config =
            Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml")).unwrap();
        let keys: Vec<String> = named_files(&config).into_iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            [
                "hub.ca",
                "hub.cert",
                "hub.key",
                "listener[0].mapping",
                "listener[0].tls.cert",
                "listener[0].tls.key",
                "listener[0].tls.client_ca"
            ]
        );
    }
}
