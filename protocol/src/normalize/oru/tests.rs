use jiff::tz::TimeZone;

use super::*;
use crate::hl7::{ErrorCode, Issue};
use crate::normalize::context::Context;
use crate::normalize::mapping::MappingTable;
use crate::record::{Decimal, Precision, ResultStatus, Value};

fn read(text: &str) -> (ObservationReport, Vec<Issue>) {
    let m = Message::parse(text.as_bytes()).unwrap();
    let tz = TimeZone::fixed(jiff::tz::offset(-5));
    let mapping = MappingTable::empty();
    let mut work = Work::new(
        Context {
            time_zone: &tz,
            mapping: &mapping,
        },
        Vec::new(),
    );
    let report = observations(&mut work, &m);
    (report, work.issues)
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap()
}

/// A one-channel series without a unit.
fn series(values: &[&str]) -> Value {
    Value::Series(crate::record::Series {
        values: values.iter().map(|v| dec(v)).collect(),
        channels: 1,
        unit: None,
    })
}

const LAB: &str = "MSH|^~\\&|LAB|H|HUB|O|20240102030405||ORU^R01^ORU_R01|C1|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE\r\
OBR|1|PL1^CPOE|FL1^LAB|24323-8^Comprehensive metabolic panel^LN|||20240102020000|||||||||||||||20240102030000|||F\r\
OBX|1|NM|2345-7^Glucose^LN||95|mg/dl|70-99|N|||F|||20240102020000\r\
OBX|2|SN|2160-0^Creatinine^LN||<^0.5|mg/dL|0.6-1.2|L~A|||F|||20240102021500\r\
OBX|3|CWE|5778-6^Color of Urine^LN||YEL^Yellow^L||||||C\r\
OBX|4|TX|8251-1^Comment^LN||line one~line two||||||F\r\
OBX|5|DT|33882-2^Collection date^LN||20240101||||||F\r\
OBX|6|NM|2951-2^Sodium^LN||14O|mmol/L||||F\r\
OBX|7|NM|2823-3^Potassium^LN||4.1|mmol/L|||||Q\r\
NTE|1||a comment\r";

#[test]
fn lab_results_are_typed_by_value_type() {
    let (r, _) = read(LAB);
    let obs = &r.orders[0].observations;
    assert_eq!(obs.len(), 7);
    let Value::Quantity(q) = &obs[0].value else {
        panic!("{:?}", obs[0].value)
    };
    assert_eq!(q.value, dec("95"));
    assert_eq!(q.unit.as_ref().unwrap().ucum.as_deref(), Some("mg/dL"));
    let Value::Structured(sn) = &obs[1].value else {
        panic!("{:?}", obs[1].value)
    };
    assert_eq!(sn.comparator.as_deref(), Some("<"));
    assert_eq!(sn.low, Some(dec("0.5")));
    assert_eq!(sn.unit.as_ref().unwrap().ucum.as_deref(), Some("mg/dL"));
    let Value::Coded(c) = &obs[2].value else {
        panic!("{:?}", obs[2].value)
    };
    assert_eq!(c.original.code, "YEL");
    assert_eq!(obs[3].value, Value::Text("line one\nline two".into()));
    let Value::Time(t) = &obs[4].value else {
        panic!("{:?}", obs[4].value)
    };
    assert_eq!(t.precision, Precision::Day);
}

#[test]
fn order_fields_ranges_flags_and_statuses_are_read() {
    let (r, _) = read(LAB);
    let g = &r.orders[0];
    assert_eq!(g.placer_order.as_deref(), Some("PL1"));
    assert_eq!(g.filler_order.as_deref(), Some("FL1"));
    assert_eq!(g.service.as_ref().unwrap().original.code, "24323-8");
    assert!(g.reported_at.is_some());
    assert_eq!(g.status.as_deref(), Some("F"));
    let obs = &g.observations;
    let range = obs[0].reference_range.as_ref().unwrap();
    assert_eq!((range.low, range.high), (Some(dec("70")), Some(dec("99"))));
    assert_eq!(obs[1].flags, ["L", "A"]);
    assert_eq!(obs[0].status, ResultStatus::Final);
    assert_eq!(obs[2].status, ResultStatus::Corrected);
}

#[test]
fn an_observation_time_equal_to_the_order_time_is_not_repeated() {
    let (r, _) = read(LAB);
    let g = &r.orders[0];
    assert!(g.observed_at.is_some());
    assert_eq!(g.observations[0].observed_at, None);
    let own = g.observations[1].observed_at.unwrap();
    assert_eq!(own.utc_ms - g.observed_at.unwrap().utc_ms, 15 * 60 * 1000);
}

#[test]
fn unreadable_values_are_kept_as_text_with_located_warnings() {
    let (r, issues) = read(LAB);
    let obs = &r.orders[0].observations;
    assert_eq!(obs[5].value, Value::Text("14O".into()));
    assert_eq!(obs[6].status, ResultStatus::Unknown);
    let found: Vec<_> = issues
        .iter()
        .map(|i| (i.code, i.location.to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (ErrorCode::DataType, "OBX(segment 9)-5[1]".to_string()),
            (
                ErrorCode::TableValueNotFound,
                "OBX(segment 10)-11[1].1".to_string()
            ),
        ]
    );
    assert!(issues.iter().all(|i| !i.message.contains("14O")));
}

#[test]
fn observations_before_any_order_get_an_implicit_group() {
    let (r, _) = read(
        "MSH|^~\\&|DEV|H|||20240102030405||ORU^R01|C2|P|2.5\r\
         OBX|1|NM|8867-4^Heart rate^LN||72|/min\r\
         OBR|1||F2|X^Y^L\r\
         OBX|1|ST|X^Y^L||ok",
    );
    assert_eq!(r.orders.len(), 2);
    assert_eq!(r.orders[0].service, None);
    assert_eq!(r.orders[0].observations.len(), 1);
    assert_eq!(r.orders[1].observations.len(), 1);
}

#[test]
fn several_numbers_form_a_series_and_a_missing_code_is_warned_about() {
    let (r, issues) = read(
        "MSH|^~\\&|DEV|H|||20240102030405||ORU^R01|C3|P|2.6\r\
         OBR|1\r\
         OBX|1|NA|150452^MDC_PULS_OXIM_PLETH^MDC|1.1.1.3|1^2.5^-3\r\
         OBX|2|NM|||7",
    );
    let obs = &r.orders[0].observations;
    assert_eq!(obs[0].value, series(&["1", "2.5", "-3"]));
    assert_eq!(obs[0].sub_id.as_deref(), Some("1.1.1.3"));
    assert_eq!(obs[1].code.original.code, "");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, ErrorCode::RequiredFieldMissing);
}

#[test]
fn trailing_delimiters_after_a_number_are_insignificant() {
    let (r, issues) = read(
        "MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C4|P|2.5.1\r\
         OBR|1\r\
         OBX|1|NM|2345-7^Glucose^LN||5.4^|mmol/L|||||F\r\
         OBX|2|NM|2345-7^Glucose^LN||5.4~|mmol/L|||||F\r\
         OBX|3|NM|2345-7^Glucose^LN||5.4^^|mmol/L|||||F\r\
         OBX|4|NM|2345-7^Glucose^LN||<0.5^|mmol/L|||||F\r\
         OBX|5|NA|X^Y^L||1^2^~|||||F\r\
         OBX|6|NA|X^Y^L||1^~2|||||F\r\
         OBX|7|NA|X^Y^L||1^^2|||||F",
    );
    let obs = &r.orders[0].observations;
    for o in &obs[..3] {
        let Value::Quantity(q) = &o.value else {
            panic!("{:?}", o.value)
        };
        assert_eq!(q.value, dec("5.4"));
        assert_eq!(q.unit.as_ref().unwrap().ucum.as_deref(), Some("mmol/L"));
    }
    let Value::Structured(sn) = &obs[3].value else {
        panic!("{:?}", obs[3].value)
    };
    assert_eq!(
        (sn.comparator.as_deref(), sn.low),
        (Some("<"), Some(dec("0.5")))
    );
    assert!(sn.unit.is_some());
    assert_eq!(obs[4].value, series(&["1", "2"]));
    assert_eq!(obs[5].value, series(&["1", "2"]));
    assert_eq!(obs[6].value, Value::Text("1^^2".into()));
    let places: Vec<_> = issues.iter().map(|i| i.location.to_string()).collect();
    assert_eq!(places, ["OBX(segment 9)-5[1]"]);
}

#[test]
fn a_coded_value_sent_as_original_text_only_is_coded_not_raw_text() {
    let (r, issues) = read(
        "MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C5|P|2.5.1\r\
         OBR|1\r\
         OBX|1|CWE|X^Y^L||^^^^^^^^Positive for influenza A||||||F",
    );
    let Value::Coded(c) = &r.orders[0].observations[0].value else {
        panic!("{:?}", r.orders[0].observations[0].value)
    };
    assert_eq!(
        c.original.display.as_deref(),
        Some("Positive for influenza A")
    );
    assert!(issues.is_empty(), "{issues:?}");
}

#[test]
fn comments_attach_to_the_order_result_or_specimen_they_follow() {
    let (r, _) = read(
        "MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C6|P|2.5.1\r\
         PID|1||1^^^H^MR\r\
         ORC|RE|PL1|FL1||CM||||20240102020000|||1234^SMITH^ANN|||||||||Clinic 12|1 Main St^^Ames^IA|^WPN^PH^^1^515^5550100\r\
         OBR|1|||2823-3^Potassium^LN|||20240102020000\r\
         NTE|1|L|order comment\r\
         TQ1|1||||||||S^Stat^HL70485\r\
         OBX|1|NM|2823-3^Potassium^LN||6.1|mmol/L|||||F\r\
         NTE|1|L|hemolyzed, potassium falsely high|RE^Remark^HL70364\r\
         NTE|2|L|repeat advised\r\
         SPM|1|S1^CPOE||BLD^Whole blood^HL70487|||||||P^Patient^HL70369\r\
         NTE|1||drawn above IV\r\
         OBX|1|NM|1234-5^Volume^LN||5|mL|||||F",
    );
    let g = &r.orders[0];
    assert_eq!(g.order_control.as_deref(), Some("RE"));
    assert_eq!(g.order_status.as_deref(), Some("CM"));
    assert_eq!(g.placer_order.as_deref(), Some("PL1"), "from the ORC");
    assert_eq!(g.priority.as_deref(), Some("S"), "from TQ1");
    assert_eq!(g.detail.orderers[0].id.as_deref(), Some("1234"));
    let facility = g.detail.ordering_facility.as_ref().unwrap();
    assert_eq!(facility.name.as_deref(), Some("Clinic 12"));
    assert_eq!(
        facility.address.as_ref().unwrap().city.as_deref(),
        Some("Ames")
    );
    assert_eq!(facility.phones[0].value, "+1 (515) 5550100");
    assert_eq!(g.detail.notes[0].text, "order comment");
    let notes: Vec<_> = g.observations[0]
        .notes
        .iter()
        .map(|n| n.text.as_str())
        .collect();
    assert_eq!(
        notes,
        ["hemolyzed, potassium falsely high", "repeat advised"]
    );
    assert_eq!(g.detail.specimens[0].notes[0].text, "drawn above IV");
    assert_eq!(g.observations[0].specimen, None);
    assert_eq!(
        g.observations[1].specimen,
        Some(0),
        "an OBX after SPM is about it"
    );
    assert!(!g.detail.quality_control);
}

#[test]
fn results_on_control_material_are_marked_as_quality_control() {
    let (r, _) = read(
        "MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C7|P|2.5.1\r\
         OBR|1|||2345-7^Glucose^LN\r\
         OBX|1|NM|2345-7^Glucose^LN||99|mg/dL|||||F\r\
         SPM|1|QC-LOT-7||BLD|||||||Q^Control specimen^HL70369",
    );
    assert!(r.orders[0].detail.quality_control);
}

#[test]
fn parent_links_of_a_susceptibility_panel_stay_with_the_isolate() {
    let (r, _) = read(
        "MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C8|P|2.5.1\r\
         OBR|1|PL1|FL1|600-7^Culture^LN\r\
         OBX|1|CWE|600-7^Organism^LN|1|3092008^Staphylococcus aureus^SCT||||||F\r\
         OBR|2|PL2|FL2|29576-6^Susceptibility^LN|||||||G||||||||||||||F|600-7&Organism&LN^1^Staphylococcus aureus|||PL1&CPOE^FL1&LAB\r\
         OBX|1|SN|18961-5^Cefazolin^LN|1|<=^4|ug/mL||S|||F",
    );
    let panel = &r.orders[1].detail;
    assert_eq!(panel.specimen_action.as_deref(), Some("G"));
    let parent = panel.parent_result.as_ref().unwrap();
    assert_eq!(parent.code.as_ref().unwrap().original.code, "600-7");
    assert_eq!(parent.sub_id.as_deref(), Some("1"));
    assert_eq!(parent.value.as_deref(), Some("Staphylococcus aureus"));
    let order = panel.parent_order.as_ref().unwrap();
    assert_eq!(order.placer.as_ref().unwrap().id, "PL1");
    assert_eq!(
        order.filler.as_ref().unwrap().authority.as_deref(),
        Some("LAB")
    );
    assert_eq!(r.orders[1].observations[0].sub_id.as_deref(), Some("1"));
}

#[test]
fn an_oul_specimen_belongs_to_the_orders_after_it_and_its_orc_follows_the_obr() {
    let (r, _) = read(
        "MSH|^~\\&|LAS|H|||20240102030405||OUL^R22^OUL_R22|C9|P|2.5.1\r\
         PID|1||1^^^H^MR\r\
         SPM|1|S1||SER^Serum^HL70487|||||||P\r\
         OBX|1|NM|SPVOL^Specimen volume^L||2|mL|||||F\r\
         OBR|1|PL1||2345-7^Glucose^LN\r\
         ORC|SC|PL1|||CM\r\
         OBX|1|NM|2345-7^Glucose^LN||99|mg/dL|||||F\r\
         OBR|2|PL2||2823-3^Potassium^LN\r\
         ORC|SC|PL2|||CM\r\
         OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F",
    );
    assert_eq!(r.orders.len(), 3);
    let specimen_group = &r.orders[0];
    assert_eq!(specimen_group.observations[0].specimen, Some(0));
    for g in &r.orders[1..] {
        assert_eq!(g.order_control.as_deref(), Some("SC"));
        assert_eq!(
            g.detail.specimens[0].kind.as_ref().unwrap().original.code,
            "SER"
        );
        assert_eq!(g.observations.len(), 1);
    }
}

#[test]
fn what_the_record_does_not_carry_is_named() {
    let m = Message::parse(
        b"MSH|^~\\&|LAB|H|||20240102030405||ORU^R01|C10|P|2.5.1\r\
          NTE|1||message level comment\r\
          PID|1||1^^^H^MR\r\
          PD1|||Clinic\r\
          OBR|1|||X^Y^L\r\
          OBX|1|NM|X^Y^L||1||||||F\r\
          PRT|1|AD||OP\r\
          ZXY|secret",
    )
    .unwrap();
    let tz = TimeZone::UTC;
    let mapping = MappingTable::empty();
    let ctx = Context {
        time_zone: &tz,
        mapping: &mapping,
    };
    let record = crate::normalize::normalize(&m, Vec::new(), &ctx).record;
    let named: Vec<_> = record
        .not_carried
        .iter()
        .map(|n| (n.segment.as_str(), n.field, n.count))
        .collect();
    assert_eq!(
        named,
        [("NTE", 0, 1), ("PD1", 0, 1), ("PRT", 0, 1), ("ZXY", 0, 1)]
    );
}
