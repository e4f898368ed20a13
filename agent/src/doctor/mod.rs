//! `hl7edge doctor`: every check a field technician would otherwise do by hand, each printed as
//! OK / WARN / FAIL with the fix in plain words.
//!
//! Order: the configuration (nothing else runs if it does not load), the files it names, the
//! device certificate, the hub (TCP, TLS, MQTT), the clock, the listener ports, the listeners'
//! TLS certificates and keys, the listeners' mapping tables, the storage, and the patient data
//! held beside the queue (quarantine expiry, set-aside databases).
//! The model and rendering live in [`check`]; each group of probes is a small module.
//!
//! Invariant: the exit code is 0 exactly when no check failed (warnings pass).

pub mod at_rest;
pub mod certs;
pub mod check;
pub mod files;
pub mod hub;
pub mod listener_tls;
pub mod mapping;
pub mod ports;
pub mod storage;

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;

use crate::config::{self, Config, HubTransport};

pub use check::{Check, Outcome, Report};

/// Arguments of `hl7edge doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Configuration file.
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `doctor` and prints the report; exit code 0 when nothing failed, 1 otherwise.
pub fn command(args: &DoctorArgs) -> std::io::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Whole seconds: certificate dates have no fractions, and the report reads better.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    let report = runtime.block_on(diagnose(&args.config, now));
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The hub settings the network checks use: a box that has not enrolled yet logs in with its
/// claim credential, as its enrollment will.
fn probe_hub(config: &Config) -> crate::config::Hub {
    let mut hub = config.hub.clone();
    if let (Some(claim), HubTransport::Tls(tls)) = (&config.enroll, &mut hub.transport)
        && crate::enroll::needed(config)
    {
        tls.cert = claim.claim_cert.clone();
        tls.key = claim.claim_key.clone();
    }
    hub
}

/// A box waiting to enroll: which claim it will enroll with, or why its claim certificate is
/// unusable.
fn enrollment(config: &Config) -> Check {
    let Some(claim) = &config.enroll else {
        return Check::ok("enrollment", "not configured");
    };
    match crate::enroll::claim_name(&claim.claim_cert) {
        Ok(name) => Check::ok(
            "enrollment",
            format!(
                "no device certificate yet: the agent enrolls with claim {name} ({}) at its start, then installs the certificate hl7edge-hub enroll signs",
                claim.claim_cert.display()
            ),
        ),
        Err(e) => Check::fail(
            "enrollment",
            e.to_string(),
            "put the claim certificate central IT issued for this batch there, or correct enroll.claim_cert",
        ),
    }
}

/// Runs every check against the configuration at `path`, taking `now` as the local time.
pub async fn diagnose(path: &std::path::Path, now: Timestamp) -> Report {
    let mut report = Report::default();
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report.extend([unloadable(path, &e)]);
            return report;
        }
    };
    report.extend([configuration(path, &config)]);
    report.extend(files::checks(path, &config));
    let enrolling = crate::enroll::needed(&config);
    let probe = hub::probe(&probe_hub(&config)).await;
    if let HubTransport::Tls(tls) = &config.hub.transport
        && !enrolling
    {
        report.extend(certs::checks(tls, path, now, probe.server_cert.as_ref()));
    }
    if enrolling {
        report.extend([enrollment(&config)]);
    }
    report.extend(probe.checks);
    report.extend(ports::checks(&config.listeners));
    report.extend(listener_tls::checks(&config.listeners, now));
    report.extend(mapping::checks(&config.listeners));
    report.extend(storage::checks(&config.storage, &at_rest::budget(&config)));
    report.extend(at_rest::checks(&config, now));
    report
}

fn configuration(path: &std::path::Path, config: &Config) -> Check {
    let g = &config.gateway;
    let detail = format!(
        "{} loads: gateway {}/{}/{}, {} listener(s), hub {}:{}",
        path.display(),
        g.org,
        g.site,
        g.id,
        config.listeners.len(),
        config.hub.host,
        config.hub.port
    );
    match config.hub.transport {
        HubTransport::Tls(_) => Check::ok("configuration", detail),
        HubTransport::Plaintext => Check::warn(
            "configuration",
            format!("{detail}; the hub connection is NOT encrypted"),
            "use an mqtts:// hub URL with hub.ca, hub.cert and hub.key outside of lab tests",
        ),
    }
}

/// The check for a configuration that does not load: what went wrong, and the fix that fits.
fn unloadable(path: &std::path::Path, e: &config::ConfigError) -> Check {
    let shown = path.display();
    match e {
        config::ConfigError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Check::fail(
                "configuration",
                format!("{shown} does not exist"),
                format!(
                    "give the right file with --config FILE, or create one with `hl7edge provision` \
                     (it writes {})",
                    config::DEFAULT_PATH
                ),
            )
        }
        config::ConfigError::Read { source, .. } => Check::fail(
            "configuration",
            format!("{e}: {source}"),
            format!(
                "make {shown} readable for this user (run doctor as root or as the service user)"
            ),
        ),
        _ => Check::fail(
            "configuration",
            e.to_string(),
            "correct the file at the line and key shown (docs/configuration.md lists every key)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_configuration_is_the_only_failure_reported() {
        let report = diagnose(
            std::path::Path::new("/nonexistent/hl7edge.toml"),
            Timestamp::now(),
        )
        .await;
        assert_eq!(report.checks.len(), 1);
        assert_eq!(report.checks[0].outcome, Outcome::Fail);
        assert!(
            report.checks[0]
                .detail
                .contains("/nonexistent/hl7edge.toml does not exist")
        );
        assert!(
            report.checks[0].fix.contains("hl7edge provision"),
            "{}",
            report.checks[0].fix
        );
    }

    #[tokio::test]
    async fn an_invalid_configuration_points_at_the_line_and_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hl7edge.toml");
        std::fs::write(&path, "[gateway\n").expect("write");
        let report = diagnose(&path, Timestamp::now()).await;
        assert_eq!(report.checks.len(), 1);
        assert_eq!(report.checks[0].outcome, Outcome::Fail);
        assert!(
            report.checks[0].detail.contains("invalid TOML"),
            "{}",
            report.checks[0].detail
        );
        assert!(report.checks[0].fix.contains("line and key"));
    }
}
