//! `hl7edge quarantine list`, and the one-line form of an entry that
//! `status` shows too.
//!
//! Invariant: a [`QuarantineLine`] holds no PHI: the id, times, the
//! interface, the control id (MSH-10, read from the stored message's
//! header) and the stored error (code and text, which never quote field
//! values).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hl7edge_protocol::hl7::ack::AckHeader;
use serde::Serialize;

use crate::cli::text::{self, Align};
use crate::cli::{CliError, Opened};
use crate::store::QuarantineSummary;

/// One open quarantine entry, without its message.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineLine {
    /// The entry id (for `show`, `replay`, `drop`).
    pub id: i64,
    /// When the message arrived (RFC 3339, UTC).
    pub received_at: String,
    /// The interface (listener) it arrived on.
    pub interface: String,
    /// MSH-10 of the message, empty when it could not be read.
    pub control_id: String,
    /// HL7 table 0357 code of the first error.
    pub error_code: u16,
    /// The first error, with its location.
    pub error: String,
    #[serde(skip)]
    pub(in crate::cli) received_at_ms: i64,
}

/// Runs `hl7edge quarantine list`.
pub(super) fn run(
    config: &Path,
    limit: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let opened = Opened::load(config)?;
    let open = opened.read(|r| r.stats())?.quarantine_count;
    let entries = opened.read(|r| r.quarantine_list(limit))?;
    let lines = lines(&opened, entries)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &lines)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if lines.is_empty() {
        writeln!(
            out,
            "The quarantine is empty: no rejected messages are waiting."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let shown = u64::try_from(lines.len()).unwrap_or(u64::MAX);
    let more = if open > shown {
        format!(" (the first {shown}; --limit shows more)")
    } else {
        String::new()
    };
    let noun = if open == 1 { "message" } else { "messages" };
    writeln!(
        out,
        "Quarantine: {open} rejected {noun} kept, not sent to the hub; oldest first{more}"
    )?;
    write!(out, "{}", table(&lines))?;
    writeln!(
        out,
        "\nEvery problem and the message itself: hl7edge quarantine show ID"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The entries as lines, their control ids read from the stored messages.
pub(in crate::cli) fn lines(
    opened: &Opened,
    entries: Vec<QuarantineSummary>,
) -> Result<Vec<QuarantineLine>, CliError> {
    entries
        .into_iter()
        .map(|s| {
            let raw = opened
                .read(|r| r.quarantine_get(s.id))?
                .map(|e| e.raw)
                .unwrap_or_default();
            Ok(line(s, &raw))
        })
        .collect()
}

fn line(s: QuarantineSummary, raw: &[u8]) -> QuarantineLine {
    QuarantineLine {
        id: s.id,
        received_at: text::rfc3339(s.received_at_ms),
        interface: s.source,
        control_id: text::printable(&AckHeader::scrape(raw).control_id),
        error_code: s.error_code,
        error: text::printable(s.error.as_bytes()),
        received_at_ms: s.received_at_ms,
    }
}

/// The lines as an aligned table with a header, indented by two spaces.
pub(in crate::cli) fn table(lines: &[QuarantineLine]) -> String {
    let mut rows = vec![
        ["id", "received", "listener", "control id", "error"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for l in lines {
        let control_id = if l.control_id.is_empty() {
            "-".to_owned()
        } else {
            l.control_id.clone()
        };
        rows.push(vec![
            l.id.to_string(),
            text::utc(l.received_at_ms),
            l.interface.clone(),
            control_id,
            l.error.clone(),
        ]);
    }
    let aligns = [
        Align::Right,
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Left,
    ];
    text::table("  ", &aligns, &rows)
}
