//! Character sets (MSH-18) and decoding of message bytes into text.
//!
//! Supported: ASCII, ISO 8859/1 (Latin-1) and UNICODE UTF-8. Without MSH-18
//! a message is read as UTF-8 when it is valid UTF-8 and as Latin-1
//! otherwise; both decodings are lossless (every byte maps to one character
//! in Latin-1), so nothing is lost even when a sender mislabels its bytes.
//!
//! Latin-1 is read as it is sent in practice: bytes 0x80–0x9F, C1 control
//! codes in ISO 8859-1 that no text uses, are the Windows-1252 characters
//! (`€`, `’`, `–`, ...) that Windows systems put there. This is how the
//! WHATWG Encoding Standard reads every "latin1" label. The five bytes
//! Windows-1252 leaves undefined stay the C1 controls, so the mapping is
//! still one character per byte and nothing is lost.

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
    /// Every byte is one Latin-1 character (0x80–0x9F read as
    /// Windows-1252, see the module doc).
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
    bytes.iter().map(|&b| latin1_char(b)).collect()
}

/// Windows-1252 at 0x80–0x9F (WHATWG `index-windows-1252`); the bytes it
/// leaves undefined map to the C1 control of the same value.
const WINDOWS_1252_C1: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

fn latin1_char(byte: u8) -> char {
    match byte {
        0x80..=0x9f => WINDOWS_1252_C1[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
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
    fn c1_bytes_are_read_as_the_windows_1252_characters_senders_mean() {
        let c = choose(&DeclaredCharset::Absent, b"O\x92Brien \x96 5 \x80");
        assert_eq!(c.encoding, Encoding::Latin1);
        assert_eq!(
            decode(b"O\x92Brien \x96 5 \x80", c.encoding),
            "O\u{2019}Brien \u{2013} 5 \u{20AC}"
        );
        assert_eq!(
            decode_owned(b"\x9c\x81".to_vec(), Encoding::Latin1),
            "\u{0153}\u{0081}"
        );
    }

    #[test]
    fn every_byte_still_decodes_to_a_character_of_its_own() {
        let all: Vec<u8> = (0..=255).collect();
        let text = decode(&all, Encoding::Latin1);
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars.len(), 256);
        let distinct: std::collections::HashSet<char> = chars.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            256,
            "two bytes decoded to the same character"
        );
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
