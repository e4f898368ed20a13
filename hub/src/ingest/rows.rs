//! Database rows from decoded envelopes, column by column: one vector per
//! column, so one statement inserts a whole batch through `unnest` (one
//! round trip, one plan, no temporary tables).
//!
//! Invariants:
//! - every column vector of a table has the same length (one element per
//!   row), whatever the record holds;
//! - a record id appears at most once in [`Rows::records`] (the first copy
//!   in a batch wins; a republished record carries the same content), and
//!   typed rows are pushed only with their record's row;
//! - times the database cannot hold become NULL in the typed columns (the
//!   record's JSON keeps the original); the gateway's receive time is
//!   checked before rows are built (see `classify`).

use std::collections::HashSet;

use jiff::Timestamp;
use tokio_postgres::types::Json;
use uuid::Uuid;

use hl7edge_protocol::record::{
    Body, Coded, Observation, Record, ResultStatus, Standard, StructuredNumeric, Value,
};
use hl7edge_protocol::wire::Entry;

/// Separator of the flags packed into one text per observation (ASCII unit
/// separator; the statement splits it back into a `text[]`).
pub const FLAG_SEPARATOR: char = '\u{1f}';

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

/// The columns of `patient_identifiers`.
#[derive(Debug, Default)]
pub struct IdentifierColumns<'a> {
    pub record_id: Vec<Uuid>,
    pub ordinal: Vec<i32>,
    pub value: Vec<&'a str>,
    pub authority: Vec<Option<&'a str>>,
    pub kind: Vec<Option<&'a str>>,
}

/// The columns of `observations`.
#[derive(Debug, Default)]
pub struct ObservationColumns<'a> {
    pub record_id: Vec<Uuid>,
    pub ordinal: Vec<i32>,
    pub order_ordinal: Vec<i32>,
    pub code_system: Vec<Option<String>>,
    pub code: Vec<&'a str>,
    pub display: Vec<Option<&'a str>>,
    pub standard: Vec<&'static str>,
    pub local_system: Vec<String>,
    pub local_code: Vec<&'a str>,
    pub value_type: Vec<&'static str>,
    pub value_num: Vec<Option<String>>,
    pub value_text: Vec<Option<String>>,
    pub unit: Vec<Option<&'a str>>,
    pub observed_at: Vec<Option<Timestamp>>,
    pub flags: Vec<String>,
    pub status: Vec<&'static str>,
}

/// Every row of a batch's records, by table.
#[derive(Debug, Default)]
pub struct Rows<'a> {
    pub records: RecordColumns<'a>,
    pub identifiers: IdentifierColumns<'a>,
    pub observations: ObservationColumns<'a>,
    seen: HashSet<Uuid>,
}

impl<'a> Rows<'a> {
    /// Adds the rows of one entry of an envelope from `gateway`/`source`;
    /// false (and nothing added) when the batch already holds its id.
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
        self.push_identifiers(entry.id, record);
        if let Body::Observations(report) = &record.body {
            let mut ordinal = 0;
            for (order, group) in report.orders.iter().enumerate() {
                for obs in &group.observations {
                    let at = obs.observed_at.or(group.observed_at);
                    self.observations
                        .push(entry.id, (ordinal, clamp(order)), obs, at);
                    ordinal += 1;
                }
            }
        }
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

    fn push_identifiers(&mut self, id: Uuid, record: &'a Record) {
        let Some(patient) = &record.patient else {
            return;
        };
        for (n, ident) in patient.identifiers.iter().enumerate() {
            let p = &mut self.identifiers;
            p.record_id.push(id);
            p.ordinal.push(clamp(n));
            p.value.push(ident.value.as_str());
            p.authority.push(ident.authority.as_deref());
            p.kind.push(ident.kind.as_deref());
        }
    }
}

impl<'a> ObservationColumns<'a> {
    /// One OBX at `(ordinal, order)`, observed `at` (OBX-14, or the OBR's time).
    fn push(
        &mut self,
        id: Uuid,
        (ordinal, order): (i32, i32),
        obs: &'a Observation,
        at: Option<hl7edge_protocol::record::Timestamp>,
    ) {
        let (standard, coding) = standard(&obs.code);
        self.record_id.push(id);
        self.ordinal.push(ordinal);
        self.order_ordinal.push(order);
        self.code_system.push(coding.map(|c| c.system.to_string()));
        self.code
            .push(coding.map_or(obs.code.original.code.as_str(), |c| c.code.as_str()));
        self.display.push(
            coding
                .and_then(|c| c.display.as_deref())
                .or(obs.code.original.display.as_deref()),
        );
        self.standard.push(standard);
        self.local_system.push(obs.code.original.system.to_string());
        self.local_code.push(obs.code.original.code.as_str());
        let value = value_columns(&obs.value);
        self.value_type.push(value.kind);
        self.value_num.push(value.number);
        self.value_text.push(value.text);
        self.unit.push(value.unit);
        self.observed_at.push(at.and_then(|t| timestamp(t.utc_ms)));
        let mut flags = String::new();
        for (n, flag) in obs.flags.iter().enumerate() {
            if n > 0 {
                flags.push(FLAG_SEPARATOR);
            }
            flags.push_str(flag);
        }
        self.flags.push(flags);
        self.status.push(status_code(obs.status));
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
    number: Option<String>,
    text: Option<String>,
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
            number: Some(q.value.to_string()),
            unit: q
                .unit
                .as_ref()
                .and_then(|u| u.ucum.as_deref().or(u.original.as_deref())),
            ..none("quantity")
        },
        Value::Structured(sn) => structured(sn),
        Value::Coded(c) => ValueColumns {
            text: Some(
                c.standard_coding()
                    .map_or(c.original.code.to_string(), |s| s.code.to_string()),
            ),
            ..none("coded")
        },
        Value::Time(t) => ValueColumns {
            text: timestamp(t.utc_ms).map(|t| t.to_string()),
            ..none("time")
        },
        Value::Text(t) => ValueColumns {
            text: Some(t.to_string()),
            ..none("text")
        },
        Value::Series(series) => ValueColumns {
            unit: series
                .unit
                .as_ref()
                .and_then(|u| u.ucum.as_deref().or(u.original.as_deref())),
            text: Some(
                series
                    .values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
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
        number: sn.low.filter(|_| plain).map(|d| d.to_string()),
        text: Some(text),
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
