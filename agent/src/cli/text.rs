//! Text for people: times in UTC, ages, aligned tables, and bytes from a
//! sender made safe to print on a terminal.
//!
//! Invariant: nothing here lets a control character from stored data reach
//! the terminal (no escape sequences, no carriage returns that overwrite a
//! line); they are shown as `<0x0B>`.

use std::time::Duration;

/// A Unix-millisecond time as `2026-11-22 21:40:02 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{ms} ms after 1970"),
    }
}

/// A Unix-millisecond time as RFC 3339 in UTC, for JSON.
pub(super) fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Whole seconds from `then_ms` to `now_ms` (0 when `then_ms` is later).
pub(super) fn age_secs(now_ms: i64, then_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(then_ms) / 1000).unwrap_or(0)
}

/// An age for people: seconds below an hour, minutes above.
pub(super) fn age(secs: u64) -> String {
    let shown = if secs >= 3600 { secs / 60 * 60 } else { secs };
    humantime::format_duration(Duration::from_secs(shown)).to_string()
}

/// `when` and how long ago, or `never`.
pub(super) fn when_ago(now_ms: i64, when: Option<i64>) -> String {
    match when {
        Some(ms) => format!("{} ({} ago)", utc(ms), age(age_secs(now_ms, ms))),
        None => "never".to_owned(),
    }
}

/// Bytes from a sender as printable text: invalid UTF-8 replaced, control
/// characters shown as `<0xNN>`.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("<0x{:02X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The segments of a raw HL7 message, one per entry, made printable.
pub(super) fn segments(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.is_empty())
        .map(printable)
        .collect()
}

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Rows (the first is the header) as lines with aligned columns, each
/// prefixed with `indent`; the last column is not padded.
pub(crate) fn table(indent: &str, aligns: &[Align], rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; aligns.len()];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        let last = row.len().saturating_sub(1);
        for (i, ((cell, width), align)) in row.iter().zip(&widths).zip(aligns).enumerate() {
            let cell = match (align, i == last) {
                (Align::Right, _) => format!("{cell:>width$}"),
                (Align::Left, false) => format!("{cell:<width$}"),
                (Align::Left, true) => cell.clone(),
            };
            line.push_str(&cell);
            if i != last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc_with_the_zone_named() {
        assert_eq!(utc(1_763_845_202_000), "2025-11-22 21:00:02 UTC");
        assert_eq!(rfc3339(1_763_845_202_000), "2025-11-22T21:00:02Z");
    }

    #[test]
    fn ages_over_an_hour_drop_the_seconds() {
        assert_eq!(age(75), "1m 15s");
        assert_eq!(age(2 * 3600 + 5 * 60 + 7), "2h 5m");
        assert_eq!(age_secs(1_000, 5_000), 0);
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(printable(b"A\x1b[2JB\xff"), "A<0x1B>[2JB\u{FFFD}");
        assert_eq!(segments(b"MSH|1\rPID|2\r\n"), ["MSH|1", "PID|2"]);
    }

    #[test]
    fn table_columns_line_up_and_numbers_align_right() {
        let rows = vec![
            vec!["name".to_owned(), "count".to_owned(), "note".to_owned()],
            vec!["lab".to_owned(), "7".to_owned(), "ok".to_owned()],
            vec!["monitor".to_owned(), "1204".to_owned(), String::new()],
        ];
        let text = table("  ", &[Align::Left, Align::Right, Align::Left], &rows);
        assert_eq!(
            text,
            "  name     count  note\n  lab          7  ok\n  monitor   1204\n"
        );
    }
}
