//! Small formatters for output meant for people: durations, ages,
//! percentages, sizes. Unknown values are written `-` by the callers.

/// A duration in its two largest units: `45s`, `3m 20s`, `2h 10m`, `4d 3h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// A duration in its largest unit only, for narrow columns: `45s`, `12m`, `5h`, `3d`.
pub fn short_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// How long ago `then_ms` was, in the largest unit: `12s ago`, `3m ago`; `just now` for a
/// future time (clock skew between the gateway and the hub).
pub fn short_ago(now_ms: i64, then_ms: i64) -> String {
    match u64::try_from(now_ms.saturating_sub(then_ms) / 1000) {
        Ok(0) | Err(_) => "just now".into(),
        Ok(secs) => format!("{} ago", short_duration(secs)),
    }
}

/// Text wrapped at `width` columns: the first line starts with `first`, the others with
/// `rest` (words longer than a line stay whole).
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !empty && !fits {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// How long ago `then_ms` was: `12s ago`, `just now` for a future time
/// (clock skew between the gateway and the hub).
pub fn ago(now_ms: i64, then_ms: i64) -> String {
    match u64::try_from(now_ms.saturating_sub(then_ms) / 1000) {
        Ok(0) | Err(_) => "just now".into(),
        Ok(secs) => format!("{} ago", duration(secs)),
    }
}

/// A ratio 0..=1 as a percentage with one decimal: `2.5%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A byte count in binary units: `512 B`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{n} {name}")
    } else {
        format!("{value:.1} {name}")
    }
}

/// A Unix-ms instant as `2026-05-01 10:00:00 UTC`.
pub fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_their_two_largest_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(200), "3m 20s");
        assert_eq!(duration(900), "15m");
        assert_eq!(duration(7_800), "2h 10m");
        assert_eq!(duration(7_200), "2h");
        assert_eq!(duration(4 * 86_400 + 3 * 3600 + 59), "4d 3h");
        assert_eq!(duration(86_400 + 60), "1d");
    }

    #[test]
    fn ages_in_the_future_read_as_just_now() {
        assert_eq!(ago(10_000, 20_000), "just now");
        assert_eq!(ago(72_000, 0), "1m 12s ago");
    }

    #[test]
    fn short_durations_use_their_largest_unit() {
        assert_eq!(short_duration(45), "45s");
        assert_eq!(short_duration(200), "3m");
        assert_eq!(short_duration(7_800), "2h");
        assert_eq!(short_duration(4 * 86_400 + 3), "4d");
        assert_eq!(short_ago(72_000, 0), "1m ago");
    }

    #[test]
    fn wrapped_text_keeps_within_the_width_with_its_indents() {
        let text = wrap("one two three four five six", 12, "  - ", "    ");
        assert_eq!(text, "  - one two\n    three\n    four\n    five six\n");
        assert!(text.lines().all(|l| l.chars().count() <= 12));
    }

    #[test]
    fn sizes_and_percentages_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(percent(0.025), "2.5%");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    }
}
