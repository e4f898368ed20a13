//! VXU^V04 to [`ImmunizationReport`]: one [`Immunization`] per RXA, with
//! the route and site of the RXR that follows it.
//!
//! RXA-3 administration time, RXA-5 vaccine (CVX is standard; NDC too),
//! RXA-6/7 dose and unit, RXA-15 lot (first repetition), RXA-17
//! manufacturer (MVX, the CDC manufacturer codes, counts as standard here),
//! RXA-20 completion status. RXR-1 route and RXR-2 site accept HL7 tables
//! 0162 and 0163. An RXA without a vaccine code is kept with an empty code
//! and a warning. The CDC convention `999` for an unknown dose is kept as
//! sent.
//!
//! The record has no field for RXA-21 (action code) or RXA-18 (refusal
//! reason), so an RXA that deletes (`D`) or updates (`U`) a dose reported
//! earlier, or that carries a refusal reason, gets a warning (table 0357
//! code 201) at that field: a deletion must never pass for a new dose.

use crate::hl7::{ErrorCode, Message};
use crate::normalize::context::Work;
use crate::normalize::datatypes::{
    Accept, coded, component, decimal, field_time, missing_code, string, unit,
};
use crate::normalize::fields::Fields;
use crate::record::{Coded, Immunization, ImmunizationReport, Quantity};

const MANUFACTURER_SYSTEMS: Accept = Accept(&["MVX"]);
const ROUTE_SYSTEMS: Accept = Accept(&["HL70162"]);
const SITE_SYSTEMS: Accept = Accept(&["HL70163"]);

/// Reads every RXA with its RXR.
pub(crate) fn immunizations(work: &mut Work<'_>, msg: &Message<'_>) -> ImmunizationReport {
    let mut immunizations: Vec<Immunization> = Vec::new();
    for segment in msg.segments() {
        match segment.id_bytes() {
            b"RXA" => immunizations.push(administration(work, &Fields::new(msg, segment))),
            b"RXR" => {
                if let Some(last) = immunizations.last_mut() {
                    let rxr = Fields::new(msg, segment);
                    last.route = coded(work, rxr.parts(rxr.field(1)), ROUTE_SYSTEMS);
                    last.site = coded(work, rxr.parts(rxr.field(2)), SITE_SYSTEMS);
                }
            }
            _ => {}
        }
    }
    ImmunizationReport { immunizations }
}

/// One RXA (route and site are filled by a following RXR).
fn administration(work: &mut Work<'_>, rxa: &Fields<'_>) -> Immunization {
    not_kept(work, rxa);
    Immunization {
        administered_at: field_time(work, rxa, 3),
        vaccine: vaccine(work, rxa),
        dose: dose(work, rxa),
        lot: string(rxa.field(15).and_then(|f| f.repetition(1))),
        manufacturer: coded(work, rxa.parts(rxa.field(17)), MANUFACTURER_SYSTEMS),
        completion: component(rxa.field(20), 1),
        route: None,
        site: None,
        ..Immunization::default()
    }
}

/// The warning for RXA-21 `D`.
const DELETES: &str = "RXA-21 is D: this deletes a dose reported earlier, it is not a new dose";

/// The warning for RXA-21 `U`.
const UPDATES: &str = "RXA-21 is U: this updates a dose reported earlier, it is not a new dose";

/// Warns about what the RXA means that the record cannot hold: RXA-21
/// delete or update, and an RXA-18 refusal reason.
fn not_kept(work: &mut Work<'_>, rxa: &Fields<'_>) {
    let message = match component(rxa.field(21), 1).as_deref() {
        Some("D" | "d") => Some(DELETES),
        Some("U" | "u") => Some(UPDATES),
        _ => None,
    };
    if let Some(message) = message {
        work.warn(ErrorCode::UnsupportedEvent, rxa.at(21), message);
    }
    if component(rxa.field(18), 1).is_some() || component(rxa.field(18), 2).is_some() {
        work.warn(
            ErrorCode::UnsupportedEvent,
            rxa.at(18),
            "RXA-18: the vaccine was refused (the record does not keep the reason)",
        );
    }
}

/// RXA-5; an empty one is warned about and kept as an empty code.
fn vaccine(work: &mut Work<'_>, rxa: &Fields<'_>) -> Coded {
    if let Some(code) = coded(work, rxa.parts(rxa.field(5)), Accept::GENERAL) {
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
    })
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::normalize::context::Context;
    use crate::normalize::mapping::MappingTable;
    use crate::record::Standard;

    fn read(text: &str) -> (ImmunizationReport, Vec<crate::hl7::Issue>) {
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
        let report = immunizations(&mut work, &m);
        (report, work.issues)
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
    fn a_deleted_or_updated_dose_is_flagged_so_it_cannot_pass_for_a_new_one() {
        let base = "MSH|^~\\&|A\rRXA|0|1|20240102||08^Hep B^CVX|0.5|mL^mL^UCUM|||||||||||||CP|";
        let (_, added) = read(&format!("{base}A"));
        assert!(added.is_empty(), "{added:?}");
        for action in ["D", "U"] {
            let (r, issues) = read(&format!("{base}{action}"));
            assert_eq!(r.immunizations.len(), 1);
            assert_eq!(issues.len(), 1, "{action}");
            assert_eq!(issues[0].location.to_string(), "RXA(segment 2)-21");
            assert!(
                issues[0]
                    .message
                    .starts_with(&format!("RXA-21 is {action}"))
            );
        }
    }

    #[test]
    fn a_refusal_reason_is_flagged() {
        let (r, issues) = read(
            "MSH|^~\\&|A\rRXA|0|1|20240102||998^No vaccine administered^CVX|999||||||||||||00^Parental refusal^NIP002||RE",
        );
        assert_eq!(r.immunizations[0].completion.as_deref(), Some("RE"));
        let places: Vec<_> = issues.iter().map(|i| i.location.to_string()).collect();
        assert_eq!(places, ["RXA(segment 2)-18"]);
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
