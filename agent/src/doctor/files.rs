//! `doctor` file checks: every file the configuration names exists and can be read, and private
//! keys are readable by their owner only.
//!
//! The verdict for one file ([`judge`]) is pure; [`checks`] only gathers metadata.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, HubTransport};

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

/// Checks every file the configuration names.
pub fn checks(config: &Config) -> Vec<Check> {
    named_files(config)
        .iter()
        .map(|file| {
            let opened = std::fs::File::open(&file.path).and_then(|f| f.metadata());
            judge(
                file,
                opened.as_ref().map(Metadata::permissions).map(|p| p.mode()),
            )
        })
        .collect()
}

/// The verdict for one file given the mode it was opened with, or the error opening it.
pub fn judge(file: &Named, opened: Result<u32, &io::Error>) -> Check {
    let path = file.path.display();
    let name = file.label.as_str();
    match opened {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::fail(
            name,
            format!("{path} does not exist"),
            format!(
                "put the file there, or correct `{}` in the configuration",
                file.key
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!("{path} cannot be read: {e}"),
            format!("run doctor as the service's user (root), or fix the owner of {path}"),
        ),
        Ok(mode) if file.kind == Kind::Secret && mode & 0o077 != 0 => Check::fail(
            name,
            format!(
                "{path} is readable by other users (mode {:04o}); a private key must be private",
                mode & 0o7777
            ),
            format!("chmod 600 {path}"),
        ),
        Ok(mode) => Check::ok(name, format!("{path} (mode {:04o})", mode & 0o7777)),
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

    #[test]
    fn a_key_readable_by_others_fails_with_chmod_600() {
        let check = judge(&key_file(), Ok(0o100644));
        assert_eq!(check.outcome, Outcome::Fail);
        assert!(check.detail.contains("mode 0644"), "{}", check.detail);
        assert_eq!(check.fix, "chmod 600 /etc/hl7edge/device.key");
    }

    #[test]
    fn a_private_key_and_a_readable_certificate_pass() {
        assert_eq!(judge(&key_file(), Ok(0o100600)).outcome, Outcome::Ok);
        let cert = Named {
            kind: Kind::Public,
            ..key_file()
        };
        assert_eq!(judge(&cert, Ok(0o100644)).outcome, Outcome::Ok);
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
