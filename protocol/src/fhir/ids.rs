//! Identifiers, their systems, the conditional URLs that key a resource
//! on them, and the `urn:uuid` each bundle entry is known by.
//!
//! Invariants:
//! - Every resource of a bundle is keyed on a business identifier (a
//!   [`Key`]): the patient identifier with its authority, the filler order
//!   number, the specimen id, or, when the message has none, the record id
//!   with the part's position (`urn:uuid:<record id>` as the system). So
//!   loading the same record twice matches the same resources, and the
//!   record-scoped keys of two records never meet.
//! - An identifier system is always a URI: an OID becomes `urn:oid:`, a
//!   UUID `urn:uuid:`, a URI stays as sent, any other assigning authority
//!   `urn:hl7edge:authority:<name>`; an identifier sent without one is
//!   scoped to the sending facility (`urn:hl7edge:sender:<MSH-4>`), never
//!   left without a system (which would match any system's number).
//! - Entry URLs are derived (SHA-256) from the record id and the key:
//!   rendering twice gives the same bundle, byte for byte.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::json::{self, Object};

/// What is not escaped in a URN part or a query value (RFC 3986 unreserved).
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A business identifier a resource is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The identifier system (a URI).
    pub system: String,
    /// The identifier value.
    pub value: String,
}

impl Key {
    /// A key in the record's own namespace: `urn:uuid:<record id>` with
    /// `part` (`patient`, `obs-1.2`) as the value.
    pub fn in_record(record_id: Uuid, part: impl Into<String>) -> Key {
        Key {
            system: format!("urn:uuid:{record_id}"),
            value: part.into(),
        }
    }

    /// The search that finds the resource this key names:
    /// `identifier=<system>|<value>`, escaped as FHIR search and URLs
    /// require.
    pub fn search(&self) -> String {
        format!(
            "identifier={}|{}",
            query_value(&self.system),
            query_value(&self.value)
        )
    }

    /// The search that finds the resource carrying this key as a meta tag:
    /// `_tag=<system>|<value>`.
    pub fn tag_search(&self) -> String {
        format!(
            "_tag={}|{}",
            query_value(&self.system),
            query_value(&self.value)
        )
    }

    /// The FHIR `Identifier` of this key, with a type code (HL7 table
    /// 0203) when given.
    pub fn identifier(&self, kind: Option<&str>) -> Value {
        let mut id = Object::new();
        if let Some(kind) = kind.and_then(json::code) {
            id.insert(
                "type".into(),
                json!({"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": kind,
                }]}),
            );
        }
        id.insert("system".into(), Value::String(self.system.clone()));
        id.insert("value".into(), Value::String(self.value.clone()));
        Value::Object(id)
    }
}

/// The `urn:uuid` of a bundle entry: derived from the record id, the
/// resource type and the key, so it is stable and unique in the bundle.
pub fn entry_url(record_id: Uuid, resource_type: &str, key: &Key) -> String {
    let mut hash = Sha256::new();
    hash.update(record_id.as_bytes());
    for part in [resource_type, &key.system, &key.value] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash.finalize()[..16]);
    format!(
        "urn:uuid:{}",
        uuid::Builder::from_custom_bytes(id).into_uuid()
    )
}

/// A UUID derived from bytes (SHA-256, RFC 9562 version 8).
pub fn name_based(bytes: &[u8]) -> Uuid {
    let digest = Sha256::digest(bytes);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(id).into_uuid()
}

/// The identifier system of an assigning authority: its universal id
/// (OID, UUID, URI) when sent, else its namespace id, else the sending
/// facility's scope.
pub fn system(universal: Option<&str>, namespace: Option<&str>, sender: &str) -> String {
    let universal = universal.map(str::trim).filter(|u| !u.is_empty());
    let namespace = namespace.map(str::trim).filter(|n| !n.is_empty());
    match (universal, namespace) {
        (Some(u), _) if is_oid(u) => format!("urn:oid:{u}"),
        (Some(u), _) if Uuid::parse_str(u).is_ok() => format!("urn:uuid:{}", u.to_lowercase()),
        (Some(u), _) if is_uri(u) => u.to_owned(),
        (Some(name), _) | (None, Some(name)) => {
            if is_uri(name) {
                name.to_owned()
            } else {
                format!("urn:hl7edge:authority:{}", urn_part(name))
            }
        }
        (None, None) => format!("urn:hl7edge:sender:{}", urn_part(sender)),
    }
}

/// A string made safe for one part of a URN (`%`-escaped).
pub fn urn_part(text: &str) -> String {
    let cleaned = text.trim();
    if cleaned.is_empty() {
        return "unknown".to_owned();
    }
    utf8_percent_encode(cleaned, ESCAPED).to_string()
}

/// True for an ISO OID: digits separated by single dots.
fn is_oid(text: &str) -> bool {
    text.split('.').count() > 1
        && text
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

/// True for a URI this module can use as a system as is.
fn is_uri(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("urn:"))
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A search parameter value: FHIR's escapes (`\`, `|`, `,`, `$`) then
/// URL escaping.
fn query_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    utf8_percent_encode(&escaped, ESCAPED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_become_uris() {
        assert_eq!(
            system(Some("2.16.840.1.113883.19"), Some("HOSP"), "LAB"),
            "urn:oid:2.16.840.1.113883.19"
        );
        assert_eq!(
            system(None, Some("MPI HOSP"), "LAB"),
            "urn:hl7edge:authority:MPI%20HOSP"
        );
        assert_eq!(
            system(Some("http://x.org/mrn"), None, "LAB"),
            "http://x.org/mrn"
        );
        assert_eq!(
            system(None, None, "Good Lab"),
            "urn:hl7edge:sender:Good%20Lab"
        );
        assert_eq!(system(Some("1"), None, "LAB"), "urn:hl7edge:authority:1");
    }

    #[test]
    fn searches_escape_the_separator_and_url_characters() {
        let key = Key {
            system: "urn:oid:1.2".into(),
            value: "A|1 2,3".into(),
        };
        assert_eq!(
            key.search(),
            "identifier=urn%3Aoid%3A1.2|A%5C%7C1%202%5C%2C3"
        );
    }

    #[test]
    fn entry_urls_differ_by_record_type_and_key() {
        let r1 = Uuid::from_u128(1);
        let r2 = Uuid::from_u128(2);
        let k = Key::in_record(r1, "obs-1.1");
        let a = entry_url(r1, "Observation", &k);
        assert_eq!(a, entry_url(r1, "Observation", &k));
        assert_ne!(a, entry_url(r2, "Observation", &k));
        assert_ne!(a, entry_url(r1, "Specimen", &k));
        assert!(a.starts_with("urn:uuid:"));
    }
}
