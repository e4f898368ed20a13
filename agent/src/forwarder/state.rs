//! The forwarder's bookkeeping, without IO: which rows are in flight, which
//! MQTT packet id carries which rows, and what to re-publish after a
//! reconnect.
//!
//! Invariants:
//! - A row is reported as forwarded (and so deleted) only after the PUBACK
//!   of the publish that carried it.
//! - rumqttc does not return packet ids from `publish()`; it reports
//!   `Outgoing::Publish(pkid)` in the order publishes were requested, so
//!   requested batches are queued and matched to packet ids in FIFO order.
//! - After any disconnect everything not yet PUBACKed is forgotten here and
//!   read again from the store (the store is the source of truth), starting
//!   at the lowest un-acknowledged sequence number, so order per source is
//!   kept and nothing is skipped.
//! - At most `window` publishes are outstanding (requested or in flight).

use std::collections::{HashMap, VecDeque};

/// Rows carried by one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Store sequence numbers, ascending.
    pub seqs: Vec<i64>,
}

/// Forwarding state for one MQTT connection generation.
#[derive(Debug)]
pub struct ForwardState {
    window: usize,
    /// Highest sequence number handed out for publishing.
    cursor: i64,
    /// Requested publishes not yet given a packet id, in request order
    /// (`None`: a publish that carries no rows, such as the status).
    awaiting_pkid: VecDeque<Option<Batch>>,
    /// Publishes sent and waiting for their PUBACK.
    in_flight: HashMap<u16, Option<Batch>>,
}

/// What to do after an MQTT event.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// These rows are PUBACKed: tell the store.
    Forwarded(Vec<i64>),
    /// The broker refused or the bookkeeping broke: rebuild the connection.
    Reconnect(&'static str),
}

impl ForwardState {
    /// Fresh state: nothing in flight, reading from the start of the queue.
    pub fn new(window: usize) -> Self {
        ForwardState {
            window: window.max(1),
            cursor: 0,
            awaiting_pkid: VecDeque::new(),
            in_flight: HashMap::new(),
        }
    }

    /// The sequence number after which the next rows are read.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// How many more publishes may be requested now.
    pub fn free_slots(&self) -> usize {
        self.window.saturating_sub(self.outstanding())
    }

    /// Publishes requested or in flight.
    pub fn outstanding(&self) -> usize {
        self.awaiting_pkid.len() + self.in_flight.len()
    }

    /// Records that a publish carrying `seqs` was handed to the client.
    pub fn requested(&mut self, seqs: Vec<i64>) {
        if let Some(&last) = seqs.last() {
            self.cursor = self.cursor.max(last);
        }
        self.awaiting_pkid.push_back(Some(Batch { seqs }));
    }

    /// Records that a publish carrying no rows (status, telemetry) was
    /// handed to the client; it takes a packet id like any other.
    pub fn requested_other(&mut self) {
        self.awaiting_pkid.push_back(None);
    }

    /// The client wrote a publish with this packet id.
    pub fn on_outgoing_publish(&mut self, pkid: u16) -> Effect {
        let Some(batch) = self.awaiting_pkid.pop_front() else {
            return Effect::Reconnect("packet id reported for a publish that was not requested");
        };
        if self.in_flight.insert(pkid, batch).is_some() {
            return Effect::Reconnect("packet id reused while still in flight");
        }
        Effect::None
    }

    /// The broker acknowledged packet `pkid`.
    pub fn on_puback(&mut self, pkid: u16, success: bool) -> Effect {
        match (self.in_flight.remove(&pkid), success) {
            (Some(Some(batch)), true) => Effect::Forwarded(batch.seqs),
            (Some(_), false) => {
                Effect::Reconnect("broker refused a publish (PUBACK failure reason)")
            }
            (Some(None), true) | (None, _) => Effect::None,
        }
    }

    /// The connection is gone: forget everything not acknowledged and read
    /// again from the store, from the start of the queue.
    pub fn reset(&mut self) {
        self.cursor = 0;
        self.awaiting_pkid.clear();
        self.in_flight.clear();
    }
}

/// Groups rows into publishes: consecutive rows with the same key (source
/// and message type, which decide the topic) share a publish, at most
/// `max` rows each. Order is kept.
pub fn group_consecutive<T, K: PartialEq>(
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    max: usize,
) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for row in rows {
        match groups.last_mut() {
            Some(g) if g.len() < max.max(1) && g.first().is_some_and(|f| key(f) == key(&row)) => {
                g.push(row)
            }
            _ => groups.push(vec![row]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_forwarded_only_after_their_puback() {
        let mut s = ForwardState::new(4);
        s.requested(vec![1, 2]);
        s.requested(vec![3]);
        assert_eq!(s.on_outgoing_publish(7), Effect::None);
        assert_eq!(s.on_outgoing_publish(8), Effect::None);
        assert_eq!(s.on_puback(8, true), Effect::Forwarded(vec![3]));
        assert_eq!(s.on_puback(7, true), Effect::Forwarded(vec![1, 2]));
        assert_eq!(s.outstanding(), 0);
        assert_eq!(s.cursor(), 3);
    }

    #[test]
    fn the_window_limits_outstanding_publishes() {
        let mut s = ForwardState::new(2);
        s.requested(vec![1]);
        assert_eq!(s.free_slots(), 1);
        s.requested(vec![2]);
        assert_eq!(s.free_slots(), 0);
        s.on_outgoing_publish(1);
        s.on_puback(1, true);
        assert_eq!(s.free_slots(), 1);
    }

    #[test]
    fn a_failed_puback_keeps_the_rows_and_asks_for_reconnect() {
        let mut s = ForwardState::new(2);
        s.requested(vec![5]);
        s.on_outgoing_publish(1);
        assert!(matches!(s.on_puback(1, false), Effect::Reconnect(_)));
    }

    #[test]
    fn reset_rereads_from_the_start_of_the_queue() {
        let mut s = ForwardState::new(2);
        s.requested(vec![10, 11]);
        s.on_outgoing_publish(1);
        s.reset();
        assert_eq!(s.cursor(), 0);
        assert_eq!(s.outstanding(), 0);
        assert_eq!(s.on_puback(1, true), Effect::None);
    }

    #[test]
    fn publishes_without_rows_share_the_packet_id_order() {
        let mut s = ForwardState::new(4);
        s.requested_other();
        s.requested(vec![1]);
        s.on_outgoing_publish(1);
        s.on_outgoing_publish(2);
        assert_eq!(s.on_puback(1, true), Effect::None);
        assert_eq!(s.on_puback(2, true), Effect::Forwarded(vec![1]));
    }

    #[test]
    fn a_heartbeat_between_record_publishes_does_not_shift_their_pubacks() {
        let mut s = ForwardState::new(8);
        s.requested(vec![1, 2]);
        s.requested_other(); // heartbeat
        s.requested(vec![3]);
        assert_eq!(s.on_outgoing_publish(10), Effect::None);
        assert_eq!(s.on_outgoing_publish(11), Effect::None);
        assert_eq!(s.on_outgoing_publish(12), Effect::None);
        // The heartbeat's PUBACK first: it forwards nothing.
        assert_eq!(s.on_puback(11, true), Effect::None);
        assert_eq!(s.on_puback(12, true), Effect::Forwarded(vec![3]));
        assert_eq!(s.on_puback(10, true), Effect::Forwarded(vec![1, 2]));
        assert_eq!(s.outstanding(), 0);
        assert_eq!(s.cursor(), 3, "a heartbeat does not move the cursor");
    }

    #[test]
    fn unknown_pubacks_are_ignored_and_unrequested_pkids_force_reconnect() {
        let mut s = ForwardState::new(2);
        assert_eq!(s.on_puback(9, true), Effect::None);
        assert!(matches!(s.on_outgoing_publish(3), Effect::Reconnect(_)));
    }

    #[test]
    fn consecutive_rows_with_the_same_topic_share_a_publish() {
        let rows = vec![("a", 1), ("a", 2), ("b", 3), ("a", 4), ("a", 5), ("a", 6)];
        let groups = group_consecutive(rows, |r| r.0, 2);
        let seqs: Vec<Vec<i32>> = groups
            .iter()
            .map(|g| g.iter().map(|r| r.1).collect())
            .collect();
        assert_eq!(seqs, vec![vec![1, 2], vec![3], vec![4, 5], vec![6]]);
    }
}
