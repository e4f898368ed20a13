//! `hl7edge storage purge-set-aside [--yes]`: erases the damaged databases
//! the agent set aside at start (`queue.db.corrupt-<time>`), which hold the
//! patient data of the store they were.
//!
//! Invariants:
//! - Only files the store recognises as set aside beside its database are
//!   touched (`store::set_aside`); each is overwritten, synced and unlinked
//!   with its `-wal` and `-shm`.
//! - Nothing is erased without a yes: typed at the terminal, or `--yes`.
//! - What was erased is written to the audit trail (`storage.set_aside_purged`:
//!   file names, sizes, times and the caller's uid, never content); a purge
//!   whose audit line cannot be written says so and fails.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytesize::ByteSize;
use clap::{Args, Subcommand};

use super::confirm::{Confirm, answered_yes};
use super::text::{self, Align};
use super::{CliError, Opened};
use crate::config;
use crate::store::set_aside::{self, SetAside};
use crate::store::{now_ms, offline};

/// Arguments of `hl7edge storage`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Configuration file (it names the queue database).
    #[arg(long, short, global = true, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: StorageAction,
}

/// The storage subcommands.
#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Erase the damaged databases set aside at start (queue.db.corrupt-*): they hold the
    /// patient data of the store they were. Recover what you need from them first.
    PurgeSetAside {
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `hl7edge storage ...` on the process's stdin and stdout.
pub fn command(args: &StorageArgs) -> Result<ExitCode, CliError> {
    let StorageAction::PurgeSetAside { yes } = args.action;
    let stdin = std::io::stdin();
    let on_terminal = std::io::IsTerminal::is_terminal(&stdin);
    let confirm = Confirm::new(yes, on_terminal, stdin.lock());
    purge_set_aside(&args.config, confirm, &mut std::io::stdout().lock())
}

/// `purge-set-aside`, confirmed by `confirm`, printing to `out`.
pub(in crate::cli) fn purge_set_aside<R: BufRead>(
    config: &Path,
    confirm: Confirm<R>,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let opened = Opened::load(config)?;
    let db = opened.db_path().to_owned();
    let found = set_aside::list(&db).map_err(|source| CliError::Storage {
        action: "list the set-aside databases".into(),
        path: db.clone(),
        source,
    })?;
    if found.is_empty() {
        writeln!(
            out,
            "No damaged databases are set aside beside {}.",
            db.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    let confirmed = match confirm {
        Confirm::Given => true,
        Confirm::Impossible => {
            return Err(CliError::NeedsConfirmationToErase { count: found.len() });
        }
        Confirm::Ask(input) => {
            write!(out, "{}", table(&found, now))?;
            write!(
                out,
                "Erase these {} file(s) ({})? They hold the patient data of the damaged store; \
                 recover what you need first. Type yes to erase them: ",
                found.len(),
                ByteSize(set_aside::total_bytes(&found))
            )?;
            out.flush()?;
            answered_yes(input)?
        }
    };
    if !confirmed {
        writeln!(out, "Nothing was erased.")?;
        return Ok(ExitCode::FAILURE);
    }
    erase_all(&db, &found, now, out)
}

/// Erases every file of `found`, then audits what was erased.
fn erase_all(
    db: &Path,
    found: &[SetAside],
    now: i64,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let mut erased = Vec::new();
    let mut failed = None;
    for item in found {
        match set_aside::purge(item) {
            Ok(()) => erased.push(item),
            Err(source) => {
                failed = Some(CliError::Storage {
                    action: "erase a set-aside database".into(),
                    path: item.path.clone(),
                    source,
                });
                break;
            }
        }
    }
    if !erased.is_empty() {
        let detail = audit_detail(&erased);
        offline::audit(db, now, "storage.set_aside_purged", &detail).map_err(|source| {
            CliError::DatabaseWrite {
                action: format!(
                    "record in the audit trail that {} set-aside database(s) were erased \
                     (they were; run as root or as the service user)",
                    erased.len()
                ),
                path: db.to_owned(),
                source,
            }
        })?;
        let bytes: u64 = erased.iter().map(|s| s.bytes).sum();
        writeln!(
            out,
            "Erased {} set-aside database(s), {} (audit trail: storage.set_aside_purged).",
            erased.len(),
            ByteSize(bytes)
        )?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The audit line: file names, sizes, when each was set aside, who erased them.
fn audit_detail(erased: &[&SetAside]) -> String {
    let uid = rustix::process::getuid().as_raw();
    let files: Vec<String> = erased
        .iter()
        .map(|s| {
            let name = s
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            format!(
                "{name} ({} bytes, set aside {})",
                s.bytes,
                text::rfc3339(s.set_aside_at_ms)
            )
        })
        .collect();
    format!(
        "{} set-aside database(s) erased by uid {uid}: {}",
        erased.len(),
        files.join(", ")
    )
}

/// The set-aside databases as a table: file, size, when set aside and how long ago.
pub(in crate::cli) fn table(found: &[SetAside], now: i64) -> String {
    let mut rows = vec![["file", "size", "set aside"].map(str::to_owned).to_vec()];
    for s in found {
        rows.push(vec![
            s.path.display().to_string(),
            ByteSize(s.bytes).to_string(),
            text::when_ago(now, Some(s.set_aside_at_ms)),
        ]);
    }
    text::table("  ", &[Align::Left, Align::Right, Align::Left], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::Fixture;
    use crate::store::StoreReader;

    #[test]
    fn purging_erases_the_set_aside_files_and_audits_their_names_without_content() {
        let f = Fixture::new();
        let db = f.loaded.storage.path.clone();
        let aside = crate::store::sibling(&db, ".corrupt-1790000000");
        std::fs::write(&aside, b"PID|1||SECRET").unwrap();
        std::fs::write(crate::store::sibling(&aside, "-wal"), b"x").unwrap();
        let mut out = Vec::new();
        let code = purge_set_aside(&f.config, Confirm::<&[u8]>::Given, &mut out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(!aside.exists() && !crate::store::sibling(&aside, "-wal").exists());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Erased 1 set-aside database(s)"), "{text}");
        let line = StoreReader::open(&db)
            .unwrap()
            .audit_last_of_kind("storage.set_aside_purged")
            .unwrap()
            .expect("audited");
        assert!(
            line.detail
                .contains("queue.db.corrupt-1790000000 (14 bytes"),
            "{}",
            line.detail
        );
        assert!(!line.detail.contains("SECRET"));
    }

    #[test]
    fn without_a_terminal_and_without_yes_nothing_is_erased() {
        let f = Fixture::new();
        let aside = crate::store::sibling(&f.loaded.storage.path, ".corrupt-1790000000");
        std::fs::write(&aside, b"x").unwrap();
        let err =
            purge_set_aside(&f.config, Confirm::<&[u8]>::Impossible, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        assert!(aside.exists());
        let mut out = Vec::new();
        let code = purge_set_aside(&f.config, Confirm::Ask(&b"no\n"[..]), &mut out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        assert!(aside.exists());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("queue.db.corrupt-1790000000")
        );
    }
}
