//! The `hl7edge` command: a thin binary over the agent library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use hl7edge::config::{self, Config};

/// Clinic edge gateway: HL7 v2 over MLLP in, durable queue, coded records
/// over MQTT/TLS out.
#[derive(Debug, Parser)]
#[command(name = "hl7edge", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the service).
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Queue, interfaces, quarantine and recent changes, from the local
    /// database (also while the gateway runs).
    Status(hl7edge::cli::status::StatusArgs),
    /// List, show, replay or drop rejected (quarantined) messages.
    Quarantine(hl7edge::cli::quarantine::QuarantineArgs),
    /// List, replay or drop records set aside as too big for the hub
    /// (hub.max_payload).
    Parked(hl7edge::cli::parked::ParkedArgs),
    /// Erase the damaged databases set aside at start (they hold patient data), audited.
    Storage(hl7edge::cli::storage::StorageArgs),
    /// Verify the hash-chained audit trail, or export it as RFC 5424 syslog lines.
    Audit(hl7edge::cli::audit::AuditArgs),
    /// Show what the gateway makes of HL7 messages: validity, the ACK it
    /// would send, and the normalized record.
    Inspect(hl7edge::inspect::InspectArgs),
    /// Send HL7 messages over MLLP as a lab system does and show how each was answered
    /// (checks a listener end to end).
    Send(hl7edge::send::SendArgs),
    /// Check configuration, files, certificates, hub connection, ports, disk and clock; print
    /// each check as OK/WARN/FAIL with the fix.
    Doctor(hl7edge::doctor::DoctorArgs),
    /// Create the device key, CSR and configuration; or install the signed certificate.
    Provision(Box<hl7edge::provision::ProvisionArgs>),
    /// See the whole path on this machine: simulated senders, the gateway,
    /// an in-process MQTT broker and a hub-side subscriber (synthetic data).
    #[cfg(feature = "demo")]
    Demo(hl7edge::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run(config),
        Command::Inspect(args) => hl7edge::inspect::run(&args),
        Command::Status(args) => hl7edge::cli::status::command(&args).map_err(Into::into),
        Command::Quarantine(args) => hl7edge::cli::quarantine::command(&args).map_err(Into::into),
        Command::Parked(args) => hl7edge::cli::parked::command(&args).map_err(Into::into),
        Command::Audit(args) => hl7edge::cli::audit::command(&args).map_err(Into::into),
        Command::Storage(args) => hl7edge::cli::storage::command(&args).map_err(Into::into),
        Command::Send(args) => hl7edge::send::run(&args),
        Command::Doctor(args) => hl7edge::doctor::command(&args).map_err(anyhow::Error::from),
        Command::Provision(args) => hl7edge::provision::command(&args).map_err(anyhow::Error::from),
        #[cfg(feature = "demo")]
        Command::Demo(args) => hl7edge::demo::command(&args).map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`hl7edge inspect --json | head`): nothing is wrong and nobody
        // reads what else could be said, so end quietly as the other tools of a pipe do.
        Err(e) if reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hl7edge: error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: an error whose text already quotes its cause
/// (`cannot listen on 0.0.0.0:2575: Address already in use ...`) does not repeat it.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Whether `e` is a write to a pipe whose reader has closed it.
fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run(path: PathBuf) -> anyhow::Result<ExitCode> {
    // Files the agent creates (database, log, markers) hold or sit beside patient data: private
    // from the first byte, whatever the caller's umask (the unit sets the same, UMask=0077).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    hl7edge::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let agent = hl7edge::daemon::start(config.clone(), env!("CARGO_PKG_VERSION")).await?;
        agent.audit_start(&path, &config).await;
        agent.run_until(hl7edge::signals::terminate()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
