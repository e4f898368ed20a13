//! Minimal reading of an HL7 v2 ACK: MSH-10 (the ACK's own control id), MSA-1 (the code), MSA-2
//! (the control id it answers), MSA-3 (text) and the ERR segment.
//!
//! Segments are split on CR (LF tolerated), fields on the field separator declared in MSH.

use super::MllpError;

/// MSA-1: the acknowledgement code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AckCode {
    /// Original mode: application accept.
    AA,
    /// Original mode: application error.
    AE,
    /// Original mode: application reject.
    AR,
    /// Enhanced mode: commit accept.
    CA,
    /// Enhanced mode: commit error.
    CE,
    /// Enhanced mode: commit reject.
    CR,
}

impl AckCode {
    /// Parses MSA-1.
    pub fn parse(text: &str) -> Option<AckCode> {
        Some(match text {
            "AA" => AckCode::AA,
            "AE" => AckCode::AE,
            "AR" => AckCode::AR,
            "CA" => AckCode::CA,
            "CE" => AckCode::CE,
            "CR" => AckCode::CR,
            _ => return None,
        })
    }

    /// Whether the sender may forget the message (AA or CA).
    pub fn is_positive(self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }

    /// Whether the receiver refused to take the message for now (AR or CR): a sender keeps it
    /// and may retry.
    pub fn is_reject(self) -> bool {
        matches!(self, AckCode::AR | AckCode::CR)
    }
}

/// The parts of an ACK the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the control id (MSH-10) of the message being answered.
    pub control_id: String,
    /// MSA-3, if present and not empty.
    pub text: Option<String>,
    /// MSH-10 of the ACK itself.
    pub ack_control_id: String,
    /// The first ERR segment, as written, if any.
    pub error: Option<String>,
}

/// Reads an ACK message (the content of one MLLP frame).
pub fn parse_ack(bytes: &[u8]) -> Result<Ack, MllpError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let segments: Vec<&str> = text.split(['\r', '\n']).filter(|s| !s.is_empty()).collect();
    let msh = segments
        .iter()
        .find(|s| s.starts_with("MSH"))
        .ok_or_else(|| bad("no MSH segment"))?;
    let separator = msh
        .chars()
        .nth(3)
        .ok_or_else(|| bad("MSH has no field separator"))?;
    let msa = segments
        .iter()
        .find(|s| s.starts_with("MSA"))
        .ok_or_else(|| bad("no MSA segment"))?;
    let msh_fields: Vec<&str> = msh.split(separator).collect();
    let msa_fields: Vec<&str> = msa.split(separator).collect();
    let field =
        |fields: &[&str], index: usize| fields.get(index).copied().unwrap_or_default().to_owned();
    let code_text = field(&msa_fields, 1);
    let code = AckCode::parse(&code_text).ok_or_else(|| bad(&format!("MSA-1 {code_text:?}")))?;
    let text_field = field(&msa_fields, 3);
    Ok(Ack {
        code,
        control_id: field(&msa_fields, 2),
        text: (!text_field.is_empty()).then_some(text_field),
        // MSH-1 is the separator itself, so MSH-n is element n-1 of the split.
        ack_control_id: field(&msh_fields, 9),
        error: segments
            .iter()
            .find(|s| s.starts_with("ERR"))
            .map(|s| (*s).to_owned()),
    })
}

fn bad(what: &str) -> MllpError {
    MllpError::BadAck(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msa_and_msh_fields_are_read_from_an_original_mode_ack() {
        let ack = b"MSH|^~\\&|HL7EDGE|GW|LIS|LAB|20250301120000||ACK^R01^ACK|A-17|P|2.5.1\rMSA|AA|lab-1-42\r";
        let ack = parse_ack(ack).unwrap();
        assert_eq!(ack.code, AckCode::AA);
        assert_eq!(ack.control_id, "lab-1-42");
        assert_eq!(ack.ack_control_id, "A-17");
        assert_eq!((ack.text, ack.error), (None, None));
    }

    #[test]
    fn a_nak_keeps_its_text_and_err_segment_and_honours_another_separator() {
        let ack = b"MSH#^~\\&#GW##########\rMSA#AR#m-1#disk full\rERR###207^Application internal error^HL70357#E\r";
        let ack = parse_ack(ack).unwrap();
        assert_eq!(ack.code, AckCode::AR);
        assert!(ack.code.is_reject() && !ack.code.is_positive());
        assert_eq!(ack.text.as_deref(), Some("disk full"));
        assert_eq!(
            ack.error.as_deref(),
            Some("ERR###207^Application internal error^HL70357#E")
        );
    }

    #[test]
    fn an_ack_without_msa_or_with_an_unknown_code_is_unreadable() {
        assert!(parse_ack(b"MSH|^~\\&|x\r").is_err());
        assert!(parse_ack(b"MSH|^~\\&|x\rMSA|OK|1\r").is_err());
        assert!(parse_ack(b"MSA|AA|1\r").is_err());
    }
}
