//! HL7 date/times (DTM, TS, DT) to UTC [`Timestamp`]s.
//!
//! The text is read by [`crate::hl7::datetime`]; this module places it in
//! time.
//!
//! A value with a UTC offset (`20240310023000-0500`) is exact. A value
//! without one is read as wall-clock time in the site's time zone (the
//! caller's [`jiff::tz::TimeZone`]) and marked `zone_assumed`. A value with
//! less than full precision (`19901215`, `202403`) stands for the start of
//! the period it names; its precision is kept so the hub can tell a date of
//! birth from a midnight.
//!
//! Wall-clock times that DST makes ambiguous are resolved the way RFC 5545
//! and Temporal's "compatible" mode do, so the same input always gives the
//! same instant:
//! - a time in a gap (spring forward, e.g. 02:30 that never happened) is
//!   read with the offset in force before the gap, i.e. it lands as far
//!   after the gap's start as it was written (02:30 EST = 03:30 EDT);
//! - a time in a fold (fall back, e.g. 01:30 that happened twice) is the
//!   earlier of the two instants (the one still on summer time).
//!
//! `offset_minutes` is always the offset the wall time was read with, so
//! `utc_ms + offset_minutes` gives back the time exactly as written.
//!
//! The zone for times without an offset is the caller's: the site zone,
//! or, when MSH-7 shows the sender's offset and the site zone disagrees
//! with it at that instant, the sender's fixed offset (`header` decides;
//! [`disagrees_with_site`] is its test).

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

use crate::hl7::datetime::{self, HlTimestamp};
use crate::hl7::element::trim;
use crate::record::{Precision, Timestamp};

/// Why an HL7 date/time could not be turned into a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text is not an HL7 DTM (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][±ZZZZ]`)
    /// or names a date or time that does not exist (month 13, 30 February).
    #[error("not a valid HL7 date/time")]
    Malformed,
    /// The date is valid but outside the range a timestamp can hold.
    #[error("date/time out of the supported range")]
    OutOfRange,
}

/// Converts an HL7 DTM (or the first component of a TS) to UTC.
///
/// `site` is the zone for values sent without an offset (the site zone or
/// the sender's offset, see the module doc).
pub fn to_timestamp(text: &str, site: &TimeZone) -> Result<Timestamp, TimeError> {
    let parts = datetime::parse_ts(trim(text)).ok_or(TimeError::Malformed)?;
    from_parts(&parts, site)
}

/// True when `ts` was sent with an explicit UTC offset that differs from
/// the `site` zone's offset at the same instant.
pub(crate) fn disagrees_with_site(ts: &Timestamp, site: &TimeZone) -> bool {
    if ts.zone_assumed {
        return false;
    }
    let Ok(instant) = jiff::Timestamp::from_millisecond(ts.utc_ms) else {
        return false;
    };
    site.to_offset(instant).seconds() != i32::from(ts.offset_minutes) * 60
}

/// Converts parsed DTM parts to UTC (see the module doc for DST rules).
fn from_parts(parts: &HlTimestamp, site: &TimeZone) -> Result<Timestamp, TimeError> {
    let field = |n: u8| i8::try_from(n).map_err(|_| TimeError::Malformed);
    let civil = DateTime::new(
        i16::try_from(parts.year).map_err(|_| TimeError::OutOfRange)?,
        field(parts.month)?,
        field(parts.day)?,
        field(parts.hour)?,
        field(parts.minute)?,
        field(parts.second)?,
        i32::try_from(parts.nanosecond / 1_000_000 * 1_000_000)
            .map_err(|_| TimeError::Malformed)?,
    )
    .map_err(|_| TimeError::Malformed)?;
    let (offset, zone_assumed) = match parts.offset_minutes {
        Some(minutes) => (
            Offset::from_seconds(i32::from(minutes) * 60).map_err(|_| TimeError::Malformed)?,
            false,
        ),
        None => (site_offset(site, civil), true),
    };
    let instant = offset
        .to_timestamp(civil)
        .map_err(|_| TimeError::OutOfRange)?;
    Ok(Timestamp {
        utc_ms: instant.as_millisecond(),
        precision: precision(parts.precision),
        offset_minutes: i16::try_from(offset.seconds() / 60).map_err(|_| TimeError::OutOfRange)?,
        zone_assumed,
    })
}

/// The site zone's offset for a wall-clock time, gaps and folds resolved
/// with the offset before the transition ("compatible").
fn site_offset(site: &TimeZone, civil: DateTime) -> Offset {
    match site.to_ambiguous_timestamp(civil).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { before, .. } | AmbiguousOffset::Fold { before, .. } => before,
    }
}

/// The record's precision for the parser's.
fn precision(p: datetime::Precision) -> Precision {
    match p {
        datetime::Precision::Year => Precision::Year,
        datetime::Precision::Month => Precision::Month,
        datetime::Precision::Day => Precision::Day,
        datetime::Precision::Hour => Precision::Hour,
        datetime::Precision::Minute => Precision::Minute,
        datetime::Precision::Second => Precision::Second,
        datetime::Precision::Fraction => Precision::Fraction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// US Eastern with the post-2007 rules, independent of the host tzdata.
    fn eastern() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    fn utc_string(ts: Timestamp) -> String {
        jiff::Timestamp::from_millisecond(ts.utc_ms)
            .unwrap()
            .to_string()
    }

    #[test]
    fn an_explicit_offset_wins_over_the_site_zone() {
        let ts = to_timestamp("20141006064500+0700", &eastern()).unwrap();
        assert_eq!(utc_string(ts), "2014-10-05T23:45:00Z");
        assert_eq!(ts.offset_minutes, 420);
        assert!(!ts.zone_assumed);
        assert_eq!(ts.precision, Precision::Second);
    }

    #[test]
    fn a_time_without_offset_is_read_in_the_site_zone() {
        let ts = to_timestamp("20240715173000", &eastern()).unwrap();
        assert_eq!(utc_string(ts), "2024-07-15T21:30:00Z");
        assert_eq!(ts.offset_minutes, -240);
        assert!(ts.zone_assumed);
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_by_the_gap() {
        let ts = to_timestamp("202403100230", &eastern()).unwrap();
        assert_eq!(utc_string(ts), "2024-03-10T07:30:00Z");
        assert_eq!(ts.offset_minutes, -300);
    }

    #[test]
    fn a_time_in_the_autumn_fold_is_the_earlier_instant() {
        let ts = to_timestamp("202411030130", &eastern()).unwrap();
        assert_eq!(utc_string(ts), "2024-11-03T05:30:00Z");
        assert_eq!(ts.offset_minutes, -240);
    }

    #[test]
    fn a_date_is_the_local_midnight_and_keeps_its_calendar_day() {
        let ts = to_timestamp("19901215", &eastern()).unwrap();
        assert_eq!(ts.precision, Precision::Day);
        assert_eq!(utc_string(ts), "1990-12-15T05:00:00Z");
        let wall = ts.utc_ms + i64::from(ts.offset_minutes) * 60_000;
        assert_eq!(
            jiff::Timestamp::from_millisecond(wall).unwrap().to_string(),
            "1990-12-15T00:00:00Z"
        );
    }

    #[test]
    fn an_explicit_offset_is_compared_with_the_site_zone_at_that_instant() {
        let summer = to_timestamp("20240715173000-0400", &eastern()).unwrap();
        let winter = to_timestamp("20240115173000-0400", &eastern()).unwrap();
        let paris = to_timestamp("20240715173000+0200", &eastern()).unwrap();
        let assumed = to_timestamp("20240715173000", &eastern()).unwrap();
        assert!(!disagrees_with_site(&summer, &eastern()));
        assert!(disagrees_with_site(&winter, &eastern()));
        assert!(disagrees_with_site(&paris, &eastern()));
        assert!(!disagrees_with_site(&assumed, &eastern()));
    }

    #[test]
    fn fractions_are_kept_to_the_millisecond() {
        let ts = to_timestamp("20240102030405.1234+0000", &TimeZone::UTC).unwrap();
        assert_eq!(ts.precision, Precision::Fraction);
        assert_eq!(ts.utc_ms % 1000, 123);
    }

    #[test]
    fn reduced_precisions_are_reported() {
        let cases = [
            ("2024", Precision::Year),
            ("202402", Precision::Month),
            ("2024020112", Precision::Hour),
            ("202402011230", Precision::Minute),
        ];
        for (text, want) in cases {
            assert_eq!(
                to_timestamp(text, &TimeZone::UTC).unwrap().precision,
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn impossible_dates_and_junk_are_refused() {
        for bad in [
            "20240230",
            "20241301",
            "2024010125",
            "abc",
            "",
            "1994050216163360",
        ] {
            assert_eq!(
                to_timestamp(bad, &TimeZone::UTC),
                Err(TimeError::Malformed),
                "{bad}"
            );
        }
    }
}
