//! The compact form of the record frame, the MSH header, the patient and
//! coded elements. Bit layouts are documented at each function; see
//! [`super`] for strings, timestamps and decimals.

use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool, issues, oru};
use crate::normalize::coding_system::CodingSystem;
use crate::record::{
    Body, Coded, Coding, Header, Identifier, Patient, PersonName, Processing, Record, Standard,
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

/// Coded tag: present (never zero, so a zero byte is an absent code).
const CODED_PRESENT: u8 = 0x80;
/// Coded tag: an alternate coding follows.
const CODED_ALTERNATE: u8 = 0x40;
/// Coding byte: the display equals the original coding's display.
const SAME_DISPLAY: u8 = 0x10;

/// Flags byte, header, patient, body, issues.
pub(super) fn write_record<'a>(w: &mut Writer<'a>, r: &'a Record) -> Result<(), postcard::Error> {
    let mut flags = (r.header.processing as u8) << PROCESSING_SHIFT;
    if let Some(p) = &r.patient {
        flags |= HAS_PATIENT;
        if p.name.is_some() {
            flags |= HAS_NAME;
        }
    }
    if matches!(r.body, Body::Observations(_)) {
        flags |= COMPACT_ORU;
    }
    if !r.issues.is_empty() {
        flags |= HAS_ISSUES;
    }
    w.byte(flags);
    write_header(w, &r.header);
    if let Some(p) = &r.patient {
        write_patient(w, p, r.header.message_time.as_ref());
    }
    match &r.body {
        Body::Observations(report) => oru::write_report(w, report, r.header.message_time.as_ref()),
        other => crate::postcard_append::append(other, &mut w.out)?,
    }
    if !r.issues.is_empty() {
        issues::write_issues(w, &r.issues)?;
    }
    Ok(())
}

/// What [`write_record`] wrote.
pub(super) fn read_record(r: &mut Reader<'_>) -> Result<Record, CompactError> {
    let flags = r.byte()?;
    let mut header = read_header(r)?;
    header.processing = match (flags >> PROCESSING_SHIFT) & 3 {
        0 => Processing::Production,
        1 => Processing::Training,
        2 => Processing::Debugging,
        _ => Processing::Unknown,
    };
    let base = header.message_time;
    let patient = if flags & HAS_PATIENT != 0 {
        Some(read_patient(r, flags & HAS_NAME != 0, base.as_ref())?)
    } else {
        None
    };
    let body = if flags & COMPACT_ORU != 0 {
        Body::Observations(oru::read_report(r, base.as_ref())?)
    } else {
        read_postcard::<Body>(r)?
    };
    let issues = if flags & HAS_ISSUES != 0 {
        issues::read_issues(r)?
    } else {
        Vec::new()
    };
    Ok(Record {
        header,
        patient,
        body,
        issues,
    })
}

fn read_postcard<T: serde::de::DeserializeOwned>(r: &mut Reader<'_>) -> Result<T, CompactError> {
    let (value, rest) = postcard::take_from_bytes::<T>(r.rest())?;
    r.set_rest(rest);
    Ok(value)
}

fn write_header<'a>(w: &mut Writer<'a>, h: &'a Header) {
    w.str(Pool::Header, Some(&h.message_code));
    w.str(Pool::Header, Some(&h.trigger_event));
    w.str(Pool::Text, Some(&h.control_id));
    w.str(Pool::Header, Some(&h.version));
    w.str(Pool::Text, Some(&h.sending_application));
    w.str(Pool::Text, Some(&h.sending_facility));
    w.opt_timestamp(h.message_time.as_ref(), None);
}

/// The header; its processing id travels in the record flags.
fn read_header(r: &mut Reader<'_>) -> Result<Header, CompactError> {
    Ok(Header {
        message_code: r.req_str(Pool::Header)?,
        trigger_event: r.req_str(Pool::Header)?,
        control_id: r.req_str(Pool::Text)?,
        version: r.req_str(Pool::Header)?,
        sending_application: r.req_str(Pool::Text)?,
        sending_facility: r.req_str(Pool::Text)?,
        message_time: r.opt_timestamp(None)?,
        processing: Processing::Unknown,
    })
}

fn write_patient<'a>(w: &mut Writer<'a>, p: &'a Patient, base: Option<&crate::record::Timestamp>) {
    w.len(p.identifiers.len());
    for id in &p.identifiers {
        write_identifier(w, id);
    }
    if let Some(n) = &p.name {
        write_name(w, n);
    }
    w.opt_timestamp(p.birth_date.as_ref(), base);
    w.str(Pool::Code, p.sex.as_deref());
}

fn read_patient(
    r: &mut Reader<'_>,
    has_name: bool,
    base: Option<&crate::record::Timestamp>,
) -> Result<Patient, CompactError> {
    let n = r.len()?;
    let mut identifiers = Vec::with_capacity(n);
    for _ in 0..n {
        identifiers.push(read_identifier(r)?);
    }
    let name = if has_name { Some(read_name(r)?) } else { None };
    Ok(Patient {
        identifiers,
        name,
        birth_date: r.opt_timestamp(base)?,
        sex: r.str(Pool::Code)?,
    })
}

/// Value, authority, type.
pub(super) fn write_identifier<'a>(w: &mut Writer<'a>, id: &'a Identifier) {
    w.str(Pool::Text, Some(&id.value));
    w.str(Pool::Text, id.authority.as_deref());
    w.str(Pool::Code, id.kind.as_deref());
}

/// What [`write_identifier`] wrote.
pub(super) fn read_identifier(r: &mut Reader<'_>) -> Result<Identifier, CompactError> {
    Ok(Identifier {
        value: r.req_str(Pool::Text)?,
        authority: r.str(Pool::Text)?,
        kind: r.str(Pool::Code)?,
    })
}

fn write_name<'a>(w: &mut Writer<'a>, n: &'a PersonName) {
    w.str(Pool::Text, n.family.as_deref());
    w.str(Pool::Text, n.given.as_deref());
    w.str(Pool::Text, n.middle.as_deref());
}

fn read_name(r: &mut Reader<'_>) -> Result<PersonName, CompactError> {
    Ok(PersonName {
        family: r.str(Pool::Text)?,
        given: r.str(Pool::Text)?,
        middle: r.str(Pool::Text)?,
    })
}

/// A coded element: tag byte (bit 7 present, bit 6 alternate follows,
/// bits 4-5 where the standard is, bits 0-3 the original's system), the
/// original's code, display and (local or other) system name, then the
/// alternate and the mapped coding, each as a coding byte (bits 0-3
/// system, bit 4 display same as the original's) and its strings.
pub(super) fn write_coded<'a>(w: &mut Writer<'a>, c: &'a Coded) {
    let (system, name) = system_index(&c.original.system);
    let kind: u8 = match c.standard {
        Standard::Original => 0,
        Standard::Alternate => 1,
        Standard::Mapped(_) => 2,
        Standard::Unmapped => 3,
    };
    let mut tag = CODED_PRESENT | kind << 4 | system;
    if c.alternate.is_some() {
        tag |= CODED_ALTERNATE;
    }
    w.byte(tag);
    w.str(Pool::Text, Some(&c.original.code));
    w.str(Pool::Text, c.original.display.as_deref());
    write_system_name(w, name);
    if let Some(alt) = &c.alternate {
        write_coding(w, alt, &c.original);
    }
    if let Standard::Mapped(m) = &c.standard {
        write_coding(w, m, &c.original);
    }
}

/// An optional coded element: a zero byte when absent.
pub(super) fn write_opt_coded<'a>(w: &mut Writer<'a>, c: Option<&'a Coded>) {
    match c {
        Some(c) => write_coded(w, c),
        None => w.byte(0),
    }
}

fn write_coding<'a>(w: &mut Writer<'a>, c: &'a Coding, original: &Coding) {
    let (system, name) = system_index(&c.system);
    let same = c.display == original.display;
    w.byte(system | if same { SAME_DISPLAY } else { 0 });
    w.str(Pool::Text, Some(&c.code));
    if !same {
        w.str(Pool::Text, c.display.as_deref());
    }
    write_system_name(w, name);
}

/// What [`write_opt_coded`] wrote.
pub(super) fn read_opt_coded(r: &mut Reader<'_>) -> Result<Option<Coded>, CompactError> {
    let tag = r.byte()?;
    if tag & CODED_PRESENT == 0 {
        return match tag {
            0 => Ok(None),
            _ => Err(CompactError::BadTag {
                what: "coded element",
                tag: u64::from(tag),
            }),
        };
    }
    let original = Coding {
        code: r.req_str(Pool::Text)?,
        display: r.str(Pool::Text)?,
        system: system_from(tag & 0x0f, r)?,
    };
    let alternate = if tag & CODED_ALTERNATE != 0 {
        Some(read_coding(r, &original)?)
    } else {
        None
    };
    let standard = match (tag >> 4) & 3 {
        0 => Standard::Original,
        1 => Standard::Alternate,
        2 => Standard::Mapped(read_coding(r, &original)?),
        _ => Standard::Unmapped,
    };
    Ok(Some(Coded {
        original,
        alternate,
        standard,
    }))
}

/// What [`write_coded`] wrote.
pub(super) fn read_coded(r: &mut Reader<'_>) -> Result<Coded, CompactError> {
    read_opt_coded(r)?.ok_or(CompactError::Missing("coded element"))
}

fn read_coding(r: &mut Reader<'_>, original: &Coding) -> Result<Coding, CompactError> {
    let b = r.byte()?;
    let code = r.req_str(Pool::Text)?;
    let display = if b & SAME_DISPLAY != 0 {
        original.display.clone()
    } else {
        r.str(Pool::Text)?
    };
    Ok(Coding {
        code,
        display,
        system: system_from(b & 0x0f, r)?,
    })
}

/// What follows a coding's system number: a local or other system's name,
/// an HL7 table's number, or an extended system's number.
enum SystemExtra<'a> {
    /// Nothing (a standard system with a number of its own).
    None,
    /// The name of a local or other system.
    Name(&'a str),
    /// A varint: an HL7 table number (system 14) or an extended system
    /// (system 15).
    Number(u16),
}

/// The name or number that follows a coding's system number.
fn write_system_name<'a>(w: &mut Writer<'a>, extra: SystemExtra<'a>) {
    match extra {
        SystemExtra::None => {}
        SystemExtra::Name(name) => w.str(Pool::Code, Some(name)),
        SystemExtra::Number(n) => w.varint(u128::from(n)),
    }
}

/// Systems numbered after a 15 (the 4-bit numbers ran out).
const EXTENDED: [CodingSystem; 4] = [
    CodingSystem::CdcRec,
    CodingSystem::Ncit,
    CodingSystem::Hcpcs,
    CodingSystem::Icd10Pcs,
];

/// The system's number and what follows it.
fn system_index(s: &CodingSystem) -> (u8, SystemExtra<'_>) {
    let plain = |n| (n, SystemExtra::None);
    match s {
        CodingSystem::Loinc => plain(0),
        CodingSystem::SnomedCt => plain(1),
        CodingSystem::Icd10Cm => plain(2),
        CodingSystem::Icd10 => plain(3),
        CodingSystem::Icd9Cm => plain(4),
        CodingSystem::RxNorm => plain(5),
        CodingSystem::Mdc => plain(6),
        CodingSystem::Cvx => plain(7),
        CodingSystem::Ucum => plain(8),
        CodingSystem::Ndc => plain(9),
        CodingSystem::Cpt => plain(10),
        CodingSystem::Local(name) => (11, SystemExtra::Name(name)),
        CodingSystem::Other(name) => (12, SystemExtra::Name(name)),
        CodingSystem::Mvx => plain(13),
        CodingSystem::Hl7Table(n) => (14, SystemExtra::Number(*n)),
        extended => {
            let n = EXTENDED.iter().position(|e| e == extended).unwrap_or(0);
            (15, SystemExtra::Number(u16::try_from(n).unwrap_or(0)))
        }
    }
}

/// The system with number `i`, reading what follows it.
fn system_from(i: u8, r: &mut Reader<'_>) -> Result<CodingSystem, CompactError> {
    let bad = |what, tag| CompactError::BadTag { what, tag };
    Ok(match i {
        0 => CodingSystem::Loinc,
        1 => CodingSystem::SnomedCt,
        2 => CodingSystem::Icd10Cm,
        3 => CodingSystem::Icd10,
        4 => CodingSystem::Icd9Cm,
        5 => CodingSystem::RxNorm,
        6 => CodingSystem::Mdc,
        7 => CodingSystem::Cvx,
        8 => CodingSystem::Ucum,
        9 => CodingSystem::Ndc,
        10 => CodingSystem::Cpt,
        11 => CodingSystem::Local(r.req_str(Pool::Code)?),
        12 => CodingSystem::Other(r.req_str(Pool::Code)?),
        13 => CodingSystem::Mvx,
        14 => {
            let n = r.varint()?;
            u16::try_from(n)
                .ok()
                .and_then(CodingSystem::hl7_table)
                .filter(|s| matches!(s, CodingSystem::Hl7Table(_)))
                .ok_or_else(|| bad("HL7 table number", u64::try_from(n).unwrap_or(u64::MAX)))?
        }
        _ => {
            let n = r.varint()?;
            usize::try_from(n)
                .ok()
                .and_then(|n| EXTENDED.get(n))
                .cloned()
                .ok_or_else(|| bad("coding system", u64::try_from(n).unwrap_or(u64::MAX)))?
        }
    })
}
