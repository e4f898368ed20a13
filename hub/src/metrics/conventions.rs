//! Prometheus' naming conventions, as a check over an exposition (the text `/metrics`
//! serves): what `serve`, `ingest --metrics` and `tail --metrics` print is tested against it.
//!
//! The rules (prometheus.io, "Metric and label naming", and the exposition format):
//! - every sample belongs to a family declared first with `# HELP` and `# TYPE`, once;
//! - metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`;
//! - a counter's name ends in `_total`, and nothing else's does;
//! - units are base units: no `days`, `hours`, `minutes`, `ms`, `milliseconds`, `percent`,
//!   `kb`, `mb`... in a name; a point in time is `_timestamp_seconds`;
//! - one name for an interface: the label is `listener` (as in the configuration), never
//!   `source` or `interface`.

/// Name parts that are not base units.
const NOT_BASE_UNITS: &[&str] = &[
    "days",
    "hours",
    "minutes",
    "ms",
    "millis",
    "milliseconds",
    "microseconds",
    "nanoseconds",
    "percent",
    "kb",
    "kib",
    "mb",
    "mib",
    "gb",
    "gib",
];

/// Label names that mean a listener under another name.
const OTHER_LISTENER_NAMES: &[&str] = &["source", "interface"];

/// Every rule `exposition` breaks, in words (empty when it keeps them all).
pub fn violations(exposition: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut families: Vec<(String, String)> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in exposition.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if rest.trim() == name {
                found.push(format!("{name}: HELP without text"));
            }
            helped.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            family_rules(name, kind, &helped, &families, &mut found);
            families.push((name.to_owned(), kind.to_owned()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        sample_rules(line, &families, &mut found);
    }
    found
}

fn family_rules(
    name: &str,
    kind: &str,
    helped: &[String],
    families: &[(String, String)],
    found: &mut Vec<String>,
) {
    if !valid_name(name, true) {
        found.push(format!("{name}: not a valid metric name"));
    }
    if !helped.iter().any(|h| h == name) {
        found.push(format!("{name}: TYPE without a HELP before it"));
    }
    if families.iter().any(|(f, _)| f == name) {
        found.push(format!("{name}: declared twice"));
    }
    if !matches!(
        kind,
        "counter" | "gauge" | "histogram" | "summary" | "untyped"
    ) {
        found.push(format!("{name}: unknown type {kind:?}"));
    }
    match (kind, name.ends_with("_total")) {
        ("counter", false) => found.push(format!("{name}: a counter must end in _total")),
        (k, true) if k != "counter" => {
            found.push(format!("{name}: only counters end in _total (it is a {k})"))
        }
        _ => {}
    }
    let parts: Vec<&str> = name.split('_').collect();
    if let Some(unit) = parts.iter().find(|p| NOT_BASE_UNITS.contains(p)) {
        found.push(format!(
            "{name}: {unit:?} is not a base unit (seconds, bytes, ratios 0-1)"
        ));
    }
    if name.contains("_timestamp") && !name.ends_with("_timestamp_seconds") {
        found.push(format!(
            "{name}: a point in time ends in _timestamp_seconds"
        ));
    }
}

fn sample_rules(line: &str, families: &[(String, String)], found: &mut Vec<String>) {
    let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or(rest)),
        None => (series, ""),
    };
    let family = families.iter().find(|(f, kind)| {
        f == name
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(f.as_str())))
    });
    if family.is_none() {
        found.push(format!("{name}: a sample without HELP and TYPE"));
    }
    for pair in split_labels(labels) {
        let label = pair.split('=').next().unwrap_or_default();
        if !valid_name(label, false) {
            found.push(format!("{name}: label {label:?} is not a valid label name"));
        }
        if OTHER_LISTENER_NAMES.contains(&label) {
            found.push(format!(
                "{name}: label {label:?} names a listener: call it \"listener\""
            ));
        }
    }
}

/// The `name="value"` pairs of a label set (values may hold escaped quotes and commas).
fn split_labels(labels: &str) -> Vec<&str> {
    let mut pairs = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                pairs.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        pairs.push(&labels[start..]);
    }
    pairs
}

/// A metric name (`colon` allowed) or a label name.
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    name.chars()
        .next()
        .is_some_and(|c| !c.is_ascii_digit() && ok(c))
        && name.chars().all(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conventional_exposition_passes() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total{listener=\"lab\",x=\"a,b\"} 1\n\
                    # HELP b_seconds Time.\n# TYPE b_seconds histogram\nb_seconds_bucket{le=\"+Inf\"} 1\nb_seconds_sum 1\nb_seconds_count 1\n";
        assert_eq!(violations(text), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_reported() {
        let text = "# HELP a_days Days.\n# TYPE a_days gauge\na_days{source=\"lab\"} 1\n\
                    # TYPE b counter\nb 1\n\
                    # HELP c_total C.\n# TYPE c_total gauge\nc_total 1\n\
                    # HELP d_timestamp D.\n# TYPE d_timestamp gauge\nd_timestamp 1\n\
                    e 1\n";
        let found = violations(text);
        for expected in [
            "a_days: \"days\" is not a base unit",
            "a_days: label \"source\" names a listener",
            "b: TYPE without a HELP",
            "b: a counter must end in _total",
            "c_total: only counters end in _total",
            "d_timestamp: a point in time ends in _timestamp_seconds",
            "e: a sample without HELP and TYPE",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(expected)),
                "{expected} not in {found:#?}"
            );
        }
    }
}
