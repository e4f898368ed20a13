//! VXU^V04 to [`ImmunizationReport`]: one [`Immunization`] per RXA, with
//! the ORC before it, the route and site of the RXR after it, and the OBX
//! (funding eligibility, VIS dates, ...) and NTE that follow.
//!
//! RXA-3/4 administration start and end, RXA-5 vaccine (CVX is standard;
//! NDC too), RXA-6/7 dose and unit, RXA-9 administration notes (new record
//! or historical), RXA-10 administering providers, RXA-15 lots, RXA-16
//! expiration, RXA-17 manufacturer (MVX, the CDC manufacturer codes, counts
//! as standard here), RXA-18 refusal reasons, RXA-19 indications, RXA-20
//! completion status and RXA-21 action. RXR-1 route and RXR-2 site accept
//! HL7 tables 0162 and 0163. An RXA without a vaccine code is kept with an
//! empty code and a warning. The CDC convention `999` for an unknown dose
//! is kept as sent.
//!
//! RXA-21 `D` deletes and `U` updates a dose reported earlier: the record
//! says so in `action`, so a deletion never passes for a new dose. OBX
//! before any order (v2.7+ patient observations) are the report's own.

use crate::hl7::{ErrorCode, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, coded, coded_private, component, decimal, each, each_coded, field_time, missing_code,
    practitioner, string, unit,
};
use crate::normalize::fields::Fields;
use crate::normalize::notes::note;
use crate::normalize::observation::observation;
use crate::normalize::order::{self, Common};
use crate::record::{Coded, Immunization, ImmunizationReport, Quantity};

/// Reads every RXA with its ORC, RXR, OBX and NTE.
pub(crate) fn immunizations(work: &mut Work<'_>, msg: &Message<'_>) -> ImmunizationReport {
    let mut immunizations: Vec<Immunization> = Vec::new();
    // Patient-level OBX (v2.7+): before any ORC or RXA.
    let mut patient_observations: Vec<crate::record::Observation> = Vec::new();
    let mut orc: Option<(Common, crate::hl7::Segment<'_>)> = None;
    // TQ1 read after the pending ORC (marked as read when a dose takes
    // them).
    let mut timing: Vec<(crate::record::Timing, crate::hl7::Segment<'_>)> = Vec::new();
    // Whether an NTE now follows an OBX of the last dose.
    let mut after_obx = false;
    for segment in msg.segments() {
        let fields = Fields::new(msg, segment);
        match segment.id_bytes() {
            b"ORC" => {
                orc = Some((order::common(work, &fields), segment));
                timing.clear();
                after_obx = false;
            }
            b"RXA" => {
                work.consume(&segment);
                let mut dose = administration(work, &fields);
                if let Some((common, orc_segment)) = orc.take() {
                    work.consume(&orc_segment);
                    dose.order_control = common.control.clone();
                    dose.placer_order = common.placer.id.clone();
                    dose.filler_order = common.filler.id.clone();
                    order::merge(&mut dose.detail, &common);
                    for (t, tq1) in timing.drain(..) {
                        work.consume(&tq1);
                        dose.detail.timing.push(t);
                    }
                }
                immunizations.push(dose);
                after_obx = false;
            }
            b"RXR" => {
                if let Some(last) = immunizations.last_mut() {
                    work.consume(&segment);
                    last.route = coded_private(
                        work,
                        fields.parts(fields.field(1)),
                        Accept::GENERAL,
                        fields.at(1),
                    );
                    last.site = coded_private(
                        work,
                        fields.parts(fields.field(2)),
                        Accept::GENERAL,
                        fields.at(2),
                    );
                }
            }
            b"TQ1" if orc.is_some() => timing.push((order::timing(work, &fields), segment)),
            b"OBX" => {
                work.consume(&segment);
                let (list, time) = match immunizations.last_mut() {
                    Some(last) if orc.is_none() => (&mut last.observations, last.administered_at),
                    _ => (&mut patient_observations, None),
                };
                list.push(observation(work, &fields, time.as_ref()));
                after_obx = true;
            }
            b"NTE" if after_obx => {
                let list = match immunizations.last_mut() {
                    Some(last) if orc.is_none() => &mut last.observations,
                    _ => &mut patient_observations,
                };
                if let Some(o) = list.last_mut() {
                    work.consume(&segment);
                    o.notes.extend(note(work, &fields));
                }
            }
            b"PRT" => {}
            _ => after_obx = false,
        }
    }
    ImmunizationReport {
        immunizations,
        observations: patient_observations,
    }
}

/// One RXA (route and site are filled by a following RXR).
fn administration(work: &mut Work<'_>, rxa: &Fields<'_>) -> Immunization {
    let mut lots = each(rxa, 15, |parts| string(parts.part(1))).into_iter();
    Immunization {
        administered_at: field_time(work, rxa, 3),
        vaccine: vaccine(work, rxa),
        dose: dose(work, rxa),
        lot: lots.next(),
        manufacturer: coded(work, rxa.parts(rxa.field(17)), Accept::GENERAL, rxa.at(17)),
        completion: component(rxa.field(20), 1),
        action: component(rxa.field(21), 1),
        refusal_reasons: each_coded(work, rxa, 18, Accept::GENERAL),
        administered_until: field_time(work, rxa, 4),
        administration_notes: each_coded(work, rxa, 9, Accept::GENERAL),
        performers: each(rxa, 10, practitioner),
        more_lots: lots.collect(),
        expires_at: field_time(work, rxa, 16),
        indications: each_coded(work, rxa, 19, Accept::GENERAL),
        ..Immunization::default()
    }
}

/// RXA-5; an empty one is warned about and kept as an empty code.
fn vaccine(work: &mut Work<'_>, rxa: &Fields<'_>) -> Coded {
    if let Some(code) = coded(work, rxa.parts(rxa.field(5)), Accept::GENERAL, rxa.at(5)) {
        return code;
    }
    work.warn(
        ErrorCode::RequiredFieldMissing,
        rxa.at(5),
        "administered code is empty",
    );
    missing_code()
}

/// RXA-6 amount with the RXA-7 unit; a non-number is a warning.
fn dose(work: &mut Work<'_>, rxa: &Fields<'_>) -> Option<Quantity> {
    let amount = component(rxa.field(6), 1)?;
    let Some(value) = decimal(&amount) else {
        work.warn(
            ErrorCode::DataType,
            rxa.at(6),
            "administered amount is not a number",
        );
        return None;
    };
    Some(Quantity {
        value,
        unit: unit(work, rxa, 7),
        converted: None,
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::normalize::context::work_for;

    use crate::record::Standard;

    fn read(text: &str) -> (ImmunizationReport, Vec<crate::hl7::Issue>) {
        work_for(text, immunizations)
    }

    #[test]
    fn an_administration_reads_vaccine_dose_lot_manufacturer_route_and_site() {
        let (r, issues) = read(
            "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20240101120000||VXU^V04^VXU_V04|1|P|2.5.1\r\
             PID|1||123^^^HOSP^MR\r\
             ORC|RE||197023^CMC\r\
             RXA|0|1|20240101103000||141^Influenza, seasonal, injectable^CVX|0.5|mL^mL^UCUM||00^New immunization record^NIP001||||||Z0860BB||PMC^sanofi pasteur^MVX|||CP|A\r\
             RXR|C28161^Intramuscular^NCIT|LD^Left Arm^HL70163",
        );
        assert!(issues.is_empty());
        let i = &r.immunizations[0];
        assert!(i.administered_at.is_some());
        assert_eq!(i.vaccine.original.code, "141");
        assert_eq!(i.vaccine.standard, Standard::Original);
        let dose = i.dose.as_ref().unwrap();
        assert_eq!(dose.value.to_string(), "0.5");
        assert_eq!(dose.unit.as_ref().unwrap().ucum.as_deref(), Some("mL"));
        assert_eq!(i.lot.as_deref(), Some("Z0860BB"));
        assert_eq!(
            i.manufacturer.as_ref().unwrap().standard,
            Standard::Original
        );
        assert_eq!(i.completion.as_deref(), Some("CP"));
        assert_eq!(i.route.as_ref().unwrap().original.code, "C28161");
        assert_eq!(i.site.as_ref().unwrap().standard, Standard::Original);
    }

    #[test]
    fn a_deleted_or_updated_dose_says_so_so_it_cannot_pass_for_a_new_one() {
        let base = "MSH|^~\\&|A\rRXA|0|1|20240102||08^Hep B^CVX|0.5|mL^mL^UCUM|||||||||||||CP|";
        for action in ["A", "D", "U"] {
            let (r, issues) = read(&format!("{base}{action}"));
            assert_eq!(r.immunizations.len(), 1);
            assert_eq!(r.immunizations[0].action.as_deref(), Some(action));
            assert!(issues.is_empty(), "{issues:?}");
        }
    }

    #[test]
    fn a_refusal_keeps_its_reason() {
        let (r, issues) = read(
            "MSH|^~\\&|A\rRXA|0|1|20240102||998^No vaccine administered^CVX|999||||||||||||00^Parental refusal^NIP002||RE",
        );
        let dose = &r.immunizations[0];
        assert_eq!(dose.completion.as_deref(), Some("RE"));
        assert_eq!(dose.refusal_reasons[0].original.code, "00");
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn the_order_observations_and_comments_of_a_dose_are_read() {
        let (r, _) = read(
            "MSH|^~\\&|A\r\
             ORC|RE||197023^CMC|||||||||57422^RADON^NICHOLAS\r\
             RXA|0|1|20240101||141^Influenza^CVX|0.5|mL^mL^UCUM||00^New record^NIP001|7832^LEMON^MIKE|||||Z0860BB~Z0860BC|20250101|PMC^sanofi^MVX|||CP|A\r\
             RXR|C28161^IM^NCIT|LD^Left Arm^HL70163\r\
             OBX|1|CE|64994-7^Funding eligibility^LN|1|V02^VFC eligible^HL70064||||||F|||20240101\r\
             NTE|1||checked at visit",
        );
        let dose = &r.immunizations[0];
        assert_eq!(dose.filler_order.as_deref(), Some("197023"));
        assert_eq!(dose.detail.filler_assigner.as_deref(), Some("CMC"));
        assert_eq!(dose.detail.orderers[0].id.as_deref(), Some("57422"));
        assert_eq!(dose.administration_notes[0].original.code, "00");
        assert_eq!(dose.performers[0].id.as_deref(), Some("7832"));
        assert_eq!(dose.lot.as_deref(), Some("Z0860BB"));
        assert_eq!(dose.more_lots, ["Z0860BC"]);
        assert!(dose.expires_at.is_some());
        assert_eq!(dose.observations[0].code.original.code, "64994-7");
        assert_eq!(dose.observations[0].notes[0].text, "checked at visit");
    }

    #[test]
    fn a_missing_vaccine_and_a_bad_amount_are_warned_about() {
        let (r, issues) = read("MSH|^~\\&|A\rRXA|0|1|20240101|||abc");
        assert_eq!(r.immunizations.len(), 1);
        assert!(r.immunizations[0].dose.is_none());
        let places: Vec<_> = issues.iter().map(|i| i.location.to_string()).collect();
        assert_eq!(places, ["RXA(segment 2)-5", "RXA(segment 2)-6"]);
    }
}
