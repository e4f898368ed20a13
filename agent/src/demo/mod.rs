//! `hl7edge demo`: the whole path on one machine, with synthetic data.
//!
//! Compiled only with the cargo feature `demo`; the appliance build has
//! neither this module nor the MQTT broker it embeds. The demo:
//!
//! 1. starts an MQTT broker in this process (plain MQTT on 127.0.0.1: a
//!    real gateway requires `mqtts://`),
//! 2. subscribes a hub-side client to every gateway's records and status,
//! 3. writes a configuration (two listeners, `lab` with a mapping table,
//!    and `monitors`) into a temporary directory and starts the gateway
//!    in-process, exactly as `hl7edge run` would,
//! 4. runs a simulated lab analyzer and a simulated bedside monitor, each
//!    over its own MLLP connection, each waiting for every ACK; the lab also
//!    sends one malformed message (AE, quarantine) and one byte-identical
//!    resend (the stored ACK is replayed, nothing is stored twice),
//! 5. waits until every acknowledged message has reached the hub, prints a
//!    summary and shuts everything down (or, with `--keep`, keeps running
//!    until Ctrl-C).
//!
//! The result is a [`Summary`]; the command exits 0 only when its checks
//! hold. No real patient data is involved anywhere.

mod broker;
mod console;
mod error;
mod hub;
mod messages;
mod render;
mod sender;
mod setup;
mod summary;

pub use console::Console;
pub use error::{DemoError, SendError};
pub use summary::{SenderTally, Summary};

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::daemon::{self, RunningAgent};
use hub::Hub;
use messages::{Outgoing, lab_result, malformed, vital_signs};
use sender::{Exchange, Script};
use setup::Workspace;
use summary::GatewayCounts;

/// How long the demo waits for acknowledged messages to reach the hub.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long it keeps listening after that, for anything extra.
const SETTLE: Duration = Duration::from_millis(300);

/// Arguments of `hl7edge demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Messages each simulated sender sends (the lab adds one malformed
    /// message and one resend).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub messages: u16,
    /// Print the records the hub receives as JSON lines on stdout (the rest
    /// of the output goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Keep the broker, gateway and hub running after the summary, until
    /// Ctrl-C, to send your own messages.
    #[arg(long)]
    pub keep: bool,
}

/// What a demo run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Messages per simulated sender, at least 1.
    pub messages: usize,
    /// Keep running after the summary until SIGINT/SIGTERM.
    pub keep: bool,
    /// Pause between messages of one sender, so people can follow.
    pub pace: Duration,
}

/// Runs the command: quiet logging (`RUST_LOG` shows the gateway's own
/// logs), the demo, exit code 0 only when every check held.
pub fn command(args: &DemoArgs) -> Result<ExitCode, DemoError> {
    let filter = crate::logging::env_filter().unwrap_or_else(|| {
        Targets::new()
            .with_default(tracing::Level::ERROR)
            .with_target("rumqttd", LevelFilter::OFF)
    });
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DemoError::Runtime)?;
    let options = Options {
        messages: usize::from(args.messages.max(1)),
        keep: args.keep,
        pace: Duration::from_millis(120),
    };
    let summary = runtime.block_on(run(&options, &Console::terminal(args.json)))?;
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the demo, printing to `console`, and returns its summary.
pub async fn run(options: &Options, console: &Console) -> Result<Summary, DemoError> {
    let broker = broker::start()?;
    let mut hub = Hub::connect(broker, console.clone()).await?;
    let workspace = Workspace::create(broker)?;
    let mut agent = daemon::start(workspace.config.clone(), env!("CARGO_PKG_VERSION"))
        .await
        .map_err(DemoError::Agent)?;
    console.block(&header(broker, &workspace, &agent.listener_addrs()));
    let outcome = exercise(&agent, &mut hub, options, console).await;
    let stopped = match &outcome {
        Ok(_) if options.keep => {
            hub.stop_collecting();
            console.block(&keep_lines(&agent.listener_addrs(), &workspace));
            agent.run_until(crate::signals::terminate()).await
        }
        _ => agent.shutdown().await,
    };
    hub.stop(Duration::from_millis(300)).await;
    drop(workspace);
    let summary = outcome?;
    stopped.map_err(DemoError::Agent)?;
    console.line("  gateway stopped cleanly; the temporary files are removed");
    Ok(summary)
}

/// Sends everything, waits for the hub, prints and returns the summary.
async fn exercise(
    agent: &RunningAgent,
    hub: &mut Hub,
    options: &Options,
    console: &Console,
) -> Result<Summary, DemoError> {
    let addr = |name: &str| {
        agent
            .listener_addrs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    };
    let (Some(lab), Some(monitors)) = (addr("lab"), addr("monitors")) else {
        return Err(DemoError::Agent(anyhow::anyhow!(
            "the gateway did not bind the demo listeners"
        )));
    };
    let now = jiff::Zoned::now();
    let lab = Script {
        name: "lab",
        addr: lab,
        messages: lab_messages(options.messages, &now),
        pace: options.pace,
    };
    let monitors = Script {
        name: "monitors",
        addr: monitors,
        messages: (1..=options.messages)
            .map(|n| vital_signs(n, &now))
            .collect(),
        pace: options.pace,
    };
    let (lab, monitors) = tokio::join!(
        sender::run(lab, console.clone()),
        sender::run(monitors, console.clone())
    );
    let mut exchanges: Vec<Exchange> = lab.map_err(|cause| DemoError::Sender {
        sender: "lab",
        cause,
    })?;
    exchanges.extend(monitors.map_err(|cause| DemoError::Sender {
        sender: "monitors",
        cause,
    })?);
    let expected = summary::accepted_keys(&exchanges);
    hub.wait_for(&expected, ARRIVAL_TIMEOUT, SETTLE).await;
    let summary = Summary::new(&exchanges, &gateway_counts(agent), hub.arrivals());
    console.line("");
    console.block(&summary.lines());
    Ok(summary)
}

/// The lab's script: `n` results, one malformed message, and a resend of
/// its second message (the first when there is only one).
fn lab_messages(n: usize, now: &jiff::Zoned) -> Vec<Outgoing> {
    let mut messages: Vec<Outgoing> = (1..=n).map(|i| lab_result(i, now)).collect();
    let resend = messages.get(1).or(messages.first()).map(Outgoing::resend);
    messages.push(malformed(n + 1, now));
    messages.extend(resend);
    messages
}

fn gateway_counts(agent: &RunningAgent) -> Vec<GatewayCounts> {
    agent
        .listener_shared()
        .iter()
        .map(|s| GatewayCounts {
            name: s.settings.name.clone(),
            duplicates: s.metrics.duplicates.load(Ordering::Relaxed),
            quarantined: s.metrics.quarantined.load(Ordering::Relaxed),
        })
        .collect()
}

fn header(
    broker: SocketAddr,
    workspace: &Workspace,
    listeners: &[(String, SocketAddr)],
) -> Vec<String> {
    let at = |name: &str| {
        listeners
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(String::new, |(_, a)| a.to_string())
    };
    vec![
        "hl7edge demo: HL7 v2 in, coded records out, all on this machine (synthetic data only)"
            .into(),
        String::new(),
        "  senders    a simulated lab analyzer and bedside monitor send ORU^R01 over MLLP/TCP"
            .into(),
        "  gateway    hl7edge commits each message to its SQLite queue, then ACKs it, normalizes"
            .into(),
        "             it to a coded record (LOINC, UCUM, MDC) and publishes it over MQTT (QoS 1)"
            .into(),
        "  hub        a subscriber decodes each record as the central side would".into(),
        String::new(),
        format!("  broker     in-process MQTT broker at {broker}, plain MQTT for this demo only:"),
        "             a real gateway requires mqtts:// with mutual TLS".into(),
        format!(
            "  files      {} (hl7edge.toml, lab-mapping.csv, queue.db)",
            workspace.dir().display()
        ),
        format!(
            "  listeners  lab       {:<16} mapping: 99LAB GLU, KREA -> LOINC; Tsd/ul -> UCUM 10*3/uL",
            at("lab")
        ),
        format!(
            "             monitors  {:<16} IHE PCD-01: MDC codes and units, device ids; enhanced",
            at("monitors")
        ),
        "                                        mode asks for a commit ACK (CA) only".into(),
        String::new(),
        format!(
            "  {:<8} {:<2} {:<9} {:<8} {:<27} answer",
            "who", "", "control", "type", "content"
        ),
    ]
}

fn keep_lines(listeners: &[(String, SocketAddr)], workspace: &Workspace) -> Vec<String> {
    let mut lines = vec![
        String::new(),
        format!(
            "The gateway's configuration is {}.",
            workspace.config_path().display()
        ),
        "Still running (--keep): send your own HL7 v2 over MLLP to".into(),
    ];
    lines.extend(
        listeners
            .iter()
            .map(|(name, addr)| format!("  {name:<10} {addr}")),
    );
    lines.push("Use test data only: the hub lines below show what each record holds.".into());
    lines.push("Records appear below as the hub receives them. Press Ctrl-C to stop.".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use messages::Kind;

    #[test]
    fn the_lab_script_ends_with_a_malformed_message_and_a_resend_of_the_second() {
        let now = jiff::Zoned::now();
        let script = lab_messages(3, &now);
        let kinds: Vec<Kind> = script.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Valid,
                Kind::Valid,
                Kind::Valid,
                Kind::Malformed,
                Kind::Resend
            ]
        );
        assert_eq!(script[4].bytes, script[1].bytes);
        assert_eq!(script[3].control_id, "LAB00004");
    }

    #[test]
    fn a_single_message_is_resent_itself() {
        let script = lab_messages(1, &jiff::Zoned::now());
        assert_eq!(script.len(), 3);
        assert_eq!(script[2].control_id, script[0].control_id);
    }
}
