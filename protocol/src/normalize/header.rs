//! MSH to [`Header`]: who sent the message, what it is, when it was made.
//!
//! Applications and facilities are HD values: their namespace id, or the
//! universal id when the namespace is empty. Missing text fields become
//! empty strings (validation has already flagged what is required); an
//! unreadable MSH-7 is a warning and `message_time` is `None`.

use crate::hl7::message_type::MessageKind;
use crate::hl7::{Element, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{field_time, string};
use crate::normalize::fields::Fields;
use crate::record::{CompactString, Header, Processing};

/// Reads the header of `msg`, whose MSH-9 has been read as `kind`.
pub(crate) fn header(work: &mut Work<'_>, msg: &Message<'_>, kind: &MessageKind<'_>) -> Header {
    let fields = Fields::new(msg, msg.msh());
    Header {
        message_code: kind.code.as_ref().into(),
        trigger_event: kind.event.as_ref().into(),
        control_id: string(fields.field(10)).unwrap_or_default(),
        version: string(fields.field(12).and_then(|f| f.component(1))).unwrap_or_default(),
        sending_application: hd(fields.field(3)).unwrap_or_default(),
        sending_facility: hd(fields.field(4)).unwrap_or_default(),
        message_time: field_time(work, &fields, 7),
        processing: processing(fields.field(11)),
    }
}

/// An HD value: namespace id, else universal id.
fn hd(element: Option<Element<'_>>) -> Option<CompactString> {
    let element = element?;
    string(element.component(1)).or_else(|| string(element.component(2)))
}

/// MSH-11.1 (table 0103).
fn processing(element: Option<Element<'_>>) -> Processing {
    match string(element.and_then(|e| e.component(1))).as_deref() {
        Some("P") => Processing::Production,
        Some("T") => Processing::Training,
        Some("D") => Processing::Debugging,
        _ => Processing::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::hl7::ErrorCode;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;

    fn read(text: &str) -> (Header, Vec<crate::hl7::Issue>) {
        let m = Message::parse(text.as_bytes()).unwrap();
        let tz = TimeZone::UTC;
        let mapping = MappingTable::empty();
        let mut work = Work::new(
            Context {
                time_zone: &tz,
                mapping: &mapping,
            },
            Vec::new(),
        );
        let h = header(&mut work, &m, m.message_kind());
        (h, work.issues)
    }

    #[test]
    fn the_routing_facts_are_read_from_msh() {
        let (h, issues) = read(
            "MSH|^~\\&|LAB^1.2.3^ISO|^2.16.840.1^ISO|HUB|ORG|20240102030405+0100||ORU^R01^ORU_R01|C1|P^T|2.5.1",
        );
        assert!(issues.is_empty());
        assert_eq!(
            (h.message_code.as_str(), h.trigger_event.as_str()),
            ("ORU", "R01")
        );
        assert_eq!(h.control_id, "C1");
        assert_eq!(h.version, "2.5.1");
        assert_eq!(h.sending_application, "LAB");
        assert_eq!(h.sending_facility, "2.16.840.1");
        assert_eq!(h.processing, Processing::Production);
        assert_eq!(h.message_time.unwrap().offset_minutes, 60);
    }

    #[test]
    fn a_bad_message_time_is_a_located_warning() {
        let (h, issues) = read("MSH|^~\\&|A|B|C|D|1994050216163360||ADT^A01|C1|X|2.2");
        assert_eq!(h.message_time, None);
        assert_eq!(h.processing, Processing::Unknown);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, ErrorCode::DataType);
        assert_eq!(issues[0].location.to_string(), "MSH(segment 1)-7[1].1");
    }
}
