//! The compact form of coded elements (CWE, CE, CNE), in schema 3 and as
//! schema 2 wrote it (read only).
//!
//! A coding system is a number in the low four bits of a tag: 0-12 the
//! standard systems, local and other ones, then, in schema 3, 13 a system
//! not named at all, 14 an HL7 table (its number follows where a name
//! would), 15 the extended form: a varint follows with the system number
//! (15 and up: MVX, CDCREC, NCIT, HCPCS, ICD-10-PCS) and, for an element's
//! original coding, in its low bit whether the original text follows.
//! Schema 2 numbered 13 MVX, 14 an HL7 table and 15 an index into the
//! systems after it, and had no original text.

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
/// Schema 3's systems from number 15 on, in order.
const EXTENDED_SYSTEMS: [CodingSystem; 5] = [
    CodingSystem::Mvx,
    CodingSystem::CdcRec,
    CodingSystem::Ncit,
    CodingSystem::Hcpcs,
    CodingSystem::Icd10Pcs,
];
/// Schema 2's systems after its number 15, in order.
const EXTENDED_V2: [CodingSystem; 4] = [
    CodingSystem::CdcRec,
    CodingSystem::Ncit,
    CodingSystem::Hcpcs,
    CodingSystem::Icd10Pcs,
];

/// The layout a coded element is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Schema 3 (written and read).
    Current,
    /// Schema 2 (read only).
    V2,
}

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
    if same {
        // The reader copies it: counted as produced text all the same.
        w.count_text(c.display.as_deref());
    } else {
        w.str(Pool::Text, c.display.as_deref());
    }
    write_system_name(w, name);
}

/// An optional coded element written in `layout`: a zero byte is none.
pub(super) fn read_opt_coded_in(
    r: &mut Reader<'_>,
    layout: Layout,
) -> Result<Option<Coded>, CompactError> {
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
        EXTENDED if layout == Layout::Current => {
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
        system: system_from(system, layout, r)?,
    };
    let text = has_text.then(|| r.req_str(Pool::Text)).transpose()?;
    let alternate = if tag & CODED_ALTERNATE != 0 {
        Some(read_coding(r, &original, layout)?)
    } else {
        None
    };
    let standard = match (tag >> 4) & 3 {
        0 => Standard::Original,
        1 => Standard::Alternate,
        2 => Standard::Mapped(read_coding(r, &original, layout)?),
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
    read_coded_in(r, Layout::Current)
}

/// A coded element written in `layout`.
pub(super) fn read_coded_in(r: &mut Reader<'_>, layout: Layout) -> Result<Coded, CompactError> {
    read_opt_coded_in(r, layout)?.ok_or(CompactError::Missing("coded element"))
}

fn read_coding(
    r: &mut Reader<'_>,
    original: &Coding,
    layout: Layout,
) -> Result<Coding, CompactError> {
    let b = r.byte()?;
    if b >> 5 != 0 {
        return Err(CompactError::BadTag {
            what: "coding",
            tag: u64::from(b),
        });
    }
    let system = match b & 0x0f {
        EXTENDED if layout == Layout::Current => {
            u8::try_from(r.varint()?).map_err(|_| CompactError::Overflow)?
        }
        system => system,
    };
    let code = r.req_str(Pool::Text)?;
    let display = if b & SAME_DISPLAY != 0 {
        // A copy, counted as the writer counts it.
        r.add_text(original.display.as_deref())?;
        original.display.clone()
    } else {
        r.str(Pool::Text)?
    };
    Ok(Coding {
        code,
        display,
        system: system_from(system, layout, r)?,
    })
}

/// What follows a coding's system number where a name would.
enum SystemExtra<'a> {
    /// Nothing.
    None,
    /// The name of a local or other system.
    Name(&'a str),
    /// An HL7 table's number.
    Table(u16),
}

/// The name or table number that follows a coding's code and display.
fn write_system_name<'a>(w: &mut Writer<'a>, extra: SystemExtra<'a>) {
    match extra {
        SystemExtra::None => {}
        SystemExtra::Name(name) => w.str(Pool::Code, Some(name)),
        SystemExtra::Table(n) => w.varint(u128::from(n)),
    }
}

/// The system's number (schema 3) and what follows it.
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
        // No system named at all: common, so a number of its own.
        CodingSystem::Other(name) if name.is_empty() => plain(13),
        CodingSystem::Other(name) => (12, SystemExtra::Name(name)),
        CodingSystem::Hl7Table(n) => (14, SystemExtra::Table(*n)),
        extended => {
            let i = EXTENDED_SYSTEMS
                .iter()
                .position(|e| e == extended)
                .unwrap_or(0);
            plain(EXTENDED + u8::try_from(i).unwrap_or(0))
        }
    }
}

/// The system with number `i` in `layout`, reading what follows it.
fn system_from(i: u8, layout: Layout, r: &mut Reader<'_>) -> Result<CodingSystem, CompactError> {
    let bad = |what, tag: u128| CompactError::BadTag {
        what,
        tag: u64::try_from(tag).unwrap_or(u64::MAX),
    };
    let table = |r: &mut Reader<'_>| {
        let n = r.varint()?;
        u16::try_from(n)
            .ok()
            .and_then(CodingSystem::hl7_table)
            .filter(|s| matches!(s, CodingSystem::Hl7Table(_)))
            .ok_or_else(|| bad("HL7 table number", n))
    };
    Ok(match (i, layout) {
        (0, _) => CodingSystem::Loinc,
        (1, _) => CodingSystem::SnomedCt,
        (2, _) => CodingSystem::Icd10Cm,
        (3, _) => CodingSystem::Icd10,
        (4, _) => CodingSystem::Icd9Cm,
        (5, _) => CodingSystem::RxNorm,
        (6, _) => CodingSystem::Mdc,
        (7, _) => CodingSystem::Cvx,
        (8, _) => CodingSystem::Ucum,
        (9, _) => CodingSystem::Ndc,
        (10, _) => CodingSystem::Cpt,
        (11, _) => CodingSystem::Local(r.req_str(Pool::Code)?),
        (12, _) => CodingSystem::Other(r.req_str(Pool::Code)?),
        (13, Layout::Current) => CodingSystem::Other(CompactString::const_new("")),
        (13, Layout::V2) => CodingSystem::Mvx,
        (14, _) => table(r)?,
        (15, Layout::V2) => {
            let n = r.varint()?;
            usize::try_from(n)
                .ok()
                .and_then(|n| EXTENDED_V2.get(n))
                .cloned()
                .ok_or_else(|| bad("coding system", n))?
        }
        (i, _) => EXTENDED_SYSTEMS
            .get(usize::from(i.saturating_sub(EXTENDED)))
            .filter(|_| i >= EXTENDED)
            .cloned()
            .ok_or_else(|| bad("coding system", u128::from(i)))?,
    })
}
