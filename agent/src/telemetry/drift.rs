//! Drift alerts of one interface: its [`InterfaceProfile`] plus the most
//! recent alerts, for the log and the heartbeat.
//!
//! Invariants:
//! - No PHI: the profile keeps and reports structural facts only (see
//!   `hl7edge_protocol::profile`); the log line holds the interface name
//!   and those words.
//! - Bounded: the profile caps its sets and at most [`RECENT`] alerts are
//!   kept, oldest dropped first.
//! - Not persisted: after a restart the profile learns again from scratch
//!   and the list starts empty.

use std::collections::VecDeque;

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::profile::{InterfaceProfile, ProfileConfig};
use tracing::info;

/// How many recent alerts an interface keeps for the heartbeat.
pub const RECENT: usize = 10;

/// The drift profile and recent alerts of one interface.
#[derive(Debug, Default)]
pub struct DriftWatch {
    profile: InterfaceProfile,
    recent: VecDeque<String>,
}

impl DriftWatch {
    /// A watch that learns from the first `learning_messages` messages.
    pub fn new(learning_messages: u64) -> Self {
        DriftWatch {
            profile: InterfaceProfile::new(ProfileConfig {
                learning_messages,
                ..ProfileConfig::default()
            }),
            recent: VecDeque::new(),
        }
    }

    /// Learns from an accepted message of interface `name`; logs and keeps
    /// each drift it shows.
    pub fn observe(&mut self, name: &str, msg: &Message<'_>) {
        for drift in self.profile.observe(msg) {
            let words = drift.to_string();
            info!(listener = %name, drift = %words, "interface drift");
            if self.recent.len() >= RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(words);
        }
    }

    /// The recent alerts, oldest first.
    pub fn recent(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> String {
        format!("MSH|^~\\&|LAB|F|EHR|C|20240101||ORU^R01|C1|P|2.3\rPID|1||123\r{extra}")
    }

    #[test]
    fn alerts_after_learning_are_kept_newest_last_and_bounded() {
        let mut watch = DriftWatch::new(1);
        watch.observe("lab", &Message::parse(msg("").as_bytes()).unwrap());
        assert!(watch.recent().is_empty(), "learning is silent");
        for n in 0..RECENT + 2 {
            let raw = msg(&format!("Z{n:02}|1\r"));
            watch.observe("lab", &Message::parse(raw.as_bytes()).unwrap());
        }
        let recent = watch.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent.first().map(String::as_str), Some("new segment Z02"));
        assert_eq!(recent.last().map(String::as_str), Some("new segment Z11"));
    }
}
