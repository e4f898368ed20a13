//! HL7 date/time values (DTM, and the first component of TS).
//!
//! The grammar is `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`: a
//! value may stop after any part, a fraction needs whole seconds before it,
//! and the optional offset is `+HHMM`/`-HHMM` after whatever precision was
//! sent. [`parse_ts`] is strict about digit counts and ranges (month 1–12,
//! day within its month, leap years, hour 0–23, minute and second 0–59,
//! offset at most ±14:00) and never allocates or panics. It returns the
//! parts as sent; turning them into an instant (applying the offset, or a
//! site time zone when there is none) is left to the caller.

/// How much of a date/time a sender gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYYMM`.
    Month,
    /// `YYYYMMDD`.
    Day,
    /// `YYYYMMDDHH`.
    Hour,
    /// `YYYYMMDDHHMM`.
    Minute,
    /// `YYYYMMDDHHMMSS`.
    Second,
    /// `YYYYMMDDHHMMSS.S` to `.SSSS`.
    Fraction,
}

/// A parsed HL7 date/time, exactly as precise as the sender made it.
///
/// Parts below [`HlTimestamp::precision`] were not sent and hold their
/// smallest value (month and day 1, the rest 0), so the struct always names
/// a real calendar instant at the start of the period sent. The value is
/// local time at [`HlTimestamp::offset_minutes`] east of UTC when an offset
/// was sent, and in an unknown zone otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HlTimestamp {
    /// Year, 1–9999.
    pub year: u16,
    /// Month, 1–12 (1 when not sent).
    pub month: u8,
    /// Day of the month, 1–31 and valid for the month (1 when not sent).
    pub day: u8,
    /// Hour, 0–23 (0 when not sent).
    pub hour: u8,
    /// Minute, 0–59 (0 when not sent).
    pub minute: u8,
    /// Second, 0–59 (0 when not sent).
    pub second: u8,
    /// Fraction of the second in nanoseconds (0 when not sent).
    pub nanosecond: u32,
    /// Number of fraction digits sent, 0–4.
    pub fraction_digits: u8,
    /// The most precise part that was sent.
    pub precision: Precision,
    /// Offset from UTC in minutes (`+0130` is 90, `-0500` is -300), when sent.
    pub offset_minutes: Option<i16>,
}

/// Longest offset HL7 senders use in practice (UTC+14:00, Kiribati).
const MAX_OFFSET_MINUTES: i16 = 14 * 60;

/// Parses an HL7 DTM value (or the first component of a TS).
///
/// Returns `None` for anything that does not follow the grammar exactly:
/// wrong digit counts, out-of-range parts, separators such as `-` or `T`
/// inside the date, spaces, or more than four fraction digits.
pub fn parse_ts(text: &str) -> Option<HlTimestamp> {
    // One pass: the leading digits, then an optional `.` and fraction
    // digits, then an optional signed offset, then nothing.
    let bytes = text.as_bytes();
    let (whole, rest) = bytes.split_at(digit_run(bytes));
    let mut ts = parse_whole(whole)?;
    let rest = match rest {
        [b'.', tail @ ..] => {
            if ts.precision != Precision::Second {
                return None;
            }
            let (fraction, after) = tail.split_at(digit_run(tail));
            let (nanosecond, digits) = parse_fraction(fraction)?;
            ts.nanosecond = nanosecond;
            ts.fraction_digits = digits;
            ts.precision = Precision::Fraction;
            after
        }
        _ => rest,
    };
    ts.offset_minutes = match rest {
        [] => None,
        [sign @ (b'+' | b'-'), digits @ ..] => Some(parse_offset(*sign, digits)?),
        _ => return None,
    };
    Some(ts)
}

/// How many ASCII digits `bytes` starts with.
fn digit_run(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len())
}

/// Reads `YYYY[MM[DD[HH[MM[SS]]]]]` from ASCII digits.
fn parse_whole(digits: &[u8]) -> Option<HlTimestamp> {
    let precision = match digits.len() {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 => Precision::Second,
        _ => return None,
    };
    // Two digits at `at`, or `default` when the value stops before them.
    let pair = |at: usize, default: u8| match digits.get(at..at + 2) {
        Some([tens, ones]) => tens.wrapping_sub(b'0') * 10 + ones.wrapping_sub(b'0'),
        _ => default,
    };
    let ts = HlTimestamp {
        year: u16::from(pair(0, 0)) * 100 + u16::from(pair(2, 0)),
        month: pair(4, 1),
        day: pair(6, 1),
        hour: pair(8, 0),
        minute: pair(10, 0),
        second: pair(12, 0),
        nanosecond: 0,
        fraction_digits: 0,
        precision,
        offset_minutes: None,
    };
    in_range(&ts).then_some(ts)
}

fn in_range(ts: &HlTimestamp) -> bool {
    ts.year >= 1
        && (1..=12).contains(&ts.month)
        && ts.day >= 1
        && ts.day <= days_in_month(ts.year, ts.month)
        && ts.hour <= 23
        && ts.minute <= 59
        && ts.second <= 59
}

/// Reads one to four fraction digits into nanoseconds.
fn parse_fraction(digits: &[u8]) -> Option<(u32, u8)> {
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let value = number(digits)?;
    let scale = 10u32.pow(9 - u32::try_from(digits.len()).ok()?);
    Some((value.checked_mul(scale)?, u8::try_from(digits.len()).ok()?))
}

/// Reads `HHMM` after a sign into minutes east of UTC.
fn parse_offset(sign: u8, digits: &[u8]) -> Option<i16> {
    if digits.len() != 4 {
        return None;
    }
    let hours = i16::try_from(number(digits.get(0..2)?)?).ok()?;
    let minutes = i16::try_from(number(digits.get(2..4)?)?).ok()?;
    if minutes > 59 {
        return None;
    }
    let total = hours * 60 + minutes;
    if total > MAX_OFFSET_MINUTES {
        return None;
    }
    Some(if sign == b'-' { -total } else { total })
}

/// Parses ASCII digits only (no sign, no spaces); `None` on anything else.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_timestamp_with_fraction_and_offset_is_read() {
        let ts = parse_ts("20240229235959.1234-0530").unwrap();
        assert_eq!(
            (ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second),
            (2024, 2, 29, 23, 59, 59)
        );
        assert_eq!(ts.nanosecond, 123_400_000);
        assert_eq!(ts.fraction_digits, 4);
        assert_eq!(ts.precision, Precision::Fraction);
        assert_eq!(ts.offset_minutes, Some(-330));
    }

    #[test]
    fn every_precision_is_recognised_and_missing_parts_are_minimal() {
        let cases = [
            ("2024", Precision::Year),
            ("202403", Precision::Month),
            ("20240315", Precision::Day),
            ("2024031508", Precision::Hour),
            ("202403150830", Precision::Minute),
            ("20240315083015", Precision::Second),
            ("20240315083015.5", Precision::Fraction),
        ];
        for (text, precision) in cases {
            assert_eq!(parse_ts(text).unwrap().precision, precision, "{text}");
        }
        let year = parse_ts("2024").unwrap();
        assert_eq!((year.month, year.day, year.hour), (1, 1, 0));
        assert_eq!(
            parse_ts("20240315083015.5").unwrap().nanosecond,
            500_000_000
        );
    }

    #[test]
    fn offset_may_follow_any_precision() {
        assert_eq!(parse_ts("2024+0100").unwrap().offset_minutes, Some(60));
        assert_eq!(
            parse_ts("202403150830+0000").unwrap().offset_minutes,
            Some(0)
        );
        assert_eq!(parse_ts("20240315").unwrap().offset_minutes, None);
    }

    #[test]
    fn wrong_digit_counts_are_rejected() {
        for bad in [
            "",
            "202",
            "20240",
            "2024031",
            "202403150",
            "20240315083",
            "2024031508301",
            "202403150830150",
            "20240315083015.",
            "20240315083015.12345",
            "202403150830.5",
            "2024+01",
            "2024+01000",
            "2024+",
            "-0500",
        ] {
            assert!(parse_ts(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn out_of_range_parts_are_rejected() {
        for bad in [
            "0000",
            "202413",
            "202400",
            "20240230",
            "20230229",
            "20240431",
            "2024010124",
            "202401012360",
            "20240101235960",
            "2024+1500",
            "2024-0060",
        ] {
            assert!(parse_ts(bad).is_none(), "{bad:?}");
        }
        assert!(parse_ts("20000229").is_some());
        assert!(parse_ts("19000229").is_none());
        assert!(parse_ts("2024+1400").is_some());
    }

    #[test]
    fn separators_and_spaces_are_rejected() {
        for bad in [
            "2024-03-15",
            "2024-03",
            "20240315T0830",
            " 20240315",
            "20240315 ",
            "2024.03",
        ] {
            assert!(parse_ts(bad).is_none(), "{bad:?}");
        }
    }

    /// The grammar read the long way: split at the first sign, then at the
    /// first dot, every part checked on its own.
    fn parse_by_splitting(text: &str) -> Option<HlTimestamp> {
        let bytes = text.as_bytes();
        let split = bytes
            .iter()
            .position(|&b| b == b'+' || b == b'-')
            .unwrap_or(bytes.len());
        let (main, offset) = bytes.split_at(split);
        let offset_minutes = match offset {
            [] => None,
            [sign, digits @ ..] => Some(parse_offset(*sign, digits)?),
        };
        let (whole, fraction) = match main.iter().position(|&b| b == b'.') {
            Some(dot) => (&main[..dot], Some(&main[dot + 1..])),
            None => (main, None),
        };
        if !whole.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ts = parse_whole(whole)?;
        if let Some(fraction) = fraction {
            if ts.precision != Precision::Second {
                return None;
            }
            let (nanosecond, digits) = parse_fraction(fraction)?;
            ts.nanosecond = nanosecond;
            ts.fraction_digits = digits;
            ts.precision = Precision::Fraction;
        }
        ts.offset_minutes = offset_minutes;
        Some(ts)
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_agrees_with_splitting(text in "\\PC{0,30}") {
            prop_assert_eq!(parse_ts(&text), parse_by_splitting(&text));
        }

        #[test]
        fn one_pass_reads_what_splitting_reads(text in "[0-9]{0,16}[.]?[0-9+.-]{0,8}[a ]?") {
            prop_assert_eq!(parse_ts(&text), parse_by_splitting(&text));
        }

        #[test]
        fn formatted_valid_dates_round_trip(
            y in 1u16..=9999, mo in 1u8..=12, d in 1u8..=28, h in 0u8..=23, mi in 0u8..=59,
            s in 0u8..=59, off in -840i16..=840,
        ) {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{sign}{:02}{:02}", a / 60, a % 60);
            let ts = parse_ts(&text).unwrap();
            prop_assert_eq!((ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second), (y, mo, d, h, mi, s));
            prop_assert_eq!(ts.offset_minutes, Some(off));
        }
    }
}
