//! Required fields, data types and coded values of the segments that
//! normalization reads (PID, PV1, EVN, MRG, ORC, OBR, OBX, RXA).
//!
//! These checks apply wherever the segment appears, whatever the message
//! type, because the segment's definition does not depend on it. They only
//! ever produce warnings.

use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue};
use crate::hl7::message::Segment;
use crate::hl7::validate::datatypes::check_date_time;
use crate::hl7::validate::{component_text, obx, require_fields, segment_location, tables};

/// Runs the checks for `seg` if it is one of the segments above.
pub(super) fn check(seg: Segment<'_>, out: &mut Vec<Issue>) {
    let check: fn(&Fields<'_>, &mut Vec<Issue>) = match seg.id_bytes() {
        b"PID" => check_pid,
        b"PV1" => |seg, out| require_fields(seg, &[(2, "patient class")], out),
        b"EVN" => check_evn,
        b"MRG" => |seg, out| require_fields(seg, &[(1, "prior patient identifier list")], out),
        b"ORC" => check_orc,
        b"OBR" => check_obr,
        b"OBX" => obx::check,
        b"RXA" => check_rxa,
        _ => return,
    };
    check(&Fields::new(seg), out);
}

fn check_pid(seg: &Fields<'_>, out: &mut Vec<Issue>) {
    require_fields(
        seg,
        &[(3, "patient identifier list"), (5, "patient name")],
        out,
    );
    check_date_time(seg, 7, "date/time of birth", false, out);
    if component_text(seg, 8, 1).is_some_and(|sex| !tables::is_sex(&sex)) {
        out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            segment_location(&seg.segment())
                .field(8)
                .repetition(1)
                .component(1),
            "PID-8 (administrative sex) is not in HL7 table 0001",
        ));
    }
}

fn check_evn(seg: &Fields<'_>, out: &mut Vec<Issue>) {
    require_fields(seg, &[(2, "recorded date/time")], out);
    check_date_time(seg, 2, "recorded date/time", false, out);
    check_date_time(seg, 6, "event occurred", false, out);
}

fn check_orc(seg: &Fields<'_>, out: &mut Vec<Issue>) {
    require_fields(seg, &[(1, "order control")], out);
    check_date_time(seg, 9, "date/time of transaction", false, out);
}

fn check_obr(seg: &Fields<'_>, out: &mut Vec<Issue>) {
    require_fields(seg, &[(4, "universal service identifier")], out);
    check_date_time(seg, 7, "observation date/time", false, out);
    check_date_time(seg, 8, "observation end date/time", false, out);
}

fn check_rxa(seg: &Fields<'_>, out: &mut Vec<Issue>) {
    require_fields(
        seg,
        &[
            (3, "date/time start of administration"),
            (5, "administered code"),
        ],
        out,
    );
    check_date_time(seg, 3, "date/time start of administration", false, out);
    check_date_time(seg, 4, "date/time end of administration", false, out);
}
