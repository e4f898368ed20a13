//! Frames built to make the message path work hard: the shapes that made
//! it quadratic once (many distinct segment ids, a warning on every
//! segment, long repeated fields), a typical ORU of the same size to
//! compare with, and the whole path a listener runs on a frame.
//!
//! Shared by `tests/linear_time.rs` and `examples/heavy_frame.rs` (which
//! runs them under a profiler).

#![allow(dead_code)]

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::ack::{self, AckHeader, AckMode, Outcome, erl};
use hl7edge_protocol::hl7::validate::{self, Validation};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::profile::{InterfaceProfile, ProfileConfig};
use hl7edge_protocol::wire::StoredRecord;

/// The worst cases, by name.
pub const SHAPES: &[Shape] = &[
    Shape::DistinctSegments,
    Shape::WarningPerSegment,
    Shape::Series,
    Shape::TrailingComponents,
    Shape::RepeatedFlags,
    Shape::BadDates,
    Shape::Escapes,
    Shape::MergedIdentifiers,
];

/// A kind of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A typical lab result: an ORU whose OBX repeat a handful of codes
    /// with numbers, units, ranges and flags (the yardstick).
    TypicalOru,
    /// Segments of short, distinct ids (every three-character id a sender
    /// may use), a few bytes each: 150,000 in 1 MiB.
    DistinctSegments,
    /// An ORU whose every OBX has its own code and unit and a value that
    /// is not a number: a warning and an unmapped code per segment.
    WarningPerSegment,
    /// One OBX whose NA value is a series of numbers filling the frame.
    Series,
    /// One OBX whose NM value is followed by empty components.
    TrailingComponents,
    /// One OBX with a repeated abnormal flag filling the frame.
    RepeatedFlags,
    /// An OBR whose observation time repeats an invalid date.
    BadDates,
    /// NTE segments full of escape sequences that are not HL7's.
    Escapes,
    /// An identity merge with one MRG per segment.
    MergedIdentifiers,
}

/// A frame of `shape` of about `bytes` bytes.
pub fn frame(shape: Shape, bytes: usize) -> Vec<u8> {
    let header = |kind: &str| {
        format!(
            "MSH|^~\\&|LAB|F|EHR|C|20240101120000||{kind}|C1|P|2.5.1\rPID|1||123^^^H^MR||DOE^J\r"
        )
    };
    let mut out = match shape {
        Shape::DistinctSegments | Shape::Escapes => header("ADT^A08"),
        Shape::MergedIdentifiers => header("ADT^A40").replace("\rPID", "\rEVN|A40|20240101\rPID"),
        _ => header("ORU^R01") + "OBR|1||F1|P^Panel^L|||20240101110000\r",
    };
    let mut n = 0usize;
    while out.len() < bytes {
        push_piece(shape, n, &mut out);
        n += 1;
    }
    if !matches!(
        shape,
        Shape::TypicalOru
            | Shape::DistinctSegments
            | Shape::WarningPerSegment
            | Shape::Escapes
            | Shape::MergedIdentifiers
    ) {
        out.push_str("|||F\r");
    }
    out.into_bytes()
}

/// Appends the `n`th piece of a frame of `shape`.
fn push_piece(shape: Shape, n: usize, out: &mut String) {
    match shape {
        Shape::TypicalOru => {
            let (code, unit, low, high) = TYPICAL[n % TYPICAL.len()];
            out.push_str(&format!(
                "OBX|{}|NM|{code}^Test {code}^LN||{}.{}|{unit}^{unit}^UCUM|{low}-{high}|N|||F|||20240101110000\r",
                n + 1,
                low + n % 7,
                n % 10
            ));
        }
        Shape::DistinctSegments => {
            out.push_str(&segment_id(n));
            out.push_str(&format!("|{}\r", n % 10));
        }
        Shape::WarningPerSegment => {
            out.push_str(&format!("OBX|{}|NM|C{n}^Test^L||x{n}|u{n}|||||F\r", n + 1))
        }
        Shape::Series if n == 0 => out.push_str("OBX|1|NA|WAVE^Wave^MDC||1"),
        Shape::Series => out.push_str(&format!("^{}", n % 100)),
        Shape::TrailingComponents if n == 0 => out.push_str("OBX|1|NM|GLU^Glucose^L||5.4"),
        Shape::TrailingComponents => out.push('^'),
        Shape::RepeatedFlags if n == 0 => out.push_str("OBX|1|NM|GLU^Glucose^L||5.4|mg/dL||H"),
        Shape::RepeatedFlags => out.push_str(&format!("~F{n}")),
        Shape::BadDates if n == 0 => out.push_str("OBR|2||F2|X^Y^L|||2024"),
        Shape::BadDates => out.push_str("~x"),
        Shape::Escapes => out.push_str(&format!("NTE|{n}||a\\Q{n}\\b\\X4\\c\\.sp\\\r")),
        Shape::MergedIdentifiers => out.push_str(&format!("MRG|M{n}^^^H^MR\r")),
    }
}

/// Codes, units and ranges of a typical chemistry panel.
const TYPICAL: &[(&str, &str, usize, usize)] = &[
    ("2345-7", "mg/dL", 70, 99),
    ("2951-2", "mmol/L", 136, 145),
    ("2823-3", "mmol/L", 3, 5),
    ("2075-0", "mmol/L", 98, 107),
    ("2028-9", "mmol/L", 22, 29),
    ("3094-0", "mg/dL", 7, 20),
    ("2160-0", "mg/dL", 1, 2),
    ("17861-6", "mg/dL", 8, 10),
];

/// The `n`th three-character segment id (an uppercase letter, then two
/// uppercase letters or digits), skipping the ids that start a message or
/// a batch, the patient and the merge.
fn segment_id(n: usize) -> String {
    const FIRST: &[u8] = b"ABCDEFGHIJKLNOQRSTUVWXYZ";
    const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let n = n % (FIRST.len() * REST.len() * REST.len());
    let a = FIRST[n / (REST.len() * REST.len())];
    let b = REST[n / REST.len() % REST.len()];
    let c = REST[n % REST.len()];
    String::from_utf8(vec![a, b, c]).unwrap_or_default()
}

/// What the listener makes of one frame: the ACK bytes and, for an
/// accepted message, the stored record's size.
pub struct Processed {
    /// The ACK (original mode).
    pub ack: Vec<u8>,
    /// The encoded record, when the message was accepted.
    pub record_bytes: Option<usize>,
    /// Whether the message was accepted.
    pub accepted: bool,
}

/// Runs what a listener runs on a frame: parse, validate, normalize and
/// encode an accepted message, renumber the ERR locations and build the
/// ACK, and show an accepted message to a drift profile past learning.
pub fn process(raw: &[u8], profile: &mut InterfaceProfile) -> Processed {
    let tz = jiff::tz::TimeZone::UTC;
    let mapping = MappingTable::empty();
    let msg = match Message::parse(raw) {
        Ok(msg) => msg,
        Err(e) => {
            let issues = vec![validate::parse_error_issue(&e)];
            return Processed {
                ack: ack_bytes(&AckHeader::scrape(raw), Outcome::Error { issues }),
                record_bytes: None,
                accepted: false,
            };
        }
    };
    let validation = Validation::of(&msg);
    let accepted = validation.is_acceptable();
    let mut record_bytes = None;
    if accepted {
        let ctx = Context {
            time_zone: &tz,
            mapping: &mapping,
        };
        let normalized = normalize(&msg, validation.issues.clone(), &ctx);
        let stored = StoredRecord {
            mapping_version: mapping.version().clone(),
            record: normalized.record,
        };
        record_bytes = stored.encode().ok().map(|b| b.len());
        profile.observe(&msg);
    }
    let issues = erl::by_occurrence(&msg, validation.issues);
    let outcome = if accepted {
        Outcome::Accepted { issues }
    } else {
        Outcome::Error { issues }
    };
    Processed {
        ack: ack_bytes(&AckHeader::from_message(&msg), outcome),
        record_bytes,
        accepted,
    }
}

/// A drift profile that reports (learning is over).
pub fn reporting_profile() -> InterfaceProfile {
    InterfaceProfile::new(ProfileConfig {
        learning_messages: 0,
        ..ProfileConfig::default()
    })
}

fn ack_bytes(header: &AckHeader, outcome: Outcome) -> Vec<u8> {
    ack::build_acks(
        header,
        &outcome,
        AckMode::Original,
        "20260101000000",
        || "ACK1".to_string(),
    )
    .into_iter()
    .flat_map(|(_, bytes)| bytes)
    .collect()
}
