//! MSH (and SFT) to [`Header`]: who sent the message, to whom, what it
//! is, when it was made, by which software.
//!
//! Applications and facilities are HD values: their namespace id, or the
//! universal id when the namespace is empty; the sending application's and
//! facility's universal ids (OIDs) are kept too. MSH-21 gives the message
//! profiles (EI.1 of each repetition); every SFT the sending software.
//! Missing text fields become empty strings (validation has already flagged
//! what is required); an unreadable MSH-7 is a warning and `message_time`
//! is `None`.
//!
//! **The sender's zone.** HL7 says a time without an offset is in the
//! sender's zone. The site zone (the interface's `time_zone`) stands for
//! it, unless MSH-7 shows the sender's offset and the site zone disagrees
//! with it at that instant (a sender in another zone, or a site zone
//! misconfigured): then every time of the message without an offset is
//! read in the sender's offset (`Timestamp::offset_minutes` says which, and
//! `zone_assumed` stays set), and once the whole message is read
//! [`check_site_zone`] puts a warning at MSH-7 saying so, when any such
//! time (hour precision or finer) was there. A message whose times all
//! carry offsets is read exactly whatever the zone, and gets no warning.

use crate::hl7::message_type::MessageKind;
use crate::hl7::{Element, ErrorCode, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{each, field_time, first, organization, string};
use crate::normalize::fields::Fields;
use crate::normalize::time::disagrees_with_site;
use crate::record::{CompactString, Header, Processing, Software};

/// Reads the header of `msg`, whose MSH-9 has been read as `kind`.
pub(crate) fn header(work: &mut Work<'_>, msg: &Message<'_>, kind: &MessageKind<'_>) -> Header {
    let fields = Fields::new(msg, msg.msh());
    let universal = |n: usize| string(fields.field(n).and_then(|f| f.component(2)));
    let message_time = field_time(work, &fields, 7);
    if let Some(t) = message_time.filter(|t| disagrees_with_site(t, work.ctx.time_zone))
        && let Ok(offset) = jiff::tz::Offset::from_seconds(i32::from(t.offset_minutes) * 60)
    {
        work.sender_zone = Some(jiff::tz::TimeZone::fixed(offset));
    }
    Header {
        message_code: kind.code.as_ref().into(),
        trigger_event: kind.event.as_ref().into(),
        control_id: string(fields.field(10)).unwrap_or_default(),
        version: string(fields.field(12).and_then(|f| f.component(1))).unwrap_or_default(),
        sending_application: hd(fields.field(3)).unwrap_or_default(),
        sending_facility: hd(fields.field(4)).unwrap_or_default(),
        message_time,
        processing: processing(fields.field(11)),
        sending_application_id: universal(3),
        sending_facility_id: universal(4),
        receiving_application: hd(fields.field(5)),
        receiving_facility: hd(fields.field(6)),
        profiles: each(&fields, 21, |parts| string(parts.part(1))),
        software: software(work, msg),
    }
}

/// Every SFT (each marked as read).
fn software(work: &mut Work<'_>, msg: &Message<'_>) -> Vec<Software> {
    let mut out = Vec::new();
    for segment in msg.segments_named("SFT") {
        work.consume(&segment);
        let sft = Fields::new(msg, segment);
        out.push(Software {
            vendor: first(&sft, 1, organization).and_then(|o| o.name),
            version: string(sft.field(2)),
            product: string(sft.field(3)),
            binary_id: string(sft.field(4)),
            installed_at: field_time(work, &sft, 6),
        });
    }
    out
}

/// Warns at MSH-7 when times without an offset were read in the sender's
/// offset instead of the site zone (see the module doc). Runs after the
/// body.
pub(crate) fn check_site_zone(work: &mut Work<'_>, msg: &Message<'_>) {
    if work.sender_zone.is_some() && work.read_without_offset {
        let msh = Fields::new(msg, msg.msh());
        work.warn(
            ErrorCode::DataType,
            msh.at(7).repetition(1).component(1),
            "the sender's UTC offset (MSH-7) is not the configured site time zone's; this \
             message's times without an offset were read in the sender's offset",
        );
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

    /// The EVN-2 read after `header` (as a body time would be), and the
    /// issues of `header` then `check_site_zone`.
    fn zone_check(
        text: &str,
        tz: &TimeZone,
    ) -> (Option<crate::record::Timestamp>, Vec<crate::hl7::Issue>) {
        let m = Message::parse(text.as_bytes()).unwrap();
        let mapping = MappingTable::empty();
        let mut work = Work::new(
            Context {
                time_zone: tz,
                mapping: &mapping,
            },
            Vec::new(),
        );
        header(&mut work, &m, m.message_kind());
        let evn = Fields::new(&m, m.segment("EVN").unwrap());
        let evn2 = field_time(&mut work, &evn, 2);
        check_site_zone(&mut work, &m);
        (evn2, work.issues)
    }

    #[test]
    fn times_without_offset_are_read_in_the_senders_offset_when_the_site_zone_disagrees() {
        let msh = "MSH|^~\\&|A|B|C|D|20240102123045-0500||ADT^A01|C1|P|2.5.1";
        let text = format!("{msh}\rEVN|A01|20240102123000");
        let (evn2, issues) = zone_check(&text, &TimeZone::UTC);
        let evn2 = evn2.unwrap();
        assert_eq!(evn2.offset_minutes, -300, "the sender's offset");
        assert!(evn2.zone_assumed);
        assert_eq!(
            jiff::Timestamp::from_millisecond(evn2.utc_ms)
                .unwrap()
                .to_string(),
            "2024-01-02T17:30:00Z"
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].location.to_string(), "MSH(segment 1)-7[1].1");
        assert!(issues[0].message.contains("read in the sender's offset"));
        // The site zone agrees with MSH-7 at that instant: read in it, no
        // warning (its DST rules still apply to other dates).
        let eastern = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let summer = format!("{msh}\rEVN|A01|20240702123000");
        let (evn2, issues) = zone_check(&summer, &eastern);
        assert_eq!(evn2.unwrap().offset_minutes, -240);
        assert!(issues.is_empty());
        let all_with_offsets = format!("{msh}\rEVN|A01|20240102123000-0500");
        assert!(zone_check(&all_with_offsets, &TimeZone::UTC).1.is_empty());
        let dates_only = format!("{msh}\rEVN|A01|20240102");
        let (date, issues) = zone_check(&dates_only, &TimeZone::UTC);
        assert_eq!(date.unwrap().offset_minutes, -300);
        assert!(issues.is_empty(), "no time of day was read");
        let no_offset =
            "MSH|^~\\&|A|B|C|D|20240102123045||ADT^A01|C1|P|2.5.1\rEVN|A01|20240102123000";
        let (evn2, issues) = zone_check(no_offset, &TimeZone::UTC);
        assert_eq!(evn2.unwrap().offset_minutes, 0, "the site zone");
        assert!(issues.is_empty());
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
