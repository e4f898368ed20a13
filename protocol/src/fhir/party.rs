//! People and organizations: `Practitioner`, `Organization`,
//! `PractitionerRole`, names, addresses and phone numbers (XCN, XON, XPN,
//! XAD, XTN).
//!
//! Invariants:
//! - A clinician or organization with an id becomes a resource keyed on
//!   that id (conditional create: a message mentions them, it is not their
//!   registry); one without an id is a `Reference` with its name as
//!   `display` and no resource, so no record makes an anonymous duplicate.

use serde_json::{Value, json};

use super::Render;
use super::bundle::{Write, reference};
use super::coding;
use super::ids::{self, Key};
use super::json::{self, Object, put, put_list};
use crate::record::{Address, Organization, PersonName, Practitioner, Telecom};

impl Render<'_> {
    /// A reference to a clinician: a `Practitioner` entry when the XCN has
    /// an id, else a display-only reference; `None` when it has neither.
    pub(super) fn practitioner(&mut self, p: &Practitioner) -> Option<Value> {
        let name = p.name.as_ref().and_then(human_name);
        let shown = p.name.as_ref().and_then(display_name);
        let Some(id) = p.id.as_deref().filter(|i| !i.trim().is_empty()) else {
            return shown.map(|d| json!({ "display": d }));
        };
        let key = Key {
            system: ids::system(
                p.authority_id.as_deref(),
                p.authority.as_deref(),
                &self.sender,
            ),
            value: id.trim().to_owned(),
        };
        let mut out = Object::new();
        out.insert(
            "identifier".into(),
            json!([key.identifier(p.kind.as_deref())]),
        );
        put_list(&mut out, "name", name.into_iter().collect());
        let url = self.bundle.add("Practitioner", key, Write::Create, out);
        let mut r = reference(&url);
        put(r.as_object_mut()?, "display", shown);
        Some(r)
    }

    /// References to each clinician of a list.
    pub(super) fn practitioners(&mut self, list: &[Practitioner]) -> Vec<Value> {
        list.iter().filter_map(|p| self.practitioner(p)).collect()
    }

    /// A reference to an organization: an `Organization` entry when the XON
    /// has an id, else a display-only reference.
    pub(super) fn organization(&mut self, o: &Organization) -> Option<Value> {
        let name = o.name.as_deref().and_then(json::string);
        let Some(id) = o.id.as_deref().filter(|i| !i.trim().is_empty()) else {
            return name.map(|n| json!({ "display": n }));
        };
        let key = Key {
            system: ids::system(
                o.authority_id.as_deref(),
                o.authority.as_deref(),
                &self.sender,
            ),
            value: id.trim().to_owned(),
        };
        let mut out = Object::new();
        out.insert(
            "identifier".into(),
            json!([key.identifier(o.kind.as_deref())]),
        );
        put(&mut out, "name", name.clone());
        put_list(&mut out, "telecom", telecoms(&o.phones));
        put_list(
            &mut out,
            "address",
            o.address.iter().filter_map(address).collect(),
        );
        let url = self.bundle.add("Organization", key, Write::Create, out);
        let mut r = reference(&url);
        put(r.as_object_mut()?, "display", name);
        Some(r)
    }

    /// A `PractitionerRole` of a clinician at an organization (the orderer
    /// at the ordering facility), when both are resources.
    pub(super) fn role(&mut self, who: &Value, at: &Value) -> Option<Value> {
        let who_url = who.get("reference")?.as_str()?;
        let at_url = at.get("reference")?.as_str()?;
        let key = Key::in_record(
            self.bundle.record_id(),
            format!("role-{}-{}", short(who_url), short(at_url)),
        );
        let mut out = Object::new();
        out.insert("identifier".into(), json!([key.identifier(None)]));
        out.insert("practitioner".into(), reference(who_url));
        out.insert("organization".into(), reference(at_url));
        let url = self.bundle.add("PractitionerRole", key, Write::Create, out);
        Some(reference(&url))
    }
}

/// The last 12 characters of an entry URL (enough to tell entries apart).
fn short(url: &str) -> &str {
    &url[url.len().saturating_sub(12)..]
}

/// A FHIR `HumanName`; `None` when every part is empty.
pub(super) fn human_name(n: &PersonName) -> Option<Value> {
    let mut out = Object::new();
    put(
        &mut out,
        "family",
        n.family.as_deref().and_then(json::string),
    );
    let given: Vec<Value> = [n.given.as_deref(), n.middle.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(json::string)
        .collect();
    put_list(&mut out, "given", given);
    put_list(
        &mut out,
        "prefix",
        n.prefix
            .as_deref()
            .and_then(json::string)
            .into_iter()
            .collect(),
    );
    let suffix: Vec<Value> = [n.suffix.as_deref(), n.degree.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(json::string)
        .collect();
    put_list(&mut out, "suffix", suffix);
    if out.is_empty() {
        return None;
    }
    let name_use = match n.kind.as_deref() {
        Some("L") => Some("official"),
        Some("A") | Some("N") => Some("nickname"),
        Some("M") => Some("maiden"),
        Some("D") => Some("usual"),
        Some("T") => Some("temp"),
        _ => None,
    };
    put(&mut out, "use", name_use.map(Value::from));
    Some(Value::Object(out))
}

/// A name as one line (`Dr Ada B Lovelace`), for reference displays.
pub(super) fn display_name(n: &PersonName) -> Option<Value> {
    let parts: Vec<&str> = [&n.prefix, &n.given, &n.middle, &n.family, &n.suffix]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    json::string(&parts.join(" "))
}

/// A FHIR `Address`; `None` when every part is empty.
pub(super) fn address(a: &Address) -> Option<Value> {
    let mut out = Object::new();
    let lines: Vec<Value> = [a.street.as_deref(), a.other.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(json::string)
        .collect();
    put_list(&mut out, "line", lines);
    put(&mut out, "city", a.city.as_deref().and_then(json::string));
    put(
        &mut out,
        "district",
        a.county.as_deref().and_then(json::string),
    );
    put(&mut out, "state", a.state.as_deref().and_then(json::string));
    put(
        &mut out,
        "postalCode",
        a.postal_code.as_deref().and_then(json::string),
    );
    put(
        &mut out,
        "country",
        a.country.as_deref().and_then(json::string),
    );
    if out.is_empty() {
        return None;
    }
    let (addr_use, kind) = match a.kind.as_deref() {
        Some("H") => (Some("home"), None),
        Some("B") | Some("O") => (Some("work"), None),
        Some("C") => (Some("temp"), None),
        Some("M") => (None, Some("postal")),
        _ => (None, None),
    };
    put(&mut out, "use", addr_use.map(Value::from));
    put(&mut out, "type", kind.map(Value::from));
    Some(Value::Object(out))
}

/// FHIR `ContactPoint`s of phone numbers and e-mail addresses.
pub(super) fn telecoms(list: &[Telecom]) -> Vec<Value> {
    list.iter().filter_map(telecom).collect()
}

fn telecom(t: &Telecom) -> Option<Value> {
    let value = json::string(&t.value)?;
    let system = match (t.use_code.as_deref(), t.equipment.as_deref()) {
        (Some("NET"), _) | (_, Some("Internet")) | (_, Some("X.400")) => "email",
        (_, Some("FX")) => "fax",
        (_, Some("BP")) => "pager",
        _ if t.value.contains('@') => "email",
        _ => "phone",
    };
    let mut out = Object::new();
    out.insert("system".into(), Value::from(system));
    out.insert("value".into(), value);
    let contact_use = match (t.use_code.as_deref(), t.equipment.as_deref()) {
        (_, Some("CP")) => Some("mobile"),
        (Some("PRN"), _) | (Some("ORN"), _) | (Some("VHN"), _) => Some("home"),
        (Some("WPN"), _) => Some("work"),
        (Some("EMR"), _) => Some("temp"),
        _ => None,
    };
    put(&mut out, "use", contact_use.map(Value::from));
    Some(Value::Object(out))
}

/// A `CodeableConcept` of a contact relationship or role code.
pub(super) fn relationship(render: &Render<'_>, c: &crate::record::Coded) -> Option<Value> {
    coding::concept(c, &render.sender)
}
