//! `hl7edge parked list | replay ID | drop ID`: records the gateway
//! acknowledged but can never send as they are, because one of them alone
//! is larger than the hub accepts in one message (`hub.max_payload`), and
//! the technician's two ways out.
//!
//! Such a record was queued before the limit was lowered (new messages
//! that big are refused at ingest with AE and kept in quarantine). The
//! forwarder sets it aside ("parks" it) so the records behind it flow.
//!
//! Invariants:
//! - `list` shows no PHI: ids, times, the interface, the control id, the
//!   message type and sizes.
//! - `replay` queues the record again only when it now fits the
//!   configuration's `hub.max_payload`; otherwise nothing changes, the
//!   size needed is printed and the exit code is 1. The record keeps its id
//!   (the hub drops a duplicate by it) and goes to the end of the queue.
//! - `drop` asks first on a terminal and refuses without `--yes` when there
//!   is none; the record is erased and never sent. Both are audited
//!   (`parked.replayed`, `parked.dropped`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bytesize::ByteSize;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::confirm::{Confirm, answered_yes};
use super::text::{self, Align};
use super::{CliError, Opened};
use crate::config::{self, Config};
use crate::daemon;
use crate::ingest::PayloadLimit;
use crate::store::{ParkedRecord, now_ms, offline};

/// Arguments of `hl7edge parked`.
#[derive(Debug, Args)]
pub struct ParkedArgs {
    /// Configuration file (it names the queue database and hub.max_payload).
    #[arg(long, short, global = true, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The parked subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the records set aside as too big for the hub: id, time,
    /// interface, control id, the size one message would need.
    List {
        /// Show at most this many (oldest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Queue the record again, after hub.max_payload was raised (and the
    /// service restarted) so that it fits.
    Replay {
        /// The record's id (from `list`).
        id: i64,
    },
    /// Erase the record: it is never sent.
    Drop {
        /// The record's id (from `list`).
        id: i64,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// One parked record, without its content.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedLine {
    /// Its id for `replay` and `drop` (the queue sequence number).
    pub id: i64,
    /// The record id the hub knows it by (UUIDv7).
    pub record_id: String,
    /// When the message arrived (RFC 3339, UTC).
    pub received_at: String,
    /// When the forwarder set it aside (RFC 3339, UTC).
    pub parked_at: String,
    /// The interface (listener) it arrived on.
    pub interface: String,
    /// MSH-10 of the message.
    pub control_id: String,
    /// MSH-9, e.g. `ORU^R01`.
    pub message_type: String,
    /// Bytes one message to the hub would need for it.
    pub needs_bytes: u64,
    /// `hub.max_payload` of the configuration.
    pub max_payload: u64,
    #[serde(skip)]
    pub(in crate::cli) received_at_ms: i64,
}

/// Runs `hl7edge parked ...` on the process's stdin and stdout.
pub fn command(args: &ParkedArgs) -> Result<ExitCode, CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Action::Drop { id, yes } = args.action {
        let stdin = std::io::stdin();
        let on_terminal = std::io::IsTerminal::is_terminal(&stdin);
        let confirm = Confirm::new(yes, on_terminal, stdin.lock());
        return drop_record(args, id, confirm, &mut out);
    }
    run(args, &mut out)
}

/// Runs every subcommand, printing to `out`; `drop` only with `--yes`
/// (see [`command`] for the terminal prompt).
pub fn run(args: &ParkedArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    match &args.action {
        Action::List { limit, json } => list(args, *limit, *json, out),
        Action::Replay { id } => replay(args, *id, out),
        Action::Drop { id, yes } => {
            let confirm = Confirm::new(*yes, false, std::io::empty());
            drop_record(args, *id, confirm, out)
        }
    }
}

fn list(
    args: &ParkedArgs,
    limit: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let opened = Opened::load(&args.config)?;
    let total = opened.read(|r| r.stats())?.parked;
    let records = opened.read(|r| r.parked(limit))?;
    let lines: Vec<ParkedLine> = records.iter().map(|p| line(&opened.config, p)).collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &lines)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if lines.is_empty() {
        writeln!(
            out,
            "No records are parked: everything fits hub.max_payload."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let noun = if total == 1 { "record" } else { "records" };
    writeln!(
        out,
        "Parked: {total} {noun} too big for the hub, kept on this gateway, not sent \
         (hub.max_payload is {})",
        ByteSize(opened.config.hub.max_payload as u64)
    )?;
    write!(out, "{}", table(&lines))?;
    writeln!(out)?;
    write!(out, "{}", ways_out(&args.config))?;
    Ok(ExitCode::SUCCESS)
}

/// The advice for parked records (also shown by `status`).
pub(in crate::cli) fn ways_out(config: &std::path::Path) -> String {
    format!(
        "Each needs more than hub.max_payload in one message to the hub. The two ways out:\n  \
         - If the broker accepts messages that large: raise hub.max_payload in\n    \
         {}, restart the service, then: hl7edge parked replay ID\n  \
         - If it must never be sent: hl7edge parked drop ID\n",
        config.display()
    )
}

fn replay(args: &ParkedArgs, id: i64, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let opened = Opened::load(&args.config)?;
    let (parked, _) = opened
        .read(|r| r.parked_record(id))?
        .ok_or(CliError::NoSuchParked { seq: id })?;
    let l = line(&opened.config, &parked);
    if l.needs_bytes > l.max_payload {
        writeln!(
            out,
            "Parked record {id} still does not fit: one message would need {} bytes, and \
             hub.max_payload in {} is {} bytes.\nNothing was changed. If the broker accepts \
             messages that large, raise hub.max_payload to at least {} and restart the \
             service first.",
            l.needs_bytes,
            args.config.display(),
            l.max_payload,
            l.needs_bytes
        )?;
        return Ok(ExitCode::FAILURE);
    }
    let new_seq = offline::replay_parked(opened.db_path(), id, now_ms()).map_err(|source| {
        CliError::DatabaseWrite {
            action: format!("replay parked record {id}"),
            path: opened.db_path().to_owned(),
            source,
        }
    })?;
    writeln!(
        out,
        "Parked record {id} (record id {}) was queued again as {new_seq}; the running service \
         sends it within a few seconds (hl7edge status shows the queue).\nThe service must run \
         with the raised hub.max_payload (restart it after changing the configuration), or it \
         sets the record aside again.",
        l.record_id
    )?;
    Ok(ExitCode::SUCCESS)
}

fn drop_record<R: std::io::BufRead>(
    args: &ParkedArgs,
    id: i64,
    confirm: Confirm<R>,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let opened = Opened::load(&args.config)?;
    let (parked, _) = opened
        .read(|r| r.parked_record(id))?
        .ok_or(CliError::NoSuchParked { seq: id })?;
    let confirmed = match confirm {
        Confirm::Given => true,
        Confirm::Impossible => {
            return Err(CliError::NeedsConfirmation {
                what: "parked record",
                id,
            });
        }
        Confirm::Ask(input) => {
            write!(out, "{}", table(&[line(&opened.config, &parked)]))?;
            write!(
                out,
                "Drop parked record {id}? It is erased and never sent to the hub. \
                 Type yes to drop it: "
            )?;
            out.flush()?;
            answered_yes(input)?
        }
    };
    if !confirmed {
        writeln!(out, "Not dropped.")?;
        return Ok(ExitCode::FAILURE);
    }
    let at = now_ms();
    offline::drop_parked(opened.db_path(), id, at).map_err(|source| CliError::DatabaseWrite {
        action: format!("drop parked record {id}"),
        path: opened.db_path().to_owned(),
        source,
    })?;
    writeln!(
        out,
        "Parked record {id} dropped at {}; it was erased and will never be sent (audit trail: \
         parked.dropped).",
        text::utc(at)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A parked record as a line, with the size it needs under `config`.
pub(in crate::cli) fn line(config: &Config, p: &ParkedRecord) -> ParkedLine {
    let include_raw = config
        .listeners
        .iter()
        .any(|l| l.name == p.source && l.include_raw);
    let limit = PayloadLimit {
        max_payload: config.hub.max_payload,
        gateway: daemon::gateway_name(config),
        include_raw,
    };
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let needs = limit.needs(
        &p.source,
        p.received_at_ms,
        as_usize(p.record_len),
        as_usize(p.raw_len),
    );
    ParkedLine {
        id: p.seq,
        record_id: p.id.to_string(),
        received_at: text::rfc3339(p.received_at_ms),
        parked_at: text::rfc3339(p.parked_at_ms),
        interface: p.source.clone(),
        control_id: text::printable(p.control_id.as_bytes()),
        message_type: text::printable(p.message_type.as_bytes()),
        needs_bytes: u64::try_from(needs).unwrap_or(u64::MAX),
        max_payload: u64::try_from(config.hub.max_payload).unwrap_or(u64::MAX),
        received_at_ms: p.received_at_ms,
    }
}

/// The lines as an aligned table with a header, indented by two spaces.
pub(in crate::cli) fn table(lines: &[ParkedLine]) -> String {
    let mut rows = vec![
        ["id", "received", "interface", "control id", "type", "needs"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for l in lines {
        rows.push(vec![
            l.id.to_string(),
            text::utc(l.received_at_ms),
            l.interface.clone(),
            l.control_id.clone(),
            l.message_type.clone(),
            ByteSize(l.needs_bytes).to_string(),
        ]);
    }
    let aligns = [
        Align::Right,
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Right,
    ];
    text::table("  ", &aligns, &rows)
}

#[cfg(test)]
mod tests;
