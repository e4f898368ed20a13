//! `doctor` checks of MLLP-over-TLS listeners: for each listener with `[listener.tls]`, the
//! server key belongs to the server certificate, and how long until the certificate and the
//! client CA (`client_ca`, when set) expire (WARN under [`certs::WARN_DAYS`] days, FAIL once
//! expired). That the files exist and can be
//! read is the file checks' job ([`super::files`]); a file that cannot be opened is not
//! reported a second time here.
//!
//! The verdict ([`judge`]) is pure; [`checks`] reads the files.

use jiff::Timestamp;

use crate::config::{Listener, ListenerTls};
use crate::device_cert::{self, CertDates, CertProblem};
use crate::tls::TlsError;

use super::certs;
use super::check::Check;

/// What was read from one listener's TLS files.
#[derive(Debug)]
pub struct Found {
    /// Whether the key belongs to the certificate.
    pub key_match: Result<(), CertProblem>,
    /// The certificate's validity window.
    pub dates: Result<CertDates, CertProblem>,
}

/// Checks every listener that has TLS configured.
pub fn checks(listeners: &[Listener], now: Timestamp) -> Vec<Check> {
    let mut out = Vec::new();
    for (index, listener) in listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        match read(tls) {
            Ok(found) => {
                out.extend(judge(index, listener, &found, now));
                out.extend(client_ca(index, listener, now));
            }
            // A missing or unreadable file already failed its file check; say it once.
            Err(_) if !certs::readable(&[&tls.cert, &tls.key]) => {}
            Err(e) => out.push(Check::fail(
                format!("listener {} TLS certificate", listener.name),
                e.to_string(),
                format!(
                    "put the listener's certificate and key there as PEM (listener[{index}].tls.cert and .key)"
                ),
            )),
        }
    }
    out
}

/// The expiry of listener `index`'s client CA, when it has one and the file can be opened (the
/// file checks report one that cannot).
fn client_ca(index: usize, listener: &Listener, now: Timestamp) -> Option<Check> {
    let path = listener.tls.as_ref()?.client_ca.as_deref()?;
    if !certs::readable(&[path]) {
        return None;
    }
    let name = format!("listener {} client CA expiry", listener.name);
    let shown = path.display();
    Some(match certs::earliest_expiry(path) {
        Some(dates) => certs::expiry_check(
            &name,
            &dates,
            now,
            &format!(
                "get the renewed CA that signs the lab systems' client certificates and put it at {shown} (listener[{index}].tls.client_ca; old and new CA in one file during the change-over)"
            ),
        ),
        None => Check::fail(
            name,
            format!("{shown} holds no readable PEM certificate"),
            format!(
                "put the CA that signs the lab systems' client certificates there as PEM (listener[{index}].tls.client_ca)"
            ),
        ),
    })
}

/// Reads the certificate chain and key of `tls` and compares them.
fn read(tls: &ListenerTls) -> Result<Found, TlsError> {
    let chain = crate::tls::load_certs(&tls.cert)?;
    let key = crate::tls::load_key(&tls.key)?;
    Ok(Found {
        dates: device_cert::leaf_dates(&chain),
        key_match: device_cert::verify_key_matches(chain, &key),
    })
}

/// The verdicts for listener `index` given what its files hold, at `now`.
pub fn judge(index: usize, listener: &Listener, found: &Found, now: Timestamp) -> Vec<Check> {
    let name = &listener.name;
    let Some(tls) = &listener.tls else {
        return Vec::new();
    };
    let (cert, key) = (tls.cert.display(), tls.key.display());
    let renew = format!(
        "get a new server certificate for this gateway's MLLP listener from the CA the lab systems trust, and put it at {cert} (listener[{index}].tls.cert) with its key"
    );
    let key_check = match &found.key_match {
        Ok(()) => Check::ok(
            format!("listener {name} TLS key"),
            format!("{key} is the key of {cert}"),
        ),
        Err(CertProblem::KeyMismatch) => Check::fail(
            format!("listener {name} TLS key"),
            format!("{key} is not the key of {cert}"),
            format!(
                "put the key the certificate was issued for at {key} (listener[{index}].tls.key), or a certificate issued for this key at {cert}"
            ),
        ),
        Err(problem) => Check::fail(
            format!("listener {name} TLS key"),
            format!("{cert} with {key}: {problem}"),
            renew.clone(),
        ),
    };
    let expiry_name = format!("listener {name} TLS expiry");
    let expiry = match &found.dates {
        Ok(dates) => certs::expiry_check(&expiry_name, dates, now, &renew),
        Err(problem) => Check::fail(expiry_name, format!("{cert}: {problem}"), renew),
    };
    vec![key_check, expiry]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{CertificateParams, KeyPair};

    use super::*;
    use crate::config::Config;
    use crate::doctor::check::Outcome;

    /// The example's listener, with TLS files in `dir`: a server certificate valid for 2026
    /// and its key, or another key when `matching` is false.
    fn listener_with_files(dir: &Path, matching: bool) -> Listener {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["gateway.local".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        let written = if matching {
            key
        } else {
            KeyPair::generate().unwrap()
        };
        std::fs::write(dir.join("mllp.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("mllp.key"), written.serialize_pem()).unwrap();
        let config =
            Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml")).unwrap();
        let mut listener = config.listeners.into_iter().next().unwrap();
        listener.tls = Some(ListenerTls {
            cert: dir.join("mllp.pem"),
            key: dir.join("mllp.key"),
            client_ca: None,
        });
        listener
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    fn outcomes(checks: &[Check]) -> Vec<(String, Outcome)> {
        checks.iter().map(|c| (c.name.clone(), c.outcome)).collect()
    }

    #[test]
    fn a_matching_key_and_a_valid_certificate_pass() {
        let dir = tempfile::tempdir().unwrap();
        let listener = listener_with_files(dir.path(), true);
        let checks = checks(&[listener], at("2026-06-01T00:00:00Z"));
        assert_eq!(
            outcomes(&checks),
            [
                ("listener lab TLS key".into(), Outcome::Ok),
                ("listener lab TLS expiry".into(), Outcome::Ok)
            ]
        );
        assert!(
            checks[1].detail.starts_with("214 days left"),
            "{}",
            checks[1].detail
        );
    }

    #[test]
    fn another_key_fails_with_the_files_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let listener = listener_with_files(dir.path(), false);
        let checks = checks(&[listener], at("2026-06-01T00:00:00Z"));
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert!(
            checks[0].detail.contains("is not the key of"),
            "{}",
            checks[0].detail
        );
        assert!(
            checks[0].fix.contains("listener[0].tls.key"),
            "{}",
            checks[0].fix
        );
    }

    #[test]
    fn expiry_warns_under_thirty_days_and_fails_once_expired() {
        let dir = tempfile::tempdir().unwrap();
        let listener = listener_with_files(dir.path(), true);
        let soon = checks(std::slice::from_ref(&listener), at("2026-12-20T00:00:00Z"));
        assert_eq!(soon[1].outcome, Outcome::Warn);
        assert!(
            soon[1].detail.starts_with("expires in 12 days"),
            "{}",
            soon[1].detail
        );
        assert!(
            soon[1].fix.contains("listener[0].tls.cert"),
            "{}",
            soon[1].fix
        );
        let late = checks(&[listener], at("2027-02-01T00:00:00Z"));
        assert_eq!(late[1].outcome, Outcome::Fail);
        assert!(
            late[1].detail.starts_with("expired on"),
            "{}",
            late[1].detail
        );
    }

    #[test]
    fn a_client_ca_expiring_in_twenty_days_warns() {
        let dir = tempfile::tempdir().unwrap();
        let mut listener = listener_with_files(dir.path(), true);
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2026, 6, 21);
        std::fs::write(
            dir.path().join("clients-ca.pem"),
            ca.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        if let Some(tls) = listener.tls.as_mut() {
            tls.client_ca = Some(dir.path().join("clients-ca.pem"));
        }
        let found = checks(&[listener], at("2026-06-01T00:00:00Z"));
        let ca_check = found
            .iter()
            .find(|c| c.name == "listener lab client CA expiry")
            .expect("a client CA check");
        assert_eq!(ca_check.outcome, Outcome::Warn);
        assert!(
            ca_check.detail.starts_with("expires in 20 days"),
            "{}",
            ca_check.detail
        );
        assert!(
            ca_check.fix.contains("listener[0].tls.client_ca"),
            "{}",
            ca_check.fix
        );
    }

    #[test]
    fn missing_files_are_left_to_the_file_checks_and_garbage_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut listener = listener_with_files(dir.path(), true);
        std::fs::remove_file(dir.path().join("mllp.key")).unwrap();
        assert!(checks(std::slice::from_ref(&listener), at("2026-06-01T00:00:00Z")).is_empty());
        std::fs::write(dir.path().join("mllp.key"), "not a key").unwrap();
        let garbage = checks(std::slice::from_ref(&listener), at("2026-06-01T00:00:00Z"));
        assert_eq!(
            outcomes(&garbage),
            [("listener lab TLS certificate".into(), Outcome::Fail)]
        );
        listener.tls = None;
        assert!(checks(&[listener], at("2026-06-01T00:00:00Z")).is_empty());
    }
}
