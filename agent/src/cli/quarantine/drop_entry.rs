//! `hl7edge quarantine drop ID [--yes]`: discards an entry for good.
//!
//! Invariants:
//! - Nothing is dropped without a yes: typed at the terminal, or `--yes`
//!   on the command line; without a terminal and without `--yes` the
//!   command refuses.
//! - Dropping erases the message and writes `quarantine.dropped` to the
//!   audit trail in the same transaction ([`offline::drop_entry`]).

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::cli::confirm::{Confirm, answered_yes};
use crate::cli::quarantine::{list, open_entry};
use crate::cli::{CliError, Opened, text};
use crate::store::{now_ms, offline};

/// Runs `hl7edge quarantine drop ID`; exit code 1 when the technician
/// answered no.
pub(super) fn run<R: BufRead>(
    config: &Path,
    id: i64,
    confirm: Confirm<R>,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let opened = Opened::load(config)?;
    let entry = open_entry(&opened, id)?;
    let confirmed = match confirm {
        Confirm::Given => true,
        Confirm::Impossible => {
            return Err(CliError::NeedsConfirmation {
                what: "quarantine entry",
                id,
            });
        }
        Confirm::Ask(input) => {
            let line = list::lines(&opened, vec![entry.summary.clone()])?;
            write!(out, "{}", list::table(&line))?;
            write!(
                out,
                "Drop quarantine entry {id}? Its message is erased and can never be sent. \
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
    offline::drop_entry(opened.db_path(), id, at).map_err(|source| CliError::DatabaseWrite {
        action: format!("drop quarantine entry {id}"),
        path: opened.db_path().to_owned(),
        source,
    })?;
    writeln!(
        out,
        "Quarantine entry {id} dropped at {}; its message was erased (audit trail: \
         quarantine.dropped).",
        text::utc(at)
    )?;
    Ok(ExitCode::SUCCESS)
}
