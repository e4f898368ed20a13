//! The end-to-end count: compares what the senders were told (AA/CA) with what reached the
//! broker, and says whether the gateway kept its promises.
//!
//! The rules (see RELIABILITY.md, "counted"):
//! - every ACKed message arrives at least once: anything ACKed and never delivered is *missing*,
//!   a defect;
//! - a record may arrive more than once with the same record id (at-least-once delivery; the hub
//!   drops duplicates by id): counted as *redelivered*, allowed;
//! - one message (same source and control id) under two or more record ids is a *split*, a
//!   defect: it is exactly what dedupe of resent messages must prevent (the tests' generators
//!   never reuse a control id with different content);
//! - one record id carrying two different messages is a *conflict*, a defect;
//! - messages that arrived but were never ACKed (the ACK was lost, or the sender gave up) are
//!   listed for information;
//! - per sender, first arrivals should follow the ACK order; violations are listed separately
//!   ([`Report::is_ordered`]), since not every test promises order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// How many entries of each list the report prints.
const SHOWN: usize = 10;

/// One sender's ACKed messages, in the order the ACKs arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The source (listener name) the sender sent to.
    pub source: String,
    /// Control ids (MSH-10) that got AA or CA, in ACK order.
    pub control_ids: Vec<String>,
}

impl Acked {
    /// One sender's ACKed control ids (e.g. [`crate::mllp::Sender::acked`]) for `source`.
    pub fn new(source: &str, control_ids: Vec<String>) -> Acked {
        Acked {
            source: source.to_owned(),
            control_ids,
        }
    }
}

/// One record as it reached the broker (decoded from a payload by the test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The record id from the envelope.
    pub record_id: String,
    /// The source (listener name) from the envelope.
    pub source: String,
    /// The original message's control id (MSH-10).
    pub control_id: String,
}

/// A message's identity: source and control id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The source (listener name).
    pub source: String,
    /// The control id (MSH-10).
    pub control_id: String,
}

/// A message that arrived under more than one record id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The message.
    pub key: Key,
    /// Every record id it arrived under, sorted.
    pub record_ids: Vec<String>,
}

/// The result of [`check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages ACKed positively (over all senders).
    pub acked: usize,
    /// Deliveries examined.
    pub delivered: usize,
    /// ACKed but never delivered (defect).
    pub missing: Vec<Key>,
    /// Deliveries beyond the first of the same record id (allowed).
    pub redelivered: usize,
    /// Messages delivered under several record ids (defect).
    pub split: Vec<Split>,
    /// Record ids that carried different messages (defect).
    pub conflicts: Vec<String>,
    /// Delivered but never ACKed (information).
    pub unacked_arrivals: Vec<Key>,
    /// ACKed messages whose first arrival came after that of a message ACKed later by the same
    /// sender.
    pub out_of_order: Vec<Key>,
}

impl Report {
    /// Nothing missing, split or conflicting.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.split.is_empty() && self.conflicts.is_empty()
    }

    /// Every sender's messages first arrived in ACK order.
    pub fn is_ordered(&self) -> bool {
        self.out_of_order.is_empty()
    }

    /// The arrivals never ACKed whose control id is in `control_ids` (for example messages the
    /// agent refused, which must never be forwarded).
    pub fn unacked_arrivals_among(&self, control_ids: &[String]) -> Vec<&Key> {
        self.unacked_arrivals
            .iter()
            .filter(|k| control_ids.contains(&k.control_id))
            .collect()
    }

    /// Panics with the report unless [`Report::is_ok`].
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "delivery check failed:\n{self}");
    }

    /// Panics with the report unless it is ok and ordered.
    pub fn assert_ok_and_ordered(&self) {
        assert!(
            self.is_ok() && self.is_ordered(),
            "delivery check failed:\n{self}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ACKed, {} deliveries, {} redelivered with the same id",
            self.acked, self.delivered, self.redelivered
        )?;
        write_list(f, "missing (ACKed, never delivered)", &self.missing)?;
        write_list(f, "split (one message, several record ids)", &self.split)?;
        write_list(
            f,
            "conflicts (one record id, several messages)",
            &self.conflicts,
        )?;
        write_list(f, "delivered but never ACKed", &self.unacked_arrivals)?;
        write_list(f, "out of ACK order", &self.out_of_order)
    }
}

fn write_list<T: fmt::Debug>(f: &mut fmt::Formatter<'_>, title: &str, items: &[T]) -> fmt::Result {
    writeln!(f, "{title}: {}", items.len())?;
    for item in items.iter().take(SHOWN) {
        writeln!(f, "  {item:?}")?;
    }
    if items.len() > SHOWN {
        writeln!(f, "  ... and {} more", items.len() - SHOWN)?;
    }
    Ok(())
}

/// Compares the ACKs the senders got with the records that reached the broker.
pub fn check(acked: &[Acked], delivered: &[Delivered]) -> Report {
    let acked_keys: BTreeSet<Key> = acked.iter().flat_map(keys_of).collect();
    let mut ids_by_key: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
    let mut key_by_id: HashMap<&str, &Delivered> = HashMap::new();
    let mut conflicts = BTreeSet::new();
    let mut redelivered = 0;
    for record in delivered {
        let key = key(&record.source, &record.control_id);
        ids_by_key.entry(key).or_default().insert(&record.record_id);
        match key_by_id.get(record.record_id.as_str()) {
            None => {
                key_by_id.insert(&record.record_id, record);
            }
            Some(first)
                if first.source == record.source && first.control_id == record.control_id =>
            {
                redelivered += 1
            }
            Some(_) => {
                conflicts.insert(record.record_id.clone());
            }
        }
    }
    Report {
        acked: acked.iter().map(|a| a.control_ids.len()).sum(),
        delivered: delivered.len(),
        missing: acked_keys
            .iter()
            .filter(|k| !ids_by_key.contains_key(k))
            .cloned()
            .collect(),
        redelivered,
        split: splits(&ids_by_key),
        conflicts: conflicts.into_iter().collect(),
        unacked_arrivals: ids_by_key
            .keys()
            .filter(|k| !acked_keys.contains(k))
            .cloned()
            .collect(),
        out_of_order: acked
            .iter()
            .flat_map(|a| out_of_order(a, delivered))
            .collect(),
    }
}

fn key(source: &str, control_id: &str) -> Key {
    Key {
        source: source.to_owned(),
        control_id: control_id.to_owned(),
    }
}

fn keys_of(acked: &Acked) -> impl Iterator<Item = Key> + '_ {
    acked.control_ids.iter().map(|id| key(&acked.source, id))
}

fn splits(ids_by_key: &BTreeMap<Key, BTreeSet<&str>>) -> Vec<Split> {
    ids_by_key
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(key, ids)| Split {
            key: key.clone(),
            record_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        })
        .collect()
}

/// The sender's messages whose first arrival came after one it was ACKed after.
fn out_of_order(acked: &Acked, delivered: &[Delivered]) -> Vec<Key> {
    let position: HashMap<&str, usize> = acked
        .control_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut seen = BTreeSet::new();
    let mut latest = None;
    let mut late = Vec::new();
    for record in delivered.iter().filter(|r| r.source == acked.source) {
        let Some(&index) = position.get(record.control_id.as_str()) else {
            continue;
        };
        if !seen.insert(index) {
            continue;
        }
        match latest {
            Some(latest) if index < latest => late.push(key(&acked.source, &record.control_id)),
            _ => latest = Some(index),
        }
    }
    late
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(source: &str, ids: &[&str]) -> Acked {
        Acked {
            source: source.into(),
            control_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn delivered(record_id: &str, source: &str, control_id: &str) -> Delivered {
        Delivered {
            record_id: record_id.into(),
            source: source.into(),
            control_id: control_id.into(),
        }
    }

    #[test]
    fn unacked_arrivals_among_names_only_the_listed_control_ids() {
        let report = check(
            &[acked("lab", &["l-1"])],
            &[
                delivered("r1", "lab", "l-1"),
                delivered("r2", "lab", "l-2"),
                delivered("r3", "lab", "l-3"),
            ],
        );
        let refused = ["l-3".to_owned(), "l-9".to_owned()];
        let stray = report.unacked_arrivals_among(&refused);
        assert_eq!(stray.len(), 1);
        assert_eq!(stray[0].control_id, "l-3");
    }

    #[test]
    fn everything_acked_and_delivered_once_in_order_is_ok() {
        let report = check(
            &[acked("lab", &["l-1", "l-2"]), acked("icu", &["m-1"])],
            &[
                delivered("r1", "lab", "l-1"),
                delivered("r3", "icu", "m-1"),
                delivered("r2", "lab", "l-2"),
            ],
        );
        assert!(report.is_ok() && report.is_ordered(), "{report}");
        assert_eq!(
            (report.acked, report.delivered, report.redelivered),
            (3, 3, 0)
        );
    }

    #[test]
    fn an_acked_message_that_never_arrived_is_missing() {
        let report = check(
            &[acked("lab", &["l-1", "l-2"])],
            &[delivered("r1", "lab", "l-1")],
        );
        assert!(!report.is_ok());
        assert_eq!(report.missing, vec![key("lab", "l-2")]);
    }

    #[test]
    fn the_same_control_id_from_another_source_does_not_count_as_delivered() {
        let report = check(&[acked("lab", &["x-1"])], &[delivered("r1", "icu", "x-1")]);
        assert_eq!(report.missing, vec![key("lab", "x-1")]);
        assert_eq!(report.unacked_arrivals, vec![key("icu", "x-1")]);
    }

    #[test]
    fn a_redelivery_with_the_same_record_id_is_allowed() {
        let report = check(
            &[acked("lab", &["l-1"])],
            &[
                delivered("r1", "lab", "l-1"),
                delivered("r1", "lab", "l-1"),
                delivered("r1", "lab", "l-1"),
            ],
        );
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.redelivered, 2);
    }

    #[test]
    fn one_message_under_two_record_ids_is_a_split() {
        let report = check(
            &[acked("lab", &["l-1"])],
            &[delivered("r1", "lab", "l-1"), delivered("r9", "lab", "l-1")],
        );
        assert!(!report.is_ok());
        assert_eq!(
            report.split,
            vec![Split {
                key: key("lab", "l-1"),
                record_ids: vec!["r1".into(), "r9".into()]
            }]
        );
    }

    #[test]
    fn one_record_id_carrying_two_messages_is_a_conflict() {
        let report = check(
            &[acked("lab", &["l-1", "l-2"])],
            &[delivered("r1", "lab", "l-1"), delivered("r1", "lab", "l-2")],
        );
        assert!(!report.is_ok());
        assert_eq!(report.conflicts, vec!["r1".to_owned()]);
    }

    #[test]
    fn an_arrival_that_was_never_acked_is_listed_but_not_a_defect() {
        let report = check(
            &[acked("lab", &["l-1"])],
            &[delivered("r1", "lab", "l-1"), delivered("r2", "lab", "l-2")],
        );
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.unacked_arrivals, vec![key("lab", "l-2")]);
    }

    #[test]
    fn first_arrivals_against_ack_order_are_out_of_order_but_redeliveries_are_not() {
        let in_order_with_redelivery = check(
            &[acked("lab", &["l-1", "l-2"])],
            &[
                delivered("r1", "lab", "l-1"),
                delivered("r2", "lab", "l-2"),
                delivered("r1", "lab", "l-1"),
            ],
        );
        assert!(
            in_order_with_redelivery.is_ordered(),
            "{in_order_with_redelivery}"
        );
        let swapped = check(
            &[acked("lab", &["l-1", "l-2", "l-3"])],
            &[
                delivered("r2", "lab", "l-2"),
                delivered("r1", "lab", "l-1"),
                delivered("r3", "lab", "l-3"),
            ],
        );
        assert!(swapped.is_ok() && !swapped.is_ordered());
        assert_eq!(swapped.out_of_order, vec![key("lab", "l-1")]);
    }

    #[test]
    fn the_report_names_what_is_missing() {
        let report = check(&[acked("lab", &["l-1"])], &[]);
        let text = report.to_string();
        assert!(
            text.contains("missing (ACKed, never delivered): 1"),
            "{text}"
        );
        assert!(text.contains("l-1"), "{text}");
    }
}
