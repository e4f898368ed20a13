//! `hl7edge inspect --unmapped`: a mapping-table skeleton of every code and
//! unit the messages carried without a standard coding, ready to fill in.
//!
//! The output loads as a mapping file once each row's `target_system` and
//! `target_code` (or a unit row's `target_code`) are filled in: the header
//! is the full one, each row is one unmapped (system, code) or unit with
//! the sender's text in `target_display`, preceded by a comment saying in
//! how many messages it was seen. Rows are ordered most frequent first, so
//! the analyst's first rows cover the most traffic.

use std::collections::BTreeMap;
use std::io::Write;

use hl7edge_protocol::normalize::Normalized;
use hl7edge_protocol::normalize::coding_system::CodingSystem;

/// The header the skeleton starts with (all columns).
const HEADER: &str =
    "kind,local_system,local_code,target_system,target_code,target_display,target_unit";

/// Unmapped codes and units across messages.
#[derive(Debug, Default)]
pub(super) struct Skeleton {
    /// (system as sent, code) → (the sender's text, messages seen in).
    codes: BTreeMap<(String, String), (Option<String>, u64)>,
    /// Unit as sent → messages seen in.
    units: BTreeMap<String, u64>,
}

impl Skeleton {
    /// Adds one message's unmapped codes and units.
    pub(super) fn add(&mut self, normalized: &Normalized) {
        let record = serde_json::to_value(&normalized.record).unwrap_or_default();
        for (system, code) in &normalized.unmapped {
            if *system == CodingSystem::Ucum {
                *self.units.entry(code.clone()).or_default() += 1;
                continue;
            }
            let key = (system.hl7_code().into_owned(), code.clone());
            let entry = self.codes.entry(key).or_default();
            entry.1 += 1;
            if entry.0.is_none() {
                entry.0 = display_of(&record, system, code);
            }
        }
    }

    /// True when nothing was unmapped.
    pub(super) fn is_empty(&self) -> bool {
        self.codes.is_empty() && self.units.is_empty()
    }

    /// Writes the CSV skeleton.
    pub(super) fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "# hl7edge mapping skeleton: fill in target_system and target_code (and"
        )?;
        writeln!(
            out,
            "# target_unit where results must be in one unit), delete rows you leave"
        )?;
        writeln!(out, "# unmapped, then load it with --mapping.")?;
        writeln!(out, "{HEADER}")?;
        let mut codes: Vec<_> = self.codes.iter().collect();
        codes.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(b.0)));
        for ((system, code), (text, count)) in codes {
            writeln!(out, "# seen in {count} message(s)")?;
            let row = [
                "code",
                system,
                code,
                "",
                "",
                text.as_deref().unwrap_or(""),
                "",
            ];
            writeln!(out, "{}", csv_row(&row))?;
        }
        let mut units: Vec<_> = self.units.iter().collect();
        units.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (unit, count) in units {
            writeln!(out, "# unit seen in {count} message(s)")?;
            writeln!(out, "{}", csv_row(&["unit", "", unit, "UCUM", "", "", ""]))?;
        }
        Ok(())
    }
}

/// The display sent with the first coding of `system` and `code` found in
/// the record (its JSON tree: any `original` or `alternate` coding).
fn display_of(record: &serde_json::Value, system: &CodingSystem, code: &str) -> Option<String> {
    let matches = |coding: &serde_json::Value| {
        coding["code"] == code
            && serde_json::from_value::<CodingSystem>(coding["system"].clone())
                .is_ok_and(|s| s == *system)
    };
    let mut stack = vec![record];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for key in ["original", "alternate"] {
                    let found = map.get(key).filter(|c| matches(c));
                    if let Some(text) = found.and_then(|c| c["display"].as_str()) {
                        return Some(text.to_owned());
                    }
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    None
}

/// One CSV row (RFC 4180: a field with a comma, quote or line break is
/// quoted, quotes doubled; a leading `#` is quoted so the row is not read
/// as a comment).
fn csv_row(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) || f.starts_with('#') {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                (*f).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_a_leading_hash_are_quoted() {
        assert_eq!(
            csv_row(&["code", "L", "#1", "", "", "Glucose, \"fasting\"", ""]),
            "code,L,\"#1\",,,\"Glucose, \"\"fasting\"\"\","
        );
    }
}
