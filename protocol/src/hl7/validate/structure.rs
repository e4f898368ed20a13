//! Segment structure of the supported message types: the segments each
//! requires, and the order the ones normalization pairs up must come in.
//!
//! Supported: ORU^R01 (lab and device observations), every ADT event
//! (EVN and PID always, PV1 and MRG where the event's structure requires
//! them), ORM^O01, OML^O21 and VXU^V04. Structure problems are warnings
//! (100): the message is still stored. Other message types get one
//! information issue; OUL is then normalized like ORU, the rest are stored
//! as generic records.
//!
//! Whatever the type, a frame must hold one message, since a record carries
//! one header: a second MSH or a batch envelope segment (two messages in one
//! frame) is an error (100). A record also carries one patient. Where a
//! second PID would put clinical data under the first patient (ORU, OUL,
//! ORM, OML, VXU: results, orders and doses are attached to the one patient
//! the record has) it is an error (207: valid HL7 this gateway cannot
//! carry).
//! In ADT it is fine: every patient group is carried (a merge of several
//! patients in A39/A40, the two patients an A24/A37 links). Anywhere else
//! it is a warning: the record's patient is the first PID (a BAR with
//! several accounts or another type kept as generic segments keeps every
//! segment, but its patient is the first).

use crate::hl7::issue::{ErrorCode, Issue, Location, Severity};
use crate::hl7::limits::Issues;
use crate::hl7::message::Message;
use crate::hl7::message_type::MessageKind;
use crate::hl7::validate::segment_location;

/// ADT events whose structure requires PV1.
const ADT_WITH_PV1: &[&str] = &[
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
    "A14", "A15", "A16", "A28", "A31",
];

/// ADT events that merge, move or change identifiers and so require MRG.
const ADT_WITH_MRG: &[&str] = &[
    "A18", "A30", "A34", "A35", "A36", "A39", "A40", "A41", "A42", "A44", "A45", "A46", "A47",
    "A48", "A49", "A50", "A51",
];

/// Runs the structure rules for the message's type, if it has any;
/// `version` is the message's version number (MSH-12.1).
pub(super) fn check(msg: &Message<'_>, version: Option<(u8, u8, u8)>, out: &mut Issues) {
    let mt = msg.message_kind();
    one_message_one_patient(msg, second_patient_misfiles(mt), out);
    let rules = Rules {
        msg,
        kind: mt,
        // Patient-level observations (OBX after PID) exist from v2.7.
        patient_observations: version.is_some_and(|v| v >= (2, 7, 0)),
    };
    match (mt.code.as_ref(), mt.event.as_ref()) {
        ("", _) => {}
        ("ORU", "R01") => rules.oru(out),
        ("ADT", event) => rules.adt(event, out),
        ("ORM", "O01") | ("OML", "O21") => rules.order(out),
        ("VXU", "V04") => rules.vxu(out),
        ("ORU" | "ORM" | "OML" | "VXU", _) => out.push(information(
            ErrorCode::UnsupportedEvent,
            2,
            "no structure rules for this trigger event; only the header and common segments \
             were checked",
        )),
        _ => out.push(information(
            ErrorCode::UnsupportedMessageType,
            1,
            "no structure rules for this message type; only the header and common segments \
             were checked",
        )),
    }
}

/// Whether a second PID in a message of this type would file data under
/// the first patient: the normalizers of these types attach everything
/// (results, orders, doses) to the one patient they read.
fn second_patient_misfiles(mt: &MessageKind<'_>) -> bool {
    matches!(mt.code.as_ref(), "ORU" | "OUL" | "ORM" | "OML" | "VXU")
}

/// Issues for a frame that is not one message about one patient, at the
/// first segment that shows it, in one pass over the segment ids: a second
/// PID is an error when `misfiles` (see [`second_patient_misfiles`]), else
/// a warning. Nothing after a second MSH is looked at: it belongs to
/// another message.
fn one_message_one_patient(msg: &Message<'_>, misfiles: bool, out: &mut Issues) {
    let mut patients = 0;
    // Texts fit the 80 characters of a pre-v2.5 MSA-3.
    for seg in msg.segments().skip(1) {
        // Most segments (OBX, OBR, NTE...) are passed over on their first byte.
        if !matches!(seg.raw().first(), Some(b'M' | b'F' | b'B' | b'P')) {
            continue;
        }
        let text = match seg.id_bytes() {
            b"MSH" => "a second message (MSH) in the same frame; send one message per MLLP frame",
            b"FHS" | b"BHS" | b"BTS" | b"FTS" => {
                "batch segment (FHS/BHS/BTS/FTS) in a message: send one message per MLLP frame"
            }
            b"PID" => {
                patients += 1;
                if patients == 2 && misfiles {
                    out.push(Issue::error(
                        ErrorCode::InternalError,
                        segment_location(&seg),
                        "more than one PID in a message is not supported; send one patient \
                         per message",
                    ));
                } else if patients == 2 && msg.message_kind().code.as_ref() != "ADT" {
                    out.push(Issue::warning(
                        ErrorCode::InternalError,
                        segment_location(&seg),
                        "second PID (another patient group): the record carries the first \
                         patient only",
                    ));
                }
                continue;
            }
            _ => continue,
        };
        out.push(Issue::error(
            ErrorCode::SegmentSequence,
            segment_location(&seg),
            text,
        ));
        return;
    }
}

fn information(code: ErrorCode, component: usize, message: &str) -> Issue {
    Issue {
        code,
        severity: Severity::Information,
        location: Location::segment("MSH", 1)
            .field(9)
            .repetition(1)
            .component(component),
        message: message.to_string(),
    }
}

/// The rules for one message, with its type for the issue text.
struct Rules<'m, 'a> {
    msg: &'m Message<'a>,
    /// The message type, named in issue texts (`ORU^R01`).
    kind: &'m MessageKind<'a>,
    patient_observations: bool,
}

impl Rules<'_, '_> {
    fn oru(&self, out: &mut Issues) {
        self.require("OBR", out);
        self.in_order("PID", "OBR", out);
        self.observations_follow_requests(out);
    }

    fn adt(&self, event: &str, out: &mut Issues) {
        self.require("EVN", out);
        if event != "A20" {
            self.require("PID", out);
        }
        if ADT_WITH_PV1.contains(&event) {
            self.require("PV1", out);
        }
        if ADT_WITH_MRG.contains(&event) {
            self.require("MRG", out);
        }
        self.in_order("EVN", "PID", out);
        self.in_order("PID", "PV1", out);
        self.in_order("PID", "MRG", out);
    }

    fn order(&self, out: &mut Issues) {
        self.require("ORC", out);
        self.in_order("PID", "ORC", out);
        self.in_order("ORC", "OBR", out);
    }

    fn vxu(&self, out: &mut Issues) {
        self.require("PID", out);
        self.require("RXA", out);
        self.in_order("PID", "RXA", out);
    }

    /// A 100 warning when no `id` segment is present.
    fn require(&self, id: &str, out: &mut Issues) {
        if self.msg.first_segment(id).is_none() {
            out.push(Issue::warning(
                ErrorCode::SegmentSequence,
                Location::segment(id, 0),
                format!("{} requires segment {id}, which is missing", self.kind),
            ));
        }
    }

    /// A 100 warning, located at the first `after` segment, when it comes
    /// before the first `before` segment.
    fn in_order(&self, before: &str, after: &str, out: &mut Issues) {
        let (Some(first), Some(second)) = (
            self.msg.first_segment(before),
            self.msg.first_segment(after),
        ) else {
            return;
        };
        if second.index() < first.index() {
            out.push(Issue::warning(
                ErrorCode::SegmentSequence,
                segment_location(&second),
                format!("{after} comes before the first {before}"),
            ));
        }
    }

    /// A 100 warning for every OBX that does not belong to an OBR: the
    /// nearest PID, ORC or OBR before it must be an OBR (or, from v2.7, a
    /// PID: a patient-level observation).
    fn observations_follow_requests(&self, out: &mut Issues) {
        let mut anchor: Option<&[u8]> = None;
        for seg in self.msg.segments() {
            match seg.id_bytes() {
                id @ (b"PID" | b"ORC" | b"OBR") => anchor = Some(id),
                b"OBX" => {
                    let belongs = match anchor {
                        Some(b"OBR") => true,
                        Some(b"PID") => self.patient_observations,
                        _ => false,
                    };
                    if !belongs {
                        out.push(Issue::warning(
                            ErrorCode::SegmentSequence,
                            segment_location(&seg),
                            "OBX does not follow an OBR; an observation belongs to the OBR \
                             before it",
                        ));
                    }
                }
                _ => {}
            }
        }
    }
}
