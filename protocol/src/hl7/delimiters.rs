//! The delimiters of one HL7 v2 message, read from its MSH segment.
//!
//! HL7 lets every message choose its own separators: MSH-1 is the field
//! separator and MSH-2 lists the component, repetition, escape and
//! subcomponent characters (and, since v2.7, a truncation character). Old
//! v2.1/v2.2 traffic often sends only three encoding characters with no
//! escape character (`^~&`); that is accepted and means "no escapes".

use crate::hl7::error::ParseError;

/// The separators and escape character a message declares in MSH-1/MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    /// MSH-1, usually `|`.
    pub field: u8,
    /// First character of MSH-2, usually `^`.
    pub component: u8,
    /// Second character of MSH-2, usually `~`.
    pub repetition: u8,
    /// Usually `\`; `None` when the message declares no escape character.
    pub escape: Option<u8>,
    /// Usually `&`; `None` when MSH-2 is only two characters long.
    pub subcomponent: Option<u8>,
    /// v2.7+ truncation character (`#`), if declared.
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: b'~',
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
            truncation: None,
        }
    }
}

impl Delimiters {
    /// Reads the delimiters from the start of an MSH segment (`MSH|^~\&|...`).
    ///
    /// `msh` must start with `MSH`; the segment may end anywhere after MSH-2.
    pub fn from_msh(msh: &[u8]) -> Result<Self, ParseError> {
        let field = *msh.get(3).ok_or(ParseError::BadDelimiters {
            reason: "MSH ends before the field separator (MSH-1)",
        })?;
        if !is_valid_delimiter(field) {
            return Err(ParseError::BadDelimiters {
                reason: "the field separator (MSH-1) is a letter, digit, space or line break",
            });
        }
        let rest = msh.get(4..).unwrap_or_default();
        let end = memchr::memchr(field, rest).unwrap_or(rest.len());
        let chars = rest.get(..end).unwrap_or_default();
        Self::from_parts(field, chars)
    }

    fn from_parts(field: u8, chars: &[u8]) -> Result<Self, ParseError> {
        if chars.len() < 2 {
            return Err(ParseError::BadDelimiters {
                reason: "MSH-2 needs at least the component and repetition characters",
            });
        }
        if chars.len() > 5 {
            return Err(ParseError::BadDelimiters {
                reason: "MSH-2 has more than five encoding characters",
            });
        }
        for (i, &c) in chars.iter().enumerate() {
            if !is_valid_delimiter(c) {
                return Err(ParseError::BadDelimiters {
                    reason: "an encoding character (MSH-2) is a letter, digit, space or line break",
                });
            }
            if c == field || chars.get(..i).is_some_and(|before| before.contains(&c)) {
                return Err(ParseError::BadDelimiters {
                    reason: "the encoding characters (MSH-2) repeat a character",
                });
            }
        }
        let (component, repetition, escape, subcomponent, truncation) = match *chars {
            [c, r] => (c, r, None, None, None),
            // Three characters: old traffic sends `^~&` (no escape); `^~\` has
            // an escape and no subcomponent separator.
            [c, r, b'\\'] => (c, r, Some(b'\\'), None, None),
            [c, r, sub] => (c, r, None, Some(sub), None),
            [c, r, esc, sub] => (c, r, Some(esc), Some(sub), None),
            [c, r, esc, sub, trunc] => (c, r, Some(esc), Some(sub), Some(trunc)),
            _ => {
                return Err(ParseError::BadDelimiters {
                    reason: "unexpected number of encoding characters",
                });
            }
        };
        Ok(Delimiters {
            field,
            component,
            repetition,
            escape,
            subcomponent,
            truncation,
        })
    }

    /// The MSH-2 text these delimiters are written as.
    pub fn encoding_characters(&self) -> String {
        let mut s = String::with_capacity(5);
        s.push(self.component as char);
        s.push(self.repetition as char);
        match (self.escape, self.subcomponent) {
            (Some(e), Some(sub)) => {
                s.push(e as char);
                s.push(sub as char);
            }
            (Some(e), None) => s.push(e as char),
            (None, Some(sub)) => s.push(sub as char),
            (None, None) => {}
        }
        if let Some(t) = self.truncation {
            s.push(t as char);
        }
        s
    }

    /// True when `b` is one of this message's separators or its escape character.
    pub fn is_special(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || b == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
    }
}

/// A delimiter must be printable ASCII punctuation: not a letter, digit,
/// space, control character or non-ASCII byte.
fn is_valid_delimiter(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_delimiters_are_read_from_msh() {
        let d = Delimiters::from_msh(b"MSH|^~\\&|APP").unwrap();
        assert_eq!(d, Delimiters::default());
        assert_eq!(d.encoding_characters(), "^~\\&");
    }

    #[test]
    fn three_encoding_characters_without_escape_are_accepted() {
        let d = Delimiters::from_msh(b"MSH|^~&|APP").unwrap();
        assert_eq!(d.escape, None);
        assert_eq!(d.subcomponent, Some(b'&'));
        assert_eq!(d.encoding_characters(), "^~&");
    }

    #[test]
    fn old_traffic_with_brace_subcomponent_is_accepted() {
        let d = Delimiters::from_msh(b"MSH|^~\\}|APP").unwrap();
        assert_eq!(d.escape, Some(b'\\'));
        assert_eq!(d.subcomponent, Some(b'}'));
        let d = Delimiters::from_msh(b"MSH|^~}|APP").unwrap();
        assert_eq!((d.escape, d.subcomponent), (None, Some(b'}')));
    }

    #[test]
    fn custom_delimiters_are_honoured() {
        let d = Delimiters::from_msh(b"MSH#!@%*#APP").unwrap();
        assert_eq!(d.field, b'#');
        assert_eq!(d.component, b'!');
        assert_eq!(d.repetition, b'@');
        assert_eq!(d.escape, Some(b'%'));
        assert_eq!(d.subcomponent, Some(b'*'));
    }

    #[test]
    fn truncation_character_is_read() {
        let d = Delimiters::from_msh(b"MSH|^~\\&#|APP").unwrap();
        assert_eq!(d.truncation, Some(b'#'));
        assert_eq!(d.encoding_characters(), "^~\\&#");
    }

    #[test]
    fn repeated_encoding_characters_are_rejected() {
        assert!(Delimiters::from_msh(b"MSH|^~\\\\&|APP").is_err());
        assert!(Delimiters::from_msh(b"MSH|^^\\&|APP").is_err());
        assert!(Delimiters::from_msh(b"MSH|^|\\&|APP").is_err());
    }

    #[test]
    fn letters_digits_and_truncated_headers_are_rejected() {
        assert!(Delimiters::from_msh(b"MSHA^~\\&").is_err());
        assert!(Delimiters::from_msh(b"MSH|a~\\&|").is_err());
        assert!(Delimiters::from_msh(b"MSH").is_err());
        assert!(Delimiters::from_msh(b"MSH|^|").is_err());
        assert!(Delimiters::from_msh(b"MSH| ~\\&|").is_err());
    }
}
