//! The compact form of wire schema 2, read into the current model.
//!
//! Schema 2 records stay readable: payloads a hub received before an
//! upgrade, envelopes replayed from a broker, rows an older gateway queued.
//! Everything schema 2 could say has a place in the current model (nothing
//! is refused that schema 2 accepted): its fields map one to one, except
//! that an ADT event's encounter is now the record's, and a series of
//! numbers is a [`Series`] of one channel without a unit.
//!
//! Invariant: this module is frozen. Its layouts are schema 2's: a record
//! flags byte, the header, the patient, an observation report in compact
//! form or any other body in postcard's derived form of the schema-2 types
//! (kept here, frozen, as `*V2`), then the issues. It shares with schema 3
//! only what did not change: strings, timestamps, decimals, coded elements,
//! units, structured numerics, ranges and issues.

use serde::Deserialize;

use super::coded::{Layout, read_coded_in, read_opt_coded_in};
use super::reader::Reader;
use super::values::{read_list, read_range, read_structured, read_unit};
use super::{CompactError, Pool, issues, parts};
use crate::normalize::coding_system::CodingSystem;
use crate::record::Converted;
use crate::record::limits;
use crate::record::{
    Body, Coded, Coding, CompactString, Decimal, Encounter, GenericMessage, Header, Identifier,
    Immunization, ImmunizationReport, Observation, ObservationGroup, ObservationReport, Order,
    OrderMessage, Patient, PatientEvent, PersonName, Practitioner, Precision, Quantity, Record,
    ReferenceRange, ResultStatus, Series, Standard, StructuredNumeric, Timestamp, Unit, Value,
};

/// Record flag: a patient follows the header.
const HAS_PATIENT: u8 = 0x01;
/// Record flag: the patient has a name.
const HAS_NAME: u8 = 0x02;
/// Record flags: MSH-11 processing (bits 2-3).
const PROCESSING_SHIFT: u8 = 2;
/// Record flag: the body is an observation report in compact form (else a
/// postcard `Body`).
const COMPACT_ORU: u8 = 0x10;
/// Record flag: issues end the record.
const HAS_ISSUES: u8 = 0x20;

/// Result header bits 0-3: the status; 4-6: the value kind.
const STATUS_MASK: u64 = 0x0f;
/// Result header: where the value kind starts.
const KIND_SHIFT: u32 = 4;
/// Result header: a reference range follows.
const HAS_RANGE: u64 = 1 << 7;
/// Result header: abnormal flags follow.
const HAS_FLAGS: u64 = 1 << 8;
/// Result header: an observation time follows.
const HAS_TIME: u64 = 1 << 9;
/// Result header: equipment identifiers follow.
const HAS_EQUIPMENT: u64 = 1 << 10;
/// Result header: a sub-id follows.
const HAS_SUB_ID: u64 = 1 << 11;
/// Result header: the observation time is the previous result's.
const SAME_TIME: u64 = 1 << 12;
/// Result header: the quantity's unit is its UCUM code only.
const UCUM_ONLY: u64 = 1 << 13;
/// Result header: a method follows.
const HAS_METHOD: u64 = 1 << 14;

/// Result header: the quantity's value converted to the unit the mapping
/// table expects follows the value (decimal, then the unit). Added to
/// schema 2 after its release (a superset: earlier schema 2 never set it).
const HAS_CONVERTED: u64 = 1 << 15;
/// Result header: that conversion was rounded (not exact).
const CONVERTED_ROUNDED: u64 = 1 << 16;

/// Every result status, by its number on the wire.
const STATUSES: [ResultStatus; 13] = [
    ResultStatus::Final,
    ResultStatus::Preliminary,
    ResultStatus::Corrected,
    ResultStatus::Cancelled,
    ResultStatus::Deleted,
    ResultStatus::WrongPatient,
    ResultStatus::NotVerified,
    ResultStatus::Pending,
    ResultStatus::Partial,
    ResultStatus::FinalUnchanged,
    ResultStatus::NotAsked,
    ResultStatus::OrderDetail,
    ResultStatus::Unknown,
];

/// Flags byte, header, patient, body, issues.
pub(super) fn read_record(r: &mut Reader<'_>) -> Result<Record, CompactError> {
    let flags = r.byte()?;
    let mut header = read_header(r)?;
    header.processing = parts::processing(u64::from((flags >> PROCESSING_SHIFT) & 3));
    let base = header.message_time;
    let patient = if flags & HAS_PATIENT != 0 {
        Some(read_patient(r, flags & HAS_NAME != 0, base.as_ref())?)
    } else {
        None
    };
    let (body, encounter) = if flags & COMPACT_ORU != 0 {
        (Body::Observations(read_report(r, base.as_ref())?), None)
    } else {
        let (body, rest) = postcard::take_from_bytes::<BodyV2>(r.rest())?;
        r.set_rest(rest);
        body.into_current()
    };
    let issues = if flags & HAS_ISSUES != 0 {
        issues::read_issues(r)?
    } else {
        Vec::new()
    };
    Ok(Record {
        header,
        patient,
        encounter,
        body,
        issues,
        not_carried: Vec::new(),
    })
}

fn read_header(r: &mut Reader<'_>) -> Result<Header, CompactError> {
    Ok(Header {
        message_code: r.req_str(Pool::Header)?,
        trigger_event: r.req_str(Pool::Header)?,
        control_id: r.req_str(Pool::Text)?,
        version: r.req_str(Pool::Header)?,
        sending_application: r.req_str(Pool::Text)?,
        sending_facility: r.req_str(Pool::Text)?,
        message_time: r.opt_timestamp(None)?,
        ..Header::default()
    })
}

fn read_patient(
    r: &mut Reader<'_>,
    has_name: bool,
    base: Option<&Timestamp>,
) -> Result<Patient, CompactError> {
    let n = r.count(limits::MAX_IDENTIFIERS, "patient identifiers")?;
    let mut identifiers = Vec::with_capacity(limits::capacity::<Identifier>(n));
    for _ in 0..n {
        identifiers.push(Identifier {
            value: r.req_str(Pool::Text)?,
            authority: r.str(Pool::Text)?,
            kind: r.str(Pool::Code)?,
            ..Identifier::default()
        });
    }
    let name = if has_name {
        Some(PersonName {
            family: r.str(Pool::Text)?,
            given: r.str(Pool::Text)?,
            middle: r.str(Pool::Text)?,
            ..PersonName::default()
        })
    } else {
        None
    };
    Ok(Patient {
        identifiers,
        name,
        birth_date: r.opt_timestamp(base)?,
        sex: r.str(Pool::Code)?,
        ..Patient::default()
    })
}

fn read_report(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
) -> Result<ObservationReport, CompactError> {
    let n = r.count(limits::MAX_ORDERS, "orders")?;
    let mut orders = Vec::with_capacity(limits::capacity::<ObservationGroup>(n));
    for _ in 0..n {
        orders.push(read_group(r, base)?);
    }
    Ok(ObservationReport { orders })
}

fn read_group(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
) -> Result<ObservationGroup, CompactError> {
    let placer_order = r.str(Pool::Text)?;
    let filler_order = r.str(Pool::Text)?;
    let status = r.str(Pool::Code)?;
    let service = read_opt_coded_in(r, Layout::V2)?;
    let observed_at = r.opt_timestamp(base)?;
    let reported_at = r.opt_timestamp(base)?;
    let n = r.count(limits::MAX_OBSERVATIONS, "results")?;
    r.add_results(n)?;
    let mut observations: Vec<Observation> = Vec::with_capacity(limits::capacity::<Observation>(n));
    let mut previous = observed_at;
    for _ in 0..n {
        let o = read_observation(r, previous.as_ref().or(base), previous.as_ref())?;
        previous = o.observed_at.or(previous);
        observations.push(o);
    }
    Ok(ObservationGroup {
        placer_order,
        filler_order,
        service: service.map(Box::new),
        observed_at,
        reported_at,
        status,
        observations,
        ..ObservationGroup::default()
    })
}

fn read_observation(
    r: &mut Reader<'_>,
    base: Option<&Timestamp>,
    previous: Option<&Timestamp>,
) -> Result<Observation, CompactError> {
    let header = u64::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?;
    let status = usize::try_from(header & STATUS_MASK).unwrap_or(usize::MAX);
    let status = *STATUSES.get(status).ok_or(CompactError::BadTag {
        what: "result status",
        tag: header & STATUS_MASK,
    })?;
    let code = read_coded_in(r, Layout::V2)?;
    let has = |bit: u64| header & bit != 0;
    let sub_id = has(HAS_SUB_ID).then(|| r.req_str(Pool::Text)).transpose()?;
    let mut value = read_value(r, (header >> KIND_SHIFT) & 7, base, has(UCUM_ONLY))?;
    if has(HAS_CONVERTED) {
        let Value::Quantity(q) = &mut value else {
            return Err(CompactError::Missing("quantity for a converted value"));
        };
        q.converted = Some(Converted {
            value: r.decimal()?,
            unit: r.req_str(Pool::Unit)?,
            exact: !has(CONVERTED_ROUNDED),
        });
    }
    let reference_range = has(HAS_RANGE).then(|| read_range(r)).transpose()?;
    let flags = has(HAS_FLAGS)
        .then(|| read_list(r, Pool::Code))
        .transpose()?
        .unwrap_or_default();
    let observed_at = if has(SAME_TIME) {
        Some(*previous.ok_or(CompactError::Missing("previous time"))?)
    } else if has(HAS_TIME) {
        Some(r.timestamp(base)?)
    } else {
        None
    };
    let equipment = has(HAS_EQUIPMENT)
        .then(|| read_list(r, Pool::Text))
        .transpose()?
        .unwrap_or_default();
    let method = has(HAS_METHOD)
        .then(|| read_coded_in(r, Layout::V2))
        .transpose()?;
    Ok(Observation {
        code,
        sub_id,
        value,
        reference_range,
        flags,
        status,
        observed_at,
        equipment,
        method: method.map(Box::new),
        ..Observation::default()
    })
}

fn read_value(
    r: &mut Reader<'_>,
    kind: u64,
    base: Option<&Timestamp>,
    ucum_only: bool,
) -> Result<Value, CompactError> {
    Ok(match kind {
        0 => Value::None,
        1 | 2 => Value::Quantity(Quantity {
            value: r.decimal()?,
            unit: match (kind, ucum_only) {
                (1, _) => None,
                (_, true) => Some(Unit {
                    ucum: Some(r.req_str(Pool::Unit)?),
                    original: None,
                }),
                _ => Some(read_unit(r)?),
            },
            converted: None,
        }),
        3 => Value::Structured(read_structured(r)?),
        4 => Value::Coded(read_coded_in(r, Layout::V2)?),
        5 => Value::Time(r.timestamp(base)?),
        6 => Value::Text(r.req_str(Pool::Text)?),
        _ => {
            let n = r.count(limits::MAX_VALUES, "series numbers")?;
            r.add_values(n)?;
            let mut values = Vec::with_capacity(limits::capacity::<Decimal>(n));
            for _ in 0..n {
                values.push(r.decimal()?);
            }
            series(values)
        }
    })
}

/// A schema-2 series: one channel, no unit.
fn series(values: Vec<Decimal>) -> Value {
    Value::Series(Series {
        values,
        channels: 1,
        unit: None,
    })
}

// The schema-2 body types, frozen, in postcard's derived form. Field order
// and variant order are the wire: never change them.

/// Schema 2's `Body`.
#[derive(Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "read once per schema 2 record and converted at once"
)]
enum BodyV2 {
    Observations(ObservationReportV2),
    Patient(PatientEventV2),
    Orders(OrderMessageV2),
    Immunizations(ImmunizationReportV2),
    Generic(GenericMessageV2),
}

impl BodyV2 {
    /// The current body, and the encounter an ADT event carried.
    fn into_current(self) -> (Body, Option<Encounter>) {
        match self {
            BodyV2::Observations(r) => (Body::Observations(r.into()), None),
            BodyV2::Patient(e) => {
                let encounter = e.encounter.map(Into::into);
                let event = PatientEvent {
                    recorded_at: e.recorded_at.map(Into::into),
                    occurred_at: e.occurred_at.map(Into::into),
                    merged_from: e.merged_from.into_iter().map(Into::into).collect(),
                    ..PatientEvent::default()
                };
                (Body::Patient(event), encounter)
            }
            BodyV2::Orders(o) => (
                Body::Orders(OrderMessage {
                    orders: o.orders.into_iter().map(Into::into).collect(),
                }),
                None,
            ),
            BodyV2::Immunizations(i) => (
                Body::Immunizations(ImmunizationReport {
                    immunizations: i.immunizations.into_iter().map(Into::into).collect(),
                    observations: Vec::new(),
                }),
                None,
            ),
            BodyV2::Generic(g) => (
                Body::Generic(GenericMessage {
                    delimiters: g.delimiters,
                    segments: g.segments,
                }),
                None,
            ),
        }
    }
}

#[derive(Deserialize)]
enum CodingSystemV2 {
    Loinc,
    SnomedCt,
    Icd10Cm,
    Icd10,
    Icd9Cm,
    RxNorm,
    Mdc,
    Cvx,
    Ucum,
    Ndc,
    Cpt,
    Local(CompactString),
    Other(CompactString),
    // Added to schema 2 after its release (variants at the end: a
    // superset of what earlier schema 2 wrote).
    Mvx,
    Hl7Table(u16),
    CdcRec,
    Ncit,
    Hcpcs,
    Icd10Pcs,
}

impl From<CodingSystemV2> for CodingSystem {
    fn from(s: CodingSystemV2) -> Self {
        match s {
            CodingSystemV2::Loinc => CodingSystem::Loinc,
            CodingSystemV2::SnomedCt => CodingSystem::SnomedCt,
            CodingSystemV2::Icd10Cm => CodingSystem::Icd10Cm,
            CodingSystemV2::Icd10 => CodingSystem::Icd10,
            CodingSystemV2::Icd9Cm => CodingSystem::Icd9Cm,
            CodingSystemV2::RxNorm => CodingSystem::RxNorm,
            CodingSystemV2::Mdc => CodingSystem::Mdc,
            CodingSystemV2::Cvx => CodingSystem::Cvx,
            CodingSystemV2::Ucum => CodingSystem::Ucum,
            CodingSystemV2::Ndc => CodingSystem::Ndc,
            CodingSystemV2::Cpt => CodingSystem::Cpt,
            CodingSystemV2::Local(n) => CodingSystem::Local(n),
            CodingSystemV2::Other(n) => CodingSystem::Other(n),
            CodingSystemV2::Mvx => CodingSystem::Mvx,
            CodingSystemV2::Hl7Table(n) => CodingSystem::Hl7Table(n),
            CodingSystemV2::CdcRec => CodingSystem::CdcRec,
            CodingSystemV2::Ncit => CodingSystem::Ncit,
            CodingSystemV2::Hcpcs => CodingSystem::Hcpcs,
            CodingSystemV2::Icd10Pcs => CodingSystem::Icd10Pcs,
        }
    }
}

#[derive(Deserialize)]
struct CodingV2 {
    code: CompactString,
    display: Option<CompactString>,
    system: CodingSystemV2,
}

impl From<CodingV2> for Coding {
    fn from(c: CodingV2) -> Self {
        Coding {
            code: c.code,
            display: c.display,
            system: c.system.into(),
        }
    }
}

#[derive(Deserialize)]
enum StandardV2 {
    Original,
    Alternate,
    Mapped(CodingV2),
    Unmapped,
}

#[derive(Deserialize)]
struct CodedV2 {
    original: CodingV2,
    alternate: Option<CodingV2>,
    standard: StandardV2,
}

impl From<CodedV2> for Coded {
    fn from(c: CodedV2) -> Self {
        Coded {
            original: c.original.into(),
            alternate: c.alternate.map(Into::into),
            standard: match c.standard {
                StandardV2::Original => Standard::Original,
                StandardV2::Alternate => Standard::Alternate,
                StandardV2::Mapped(m) => Standard::Mapped(m.into()),
                StandardV2::Unmapped => Standard::Unmapped,
            },
            text: None,
        }
    }
}

#[derive(Deserialize)]
enum PrecisionV2 {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
}

#[derive(Deserialize)]
struct TimestampV2 {
    utc_ms: i64,
    precision: PrecisionV2,
    offset_minutes: i16,
    zone_assumed: bool,
}

impl From<TimestampV2> for Timestamp {
    fn from(t: TimestampV2) -> Self {
        Timestamp {
            utc_ms: t.utc_ms,
            precision: match t.precision {
                PrecisionV2::Year => Precision::Year,
                PrecisionV2::Month => Precision::Month,
                PrecisionV2::Day => Precision::Day,
                PrecisionV2::Hour => Precision::Hour,
                PrecisionV2::Minute => Precision::Minute,
                PrecisionV2::Second => Precision::Second,
                PrecisionV2::Fraction => Precision::Fraction,
            },
            offset_minutes: t.offset_minutes,
            zone_assumed: t.zone_assumed,
        }
    }
}

/// Schema 2's decimal: `(mantissa, scale)`.
#[derive(Deserialize)]
struct DecimalV2(i64, u8);

impl From<DecimalV2> for Decimal {
    fn from(d: DecimalV2) -> Self {
        Decimal {
            mantissa: d.0,
            scale: d.1,
        }
    }
}

#[derive(Deserialize)]
struct UnitV2 {
    ucum: Option<CompactString>,
    original: Option<CompactString>,
}

impl From<UnitV2> for Unit {
    fn from(u: UnitV2) -> Self {
        Unit {
            ucum: u.ucum,
            original: u.original,
        }
    }
}

#[derive(Deserialize)]
struct QuantityV2 {
    value: DecimalV2,
    unit: Option<UnitV2>,
}

impl From<QuantityV2> for Quantity {
    fn from(q: QuantityV2) -> Self {
        Quantity {
            value: q.value.into(),
            unit: q.unit.map(Into::into),
            converted: None,
        }
    }
}

#[derive(Deserialize)]
struct IdentifierV2 {
    value: CompactString,
    authority: Option<CompactString>,
    kind: Option<CompactString>,
}

impl From<IdentifierV2> for Identifier {
    fn from(i: IdentifierV2) -> Self {
        Identifier {
            value: i.value,
            authority: i.authority,
            kind: i.kind,
            ..Identifier::default()
        }
    }
}

#[derive(Deserialize)]
struct PersonNameV2 {
    family: Option<CompactString>,
    given: Option<CompactString>,
    middle: Option<CompactString>,
}

impl From<PersonNameV2> for PersonName {
    fn from(n: PersonNameV2) -> Self {
        PersonName {
            family: n.family,
            given: n.given,
            middle: n.middle,
            ..PersonName::default()
        }
    }
}

#[derive(Deserialize)]
struct PractitionerV2 {
    id: Option<CompactString>,
    name: Option<PersonNameV2>,
}

impl From<PractitionerV2> for Practitioner {
    fn from(p: PractitionerV2) -> Self {
        Practitioner {
            id: p.id,
            name: p.name.map(Into::into),
            ..Practitioner::default()
        }
    }
}

#[derive(Deserialize)]
struct EncounterV2 {
    class: Option<CompactString>,
    location: Option<CompactString>,
    facility: Option<CompactString>,
    visit_number: Option<IdentifierV2>,
    attending: Option<PractitionerV2>,
    admitted_at: Option<TimestampV2>,
    discharged_at: Option<TimestampV2>,
}

impl From<EncounterV2> for Encounter {
    fn from(e: EncounterV2) -> Self {
        Encounter {
            class: e.class,
            location: e.location,
            facility: e.facility,
            visit_number: e.visit_number.map(Into::into),
            attending: e.attending.map(Into::into),
            admitted_at: e.admitted_at.map(Into::into),
            discharged_at: e.discharged_at.map(Into::into),
            ..Encounter::default()
        }
    }
}

#[derive(Deserialize)]
struct PatientEventV2 {
    recorded_at: Option<TimestampV2>,
    occurred_at: Option<TimestampV2>,
    encounter: Option<EncounterV2>,
    #[serde(deserialize_with = "limits::identifiers")]
    merged_from: Vec<IdentifierV2>,
}

#[derive(Deserialize)]
struct OrderMessageV2 {
    #[serde(deserialize_with = "limits::orders")]
    orders: Vec<OrderV2>,
}

#[derive(Deserialize)]
struct OrderV2 {
    control: CompactString,
    placer_order: Option<CompactString>,
    filler_order: Option<CompactString>,
    status: Option<CompactString>,
    service: Option<CodedV2>,
    ordered_at: Option<TimestampV2>,
    orderer: Option<PractitionerV2>,
    priority: Option<CompactString>,
    specimen: Option<CodedV2>,
}

impl From<OrderV2> for Order {
    fn from(o: OrderV2) -> Self {
        Order {
            control: o.control,
            placer_order: o.placer_order,
            filler_order: o.filler_order,
            status: o.status,
            service: o.service.map(Into::into),
            ordered_at: o.ordered_at.map(Into::into),
            orderer: o.orderer.map(Into::into),
            priority: o.priority,
            specimen: o.specimen.map(Into::into),
            ..Order::default()
        }
    }
}

#[derive(Deserialize)]
struct ImmunizationReportV2 {
    #[serde(deserialize_with = "limits::orders")]
    immunizations: Vec<ImmunizationV2>,
}

#[derive(Deserialize)]
struct ImmunizationV2 {
    administered_at: Option<TimestampV2>,
    vaccine: CodedV2,
    dose: Option<QuantityV2>,
    lot: Option<CompactString>,
    manufacturer: Option<CodedV2>,
    completion: Option<CompactString>,
    route: Option<CodedV2>,
    site: Option<CodedV2>,
}

impl From<ImmunizationV2> for Immunization {
    fn from(i: ImmunizationV2) -> Self {
        Immunization {
            administered_at: i.administered_at.map(Into::into),
            vaccine: i.vaccine.into(),
            dose: i.dose.map(Into::into),
            lot: i.lot,
            manufacturer: i.manufacturer.map(Into::into),
            completion: i.completion,
            route: i.route.map(Into::into),
            site: i.site.map(Into::into),
            ..Immunization::default()
        }
    }
}

#[derive(Deserialize)]
struct GenericMessageV2 {
    delimiters: String,
    #[serde(deserialize_with = "limits::segments")]
    segments: Vec<String>,
}

#[derive(Deserialize)]
struct ObservationReportV2 {
    #[serde(deserialize_with = "limits::orders")]
    orders: Vec<ObservationGroupV2>,
}

impl From<ObservationReportV2> for ObservationReport {
    fn from(r: ObservationReportV2) -> Self {
        ObservationReport {
            orders: r.orders.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Deserialize)]
struct ObservationGroupV2 {
    placer_order: Option<CompactString>,
    filler_order: Option<CompactString>,
    service: Option<CodedV2>,
    observed_at: Option<TimestampV2>,
    reported_at: Option<TimestampV2>,
    status: Option<CompactString>,
    #[serde(deserialize_with = "results")]
    observations: Vec<ObservationV2>,
}

impl From<ObservationGroupV2> for ObservationGroup {
    fn from(g: ObservationGroupV2) -> Self {
        ObservationGroup {
            placer_order: g.placer_order,
            filler_order: g.filler_order,
            service: g.service.map(|c| Box::new(c.into())),
            observed_at: g.observed_at.map(Into::into),
            reported_at: g.reported_at.map(Into::into),
            status: g.status,
            observations: g.observations.into_iter().map(Into::into).collect(),
            ..ObservationGroup::default()
        }
    }
}

#[derive(Deserialize)]
struct ObservationV2 {
    code: CodedV2,
    sub_id: Option<CompactString>,
    value: ValueV2,
    reference_range: Option<ReferenceRangeV2>,
    #[serde(deserialize_with = "values")]
    flags: Vec<CompactString>,
    status: ResultStatusV2,
    observed_at: Option<TimestampV2>,
    #[serde(deserialize_with = "values")]
    equipment: Vec<CompactString>,
    method: Option<CodedV2>,
}

impl From<ObservationV2> for Observation {
    fn from(o: ObservationV2) -> Self {
        Observation {
            code: o.code.into(),
            sub_id: o.sub_id,
            value: o.value.into(),
            reference_range: o.reference_range.map(|r| ReferenceRange {
                low: r.low.map(Into::into),
                high: r.high.map(Into::into),
                text: r.text,
            }),
            flags: o.flags,
            status: o.status.into(),
            observed_at: o.observed_at.map(Into::into),
            equipment: o.equipment,
            method: o.method.map(|c| Box::new(c.into())),
            ..Observation::default()
        }
    }
}

#[derive(Deserialize)]
enum ValueV2 {
    None,
    Quantity(QuantityV2),
    Structured(StructuredNumericV2),
    Coded(CodedV2),
    Time(TimestampV2),
    Text(CompactString),
    Series(#[serde(deserialize_with = "values")] Vec<DecimalV2>),
}

/// A capped list of results (for the derived form).
fn results<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    limits::capped_vec(d, limits::MAX_OBSERVATIONS, "results")
}

/// A capped list of flags, equipment ids or series numbers (for the
/// derived form).
fn values<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    limits::capped_vec(
        d,
        limits::MAX_VALUES,
        "flags, equipment ids and series numbers",
    )
}

impl From<ValueV2> for Value {
    fn from(v: ValueV2) -> Self {
        match v {
            ValueV2::None => Value::None,
            ValueV2::Quantity(q) => Value::Quantity(q.into()),
            ValueV2::Structured(s) => Value::Structured(StructuredNumeric {
                comparator: s.comparator,
                low: s.low.map(Into::into),
                separator: s.separator,
                high: s.high.map(Into::into),
                unit: s.unit.map(Into::into),
            }),
            ValueV2::Coded(c) => Value::Coded(c.into()),
            ValueV2::Time(t) => Value::Time(t.into()),
            ValueV2::Text(t) => Value::Text(t),
            ValueV2::Series(items) => series(items.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Deserialize)]
struct StructuredNumericV2 {
    comparator: Option<CompactString>,
    low: Option<DecimalV2>,
    separator: Option<CompactString>,
    high: Option<DecimalV2>,
    unit: Option<UnitV2>,
}

#[derive(Deserialize)]
struct ReferenceRangeV2 {
    low: Option<DecimalV2>,
    high: Option<DecimalV2>,
    text: Option<CompactString>,
}

#[derive(Deserialize)]
enum ResultStatusV2 {
    Final,
    Preliminary,
    Corrected,
    Cancelled,
    Deleted,
    WrongPatient,
    NotVerified,
    Pending,
    Partial,
    FinalUnchanged,
    NotAsked,
    OrderDetail,
    Unknown,
}

impl From<ResultStatusV2> for ResultStatus {
    fn from(s: ResultStatusV2) -> Self {
        match s {
            ResultStatusV2::Final => ResultStatus::Final,
            ResultStatusV2::Preliminary => ResultStatus::Preliminary,
            ResultStatusV2::Corrected => ResultStatus::Corrected,
            ResultStatusV2::Cancelled => ResultStatus::Cancelled,
            ResultStatusV2::Deleted => ResultStatus::Deleted,
            ResultStatusV2::WrongPatient => ResultStatus::WrongPatient,
            ResultStatusV2::NotVerified => ResultStatus::NotVerified,
            ResultStatusV2::Pending => ResultStatus::Pending,
            ResultStatusV2::Partial => ResultStatus::Partial,
            ResultStatusV2::FinalUnchanged => ResultStatus::FinalUnchanged,
            ResultStatusV2::NotAsked => ResultStatus::NotAsked,
            ResultStatusV2::OrderDetail => ResultStatus::OrderDetail,
            ResultStatusV2::Unknown => ResultStatus::Unknown,
        }
    }
}
