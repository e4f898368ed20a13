//! Database rows from decoded envelopes. The records of a batch go in as
//! columns (one vector per column: one `INSERT ... SELECT FROM unnest`
//! statement inserts them all and returns the ids it inserted); the typed
//! rows (identifiers, observations) are written afterwards, by binary
//! `COPY`, for those new ids only.
//!
//! Invariants:
//! - every column vector of [`RecordColumns`] has the same length (one
//!   element per record row), whatever the record holds;
//! - a record id appears at most once in [`Rows::records`] (the first copy
//!   in a batch wins; a republished record carries the same content), and
//!   typed rows come only from the records of [`Rows`], in their order;
//! - typed rows borrow from the record: a row allocates nothing but the
//!   text of a value that has no text of its own (a time, a series, a
//!   structured number);
//! - times the database cannot hold become NULL in the typed columns (the
//!   record's JSON keeps the original); the gateway's receive time is
//!   checked before rows are built (see `classify`).

use std::borrow::Cow;
use std::collections::HashSet;

use jiff::Timestamp;
use tokio_postgres::types::{Json, ToSql, Type};
use uuid::Uuid;

use hl7edge_protocol::record::{
    Body, Coded, Decimal, Observation, Record, ResultStatus, Standard, StructuredNumeric, Value,
};
use hl7edge_protocol::wire::Entry;

use crate::ingest::sql_types::{Numeric, TextArray};

/// The columns of `records`.
#[derive(Debug, Default)]
pub struct RecordColumns<'a> {
    pub id: Vec<Uuid>,
    pub gateway: Vec<&'a str>,
    pub source: Vec<&'a str>,
    pub message_type: Vec<String>,
    pub control_id: Vec<&'a str>,
    pub sequence: Vec<Option<i64>>,
    pub received_at: Vec<Timestamp>,
    pub message_time: Vec<Option<Timestamp>>,
    pub mapping_version: Vec<String>,
    pub record: Vec<Json<&'a Record>>,
    pub raw: Vec<Option<&'a [u8]>>,
}

/// The record rows of a batch, and the records their typed rows come from.
#[derive(Debug, Default)]
pub struct Rows<'a> {
    pub records: RecordColumns<'a>,
    /// The record of each record row, in the same order.
    sources: Vec<&'a Record>,
    seen: HashSet<Uuid>,
}

impl<'a> Rows<'a> {
    /// Adds the record row of one entry of an envelope from
    /// `gateway`/`source`; false (and nothing added) when the batch already
    /// holds its id.
    pub fn push(&mut self, gateway: &'a str, source: &'a str, entry: &'a Entry) -> bool {
        if !self.seen.insert(entry.id) {
            return false;
        }
        let Some(received_at) = timestamp(entry.received_at_ms) else {
            // `classify` refuses such envelopes; never a row without its time.
            return false;
        };
        let record = &entry.record;
        let r = &mut self.records;
        r.id.push(entry.id);
        r.gateway.push(gateway);
        r.source.push(source);
        r.message_type.push(message_type(record));
        r.control_id.push(record.header.control_id.as_str());
        // A sequence past i64::MAX (never assigned: a store counts from 1)
        // is stored as unknown rather than wrapped.
        r.sequence
            .push(entry.sequence.and_then(|n| i64::try_from(n).ok()));
        r.received_at.push(received_at);
        r.message_time
            .push(record.header.message_time.and_then(|t| timestamp(t.utc_ms)));
        r.mapping_version.push(entry.mapping_version.to_string());
        r.record.push(Json(record));
        r.raw.push(entry.raw.as_deref());
        self.sources.push(record);
        true
    }

    /// How many record rows.
    pub fn len(&self) -> usize {
        self.records.id.len()
    }

    /// True when there are no record rows.
    pub fn is_empty(&self) -> bool {
        self.records.id.is_empty()
    }

    /// The records among these rows whose id is in `new`, in row order,
    /// with their ids: whose typed rows to write.
    pub fn inserted<'r>(
        &'r self,
        new: &'r HashSet<Uuid>,
    ) -> impl Iterator<Item = (Uuid, &'a Record)> + 'r {
        self.records
            .id
            .iter()
            .zip(&self.sources)
            .filter(|(id, _)| new.contains(id))
            .map(|(id, record)| (*id, *record))
    }
}

/// One row of `patient_identifiers`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifierRow<'a> {
    pub record_id: Uuid,
    pub ordinal: i32,
    pub value: &'a str,
    pub authority: Option<&'a str>,
    pub kind: Option<&'a str>,
}

/// A row written by binary `COPY`: its statement, its column types and its values, in the
/// same column order (`N` columns).
pub trait CopyRow<const N: usize> {
    /// The column types, in [`CopyRow::COPY`]'s order.
    const TYPES: [Type; N];
    /// The statement that takes these rows.
    const COPY: &'static str;
    /// The values, in column order.
    fn values(&self) -> [&(dyn ToSql + Sync); N];
}

impl CopyRow<5> for IdentifierRow<'_> {
    const TYPES: [Type; 5] = [Type::UUID, Type::INT4, Type::TEXT, Type::TEXT, Type::TEXT];
    const COPY: &'static str = "COPY patient_identifiers (record_id, ordinal, value, authority, kind) \
         FROM STDIN (FORMAT binary)";

    fn values(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.record_id,
            &self.ordinal,
            &self.value,
            &self.authority,
            &self.kind,
        ]
    }
}

/// The identifier rows of record `id`.
pub fn identifiers(id: Uuid, record: &Record) -> impl Iterator<Item = IdentifierRow<'_>> {
    let identifiers = record.patient.as_ref().map_or(&[][..], |p| &p.identifiers);
    identifiers
        .iter()
        .enumerate()
        .map(move |(n, ident)| IdentifierRow {
            record_id: id,
            ordinal: clamp(n),
            value: ident.value.as_str(),
            authority: ident.authority.as_deref(),
            kind: ident.kind.as_deref(),
        })
}

/// One row of `observations`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow<'a> {
    pub record_id: Uuid,
    pub ordinal: i32,
    pub order_ordinal: i32,
    pub code_system: Option<Cow<'a, str>>,
    pub code: &'a str,
    pub display: Option<&'a str>,
    pub standard: &'static str,
    pub local_system: Cow<'a, str>,
    pub local_code: &'a str,
    pub value_type: &'static str,
    pub value_num: Option<Numeric>,
    pub value_text: Option<Cow<'a, str>>,
    pub unit: Option<&'a str>,
    pub observed_at: Option<Timestamp>,
    pub flags: TextArray<'a>,
    pub status: &'static str,
}

impl CopyRow<16> for ObservationRow<'_> {
    const TYPES: [Type; 16] = [
        Type::UUID,
        Type::INT4,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::NUMERIC,
        Type::TEXT,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::TEXT_ARRAY,
        Type::TEXT,
    ];
    const COPY: &'static str = "COPY observations (record_id, ordinal, order_ordinal, \
         code_system, code, display, standard, local_system, local_code, value_type, value_num, \
         value_text, unit, observed_at, flags, status) FROM STDIN (FORMAT binary)";

    fn values(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.record_id,
            &self.ordinal,
            &self.order_ordinal,
            &self.code_system,
            &self.code,
            &self.display,
            &self.standard,
            &self.local_system,
            &self.local_code,
            &self.value_type,
            &self.value_num,
            &self.value_text,
            &self.unit,
            &self.observed_at,
            &self.flags,
            &self.status,
        ]
    }
}

/// The observation rows of record `id` (one per OBX, numbered over the
/// whole record; observed at OBX-14, or the OBR's time).
pub fn observations(id: Uuid, record: &Record) -> impl Iterator<Item = ObservationRow<'_>> {
    let orders = match &record.body {
        Body::Observations(report) => &report.orders[..],
        _ => &[],
    };
    orders
        .iter()
        .enumerate()
        .flat_map(|(order, group)| {
            group
                .observations
                .iter()
                .map(move |obs| (order, obs, obs.observed_at.or(group.observed_at)))
        })
        .enumerate()
        .map(move |(ordinal, (order, obs, at))| {
            observation(id, (clamp(ordinal), clamp(order)), obs, at)
        })
}

/// One OBX at `(ordinal, order)`, observed `at`.
fn observation(
    id: Uuid,
    (ordinal, order): (i32, i32),
    obs: &Observation,
    at: Option<hl7edge_protocol::record::Timestamp>,
) -> ObservationRow<'_> {
    let (standard, coding) = standard(&obs.code);
    let value = value_columns(&obs.value);
    ObservationRow {
        record_id: id,
        ordinal,
        order_ordinal: order,
        code_system: coding.map(|c| c.system.hl7_code()),
        code: coding.map_or(obs.code.original.code.as_str(), |c| c.code.as_str()),
        display: coding
            .and_then(|c| c.display.as_deref())
            .or(obs.code.original.display.as_deref()),
        standard,
        local_system: obs.code.original.system.hl7_code(),
        local_code: obs.code.original.code.as_str(),
        value_type: value.kind,
        value_num: value.number.map(Numeric),
        value_text: value.text,
        unit: value.unit,
        observed_at: at.and_then(|t| timestamp(t.utc_ms)),
        flags: TextArray(&obs.flags),
        status: status_code(obs.status),
    }
}

/// `ORU_R01`, or the code alone when there is no event (as in the topic).
pub fn message_type(record: &Record) -> String {
    let h = &record.header;
    if h.trigger_event.is_empty() {
        h.message_code.to_string()
    } else {
        format!("{}_{}", h.message_code, h.trigger_event)
    }
}

/// A time the database can hold, from Unix milliseconds.
pub fn timestamp(ms: i64) -> Option<Timestamp> {
    // PostgreSQL's timestamptz starts at 4713 BC; jiff's range is narrower
    // on the far side only for years before -9999, refused here too.
    Timestamp::from_millisecond(ms)
        .ok()
        .filter(|t| t.as_second() > -210_866_803_200)
}

/// Where the observation's standard code is, and that coding.
fn standard(code: &Coded) -> (&'static str, Option<&hl7edge_protocol::record::Coding>) {
    let kind = match code.standard {
        Standard::Original => "original",
        Standard::Alternate => "alternate",
        Standard::Mapped(_) => "mapped",
        Standard::Unmapped => "unmapped",
    };
    (kind, code.standard_coding())
}

/// The value columns of one observation.
struct ValueColumns<'a> {
    kind: &'static str,
    number: Option<Decimal>,
    text: Option<Cow<'a, str>>,
    unit: Option<&'a str>,
}

fn value_columns(value: &Value) -> ValueColumns<'_> {
    let none = |kind| ValueColumns {
        kind,
        number: None,
        text: None,
        unit: None,
    };
    match value {
        Value::None => none("none"),
        Value::Quantity(q) => ValueColumns {
            number: Some(q.value),
            unit: q
                .unit
                .as_ref()
                .and_then(|u| u.ucum.as_deref().or(u.original.as_deref())),
            ..none("quantity")
        },
        Value::Structured(sn) => structured(sn),
        Value::Coded(c) => ValueColumns {
            text: Some(Cow::Borrowed(
                c.standard_coding()
                    .map_or(c.original.code.as_str(), |s| s.code.as_str()),
            )),
            ..none("coded")
        },
        Value::Time(t) => ValueColumns {
            text: timestamp(t.utc_ms).map(|t| Cow::Owned(t.to_string())),
            ..none("time")
        },
        Value::Text(t) => ValueColumns {
            text: Some(Cow::Borrowed(t.as_str())),
            ..none("text")
        },
        Value::Series(series) => ValueColumns {
            unit: series
                .unit
                .as_ref()
                .and_then(|u| u.ucum.as_deref().or(u.original.as_deref())),
            text: Some(Cow::Owned(
                series
                    .values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            )),
            ..none("series")
        },
    }
}

/// SN: the text as sent (`>100`, `10-20`, `1:128`); a plain or `=` number
/// also as a number.
fn structured(sn: &StructuredNumeric) -> ValueColumns<'_> {
    let part = |p: Option<&str>| p.unwrap_or_default().to_owned();
    let text = format!(
        "{}{}{}{}",
        part(sn.comparator.as_deref()),
        sn.low.map(|d| d.to_string()).unwrap_or_default(),
        part(sn.separator.as_deref()),
        sn.high.map(|d| d.to_string()).unwrap_or_default(),
    );
    let plain = matches!(sn.comparator.as_deref(), None | Some("=" | ""))
        && sn.separator.as_deref().is_none_or(str::is_empty)
        && sn.high.is_none();
    ValueColumns {
        kind: "structured",
        number: sn.low.filter(|_| plain),
        text: Some(Cow::Owned(text)),
        unit: sn
            .unit
            .as_ref()
            .and_then(|u| u.ucum.as_deref().or(u.original.as_deref())),
    }
}

/// OBX-11 as its HL7 table 0085 code.
pub fn status_code(status: ResultStatus) -> &'static str {
    match status {
        ResultStatus::Final => "F",
        ResultStatus::Preliminary => "P",
        ResultStatus::Corrected => "C",
        ResultStatus::Cancelled => "X",
        ResultStatus::Deleted => "D",
        ResultStatus::WrongPatient => "W",
        ResultStatus::NotVerified => "R",
        ResultStatus::Pending => "I",
        ResultStatus::Partial => "S",
        ResultStatus::FinalUnchanged => "U",
        ResultStatus::NotAsked => "N",
        ResultStatus::OrderDetail => "O",
        ResultStatus::Unknown => "",
    }
}

fn clamp(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
