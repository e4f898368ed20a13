//! Reading an ACK back: its code, the control id it acknowledges and its
//! error codes. For tests, the end-to-end checker and `inspect`.

use crate::hl7::ack::AckCode;
use crate::hl7::message::Message;

/// The essentials of an ACK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSummary {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the control id of the message acknowledged (empty if none).
    pub acknowledged_id: String,
    /// MSH-10 of the ACK itself.
    pub control_id: String,
    /// Table 0357 codes from every ERR segment (ERR-3.1, or ERR-1.4.1
    /// before v2.5), in order.
    pub error_codes: Vec<u16>,
}

/// Reads MSA-1/MSA-2 (and the ERR codes) from ACK bytes; `None` when the
/// bytes do not parse or have no MSA with a known code.
pub fn ack_code_of(ack: &[u8]) -> Option<AckSummary> {
    let msg = Message::parse(ack).ok()?;
    let msa = msg.segment("MSA")?;
    let code = AckCode::parse(msa.field(1)?.text().trim())?;
    let text =
        |e: Option<crate::hl7::Element<'_>>| e.map(|e| e.text().into_owned()).unwrap_or_default();
    let error_codes = msg
        .segments_named("ERR")
        .filter_map(|err| {
            let modern = err.field(3).and_then(|f| f.component(1));
            let legacy = err
                .field(1)
                .and_then(|f| f.component(4))
                .and_then(|c| c.subcomponent(1));
            let code = modern.filter(|e| !e.is_empty()).or(legacy)?;
            code.text().trim().parse().ok()
        })
        .collect();
    Some(AckSummary {
        code,
        acknowledged_id: text(msa.field(2)),
        control_id: text(msg.msh().field(10)),
        error_codes,
    })
}
