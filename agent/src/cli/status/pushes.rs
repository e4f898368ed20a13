//! The pushes part of `hl7edge status`: per listener the mapping it boots with (the pushed
//! copy in `pushed/`, verified as the agent verifies it, or the configured table) and that
//! push's sequence, the last push outcome for it, and the last replay push, from the audit
//! trail. Files and the database only: it reads the same whether the agent runs or not.
//!
//! Invariants:
//! - Any outcome word is shown as the audit trail names it (`push.applied`, `push.rejected`,
//!   `push.failed`, `push.rolled_back`, ...): the word after `push.`.
//! - No PHI: versions, sequences, reasons, counts and audit lines (which hold none).

use std::io::Write;

use serde::Serialize;

use super::super::text;
use super::super::{CliError, Opened};
use crate::store::AuditEntry;

/// Push audit lines read to find the last outcome of each listener.
const AUDIT_LINES: usize = 200;

/// Pushes as the box knows them.
#[derive(Debug, Clone, Serialize)]
pub struct PushesStatus {
    /// The pinned organization key's fingerprint; `None`: `hub.push_key` is not set, the box
    /// takes no pushes.
    pub key: Option<String>,
    /// Why the pinned key cannot be read, when it cannot.
    pub key_error: Option<String>,
    /// One entry per configured listener, in config order.
    pub listeners: Vec<ListenerPushes>,
    /// The last replay push's outcome.
    pub replay: Option<PushOutcome>,
}

/// What one listener runs and the last push for it.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerPushes {
    /// The listener name.
    pub name: String,
    /// The mapping version it boots with (as records carry it); empty when its table cannot
    /// be read.
    pub mapping_version: String,
    /// `pushed` or `configured`.
    pub mapping_from: &'static str,
    /// The sequence of the pushed mapping it runs.
    pub sequence: Option<u64>,
    /// Why the pushed copy is not used, when it does not verify.
    pub pushed_copy_error: Option<String>,
    /// The last push outcome for it.
    pub last: Option<PushOutcome>,
}

/// One push outcome from the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushOutcome {
    /// The word after `push.` in the audit kind (`applied`, `rejected`, `rolled_back`, ...).
    pub outcome: String,
    /// The short reason word, when the line gives one (`bad_signature`, `downgrade`, ...).
    pub reason: Option<String>,
    /// The push's sequence, when known.
    pub sequence: Option<u64>,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The audit line.
    pub detail: String,
    #[serde(skip)]
    pub(super) at_ms: i64,
}

/// What an audit line is about.
#[derive(Debug, PartialEq, Eq)]
enum About<'a> {
    Listener(&'a str),
    Replay,
    Other,
}

/// Reads the pushed copies and the push audit lines.
pub(super) fn collect(opened: &Opened) -> Result<PushesStatus, CliError> {
    let config = &opened.config;
    let lines = opened.read(|r| r.audit_recent_of("push.", AUDIT_LINES))?;
    let key = config
        .hub
        .push_key
        .as_ref()
        .map(|p| crate::push::load_key(p));
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let configured = crate::daemon::interface(config, l)
            .map(|i| i.mapping.current().version().to_string())
            .unwrap_or_default();
        let pushed = match &key {
            Some(Ok(k)) => crate::push::pushed_mapping(config, k, &l.name),
            _ => Ok(None),
        };
        let (mapping_version, mapping_from, sequence, pushed_copy_error) = match pushed {
            Ok(Some((seq, table))) => (table.version().to_string(), "pushed", Some(seq), None),
            Ok(None) => (configured, "configured", None, None),
            Err(e) => (configured, "configured", None, Some(e)),
        };
        listeners.push(ListenerPushes {
            last: last_for(&lines, &About::Listener(&l.name)),
            name: l.name.clone(),
            mapping_version,
            mapping_from,
            sequence,
            pushed_copy_error,
        });
    }
    let (key, key_error) = match key {
        Some(Ok(k)) => (Some(k.fingerprint()), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    Ok(PushesStatus {
        key,
        key_error,
        listeners,
        replay: last_for(&lines, &About::Replay),
    })
}

/// The newest outcome about `about` among `lines` (newest first).
fn last_for(lines: &[AuditEntry], about: &About<'_>) -> Option<PushOutcome> {
    lines
        .iter()
        .find(|a| about_of(&a.detail) == *about)
        .map(outcome)
}

fn outcome(a: &AuditEntry) -> PushOutcome {
    PushOutcome {
        outcome: a.kind.strip_prefix("push.").unwrap_or(&a.kind).to_owned(),
        reason: reason(&a.detail).map(str::to_owned),
        sequence: sequence(&a.detail),
        at: text::rfc3339(a.at_ms),
        detail: a.detail.clone(),
        at_ms: a.at_ms,
    }
}

/// `listener NAME: ...` is about that listener; `replay ...` about a replay push.
fn about_of(detail: &str) -> About<'_> {
    if let Some(rest) = detail.strip_prefix("listener ") {
        return About::Listener(rest.split(':').next().unwrap_or_default());
    }
    if detail.starts_with("replay ") {
        return About::Replay;
    }
    About::Other
}

/// The number after the first `sequence `.
fn sequence(detail: &str) -> Option<u64> {
    let (_, rest) = detail.split_once("sequence ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The first parenthesized word of lowercase letters and `_` (`(bad_signature)`).
fn reason(detail: &str) -> Option<&str> {
    detail.split('(').skip(1).find_map(|part| {
        let word = part.split(')').next()?;
        (part.contains(')')
            && !word.is_empty()
            && word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .then_some(word)
    })
}

/// The readable section.
pub(super) fn render(p: &PushesStatus, out: &mut impl Write) -> std::io::Result<()> {
    match (&p.key, &p.key_error) {
        (Some(key), _) => writeln!(out, "Pushes (organization key {key}):")?,
        (None, Some(e)) => writeln!(out, "Pushes: the pinned key cannot be read: {e}")?,
        (None, None) => {
            writeln!(out, "Pushes: off (hub.push_key is not set)")?;
            writeln!(out)?;
            return Ok(());
        }
    }
    let width = p
        .listeners
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    for l in &p.listeners {
        let running = match l.sequence {
            Some(seq) => format!("pushed, sequence {seq}"),
            None => "configured".to_owned(),
        };
        let version = if l.mapping_version.is_empty() {
            "unreadable"
        } else {
            &l.mapping_version
        };
        writeln!(
            out,
            "  {:width$}  mapping {version} ({running}); last push: {}",
            l.name,
            last(l.last.as_ref())
        )?;
        if let Some(e) = &l.pushed_copy_error {
            writeln!(out, "  {:width$}  the pushed copy is not used: {e}", "")?;
        }
    }
    if let Some(r) = &p.replay {
        writeln!(
            out,
            "  {:width$}  last replay push: {}",
            "replay",
            last(Some(r))
        )?;
    }
    writeln!(out)
}

fn last(o: Option<&PushOutcome>) -> String {
    let Some(o) = o else {
        return "none".to_owned();
    };
    let mut s = o.outcome.replace('_', " ");
    if let Some(reason) = &o.reason {
        s.push_str(&format!(" ({reason})"));
    }
    if let Some(seq) = o.sequence {
        s.push_str(&format!(", sequence {seq}"));
    }
    s.push_str(&format!(", {}", text::utc(o.at_ms)));
    if let Some((_, counts)) = o.detail.split_once("): ")
        && counts.contains(" replayed, ")
    {
        let counts = counts.split(" (push").next().unwrap_or(counts);
        s.push_str(&format!(": {counts}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            id: 1,
            at_ms: 0,
            kind: kind.to_owned(),
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn an_audit_line_names_its_listener_or_replay_sequence_and_reason() {
        let applied = line(
            "push.applied",
            "listener lab: mapping a -> b (sequence 10, scope acme/c-1, push sha256:ab)",
        );
        let o = outcome(&applied);
        assert_eq!(about_of(&applied.detail), About::Listener("lab"));
        assert_eq!(
            (o.outcome.as_str(), o.reason, o.sequence),
            ("applied", None, Some(10))
        );
        let refused = line(
            "push.rejected",
            "listener lab: sequence 5 rejected (downgrade): sequence 5 is not newer (push sha256:ab)",
        );
        let o = outcome(&refused);
        assert_eq!(o.reason.as_deref(), Some("downgrade"));
        assert_eq!(o.sequence, Some(5));
        let rolled = line("push.rolled_back", "listener adt: sequence 7 (bind_failed)");
        assert_eq!(outcome(&rolled).outcome, "rolled_back");
        let replay = line(
            "push.applied",
            "replay sequence 100 (listener lab, error code 103; scope acme): 3 replayed, 0 still quarantined (push sha256:ab)",
        );
        assert_eq!(about_of(&replay.detail), About::Replay);
        let o = outcome(&replay);
        assert_eq!((o.reason.as_deref(), o.sequence), (None, Some(100)));
        assert!(
            last(Some(&o)).ends_with(": 3 replayed, 0 still quarantined"),
            "{}",
            last(Some(&o))
        );
        let unread = line(
            "push.rejected",
            "listener : sequence unknown rejected (bad_signature): the signature (push sha256:ab)",
        );
        let o = outcome(&unread);
        assert_eq!(
            (o.reason.as_deref(), o.sequence),
            (Some("bad_signature"), None)
        );
        assert_eq!(about_of(&unread.detail), About::Listener(""));
    }

    #[test]
    fn the_newest_line_about_a_listener_wins() {
        let lines = [
            line(
                "push.rejected",
                "listener lab: sequence 9 rejected (downgrade): x",
            ),
            line(
                "push.applied",
                "listener lab: mapping a -> b (sequence 10, scope s)",
            ),
            line(
                "push.applied",
                "listener adt: mapping a -> b (sequence 3, scope s)",
            ),
        ];
        let lab = last_for(&lines, &About::Listener("lab")).unwrap();
        assert_eq!(lab.outcome, "rejected");
        assert_eq!(
            last_for(&lines, &About::Listener("adt")).unwrap().sequence,
            Some(3)
        );
        assert_eq!(last_for(&lines, &About::Replay), None);
    }
}
