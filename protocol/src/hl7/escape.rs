//! HL7 escape sequences: decoding on access and encoding for output.
//!
//! Decoded: `\F\ \S\ \T\ \R\ \E\` (the delimiters), `\P\` (truncation),
//! `\Xhh..\` (bytes in the message's character set), `\.br\`, `\.sp n\` and
//! `\.ce\` (line breaks). Formatting-only sequences (`\H\ \N\ \.fi\ \.nf\
//! \.in\ \.ti\ \.sk\`) and character-set switches (`\C..\ \M..\`) are
//! dropped. Anything unknown or unterminated is kept literally, so decoding
//! never loses text.

use std::borrow::Cow;

use crate::hl7::charset::{self, Encoding};
use crate::hl7::delimiters::Delimiters;

/// Most newlines a single `\.sp n\` may produce (hostile input guard).
const MAX_SP_LINES: usize = 64;

/// Decodes `raw` (one element's bytes) to text, resolving escape sequences.
///
/// Borrows from `raw` when there is nothing to unescape or transcode.
pub fn unescape<'a>(raw: &'a [u8], delims: &Delimiters, encoding: Encoding) -> Cow<'a, str> {
    let Some(esc) = delims.escape else {
        return charset::decode(raw, encoding);
    };
    let Some(first) = memchr::memchr(esc, raw) else {
        return charset::decode(raw, encoding);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(raw.get(..first).unwrap_or_default());
    let mut rest = raw.get(first..).unwrap_or_default();
    while let Some((&b, after)) = rest.split_first() {
        if b != esc {
            let next = memchr::memchr(esc, rest).unwrap_or(rest.len());
            out.extend_from_slice(rest.get(..next).unwrap_or_default());
            rest = rest.get(next..).unwrap_or_default();
            continue;
        }
        match memchr::memchr(esc, after) {
            Some(end) if end > 0 => {
                let seq = after.get(..end).unwrap_or_default();
                if decode_sequence(seq, delims, &mut out) {
                    rest = after.get(end + 1..).unwrap_or_default();
                } else {
                    out.push(esc);
                    rest = after;
                }
            }
            _ => {
                out.push(esc);
                rest = after;
            }
        }
    }
    Cow::Owned(charset::decode_owned(out, encoding))
}

/// Appends the meaning of one escape sequence (`seq` is the text between the
/// escape characters). Returns false when the sequence is not one we know,
/// so the caller keeps it literally.
fn decode_sequence(seq: &[u8], d: &Delimiters, out: &mut Vec<u8>) -> bool {
    if seq
        .iter()
        .any(|&b| d.is_special(b) || b == b'\r' || b == b'\n')
    {
        return false;
    }
    match seq {
        b"F" => out.push(d.field),
        b"S" => out.push(d.component),
        b"T" => out.push(d.subcomponent.unwrap_or(b'&')),
        b"R" => out.push(d.repetition),
        b"E" => out.push(d.escape.unwrap_or(b'\\')),
        b"P" => out.push(d.truncation.unwrap_or(b'#')),
        b"H" | b"N" | b".fi" | b".nf" => {}
        b".br" | b".ce" => out.push(b'\n'),
        [b'X', hex @ ..] => return push_hex(hex, out),
        [b'.', b's', b'p', n @ ..] => {
            let lines = parse_count(n).unwrap_or(1).min(MAX_SP_LINES);
            out.extend(std::iter::repeat_n(b'\n', lines));
        }
        [b'.', b'i', b'n', ..] | [b'.', b't', b'i', ..] | [b'.', b's', b'k', ..] => {}
        [b'C', ..] | [b'M', ..] => {}
        _ => return false,
    }
    true
}

fn parse_count(n: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(n).ok()?.trim();
    if text.is_empty() {
        return Some(1);
    }
    text.trim_start_matches('+').parse().ok()
}

fn push_hex(hex: &[u8], out: &mut Vec<u8>) -> bool {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    for pair in hex.chunks_exact(2) {
        let hi = hex_value(pair.first().copied().unwrap_or(b'0'));
        let lo = hex_value(pair.get(1).copied().unwrap_or(b'0'));
        out.push(hi << 4 | lo);
    }
    true
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Escapes text for writing into an HL7 field with these delimiters.
///
/// Delimiters become `\F\ \S\ \T\ \R\ \E\`, CR and LF become `\X0D\` and
/// `\X0A\`. When the message declares no escape character, delimiters and
/// line breaks are replaced by spaces (there is no way to write them).
pub fn escape<'a>(text: &'a str, d: &Delimiters) -> Cow<'a, str> {
    let needs = |b: u8| d.is_special(b) || Some(b) == d.truncation || b == b'\r' || b == b'\n';
    if !text.bytes().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let b = u8::try_from(c).ok().filter(|&b| needs(b));
        match (b, d.escape) {
            (None, _) => out.push(c),
            (Some(_), None) => out.push(' '),
            (Some(b), Some(e)) => {
                let e = char::from(e);
                let code = match b {
                    _ if b == d.field => "F",
                    _ if b == d.component => "S",
                    _ if Some(b) == d.subcomponent => "T",
                    _ if b == d.repetition => "R",
                    _ if Some(b) == d.escape => "E",
                    _ if Some(b) == d.truncation => "P",
                    b'\r' => "X0D",
                    _ => "X0A",
                };
                out.push(e);
                out.push_str(code);
                out.push(e);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn un(raw: &str) -> String {
        unescape(raw.as_bytes(), &Delimiters::default(), Encoding::Utf8).into_owned()
    }

    #[test]
    fn delimiter_escapes_are_decoded() {
        assert_eq!(un(r"a\F\b\S\c\T\d\R\e\E\f"), r"a|b^c&d~e\f");
    }

    #[test]
    fn text_without_escapes_is_borrowed() {
        let d = Delimiters::default();
        assert!(matches!(
            unescape(b"plain", &d, Encoding::Utf8),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn hex_and_line_break_escapes_are_decoded() {
        assert_eq!(un(r"a\X0D0A\b"), "a\r\nb");
        assert_eq!(un(r"line1\.br\line2"), "line1\nline2");
        assert_eq!(un(r"a\.sp 2\b"), "a\n\nb");
        assert_eq!(un(r"\H\bold\N\"), "bold");
    }

    #[test]
    fn hex_bytes_follow_the_message_encoding() {
        let d = Delimiters::default();
        assert_eq!(unescape(br"caf\XE9\", &d, Encoding::Latin1), "café");
        assert_eq!(unescape(br"caf\XC3A9\", &d, Encoding::Utf8), "café");
    }

    #[test]
    fn unknown_and_unterminated_escapes_are_kept_literally() {
        assert_eq!(un(r"a\Q\b"), r"a\Q\b");
        assert_eq!(un(r"C:\temp"), r"C:\temp");
        assert_eq!(un(r"\XZZ\"), r"\XZZ\");
        assert_eq!(un(r"\\"), r"\\");
    }

    #[test]
    fn custom_escape_character_is_honoured() {
        let d = Delimiters::from_msh(b"MSH#!@%*#").unwrap();
        assert_eq!(unescape(b"a%F%b%S%c", &d, Encoding::Utf8), "a#b!c");
        assert_eq!(escape("a#b!c", &d), "a%F%b%S%c");
    }

    #[test]
    fn escape_writes_every_delimiter_and_line_break() {
        let d = Delimiters::default();
        assert_eq!(
            escape("a|b^c&d~e\\f\rg\nh", &d),
            r"a\F\b\S\c\T\d\R\e\E\f\X0D\g\X0A\h"
        );
        assert!(matches!(escape("plain", &d), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_without_escape_character_replaces_delimiters() {
        let d = Delimiters::from_msh(b"MSH|^~&|").unwrap();
        assert_eq!(escape("a|b", &d), "a b");
    }

    proptest! {
        #[test]
        fn escape_then_unescape_round_trips(text in "\\PC*") {
            let d = Delimiters::default();
            let escaped = escape(&text, &d);
            prop_assert_eq!(unescape(escaped.as_bytes(), &d, Encoding::Utf8), text.as_str());
        }

        #[test]
        fn round_trip_holds_for_delimiter_heavy_text(text in "[|^~&\\\\\r\na-z]{0,40}") {
            let d = Delimiters::default();
            let escaped = escape(&text, &d);
            prop_assert!(!escaped.contains(['|', '^', '~', '&', '\r', '\n']));
            prop_assert_eq!(unescape(escaped.as_bytes(), &d, Encoding::Utf8), text.as_str());
        }

        #[test]
        fn unescape_keeps_every_character_without_escapes(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let out = unescape(&raw, &Delimiters::default(), Encoding::Latin1);
            if !raw.contains(&b'\\') {
                prop_assert_eq!(out.chars().count(), raw.len());
            }
        }
    }
}
