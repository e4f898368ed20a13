//! `doctor` certificate checks, without the network: the device certificate chains to the hub
//! CA, the device key belongs to it, how long until it expires, and whether the local clock is
//! plausible (not before any certificate's start date).
//!
//! The verdicts ([`expiry`], [`clock`], [`chain_problem`]) are pure; [`checks`] reads the files.

use std::path::Path;

use jiff::Timestamp;

use crate::config::HubTls;
use crate::device_cert::{self, CertDates, CertProblem};

use super::check::Check;

/// Certificates expiring within this many days get a warning.
pub const WARN_DAYS: i64 = 30;

/// Runs the certificate checks on the hub TLS files at `now`. `hub_cert` is the broker's own
/// certificate when the TLS probe saw it, for the clock check.
pub fn checks(tls: &HubTls, now: Timestamp, hub_cert: Option<&CertDates>) -> Vec<Check> {
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
        Err(problem) => chain_problem(&problem, tls),
    });
    out.push(match device_cert::verify_key_matches(chain.clone(), &key) {
        Ok(()) => Check::ok(
            "key matches certificate",
            format!("{} is the key of the certificate", tls.key.display()),
        ),
        Err(problem) => chain_problem(&problem, tls),
    });
    match leaf {
        Ok(Some(dates)) => {
            out.push(expiry(&dates, now));
            let ca_start = device_cert::file_dates(&tls.ca).ok();
            let mut starts = vec![("device certificate", &dates)];
            starts.extend(ca_start.as_ref().map(|d| ("hub CA", d)));
            starts.extend(hub_cert.map(|d| ("hub's server certificate", d)));
            out.push(clock(now, &starts));
        }
        Ok(None) => {}
        Err(problem) => out.push(chain_problem(&problem, tls)),
    }
    out
}

/// Whether every one of `paths` can be opened (when not, the file checks have said why).
pub(super) fn readable(paths: &[&Path]) -> bool {
    paths.iter().all(|p| std::fs::File::open(p).is_ok())
}

/// The check for a certificate problem, with its fix.
pub fn chain_problem(problem: &CertProblem, tls: &HubTls) -> Check {
    let cert = tls.cert.display();
    let ca = tls.ca.display();
    match problem {
        CertProblem::Expired { .. } => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            "make a new CSR (hl7edge provision --force ...), have central IT sign it, then hl7edge provision --install-cert FILE",
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
        CertProblem::Unparsable(_) | CertProblem::Rejected(_) => Check::fail(
            "certificate chain",
            format!("{cert}: {problem}"),
            "ask central IT for the certificate again, as PEM",
        ),
    }
}

/// Days to expiry of the device certificate: see [`expiry_check`].
pub fn expiry(dates: &CertDates, now: Timestamp) -> Check {
    expiry_check(
        "certificate expiry",
        dates,
        now,
        "send a new CSR to central IT (hl7edge provision --force ...) and install the signed certificate",
    )
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
        assert_eq!(expiry(&d, at("2026-05-01T00:00:00Z")).outcome, Outcome::Ok);
        let soon = expiry(&d, at("2026-06-20T00:00:00Z"));
        assert_eq!(soon.outcome, Outcome::Warn);
        assert!(
            soon.detail.starts_with("expires in 11 days"),
            "{}",
            soon.detail
        );
        assert_eq!(
            expiry(&d, at("2026-07-02T00:00:00Z")).outcome,
            Outcome::Fail
        );
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
