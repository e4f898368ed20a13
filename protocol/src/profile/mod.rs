//! Per-interface profiles that notice drift: a lab system upgrade or
//! reconfiguration that changes what an interface sends.
//!
//! An [`InterfaceProfile`] learns the structural [`Facts`] of the first
//! [`ProfileConfig::learning_messages`] messages it is shown; after that,
//! each fact never seen before is reported once as a [`Drift`] (and then
//! learned, so it is not reported again).
//!
//! Invariants:
//! - Sans-IO and no PHI: only message types, versions, sending
//!   applications, segment ids, coding systems, observation codes, units
//!   and value types, never values or identifiers (see [`facts`]).
//! - Bounded memory: each set holds at most [`ProfileConfig::max_entries`]
//!   facts of at most [`facts::MAX_FACT_LEN`] bytes. A full set stops
//!   learning and reporting, and says so once ([`Drift::Saturated`]).
//! - Nothing is persisted: a profile re-learns from scratch when rebuilt.

pub mod facts;
mod sets;

use std::fmt;

pub use facts::{Facts, Observation};
use sets::{Bounded, Insert};

use crate::hl7::Message;

/// How a profile learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileConfig {
    /// Messages learned from before new facts count as drift.
    pub learning_messages: u64,
    /// Most facts kept per set.
    pub max_entries: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            learning_messages: 50,
            max_entries: 512,
        }
    }
}

/// A change in what an interface sends, described in plain words by its
/// `Display` (e.g. `unit for GLU changed: mg/dL → mmol/L`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// A message type never seen on this interface.
    MessageType {
        /// The new `code^event`.
        new: String,
    },
    /// An HL7 version (MSH-12) never seen.
    Version {
        /// The new version.
        new: String,
        /// The versions seen before, comma separated.
        was: String,
    },
    /// A sending application (MSH-3.1) never seen.
    SendingApplication {
        /// The new application.
        new: String,
        /// The applications seen before, comma separated.
        was: String,
    },
    /// A segment id never seen.
    Segment {
        /// The segment id.
        id: String,
    },
    /// A coding system (OBX-3.3) never seen.
    CodeSystem {
        /// The coding system.
        system: String,
    },
    /// An observation code never seen.
    ObservationCode {
        /// The code (OBX-3.1).
        code: String,
    },
    /// A known observation code with a unit never seen for it.
    Unit {
        /// The code (OBX-3.1).
        code: String,
        /// The new unit (empty when none was sent).
        new: String,
        /// The units seen before for this code, comma separated.
        was: String,
    },
    /// A known observation code with a value type (OBX-2) never seen for it.
    ValueType {
        /// The code (OBX-3.1).
        code: String,
        /// The new value type.
        new: String,
    },
    /// A set reached its cap: it stops learning and reporting.
    Saturated {
        /// Which set, in words (`segment ids`).
        set: &'static str,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::MessageType { new } => write!(f, "new message type {new}"),
            Drift::Version { new, was } => write!(f, "new HL7 version {new} (was {was})"),
            Drift::SendingApplication { new, was } => {
                write!(f, "new sending application {new} (was {was})")
            }
            Drift::Segment { id } => write!(f, "new segment {id}"),
            Drift::CodeSystem { system } => write!(f, "new coding system {system}"),
            Drift::ObservationCode { code } => write!(f, "new observation code {code}"),
            Drift::Unit { code, new, was } => {
                let new = if new.is_empty() { "(none)" } else { new };
                write!(f, "unit for {code} changed: {was} → {new}")
            }
            Drift::ValueType { code, new } => write!(f, "new value type {new} for {code}"),
            Drift::Saturated { set } => {
                write!(f, "too many distinct {set}: no longer learned or checked")
            }
        }
    }
}

/// What one interface has been seen to send.
#[derive(Debug, Clone)]
pub struct InterfaceProfile {
    config: ProfileConfig,
    seen: u64,
    message_types: Bounded,
    versions: Bounded,
    applications: Bounded,
    segments: Bounded,
    systems: Bounded,
    codes: Bounded,
    units: Bounded,
    value_types: Bounded,
    /// Scratch for the `code` + unit keys (no PHI: structural facts only).
    key: String,
}

impl InterfaceProfile {
    /// An empty profile, learning.
    pub fn new(config: ProfileConfig) -> Self {
        let set = |name| Bounded::new(name, config.max_entries);
        InterfaceProfile {
            config,
            seen: 0,
            message_types: set("message types"),
            versions: set("HL7 versions"),
            applications: set("sending applications"),
            segments: set("segment ids"),
            systems: set("coding systems"),
            codes: set("observation codes"),
            units: set("units"),
            value_types: set("value types"),
            key: String::new(),
        }
    }

    /// True while the profile is still in its learning phase.
    pub fn is_learning(&self) -> bool {
        self.seen < self.config.learning_messages
    }

    /// Learns from an accepted message; returns what is new about it
    /// (always empty during the learning phase).
    pub fn observe(&mut self, msg: &Message<'_>) -> Vec<Drift> {
        self.observe_facts(&Facts::of(msg))
    }

    /// [`Self::observe`] for facts already extracted.
    pub fn observe_facts(&mut self, facts: &Facts<'_>) -> Vec<Drift> {
        let report = !self.is_learning();
        self.seen = self.seen.saturating_add(1);
        let mut out = Drift::sink(report);
        if let Some(t) = &facts.message_type {
            let r = self.message_types.insert(t);
            out.push(r, || Drift::MessageType { new: t.clone() });
        }
        if let Some(v) = &facts.version {
            let r = self.versions.insert(v);
            out.push(r, || Drift::Version {
                new: v.to_string(),
                was: self.versions.joined_except(v),
            });
        }
        if let Some(a) = &facts.sending_application {
            let r = self.applications.insert(a);
            out.push(r, || Drift::SendingApplication {
                new: a.to_string(),
                was: self.applications.joined_except(a),
            });
        }
        for id in &facts.segments {
            let r = self.segments.insert(id);
            out.push(r, || Drift::Segment { id: id.to_string() });
        }
        for obs in &facts.observations {
            self.observe_obx(obs, &mut out);
        }
        out.drifts
    }

    fn observe_obx(&mut self, obs: &Observation<'_>, out: &mut Sink) {
        if let Some(system) = &obs.system {
            let r = self.systems.insert(system);
            out.push(r, || Drift::CodeSystem {
                system: system.to_string(),
            });
        }
        let code = &obs.code;
        let new_code = self.codes.insert(code);
        out.push(new_code, || Drift::ObservationCode {
            code: code.to_string(),
        });
        // For a new code (or one past the cap), its unit and value type are
        // part of the news, not news of their own.
        let known = new_code == Insert::Known;
        let unit = obs.unit.as_deref().unwrap_or_default();
        // `code` + U+001F + unit (or value type), built in a buffer kept
        // between messages: a known pair costs a lookup, no allocation.
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        key.push_str(code);
        key.push('\u{1f}');
        let prefix_len = key.len();
        key.push_str(unit);
        let r = self.units.insert(&key);
        if known {
            out.push(r, || Drift::Unit {
                code: code.to_string(),
                new: unit.to_owned(),
                was: self
                    .units
                    .joined_with_prefix(key.get(..prefix_len).unwrap_or_default(), &key),
            });
        }
        if let Some(vt) = &obs.value_type {
            key.truncate(prefix_len);
            key.push_str(vt);
            let r = self.value_types.insert(&key);
            if known {
                out.push(r, || Drift::ValueType {
                    code: code.to_string(),
                    new: vt.to_string(),
                });
            }
        }
        self.key = key;
    }
}

impl Default for InterfaceProfile {
    fn default() -> Self {
        InterfaceProfile::new(ProfileConfig::default())
    }
}

/// Collects the drifts of one message.
struct Sink {
    report: bool,
    drifts: Vec<Drift>,
}

impl Drift {
    fn sink(report: bool) -> Sink {
        Sink {
            report,
            drifts: Vec::new(),
        }
    }
}

impl Sink {
    fn push(&mut self, result: Insert, drift: impl FnOnce() -> Drift) {
        match result {
            Insert::Added if self.report => self.drifts.push(drift()),
            Insert::Saturated(set) => self.drifts.push(Drift::Saturated { set }),
            Insert::Added | Insert::Known | Insert::Full => {}
        }
    }
}

#[cfg(test)]
mod tests;
