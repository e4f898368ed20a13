//! `hl7edge quarantine replay ID`: runs the agent's ingest step again on a
//! quarantined message, with its interface's current configuration (time
//! zone, ACK mode, mapping table: the last pushed one when the agent runs
//! on a pushed table); when the message now passes it is queued for the hub
//! like any received message.
//!
//! Invariants:
//! - The message goes through [`replay::prepare`], the step a replay push
//!   takes in the running agent too: there is no second normalization path.
//! - It keeps its original receive time; the record gets a new id.
//! - Storing it and marking the entry replayed happen in one transaction
//!   ([`offline::replay`]); a failing check changes nothing.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::quarantine::open_entry;
use crate::cli::{CliError, Opened};
use crate::daemon;
use crate::ingest::Prepared;
use crate::store::{Inserted, NewMessage, QuarantineEntry, now_ms, offline};
use crate::{push, replay};

/// Runs `hl7edge quarantine replay ID`; exit code 1 when the message is
/// still rejected.
pub(super) fn run(config: &Path, id: i64, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let opened = Opened::load(config)?;
    let entry = open_entry(&opened, id)?;
    match prepare(&opened, &entry)? {
        Prepared::Quarantine(rejected) => {
            writeln!(
                out,
                "Quarantine entry {id} is still rejected with the current configuration:\n  {}\n\
                 Nothing was changed. Every problem and its location: hl7edge quarantine show {id}",
                rejected.error
            )?;
            Ok(ExitCode::FAILURE)
        }
        Prepared::Store { message, warnings } => {
            let inserted = store(&opened, id, &message)?;
            report(id, &inserted, warnings, out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The ingest step on the stored bytes, as the entry's interface would
/// run it now.
fn prepare(opened: &Opened, entry: &QuarantineEntry) -> Result<Prepared, CliError> {
    let s = &entry.summary;
    let listener = opened
        .config
        .listeners
        .iter()
        .find(|l| l.name == s.source)
        .ok_or_else(|| CliError::UnknownInterface {
            id: s.id,
            interface: s.source.clone(),
            config: opened.config_path.clone(),
        })?;
    let iface = daemon::interface(&opened.config, listener).map_err(|e| CliError::Interface {
        interface: s.source.clone(),
        detail: format!("{e:#}"),
    })?;
    // The table the agent runs: its last pushed mapping when it has one that verifies.
    if let Some(Ok(key)) = opened.config.hub.push_key.as_deref().map(push::load_key)
        && let Ok(Some((_, table))) = push::pushed_mapping(&opened.config, &key, &s.source)
    {
        iface.mapping.replace(table);
    }
    Ok(replay::prepare(&iface, entry))
}

fn store(opened: &Opened, id: i64, message: &NewMessage) -> Result<Inserted, CliError> {
    let cfg = daemon::store_config(&opened.config);
    offline::replay(&cfg, id, message, now_ms()).map_err(|source| CliError::DatabaseWrite {
        action: format!("replay quarantine entry {id}"),
        path: cfg.path.clone(),
        source,
    })
}

fn report(
    id: i64,
    inserted: &Inserted,
    warnings: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    match inserted {
        Inserted::Stored { id: record, .. } => writeln!(
            out,
            "Quarantine entry {id} now passes and was queued for the hub as record {record}.\n\
             The running agent sends it within a few seconds (hl7edge status shows the queue)."
        )?,
        Inserted::Duplicate { id: record, .. } => writeln!(
            out,
            "Quarantine entry {id} now passes; the same message was already stored as record \
             {record} (its sender resent it), so nothing new was queued."
        )?,
    }
    if warnings > 0 {
        writeln!(
            out,
            "It carries {warnings} warning(s) (accepted, flagged on the record)."
        )?;
    }
    writeln!(
        out,
        "The entry is marked replayed (audit trail: quarantine.replayed)."
    )
}
