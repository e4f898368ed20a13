//! Synthetic HL7 v2 messages for the demo: a lab analyzer's ORU^R01 (CBC
//! and chemistry panels), a bedside monitor's IHE PCD-01 ORU^R01, and one
//! malformed message.
//!
//! Everything here is made up: patients are `DEMOPATIENT^<NATO letter>`,
//! identifiers start with `DEMO-`, device ids are fake EUI-64s. Values vary
//! per message (deterministically, from the message number) around the
//! reference ranges, so some results carry H/L flags. Segments end with
//! `\r` as HL7 requires; no message contains an MLLP framing byte.

mod lab;
mod monitor;

pub(super) use lab::{lab_result, malformed};
pub(super) use monitor::vital_signs;

use hl7edge_protocol::record::Decimal;

/// What a message is meant to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A well-formed message the gateway stores and forwards.
    Valid,
    /// A message the gateway must refuse with AE and keep in quarantine.
    Malformed,
    /// A byte-identical resend of an earlier message.
    Resend,
}

/// One message a simulated sender sends.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    /// MSH-10.
    pub control_id: String,
    /// What it is, for the output (`CBC panel`, `vital signs`).
    pub label: &'static str,
    /// What it demonstrates.
    pub kind: Kind,
    /// The HL7 text (segments separated by `\r`).
    pub bytes: Vec<u8>,
}

impl Outgoing {
    /// The same bytes sent again, as a sender does when it missed the ACK.
    pub fn resend(&self) -> Outgoing {
        Outgoing {
            kind: Kind::Resend,
            ..self.clone()
        }
    }
}

/// Fake patients: obviously not real people.
const PATIENTS: [&str; 6] = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT"];

/// `PID` of the `n`-th fake patient of a sender (`prefix` keeps the lab's
/// and the monitors' patients apart).
fn pid(n: usize, prefix: u32) -> String {
    let given = PATIENTS.get(n % PATIENTS.len()).copied().unwrap_or("ALPHA");
    let number = u64::from(prefix) * 1000 + (n % PATIENTS.len()) as u64 + 1;
    let year = 1950 + (n * 7) % 50;
    let sex = if n.is_multiple_of(2) { "F" } else { "M" };
    format!(
        "PID|1||DEMO-{number}^^^DEMOHOSP^MR||DEMOPATIENT^{given}^^^^^L||{year}0{m}1{d}|{sex}",
        m = 1 + n % 9,
        d = n % 10,
    )
}

/// An HL7 DTM with offset: `20260412093015+0200`.
fn dtm(t: &jiff::Zoned) -> String {
    t.strftime("%Y%m%d%H%M%S%z").to_string()
}

/// `t` minus `minutes` (saturating at `t` if the calendar cannot go back).
fn minutes_before(t: &jiff::Zoned, minutes: i64) -> jiff::Zoned {
    t.checked_sub(jiff::Span::new().minutes(minutes))
        .unwrap_or_else(|_| t.clone())
}

/// A measured value: a number around a reference range.
#[derive(Debug, Clone, Copy)]
struct Range {
    /// Digits after the point of every number.
    scale: u8,
    /// Reference range, as mantissas at `scale`.
    low: i64,
    high: i64,
    /// The values the simulation draws from (a little wider than the range).
    min: i64,
    max: i64,
}

impl Range {
    /// The value of message `n` for the analyte salted with `salt`.
    fn value(self, n: usize, salt: u64) -> Decimal {
        let span = u64::try_from(self.max - self.min + 1).unwrap_or(1).max(1);
        let offset = i64::try_from(mix(n as u64, salt) % span).unwrap_or(0);
        Decimal {
            mantissa: self.min + offset,
            scale: self.scale,
        }
    }

    /// OBX-7, e.g. `12.0-16.0`.
    fn text(self) -> String {
        format!("{}-{}", self.decimal(self.low), self.decimal(self.high))
    }

    /// OBX-8 for a value: `L`, `H` or `N`.
    fn flag(self, value: Decimal) -> &'static str {
        if value.mantissa < self.low {
            "L"
        } else if value.mantissa > self.high {
            "H"
        } else {
            "N"
        }
    }

    fn decimal(self, mantissa: i64) -> Decimal {
        Decimal {
            mantissa,
            scale: self.scale,
        }
    }
}

/// A small deterministic mixer (splitmix64 finalizer): the same message
/// number always gives the same values.
fn mix(n: u64, salt: u64) -> u64 {
    let mut z = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Range = Range {
        scale: 1,
        low: 120,
        high: 160,
        min: 105,
        max: 170,
    };

    #[test]
    fn values_stay_within_the_simulated_spread_and_repeat_per_message() {
        for n in 0..200 {
            let v = HB.value(n, 7);
            assert!((105..=170).contains(&v.mantissa), "{v}");
            assert_eq!(v, HB.value(n, 7));
        }
    }

    #[test]
    fn flags_follow_the_reference_range() {
        assert_eq!(HB.flag(HB.decimal(119)), "L");
        assert_eq!(HB.flag(HB.decimal(120)), "N");
        assert_eq!(HB.flag(HB.decimal(161)), "H");
        assert_eq!(HB.text(), "12.0-16.0");
    }

    #[test]
    fn fake_patients_are_obviously_fake() {
        for n in 0..12 {
            let p = pid(n, 1);
            assert!(p.contains("DEMOPATIENT^"), "{p}");
            assert!(p.contains("|DEMO-1"), "{p}");
        }
    }
}
