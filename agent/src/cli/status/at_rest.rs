//! The part of `status` about patient data held beside the queue: what the
//! quarantine holds against its own cap and retention (and which entries
//! expire soon), and the damaged databases set aside at start.
//!
//! Invariant: no PHI: sizes, counts, times, file names.

use std::io::Write;

use bytesize::ByteSize;
use serde::Serialize;

use super::StatusReport;
use crate::cli::text;
use crate::cli::{CliError, Opened};
use crate::store::QuarantineOutlook;
use crate::store::set_aside::{self, SetAside};

/// Patient data held beside the queue.
#[derive(Debug, Clone, Serialize)]
pub struct AtRestStatus {
    /// The quarantine against its cap and retention.
    pub quarantine: QuarantineHold,
    /// Damaged databases set aside at start, oldest first.
    pub set_aside: Vec<SetAsideLine>,
    /// Their bytes in all (counted against the disk the store needs).
    pub set_aside_bytes: u64,
}

/// What the quarantine holds.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineHold {
    /// Bytes counted against `quarantine.max_bytes`.
    pub bytes: u64,
    /// `quarantine.max_bytes`.
    pub max_bytes: u64,
    /// Entries still holding their raw message (open, or replayed and not yet forwarded).
    pub held_entries: u64,
    /// `quarantine.retention`, seconds.
    pub retention_seconds: u64,
    /// Open entries whose message is erased within `quarantine.warn_before`.
    pub expiring: u64,
    /// When the next open entry's message is erased (RFC 3339, UTC).
    pub next_expiry_at: Option<String>,
    /// True when the quarantine holds 90 % of its cap or more (larger rejected messages are
    /// refused already, and soon any will be).
    pub full: bool,
    #[serde(skip)]
    next_expiry_ms: Option<i64>,
    #[serde(skip)]
    warn_ms: i64,
}

/// One set-aside database.
#[derive(Debug, Clone, Serialize)]
pub struct SetAsideLine {
    /// The file (its `-wal` and `-shm` beside it).
    pub path: std::path::PathBuf,
    /// Bytes with its `-wal` and `-shm`.
    pub bytes: u64,
    /// When it was set aside (RFC 3339, UTC).
    pub set_aside_at: String,
    /// How long ago, seconds.
    pub age_seconds: u64,
    #[serde(skip)]
    set_aside_at_ms: i64,
}

/// Reads the quarantine's outlook and lists the set-aside databases.
pub(super) fn collect(opened: &Opened, now: i64) -> Result<AtRestStatus, CliError> {
    let limits = crate::daemon::quarantine_limits(&opened.config);
    let outlook = opened.read(|r| r.quarantine_outlook(now, limits))?;
    let db = opened.db_path();
    let found = set_aside::list(db).map_err(|source| CliError::Storage {
        action: "list the set-aside databases beside the queue database".into(),
        path: db.to_owned(),
        source,
    })?;
    Ok(AtRestStatus {
        quarantine: hold(&outlook),
        set_aside_bytes: set_aside::total_bytes(&found),
        set_aside: found.iter().map(|s| set_aside_line(s, now)).collect(),
    })
}

fn hold(o: &QuarantineOutlook) -> QuarantineHold {
    QuarantineHold {
        bytes: o.bytes,
        max_bytes: o.max_bytes,
        held_entries: o.held,
        retention_seconds: u64::try_from(o.retention_ms / 1000).unwrap_or(0),
        expiring: o.expiring,
        next_expiry_at: o.next_expiry_ms.map(text::rfc3339),
        full: o.nearly_full(),
        next_expiry_ms: o.next_expiry_ms,
        warn_ms: o.warn_ms,
    }
}

fn set_aside_line(s: &SetAside, now: i64) -> SetAsideLine {
    SetAsideLine {
        path: s.path.clone(),
        bytes: s.bytes,
        set_aside_at: text::rfc3339(s.set_aside_at_ms),
        age_seconds: text::age_secs(now, s.set_aside_at_ms),
        set_aside_at_ms: s.set_aside_at_ms,
    }
}

/// What needs attention: `quarantine_expiring`, `quarantine_full`, `set_aside_present`.
pub(super) fn attention(a: &AtRestStatus) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.quarantine.expiring > 0 {
        out.push("quarantine_expiring");
    }
    if a.quarantine.full {
        out.push("quarantine_full");
    }
    if !a.set_aside.is_empty() {
        out.push("set_aside_present");
    }
    out
}

/// The section: the quarantine's bytes against its cap, the next expiry, the set-aside files.
pub(super) fn render(r: &StatusReport, now: i64, out: &mut impl Write) -> std::io::Result<()> {
    let q = &r.at_rest.quarantine;
    writeln!(out, "Patient data kept on this gateway besides the queue")?;
    let next = match q.next_expiry_ms {
        Some(at) if at <= now => format!("; an entry is due for erasure now ({})", text::utc(at)),
        Some(at) => format!(
            "; the next is erased {} (in {})",
            text::utc(at),
            text::age(text::age_secs(at, now))
        ),
        None => String::new(),
    };
    writeln!(
        out,
        "  quarantine  {} of quarantine.max_bytes {}, {} message(s); kept {} days{next}",
        ByteSize(q.bytes),
        ByteSize(q.max_bytes),
        q.held_entries,
        q.retention_seconds / 86_400,
    )?;
    if r.at_rest.set_aside.is_empty() {
        writeln!(out, "  set aside   none (no damaged database)")?;
    } else {
        writeln!(
            out,
            "  set aside   {} damaged database(s), {} in all:",
            r.at_rest.set_aside.len(),
            ByteSize(r.at_rest.set_aside_bytes)
        )?;
        for s in &r.at_rest.set_aside {
            writeln!(
                out,
                "    {}  {}  set aside {}",
                s.path.display(),
                ByteSize(s.bytes),
                text::when_ago(now, Some(s.set_aside_at_ms))
            )?;
        }
    }
    writeln!(out)
}

/// The advice for one of this part's attention codes; `None` for the others.
pub(super) fn advice(code: &str, r: &StatusReport) -> Option<String> {
    let q = &r.at_rest.quarantine;
    Some(match code {
        "quarantine_expiring" => format!(
            "{} rejected message(s) in quarantine will be erased within {} (quarantine.retention \
             is {} days), never sent.\n    \
             See them: hl7edge quarantine list. After fixing the cause: hl7edge quarantine \
             replay ID\n    \
             Only if they must never be sent: hl7edge quarantine drop ID",
            q.expiring,
            text::age(u64::try_from(q.warn_ms / 1000).unwrap_or(0)),
            q.retention_seconds / 86_400
        ),
        "quarantine_full" => format!(
            "The quarantine is (nearly) full ({} of quarantine.max_bytes {}): messages that \
             would be rejected are refused (AR) when they do not fit, and their senders retry \
             them; good messages are still stored.\n    \
             Replay or drop entries: hl7edge quarantine list; or raise quarantine.max_bytes",
            ByteSize(q.bytes),
            ByteSize(q.max_bytes)
        ),
        "set_aside_present" => format!(
            "{} damaged database(s) ({}) were set aside at start; they hold the patient data of \
             the store they were.\n    \
             Recover what you need from them (sqlite3 FILE), then erase them: \
             hl7edge storage purge-set-aside",
            r.at_rest.set_aside.len(),
            ByteSize(r.at_rest.set_aside_bytes)
        ),
        _ => return None,
    })
}
