//! hl7edge protocol crate: everything about HL7 v2, normalized records and
//! the wire format that does not need IO.
//!
//! Sans-IO by rule: no tokio, no sockets, no files, no clocks. Callers pass
//! bytes in and get values out; time is passed in where it matters. That
//! keeps every function here unit-testable and fuzzable.

pub mod broker_url;
pub mod enroll;
pub mod fhir;
pub mod hl7;
pub mod normalize;
mod postcard_append;
pub mod profile;
pub mod push;
pub mod receipt;
pub mod record;
mod serde_util;
pub mod telemetry;
pub mod topic;
pub mod wire;
pub mod x509;
