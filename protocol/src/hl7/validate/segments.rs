//! Required fields, data types and coded values of the segments that
//! normalization reads (PID, PV1, EVN, MRG, ORC, OBR, OBX, RXA).
//!
//! These checks apply wherever the segment appears, whatever the message
//! type, because the segment's definition does not depend on it. They only
//! ever produce warnings.

use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue};
use crate::hl7::limits::Issues;
use crate::hl7::message::{Message, Segment};
use crate::hl7::validate::datatypes::{ValidTimes, check_date_time};
use crate::hl7::validate::{component_text, obx, require_fields, segment_location, tables};

/// Runs the checks for `seg` if it is one of the segments above; `times`
/// remembers date/times already found valid in this message.
pub(super) fn check<'a>(
    msg: &'a Message<'_>,
    seg: Segment<'a>,
    times: &mut ValidTimes<'a>,
    out: &mut Issues,
) {
    let fields = || Fields::new(msg, seg);
    match seg.id_bytes() {
        b"PID" => check_pid(&fields(), times, out),
        b"PV1" => require_fields(&fields(), &[(2, "patient class")], out),
        b"EVN" => check_evn(&fields(), times, out),
        b"MRG" => require_fields(&fields(), &[(1, "prior patient identifier list")], out),
        b"ORC" => check_orc(&fields(), times, out),
        b"OBR" => check_obr(&fields(), times, out),
        b"OBX" => obx::check(&fields(), times, out),
        b"RXA" => check_rxa(&fields(), times, out),
        _ => {}
    }
}

fn check_pid<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(
        seg,
        &[(3, "patient identifier list"), (5, "patient name")],
        out,
    );
    check_date_time(seg, times, 7, "date/time of birth", false, out);
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

fn check_evn<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(seg, &[(2, "recorded date/time")], out);
    check_date_time(seg, times, 2, "recorded date/time", false, out);
    check_date_time(seg, times, 6, "event occurred", false, out);
}

fn check_orc<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(seg, &[(1, "order control")], out);
    check_date_time(seg, times, 9, "date/time of transaction", false, out);
}

fn check_obr<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(seg, &[(4, "universal service identifier")], out);
    check_date_time(seg, times, 7, "observation date/time", false, out);
    check_date_time(seg, times, 8, "observation end date/time", false, out);
}

fn check_rxa<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(
        seg,
        &[
            (3, "date/time start of administration"),
            (5, "administered code"),
        ],
        out,
    );
    check_date_time(
        seg,
        times,
        3,
        "date/time start of administration",
        false,
        out,
    );
    check_date_time(seg, times, 4, "date/time end of administration", false, out);
}
