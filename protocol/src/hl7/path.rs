//! HL7 paths: `SEG[n]-field[r].component.subcomponent`.
//!
//! Examples: `PID-3` (the whole field), `PID-3[2].4.1` (second repetition,
//! fourth component, first sub-component), `OBX[3]-5` (OBX-5 of the third
//! OBX). Indexes are 1-based as in the HL7 standard.

use std::str::FromStr;

use crate::hl7::element::Element;
use crate::hl7::error::PathError;
use crate::hl7::message::Segment;

/// A parsed HL7 path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Segment id, e.g. `PID`.
    pub segment: String,
    /// Which occurrence of the segment (1-based, default 1).
    pub segment_repetition: usize,
    /// Field number (1-based).
    pub field: usize,
    /// Field repetition, if given (`[2]`).
    pub repetition: Option<usize>,
    /// Component, if given.
    pub component: Option<usize>,
    /// Sub-component, if given.
    pub subcomponent: Option<usize>,
}

impl Path {
    /// Selects this path's element inside `segment`.
    pub(crate) fn select<'a>(&self, segment: Segment<'a>) -> Option<Element<'a>> {
        let mut e = segment.field(self.field)?;
        if let Some(r) = self.repetition {
            e = e.repetition(r)?;
        }
        if let Some(c) = self.component {
            e = e.component(c)?;
        }
        if let Some(s) = self.subcomponent {
            e = e.subcomponent(s)?;
        }
        Some(e)
    }
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PathError {
            path: s.to_string(),
            reason,
        };
        let (seg_part, rest) = s
            .split_once('-')
            .ok_or_else(|| err("missing '-' after the segment"))?;
        let (segment, segment_repetition) = split_index(seg_part).map_err(err)?;
        if segment.len() != 3 || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err("the segment id must be three letters or digits"));
        }
        let mut parts = rest.split('.');
        let (field, repetition) = split_index(parts.next().unwrap_or_default()).map_err(err)?;
        let field = parse_number(field).map_err(err)?;
        let component = parts.next().map(parse_number).transpose().map_err(err)?;
        let subcomponent = parts.next().map(parse_number).transpose().map_err(err)?;
        if parts.next().is_some() {
            return Err(err(
                "too many levels (at most field.component.subcomponent)",
            ));
        }
        Ok(Path {
            segment: segment.to_ascii_uppercase(),
            segment_repetition: segment_repetition.unwrap_or(1),
            field,
            repetition,
            component,
            subcomponent,
        })
    }
}

/// Splits `ABC[2]` into `("ABC", Some(2))`.
fn split_index(s: &str) -> Result<(&str, Option<usize>), &'static str> {
    match s.split_once('[') {
        None => Ok((s, None)),
        Some((name, index)) => {
            let index = index.strip_suffix(']').ok_or("missing ']'")?;
            Ok((name, Some(parse_number(index)?)))
        }
    }
}

fn parse_number(s: &str) -> Result<usize, &'static str> {
    match s.parse::<usize>() {
        Ok(0) => Err("indexes start at 1"),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_path_is_parsed() {
        let p: Path = "PID-3[2].4.1".parse().unwrap();
        assert_eq!(
            p,
            Path {
                segment: "PID".into(),
                segment_repetition: 1,
                field: 3,
                repetition: Some(2),
                component: Some(4),
                subcomponent: Some(1),
            }
        );
    }

    #[test]
    fn segment_occurrence_is_parsed() {
        let p: Path = "OBX[3]-5".parse().unwrap();
        assert_eq!(
            (p.segment.as_str(), p.segment_repetition, p.field),
            ("OBX", 3, 5)
        );
        assert_eq!(p.component, None);
    }

    #[test]
    fn malformed_paths_say_what_is_wrong() {
        for bad in [
            "PID",
            "PID-0",
            "PID-x",
            "PIDX-1",
            "PID[0]-1",
            "PID-1.2.3.4",
            "PID-1[2",
        ] {
            let e = bad.parse::<Path>().unwrap_err();
            assert_eq!(e.path, bad);
            assert!(e.to_string().contains("expected e.g."), "{e}");
        }
    }
}
