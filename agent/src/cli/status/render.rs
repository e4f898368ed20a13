//! The readable form of a [`StatusReport`]: short sections, aligned
//! columns, plain words, and what to do when something needs attention.

use std::io::Write;

use bytesize::ByteSize;

use super::{QUEUE_OLD_SECS, StatusReport};
use crate::cli::parked as plist;
use crate::cli::quarantine::list as qlist;
use crate::cli::text::{self, Align};

/// Writes the report for people; `now` is the time ages are counted to.
pub(super) fn render(r: &StatusReport, now: i64, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "hl7edge status, {} (database {})",
        text::utc(now),
        r.database.path.display()
    )?;
    writeln!(out)?;
    intake(r, out)?;
    queue(r, out)?;
    super::hub::render(&r.hub, now, out)?;
    interfaces(r, now, out)?;
    quarantine(r, out)?;
    parked(r, out)?;
    super::at_rest::render(r, now, out)?;
    audit(r, out)?;
    advice(r, out)
}

fn intake(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    let i = &r.intake;
    match &i.reason {
        Some(reason) => {
            writeln!(
                out,
                "REFUSING NEW MESSAGES: every message is answered AR now (the sender keeps it and retries)"
            )?;
            writeln!(out, "  why  {reason}")?;
        }
        None => writeln!(out, "Accepting new messages")?,
    }
    let available = i
        .available_bytes
        .map_or_else(|| "unknown".to_owned(), |a| ByteSize(a).to_string());
    writeln!(
        out,
        "  queue {} of storage.max_bytes {}; filesystem {} available, {} kept free by the store",
        ByteSize(i.used_bytes),
        ByteSize(i.max_bytes),
        available,
        ByteSize(i.keep_bytes)
    )?;
    if i.refused_for_space > 0 {
        writeln!(
            out,
            "  {} message(s) refused for space since the database was created",
            i.refused_for_space
        )?;
    }
    writeln!(out)
}

fn queue(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    let q = &r.queue;
    let waiting = match q.depth {
        0 => "none, everything was sent to the hub".to_owned(),
        1 => "1 message".to_owned(),
        n => format!("{n} messages"),
    };
    let oldest = match (q.oldest_unsent_ms, q.oldest_unsent_age_seconds) {
        (Some(ms), Some(age)) => format!("{} (received {})", text::age(age), text::utc(ms)),
        _ => "-".to_owned(),
    };
    let size = format!(
        "{} (+ {} write-ahead log)",
        ByteSize(r.database.bytes),
        ByteSize(r.database.wal_bytes)
    );
    let rows = [
        ["waiting to be sent", waiting.as_str()],
        ["oldest waiting for", oldest.as_str()],
        ["database size", size.as_str()],
    ]
    .map(|row| row.map(str::to_owned).to_vec());
    writeln!(out, "Queue")?;
    write!(out, "{}", text::table("  ", &[Align::Left; 2], &rows[..]))?;
    writeln!(out)
}

fn interfaces(r: &StatusReport, now: i64, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Listeners (counted since the database was created)")?;
    if r.interfaces.is_empty() {
        writeln!(out, "  none configured or seen")?;
        return writeln!(out);
    }
    let mut rows = vec![
        [
            "listener",
            "received",
            "forwarded",
            "quarantined",
            "last message",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for i in &r.interfaces {
        let name = if !i.configured {
            format!("{} (not in config)", i.name)
        } else if i.disabled {
            format!("{} (disabled by a push)", i.name)
        } else {
            i.name.clone()
        };
        rows.push(vec![
            name,
            i.received.to_string(),
            i.forwarded.to_string(),
            i.quarantined.to_string(),
            text::when_ago(now, i.last_message_ms),
        ]);
    }
    let aligns = [
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Left,
    ];
    write!(out, "{}", text::table("  ", &aligns, &rows))?;
    for i in r.interfaces.iter().filter(|i| i.no_ack_requested > 0) {
        let answered = match i.ack_mode {
            Some("as_requested") => "not answered (ack_mode = \"as_requested\")",
            Some("original") => "answered AA/AE/AR (ack_mode = \"original\")",
            _ => "answered anyway (ack_mode = \"always\")",
        };
        writeln!(
            out,
            "  {}: {} message(s) asked for no acknowledgement (MSH-15/16 NE); {answered}",
            i.name, i.no_ack_requested
        )?;
    }
    writeln!(out)
}

fn quarantine(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    let q = &r.quarantine;
    match q.open {
        0 => writeln!(out, "Quarantine: empty")?,
        1 => writeln!(
            out,
            "Quarantine: 1 rejected message kept, not sent to the hub"
        )?,
        n => writeln!(
            out,
            "Quarantine: {n} rejected messages kept, not sent to the hub"
        )?,
    }
    if !q.latest.is_empty() {
        if q.open > u64::try_from(q.latest.len()).unwrap_or(u64::MAX) {
            writeln!(out, "  the newest {}:", q.latest.len())?;
        }
        write!(out, "{}", qlist::table(&q.latest))?;
    }
    writeln!(out)
}

fn parked(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    let p = &r.parked;
    let limit = ByteSize(p.max_payload);
    match p.count {
        0 => return Ok(()),
        1 => writeln!(
            out,
            "Parked: 1 record too big for the hub (over hub.max_payload, {limit}), kept, not sent"
        )?,
        n => writeln!(
            out,
            "Parked: {n} records too big for the hub (over hub.max_payload, {limit}), kept, not sent"
        )?,
    }
    if p.count > u64::try_from(p.oldest.len()).unwrap_or(u64::MAX) {
        writeln!(out, "  the oldest {}:", p.oldest.len())?;
    }
    write!(out, "{}", plist::table(&p.oldest))?;
    writeln!(out)
}

fn audit(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Recent changes (audit trail, newest first)")?;
    if r.recent_audit.is_empty() {
        writeln!(out, "  none")?;
        return writeln!(out);
    }
    let rows: Vec<Vec<String>> = r
        .recent_audit
        .iter()
        .map(|a| {
            vec![
                text::utc(a.at_ms),
                a.kind.clone(),
                text::printable(a.detail.as_bytes()),
            ]
        })
        .collect();
    write!(out, "{}", text::table("  ", &[Align::Left; 3], &rows))?;
    writeln!(out)
}

fn refusing_advice(r: &StatusReport) -> String {
    let why = r.intake.reason.as_deref().unwrap_or("no room");
    let fix = match r.intake.cause {
        Some("quota") => {
            "The queue reached storage.max_bytes because the hub has not taken messages.\n    \
             Check the hub connection: hl7edge doctor. Messages are accepted again as soon as \
             the queue drains."
        }
        Some("reserve") => {
            "The data partition is too small for the store (or filled by other files): it keeps \
             a reserve for deletes and room for its write-ahead log beside the queue.\n    \
             hl7edge doctor names the partition size needed; move storage.path to a larger \
             partition or free space on this one."
        }
        _ => "Free space on the data partition (old logs, other files), or move storage.path.",
    };
    format!("The gateway is refusing every message: {why}.\n    {fix}")
}

fn advice(r: &StatusReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "What to do")?;
    if r.attention.is_empty() {
        return writeln!(out, "  Nothing needs attention.");
    }
    for code in &r.attention {
        let text = match *code {
            "refusing" => refusing_advice(r),
            "queue_old" => r.hub.queue_old_advice(&text::age(QUEUE_OLD_SECS)),
            "hub_refused" | "hub_unreachable" | "receipts_overdue" => r
                .hub
                .advice(code, r.queue.depth)
                .unwrap_or_else(|| (*code).to_owned()),
            "quarantine_not_empty" => "Rejected messages are in quarantine.\n    \
                 See why and what to do with each: hl7edge quarantine list, then \
                 hl7edge quarantine show ID\n    \
                 Refused for what they hold (no MSH, no control id): the sender sends them \
                 again, corrected; then hl7edge quarantine drop ID\n    \
                 Refused for their size (hub.max_payload): hl7edge quarantine replay ID once \
                 the limit is raised"
                .to_owned(),
            "records_parked" => "Records too big for the hub are set aside (parked): kept, \
                 not sent; the records behind them are sent.\n    \
                 See them: hl7edge parked list\n    \
                 If the broker accepts larger messages: raise hub.max_payload, restart the \
                 service, then hl7edge parked replay ID\n    \
                 Only if it must never be sent: hl7edge parked drop ID"
                .to_owned(),
            other => super::at_rest::advice(other, r).unwrap_or_else(|| other.to_owned()),
        };
        writeln!(out, "  - {text}")?;
    }
    Ok(())
}
