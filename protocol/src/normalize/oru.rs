//! ORU (R01 and friends) to [`ObservationReport`]: lab results and IHE
//! PCD-01 device observations.
//!
//! Each OBR opens a group; each OBX joins the group before it. OBX segments
//! before any OBR go into an implicit group with no order fields. Other
//! segments (NTE, SPM, ORC, ...) are not part of the report.
//!
//! Per OBX: OBX-3 code (LOINC for labs, MDC for devices; see the coded
//! element rules), OBX-4 sub-id (the PCD-01 `mds.vmd.channel.metric`
//! hierarchy), OBX-5 typed by OBX-2 (see [`value`]), OBX-7 reference range,
//! OBX-8 flags (every repetition), OBX-11 status, OBX-14 time, OBX-17
//! method and OBX-18 equipment identifiers.
//!
//! To keep records small, an OBX's `observed_at` is set only when OBX-14 is
//! sent and differs from its group's OBR-7: a reader takes the group's time
//! when it is absent.

mod value;

use crate::hl7::{Element, ErrorCode, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, coded, component, field_time, missing_code, reference_range, repeated_coded, string,
    text,
};
use crate::normalize::fields::Fields;
use crate::record::{
    Coded, CompactString, Observation, ObservationGroup, ObservationReport, ResultStatus, Timestamp,
};

/// Reads every OBR group and its OBX segments.
pub(crate) fn observations(work: &mut Work<'_>, msg: &Message<'_>) -> ObservationReport {
    let mut orders: Vec<ObservationGroup> = Vec::new();
    for segment in msg.segments() {
        match segment.id_bytes() {
            b"OBR" => {
                let mut group = group(work, &Fields::new(msg, segment));
                group.observations = Vec::with_capacity(obx_count(msg, segment.index() + 1));
                orders.push(group);
            }
            b"OBX" => {
                if orders.is_empty() {
                    let mut group = implicit_group();
                    group.observations = Vec::with_capacity(obx_count(msg, segment.index()));
                    orders.push(group);
                }
                if let Some(group) = orders.last_mut() {
                    let obx = Fields::new(msg, segment);
                    let observation = observation(work, &obx, group.observed_at.as_ref());
                    group.observations.push(observation);
                }
            }
            _ => {}
        }
    }
    ObservationReport { orders }
}

/// How many OBX follow segment `from` before the next OBR (observations
/// are large, so their vector is sized once).
fn obx_count(msg: &Message<'_>, from: usize) -> usize {
    let sep = msg.delimiters().field;
    let is = |raw: &[u8], id: &[u8]| raw.starts_with(id) && raw.get(3) == Some(&sep);
    (from..msg.segment_count())
        .filter_map(|i| msg.segment_at(i))
        .map(|s| s.raw())
        .take_while(|raw| !is(raw, b"OBR"))
        .filter(|raw| is(raw, b"OBX"))
        .count()
}

/// An OBR: order numbers, service, times and status.
fn group(work: &mut Work<'_>, obr: &Fields<'_>) -> ObservationGroup {
    ObservationGroup {
        placer_order: component(obr.field(2), 1),
        filler_order: component(obr.field(3), 1),
        service: coded(work, obr.parts(obr.field(4)), Accept::GENERAL),
        observed_at: field_time(work, obr, 7),
        reported_at: field_time(work, obr, 22),
        status: component(obr.field(25), 1),
        observations: Vec::new(),
        ..ObservationGroup::default()
    }
}

/// The group for OBX segments that come before any OBR.
fn implicit_group() -> ObservationGroup {
    ObservationGroup {
        placer_order: None,
        filler_order: None,
        service: None,
        observed_at: None,
        reported_at: None,
        status: None,
        observations: Vec::new(),
        ..ObservationGroup::default()
    }
}

/// One OBX; `group_time` is its OBR-7.
fn observation(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    group_time: Option<&Timestamp>,
) -> Observation {
    let observed_at = field_time(work, obx, 14).filter(|t| Some(t) != group_time);
    Observation {
        code: code(work, obx),
        sub_id: component(obx.field(4), 1),
        value: value::value(work, obx),
        reference_range: text(obx.field(7)).map(|t| reference_range(&t)),
        flags: flags(obx.field(8)),
        status: status(work, obx),
        observed_at,
        equipment: equipment(obx),
        method: repeated_coded(work, obx, 17),
        ..Observation::default()
    }
}

/// OBX-3; an empty one is warned about and kept as an empty local code.
fn code(work: &mut Work<'_>, obx: &Fields<'_>) -> Coded {
    if let Some(code) = coded(work, obx.parts(obx.field(3)), Accept::GENERAL) {
        return code;
    }
    work.warn(
        ErrorCode::RequiredFieldMissing,
        obx.at(3),
        "observation identifier is empty",
    );
    missing_code()
}

/// OBX-8: the first component of every repetition.
fn flags(element: Option<Element<'_>>) -> Vec<CompactString> {
    element
        .map(|f| {
            f.repetitions()
                .filter_map(|r| string(r.component(1)))
                .collect()
        })
        .unwrap_or_default()
}

/// OBX-11 (table 0085); an unknown code is a table-value warning.
fn status(work: &mut Work<'_>, obx: &Fields<'_>) -> ResultStatus {
    let Some(code) = text(obx.field(11).and_then(|f| f.component(1))) else {
        return ResultStatus::Unknown;
    };
    match code.as_ref() {
        "F" => ResultStatus::Final,
        "P" => ResultStatus::Preliminary,
        "C" => ResultStatus::Corrected,
        "X" => ResultStatus::Cancelled,
        "D" => ResultStatus::Deleted,
        "W" => ResultStatus::WrongPatient,
        "R" => ResultStatus::NotVerified,
        "I" => ResultStatus::Pending,
        "S" => ResultStatus::Partial,
        "U" => ResultStatus::FinalUnchanged,
        "N" => ResultStatus::NotAsked,
        "O" => ResultStatus::OrderDetail,
        _ => {
            work.warn(
                ErrorCode::TableValueNotFound,
                obx.at(11).repetition(1).component(1),
                "result status is not in HL7 table 0085",
            );
            ResultStatus::Unknown
        }
    }
}

/// OBX-18: each EI repetition as `id^namespace^universal id^type`, trailing
/// empty components dropped (`0123456789ABCDEF^^0123456789ABCDEF^EUI-64`).
fn equipment(obx: &Fields<'_>) -> Vec<CompactString> {
    let Some(field) = obx.field(18) else {
        return Vec::new();
    };
    field
        .repetitions()
        .filter_map(|rep| {
            let parts = obx.parts(Some(rep));
            let texts = [1, 2, 3, 4].map(|n| text(parts.part(n)));
            let used = texts.iter().rposition(Option::is_some)? + 1;
            let mut out = CompactString::with_capacity(rep.raw().len());
            for (i, t) in texts.iter().take(used).enumerate() {
                if i > 0 {
                    out.push('^');
                }
                out.push_str(t.as_deref().unwrap_or_default());
            }
            Some(out)
        })
        .collect()
}

#[cfg(test)]
mod tests;
