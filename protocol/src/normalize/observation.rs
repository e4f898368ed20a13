//! OBX to [`Observation`]: lab results, IHE PCD-01 device observations,
//! and the OBX of orders, doses and ADT events.
//!
//! Per OBX: OBX-3 code (LOINC for labs, MDC for devices; see the coded
//! element rules), OBX-4 sub-id (the PCD-01 `mds.vmd.channel.metric`
//! hierarchy, or the grouping of a microbiology isolate's results), OBX-5
//! with OBX-2 and OBX-6 (every repetition, see [`value`]), OBX-7 reference
//! range, OBX-8 flags (every repetition), OBX-11 status, OBX-14 time,
//! OBX-15 producer, OBX-16 responsible observers, OBX-17 method, OBX-18
//! equipment, OBX-19 analysis time, OBX-20 sites, OBX-21 instance id, and
//! the performing organization: OBX-23 name and identifier (a CLIA number),
//! OBX-24 address, OBX-25 medical director.
//!
//! To keep records small, an OBX's `observed_at` is set only when OBX-14 is
//! sent and differs from its group's OBR-7: a reader takes the group's time
//! when it is absent. The performing organization, usually the same on
//! every OBX of a message, is read once per message for the same bytes.

mod value;

use crate::hl7::{Element, ErrorCode};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, address, coded, component, each_coded, entity_id, field_time, first, missing_code,
    organization, reference_range, repeated_coded, repeated_people, string, text,
};
use crate::normalize::fields::Fields;
use crate::normalize::ucum;
use crate::record::{Coded, CompactString, Observation, Organization, ResultStatus, Timestamp};

/// Reads one OBX; `group_time` is its OBR-7.
pub(crate) fn observation(
    work: &mut Work<'_>,
    obx: &Fields<'_>,
    group_time: Option<&Timestamp>,
) -> Observation {
    let code = code(work, obx);
    let observed_at = field_time(work, obx, 14).filter(|t| Some(t) != group_time);
    let mut read = value::values(work, obx);
    // The first value against the unit its mapping row expects.
    ucum::safety::check_expected_unit(work, &code, &mut read.value, obx.at(6));
    Observation {
        code,
        sub_id: component(obx.field(4), 1),
        value: read.value,
        reference_range: text(obx.field(7)).map(|t| reference_range(&t)),
        flags: flags(obx.field(8)),
        status: status(work, obx),
        observed_at,
        equipment: equipment(obx),
        method: repeated_coded(work, obx, 17).map(Box::new),
        more_values: read.more,
        unit: read.unit,
        producer: repeated_coded(work, obx, 15).map(Box::new),
        observers: repeated_people(work, obx, 16),
        analyzed_at: field_time(work, obx, 19),
        sites: each_coded(work, obx, 20, Accept::GENERAL),
        instance_id: first(obx, 21, entity_id).map(Box::new),
        performing_organization: performing_organization(work, obx).map(Box::new),
        performing_director: repeated_people(work, obx, 25)
            .into_iter()
            .next()
            .map(Box::new),
        specimen: None,
        notes: Vec::new(),
    }
}

/// OBX-3; an empty one is warned about and kept as an empty local code.
fn code(work: &mut Work<'_>, obx: &Fields<'_>) -> Coded {
    if let Some(code) = coded(
        work,
        obx.parts(obx.field(3)),
        Accept::OBSERVATION,
        obx.at(3),
    ) {
        return code;
    }
    work.warn(
        ErrorCode::RequiredFieldMissing,
        obx.at(3),
        "observation identifier is empty",
    );
    missing_code()
}

/// OBX-23 with the OBX-24 address; the same bytes are read once per
/// message.
fn performing_organization(work: &mut Work<'_>, obx: &Fields<'_>) -> Option<Organization> {
    let name = obx.field(23).map(|f| f.raw()).unwrap_or_default();
    let place = obx.field(24).map(|f| f.raw()).unwrap_or_default();
    if name.is_empty() && place.is_empty() {
        return None;
    }
    let mut key = Vec::with_capacity(name.len() + place.len() + 1);
    key.extend_from_slice(name);
    key.push(0);
    key.extend_from_slice(place);
    if let Some(known) = work.organizations.get(&key) {
        return known.clone();
    }
    let mut org = first(obx, 23, organization).unwrap_or_default();
    org.address = first(obx, 24, address);
    let org = (org != Organization::default()).then_some(org);
    work.organizations.put(&key, org.clone());
    org
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
mod tests {

    use super::*;

    use crate::normalize::context::work_for;

    use crate::record::{Decimal, Value};

    fn read(obx: &str) -> (Observation, Vec<crate::hl7::Issue>) {
        let text = format!("MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C1|P|2.5.1\r{obx}");
        work_for(&text, |work, m| {
            observation(work, &Fields::new(m, m.segment("OBX").unwrap()), None)
        })
    }

    #[test]
    fn equipment_identifiers_stay_readable() {
        let (o, _) = read(
            "OBX|1||69965^MDC_DEV^MDC|1.0.0.0|||||||X|||||||0123456789ABCDEF^^0123456789ABCDEF^EUI-64~GW1^ACME~",
        );
        assert_eq!(
            o.equipment,
            ["0123456789ABCDEF^^0123456789ABCDEF^EUI-64", "GW1^ACME"]
        );
    }

    #[test]
    fn the_performing_laboratory_producer_observers_site_and_instance_are_read() {
        let (o, _) = read(
            "OBX|1|CWE|625-4^Bacteria identified^LN|1|27268008^Salmonella^SCT||||||P|||20120301|16D0648109^SHL^CLIA|1134^Aly^Zafar~1135^Bo^Li|||201203140957|LA^Left arm^HL70163|EI21^OII||State Hygienic Laboratory^L^^^^IA PHL&2.16.840.1.114222.4.1.10411&ISO^FI^^^16D0648109|UI Research Park^^Iowa City^IA^52242^USA^B|MD-25^Atchinson^Christopher^^^^MD",
        );
        assert_eq!(o.producer.unwrap().original.code, "16D0648109");
        assert_eq!(o.observers.len(), 2);
        assert!(o.analyzed_at.is_some());
        assert_eq!(o.sites[0].original.code, "LA");
        assert_eq!(o.instance_id.unwrap().authority.as_deref(), Some("OII"));
        let lab = o.performing_organization.unwrap();
        assert_eq!(lab.name.as_deref(), Some("State Hygienic Laboratory"));
        assert_eq!(lab.id.as_deref(), Some("16D0648109"));
        assert_eq!(lab.address.unwrap().city.as_deref(), Some("Iowa City"));
        let director = o.performing_director.unwrap();
        assert_eq!(director.name.unwrap().degree.as_deref(), Some("MD"));
    }

    #[test]
    fn every_repetition_of_a_value_is_kept_and_typed() {
        let (coded, issues) = read("OBX|1|CWE|X^Y^L||A^Apple^L~B^Banana^L||||||F");
        assert!(issues.is_empty(), "{issues:?}");
        assert!(matches!(coded.value, Value::Coded(_)));
        assert!(
            matches!(coded.more_values.as_slice(), [Value::Coded(c)] if c.original.code == "B")
        );
        let (years, _) = read("OBX|1|DT|X^Y^L||1996~1998||||||F");
        assert!(matches!(years.value, Value::Time(_)));
        assert!(matches!(years.more_values.as_slice(), [Value::Time(_)]));
        let (numbers, _) = read("OBX|1|NM|X^Y^L||27~<25|mg|||||F");
        let Value::Quantity(q) = &numbers.value else {
            panic!("{:?}", numbers.value)
        };
        assert_eq!(q.value, Decimal::parse("27").unwrap());
        assert!(
            matches!(numbers.more_values.as_slice(), [Value::Structured(s)] if s.unit.is_some())
        );
    }

    #[test]
    fn a_multiplexed_array_keeps_its_channels_and_unit() {
        let (o, issues) = read("OBX|1|MA|X^Y^MDC||1^2^3~4^5^6|mV|||||F");
        assert!(issues.is_empty(), "{issues:?}");
        let Value::Series(s) = &o.value else {
            panic!("{:?}", o.value)
        };
        assert_eq!((s.values.len(), s.channels), (6, 3));
        assert_eq!(s.unit.as_ref().unwrap().ucum.as_deref(), Some("mV"));
        let (ragged, issues) = read("OBX|1|MA|X^Y^MDC||1^2~3|mV|||||F");
        let Value::Series(s) = &ragged.value else {
            panic!("{:?}", ragged.value)
        };
        assert_eq!((s.values.len(), s.channels), (3, 1));
        assert_eq!(issues.len(), 1);
    }

    #[test]
    fn a_unit_sent_with_a_text_value_is_kept() {
        let (o, _) = read("OBX|1|ST|X^Y^L||>17|umol/L|||||F");
        assert_eq!(o.value, Value::Text(">17".into()));
        assert_eq!(o.unit.unwrap().ucum.as_deref(), Some("umol/L"));
    }
}
