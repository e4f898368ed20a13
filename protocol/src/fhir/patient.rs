//! PID (with NK1 and NTE) to `Patient`.
//!
//! Invariants:
//! - The patient is keyed on its first medical record number (CX.5 `MR`),
//!   else its first identifier, with the assigning authority as system;
//!   a patient without identifiers is keyed in the record's namespace (it
//!   cannot be matched to anyone else, and is never merged by guess).
//! - Only an ADT message updates a patient (it is the registry's voice);
//!   results, orders and immunizations create the patient when the server
//!   has none with the key and otherwise leave it as it is.

use serde_json::{Value, json};

use super::Render;
use super::bundle::{Write, reference};
use super::coding::{self, date, date_time};
use super::ids::{self, Key};
use super::json::{self, Object, put, put_list};
use super::party::{address, human_name, relationship, telecoms};
use crate::record::{Contact, Identifier, Patient};

impl Render<'_> {
    /// Adds the patient and returns its entry URL.
    pub(super) fn patient(&mut self, p: &Patient, write: Write) -> String {
        let identifiers: Vec<(Key, Option<&str>)> = p
            .identifiers
            .iter()
            .filter_map(|i| self.identifier_key(i).map(|k| (k, i.kind.as_deref())))
            .collect();
        let key = identifiers
            .iter()
            .find(|(_, kind)| *kind == Some("MR"))
            .or(identifiers.first())
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Key::in_record(self.bundle.record_id(), "patient"));
        let mut out = Object::new();
        let mut ids: Vec<Value> = identifiers
            .iter()
            .map(|(k, kind)| k.identifier(*kind))
            .collect();
        if identifiers.is_empty() {
            ids.push(key.identifier(None));
        }
        put_list(&mut out, "identifier", ids);
        let names = p
            .name
            .iter()
            .chain(&p.other_names)
            .filter_map(human_name)
            .collect();
        put_list(&mut out, "name", names);
        put_list(&mut out, "telecom", telecoms(&p.phones));
        put(
            &mut out,
            "gender",
            p.sex.as_deref().and_then(gender).map(Value::from),
        );
        put(&mut out, "birthDate", p.birth_date.as_ref().and_then(date));
        match (&p.deceased_at, p.deceased.as_deref()) {
            (Some(at), _) => put(&mut out, "deceasedDateTime", date_time(at)),
            (None, Some("Y")) => put(&mut out, "deceasedBoolean", Some(Value::Bool(true))),
            (None, Some("N")) => put(&mut out, "deceasedBoolean", Some(Value::Bool(false))),
            _ => {}
        }
        put_list(
            &mut out,
            "address",
            p.addresses.iter().filter_map(address).collect(),
        );
        let sender = self.sender.clone();
        let concept = |c: &crate::record::Coded| coding::concept(c, &sender);
        put(
            &mut out,
            "maritalStatus",
            p.marital_status.as_deref().and_then(concept),
        );
        let contacts = p.contacts.iter().filter_map(|c| self.contact(c)).collect();
        put_list(&mut out, "contact", contacts);
        if let Some(language) = p.language.as_deref().and_then(concept) {
            out.insert("communication".into(), json!([{ "language": language }]));
        }
        self.bundle.add("Patient", key, write, out)
    }

    /// The key of a CX identifier (`None` when its value is empty).
    pub(super) fn identifier_key(&self, i: &Identifier) -> Option<Key> {
        let value = i.value.trim();
        if value.is_empty() {
            return None;
        }
        Some(Key {
            system: ids::system(
                i.authority_id.as_deref(),
                i.authority.as_deref(),
                &self.sender,
            ),
            value: value.to_owned(),
        })
    }

    /// A reference to the patient by identifier only (a merged-away
    /// patient, which this bundle does not write).
    pub(super) fn patient_by_identifier(&self, i: &Identifier) -> Option<Value> {
        let key = self.identifier_key(i)?;
        Some(json!({ "identifier": key.identifier(i.kind.as_deref()) }))
    }

    fn contact(&mut self, c: &Contact) -> Option<Value> {
        let mut out = Object::new();
        let relations: Vec<Value> = [c.relationship.as_ref(), c.role.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|r| relationship(self, r))
            .collect();
        put_list(&mut out, "relationship", relations);
        put(&mut out, "name", c.name.as_ref().and_then(human_name));
        put_list(&mut out, "telecom", telecoms(&c.phones));
        put(&mut out, "address", c.addresses.first().and_then(address));
        if let Some(org) = c.organization.as_deref().and_then(json::string) {
            out.insert("organization".into(), json!({ "display": org }));
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }

    /// The patient reference of the bundle's resources.
    pub(super) fn subject(&self) -> Option<Value> {
        self.patient_url.as_deref().map(reference)
    }
}

/// FHIR `gender` of an HL7 table 0001 code.
fn gender(sex: &str) -> Option<&'static str> {
    match sex.trim() {
        "F" => Some("female"),
        "M" => Some("male"),
        "O" | "A" => Some("other"),
        "U" | "N" => Some("unknown"),
        _ => None,
    }
}
