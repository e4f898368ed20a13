//! `hl7edge quarantine show ID`: one entry in full, for a technician at the
//! box: where it came from, every problem with its HL7 location (checked
//! again now), the NAK its sender got, and the raw message, one segment per
//! line with control characters made visible.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hl7edge_protocol::hl7::validate::{self, Validation};
use hl7edge_protocol::hl7::{Issue, Message, Severity};

use crate::cli::text::{self, Align};
use crate::cli::{CliError, Opened};
use crate::store::{QuarantineEntry, now_ms};

/// Runs `hl7edge quarantine show ID`.
pub(super) fn run(config: &Path, id: i64, out: &mut impl Write) -> Result<ExitCode, CliError> {
    let opened = Opened::load(config)?;
    let entry = opened
        .read(|r| r.quarantine_get(id))?
        .ok_or(CliError::NoSuchEntry { id })?;
    // Printing a raw message is a read of patient data: it is recorded first, and nothing is
    // printed when it cannot be recorded.
    let uid = rustix::process::getuid().as_raw();
    let detail = format!(
        "entry {id} printed with its raw message ({} bytes) by uid {uid}",
        entry.raw.len()
    );
    crate::store::offline::audit(opened.db_path(), now_ms(), "quarantine.shown", &detail)
        .map_err(|source| CliError::DatabaseWrite {
            action: format!(
                "record the read of quarantine entry {id} in the audit trail (nothing was shown; run as root or as the service user)"
            ),
            path: opened.db_path().to_owned(),
            source,
        })?;
    render(&entry, now_ms(), out)?;
    Ok(ExitCode::SUCCESS)
}

fn render(entry: &QuarantineEntry, now: i64, out: &mut impl Write) -> std::io::Result<()> {
    let s = &entry.summary;
    let state = match (s.replayed_at_ms, s.dropped_at_ms) {
        (Some(at), _) => format!("replayed {}", text::utc(at)),
        (None, Some(at)) => format!("dropped {}, message erased", text::utc(at)),
        (None, None) => "open (not sent to the hub)".to_owned(),
    };
    let header = hl7edge_protocol::hl7::ack::AckHeader::scrape(&entry.raw);
    let message_type = match (
        header.message_code.is_empty(),
        header.trigger_event.is_empty(),
    ) {
        (true, _) => "-".to_owned(),
        (false, true) => text::printable(&header.message_code),
        (false, false) => format!(
            "{}^{}",
            text::printable(&header.message_code),
            text::printable(&header.trigger_event)
        ),
    };
    let rows = [
        ("state", state),
        ("received", text::when_ago(now, Some(s.received_at_ms))),
        ("interface", s.source.clone()),
        ("from", text::printable(s.peer.as_bytes())),
        ("control id", or_dash(text::printable(&header.control_id))),
        ("message type", message_type),
        ("size", format!("{} bytes", s.raw_len)),
        ("rejected for", text::printable(s.error.as_bytes())),
    ]
    .map(|(k, v)| vec![k.to_owned(), v])
    .to_vec();
    writeln!(out, "Quarantine entry {}", s.id)?;
    write!(out, "{}", text::table("  ", &[Align::Left; 2], &rows))?;
    if entry.raw.is_empty() {
        return writeln!(out, "\nThe message was erased when the entry was dropped.");
    }
    problems(&entry.raw, out)?;
    segments(
        "The answer its sender got (NAK)",
        &unframed(&entry.ack),
        out,
    )?;
    segments(
        "The message as received (one segment per line; control characters as <0xNN>)",
        &entry.raw,
        out,
    )?;
    if s.replayed_at_ms.is_none() {
        writeln!(out)?;
        writeln!(
            out,
            "After fixing the cause: hl7edge quarantine replay {}",
            s.id
        )?;
        writeln!(
            out,
            "To discard it:          hl7edge quarantine drop {}",
            s.id
        )?;
    }
    Ok(())
}

/// Every problem the current validation finds, with its location.
fn problems(raw: &[u8], out: &mut impl Write) -> std::io::Result<()> {
    let issues: Vec<Issue> = match Message::parse(raw) {
        Ok(msg) => Validation::of(&msg).issues,
        Err(e) => vec![validate::parse_error_issue(&e)],
    };
    writeln!(out, "\nProblems found (checked again now)")?;
    if issues.is_empty() {
        return writeln!(out, "  none: a replay should now succeed");
    }
    let mut rows = vec![
        ["severity", "code", "location", "problem"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for i in &issues {
        let severity = match i.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "info",
        };
        rows.push(vec![
            severity.to_owned(),
            i.code.code().to_string(),
            i.location.to_string(),
            format!("{} ({})", i.message, i.code.description()),
        ]);
    }
    let aligns = [Align::Left, Align::Right, Align::Left, Align::Left];
    write!(out, "{}", text::table("  ", &aligns, &rows))
}

fn segments(title: &str, bytes: &[u8], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "\n{title}")?;
    for segment in text::segments(bytes) {
        writeln!(out, "  {segment}")?;
    }
    Ok(())
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

/// A stored NAK without its MLLP framing bytes.
fn unframed(ack: &[u8]) -> Vec<u8> {
    ack.iter()
        .copied()
        .filter(|&b| b != 0x0B && b != 0x1C)
        .collect()
}
