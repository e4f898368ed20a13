//! `hl7edge audit verify` and `hl7edge audit export --syslog`: the audit trail checked and
//! handed to a site's log collector.
//!
//! - `verify` recomputes the hash chain (see `store/audit.rs`) and prints the head hash, which
//!   can be compared with the `custody.audit_head` the hub received in the last heartbeat (a
//!   trail cut at its end still chains; the head the hub saw tells).
//! - `export --syslog` prints every kept line as an RFC 5424 syslog message, the transport of
//!   IHE ATNA audit records: facility 10 (security/authorization), severity 5 (notice),
//!   `HOSTNAME` = `id.site.org`, `APP-NAME` = `hl7edge`, `MSGID` = the line's kind, and the line
//!   id and hash as structured data (`[hl7edge@32473 id=".." hash=".."]`; 32473 is the private
//!   enterprise number RFC 5612 sets aside for documentation: a site that registers its own
//!   maps it in its collector). Pipe it to `logger --rfc5424` or a collector's TCP input.
//!
//! Read-only; no PHI (audit lines never hold any).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliError, Opened};
use crate::config;
use crate::store::{ChainedEntry, Verdict};

/// Arguments of `hl7edge audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Configuration file (it names the queue database).
    #[arg(long, short, default_value = config::DEFAULT_PATH, global = true)]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: AuditAction,
}

/// `hl7edge audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain; exit code 1 when a line was changed, deleted or reordered.
    Verify,
    /// Print the trail as RFC 5424 syslog lines (IHE ATNA transport).
    Export {
        /// RFC 5424 syslog format (the only format).
        #[arg(long, required = true)]
        syslog: bool,
        /// Only lines after this id (for incremental export).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

/// Runs `hl7edge audit`, printing to stdout.
pub fn command(args: &AuditArgs) -> Result<ExitCode, CliError> {
    let stdout = std::io::stdout();
    run(args, &mut stdout.lock())
}

/// Runs `hl7edge audit`, printing to `out`.
pub fn run(args: &AuditArgs, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let opened = Opened::load(&args.config)?;
    match args.action {
        AuditAction::Verify => match opened.read(|r| r.audit_verify())? {
            Verdict::Intact {
                lines,
                first_id,
                head,
                pruned,
            } => {
                writeln!(
                    out,
                    "audit trail intact: {lines} line(s) from line {first_id}, {pruned} older line(s) pruned behind the anchor\nhead {head}"
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Verdict::Broken { id, why } => {
                writeln!(out, "audit trail BROKEN at line {id}: {why}")?;
                Ok(ExitCode::FAILURE)
            }
        },
        AuditAction::Export { after, .. } => {
            let g = &opened.config.gateway;
            let host = format!("{}.{}.{}", g.id, g.site, g.org);
            let mut cursor = after;
            loop {
                let batch = opened.read(|r| r.audit_lines(cursor, 1_000))?;
                let Some(last) = batch.last() else { break };
                cursor = last.entry.id;
                for line in &batch {
                    writeln!(out, "{}", syslog_line(&host, line))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One RFC 5424 message: `<85>1 TIMESTAMP HOST hl7edge - KIND [SD] BOM DETAIL`.
pub fn syslog_line(host: &str, line: &ChainedEntry) -> String {
    let e = &line.entry;
    let at = jiff::Timestamp::from_millisecond(e.at_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    let msgid: String = e
        .kind
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let hash = crate::store::hex(&line.hash);
    format!(
        "<85>1 {at} {host} hl7edge - {msgid} [hl7edge@32473 id=\"{}\" hash=\"{hash}\"] \u{feff}{}",
        e.id, e.detail
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditEntry;

    #[test]
    fn a_line_exports_as_rfc_5424_with_its_id_and_hash() {
        let line = ChainedEntry {
            entry: AuditEntry {
                id: 7,
                at_ms: 1_795_345_301_234,
                kind: "quarantine.dropped".into(),
                detail: "quarantine entry 3, by an operator".into(),
            },
            hash: vec![0xab; 32],
        };
        let text = syslog_line("gw-0001.clinic-12.acme-health", &line);
        assert!(
            text.starts_with(
                "<85>1 2026-11-22T11:01:41.234Z gw-0001.clinic-12.acme-health hl7edge - quarantine.dropped [hl7edge@32473 id=\"7\" hash=\"abab"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("\u{feff}quarantine entry 3, by an operator"),
            "{text}"
        );
    }
}
