//! What one record may hold: hard limits that bound the memory a decoder
//! spends on one record, whatever the bytes claim.
//!
//! | limit | what it counts |
//! |---|---|
//! | [`MAX_ORDERS`] | orders of a record: OBR groups of a result, ORC orders, RXA immunizations |
//! | [`MAX_OBSERVATIONS`] | results (OBX) of a record, all orders together |
//! | [`MAX_IDENTIFIERS`] | identifiers of the patient, and identifiers merged away |
//! | [`MAX_ISSUES`] | issues a record carries |
//! | [`MAX_VALUES`] | flags, equipment ids and series numbers, all results together |
//! | [`MAX_TEXT_BYTES`] | bytes of text in the header, patient, results and issues |
//! | [`MAX_GENERIC_SEGMENTS`] | segments of a record kept as text |
//! | [`MAX_PARTS`] | items of every other list of a record together (names, addresses, phones, people, comments, specimens, codes, ...) |
//!
//! Orders, results and generic segments each come from one segment, and the
//! identifier and issue limits are those of a message
//! ([`crate::hl7::limits`]), so no message the gateway accepts makes a
//! record over them; the encoder checks them all the same ([`check`], and
//! the compact writer counts the text and list items it writes as the
//! reader counts them): nothing is ever written that a decoder would
//! refuse.
//!
//! A decoder also never reserves memory up front for more items than
//! [`PREALLOC_BYTES`] hold: a count read from the input is a claim, and
//! the vector grows only with items actually read.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use crate::hl7::limits as message;
use crate::record::{Body, Coded, Coding, Record, Standard, Value};

/// Most orders of a record.
pub const MAX_ORDERS: usize = message::MAX_SEGMENTS;

/// Most results of a record.
pub const MAX_OBSERVATIONS: usize = message::MAX_SEGMENTS;

/// Most identifiers per list (the patient's, the merged ones).
pub const MAX_IDENTIFIERS: usize = message::MAX_IDENTIFIERS;

/// Most issues of a record: those listed, and one summary each from
/// validation and normalization.
pub const MAX_ISSUES: usize = message::MAX_ISSUES + 2;

/// Most flags, equipment ids and series numbers of a record together.
pub const MAX_VALUES: usize = 1 << 20;

/// Most bytes of text in a record's header, patient, results and issues
/// (a result body's text: strings the compact form may repeat by
/// reference).
pub const MAX_TEXT_BYTES: usize = 16 << 20;

/// Most segments of a record kept as text.
pub const MAX_GENERIC_SEGMENTS: usize = message::MAX_SEGMENTS;

/// Most items of the lists without a limit of their own, all together:
/// four per segment a message may have (a contact, a comment, a name, a
/// code each) is far more than any message gives.
pub const MAX_PARTS: usize = 4 * message::MAX_SEGMENTS;

/// Most bytes a decoder reserves for one list before reading its items.
pub const PREALLOC_BYTES: usize = 64 << 10;

/// A record over one of the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the record holds more than {limit} {what}, the most a record may hold")]
pub struct LimitError {
    /// What is counted (`results`, `bytes of text`, ...).
    pub what: &'static str,
    /// The limit.
    pub limit: usize,
}

/// How many items of `T` to reserve for a list that claims `n`.
pub fn capacity<T>(n: usize) -> usize {
    n.min(PREALLOC_BYTES / std::mem::size_of::<T>().max(1))
}

/// `Ok` when `n` is within `limit`.
pub fn within(n: usize, limit: usize, what: &'static str) -> Result<(), LimitError> {
    if n > limit {
        Err(LimitError { what, limit })
    } else {
        Ok(())
    }
}

/// Checks a record against every limit, counting what the compact form's
/// decoder counts.
pub fn check(record: &Record) -> Result<(), LimitError> {
    let mut text = Text(0);
    let h = &record.header;
    for s in [
        &h.message_code,
        &h.trigger_event,
        &h.control_id,
        &h.version,
        &h.sending_application,
        &h.sending_facility,
    ] {
        text.add(s);
    }
    if let Some(p) = &record.patient {
        within(p.identifiers.len(), MAX_IDENTIFIERS, "patient identifiers")?;
        for id in &p.identifiers {
            text.add(&id.value);
            text.opt(id.authority.as_deref());
            text.opt(id.kind.as_deref());
        }
        if let Some(n) = &p.name {
            for part in [&n.family, &n.given, &n.middle] {
                text.opt(part.as_deref());
            }
        }
        text.opt(p.sex.as_deref());
    }
    within(record.issues.len(), MAX_ISSUES, "issues")?;
    for i in &record.issues {
        text.add(&i.location.segment);
        text.add(&i.message);
    }
    match &record.body {
        Body::Observations(report) => check_results(report, &mut text)?,
        Body::Patient(event) => {
            within(
                event.merged_from.len(),
                MAX_IDENTIFIERS,
                "merged identifiers",
            )?;
        }
        Body::Orders(o) => within(o.orders.len(), MAX_ORDERS, "orders")?,
        Body::Immunizations(i) => within(i.immunizations.len(), MAX_ORDERS, "immunizations")?,
        Body::Generic(g) => within(g.segments.len(), MAX_GENERIC_SEGMENTS, "segments")?,
    }
    within(text.0, MAX_TEXT_BYTES, "bytes of text")
}

fn check_results(
    report: &crate::record::ObservationReport,
    text: &mut Text,
) -> Result<(), LimitError> {
    within(report.orders.len(), MAX_ORDERS, "orders")?;
    let (mut results, mut values) = (0usize, 0usize);
    for g in &report.orders {
        results += g.observations.len();
        for s in [&g.placer_order, &g.filler_order, &g.status] {
            text.opt(s.as_deref());
        }
        text.coded(g.service.as_deref());
        for o in &g.observations {
            values += o.flags.len() + o.equipment.len();
            text.coded(Some(&o.code));
            text.coded(o.method.as_deref());
            text.opt(o.sub_id.as_deref());
            for s in o.flags.iter().chain(&o.equipment) {
                text.add(s);
            }
            if let Some(r) = &o.reference_range {
                text.opt(r.text.as_deref());
            }
            values += text.value(&o.value);
        }
    }
    within(results, MAX_OBSERVATIONS, "results")?;
    within(
        values,
        MAX_VALUES,
        "flags, equipment ids and series numbers",
    )
}

/// Bytes of text counted so far.
struct Text(usize);

impl Text {
    fn add(&mut self, s: &str) {
        self.0 = self.0.saturating_add(s.len());
    }

    fn opt(&mut self, s: Option<&str>) {
        self.add(s.unwrap_or_default());
    }

    fn coding(&mut self, c: &Coding) {
        self.add(&c.code);
        self.opt(c.display.as_deref());
        if let crate::normalize::coding_system::CodingSystem::Local(n)
        | crate::normalize::coding_system::CodingSystem::Other(n) = &c.system
        {
            self.add(n);
        }
    }

    fn coded(&mut self, c: Option<&Coded>) {
        let Some(c) = c else { return };
        self.coding(&c.original);
        if let Some(a) = &c.alternate {
            self.coding(a);
        }
        if let Standard::Mapped(m) = &c.standard {
            self.coding(m);
        }
    }

    /// Counts a value's text; returns how many series numbers it holds.
    fn value(&mut self, v: &Value) -> usize {
        let unit = |t: &mut Text, u: &crate::record::Unit| {
            t.opt(u.ucum.as_deref());
            t.opt(u.original.as_deref());
        };
        match v {
            Value::Quantity(q) => {
                if let Some(u) = &q.unit {
                    unit(self, u);
                }
            }
            Value::Structured(sn) => {
                self.opt(sn.comparator.as_deref());
                self.opt(sn.separator.as_deref());
                if let Some(u) = &sn.unit {
                    unit(self, u);
                }
            }
            Value::Coded(c) => self.coded(Some(c)),
            Value::Text(t) => self.add(t),
            Value::Series(series) => return series.values.len(),
            Value::None | Value::Time(_) => {}
        }
        0
    }
}

/// Deserializes a list of at most `limit` items, reserving memory only
/// for [`PREALLOC_BYTES`] up front (for the derived form of record parts).
pub(crate) fn capped_vec<'de, D, T>(
    d: D,
    limit: usize,
    what: &'static str,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Capped<T> {
        limit: usize,
        what: &'static str,
        item: std::marker::PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Capped<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {} {}", self.limit, self.what)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let claimed = seq.size_hint().unwrap_or(0);
            if claimed > self.limit {
                return Err(serde::de::Error::custom(LimitError {
                    what: self.what,
                    limit: self.limit,
                }));
            }
            let mut out = Vec::with_capacity(capacity::<T>(claimed));
            while let Some(item) = seq.next_element()? {
                if out.len() == self.limit {
                    return Err(serde::de::Error::custom(LimitError {
                        what: self.what,
                        limit: self.limit,
                    }));
                }
                out.push(item);
            }
            Ok(out)
        }
    }

    d.deserialize_seq(Capped {
        limit,
        what,
        item: std::marker::PhantomData,
    })
}

/// [`capped_vec`] for orders.
pub(crate) fn orders<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    capped_vec(d, MAX_ORDERS, "orders")
}

/// [`capped_vec`] for identifiers.
pub(crate) fn identifiers<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    capped_vec(d, MAX_IDENTIFIERS, "identifiers")
}

/// [`capped_vec`] for segments kept as text.
pub(crate) fn segments<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    capped_vec(d, MAX_GENERIC_SEGMENTS, "segments")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::{ErrorCode, Issue, Location};
    use crate::record::{CompactString, Header, ObservationReport, Processing};

    fn with_issues(n: usize, text: &str) -> Record {
        Record {
            header: Header {
                message_code: CompactString::from("ORU"),
                trigger_event: CompactString::from("R01"),
                control_id: CompactString::from("1"),
                version: CompactString::from("2.5.1"),
                sending_application: CompactString::from("A"),
                sending_facility: CompactString::from("B"),
                message_time: None,
                processing: Processing::Production,
                ..Header::default()
            },
            body: Body::Observations(ObservationReport { orders: Vec::new() }),
            issues: (0..n)
                .map(|i| Issue::warning(ErrorCode::DataType, Location::segment("OBX", i), text))
                .collect(),
            ..Record::default()
        }
    }

    fn stored(record: Record) -> crate::wire::StoredRecord {
        crate::wire::StoredRecord {
            mapping_version: crate::normalize::mapping::MappingTable::empty()
                .version()
                .clone(),
            record,
        }
    }

    #[test]
    fn a_record_at_a_limit_is_written_and_read_and_one_over_it_is_never_written() {
        let at = stored(with_issues(MAX_ISSUES, "w"));
        let bytes = at.encode().unwrap();
        assert_eq!(crate::wire::StoredRecord::decode(&bytes).unwrap(), at);
        let over = stored(with_issues(MAX_ISSUES + 1, "w"));
        let err = over.encode().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the record holds more than {MAX_ISSUES} issues, the most a record may hold")
        );
        assert!(postcard::to_allocvec(&over.record).is_err(), "nor by serde");
    }

    #[test]
    fn text_repeated_by_reference_counts_each_time_it_is_held() {
        let long = "x".repeat(MAX_TEXT_BYTES / 4 + 1);
        let record = with_issues(4, &long);
        let over = LimitError {
            what: "bytes of text",
            limit: MAX_TEXT_BYTES,
        };
        assert_eq!(check(&record), Err(over.clone()));
        // The compact writer, which would repeat the text by reference,
        // counts it as the reader does and refuses too.
        assert_eq!(
            crate::record::encode_compact(&record),
            Err(crate::record::CompactError::Limit(over))
        );
        assert!(check(&with_issues(3, &long)).is_ok());
        let three = crate::record::encode_compact(&with_issues(3, &long)).unwrap();
        assert!(three.len() < MAX_TEXT_BYTES / 2, "written by reference");
    }
}
