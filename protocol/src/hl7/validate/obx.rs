//! OBX checks: the observation segment carries the values normalization
//! types and codes, so its value type, value, status and flags are checked
//! against each other and against their HL7 tables.

use std::borrow::Cow;

use crate::hl7::Element;
use crate::hl7::fields::Fields;
use crate::hl7::issue::{ErrorCode, Issue};
use crate::hl7::limits::Issues;
use crate::hl7::validate::datatypes::{
    ValidTimes, check_date_time, is_numeric, is_structured_numeric,
};
use crate::hl7::validate::{component_text, has_value, require_fields, segment_location, tables};

/// Runs every OBX check on `seg`.
pub(super) fn check<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    require_fields(
        seg,
        &[
            (3, "observation identifier"),
            (11, "observation result status"),
        ],
        out,
    );
    check_value_type(seg, times, out);
    check_result_status(seg, out);
    check_abnormal_flags(seg, out);
    check_date_time(seg, times, 14, "date/time of the observation", false, out);
}

fn check_value_type<'a>(seg: &Fields<'a>, times: &mut ValidTimes<'a>, out: &mut Issues) {
    // Built only when there is something to report.
    let at = || segment_location(&seg.segment()).field(2);
    let Some(value_type) = component_text(seg, 2, 1) else {
        if has_value(seg, 5) {
            out.push(Issue::warning(
                ErrorCode::RequiredFieldMissing,
                at(),
                "OBX-2 (value type) is missing although OBX-5 has a value",
            ));
        }
        return;
    };
    let value_type = tables::trim(&value_type);
    if !tables::contains(tables::VALUE_TYPES, value_type) {
        out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            at().repetition(1).component(1),
            "OBX-2 (value type) is not in HL7 table 0125",
        ));
        return;
    }
    check_value(seg, value_type, times, out);
}

/// Checks OBX-5 against the type OBX-2 declares, for the types whose values
/// normalization turns into numbers and instants.
fn check_value<'a>(
    seg: &Fields<'a>,
    value_type: &str,
    times: &mut ValidTimes<'a>,
    out: &mut Issues,
) {
    match value_type {
        "NM" | "SN" => {}
        "DT" => return check_date_time(seg, times, 5, "observation value", true, out),
        "DTM" | "TS" => return check_date_time(seg, times, 5, "observation value", false, out),
        _ => return,
    }
    let Some(field) = seg.field(5) else { return };
    for (r, rep) in field.repetitions().enumerate() {
        let Some(value) = rep.value() else {
            continue;
        };
        let valid = if value_type == "NM" {
            // Trailing delimiters are insignificant (`5.4^` is 5.4).
            let sole = sole_component(&rep);
            is_numeric(sole.as_deref().unwrap_or(&value))
        } else {
            is_structured_numeric(&rep)
        };
        if !valid {
            out.warn_with(
                ErrorCode::DataType,
                || segment_location(&seg.segment()).field(5).repetition(r + 1),
                || format!("OBX-5 (observation value) is not a valid {value_type} value"),
            );
        }
    }
}

/// The first component's text when every later component is empty.
fn sole_component<'a>(rep: &Element<'a>) -> Option<Cow<'a, str>> {
    let mut rest = rep.components().skip(1).peekable();
    let more = rest.peek().is_some();
    let rest_empty = rest.all(|c| c.is_empty());
    (more && rest_empty)
        .then(|| rep.component(1).and_then(|c| c.value()))
        .flatten()
}

fn check_result_status(seg: &Fields<'_>, out: &mut Issues) {
    if component_text(seg, 11, 1).is_some_and(|s| !tables::contains(tables::RESULT_STATUS, &s)) {
        out.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            segment_location(&seg.segment())
                .field(11)
                .repetition(1)
                .component(1),
            "OBX-11 (observation result status) is not in HL7 table 0085",
        ));
    }
}

fn check_abnormal_flags(seg: &Fields<'_>, out: &mut Issues) {
    let Some(field) = seg.field(8) else { return };
    for (r, rep) in field.repetitions().enumerate() {
        let code = rep.component(1).and_then(|c| c.value());
        if code.is_some_and(|c| !tables::contains(tables::ABNORMAL_FLAGS, &c)) {
            out.warn_with(
                ErrorCode::TableValueNotFound,
                || {
                    segment_location(&seg.segment())
                        .field(8)
                        .repetition(r + 1)
                        .component(1)
                },
                || "OBX-8 (abnormal flags) is not in HL7 table 0078".to_string(),
            );
        }
    }
}
