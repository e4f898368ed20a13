//! `status`'s hub section: the connection as the running agent last recorded it (the
//! `hub_link` row), what it means in words, what to do, and in receipt mode what waits for the
//! hub's custody receipt.
//!
//! Invariants:
//! - A refusal that will never heal by waiting (an untrusted hub certificate, this gateway's
//!   certificate refused, not authorized, receipts refused) is reported as such with the
//!   command that fixes it, and nothing in the report then says that messages are sent once
//!   the hub is reachable.
//! - Only what the agent recorded is shown, with when it was recorded; `status` never
//!   connects to the hub itself (that is `hl7edge doctor`).

use std::io::Write;

use serde::Serialize;

use super::super::text::{self, Align};
use crate::config::{Config, Custody, HubTransport};
use crate::forwarder::link::Cause;
use crate::store::{Awaiting, HubLinkRow};

/// How long the hub may be unreachable before `status` asks for attention (several attempts:
/// the agent retries after 0.5 s, doubling).
const UNREACHABLE_SECS: u64 = 10;

/// The hub connection and custody, as `status --json` shows it under `hub`.
#[derive(Debug, Clone, Serialize)]
pub struct HubStatus {
    /// `puback` or `receipt` (`hub.custody`).
    pub custody: &'static str,
    /// `hub.receipt_timeout` in seconds (receipt mode).
    pub receipt_timeout_seconds: Option<u64>,
    /// `connecting` (never connected since the agent started), `connected`, `disconnected`,
    /// or `unknown` (the agent never recorded one).
    pub state: String,
    /// Since when connected, or since when not (RFC 3339, UTC).
    pub since: Option<String>,
    /// The last failure's cause (`hub_certificate_untrusted`, `not_listening`, ...), while it
    /// matters: not connected, or receipts refused.
    pub cause: Option<&'static str>,
    /// The cause in words.
    pub cause_words: Option<&'static str>,
    /// What to do about it.
    pub fix: Option<String>,
    /// False when waiting will not help: someone must fix the cause.
    pub heals_by_waiting: Option<bool>,
    /// The last failure as the TLS or MQTT stack said it, and when (kept after a recovery).
    pub last_error: Option<String>,
    /// When the last failure happened (RFC 3339, UTC).
    pub last_error_at: Option<String>,
    /// Failed attempts since the last successful connection.
    pub failures: u64,
    /// The last successful connection (RFC 3339, UTC).
    pub last_connected_at: Option<String>,
    /// The last publish of records (RFC 3339, UTC; recorded every few seconds at most).
    pub last_publish_at: Option<String>,
    /// The last PUBACK of records (RFC 3339, UTC).
    pub last_puback_at: Option<String>,
    /// The last custody receipt that named a queued record (RFC 3339, UTC).
    pub last_receipt_at: Option<String>,
    /// When the agent recorded this (RFC 3339, UTC).
    pub recorded_at: Option<String>,
    /// Records the broker acknowledged that wait for the hub's receipt (receipt mode).
    pub awaiting_receipt: u64,
    /// The first PUBACK of the oldest of them (RFC 3339, UTC).
    pub oldest_awaiting_receipt_since: Option<String>,
    /// How long it has waited, in seconds.
    pub oldest_awaiting_receipt_age_seconds: Option<u64>,
    #[serde(skip)]
    link: Option<HubLinkRow>,
    #[serde(skip)]
    cause_kind: Option<Cause>,
}

/// The hub section's facts for `config`, the recorded `link` and the store's `awaiting` rows.
pub fn hub_status(
    config: &Config,
    link: Option<HubLinkRow>,
    awaiting: Awaiting,
    now: i64,
) -> HubStatus {
    let receipt = config.hub.custody == Custody::Receipt;
    let current_cause = link.as_ref().and_then(|l| {
        let cause = Cause::from_kind(l.cause.as_deref()?);
        (l.state != "connected" || cause == Cause::ReceiptsRefused).then_some(cause)
    });
    let ca = match &config.hub.transport {
        HubTransport::Tls(tls) => Some(tls.ca.display().to_string()),
        HubTransport::Plaintext => None,
    };
    let at = |ms: Option<i64>| ms.map(text::rfc3339);
    let l = link.clone().unwrap_or_default();
    HubStatus {
        custody: config.hub.custody.as_str(),
        receipt_timeout_seconds: receipt.then_some(config.hub.receipt_timeout.as_secs()),
        state: link
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |l| l.state.clone()),
        since: link.as_ref().map(|l| text::rfc3339(l.since_ms)),
        cause: current_cause.map(Cause::kind),
        cause_words: current_cause.map(Cause::words),
        fix: current_cause.map(|c| c.fix(ca.as_deref())),
        heals_by_waiting: current_cause.map(Cause::heals_by_waiting),
        last_error: l.error.clone(),
        last_error_at: at(l.error_at_ms),
        failures: l.failures,
        last_connected_at: at(l.connected_at_ms),
        last_publish_at: at(l.publish_at_ms),
        last_puback_at: at(l.puback_at_ms),
        last_receipt_at: at(l.receipt_at_ms),
        recorded_at: link.as_ref().map(|l| text::rfc3339(l.updated_at_ms)),
        awaiting_receipt: awaiting.count,
        oldest_awaiting_receipt_since: at(awaiting.oldest_since_ms),
        oldest_awaiting_receipt_age_seconds: awaiting
            .oldest_since_ms
            .map(|t| text::age_secs(now, t)),
        link,
        cause_kind: current_cause,
    }
}

impl HubStatus {
    /// True when the hub refuses this gateway for a reason waiting will not fix.
    pub fn refused(&self) -> bool {
        self.heals_by_waiting == Some(false)
    }

    /// What needs attention: `hub_refused`, `hub_unreachable` (not connected for a minute),
    /// `receipts_overdue` (the oldest record awaiting its receipt waited past the timeout).
    pub fn attention(&self, now: i64) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.refused() {
            out.push("hub_refused");
        } else if self.link.as_ref().is_some_and(|l| {
            l.state != "connected"
                && l.failures > 0
                && text::age_secs(now, l.since_ms) > UNREACHABLE_SECS
        }) {
            out.push("hub_unreachable");
        }
        let overdue = self
            .oldest_awaiting_receipt_age_seconds
            .zip(self.receipt_timeout_seconds)
            .is_some_and(|(age, timeout)| age > timeout);
        if overdue {
            out.push("receipts_overdue");
        }
        out
    }

    /// The advice for one of [`HubStatus::attention`]'s codes.
    pub fn advice(&self, code: &str, waiting: u64) -> Option<String> {
        let words = self
            .cause_words
            .unwrap_or("the connection to the hub failed");
        let fix = self.fix.clone().unwrap_or_default();
        let error = self
            .last_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        Some(match code {
            "hub_refused" => format!(
                "The hub refuses this gateway: {words}{error}.\n    \
                 Waiting will not help: nothing is sent until this is fixed; the {waiting} \
                 message(s) waiting are kept.\n    {fix}"
            ),
            "hub_unreachable" => format!(
                "The hub has not been reachable since {}: {words}{error}.\n    {fix}\n    \
                 Nothing is lost; they are sent once the hub is reachable.",
                self.link
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |l| text::utc(l.since_ms))
            ),
            "receipts_overdue" => format!(
                "{} record(s) reached the hub's broker but the hub has not confirmed them \
                 (custody receipt) for {} (hub.receipt_timeout is {}).\n    \
                 They are kept here and published again under the same record ids.\n    \
                 On the hub: check that hl7edge-hub ingest runs and what it refuses \
                 (its /metrics: hl7edge_ingest_database_up, hl7edge_ingest_dead_letters_total; \
                 the dead_letters table).",
                self.awaiting_receipt,
                text::age(self.oldest_awaiting_receipt_age_seconds.unwrap_or(0)),
                text::age(self.receipt_timeout_seconds.unwrap_or(0)),
            ),
            _ => return None,
        })
    }

    /// The advice for messages waiting too long: sent once the hub is reachable, unless the
    /// hub refuses this gateway (then that advice says what to do).
    pub fn queue_old_advice(&self, limit: &str) -> String {
        if self.refused() {
            format!(
                "Messages have waited more than {limit} for the hub: the hub refuses this \
                 gateway (see above); they are kept and sent once that is fixed."
            )
        } else {
            format!(
                "Messages have waited more than {limit} for the hub.\n    \
                 Check the network and the hub connection: hl7edge doctor\n    \
                 Nothing is lost; they are sent once the hub is reachable."
            )
        }
    }
}

/// Writes the hub section for people.
pub fn render(h: &HubStatus, now: i64, out: &mut impl Write) -> std::io::Result<()> {
    let state = match (h.state.as_str(), &h.since) {
        ("unknown", _) => "unknown: the agent has not recorded a connection yet".to_owned(),
        (state, Some(_)) => {
            let since = h.link.as_ref().map(|l| l.since_ms);
            format!("{state} since {}", text::when_ago(now, since))
        }
        (state, None) => state.to_owned(),
    };
    let custody = match h.receipt_timeout_seconds {
        Some(t) => format!(
            "receipt: a record leaves this gateway when the hub has committed it (receipt_timeout {})",
            text::age(t)
        ),
        None => "puback: a record leaves this gateway when the hub's broker has it".to_owned(),
    };
    let ms = |at: fn(&HubLinkRow) -> Option<i64>| h.link.as_ref().and_then(at);
    let mut rows = vec![
        vec!["connection".to_owned(), state],
        vec!["custody".to_owned(), custody],
    ];
    if let (Some(words), Some(cause)) = (h.cause_words, h.cause_kind) {
        rows.push(vec![
            "why".to_owned(),
            format!("{words} ({})", cause.kind()),
        ]);
    }
    if let Some(error) = &h.last_error {
        let at = text::when_ago(now, ms(|l| l.error_at_ms));
        rows.push(vec!["last error".to_owned(), format!("{error}, {at}")]);
    }
    rows.push(vec![
        "last publish".to_owned(),
        text::when_ago(now, ms(|l| l.publish_at_ms)),
    ]);
    rows.push(vec![
        "last PUBACK".to_owned(),
        text::when_ago(now, ms(|l| l.puback_at_ms)),
    ]);
    if h.receipt_timeout_seconds.is_some() {
        rows.push(vec![
            "last receipt".to_owned(),
            text::when_ago(now, ms(|l| l.receipt_at_ms)),
        ]);
        let waiting = match h.oldest_awaiting_receipt_age_seconds {
            Some(age) => format!(
                "{} record(s), the oldest for {}",
                h.awaiting_receipt,
                text::age(age)
            ),
            None => "none".to_owned(),
        };
        rows.push(vec!["awaiting receipt".to_owned(), waiting]);
    }
    writeln!(out, "Hub")?;
    write!(out, "{}", text::table("  ", &[Align::Left; 2], &rows))?;
    writeln!(out)
}
