//! What an ACK needs from the message it answers, read from a parsed
//! message or scraped from bytes that do not parse.
//!
//! Values are kept as the raw bytes received (escapes and charset
//! untouched) so the ACK echoes them exactly, in the sender's own
//! character set. Scraping never fails: whatever cannot be read stays
//! empty, and unreadable delimiters fall back to `|^~\&`.

use crate::hl7::delimiters::Delimiters;
use crate::hl7::message::{Message, split_nth};

/// How far into the input [`AckHeader::scrape`] looks for `MSH`.
const SCRAPE_WINDOW: usize = 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header fields of an incoming message that its ACKs echo or swap.
///
/// Every value is the raw bytes of that field as received (empty when
/// absent or unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckHeader {
    /// Delimiters the ACK is written with: the sender's, or `|^~\&` when its
    /// MSH-1/MSH-2 could not be read.
    pub delimiters: Delimiters,
    /// MSH-2 as written into the ACK: exactly as received when readable.
    pub encoding_characters: Vec<u8>,
    /// MSH-3, sending application (becomes the ACK's MSH-5).
    pub sending_application: Vec<u8>,
    /// MSH-4, sending facility (becomes the ACK's MSH-6).
    pub sending_facility: Vec<u8>,
    /// MSH-5, receiving application (becomes the ACK's MSH-3).
    pub receiving_application: Vec<u8>,
    /// MSH-6, receiving facility (becomes the ACK's MSH-4).
    pub receiving_facility: Vec<u8>,
    /// MSH-9.1, message code.
    pub message_code: Vec<u8>,
    /// MSH-9.2, trigger event (echoed in the ACK's MSH-9.2).
    pub trigger_event: Vec<u8>,
    /// MSH-10, message control id (echoed in MSA-2).
    pub control_id: Vec<u8>,
    /// MSH-11, processing id (echoed).
    pub processing_id: Vec<u8>,
    /// MSH-12.1, version id (echoed when readable).
    pub version: Vec<u8>,
    /// MSH-15, accept acknowledgment type.
    pub accept_ack_type: Vec<u8>,
    /// MSH-16, application acknowledgment type.
    pub application_ack_type: Vec<u8>,
    /// MSH-18, character set (echoed when present).
    pub charset: Vec<u8>,
}

impl AckHeader {
    /// Reads the header of a parsed message.
    pub fn from_message(msg: &Message<'_>) -> AckHeader {
        let msh = msg.msh();
        let field = |n: usize| msh.field(n).map(|f| f.raw().to_vec()).unwrap_or_default();
        let component = |n: usize, c: usize| {
            msh.field(n)
                .and_then(|f| f.component(c))
                .map(|e| e.raw().to_vec())
                .unwrap_or_default()
        };
        AckHeader {
            delimiters: *msg.delimiters(),
            encoding_characters: field(2),
            sending_application: field(3),
            sending_facility: field(4),
            receiving_application: field(5),
            receiving_facility: field(6),
            message_code: component(9, 1),
            trigger_event: component(9, 2),
            control_id: field(10),
            processing_id: field(11),
            version: component(12, 1),
            accept_ack_type: field(15),
            application_ack_type: field(16),
            charset: field(18),
        }
    }

    /// Reads what it can of the header of bytes that may not parse at all.
    ///
    /// Looks for `MSH` in the first KiB (after a BOM, past any junk), reads
    /// the delimiters from it, falling back to `|^~\&` when they are
    /// unusable, and takes the fields from the rest of that line. Never
    /// fails: without an MSH every field is empty.
    pub fn scrape(raw: &[u8]) -> AckHeader {
        let raw = raw.strip_prefix(BOM).unwrap_or(raw);
        let Some(line) = find_msh_line(raw) else {
            return AckHeader::fallback();
        };
        let (delimiters, encoding_characters) = match Delimiters::from_msh(line) {
            Ok(d) => (d, split_nth(line, d.field, 1).unwrap_or_default().to_vec()),
            Err(_) => match line.get(3).copied().and_then(fallback_delimiters) {
                Some(d) => (d, default_encoding_characters()),
                None => return AckHeader::fallback(),
            },
        };
        let fields = ScrapedMsh { line, delimiters };
        AckHeader {
            message_code: fields.component(9, 1),
            trigger_event: fields.component(9, 2),
            control_id: fields.field(10),
            processing_id: fields.field(11),
            version: fields.component(12, 1),
            accept_ack_type: fields.field(15),
            application_ack_type: fields.field(16),
            charset: fields.field(18),
            ..fields.parties(encoding_characters)
        }
    }

    /// True when the message is itself an acknowledgment (MSH-9.1 `ACK`),
    /// which is never answered.
    pub fn is_acknowledgment(&self) -> bool {
        self.message_code.trim_ascii() == b"ACK"
    }

    /// Reads the header to answer an HL7 batch received as one frame with,
    /// or `None` when `raw` does not start with `FHS` or `BHS`.
    ///
    /// Applications, facilities and delimiters come from BHS (else FHS), the
    /// control id MSA-2 echoes from BHS-11 (else FHS-11: what the sender
    /// can correlate with the batch it sent; empty when neither is set),
    /// processing id, version and character set from the first MSH inside.
    /// No message code or event (the ACK's MSH-9 is plain `ACK`) and no
    /// MSH-15/16: one original-mode answer for the whole frame.
    pub fn scrape_batch(raw: &[u8]) -> Option<AckHeader> {
        let raw = raw.strip_prefix(BOM).unwrap_or(raw);
        let window = raw.get(..SCRAPE_WINDOW.min(raw.len()))?;
        let start = window.iter().position(|b| !b.is_ascii_whitespace())?;
        let body = window.get(start..)?;
        if !(body.starts_with(b"FHS") || body.starts_with(b"BHS")) {
            return None;
        }
        let (mut fhs, mut bhs) = (None, None);
        for line in body
            .split(|&b| b == b'\r' || b == b'\n')
            .take_while(|l| !l.starts_with(b"MSH"))
        {
            match line.get(..3) {
                Some(b"FHS") => fhs = fhs.or(Some(line)),
                Some(b"BHS") => bhs = bhs.or(Some(line)),
                _ => {}
            }
        }
        let line = bhs.or(fhs)?;
        let (delimiters, encoding_characters) = match Delimiters::from_msh(line) {
            Ok(d) => (d, split_nth(line, d.field, 1).unwrap_or_default().to_vec()),
            Err(_) => (Delimiters::default(), default_encoding_characters()),
        };
        let control_id = [bhs, fhs]
            .into_iter()
            .flatten()
            .map(|l| split_nth(l, delimiters.field, 10).unwrap_or_default())
            .find(|id| !id.trim_ascii().is_empty())
            .unwrap_or_default()
            .to_vec();
        let inner = AckHeader::scrape(raw);
        Some(AckHeader {
            control_id,
            processing_id: inner.processing_id,
            version: inner.version,
            charset: inner.charset,
            ..ScrapedMsh { line, delimiters }.parties(encoding_characters)
        })
    }

    /// Default delimiters and nothing else.
    fn fallback() -> AckHeader {
        AckHeader {
            encoding_characters: default_encoding_characters(),
            ..AckHeader::default()
        }
    }
}

fn default_encoding_characters() -> Vec<u8> {
    Delimiters::default().encoding_characters().into_bytes()
}

/// Keeps a usable field separator with the default encoding characters;
/// `None` when the separator itself is unusable or clashes with them.
fn fallback_delimiters(field: u8) -> Option<Delimiters> {
    let defaults = Delimiters::default();
    let usable = field.is_ascii_graphic() && !field.is_ascii_alphanumeric();
    (usable && (field == defaults.field || !defaults.is_special(field)))
        .then_some(Delimiters { field, ..defaults })
}

/// The MSH line: from the first `MSH` followed by a plausible separator
/// (else the first `MSH` at all) in the scrape window to the end of line.
fn find_msh_line(raw: &[u8]) -> Option<&[u8]> {
    let window = raw.get(..SCRAPE_WINDOW.min(raw.len()))?;
    let starts: Vec<usize> = memchr::memmem::find_iter(window, b"MSH").collect();
    let plausible = |&&at: &&usize| {
        raw.get(at + 3)
            .is_some_and(|b| b.is_ascii_graphic() && !b.is_ascii_alphanumeric())
    };
    let start = *starts.iter().find(plausible).or(starts.first())?;
    let line = raw.get(start..)?;
    let end = memchr::memchr2(b'\r', b'\n', line).unwrap_or(line.len());
    line.get(..end)
}

/// Field access on a scraped MSH line, numbered as in the standard.
struct ScrapedMsh<'a> {
    line: &'a [u8],
    delimiters: Delimiters,
}

impl ScrapedMsh<'_> {
    /// A header with the delimiters and the sending and receiving
    /// applications and facilities (fields 3 to 6 of MSH, BHS and FHS
    /// alike), nothing else.
    fn parties(&self, encoding_characters: Vec<u8>) -> AckHeader {
        AckHeader {
            delimiters: self.delimiters,
            encoding_characters,
            sending_application: self.field(3),
            sending_facility: self.field(4),
            receiving_application: self.field(5),
            receiving_facility: self.field(6),
            ..AckHeader::default()
        }
    }

    /// MSH-`n` for `n >= 3`.
    fn raw_field(&self, n: usize) -> &[u8] {
        split_nth(self.line, self.delimiters.field, n - 1).unwrap_or_default()
    }

    fn field(&self, n: usize) -> Vec<u8> {
        self.raw_field(n).to_vec()
    }

    /// Component `c` of the first repetition of MSH-`n`.
    fn component(&self, n: usize, c: usize) -> Vec<u8> {
        let d = &self.delimiters;
        let repetition = split_nth(self.raw_field(n), d.repetition, 0).unwrap_or_default();
        split_nth(repetition, d.component, c - 1)
            .unwrap_or_default()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scraping_a_good_header_reads_every_field() {
        let h = AckHeader::scrape(
            b"MSH|^~\\&|LAB|HOSP|HUB|ORG|2024||ORU^R01^ORU_R01|C1|P^T|2.5.1^USA|||AL|NE||UNICODE UTF-8\rPID|1",
        );
        assert_eq!(h.sending_application, b"LAB");
        assert_eq!(h.receiving_facility, b"ORG");
        assert_eq!(h.message_code, b"ORU");
        assert_eq!(h.trigger_event, b"R01");
        assert_eq!(h.control_id, b"C1");
        assert_eq!(h.processing_id, b"P^T");
        assert_eq!(h.version, b"2.5.1");
        assert_eq!(h.accept_ack_type, b"AL");
        assert_eq!(h.application_ack_type, b"NE");
        assert_eq!(h.charset, b"UNICODE UTF-8");
    }

    #[test]
    fn junk_and_a_bom_before_msh_are_skipped() {
        let h = AckHeader::scrape(b"\xEF\xBB\xBFgarbage MSHx MSH|^~\\&|A|B|C|D||||42|P|2.4");
        assert_eq!(h.sending_application, b"A");
        assert_eq!(h.control_id, b"42");
        assert_eq!(h.version, b"2.4");
    }

    #[test]
    fn unreadable_encoding_characters_fall_back_but_fields_are_still_read() {
        let h = AckHeader::scrape(b"MSH|^~\\\\&|SE050|050|PACS|050|2012||ADT^A01|102|T|2.6");
        assert_eq!(h.delimiters, Delimiters::default());
        assert_eq!(h.encoding_characters, b"^~\\&");
        assert_eq!(h.control_id, b"102");
        assert_eq!(h.trigger_event, b"A01");
    }

    #[test]
    fn no_msh_gives_an_empty_header_with_default_delimiters() {
        for raw in [&b""[..], b"PID|1||123", b"MSH", b"MSH|", b"MSHA^~\\&|x"] {
            let h = AckHeader::scrape(raw);
            assert_eq!(h.delimiters, Delimiters::default(), "{raw:?}");
            assert_eq!(h.encoding_characters, b"^~\\&");
            assert!(h.control_id.is_empty());
        }
    }

    #[test]
    fn a_batch_is_answered_with_its_batch_control_id_not_a_message_control_id() {
        let raw = b"FHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||FILE1\r\
BHS|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||||BATCH1\r\
MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01|B1|P|2.3.1|||AL|NE\rPID|1\rBTS|1\rFTS|1\r";
        let h = AckHeader::scrape_batch(raw).unwrap();
        assert_eq!(h.control_id, b"BATCH1");
        assert_eq!(h.sending_application, b"LIS");
        assert_eq!(h.receiving_facility, b"CLINIC");
        assert_eq!(h.version, b"2.3.1", "from the MSH inside");
        assert!(h.message_code.is_empty() && h.trigger_event.is_empty());
        assert!(h.accept_ack_type.is_empty() && h.application_ack_type.is_empty());
        let file_only = b"FHS|^~\\&|LIS|LAB|GW|CLINIC|2024||||FILE1\rMSH|^~\\&|A\r";
        assert_eq!(
            AckHeader::scrape_batch(file_only).unwrap().control_id,
            b"FILE1"
        );
        assert_eq!(AckHeader::scrape_batch(b"MSH|^~\\&|A|B|C|D||||42\r"), None);
    }

    #[test]
    fn msh_past_the_first_kibibyte_is_not_searched() {
        let mut raw = vec![b'x'; SCRAPE_WINDOW];
        raw.extend_from_slice(b"MSH|^~\\&|A|B|C|D||||42|P|2.4");
        assert!(AckHeader::scrape(&raw).control_id.is_empty());
    }
}
