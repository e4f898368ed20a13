//! How a [`Record`] meets serde: the compact bytes for binary formats
//! (postcard: one length-prefixed byte string), the field-by-field shape
//! for human-readable ones (JSON), so people and tools see full values.

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hl7::Issue;
use crate::record::{Body, Encounter, Header, NotCarried, Patient, Record};

/// The human-readable shape of a record (written).
#[derive(Serialize)]
#[serde(rename = "Record")]
struct View<'a> {
    header: &'a Header,
    patient: &'a Option<Patient>,
    #[serde(skip_serializing_if = "is_none")]
    encounter: &'a Option<Encounter>,
    body: &'a Body,
    issues: &'a [Issue],
    #[serde(skip_serializing_if = "is_empty")]
    not_carried: &'a [NotCarried],
}

/// True for an absent part (left out of JSON).
fn is_none<T>(v: &&Option<T>) -> bool {
    v.is_none()
}

/// True for an empty list (left out of JSON).
fn is_empty<T>(v: &&[T]) -> bool {
    v.is_empty()
}

/// The human-readable shape of a record (read).
#[derive(Deserialize)]
#[serde(rename = "Record")]
struct Owned {
    header: Header,
    patient: Option<Patient>,
    #[serde(default)]
    encounter: Option<Encounter>,
    body: Body,
    issues: Vec<Issue>,
    #[serde(default)]
    not_carried: Vec<NotCarried>,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            View {
                header: &self.header,
                patient: &self.patient,
                encounter: &self.encounter,
                body: &self.body,
                issues: &self.issues,
                not_carried: &self.not_carried,
            }
            .serialize(s)
        } else {
            crate::record::limits::check(self).map_err(serde::ser::Error::custom)?;
            let bytes = super::encode(self).map_err(serde::ser::Error::custom)?;
            s.serialize_bytes(&bytes)
        }
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let o = Owned::deserialize(d)?;
            Ok(Record {
                header: o.header,
                patient: o.patient,
                encounter: o.encounter,
                body: o.body,
                issues: o.issues,
                not_carried: o.not_carried,
            })
        } else {
            d.deserialize_bytes(CompactVisitor)
        }
    }
}

/// Decodes the compact byte string.
struct CompactVisitor;

impl Visitor<'_> for CompactVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a compact hl7edge record")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Record, E> {
        super::decode(v).map_err(E::custom)
    }
}
