//! The transaction `Bundle` under construction: entries keyed on business
//! identifiers, each with its conditional request, and the meta every
//! resource carries.
//!
//! Invariants:
//! - One entry per (resource type, key): adding a resource a second time
//!   returns the first entry's URL and keeps the first resource, so a
//!   bundle never asks a server for two conditional operations on one key.
//! - Every entry's request is conditional on its key: a `PUT` to
//!   `Type?identifier=...` (conditional update: the message is the
//!   authority for it) or a `POST` with `ifNoneExist` (conditional create:
//!   what the message mentions in passing never overwrites what a server
//!   already has). Loading a bundle twice creates nothing the second time.
//! - Every resource's `meta` names the record (`source`), the mapping
//!   version and the renderer version (tags) and, when the record is
//!   partial, carries the `partial` tag.

use serde_json::{Value, json};
use uuid::Uuid;

use super::ids::{Key, entry_url};
use super::json::Object;

/// The meta tag system of the record a resource came from.
pub const RECORD_TAG: &str = "urn:hl7edge:record";
/// The meta tag system of the fidelity flag (`partial`).
pub const FIDELITY_TAG: &str = "urn:hl7edge:fidelity";
/// The meta tag system of the mapping table version.
pub const MAPPING_TAG: &str = "urn:hl7edge:mapping-version";
/// The meta tag system of this renderer's version.
pub const RENDERER_TAG: &str = "urn:hl7edge:fhir-mapping";
/// The version of this mapping (bump on every change to what it writes).
pub const MAPPING_VERSION: &str = "1";

/// How a server should apply an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Conditional update: the message is the authority for the resource.
    Update,
    /// Conditional create: created when no resource has the key.
    Create,
}

/// One entry: its type, URL, key, request search and resource.
#[derive(Debug)]
struct Entry {
    resource_type: String,
    url: String,
    key: Key,
    write: Write,
    search: String,
    resource: Value,
    /// A tag this resource alone carries (the key of a tagged resource).
    own_tag: Option<Value>,
}

/// A transaction bundle being built.
#[derive(Debug)]
pub struct Builder {
    record_id: Uuid,
    mapping_version: String,
    entries: Vec<Entry>,
}

impl Builder {
    /// A bundle for the record `record_id`.
    pub fn new(record_id: Uuid, mapping_version: &str) -> Builder {
        Builder {
            record_id,
            mapping_version: mapping_version.to_owned(),
            entries: Vec::new(),
        }
    }

    /// The `meta` of every resource; `partial` adds the partial tag.
    fn meta(&self, partial: bool) -> Value {
        let mut tags = vec![
            json!({"system": RECORD_TAG, "code": self.record_id.to_string()}),
            json!({"system": MAPPING_TAG, "code": super::json::code(&self.mapping_version).unwrap_or_else(|| Value::from("unknown"))}),
            json!({"system": RENDERER_TAG, "code": MAPPING_VERSION}),
        ];
        if partial {
            tags.push(json!({
                "system": FIDELITY_TAG,
                "code": "partial",
                "display": "the message held parts this resource does not carry (see the Provenance)",
            }));
        }
        json!({"source": format!("urn:uuid:{}", self.record_id), "tag": tags})
    }

    /// The record's id.
    pub fn record_id(&self) -> Uuid {
        self.record_id
    }

    /// Adds a resource keyed on `key` and returns its entry URL; a
    /// resource of the same type and key already added wins. The key is
    /// added to the resource's identifiers when it is not there yet.
    pub fn add(&mut self, resource_type: &str, key: Key, write: Write, resource: Object) -> String {
        if let Some(existing) = self.url_of(resource_type, &key) {
            return existing;
        }
        let url = entry_url(self.record_id, resource_type, &key);
        let mut resource = resource;
        resource.insert("resourceType".into(), Value::from(resource_type));
        self.entries.push(Entry {
            resource_type: resource_type.to_owned(),
            url: url.clone(),
            search: key.search(),
            key,
            write,
            resource: Value::Object(resource),
            own_tag: None,
        });
        url
    }

    /// The URL of the entry of this type and key, if added.
    pub fn url_of(&self, resource_type: &str, key: &Key) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.resource_type == resource_type && e.key == *key)
            .map(|e| e.url.clone())
    }

    /// The resource of the entry at `url`.
    pub fn resource(&self, url: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.url == url)
            .map(|e| &e.resource)
    }

    /// The URLs of every entry so far.
    pub fn urls(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.url.clone()).collect()
    }

    /// Adds to a field of an entry already added (`hasMember`, `result`).
    pub fn push_to(&mut self, url: &str, field: &str, value: Value) {
        let Some(entry) = self.entries.iter_mut().find(|e| e.url == url) else {
            return;
        };
        let Value::Object(resource) = &mut entry.resource else {
            return;
        };
        let list = resource
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list
            && !items.contains(&value)
        {
            items.push(value);
        }
    }

    /// Adds a resource keyed on a meta tag instead of an identifier (for
    /// types that have none, such as Provenance): conditional create on
    /// `_tag`.
    pub fn add_tagged(&mut self, resource_type: &str, tag: Key, resource: Object) -> String {
        let url = entry_url(self.record_id, resource_type, &tag);
        let mut resource = resource;
        resource.insert("resourceType".into(), Value::from(resource_type));
        self.entries.push(Entry {
            resource_type: resource_type.to_owned(),
            url: url.clone(),
            search: tag.tag_search(),
            own_tag: Some(json!({"system": tag.system, "code": tag.value})),
            key: tag,
            write: Write::Create,
            resource: Value::Object(resource),
        });
        url
    }

    /// The finished `Bundle` of type `transaction`; `partial` tags every
    /// resource as partial.
    pub fn finish(self, partial: bool) -> Value {
        let meta = self.meta(partial);
        let entries: Vec<Value> = self
            .entries
            .into_iter()
            .map(|mut e| {
                let mut meta = meta.clone();
                if let (Some(tag), Some(Value::Array(tags))) = (e.own_tag, meta.get_mut("tag")) {
                    tags.push(tag);
                }
                e.resource["meta"] = meta;
                let request = match e.write {
                    Write::Update => json!({
                        "method": "PUT",
                        "url": format!("{}?{}", e.resource_type, e.search),
                    }),
                    Write::Create => json!({
                        "method": "POST",
                        "url": e.resource_type,
                        "ifNoneExist": e.search,
                    }),
                };
                json!({"fullUrl": e.url, "resource": e.resource, "request": request})
            })
            .collect();
        let mut bundle = json!({"resourceType": "Bundle", "type": "transaction"});
        if !entries.is_empty() {
            bundle["entry"] = Value::Array(entries);
        }
        bundle
    }
}

/// A `Reference` to an entry of the bundle.
pub fn reference(url: &str) -> Value {
    json!({ "reference": url })
}
