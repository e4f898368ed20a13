//! Normalization: turning what a sender wrote into coded, typed values.
//!
//! The terminology layer lives here: [`coding_system`] identifies HL7 coding
//! systems, [`ucum`] translates unit spellings to UCUM, and [`mapping`] holds
//! per-interface tables from local codes and units to standard ones.
//! Everything is sans-IO: tables arrive as text, lookups return borrowed data.
//!
//! On top of it, [`normalize`] turns a parsed message into a [`Record`]:
//! one module per message family (`oru`, `adt`, `orders`, `vxu`), `generic`
//! for every other type, and shared readers for the HL7 data types.
//!
//! Invariants of [`normalize`]:
//! - it never fails and never panics: a message type without a normalizer
//!   gives [`Body::Generic`], and a value that cannot be read gives a
//!   Warning issue (table 0357 code 102 or 103) at its exact location, with
//!   the raw text kept where the record has room for it;
//! - codes are never guessed: a code with no standard coding is
//!   [`Standard::Unmapped`](crate::record::Standard::Unmapped) and listed in
//!   [`Normalized::unmapped`];
//! - times are UTC (see [`time`] for zone and DST rules);
//! - warnings never contain values from the message.

pub mod coding_system;
pub mod mapping;
pub mod time;
pub mod ucum;

mod adt;
mod context;
mod datatypes;
mod generic;
mod header;
mod orders;
mod oru;
mod patient;
mod vxu;

pub use context::{Context, Normalized};

use crate::hl7::{Issue, Message};
use crate::record::{Body, Record};

use context::Work;

/// Normalizes one parsed message.
///
/// `issues` are the validation findings for the message; they are carried
/// unchanged at the front of the record's issues (for an accepted message
/// they are warnings), followed by what normalization found.
pub fn normalize(msg: &Message<'_>, issues: Vec<Issue>, ctx: &Context<'_>) -> Normalized {
    let kind = msg.message_type();
    let mut work = Work::new(*ctx, issues);
    let header = header::header(&mut work, msg, &kind);
    let patient = patient::patient(&mut work, msg);
    let body = match kind.code.as_str() {
        "ORU" => Body::Observations(oru::observations(&mut work, msg)),
        "ADT" => Body::Patient(adt::patient_event(&mut work, msg, header.message_time)),
        "ORM" | "OML" => Body::Orders(orders::orders(&mut work, msg)),
        "VXU" => Body::Immunizations(vxu::immunizations(&mut work, msg)),
        _ => Body::Generic(generic::generic(msg)),
    };
    Normalized {
        record: Record {
            header,
            patient,
            body,
            issues: work.issues,
        },
        unmapped: work.unmapped,
    }
}
