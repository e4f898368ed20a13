//! Timestamps in UTC that remember their original precision and offset.

use serde::{Deserialize, Serialize};

/// How precise the original HL7 DTM/TS was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Precision {
    /// `YYYY`
    Year,
    /// `YYYYMM`
    Month,
    /// `YYYYMMDD` (dates of birth, for example)
    Day,
    /// `YYYYMMDDHH`
    Hour,
    /// `YYYYMMDDHHMM`
    Minute,
    /// `YYYYMMDDHHMMSS`
    Second,
    /// With fractional seconds (kept to the millisecond).
    Fraction,
}

/// A point in time: the start of the period the sender wrote, in UTC.
///
/// `utc_ms + offset_minutes` gives back the sender's local wall time, so a
/// date of birth (`Day` precision) still reads as the same calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub utc_ms: i64,
    /// Precision of the original value.
    pub precision: Precision,
    /// The UTC offset of the original value, in minutes.
    pub offset_minutes: i16,
    /// True when the value had no offset and the site's time zone was used.
    pub zone_assumed: bool,
}
