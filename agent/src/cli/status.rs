//! `hl7edge status`: the queue, the interfaces, the quarantine and the
//! latest audit lines, read from the local database (also while the agent
//! runs), with plain advice when something needs attention.
//!
//! Invariants:
//! - Read-only: a `query_only` connection; nothing is created or changed.
//! - No PHI: counts, times, interface names, control ids, error codes and
//!   texts, audit lines (which never hold PHI).
//! - The `--json` shape is stable: `"format": 1`; fields are only ever
//!   added. Times are RFC 3339 in UTC, ages in whole seconds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

mod at_rest;
mod hub;
mod render;
use render::render;

pub use at_rest::{AtRestStatus, QuarantineHold, SetAsideLine};

use super::parked::{self as plist, ParkedLine};
use super::quarantine::list::{self as qlist, QuarantineLine};
use super::text;
use super::{CliError, Opened};
use crate::config::{self, AckMode};
use crate::store::{
    AuditEntry, DEFAULT_RESERVE_BYTES, FullCause, PROBE_MESSAGE_BYTES, SourceStats, SpaceOutlook,
    StoreStats, now_ms,
};

/// An unsent message older than this means forwarding is stuck.
const QUEUE_OLD_SECS: u64 = 5 * 60;
/// Quarantine entries and audit lines shown.
const LATEST: usize = 5;

/// Arguments of `hl7edge status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Configuration file (it names the queue database).
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Print one JSON object (stable shape, `"format": 1`) instead of the
    /// readable report.
    #[arg(long)]
    pub json: bool,
}

/// What `status` reports; serialized as the `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Version of this JSON shape.
    pub format: u32,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The database file.
    pub database: DatabaseStatus,
    /// Whether the gateway accepts new messages now, and if not why, with the numbers.
    pub intake: IntakeStatus,
    /// Messages waiting for the hub.
    pub queue: QueueStatus,
    /// Counters per interface (configured or seen in the database).
    pub interfaces: Vec<InterfaceStatus>,
    /// Rejected messages kept for a technician.
    pub quarantine: QuarantineStatus,
    /// Records set aside as too big for the hub (`hub.max_payload`).
    pub parked: ParkedStatus,
    /// The newest audit lines, newest first.
    pub recent_audit: Vec<AuditLine>,
    /// The hub connection as the agent recorded it, and custody receipts.
    pub hub: hub::HubStatus,
    /// What needs attention: `refusing`, `hub_refused`, `hub_unreachable`, `queue_old`,
    /// `receipts_overdue`, `quarantine_not_empty`, `records_parked`, `quarantine_expiring`,
    /// `quarantine_full`, `set_aside_present`.
    pub attention: Vec<&'static str>,
    /// Patient data held beside the queue: the quarantine against its cap and retention, and
    /// damaged databases set aside.
    pub at_rest: AtRestStatus,
}

/// The database file.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    /// Its path.
    pub path: PathBuf,
    /// Size of the database file in bytes.
    pub bytes: u64,
    /// Size of its write-ahead log in bytes.
    pub wal_bytes: u64,
}

/// Whether a new message would be stored now (the writer's own rule, evaluated on the same
/// numbers), and the numbers behind it.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeStatus {
    /// True when a new message would be answered AR now.
    pub refusing: bool,
    /// Why: `quota` (`storage.max_bytes` reached), `reserve` (the filesystem would keep less
    /// than the store needs beside its data) or `filesystem` (no space left); `None` when
    /// accepting.
    pub cause: Option<&'static str>,
    /// The reason in words, with the numbers.
    pub reason: Option<String>,
    /// Bytes counted against `storage.max_bytes`.
    pub used_bytes: u64,
    /// `storage.max_bytes`.
    pub max_bytes: u64,
    /// Bytes the filesystem gives the agent (`None`: unknown).
    pub available_bytes: Option<u64>,
    /// Bytes the store keeps free on the filesystem beside its data: the reserve for deletes
    /// plus the write-ahead log's growth still to come.
    pub keep_bytes: u64,
    /// Messages refused for space over the store's lifetime, all interfaces.
    pub refused_for_space: u64,
}

/// Messages waiting for the hub.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// Records not yet acknowledged by the hub's broker (parked ones not
    /// counted: they are not waiting, see [`ParkedStatus`]).
    pub depth: u64,
    /// When the oldest of them was received (RFC 3339, UTC).
    pub oldest_unsent_at: Option<String>,
    /// How long it has waited, in seconds.
    pub oldest_unsent_age_seconds: Option<u64>,
    #[serde(skip)]
    oldest_unsent_ms: Option<i64>,
}

/// One interface's lifetime counters.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceStatus {
    /// The listener name.
    pub name: String,
    /// Whether the configuration has a listener of this name.
    pub configured: bool,
    /// Messages that arrived (stored, resent, quarantined or refused).
    pub received: u64,
    /// Stored as new records.
    pub stored: u64,
    /// Resends answered with the stored ACK.
    pub duplicates: u64,
    /// Records the hub's broker acknowledged.
    pub forwarded: u64,
    /// Messages put in quarantine.
    pub quarantined: u64,
    /// Messages refused because the store was full.
    pub refused_full: u64,
    /// Messages whose MSH-15/MSH-16 asked for no acknowledgement (`NE`).
    pub no_ack_requested: u64,
    /// The listener's `ack_mode` (`always`, `as_requested`, `original`);
    /// `None` when the configuration has no listener of this name.
    pub ack_mode: Option<&'static str>,
    /// When the last message arrived (RFC 3339, UTC).
    pub last_message_at: Option<String>,
    #[serde(skip)]
    last_message_ms: Option<i64>,
    /// Switched off by a signed push (`hl7edge-hub push listener --disable`): it refuses
    /// connections on purpose.
    pub disabled: bool,
    /// The address it listens on: the pushed settings' when a push changed them, else the
    /// configured one; `None` when the configuration has no listener of this name.
    pub bind: Option<String>,
    /// A short SHA-256 of its settings (as the heartbeat's push report carries it).
    pub config_hash: Option<String>,
}

/// The quarantine at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineStatus {
    /// Entries neither replayed nor dropped.
    pub open: u64,
    /// The newest open entries, newest first.
    pub latest: Vec<QuarantineLine>,
}

/// Records the gateway acknowledged but cannot send as they are: each
/// alone is larger than the hub accepts in one message.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedStatus {
    /// How many.
    pub count: u64,
    /// `hub.max_payload` of the configuration, bytes.
    pub max_payload: u64,
    /// The oldest, oldest first.
    pub oldest: Vec<ParkedLine>,
}

/// One audit line.
#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    /// The line's id.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// A dotted kind, such as `quarantine.dropped`.
    pub kind: String,
    /// What happened (never PHI).
    pub detail: String,
    #[serde(skip)]
    at_ms: i64,
}

/// Runs `hl7edge status`, printing to stdout.
pub fn command(args: &StatusArgs) -> Result<ExitCode, CliError> {
    let stdout = std::io::stdout();
    run(args, &mut stdout.lock())
}

/// Runs `hl7edge status`, printing to `out`.
pub fn run(args: &StatusArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let opened = Opened::load(&args.config)?;
    let report = collect(&opened, now_ms())?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        render(&report, now_ms(), out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn collect(opened: &Opened, now: i64) -> Result<StatusReport, CliError> {
    let stats = opened.read(|r| r.stats())?;
    let latest = opened.read(|r| r.quarantine_latest(LATEST))?;
    let latest = qlist::lines(opened, latest)?;
    let audit = opened.read(|r| r.audit_recent(LATEST))?;
    let max_bytes = opened.config.storage.max_bytes;
    let outlook = opened.read(|r| r.space_outlook(max_bytes, DEFAULT_RESERVE_BYTES))?;
    let intake = intake_status(&outlook, &stats.sources);
    let queue = queue_status(&stats, now);
    let link = opened.read(|r| r.hub_link())?;
    let hub = hub::hub_status(&opened.config, link, stats.awaiting, now);
    let hub_attention = hub.attention(now);
    let mut attention = Vec::new();
    if intake.refusing {
        attention.push("refusing");
    }
    attention.extend(
        hub_attention
            .iter()
            .filter(|c| **c != "receipts_overdue")
            .copied(),
    );
    if queue
        .oldest_unsent_age_seconds
        .is_some_and(|age| age > QUEUE_OLD_SECS)
    {
        attention.push("queue_old");
    }
    if hub_attention.contains(&"receipts_overdue") {
        attention.push("receipts_overdue");
    }
    if stats.quarantine_count > 0 {
        attention.push("quarantine_not_empty");
    }
    if stats.parked > 0 {
        attention.push("records_parked");
    }
    let parked = opened.read(|r| r.parked(LATEST))?;
    let at_rest = at_rest::collect(opened, now)?;
    attention.extend(at_rest::attention(&at_rest));
    Ok(StatusReport {
        format: 1,
        generated_at: text::rfc3339(now),
        database: DatabaseStatus {
            path: opened.db_path().to_owned(),
            bytes: stats.db_bytes,
            wal_bytes: stats.wal_bytes,
        },
        intake,
        queue,
        interfaces: interfaces(opened, &stats.sources),
        quarantine: QuarantineStatus {
            open: stats.quarantine_count,
            latest,
        },
        parked: ParkedStatus {
            count: stats.parked,
            max_payload: u64::try_from(opened.config.hub.max_payload).unwrap_or(u64::MAX),
            oldest: parked
                .iter()
                .map(|p| plist::line(&opened.config, p))
                .collect(),
        },
        recent_audit: audit.into_iter().map(audit_line).collect(),
        hub,
        attention,
        at_rest,
    })
}

/// Would the store take a message now, by the writer's rule?
pub fn intake_status(outlook: &SpaceOutlook, sources: &[SourceStats]) -> IntakeStatus {
    let refusal = outlook.refusal(PROBE_MESSAGE_BYTES);
    IntakeStatus {
        refusing: refusal.is_some(),
        cause: refusal.as_ref().map(FullCause::kind),
        reason: refusal.as_ref().map(ToString::to_string),
        used_bytes: outlook.used,
        max_bytes: outlook.max_bytes,
        available_bytes: outlook.available,
        keep_bytes: outlook.reserve.saturating_add(outlook.pending),
        refused_for_space: sources.iter().map(|s| s.refused_full).sum(),
    }
}

fn queue_status(stats: &StoreStats, now: i64) -> QueueStatus {
    QueueStatus {
        depth: stats.queue_depth,
        oldest_unsent_at: stats.oldest_unsent_ms.map(text::rfc3339),
        oldest_unsent_age_seconds: stats.oldest_unsent_ms.map(|t| text::age_secs(now, t)),
        oldest_unsent_ms: stats.oldest_unsent_ms,
    }
}

/// Configured interfaces in file order (zero counters when the database
/// has none yet), then any others the database knows, by name.
fn interfaces(opened: &Opened, sources: &[SourceStats]) -> Vec<InterfaceStatus> {
    let mut by_name: BTreeMap<&str, &SourceStats> =
        sources.iter().map(|s| (s.source.as_str(), s)).collect();
    let mut out = Vec::new();
    // The last-known-good listener pushes, as the agent starts on them (none when they cannot
    // be read: the configured settings are shown).
    let pushed = crate::push::listener::pushed_targets(&opened.config).unwrap_or_default();
    for (i, l) in opened.config.listeners.iter().enumerate() {
        let empty = SourceStats {
            source: l.name.clone(),
            ..SourceStats::default()
        };
        let s = by_name.remove(l.name.as_str()).unwrap_or(&empty);
        let mut status = interface_status(s, Some(l.ack_mode));
        let (config, enabled) = match pushed.get(i).cloned().flatten() {
            Some(target) => (target.config, target.enabled),
            None => (l.clone(), true),
        };
        status.disabled = !enabled;
        status.bind = Some(config.bind.to_string());
        status.config_hash = Some(config.settings_hash());
        out.push(status);
    }
    out.extend(by_name.values().map(|s| interface_status(s, None)));
    out
}

/// `s`'s counters, with the configured listener's `ack_mode` (`None`: not
/// in the configuration).
fn interface_status(s: &SourceStats, ack_mode: Option<AckMode>) -> InterfaceStatus {
    InterfaceStatus {
        name: s.source.clone(),
        configured: ack_mode.is_some(),
        no_ack_requested: s.no_ack_requested,
        ack_mode: ack_mode.map(AckMode::as_str),
        received: s.received,
        stored: s.stored,
        duplicates: s.duplicates,
        forwarded: s.forwarded,
        quarantined: s.quarantined,
        refused_full: s.refused_full,
        last_message_at: s.last_message_at_ms.map(text::rfc3339),
        last_message_ms: s.last_message_at_ms,
        disabled: false,
        bind: None,
        config_hash: None,
    }
}

fn audit_line(a: AuditEntry) -> AuditLine {
    AuditLine {
        id: a.id,
        at: text::rfc3339(a.at_ms),
        kind: a.kind,
        detail: a.detail,
        at_ms: a.at_ms,
    }
}

#[cfg(test)]
mod tests;
