//! The compact form of coded elements (CWE, CE, CNE). Schema 3 added the
//! extended system form (system number 15 in a tag: a varint follows with
//! the system number and, in its low bit, whether the original text
//! follows); schema 2 never wrote it, so one reader serves both.

use super::reader::Reader;
use super::writer::Writer;
use super::{CompactError, Pool};
use crate::normalize::coding_system::CodingSystem;
use crate::record::{Coded, Coding, CompactString, Standard};

/// Coded tag: present (never zero, so a zero byte is an absent code).
const CODED_PRESENT: u8 = 0x80;
/// Coded tag: an alternate coding follows.
const CODED_ALTERNATE: u8 = 0x40;
/// Coding byte: the display equals the original coding's display.
const SAME_DISPLAY: u8 = 0x10;
/// The system number that says the extended form follows.
const EXTENDED: u8 = 15;

/// A coded element: tag byte (bit 7 present, bit 6 alternate follows,
/// bits 4-5 where the standard is, bits 0-3 the original's system, or 15
/// for the extended form: a varint `system << 1 | text follows`), the
/// original's code, display, (local or other) system name and original
/// text, then the alternate and the mapped coding, each as a coding byte
/// (bits 0-3 system or 15 and a varint system, bit 4 display same as the
/// original's) and its strings.
pub(super) fn write_coded<'a>(w: &mut Writer<'a>, c: &'a Coded) {
    let (system, name) = system_index(&c.original.system);
    let kind: u8 = match c.standard {
        Standard::Original => 0,
        Standard::Alternate => 1,
        Standard::Mapped(_) => 2,
        Standard::Unmapped => 3,
    };
    let extended = c.text.is_some() || system >= EXTENDED;
    let mut tag = CODED_PRESENT | kind << 4 | if extended { EXTENDED } else { system };
    if c.alternate.is_some() {
        tag |= CODED_ALTERNATE;
    }
    w.byte(tag);
    if extended {
        w.varint(u128::from(system) << 1 | u128::from(c.text.is_some()));
    }
    w.str(Pool::Text, Some(&c.original.code));
    w.str(Pool::Text, c.original.display.as_deref());
    write_system_name(w, name);
    if let Some(text) = &c.text {
        w.str(Pool::Text, Some(text));
    }
    if let Some(alt) = &c.alternate {
        write_coding(w, alt, &c.original);
    }
    if let Standard::Mapped(m) = &c.standard {
        write_coding(w, m, &c.original);
    }
}

fn write_coding<'a>(w: &mut Writer<'a>, c: &'a Coding, original: &Coding) {
    let (system, name) = system_index(&c.system);
    let same = c.display == original.display;
    let same_bit = if same { SAME_DISPLAY } else { 0 };
    if system >= EXTENDED {
        w.byte(EXTENDED | same_bit);
        w.varint(u128::from(system));
    } else {
        w.byte(system | same_bit);
    }
    w.str(Pool::Text, Some(&c.code));
    if !same {
        w.str(Pool::Text, c.display.as_deref());
    }
    write_system_name(w, name);
}

/// An optional coded element: a zero byte is none.
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
    let (system, has_text) = match tag & 0x0f {
        EXTENDED => {
            let v = r.varint()?;
            (
                u8::try_from(v >> 1).map_err(|_| CompactError::Overflow)?,
                v & 1 != 0,
            )
        }
        system => (system, false),
    };
    let original = Coding {
        code: r.req_str(Pool::Text)?,
        display: r.str(Pool::Text)?,
        system: system_from(system, r)?,
    };
    let text = has_text.then(|| r.req_str(Pool::Text)).transpose()?;
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
        text,
    }))
}

/// What [`write_coded`] wrote.
pub(super) fn read_coded(r: &mut Reader<'_>) -> Result<Coded, CompactError> {
    read_opt_coded(r)?.ok_or(CompactError::Missing("coded element"))
}

fn read_coding(r: &mut Reader<'_>, original: &Coding) -> Result<Coding, CompactError> {
    let b = r.byte()?;
    let system = match b & 0x0f {
        EXTENDED => u8::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?,
        system => system,
    };
    let code = r.req_str(Pool::Text)?;
    let display = if b & SAME_DISPLAY != 0 {
        original.display.clone()
    } else {
        r.str(Pool::Text)?
    };
    Ok(Coding {
        code,
        display,
        system: system_from(system, r)?,
    })
}

/// The name of a local or other system (nothing for a standard one).
fn write_system_name<'a>(w: &mut Writer<'a>, name: Option<&'a str>) {
    if name.is_some() {
        w.str(Pool::Code, name);
    }
}

/// The system's number and, for local and other systems, its name.
fn system_index(s: &CodingSystem) -> (u8, Option<&str>) {
    match s {
        CodingSystem::Loinc => (0, None),
        CodingSystem::SnomedCt => (1, None),
        CodingSystem::Icd10Cm => (2, None),
        CodingSystem::Icd10 => (3, None),
        CodingSystem::Icd9Cm => (4, None),
        CodingSystem::RxNorm => (5, None),
        CodingSystem::Mdc => (6, None),
        CodingSystem::Cvx => (7, None),
        CodingSystem::Ucum => (8, None),
        CodingSystem::Ndc => (9, None),
        CodingSystem::Cpt => (10, None),
        CodingSystem::Local(name) => (11, Some(name)),
        // No system named at all: common, so a number of its own.
        CodingSystem::Other(name) if name.is_empty() => (13, None),
        CodingSystem::Other(name) => (12, Some(name)),
    }
}

/// The system with number `i`, reading the name of a local or other one.
fn system_from(i: u8, r: &mut Reader<'_>) -> Result<CodingSystem, CompactError> {
    let mut named = || r.req_str(Pool::Code);
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
        11 => CodingSystem::Local(named()?),
        12 => CodingSystem::Other(named()?),
        13 => CodingSystem::Other(CompactString::const_new("")),
        _ => {
            return Err(CompactError::BadTag {
                what: "coding system",
                tag: u64::from(i),
            });
        }
    })
}
