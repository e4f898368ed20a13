//! Character sets (MSH-18) and decoding of message bytes into text.
//!
//! Supported: ASCII, ISO 8859/1 (Latin-1) and UNICODE UTF-8. Without MSH-18
//! a message is read as UTF-8 when it is valid UTF-8 and as Latin-1
//! otherwise; both decodings are lossless (every byte maps to one character
//! in Latin-1), so nothing is lost even when a sender mislabels its bytes.

use std::borrow::Cow;

/// The character set a message declares in MSH-18 (first repetition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredCharset {
    /// MSH-18 is empty: the default applies.
    Absent,
    /// `ASCII`.
    Ascii,
    /// `8859/1`.
    Latin1,
    /// `UNICODE UTF-8` (and the common variants `UNICODE`, `UTF-8`, `UTF8`).
    Utf8,
    /// Any other value (read as UTF-8 if valid, else Latin-1, with a warning).
    Unsupported(String),
}

impl DeclaredCharset {
    /// Interprets the text of MSH-18's first repetition.
    pub fn from_msh18(value: &[u8]) -> DeclaredCharset {
        let v = value.trim_ascii();
        let is = |names: &[&str]| names.iter().any(|n| v.eq_ignore_ascii_case(n.as_bytes()));
        if v.is_empty() {
            DeclaredCharset::Absent
        } else if is(&["ASCII", "US-ASCII"]) {
            DeclaredCharset::Ascii
        } else if is(&["8859/1", "ISO-8859-1", "ISO8859-1", "LATIN1", "ISO IR100"]) {
            DeclaredCharset::Latin1
        } else if is(&["UNICODE UTF-8", "UNICODE", "UTF-8", "UTF8", "ISO IR192"]) {
            DeclaredCharset::Utf8
        } else {
            DeclaredCharset::Unsupported(String::from_utf8_lossy(v).into_owned())
        }
    }
}

/// How the bytes of a message are turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The bytes are valid UTF-8.
    Utf8,
    /// Every byte is one Latin-1 character.
    Latin1,
}

/// The outcome of choosing an encoding for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharsetChoice {
    /// How text is decoded.
    pub encoding: Encoding,
    /// Byte offset of the first byte that does not fit the declared
    /// character set, if any (declared UTF-8 but invalid, or declared ASCII
    /// with 8-bit bytes).
    pub mismatch_at: Option<usize>,
}

/// Picks the decoding for `raw` given what MSH-18 declared.
pub fn choose(declared: &DeclaredCharset, raw: &[u8]) -> CharsetChoice {
    choose_with(
        declared,
        raw,
        std::str::from_utf8(raw).map_err(|e| e.valid_up_to()),
    )
}

/// [`choose`] for a caller that has already checked `raw` as UTF-8 (`utf8`
/// is the text, or the offset of the first invalid byte).
pub(crate) fn choose_with(
    declared: &DeclaredCharset,
    raw: &[u8],
    utf8: Result<&str, usize>,
) -> CharsetChoice {
    match declared {
        DeclaredCharset::Latin1 => CharsetChoice {
            encoding: Encoding::Latin1,
            mismatch_at: None,
        },
        DeclaredCharset::Utf8 => match utf8 {
            Ok(_) => CharsetChoice {
                encoding: Encoding::Utf8,
                mismatch_at: None,
            },
            Err(at) => CharsetChoice {
                encoding: Encoding::Latin1,
                mismatch_at: Some(at),
            },
        },
        DeclaredCharset::Ascii => {
            let mismatch_at = raw.iter().position(|b| !b.is_ascii());
            let encoding = if utf8.is_ok() {
                Encoding::Utf8
            } else {
                Encoding::Latin1
            };
            CharsetChoice {
                encoding,
                mismatch_at,
            }
        }
        DeclaredCharset::Absent | DeclaredCharset::Unsupported(_) => CharsetChoice {
            encoding: if utf8.is_ok() {
                Encoding::Utf8
            } else {
                Encoding::Latin1
            },
            mismatch_at: None,
        },
    }
}

/// Decodes bytes to text; borrows when the bytes are already valid UTF-8.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Cow<'_, str> {
    match (encoding, std::str::from_utf8(bytes)) {
        (Encoding::Utf8, Ok(s)) => Cow::Borrowed(s),
        (Encoding::Latin1, Ok(s)) if s.is_ascii() => Cow::Borrowed(s),
        _ => Cow::Owned(latin1_to_string(bytes)),
    }
}

/// Decodes an owned byte buffer without copying when it is valid UTF-8.
pub fn decode_owned(bytes: Vec<u8>, encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => latin1_to_string(e.as_bytes()),
        },
        Encoding::Latin1 => latin1_to_string(&bytes),
    }
}

fn latin1_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msh18_spellings_are_recognised() {
        assert_eq!(DeclaredCharset::from_msh18(b""), DeclaredCharset::Absent);
        assert_eq!(
            DeclaredCharset::from_msh18(b"8859/1"),
            DeclaredCharset::Latin1
        );
        assert_eq!(
            DeclaredCharset::from_msh18(b"UNICODE UTF-8"),
            DeclaredCharset::Utf8
        );
        assert_eq!(
            DeclaredCharset::from_msh18(b"ISO IR87"),
            DeclaredCharset::Unsupported("ISO IR87".into())
        );
    }

    #[test]
    fn absent_charset_reads_utf8_when_valid_and_latin1_otherwise() {
        let utf8 = "Müller".as_bytes();
        let c = choose(&DeclaredCharset::Absent, utf8);
        assert_eq!(c.encoding, Encoding::Utf8);
        assert_eq!(decode(utf8, c.encoding), "Müller");
        let latin1 = b"M\xfcller";
        let c = choose(&DeclaredCharset::Absent, latin1);
        assert_eq!(c.encoding, Encoding::Latin1);
        assert_eq!(decode(latin1, c.encoding), "Müller");
    }

    #[test]
    fn declared_utf8_with_invalid_bytes_is_a_mismatch() {
        let c = choose(&DeclaredCharset::Utf8, b"ab\xfccd");
        assert_eq!(c.mismatch_at, Some(2));
        assert_eq!(decode(b"ab\xfccd", c.encoding), "abücd");
    }

    #[test]
    fn declared_latin1_decodes_every_byte() {
        let c = choose(&DeclaredCharset::Latin1, b"\xe9t\xe9");
        assert_eq!(decode(b"\xe9t\xe9", c.encoding), "été");
        assert!(matches!(decode(b"plain", c.encoding), Cow::Borrowed(_)));
    }

    #[test]
    fn declared_ascii_with_high_bytes_is_flagged_but_decoded() {
        let c = choose(&DeclaredCharset::Ascii, "é".as_bytes());
        assert_eq!(c.mismatch_at, Some(0));
        assert_eq!(c.encoding, Encoding::Utf8);
    }
}
