//! Splitting a stream of HL7 text (a file, a batch) into messages.
//!
//! Files handed to `hl7edge inspect` or captured from an interface may hold
//! many messages: one after another, inside an HL7 batch (`FHS`/`BHS` …
//! `BTS`/`FTS`), or as MLLP frames. This module finds the messages without
//! copying them.
//!
//! A listener, on the other hand, takes one message per MLLP frame: a batch
//! arriving in one frame is refused as a batch ([`refuse_unparsed`]), and
//! answered with its batch control id, not with the first inner message's.

use crate::hl7::ack::AckHeader;
use crate::hl7::error::ParseError;
use crate::hl7::issue::{ErrorCode, Issue, Location};
use crate::hl7::mllp::{Decoder, Event};
use crate::hl7::validate::parse_error_issue;

/// Largest frame accepted when reading MLLP-framed files.
const MAX_FILE_FRAME: usize = 64 << 20;

/// A piece of input that is one message (or one unreadable chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes that start with `MSH` (up to the next `MSH` or batch trailer).
    Message(&'a [u8]),
    /// Non-blank bytes before the first `MSH` that belong to no message.
    Stray(&'a [u8]),
}

/// What to answer a frame that [`crate::hl7::Message::parse`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    /// The header the NAK is built from: the batch's (see
    /// [`AckHeader::scrape_batch`]) for a batch, else scraped from the bytes.
    pub header: AckHeader,
    /// The error to report.
    pub issue: Issue,
    /// True when the frame is an HL7 batch (starts with FHS or BHS).
    pub batch: bool,
}

/// The answer to a frame that did not parse as a message (`err`): a batch
/// (FHS/BHS first) gets an error that says so and tells the sender to send
/// one message per frame, answered with BHS-11 (else FHS-11); anything else
/// gets [`parse_error_issue`] and the header scraped from its bytes.
pub fn refuse_unparsed(raw: &[u8], err: &ParseError) -> Unparsed {
    match AckHeader::scrape_batch(raw) {
        Some(header) => Unparsed {
            header,
            issue: Issue::error(
                ErrorCode::SegmentSequence,
                Location::segment(batch_segment(raw), 1),
                // Within the 80 characters of a pre-v2.5 MSA-3.
                "HL7 batch (FHS/BHS) received: this gateway takes one message per MLLP frame",
            ),
            batch: true,
        },
        None => Unparsed {
            header: AckHeader::scrape(raw),
            issue: parse_error_issue(err),
            batch: false,
        },
    }
}

/// `FHS` or `BHS`, whichever starts the batch `raw`.
fn batch_segment(raw: &[u8]) -> &'static str {
    let first = raw.iter().position(|b| b.is_ascii_alphabetic());
    match first.and_then(|i| raw.get(i..i + 3)) {
        Some(b"BHS") => "BHS",
        _ => "FHS",
    }
}

/// Splits text holding one or more messages. Batch header and trailer
/// segments (`FHS`, `BHS`, `BTS`, `FTS`) are skipped; anything else before
/// the first MSH is returned as [`Piece::Stray`] so nothing is hidden.
pub fn split_messages(input: &[u8]) -> Vec<Piece<'_>> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut pieces = Vec::new();
    let mut current: Option<usize> = None;
    let mut stray_start: Option<usize> = None;
    let mut line_start = 0;
    while line_start < input.len() {
        let rest = input.get(line_start..).unwrap_or_default();
        let len = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..len).unwrap_or_default();
        let id = line.get(..3).unwrap_or(line);
        match id {
            b"MSH" => {
                close(
                    input,
                    &mut pieces,
                    &mut current,
                    &mut stray_start,
                    line_start,
                );
                current = Some(line_start);
            }
            b"FHS" | b"BHS" | b"BTS" | b"FTS" => {
                close(
                    input,
                    &mut pieces,
                    &mut current,
                    &mut stray_start,
                    line_start,
                );
            }
            _ if current.is_none() && stray_start.is_none() && !is_blank(line) => {
                stray_start = Some(line_start);
            }
            _ => {}
        }
        line_start += len + 1;
        if id == b"BTS" || id == b"FTS" || id == b"FHS" || id == b"BHS" {
            stray_start = None;
        }
    }
    close(
        input,
        &mut pieces,
        &mut current,
        &mut stray_start,
        input.len(),
    );
    pieces
}

fn close<'a>(
    input: &'a [u8],
    pieces: &mut Vec<Piece<'a>>,
    current: &mut Option<usize>,
    stray: &mut Option<usize>,
    end: usize,
) {
    if let Some(bytes) = stray.take().and_then(|start| input.get(start..end)) {
        pieces.push(Piece::Stray(trim_end(bytes)));
    }
    if let Some(bytes) = current.take().and_then(|start| input.get(start..end)) {
        pieces.push(Piece::Message(trim_end(bytes)));
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// Reads a file's bytes as messages: MLLP frames when the file starts with
/// a start block (0x0B), else text split by [`split_messages`]. Owned
/// because MLLP frames are copied out of the stream.
pub fn messages_in_file(bytes: &[u8]) -> Vec<Vec<u8>> {
    let framed = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&0x0B);
    if !framed {
        return split_messages(bytes)
            .into_iter()
            .map(|p| match p {
                Piece::Message(m) | Piece::Stray(m) => m.to_vec(),
            })
            .collect();
    }
    let mut decoder = Decoder::new(MAX_FILE_FRAME);
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(event) = decoder.decode(&mut input) {
        if let Event::Frame(payload) = event {
            out.push(payload);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_messages_are_split_at_each_msh() {
        let text = b"MSH|^~\\&|A|||||||1\rPID|1\r\nMSH|^~\\&|B|||||||2\nOBX|1\n";
        let pieces = split_messages(text);
        assert_eq!(
            pieces,
            vec![
                Piece::Message(b"MSH|^~\\&|A|||||||1\rPID|1"),
                Piece::Message(b"MSH|^~\\&|B|||||||2\nOBX|1"),
            ]
        );
    }

    #[test]
    fn batch_envelopes_are_skipped() {
        let text = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rBTS|1\rFTS|1\r";
        assert_eq!(
            split_messages(text),
            vec![Piece::Message(b"MSH|^~\\&|A\rPID|1")]
        );
    }

    #[test]
    fn text_before_the_first_msh_is_reported_not_hidden() {
        let text = b"PID|1||x\rMSH|^~\\&|A\r";
        assert_eq!(
            split_messages(text),
            vec![Piece::Stray(b"PID|1||x"), Piece::Message(b"MSH|^~\\&|A")]
        );
    }

    #[test]
    fn mllp_framed_files_are_unframed() {
        let file = b"\x0bMSH|^~\\&|A\r\x1c\r\x0bMSH|^~\\&|B\r\x1c\r";
        let msgs = messages_in_file(file);
        assert_eq!(
            msgs,
            vec![b"MSH|^~\\&|A\r".to_vec(), b"MSH|^~\\&|B\r".to_vec()]
        );
    }

    #[test]
    fn a_batch_in_one_frame_is_refused_as_a_batch_with_its_batch_control_id() {
        let raw = b"FHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||FILE1\r\
BHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||BATCH1\r\
MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|B1|P|2.3.1\rPID|1||1^^^H^MR||A^B\r\
MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|B2|P|2.3.1\rPID|1||2^^^H^MR||C^D\r\
BTS|2\rFTS|1\r";
        let err = crate::hl7::Message::parse(raw).unwrap_err();
        let refused = refuse_unparsed(raw, &err);
        assert!(refused.batch);
        assert_eq!(refused.header.control_id, b"BATCH1");
        assert_eq!(refused.issue.code, ErrorCode::SegmentSequence);
        assert_eq!(refused.issue.location, Location::segment("FHS", 1));
        assert!(refused.issue.message.contains("batch"));
        assert!(refused.issue.message.contains("one message per MLLP frame"));
        let junk = b"PID|1||x\r";
        let other = refuse_unparsed(junk, &crate::hl7::Message::parse(junk).unwrap_err());
        assert!(!other.batch);
        assert_eq!(
            other.issue,
            parse_error_issue(&ParseError::NoMsh {
                found: "PID|1||x".into()
            })
        );
    }

    #[test]
    fn empty_input_has_no_messages() {
        assert!(split_messages(b"").is_empty());
        assert!(split_messages(b"\r\n\r\n").is_empty());
    }
}
