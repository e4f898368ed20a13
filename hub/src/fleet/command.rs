//! `hl7edge-hub fleet`: subscribes to every gateway's status and heartbeat
//! and shows the fleet, redrawn once a second, or once (`--once`, the table;
//! `--json`, a JSON snapshot). Gateways publish their status and last
//! heartbeat retained, so one snapshot shows the whole fleet.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde::Serialize;
use tracing::{debug, warn};

use super::{Applied, ApplyError, Fleet, Row, table, worth_logging};
use crate::cli::{FleetArgs, fresh_client_id};
use crate::error::CommandError;
use crate::mqtt::{SessionEvent, SessionSpec, Subscription};
use crate::topics;

/// ANSI: cursor home, clear screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// The `--json` output.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// When it was taken, Unix ms.
    pub generated_at_ms: i64,
    /// The broker it was read from.
    pub broker: String,
    /// One entry per gateway.
    pub gateways: Vec<Row>,
}

/// Runs the command until `shutdown` (live view) or after one snapshot.
pub async fn run(args: FleetArgs, shutdown: impl Future<Output = ()>) -> Result<(), CommandError> {
    let client_id = args
        .client_id
        .clone()
        .unwrap_or_else(|| fresh_client_id("fleet"));
    let broker = args.broker.broker(client_id)?;
    let prefix = &args.broker.prefix;
    let spec = SessionSpec {
        persistent: false,
        manual_acks: false,
        filters: vec![
            topics::status_filter(prefix),
            topics::telemetry_filter(prefix),
        ],
    };
    let sub = Subscription::start(&broker, spec)?;
    let fleet = Fleet::new(args.thresholds.config(prefix));
    let url = broker.url.to_string();
    if args.json || args.once {
        let fleet = collect(sub, fleet, args.wait).await?;
        if args.json {
            print_json(&fleet, url)
        } else {
            let now = now_ms();
            let text = table::render(&fleet.rows(now), &format!("read from {url}"), now);
            let mut out = std::io::stdout().lock();
            write!(out, "{text}").map_err(CommandError::Stdout)
        }
    } else {
        live(sub, fleet, url, shutdown).await
    }
}

/// Waits for the connection, then `wait` more, and gives the fleet it learnt.
async fn collect(
    mut sub: Subscription,
    mut fleet: Fleet,
    wait: Duration,
) -> Result<Fleet, CommandError> {
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = sub.next() => match ev {
                Some(SessionEvent::Connected { .. }) => {
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + wait);
                }
                Some(SessionEvent::Publish(p)) => {
                    if let Some(e) = apply_logged(&mut fleet, &p.topic, &p.payload, p.retain, now_ms()) {
                        warn!(cause = %e, "message skipped");
                    }
                }
                Some(SessionEvent::Lost(why)) => tracing::warn!("{why}; retrying"),
                Some(SessionEvent::Fatal(why)) => return Err(CommandError::Broker(why)),
                None => return Err(CommandError::ConnectionEnded),
            },
            _ = tokio::time::sleep_until(until), if deadline.is_some() => break,
        }
    }
    sub.close().await;
    Ok(fleet)
}

/// Prints the fleet as one JSON snapshot.
fn print_json(fleet: &Fleet, url: String) -> Result<(), CommandError> {
    let snap = Snapshot {
        generated_at_ms: now_ms(),
        broker: url,
        gateways: fleet.rows(now_ms()),
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &snap).map_err(|e| CommandError::Stdout(e.into()))?;
    writeln!(out).map_err(CommandError::Stdout)
}

/// Redraws the table once a second until `shutdown`.
async fn live(
    mut sub: Subscription,
    mut fleet: Fleet,
    url: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CommandError> {
    let terminal = std::io::stdout().is_terminal();
    let mut link = format!("connecting to {url}");
    let mut problem: Option<String> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            ev = sub.next() => match ev {
                Some(SessionEvent::Connected { .. }) => link = format!("connected to {url}"),
                Some(SessionEvent::Publish(p)) => {
                    if let Some(e) = apply_logged(&mut fleet, &p.topic, &p.payload, p.retain, now_ms()) {
                        debug!(cause = %e, "message skipped");
                        problem = Some(e.to_string());
                    }
                }
                Some(SessionEvent::Lost(why)) => link = format!("DISCONNECTED, retrying: {why}"),
                Some(SessionEvent::Fatal(why)) => return Err(CommandError::Broker(why)),
                None => return Err(CommandError::ConnectionEnded),
            },
            _ = tick.tick() => draw(&fleet, &link, problem.as_deref(), terminal)?,
            _ = &mut shutdown => break,
        }
    }
    sub.close().await;
    Ok(())
}

fn draw(
    fleet: &Fleet,
    link: &str,
    problem: Option<&str>,
    terminal: bool,
) -> Result<(), CommandError> {
    let now = now_ms();
    let mut text = table::render(&fleet.rows(now), link, now);
    if let Some(p) = problem {
        text.push_str(&format!("\nlast skipped message: {p}\n"));
    }
    let mut out = std::io::stdout().lock();
    let result = if terminal {
        write!(out, "{CLEAR}{text}")
    } else {
        writeln!(out, "{text}")
    };
    result
        .and_then(|()| out.flush())
        .map_err(CommandError::Stdout)
}

/// Applies one message to `fleet` and logs what the fleet refused or left untracked (the first,
/// second, fourth, ... of each kind, so a flood costs few lines; gateway names and counts, no
/// content). Returns the error of a message that could not be read, for the caller to count
/// and show.
pub fn apply_logged(
    fleet: &mut Fleet,
    topic: &str,
    payload: &[u8],
    retained: bool,
    now_ms: i64,
) -> Option<ApplyError> {
    let result = fleet.apply(topic, payload, retained, now_ms);
    let refused = fleet.refusals();
    match result {
        Ok(Applied::HeartbeatCapped(key, left_out)) => {
            if worth_logging(refused.untracked_sources) {
                warn!(gateway = %key, left_out, untracked_sources = refused.untracked_sources,
                    max_sources = fleet.config().max_sources,
                    "interfaces of a heartbeat beyond --max-sources are not tracked");
            }
            None
        }
        Ok(_) => None,
        Err(e @ ApplyError::GatewayMismatch(_)) => {
            if worth_logging(refused.gateway_mismatch) {
                warn!(cause = %e, gateway_mismatch = refused.gateway_mismatch,
                    "heartbeat dropped: it names another gateway than its topic");
            }
            None
        }
        Err(e @ ApplyError::Untracked { .. }) => {
            if worth_logging(refused.untracked_gateways) {
                warn!(cause = %e, untracked_gateways = refused.untracked_gateways,
                    "message of a gateway beyond --max-gateways not tracked");
            }
            None
        }
        Err(e) => Some(e),
    }
}

/// The wall clock, Unix ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
