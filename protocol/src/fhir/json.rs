//! JSON values for FHIR: exact decimals, clean strings and codes, and the
//! writer that puts `resourceType` first.
//!
//! Invariants:
//! - No empty string is ever written (FHIR forbids them): every helper
//!   returns `None` for text that is empty after cleaning.
//! - Strings lose the control characters FHIR's `string` type does not
//!   allow (all below U+0020 except tab, CR and LF); codes are also
//!   stripped of leading, trailing and doubled whitespace (FHIR `code`).
//! - A decimal is written as the exact digits the sender sent (`5.40`, not
//!   `5.4`): it is held as a string that starts with NUL, a character no
//!   cleaned string can hold, and [`Json`] writes it as a raw number.

use serde::ser::{Error as _, SerializeMap as _};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::record::Decimal;

/// The first character of a decimal held in a [`Value::String`].
const DECIMAL_MARK: char = '\0';

/// A JSON object under construction.
pub(crate) type Object = Map<String, Value>;

/// A FHIR `string`: control characters removed, trimmed; `None` when empty.
pub(crate) fn string(text: &str) -> Option<Value> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let trimmed = clean.trim();
    (!trimmed.is_empty()).then(|| Value::String(trimmed.to_owned()))
}

/// A FHIR `code`: no control characters, single spaces only, trimmed.
pub(crate) fn code(text: &str) -> Option<Value> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| Value::String(words.join(" ")))
}

/// A FHIR `decimal` with the sender's digits.
pub(crate) fn decimal(value: Decimal) -> Value {
    Value::String(format!("{DECIMAL_MARK}{value}"))
}

/// Sets `key` when `value` is `Some`.
pub(crate) fn put(object: &mut Object, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        object.insert(key.to_owned(), v);
    }
}

/// Sets `key` to the array when it is not empty.
pub(crate) fn put_list(object: &mut Object, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        object.insert(key.to_owned(), Value::Array(values));
    }
}

/// Writes a value built by this module: `resourceType` first in every
/// object, then the other keys in order; decimals as raw numbers.
pub struct Json<'a>(pub &'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(text) if text.starts_with(DECIMAL_MARK) => {
                let digits = text[DECIMAL_MARK.len_utf8()..].to_owned();
                RawValue::from_string(digits)
                    .map_err(S::Error::custom)?
                    .serialize(s)
            }
            Value::Array(items) => s.collect_seq(items.iter().map(Json)),
            Value::Object(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                if let Some(kind) = map.get("resourceType") {
                    out.serialize_entry("resourceType", kind)?;
                }
                for (key, value) in map.iter().filter(|(k, _)| *k != "resourceType") {
                    out.serialize_entry(key, &Json(value))?;
                }
                out.end()
            }
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_trailing_zeros() {
        let v = serde_json::json!({"value": decimal(Decimal::parse("5.40").unwrap())});
        assert_eq!(
            serde_json::to_string(&Json(&v)).unwrap(),
            r#"{"value":5.40}"#
        );
    }

    #[test]
    fn resource_type_comes_first() {
        let v = serde_json::json!({"active": true, "resourceType": "Patient"});
        assert_eq!(
            serde_json::to_string(&Json(&v)).unwrap(),
            r#"{"resourceType":"Patient","active":true}"#
        );
    }

    #[test]
    fn strings_lose_control_characters_and_empty_ones_vanish() {
        assert_eq!(string("\0 a\u{1}b \n"), Some(Value::from("ab")));
        assert_eq!(string(" \u{7} "), None);
        assert_eq!(code("  a \t  b "), Some(Value::from("a b")));
        assert_eq!(code("\0"), None);
    }
}
