//! `doctor` certificate checks, without the network: the device certificate chains to the hub
//! CA, the device key belongs to it, how long until it and the hub CA expire, and whether the
//! local clock is plausible (not before any certificate's start date).
//!
//! Every expiry (device certificate, hub CA, a listener's certificate and client CA) is judged
//! by one rule, [`expiry_check`]: WARN under [`WARN_DAYS`] days, FAIL once expired. A CA file
//! may hold several certificates; the one that expires first counts ([`earliest_expiry`]).
//!
//! The verdicts ([`expiry`], [`clock`], [`chain_problem`]) are pure; [`checks`] reads the files.

use std::path::Path;

use jiff::Timestamp;

use crate::config::HubTls;
use crate::device_cert::{self, CertDates, CertProblem};

use super::check::Check;

/// Certificates expiring within this many days get a warning.
pub const WARN_DAYS: i64 = 30;

/// Runs the certificate checks on the hub TLS files of the configuration at `config`, at `now`.
/// `hub_cert` is the broker's own certificate when the TLS probe saw it, for the clock check.
pub fn checks(
    tls: &HubTls,
    config: &Path,
    now: Timestamp,
    hub_cert: Option<&CertDates>,
) -> Vec<Check> {
    let loaded = crate::tls::load_certs(&tls.cert).and_then(|chain| {
        let key = crate::tls::load_key(&tls.key)?;
        let roots = crate::tls::load_roots(&tls.ca)?;
        Ok((chain, key, roots))
    });
    let (chain, key, roots) = match loaded {
        Ok(files) => files,
        // A missing or unreadable file already failed its file check; say it once.
        Err(_) if !readable(&[&tls.ca, &tls.cert, &tls.key]) => return Vec::new(),
        Err(e) => {
            return vec![Check::fail(
                "device certificate",
                e.to_string(),
                "fix the file named above (it must be PEM); see the file checks",
            )];
        }
    };
    let mut out = Vec::new();
    let leaf = chain.first().map(device_cert::dates).transpose();
    out.push(match device_cert::verify_chain(&chain, roots, now) {
        Ok(()) => Check::ok(
            "certificate chain",
            format!(
                "{} is issued by the hub CA {}",
                tls.cert.display(),
                tls.ca.display()
            ),
        ),
        Err(problem) => chain_problem(&problem, tls, config),
    });
    out.push(match device_cert::verify_key_matches(chain.clone(), &key) {
        Ok(()) => Check::ok(
            "key matches certificate",
            format!("{} is the key of the certificate", tls.key.display()),
        ),
        Err(problem) => chain_problem(&problem, tls, config),
    });
    let ca = earliest_expiry(&tls.ca);
    match leaf {
        Ok(Some(dates)) => {
            out.push(expiry(&dates, now, config));
            out.extend(ca.as_ref().map(|ca| hub_ca_expiry(ca, tls, now)));
            let mut starts = vec![("device certificate", &dates)];
            starts.extend(ca.as_ref().map(|d| ("hub CA", d)));
            starts.extend(hub_cert.map(|d| ("hub's server certificate", d)));
            out.push(clock(now, &starts));
        }
        Ok(None) => {}
        Err(problem) => out.push(chain_problem(&problem, tls, config)),
    }
    out
}

/// Of the certificates in the PEM file at `path`, the one that expires first (a CA file may
/// bundle an old and a new CA); `None` when none can be read (the file checks say why).
pub fn earliest_expiry(path: &Path) -> Option<CertDates> {
    crate::tls::load_certs(path)
        .ok()?
        .iter()
        .filter_map(|c| device_cert::dates(c).ok())
        .min_by_key(|d| d.not_after)
}

/// The hub CA's expiry: once it expires, the broker's certificate and this gateway's no longer
/// verify, and neither side can talk to the other.
pub fn hub_ca_expiry(ca: &CertDates, tls: &HubTls, now: Timestamp) -> Check {
    let renew = format!(
        "central IT must renew the hub CA (and sign the broker's and the gateways' certificates with it) before it expires; put the new CA file (old and new CA in one file during the change-over) at {} (hub.ca)",
        tls.ca.display()
    );
    expiry_check("hub CA expiry", ca, now, &renew)
}

/// The renewal advice for the device certificate of the configuration at `config`: a new
/// request from the same key, then the signed certificate installed.
fn renew_fix(config: &Path) -> String {
    format!(
        "renew it: hl7edge provision --renew --config {0} (a new CSR from the same key; the configuration is kept), have central IT sign it, then hl7edge provision --config {0} --install-cert SIGNED.pem",
        config.display()
    )
}

/// Whether every one of `paths` can be opened (when not, the file checks have said why).
pub(super) fn readable(paths: &[&Path]) -> bool {
    paths.iter().all(|p| std::fs::File::open(p).is_ok())
}

/// The check for a certificate problem, with its fix.
pub fn chain_problem(problem: &CertProblem, tls: &HubTls, config: &Path) -> Check {
    let cert = tls.cert.display();
    let ca = tls.ca.display();
    let resign = || {
        format!(
            "the certificate must be signed again as an X.509 v3 client certificate (extendedKeyUsage = clientAuth, keyUsage = digitalSignature): hl7edge provision --renew --config {0}, send the request to central IT (the README's \"Signing a gateway's certificate\" has their command), then hl7edge provision --config {0} --install-cert SIGNED.pem",
            config.display()
        )
    };
    match problem {
        CertProblem::Expired { .. } => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            renew_fix(config),
        ),
        CertProblem::NotYetValid { .. } => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            "set the clock (timedatectl set-ntp true, or date -s); if the clock is right, the certificate was issued with a future start date: ask central IT",
        ),
        CertProblem::WrongIssuer => Check::fail(
            "certificate chain",
            format!("{cert} was not issued by the hub CA in {ca}"),
            format!(
                "install the certificate central IT signed for this gateway (hl7edge provision --install-cert FILE), or put the right hub CA in {ca}"
            ),
        ),
        CertProblem::KeyMismatch => Check::fail(
            "key matches certificate",
            format!("{} is not the key of {cert}", tls.key.display()),
            "install the certificate signed from this gateway's own CSR (hl7edge provision --install-cert FILE); if the key was replaced, provision again and get a new certificate",
        ),
        CertProblem::Version1
        | CertProblem::NotForClients { .. }
        | CertProblem::NoDigitalSignature { .. } => {
            Check::fail("certificate chain", format!("{cert}: {problem}"), resign())
        }
        CertProblem::CaCertificate => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            "put the certificate signed for this gateway at hub.cert (hl7edge provision --install-cert FILE), not a CA's",
        ),
        CertProblem::Unparsable(_) | CertProblem::Rejected(_) => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            "ask central IT for the certificate again, as PEM",
        ),
    }
}

/// Days to expiry of the device certificate of the configuration at `config`: see
/// [`expiry_check`]; the fix is a renewal that keeps key and configuration.
pub fn expiry(dates: &CertDates, now: Timestamp, config: &Path) -> Check {
    expiry_check("certificate expiry", dates, now, &renew_fix(config))
}

/// Days to expiry of a certificate, as check `name`: OK from [`WARN_DAYS`] on, WARN below,
/// FAIL once expired; `renew` is the fix for the last two.
pub fn expiry_check(name: &str, dates: &CertDates, now: Timestamp, renew: &str) -> Check {
    let days = dates.days_left(now);
    if dates.not_after <= now {
        Check::fail(name, format!("expired on {}", dates.not_after), renew)
    } else if days < WARN_DAYS {
        Check::warn(
            name,
            format!("expires in {days} days ({})", dates.not_after),
            renew,
        )
    } else {
        Check::ok(
            name,
            format!("{days} days left (until {})", dates.not_after),
        )
    }
}

/// The clock is implausible if it is before the start of any certificate in use.
pub fn clock(now: Timestamp, starts: &[(&str, &CertDates)]) -> Check {
    const NAME: &str = "clock";
    let early = starts.iter().find(|(_, d)| now < d.not_before);
    match early {
        Some((what, dates)) => Check::fail(
            NAME,
            format!(
                "local time {now} is before the {what}'s start date {}; the clock is behind",
                dates.not_before
            ),
            "set the clock: timedatectl set-ntp true (or date -s 'YYYY-MM-DD HH:MM:SS' UTC)",
        ),
        None => {
            let names: Vec<&str> = starts.iter().map(|(what, _)| *what).collect();
            Check::ok(
                NAME,
                format!(
                    "local time {now} is within the validity of the {}",
                    names.join(", ")
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    fn dates(from: &str, to: &str) -> CertDates {
        CertDates {
            subject: "CN=gw".into(),
            not_before: from.parse().unwrap(),
            not_after: to.parse().unwrap(),
        }
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn expiry_is_ok_then_warns_under_thirty_days_then_fails() {
        let d = dates("2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z");
        let config = Path::new("/etc/hl7edge/hl7edge.toml");
        assert_eq!(
            expiry(&d, at("2026-05-01T00:00:00Z"), config).outcome,
            Outcome::Ok
        );
        let soon = expiry(&d, at("2026-06-20T00:00:00Z"), config);
        assert_eq!(soon.outcome, Outcome::Warn);
        assert!(
            soon.detail.starts_with("expires in 11 days"),
            "{}",
            soon.detail
        );
        assert_eq!(
            expiry(&d, at("2026-07-02T00:00:00Z"), config).outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn the_expiry_fix_is_a_renewal_that_keeps_key_and_configuration() {
        let d = dates("2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z");
        let soon = expiry(
            &d,
            at("2026-06-20T00:00:00Z"),
            Path::new("/etc/hl7edge/hl7edge.toml"),
        );
        assert!(
            soon.fix
                .contains("hl7edge provision --renew --config /etc/hl7edge/hl7edge.toml"),
            "{}",
            soon.fix
        );
        assert!(!soon.fix.contains("--force"), "{}", soon.fix);
    }

    #[test]
    fn a_hub_ca_expiring_in_twenty_days_warns_and_an_expired_one_fails() {
        let tls = HubTls {
            ca: "/etc/hl7edge/hub-ca.pem".into(),
            cert: "/etc/hl7edge/device.pem".into(),
            key: "/etc/hl7edge/device.key".into(),
        };
        let ca = dates("2016-01-01T00:00:00Z", "2026-06-21T00:00:00Z");
        let soon = hub_ca_expiry(&ca, &tls, at("2026-06-01T00:00:00Z"));
        assert_eq!(soon.outcome, Outcome::Warn);
        assert!(
            soon.detail.starts_with("expires in 20 days"),
            "{}",
            soon.detail
        );
        assert!(soon.fix.contains("hub.ca"), "{}", soon.fix);
        let late = hub_ca_expiry(&ca, &tls, at("2026-07-01T00:00:00Z"));
        assert_eq!(late.outcome, Outcome::Fail);
    }

    #[test]
    fn a_clock_before_a_certificate_start_fails() {
        let device = dates("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let check = clock(
            at("2025-12-31T00:00:00Z"),
            &[("device certificate", &device)],
        );
        assert_eq!(check.outcome, Outcome::Fail);
        assert!(check.detail.contains("clock is behind"), "{}", check.detail);
        let fine = clock(
            at("2026-02-01T00:00:00Z"),
            &[("device certificate", &device)],
        );
        assert_eq!(fine.outcome, Outcome::Ok);
    }
}
