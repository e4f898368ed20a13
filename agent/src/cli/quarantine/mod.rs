//! `hl7edge quarantine list | show ID | replay ID | drop ID`: what was
//! rejected and why, and the technician's two ways out of quarantine.
//!
//! Invariants:
//! - `list` shows no PHI (see [`list`]); `show` prints one raw message on
//!   request, with control characters made visible.
//! - `replay` runs the agent's own ingest step ([`crate::ingest::prepare`])
//!   with the interface's current configuration; only when it now passes is
//!   the message stored, through [`store::offline::replay`], which inserts
//!   and marks the entry in one transaction (audited). Otherwise nothing
//!   changes and the reason is printed.
//! - `drop` asks first on a terminal and refuses without `--yes` when there
//!   is none; dropping erases the raw bytes and is audited.
//!
//! [`store::offline::replay`]: crate::store::offline::replay

pub mod list;

mod drop_entry;
mod replay;
mod show;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::confirm::Confirm;
use super::{CliError, Opened, text};
use crate::config;
use crate::store::QuarantineEntry;

/// Arguments of `hl7edge quarantine`.
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// Configuration file (it names the queue database and the interfaces).
    #[arg(long, short, global = true, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The quarantine subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the open entries: id, time, interface, control id, error.
    List {
        /// Show at most this many (oldest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one entry in full: every problem with its location, and the
    /// raw message (one segment per line).
    Show {
        /// The entry id (from `list`).
        id: i64,
    },
    /// Check the entry again with the interface's current configuration
    /// (e.g. after a mapping fix); if it passes, queue it for the hub.
    Replay {
        /// The entry id (from `list`).
        id: i64,
    },
    /// Discard the entry: its raw message is erased and it is never sent.
    Drop {
        /// The entry id (from `list`).
        id: i64,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `hl7edge quarantine ...` on the process's stdin and stdout.
pub fn command(args: &QuarantineArgs) -> Result<ExitCode, CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Action::Drop { id, yes } = args.action {
        let stdin = std::io::stdin();
        let on_terminal = std::io::IsTerminal::is_terminal(&stdin);
        let confirm = Confirm::new(yes, on_terminal, stdin.lock());
        return drop_entry::run(&args.config, id, confirm, &mut out);
    }
    run(args, &mut out)
}

/// Runs every subcommand but `drop` (which needs its confirmation input;
/// see [`command`]), printing to `out`.
pub fn run(args: &QuarantineArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    match &args.action {
        Action::List { limit, json } => list::run(&args.config, *limit, *json, out),
        Action::Show { id } => show::run(&args.config, *id, out),
        Action::Replay { id } => replay::run(&args.config, *id, out),
        Action::Drop { id, yes } => {
            let confirm = Confirm::new(*yes, false, std::io::empty());
            drop_entry::run(&args.config, *id, confirm, out)
        }
    }
}

/// The entry `id`, which must exist and be open.
fn open_entry(opened: &Opened, id: i64) -> Result<QuarantineEntry, CliError> {
    let entry = opened
        .read(|r| r.quarantine_get(id))?
        .ok_or(CliError::NoSuchEntry { id })?;
    let s = &entry.summary;
    let resolved = match (s.replayed_at_ms, s.dropped_at_ms) {
        (Some(at), _) => Some(("replayed", at)),
        (None, Some(at)) => Some(("dropped", at)),
        (None, None) => None,
    };
    match resolved {
        Some((how, at)) => Err(CliError::AlreadyResolved {
            id,
            how,
            at: text::utc(at),
        }),
        None => Ok(entry),
    }
}

#[cfg(test)]
mod tests;
