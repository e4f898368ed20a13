//! Records an older build queued, made current before they are sent.
//!
//! A row keeps the raw HL7 it was received as and the record that build
//! encoded (stored records start with their wire schema version). After an
//! upgrade the forwarder may find rows of the previous schema in the queue:
//! copying their bytes into a current envelope would mis-encode them, and
//! leaving them would strand them. Each such row is normalized again from
//! its raw HL7, as its interface (listener) is configured now, so it reaches
//! the hub as complete as a new message would; its id, sequence number and
//! receive time do not change.
//!
//! Invariants (pure, no IO):
//! - A current stored record is never touched ([`is_current`]).
//! - An older one is re-normalized from `raw` when its interface is still
//!   configured and `raw` parses; else, when its schema is one this build
//!   still reads (schema 2), the record it stored is carried over as it
//!   was (nothing it said is lost); else it is refused with a reason, and
//!   the forwarder keeps the row, as before.

use std::collections::HashMap;

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::wire::{SCHEMA_VERSION, StoredRecord, WireError};

/// How one interface normalizes messages: what re-normalizing needs.
#[derive(Debug, Clone)]
pub struct Normalization {
    /// The interface's zone for times without an offset.
    pub time_zone: jiff::tz::TimeZone,
    /// The interface's mapping table when the agent started (a pushed table counts from the
    /// next start: rows queued by another build are made current while the backlog drains).
    pub mapping: std::sync::Arc<MappingTable>,
}

/// Every configured interface's normalization, by interface name.
pub type Interfaces = HashMap<String, Normalization>;

/// How an older stored record was made current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgraded {
    /// Normalized again from the raw HL7.
    Renormalized,
    /// Its interface is gone or its raw HL7 does not parse: the record
    /// the older build stored, read into the current model.
    CarriedOver,
}

/// True when `stored` is of this build's schema (the forwarder copies it
/// as it is).
pub fn is_current(stored: &[u8]) -> bool {
    StoredRecord::version(stored).is_ok_and(|v| v == SCHEMA_VERSION)
}

/// The current stored form of `stored` (of an older schema), received as
/// `raw` on an interface normalized as `how` (`None` when the interface is
/// no longer configured).
pub fn upgrade(
    stored: &[u8],
    raw: &[u8],
    how: Option<&Normalization>,
) -> Result<(Vec<u8>, Upgraded), WireError> {
    if let Some(how) = how
        && let Ok(msg) = Message::parse(raw)
    {
        let validation = Validation::of(&msg);
        let ctx = Context {
            time_zone: &how.time_zone,
            mapping: &how.mapping,
        };
        let record = normalize(&msg, validation.issues, &ctx).record;
        let current = StoredRecord {
            mapping_version: how.mapping.version().clone(),
            record,
        };
        return Ok((current.encode()?, Upgraded::Renormalized));
    }
    let old = StoredRecord::decode(stored)?;
    Ok((old.encode()?, Upgraded::CarriedOver))
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::record::Body;

    use super::*;

    /// A record the previous release (wire schema 2) stored for `ORU`,
    /// taken from the schema 2 fixture: the same message, encoded by it.
    fn schema2_stored() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema2-queue/stored-oru.bin"
        );
        std::fs::read(path).expect("fixture")
    }

    const ORU: &str = "MSH|^~\\&|LAB|MAIN|EHR|CLINIC|20261122101500+0100||ORU^R01|C1|P|2.5.1\r\
        PID|1||4711^^^CLINIC^MR||DOE^JANE\r\
        OBR|1|O1|F1|24323-8^Panel^LN\r\
        OBX|1|NM|2345-7^Glucose^LN||112|mg/dL^mg/dL^UCUM|70-99|H|||F\r\
        NTE|1|L|hemolyzed\r";

    fn lab() -> Normalization {
        Normalization {
            time_zone: jiff::tz::TimeZone::UTC,
            mapping: std::sync::Arc::new(MappingTable::empty()),
        }
    }

    #[test]
    fn a_schema_2_row_is_normalized_again_from_its_raw_hl7() {
        let old = schema2_stored();
        assert!(!is_current(&old));
        let (current, how) = upgrade(&old, ORU.as_bytes(), Some(&lab())).unwrap();
        assert_eq!(how, Upgraded::Renormalized);
        assert!(is_current(&current));
        let record = StoredRecord::decode(&current).unwrap().record;
        let Body::Observations(report) = record.body else {
            panic!("{:?}", record.body)
        };
        // What schema 2 had no place for is there now.
        assert_eq!(report.orders[0].observations[0].notes[0].text, "hemolyzed");
    }

    #[test]
    fn without_its_interface_a_schema_2_row_keeps_what_it_said() {
        let old = schema2_stored();
        let (current, how) = upgrade(&old, ORU.as_bytes(), None).unwrap();
        assert_eq!(how, Upgraded::CarriedOver);
        let carried = StoredRecord::decode(&current).unwrap();
        assert_eq!(carried, StoredRecord::decode(&old).unwrap());
        let (again, how) = upgrade(&old, b"not hl7", Some(&lab())).unwrap();
        assert_eq!((again, how), (current, Upgraded::CarriedOver));
    }

    #[test]
    fn a_row_of_an_unknown_schema_is_refused() {
        let mut newer = schema2_stored();
        newer[0] = 9;
        assert!(matches!(
            upgrade(&newer, b"not hl7", None),
            Err(WireError::UnknownSchema { found: 9, .. })
        ));
    }
}
