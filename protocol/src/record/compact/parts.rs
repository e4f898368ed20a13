//! The compact form (schema 3) of the record frame, the MSH header, and the
//! parts with many optional fields (people, organizations, specimens,
//! timing, comments), written by [`compact_struct!`]: a presence varint,
//! then each present field in declaration order.

use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool, bodies, coded, issues, values};
use crate::record::limits;
use crate::record::{
    Address, Coded, CompactString, Contact, Encounter, EntityId, Header, Identifier, NotCarried,
    Note, Organization, ParentOrder, ParentResult, Patient, PersonName, Practitioner, Processing,
    Quantity, Record, Software, Specimen, Telecom, Timing,
};

/// Record flag: a patient follows the header.
const HAS_PATIENT: u64 = 1 << 0;
/// Record flag: an encounter follows the patient.
const HAS_ENCOUNTER: u64 = 1 << 1;
/// Record flags: MSH-11 processing (bits 2-3).
const PROCESSING_SHIFT: u32 = 2;
/// Record flags: the body kind (bits 4-6, [`bodies::kind`]).
const BODY_SHIFT: u32 = 4;
/// Record flag: issues follow the body.
const HAS_ISSUES: u64 = 1 << 7;
/// Record flag: "not carried" warnings end the record.
const HAS_NOT_CARRIED: u64 = 1 << 8;
/// Every record flag this schema knows.
const RECORD_FLAGS: u32 = 9;

/// A part of a record with a compact form of its own.
pub(super) trait Compact: Sized {
    /// Writes the part.
    fn write<'a>(&'a self, w: &mut Writer<'a>);
    /// Reads what [`Compact::write`] wrote.
    fn read(r: &mut Reader<'_>) -> Result<Self, CompactError>;
}

/// Implements [`Compact`] for a struct: a varint of presence bits (bit `i`
/// for the `i`-th field listed, set when it holds a value), then each field
/// that holds one, as its kind ([`kind`]) writes it. Every field must be
/// listed (the reader builds the struct from the list), and a set bit past
/// the list is refused.
macro_rules! compact_struct {
    ($ty:ident { $($field:ident : $kind:ident),+ $(,)? }) => {
        impl $crate::record::compact::parts::Compact for $ty {
            fn write<'a>(&'a self, w: &mut $crate::record::compact::writer::Writer<'a>) {
                use $crate::record::compact::parts::kind;
                let mut bits: u64 = 0;
                let mut bit: u64 = 1;
                $(
                    if kind::$kind::present(&self.$field) {
                        bits |= bit;
                    }
                    bit <<= 1;
                )+
                let _ = bit;
                w.varint(u128::from(bits));
                $(
                    if kind::$kind::present(&self.$field) {
                        kind::$kind::write(&self.$field, w);
                    }
                )+
            }

            fn read(
                r: &mut $crate::record::compact::reader::Reader<'_>,
            ) -> Result<Self, $crate::record::compact::CompactError> {
                use $crate::record::compact::parts::kind;
                const FIELDS: u32 = [$(stringify!($field)),+].len() as u32;
                let bits = r.presence(FIELDS, stringify!($ty))?;
                let mut bit: u64 = 1;
                let part = $ty {
                    $(
                        $field: {
                            let has = bits & bit != 0;
                            bit <<= 1;
                            if has {
                                kind::$kind::read(r)?
                            } else {
                                Default::default()
                            }
                        },
                    )+
                };
                let _ = bit;
                Ok(part)
            }
        }
    };
}
pub(super) use compact_struct;

/// How each kind of field is written: `present` decides its presence bit,
/// `write` and `read` its bytes when present.
pub(super) mod kind {
    /// `Option<CompactString>` in the text pool.
    pub(in crate::record::compact) mod text {
        use crate::record::CompactString;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, Pool};

        pub(in crate::record::compact) fn present(v: &Option<CompactString>) -> bool {
            v.is_some()
        }
        pub(in crate::record::compact) fn write<'a>(
            v: &'a Option<CompactString>,
            w: &mut Writer<'a>,
        ) {
            if let Some(s) = v {
                w.str(Pool::Text, Some(s));
            }
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Option<CompactString>, CompactError> {
            r.req_str(Pool::Text).map(Some)
        }
    }

    /// `Option<CompactString>` in the code pool (short table codes).
    pub(in crate::record::compact) mod code {
        use crate::record::CompactString;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, Pool};

        pub(in crate::record::compact) fn present(v: &Option<CompactString>) -> bool {
            v.is_some()
        }
        pub(in crate::record::compact) fn write<'a>(
            v: &'a Option<CompactString>,
            w: &mut Writer<'a>,
        ) {
            if let Some(s) = v {
                w.str(Pool::Code, Some(s));
            }
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Option<CompactString>, CompactError> {
            r.req_str(Pool::Code).map(Some)
        }
    }

    /// A `CompactString` the model always has, in the text pool; absent
    /// when empty.
    pub(in crate::record::compact) mod string {
        use crate::record::CompactString;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, Pool};

        pub(in crate::record::compact) fn present(v: &CompactString) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a CompactString, w: &mut Writer<'a>) {
            w.str(Pool::Text, Some(v));
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<CompactString, CompactError> {
            r.req_str(Pool::Text)
        }
    }

    /// A `CompactString` the model always has, in the code pool.
    pub(in crate::record::compact) mod code_string {
        use crate::record::CompactString;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, Pool};

        pub(in crate::record::compact) fn present(v: &CompactString) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a CompactString, w: &mut Writer<'a>) {
            w.str(Pool::Code, Some(v));
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<CompactString, CompactError> {
            r.req_str(Pool::Code)
        }
    }

    /// `Vec<CompactString>` in the text pool.
    pub(in crate::record::compact) mod texts {
        use crate::record::CompactString;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, Pool, values};

        pub(in crate::record::compact) fn present(v: &[CompactString]) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a [CompactString], w: &mut Writer<'a>) {
            values::write_list(w, Pool::Text, v);
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Vec<CompactString>, CompactError> {
            values::read_list(r, Pool::Text)
        }
    }

    /// `Option<Timestamp>`, relative to the message time where shorter.
    pub(in crate::record::compact) mod time {
        use crate::record::Timestamp;
        use crate::record::compact::CompactError;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present(v: &Option<Timestamp>) -> bool {
            v.is_some()
        }
        pub(in crate::record::compact) fn write(v: &Option<Timestamp>, w: &mut Writer<'_>) {
            let base = w.base;
            if let Some(t) = v {
                w.timestamp(t, base.as_ref());
            }
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Option<Timestamp>, CompactError> {
            let base = r.base;
            r.timestamp(base.as_ref()).map(Some)
        }
    }

    /// `Option<Decimal>`.
    pub(in crate::record::compact) mod decimal {
        use crate::record::Decimal;
        use crate::record::compact::CompactError;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present(v: &Option<Decimal>) -> bool {
            v.is_some()
        }
        pub(in crate::record::compact) fn write(v: &Option<Decimal>, w: &mut Writer<'_>) {
            if let Some(d) = v {
                w.decimal(*d);
            }
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Option<Decimal>, CompactError> {
            r.decimal().map(Some)
        }
    }

    /// `bool`: the presence bit is the value.
    pub(in crate::record::compact) mod flag {
        use crate::record::compact::CompactError;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present(v: &bool) -> bool {
            *v
        }
        pub(in crate::record::compact) fn write(_: &bool, _: &mut Writer<'_>) {}
        pub(in crate::record::compact) fn read(_: &mut Reader<'_>) -> Result<bool, CompactError> {
            Ok(true)
        }
    }

    /// `Option<T>` of a part with its own compact form.
    pub(in crate::record::compact) mod item {
        use crate::record::compact::CompactError;
        use crate::record::compact::parts::Compact;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present<T>(v: &Option<T>) -> bool {
            v.is_some()
        }
        pub(in crate::record::compact) fn write<'a, T: Compact>(
            v: &'a Option<T>,
            w: &mut Writer<'a>,
        ) {
            if let Some(item) = v {
                item.write(w);
            }
        }
        pub(in crate::record::compact) fn read<T: Compact>(
            r: &mut Reader<'_>,
        ) -> Result<Option<T>, CompactError> {
            T::read(r).map(Some)
        }
    }

    /// `Vec<T>` of a part with its own compact form: a count, then each.
    pub(in crate::record::compact) mod items {
        use crate::record::compact::CompactError;
        use crate::record::compact::parts::Compact;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present<T>(v: &[T]) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a, T: Compact>(v: &'a [T], w: &mut Writer<'a>) {
            w.len(v.len());
            for item in v {
                item.write(w);
            }
        }
        pub(in crate::record::compact) fn read<T: Compact>(
            r: &mut Reader<'_>,
        ) -> Result<Vec<T>, CompactError> {
            let n = r.len()?;
            let mut out = Vec::with_capacity(crate::record::limits::capacity::<T>(n));
            for _ in 0..n {
                out.push(T::read(r)?);
            }
            Ok(out)
        }
    }

    /// A required coded element (always written).
    pub(in crate::record::compact) mod coded {
        use crate::record::Coded;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, coded};

        pub(in crate::record::compact) fn present(_: &Coded) -> bool {
            true
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a Coded, w: &mut Writer<'a>) {
            coded::write_coded(w, v);
        }
        pub(in crate::record::compact) fn read(r: &mut Reader<'_>) -> Result<Coded, CompactError> {
            coded::read_coded(r)
        }
    }

    /// A [`Patient`](crate::record::Patient) the model always has (always
    /// written).
    pub(in crate::record::compact) mod patient {
        use crate::record::Patient;
        use crate::record::compact::CompactError;
        use crate::record::compact::parts::Compact;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present(_: &Patient) -> bool {
            true
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a Patient, w: &mut Writer<'a>) {
            v.write(w);
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Patient, CompactError> {
            Patient::read(r)
        }
    }

    /// An [`OrderDetail`](crate::record::OrderDetail), absent when empty.
    pub(in crate::record::compact) mod detail {
        use crate::record::OrderDetail;
        use crate::record::compact::CompactError;
        use crate::record::compact::parts::Compact;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;

        pub(in crate::record::compact) fn present(v: &OrderDetail) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a OrderDetail, w: &mut Writer<'a>) {
            v.write(w);
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Box<OrderDetail>, CompactError> {
            OrderDetail::read(r).map(Box::new)
        }
    }

    /// `Vec<Observation>` outside a result group (ADT, orders, doses):
    /// written as a group's results are, relative to the message time.
    pub(in crate::record::compact) mod observations {
        use crate::record::Observation;
        use crate::record::compact::reader::Reader;
        use crate::record::compact::writer::Writer;
        use crate::record::compact::{CompactError, oru};

        pub(in crate::record::compact) fn present(v: &[Observation]) -> bool {
            !v.is_empty()
        }
        pub(in crate::record::compact) fn write<'a>(v: &'a [Observation], w: &mut Writer<'a>) {
            oru::write_results(w, v, None);
        }
        pub(in crate::record::compact) fn read(
            r: &mut Reader<'_>,
        ) -> Result<Vec<Observation>, CompactError> {
            oru::read_results(r, None)
        }
    }
}

/// Flags varint, header, patient, encounter, body, issues, "not carried".
pub(super) fn write_record<'a>(w: &mut Writer<'a>, r: &'a Record) -> Result<(), postcard::Error> {
    let mut flags =
        (r.header.processing as u64) << PROCESSING_SHIFT | bodies::kind(&r.body) << BODY_SHIFT;
    for (present, bit) in [
        (r.patient.is_some(), HAS_PATIENT),
        (r.encounter.is_some(), HAS_ENCOUNTER),
        (!r.issues.is_empty(), HAS_ISSUES),
        (!r.not_carried.is_empty(), HAS_NOT_CARRIED),
    ] {
        if present {
            flags |= bit;
        }
    }
    w.varint(u128::from(flags));
    write_header(w, &r.header);
    w.base = r.header.message_time;
    if let Some(p) = &r.patient {
        p.write(w);
    }
    if let Some(e) = &r.encounter {
        e.write(w);
    }
    bodies::write_body(w, &r.body);
    if !r.issues.is_empty() {
        issues::write_issues(w, &r.issues)?;
    }
    if !r.not_carried.is_empty() {
        // Each: the segment id, then the field shifted left by one with the
        // low bit set when a count above one follows.
        w.len(r.not_carried.len());
        for n in &r.not_carried {
            w.str(Pool::Code, Some(&n.segment));
            let several = n.count != 1;
            w.varint(u128::from(n.field) << 1 | u128::from(several));
            if several {
                w.varint(u128::from(n.count));
            }
        }
    }
    Ok(())
}

/// What [`write_record`] wrote.
pub(super) fn read_record(r: &mut Reader<'_>) -> Result<Record, CompactError> {
    let flags = r.presence(RECORD_FLAGS, "record flags")?;
    let mut header = read_header(r)?;
    header.processing = processing((flags >> PROCESSING_SHIFT) & 3);
    r.base = header.message_time;
    let patient = (flags & HAS_PATIENT != 0)
        .then(|| Patient::read(r))
        .transpose()?;
    let encounter = (flags & HAS_ENCOUNTER != 0)
        .then(|| Encounter::read(r))
        .transpose()?;
    let body = bodies::read_body(r, (flags >> BODY_SHIFT) & 7)?;
    let issues = if flags & HAS_ISSUES != 0 {
        issues::read_issues(r)?
    } else {
        Vec::new()
    };
    let not_carried = if flags & HAS_NOT_CARRIED != 0 {
        read_not_carried(r)?
    } else {
        Vec::new()
    };
    Ok(Record {
        header,
        patient,
        encounter,
        body,
        issues,
        not_carried,
    })
}

/// MSH-11 from its two flag bits.
pub(super) fn processing(bits: u64) -> Processing {
    match bits {
        0 => Processing::Production,
        1 => Processing::Training,
        2 => Processing::Debugging,
        _ => Processing::Unknown,
    }
}

fn read_not_carried(r: &mut Reader<'_>) -> Result<Vec<NotCarried>, CompactError> {
    let n = r.len()?;
    let mut out = Vec::with_capacity(limits::capacity::<NotCarried>(n));
    for _ in 0..n {
        let segment = r.req_str(Pool::Code)?;
        let field = r.varint()?;
        let count = if field & 1 != 0 {
            u32::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?
        } else {
            1
        };
        out.push(NotCarried {
            segment,
            field: u16::try_from(field >> 1).map_err(|_| CompactError::Overflow)?,
            count,
        });
    }
    Ok(out)
}

/// Header presence bit: MSH-3.2.
const SENDING_APPLICATION_ID: u64 = 1 << 0;
/// Header presence bit: MSH-4.2.
const SENDING_FACILITY_ID: u64 = 1 << 1;
/// Header presence bit: MSH-5.
const RECEIVING_APPLICATION: u64 = 1 << 2;
/// Header presence bit: MSH-6.
const RECEIVING_FACILITY: u64 = 1 << 3;
/// Header presence bit: MSH-21.
const PROFILES: u64 = 1 << 4;
/// Header presence bit: SFT.
const SOFTWARE: u64 = 1 << 5;
/// Every header presence bit.
const HEADER_BITS: u32 = 6;

/// Message code, event, control id, version, sending application and
/// facility, message time (absolute), then a presence varint and the rest.
fn write_header<'a>(w: &mut Writer<'a>, h: &'a Header) {
    w.str(Pool::Header, Some(&h.message_code));
    w.str(Pool::Header, Some(&h.trigger_event));
    w.str(Pool::Text, Some(&h.control_id));
    w.str(Pool::Header, Some(&h.version));
    w.str(Pool::Text, Some(&h.sending_application));
    w.str(Pool::Text, Some(&h.sending_facility));
    w.opt_timestamp(h.message_time.as_ref(), None);
    let mut bits = 0;
    for (present, bit) in [
        (h.sending_application_id.is_some(), SENDING_APPLICATION_ID),
        (h.sending_facility_id.is_some(), SENDING_FACILITY_ID),
        (h.receiving_application.is_some(), RECEIVING_APPLICATION),
        (h.receiving_facility.is_some(), RECEIVING_FACILITY),
        (!h.profiles.is_empty(), PROFILES),
        (!h.software.is_empty(), SOFTWARE),
    ] {
        if present {
            bits |= bit;
        }
    }
    w.varint(u128::from(bits));
    for s in [
        &h.sending_application_id,
        &h.sending_facility_id,
        &h.receiving_application,
        &h.receiving_facility,
    ]
    .into_iter()
    .flatten()
    {
        w.str(Pool::Text, Some(s));
    }
    if !h.profiles.is_empty() {
        kind::texts::write(&h.profiles, w);
    }
    if !h.software.is_empty() {
        kind::items::write(&h.software, w);
    }
}

/// The header; its processing id travels in the record flags.
fn read_header(r: &mut Reader<'_>) -> Result<Header, CompactError> {
    let mut h = Header {
        message_code: r.req_str(Pool::Header)?,
        trigger_event: r.req_str(Pool::Header)?,
        control_id: r.req_str(Pool::Text)?,
        version: r.req_str(Pool::Header)?,
        sending_application: r.req_str(Pool::Text)?,
        sending_facility: r.req_str(Pool::Text)?,
        message_time: r.opt_timestamp(None)?,
        ..Header::default()
    };
    let bits = r.presence(HEADER_BITS, "header")?;
    let text = |bit: u64, r: &mut Reader<'_>| -> Result<Option<CompactString>, CompactError> {
        (bits & bit != 0).then(|| r.req_str(Pool::Text)).transpose()
    };
    h.sending_application_id = text(SENDING_APPLICATION_ID, r)?;
    h.sending_facility_id = text(SENDING_FACILITY_ID, r)?;
    h.receiving_application = text(RECEIVING_APPLICATION, r)?;
    h.receiving_facility = text(RECEIVING_FACILITY, r)?;
    if bits & PROFILES != 0 {
        h.profiles = kind::texts::read(r)?;
    }
    if bits & SOFTWARE != 0 {
        h.software = kind::items::read(r)?;
    }
    Ok(h)
}

/// A boxed part is written as the part.
impl<T: Compact> Compact for Box<T> {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        T::write(self, w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CompactError> {
        T::read(r).map(Box::new)
    }
}

impl Compact for Coded {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        coded::write_coded(w, self);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CompactError> {
        coded::read_coded(r)
    }
}

/// A quantity: a byte (0 no unit, 1 a unit known by its UCUM code only, 2
/// a unit with both forms), the decimal, then the unit; then, when the
/// quantity was converted to the unit a mapping row expects, the converted
/// value (see [`values::write_opt_converted`]).
impl Compact for Quantity {
    fn write<'a>(&'a self, w: &mut Writer<'a>) {
        values::write_opt_unit_and(w, self.unit.as_ref(), |w| w.decimal(self.value));
        values::write_opt_converted(w, self.converted.as_ref());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CompactError> {
        let (value, unit) = values::read_opt_unit_and(r, |r| r.decimal())?;
        Ok(Quantity {
            value,
            unit,
            converted: values::read_opt_converted(r)?,
        })
    }
}

compact_struct!(Identifier {
    value: string,
    authority: text,
    kind: code,
    authority_id: text,
    facility: text,
});

compact_struct!(EntityId {
    id: string,
    authority: text,
    authority_id: text,
});

compact_struct!(PersonName {
    family: text,
    given: text,
    middle: text,
    prefix: code,
    suffix: code,
    degree: code,
    kind: code,
});

compact_struct!(Practitioner {
    id: text,
    name: item,
    authority: text,
    authority_id: text,
    kind: code,
});

compact_struct!(Address {
    street: text,
    other: text,
    city: text,
    state: code,
    postal_code: text,
    country: code,
    kind: code,
    county: text,
});

compact_struct!(Telecom {
    value: string,
    text: text,
    use_code: code,
    equipment: code,
});

compact_struct!(Organization {
    name: text,
    id: text,
    authority: text,
    authority_id: text,
    kind: code,
    address: item,
    phones: items,
});

compact_struct!(Contact {
    name: item,
    relationship: item,
    addresses: items,
    phones: items,
    role: item,
    organization: text,
});

compact_struct!(Patient {
    identifiers: items,
    name: item,
    birth_date: time,
    sex: code,
    addresses: items,
    phones: items,
    races: items,
    ethnicities: items,
    account: item,
    marital_status: item,
    language: item,
    other_names: items,
    mothers_maiden_name: item,
    religion: item,
    birth_place: text,
    deceased_at: time,
    deceased: code,
    contacts: items,
    notes: items,
});

compact_struct!(Note {
    text: string,
    source: code,
    kind: item,
    author: item,
    written_at: time,
});

compact_struct!(Software {
    vendor: text,
    version: text,
    product: text,
    binary_id: text,
    installed_at: time,
});

compact_struct!(Encounter {
    class: code,
    location: text,
    attending: item,
    visit_number: item,
    facility: text,
    admitted_at: time,
    discharged_at: time,
    referring: item,
    consulting: items,
    admitting: item,
    hospital_service: code,
    admission_type: code,
    patient_type: code,
    preadmit_number: item,
    prior_location: text,
    financial_class: code,
    admit_source: code,
    discharge_disposition: code,
    discharged_to: text,
    servicing_facility: text,
    alternate_visit_id: item,
});

compact_struct!(Specimen {
    placer_id: item,
    filler_id: item,
    kind: item,
    role: item,
    collected_at: time,
    received_at: time,
    source_site: item,
    parent_ids: items,
    additives: items,
    collection_method: item,
    collection_site: item,
    amount: item,
    description: text,
    collected_until: time,
    reject_reasons: items,
    conditions: items,
    container: item,
    accession_id: item,
    notes: items,
});

compact_struct!(Timing {
    quantity: item,
    start: time,
    end: time,
    priorities: items,
    condition: text,
    instructions: text,
    occurrences: decimal,
});

compact_struct!(ParentResult {
    code: item,
    sub_id: text,
    value: text,
});

compact_struct!(ParentOrder {
    placer: item,
    filler: item,
});
