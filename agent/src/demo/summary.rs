//! The demo's result: what each sender sent and got back, what the
//! gateway counted, what reached the hub, and the three checks.
//!
//! The checks: every message the gateway acknowledged positively reached
//! the hub; each malformed message got AE, was kept in quarantine and was
//! not forwarded; each resend got its stored ACK back, byte for byte, and
//! was not stored twice.

use std::collections::BTreeSet;

use hl7edge_protocol::hl7::ack::AckCode;

use super::hub::Arrivals;
use super::messages::Kind;
use super::sender::Exchange;

/// What one sender (interface) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderTally {
    /// The listener name.
    pub name: String,
    /// Messages sent, resends included.
    pub sent: usize,
    /// Answers AA or CA.
    pub accepted: usize,
    /// Answers AE or CE.
    pub errors: usize,
    /// Resends the gateway recognised (its own counter).
    pub duplicates: u64,
    /// Messages the gateway kept in quarantine (its own counter).
    pub quarantined: u64,
    /// Distinct records of this source that reached the hub.
    pub at_hub: usize,
}

/// The gateway's own counters for one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GatewayCounts {
    /// The listener name.
    pub name: String,
    /// Resends it recognised and answered with the stored ACK.
    pub duplicates: u64,
    /// Messages it kept in quarantine.
    pub quarantined: u64,
}

/// The outcome of a demo run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One row per sender.
    pub senders: Vec<SenderTally>,
    /// Malformed messages sent (each should get AE).
    pub malformed_sent: usize,
    /// Resends sent (each should get its stored ACK).
    pub resends_sent: usize,
    /// Resends answered with the very ACK their first send got.
    pub resends_replayed: usize,
    /// Positively acknowledged messages that did not reach the hub
    /// (`source control-id`).
    pub missing: Vec<String>,
    /// Messages that reached the hub under more than one record id.
    pub stored_twice: Vec<String>,
    /// Refused messages that nevertheless reached the hub.
    pub forwarded_refused: Vec<String>,
}

impl Summary {
    /// Builds the summary from the exchanges, the gateway's counters and
    /// the hub's arrivals.
    pub(super) fn new(
        exchanges: &[Exchange],
        counts: &[GatewayCounts],
        arrivals: &Arrivals,
    ) -> Summary {
        let senders = counts
            .iter()
            .map(|c| tally(c, exchanges, arrivals))
            .collect();
        let of_kind = |k: Kind| exchanges.iter().filter(move |x| x.message.kind == k);
        let name = |key: &(String, String)| format!("{} {}", key.0, key.1);
        let missing = accepted_keys(exchanges)
            .iter()
            .filter(|k| !arrivals.contains_key(*k))
            .map(name)
            .collect();
        let stored_twice = arrivals
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(k, _)| name(k))
            .collect();
        let forwarded_refused = of_kind(Kind::Malformed)
            .map(key)
            .filter(|k| arrivals.contains_key(k))
            .map(|k| name(&k))
            .collect();
        Summary {
            senders,
            malformed_sent: of_kind(Kind::Malformed).count(),
            resends_sent: of_kind(Kind::Resend).count(),
            resends_replayed: of_kind(Kind::Resend)
                .filter(|x| x.replayed == Some(true))
                .count(),
            missing,
            stored_twice,
            forwarded_refused,
        }
    }

    /// Messages sent by all senders.
    pub fn sent(&self) -> usize {
        self.senders.iter().map(|s| s.sent).sum()
    }

    /// AA/CA answers.
    pub fn accepted(&self) -> usize {
        self.senders.iter().map(|s| s.accepted).sum()
    }

    /// AE/CE answers.
    pub fn errors(&self) -> usize {
        self.senders.iter().map(|s| s.errors).sum()
    }

    /// Resends the gateway recognised.
    pub fn duplicates(&self) -> u64 {
        self.senders.iter().map(|s| s.duplicates).sum()
    }

    /// Messages in quarantine.
    pub fn quarantined(&self) -> u64 {
        self.senders.iter().map(|s| s.quarantined).sum()
    }

    /// Distinct records the hub received.
    pub fn records_at_hub(&self) -> usize {
        self.senders.iter().map(|s| s.at_hub).sum()
    }

    /// Every positively acknowledged message reached the hub.
    pub fn all_acked_arrived(&self) -> bool {
        self.missing.is_empty()
    }

    /// The malformed messages were refused, quarantined and not forwarded.
    pub fn refusals_held(&self) -> bool {
        self.errors() == self.malformed_sent
            && self.quarantined() == self.malformed_sent as u64
            && self.forwarded_refused.is_empty()
    }

    /// The resends got their stored ACKs and nothing was stored twice.
    pub fn resends_deduplicated(&self) -> bool {
        self.duplicates() == self.resends_sent as u64
            && self.resends_replayed == self.resends_sent
            && self.stored_twice.is_empty()
    }

    /// All three checks hold.
    pub fn passed(&self) -> bool {
        self.all_acked_arrived() && self.refusals_held() && self.resends_deduplicated()
    }

    /// The table and the checks, as printed at the end of the demo.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            "Summary".to_string(),
            format!(
                "  {:<10} {:>5} {:>10} {:>7} {:>11} {:>8}",
                "sender", "sent", "ACK AA/CA", "ACK AE", "duplicates", "at hub"
            ),
        ];
        for s in &self.senders {
            out.push(row(
                &s.name,
                s.sent,
                s.accepted,
                s.errors,
                s.duplicates,
                s.at_hub,
            ));
        }
        out.push(row(
            "total",
            self.sent(),
            self.accepted(),
            self.errors(),
            self.duplicates(),
            self.records_at_hub(),
        ));
        out.push(String::new());
        out.extend(self.check_lines());
        out
    }

    fn check_lines(&self) -> [String; 3] {
        let distinct = self.records_at_hub();
        let arrived = if self.all_acked_arrived() {
            format!("✓ every acknowledged message reached the hub ({distinct} records)")
        } else {
            format!(
                "✗ acknowledged but not at the hub: {}",
                self.missing.join(", ")
            )
        };
        let refused = if self.refusals_held() {
            "✓ the malformed message got AE, stayed in quarantine and was not forwarded".to_string()
        } else {
            format!(
                "✗ malformed: {} sent, {} AE, {} quarantined, forwarded anyway: [{}]",
                self.malformed_sent,
                self.errors(),
                self.quarantined(),
                self.forwarded_refused.join(", ")
            )
        };
        let resent = if self.resends_deduplicated() {
            "✓ the resend got its stored ACK back and was not stored twice".to_string()
        } else {
            format!(
                "✗ resends: {} sent, {} recognised, {} with the stored ACK, stored twice: [{}]",
                self.resends_sent,
                self.duplicates(),
                self.resends_replayed,
                self.stored_twice.join(", ")
            )
        };
        [arrived, refused, resent].map(|l| format!("  {l}"))
    }
}

fn row(name: &str, sent: usize, accepted: usize, errors: usize, dups: u64, hub: usize) -> String {
    format!("  {name:<10} {sent:>5} {accepted:>10} {errors:>7} {dups:>11} {hub:>8}")
}

fn key(x: &Exchange) -> (String, String) {
    (x.sender.to_string(), x.message.control_id.clone())
}

/// `(source, control id)` of every message answered AA or CA.
pub(super) fn accepted_keys(exchanges: &[Exchange]) -> BTreeSet<(String, String)> {
    exchanges
        .iter()
        .filter(|x| x.ack.code.is_positive())
        .map(key)
        .collect()
}

fn tally(c: &GatewayCounts, exchanges: &[Exchange], arrivals: &Arrivals) -> SenderTally {
    let mine: Vec<&Exchange> = exchanges.iter().filter(|x| x.sender == c.name).collect();
    SenderTally {
        name: c.name.clone(),
        sent: mine.len(),
        accepted: mine.iter().filter(|x| x.ack.code.is_positive()).count(),
        errors: mine
            .iter()
            .filter(|x| matches!(x.ack.code, AckCode::ApplicationError | AckCode::CommitError))
            .count(),
        duplicates: c.duplicates,
        quarantined: c.quarantined,
        at_hub: arrivals
            .iter()
            .filter(|((source, _), _)| *source == c.name)
            .map(|(_, ids)| ids.len())
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::hl7::ack::AckSummary;
    use uuid::Uuid;

    use super::*;
    use crate::demo::messages::{self, Outgoing};

    fn exchange(sender: &'static str, message: Outgoing, code: AckCode) -> Exchange {
        let replayed = (message.kind == Kind::Resend).then_some(true);
        Exchange {
            sender,
            ack: AckSummary {
                code,
                acknowledged_id: message.control_id.clone(),
                control_id: "HE1".into(),
                error_codes: Vec::new(),
            },
            message,
            replayed,
        }
    }

    fn script() -> Vec<Exchange> {
        let now = jiff::Zoned::now();
        let first = messages::lab_result(1, &now);
        vec![
            exchange("lab", first.clone(), AckCode::ApplicationAccept),
            exchange(
                "lab",
                messages::malformed(2, &now),
                AckCode::ApplicationError,
            ),
            exchange("lab", first.resend(), AckCode::ApplicationAccept),
            exchange(
                "monitors",
                messages::vital_signs(1, &now),
                AckCode::CommitAccept,
            ),
        ]
    }

    fn counts(duplicates: u64, quarantined: u64) -> Vec<GatewayCounts> {
        vec![
            GatewayCounts {
                name: "lab".into(),
                duplicates,
                quarantined,
            },
            GatewayCounts {
                name: "monitors".into(),
                duplicates: 0,
                quarantined: 0,
            },
        ]
    }

    fn arrived(keys: &[(&str, &str)]) -> Arrivals {
        let mut a = Arrivals::new();
        for (source, control) in keys {
            a.entry((source.to_string(), control.to_string()))
                .or_default()
                .insert(Uuid::now_v7());
        }
        a
    }

    #[test]
    fn a_complete_run_passes_every_check() {
        let hub = arrived(&[("lab", "LAB00001"), ("monitors", "MON00001")]);
        let s = Summary::new(&script(), &counts(1, 1), &hub);
        assert!(s.passed(), "{s:?}");
        assert_eq!(
            (s.sent(), s.accepted(), s.errors(), s.records_at_hub()),
            (4, 3, 1, 2)
        );
        let lines = s.lines();
        assert_eq!(
            lines[2],
            "  lab            3          2       1           1        1"
        );
        assert_eq!(
            lines[4],
            "  total          4          3       1           1        2"
        );
    }

    #[test]
    fn an_acknowledged_message_missing_at_the_hub_fails_the_run() {
        let hub = arrived(&[("lab", "LAB00001")]);
        let s = Summary::new(&script(), &counts(1, 1), &hub);
        assert_eq!(s.missing, ["monitors MON00001"]);
        assert!(!s.passed());
        assert!(
            s.lines()
                .iter()
                .any(|l| l.contains("✗ acknowledged but not at the hub: monitors MON00001"))
        );
    }

    #[test]
    fn a_record_stored_twice_or_a_refused_one_forwarded_fails_the_run() {
        let mut hub = arrived(&[
            ("lab", "LAB00001"),
            ("monitors", "MON00001"),
            ("lab", "LAB00002"),
        ]);
        assert!(!Summary::new(&script(), &counts(1, 1), &hub).refusals_held());
        hub.remove(&("lab".to_string(), "LAB00002".to_string()));
        hub.entry(("lab".into(), "LAB00001".into()))
            .or_default()
            .insert(Uuid::now_v7());
        let s = Summary::new(&script(), &counts(1, 1), &hub);
        assert_eq!(s.stored_twice, ["lab LAB00001"]);
        assert!(!s.resends_deduplicated() && !s.passed());
    }

    #[test]
    fn a_resend_the_gateway_did_not_recognise_fails_the_run() {
        let hub = arrived(&[("lab", "LAB00001"), ("monitors", "MON00001")]);
        let s = Summary::new(&script(), &counts(0, 1), &hub);
        assert!(!s.resends_deduplicated());
        assert!(s.all_acked_arrived() && s.refusals_held());
    }
}
