//! Validation rules, one test per rule: severity, code and exact location.

use super::*;
use crate::hl7::issue::ErrorCode::*;

const MSH: &str = "MSH|^~\\&|LAB|HOSP|HUB|ORG|20240102030405||ORU^R01^ORU_R01|CTRL1|P|2.5.1";

const ORU: &str = "MSH|^~\\&|LAB|HOSP|HUB|ORG|20240102030405||ORU^R01^ORU_R01|CTRL1|P|2.5.1
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F
OBR|1||F1|GLU^Glucose^L|||20240102030000
OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F|||20240102030000";

/// Validates `text`, written with `\n` between segments for readability.
fn check(text: &str) -> Vec<Issue> {
    let bytes = text.replace('\n', "\r").into_bytes();
    let msg = Message::parse(&bytes).expect("test message parses");
    validate(&msg)
}

/// `ORU` with one segment replaced (matched by its first 4 bytes).
fn oru_with(segment: &str) -> String {
    let prefix = segment.get(..4).unwrap_or(segment);
    ORU.lines()
        .map(|l| if l.starts_with(prefix) { segment } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

fn only(issues: &[Issue]) -> &Issue {
    assert_eq!(issues.len(), 1, "{issues:#?}");
    &issues[0]
}

fn loc(seg: &str, seq: usize) -> Location {
    Location::segment(seg, seq)
}

#[test]
fn a_clean_lab_result_has_no_issues() {
    assert_eq!(check(ORU), []);
}

#[test]
fn missing_message_code_is_an_error_at_msh_9_1() {
    let issues = check(&ORU.replace("ORU^R01^ORU_R01", "^R01"));
    let i = only(&issues);
    assert_eq!(
        (i.code, i.severity),
        (RequiredFieldMissing, Severity::Error)
    );
    assert_eq!(
        i.location,
        loc("MSH", 1).field(9).repetition(1).component(1)
    );
}

#[test]
fn empty_control_id_is_an_error_at_msh_10() {
    assert_eq!(
        only(&check(&ORU.replace("|CTRL1|", "|  |"))).severity,
        Severity::Error
    );
    let issues = check(&ORU.replace("|CTRL1|", "||"));
    let i = only(&issues);
    assert_eq!(
        (i.code, i.severity),
        (RequiredFieldMissing, Severity::Error)
    );
    assert_eq!(i.location, loc("MSH", 1).field(10));
    assert!(!Validation { issues }.is_acceptable());
}

#[test]
fn a_segment_id_that_is_not_three_uppercase_characters_is_an_error() {
    for bad in ["PIDX|1", "PV|1", "pid|1", "1AB|x"] {
        let text = format!("{ORU}\n{bad}");
        let issues = check(&text);
        let i = only(&issues);
        assert_eq!(
            (i.code, i.severity),
            (SegmentSequence, Severity::Error),
            "{bad}"
        );
        assert_eq!(i.location.segment_sequence, 5, "{bad}");
    }
}

#[test]
fn a_fragment_line_is_an_error_that_does_not_quote_the_fragment() {
    let text = ORU.replace("|N|||F|", "|N|||F|\nrest of a SECRET comment|");
    let issues = check(&text);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (SegmentSequence, Severity::Error));
    assert_eq!(i.location, loc("", 5));
    assert!(!i.message.contains("SECRET") && !i.message.contains("rest"));
}

#[test]
fn invalid_bytes_under_declared_utf8_are_an_error_at_the_field_holding_them() {
    let mut bytes = format!("{MSH}||||||UNICODE UTF-8\rPID|1||123||DOE^J").into_bytes();
    bytes.push(0xFC);
    let msg = Message::parse(&bytes).unwrap();
    let issues = validate(&msg);
    let errors: Vec<_> = issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{issues:#?}");
    assert_eq!(errors[0].code, TableValueNotFound);
    assert_eq!(
        errors[0].location,
        loc("PID", 2).field(5).repetition(1).component(2)
    );
}

#[test]
fn eight_bit_bytes_under_declared_ascii_are_only_a_warning() {
    let mut bytes = format!("{MSH}||||||ASCII\rPID|1||123||DOE").into_bytes();
    bytes.push(0xE9);
    let msg = Message::parse(&bytes).unwrap();
    let i = validate(&msg)
        .into_iter()
        .find(|i| i.code == TableValueNotFound)
        .unwrap();
    assert_eq!(i.severity, Severity::Warning);
    assert_eq!(
        i.location,
        loc("PID", 2).field(5).repetition(1).component(1)
    );
}

#[test]
fn an_unsupported_charset_is_a_warning_at_msh_18() {
    let issues = check(&format!("{MSH}||||||ISO IR87\nPID|1||1||A"));
    let i = issues
        .iter()
        .find(|i| i.code == TableValueNotFound)
        .unwrap();
    assert_eq!(i.severity, Severity::Warning);
    assert_eq!(i.location, loc("MSH", 1).field(18).repetition(1));
}

#[test]
fn a_missing_version_is_a_warning() {
    let issues = check(&ORU.replace("|P|2.5.1", "|P|"));
    let i = only(&issues);
    assert_eq!(
        (i.code, i.severity),
        (RequiredFieldMissing, Severity::Warning)
    );
    assert_eq!(i.location, loc("MSH", 1).field(12));
}

#[test]
fn an_unknown_version_is_a_203_warning_and_known_ones_pass() {
    let issues = check(&ORU.replace("|P|2.5.1", "|P|1.0"));
    let i = only(&issues);
    assert_eq!(
        (i.code, i.severity),
        (UnsupportedVersion, Severity::Warning)
    );
    assert_eq!(
        i.location,
        loc("MSH", 1).field(12).repetition(1).component(1)
    );
    for v in KNOWN_VERSIONS.iter().filter(|v| **v >= "2.4") {
        assert_eq!(check(&ORU.replace("2.5.1", v)), [], "{v}");
    }
}

#[test]
fn a_missing_trigger_event_is_a_warning_except_in_v2_1() {
    let issues = check(&ORU.replace("ORU^R01^ORU_R01", "ORU"));
    let i = issues
        .iter()
        .find(|i| i.code == RequiredFieldMissing)
        .unwrap();
    assert_eq!(i.severity, Severity::Warning);
    assert_eq!(
        i.location,
        loc("MSH", 1).field(9).repetition(1).component(2)
    );
    let v21 = check(
        &ORU.replace("ORU^R01^ORU_R01", "ORU")
            .replace("2.5.1", "2.1"),
    );
    assert!(
        v21.iter().all(|i| i.code != RequiredFieldMissing),
        "{v21:#?}"
    );
}

#[test]
fn a_bad_message_time_is_a_102_warning_without_the_value() {
    let issues = check(&ORU.replace("20240102030405", "2024-01-02"));
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (DataType, Severity::Warning));
    assert_eq!(
        i.location,
        loc("MSH", 1).field(7).repetition(1).component(1)
    );
    assert!(!i.message.contains("2024"));
}

#[test]
fn processing_id_and_mode_are_checked_against_their_tables() {
    let bad_id = check(&ORU.replace("|P|2.5.1", "|X|2.5.1"));
    let i = only(&bad_id);
    assert_eq!(
        (i.code, i.severity),
        (TableValueNotFound, Severity::Warning)
    );
    assert_eq!(
        i.location,
        loc("MSH", 1).field(11).repetition(1).component(1)
    );
    let bad_mode = check(&ORU.replace("|P|2.5.1", "|P^Q|2.5.1"));
    assert_eq!(only(&bad_mode).location.component, 2);
    assert_eq!(check(&ORU.replace("|P|2.5.1", "|D^T|2.5.1")), []);
    let missing = check(&ORU.replace("|P|2.5.1", "||2.5.1"));
    assert_eq!(only(&missing).code, RequiredFieldMissing);
}

#[test]
fn an_unknown_message_type_is_only_information() {
    let issues = check("MSH|^~\\&|A|B|C|D|20240101||ZZZ^Z01|1|P|2.5\nZZ1|x");
    let i = only(&issues);
    assert_eq!(
        (i.code, i.severity),
        (UnsupportedMessageType, Severity::Information)
    );
    let unknown_event = check(&ORU.replace("ORU^R01^ORU_R01", "ORU^R99"));
    assert_eq!(only(&unknown_event).code, UnsupportedEvent);
    assert!(Validation { issues }.is_acceptable());
}

#[test]
fn an_observation_before_any_request_is_a_sequence_warning_at_the_obx() {
    let text = ORU.replace(
        "OBR|1||F1|GLU^Glucose^L|||20240102030000\n",
        "OBX|1|ST|X^Note^L||x||||||F\nOBR|1||F1|GLU^Glucose^L|||20240102030000\n",
    );
    let issues = check(&text);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (SegmentSequence, Severity::Warning));
    assert_eq!(i.location, loc("OBX", 3));
}

#[test]
fn from_v2_7_an_observation_right_after_pid_belongs_to_the_patient() {
    let text = ORU
        .replace("2.5.1", "2.7")
        .replace("OBR|1||F1", "OBX|1|ST|X^Note^L||x||||||F\nOBR|1||F1");
    assert_eq!(check(&text), []);
}

#[test]
fn a_result_without_a_request_or_with_pid_after_obr_is_flagged() {
    let no_obr: String = ORU
        .lines()
        .filter(|l| !l.starts_with("OBR"))
        .collect::<Vec<_>>()
        .join("\n");
    let issues = check(&no_obr);
    assert!(
        issues
            .iter()
            .any(|i| i.location == loc("OBR", 0) && i.code == SegmentSequence)
    );
    assert!(issues.iter().any(|i| i.location == loc("OBX", 3)));
    let late_pid = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\nOBR|1||F|X^Y^L\nPID|1||1||A\nOBX|1|ST|X^Y^L||z||||||F";
    let i = check(late_pid)
        .into_iter()
        .find(|i| i.code == SegmentSequence)
        .unwrap();
    assert_eq!(i.location, loc("OBR", 2));
}

#[test]
fn a_second_msh_in_one_frame_is_a_segment_sequence_error_at_that_msh() {
    let two = "MSH|^~\\&|LAB|HOSP|GW|CLINIC|20240102123045||ORU^R01|G1|P|2.5.1
PID|1||1^^^H^MR||A^B
OBR|1||F|X^Y^L
OBX|1|NM|1^a^LN||1|mmol/L|||||F
MSH|^~\\&|LAB|HOSP|GW|CLINIC|20240102123045||ORU^R01|G2|P|2.5.1
PID|1||2^^^H^MR||A^B
OBR|1||F|X^Y^L
OBX|1|NM|1^a^LN||2|mmol/L|||||F";
    let issues = check(two);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (SegmentSequence, Severity::Error));
    assert_eq!(i.location, loc("MSH", 5));
    assert!(i.message.contains("one message per MLLP frame"), "{i}");
    let msg = format!("{ORU}\nBTS|1");
    assert_eq!(only(&check(&msg)).location, loc("BTS", 5));
}

#[test]
fn a_second_patient_is_an_error_where_results_would_be_filed_under_the_first() {
    let two_patients = format!(
        "{ORU}\nPID|2||222^^^HOSP^MR||BRAVO^BOB||19800101|M\n\
         OBR|1||F2|GLU^Glucose^L|||20240102030000\n\
         OBX|1|NM|2345-7^Glucose^LN||22|mg/dL|70-99|HH|||F|||20240102030000"
    );
    let issues = check(&two_patients);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (InternalError, Severity::Error));
    assert_eq!(i.location, loc("PID", 5));
    assert!(i.message.contains("one patient per message"), "{i}");
    let a40 = "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT^A40^ADT_A39|M1|P|2.5.1
EVN|A40|20240102123045
PID|1||12345^^^HOSP^MR||DOE^JOHN||19700101|M
MRG|67890^^^HOSP^MR
PID|1||22222^^^HOSP^MR||ROE^JANE||19800101|F
MRG|33333^^^HOSP^MR";
    let issues = check(a40);
    assert_eq!(
        issues,
        [],
        "a merge of two patient groups carries both: no issue"
    );
}

#[test]
fn a_second_patient_that_files_nothing_under_the_first_is_only_a_warning_or_carried() {
    let a24 = "MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||ADT^A24^ADT_A24|L1|P|2.5.1
EVN|A24|20240102123045
PID|1||12345^^^HOSP^MR||DOE^JOHN||19700101|M
PID|2||22222^^^HOSP^MR||DOE^JOHN||19700101|M";
    assert_eq!(check(a24), [], "an ADT link carries both patients");
    let bar = "MSH|^~\\&|PAS|HOSP|GW|CLINIC|20240102123045||BAR^P02^BAR_P02|B1|P|2.5.1
EVN|P02|20240102123045
PID|1||12345^^^HOSP^MR
PID|2||22222^^^HOSP^MR";
    let issues = check(bar);
    assert!(
        issues.iter().all(|i| i.severity != Severity::Error),
        "a generic record keeps every segment: {issues:#?}"
    );
    assert!(issues.iter().any(|i| i.location == loc("PID", 4)));
}

const ADT: &str = "MSH|^~\\&|REG|HOSP|HUB|ORG|20240102030405||ADT^A01^ADT_A01|A1|P|2.5
EVN|A01|20240102030405
PID|1||123^^^HOSP^MR||DOE^JOHN||19700101|M
PV1|1|I";

#[test]
fn an_admission_needs_evn_pid_and_pv1() {
    assert_eq!(check(ADT), []);
    for id in ["EVN", "PID", "PV1"] {
        let text: String = ADT
            .lines()
            .filter(|l| !l.starts_with(id))
            .collect::<Vec<_>>()
            .join("\n");
        let issues = check(&text);
        let i = only(&issues);
        assert_eq!(
            (i.code, i.severity),
            (SegmentSequence, Severity::Warning),
            "{id}"
        );
        assert_eq!(i.location, loc(id, 0));
    }
}

#[test]
fn a_merge_needs_mrg_and_a_bed_status_update_needs_no_pid() {
    let merge = "MSH|^~\\&|A|B|C|D|20240101||ADT^A40|1|P|2.5\nEVN|A40|20240101\nPID|1||1||A";
    assert_eq!(only(&check(merge)).location, loc("MRG", 0));
    let with_mrg = format!("{merge}\nMRG|2");
    assert_eq!(check(&with_mrg), []);
    assert_eq!(
        check(&format!("{merge}\nMRG|"))
            .first()
            .map(|i| i.location.clone()),
        Some(loc("MRG", 4).field(1))
    );
    let a20 = "MSH|^~\\&|A|B|C|D|20240101||ADT^A20|1|P|2.5\nEVN|A20|20240101\nNPU|1";
    assert_eq!(check(a20), []);
}

#[test]
fn segments_out_of_order_are_flagged_at_the_early_one() {
    let text = ADT
        .replace("PV1|1|I", "")
        .replace("EVN|A01", "PV1|1|I\nEVN|A01");
    let issues = check(&text);
    let i = issues.iter().find(|i| i.location.segment == "PV1").unwrap();
    assert_eq!((i.code, i.location.segment_sequence), (SegmentSequence, 2));
}

#[test]
fn a_missing_recorded_time_in_evn_is_a_warning() {
    let issues = check(&ADT.replace("EVN|A01|20240102030405", "EVN|A01"));
    let i = only(&issues);
    assert_eq!(
        (i.code, i.location.clone()),
        (RequiredFieldMissing, loc("EVN", 2).field(2))
    );
}

#[test]
fn orders_need_an_orc_before_their_obr() {
    let orm = "MSH|^~\\&|A|B|C|D|20240101||ORM^O01|1|P|2.3\nPID|1||1||A\nORC|NW|1\nOBR|1|1||X^Y^L";
    assert_eq!(check(orm), []);
    let oml = orm.replace("ORM^O01", "OML^O21^OML_O21");
    assert_eq!(check(&oml), []);
    let no_orc = orm.replace("ORC|NW|1\n", "");
    assert_eq!(only(&check(&no_orc)).location, loc("ORC", 0));
    let late_orc = orm.replace("ORC|NW|1\nOBR|1|1||X^Y^L", "OBR|1|1||X^Y^L\nORC|NW|1");
    assert_eq!(only(&check(&late_orc)).location, loc("OBR", 3));
    let no_control = orm.replace("ORC|NW|1", "ORC||1");
    assert_eq!(only(&check(&no_control)).location, loc("ORC", 3).field(1));
}

#[test]
fn an_immunization_needs_pid_and_a_complete_rxa() {
    let vxu = "MSH|^~\\&|A|B|C|D|20240101||VXU^V04^VXU_V04|1|P|2.5.1\nPID|1||1||A\nRXA|0|1|20240101||08^HepB^CVX|1";
    assert_eq!(check(vxu), []);
    let no_rxa = vxu.replace("\nRXA|0|1|20240101||08^HepB^CVX|1", "");
    assert_eq!(only(&check(&no_rxa)).location, loc("RXA", 0));
    let bad = vxu.replace("20240101||08^HepB^CVX", "2024013||");
    let issues = check(&bad);
    assert!(
        issues.iter().any(|i| i.code == DataType
            && i.location == loc("RXA", 3).field(3).repetition(1).component(1))
    );
    assert!(
        issues
            .iter()
            .any(|i| i.code == RequiredFieldMissing && i.location == loc("RXA", 3).field(5))
    );
}

#[test]
fn pid_needs_identifiers_and_a_name_and_checks_birth_date_and_sex() {
    let issues = check(&oru_with("PID|1||||"));
    let fields: Vec<_> = issues.iter().map(|i| (i.code, i.location.field)).collect();
    assert_eq!(
        fields,
        [(RequiredFieldMissing, 3), (RequiredFieldMissing, 5)]
    );
    let bad = check(&oru_with("PID|1||1||A||19801301|Q"));
    let found: Vec<_> = bad.iter().map(|i| (i.code, i.location.clone())).collect();
    assert_eq!(
        found,
        [
            (DataType, loc("PID", 2).field(7).repetition(1).component(1)),
            (
                TableValueNotFound,
                loc("PID", 2).field(8).repetition(1).component(1)
            ),
        ]
    );
    assert_eq!(check(&oru_with("PID|1||1||A||19800101|male")), []);
}

#[test]
fn trailing_delimiters_after_an_nm_value_are_no_data_type_problem() {
    for value in ["5.4^", "5.4^^", "5.4~", "5.4^~6^"] {
        let issues = check(&oru_with(&format!(
            "OBX|1|NM|2345-7^Glucose^LN||{value}|mg/dL|||||F"
        )));
        assert_eq!(issues, [], "{value}");
    }
    let issues = check(&oru_with("OBX|1|NM|2345-7^Glucose^LN||5.4^x|mg/dL|||||F"));
    assert_eq!(only(&issues).code, DataType);
}

#[test]
fn a_non_numeric_nm_value_is_a_102_warning_at_its_repetition() {
    let issues = check(&oru_with("OBX|1|NM|2345-7^Glucose^LN||95~<5|mg/dL|||||F"));
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (DataType, Severity::Warning));
    assert_eq!(i.location, loc("OBX", 4).field(5).repetition(2));
}

#[test]
fn structured_numeric_values_follow_their_own_syntax() {
    for ok in [">^100", "^10^-^20", "<^5"] {
        let text = oru_with(&format!("OBX|1|SN|X^Y^L||{ok}||||||F"));
        assert_eq!(check(&text), [], "{ok}");
    }
    let bad = check(&oru_with("OBX|1|SN|X^Y^L||>100||||||F"));
    assert_eq!(only(&bad).location, loc("OBX", 4).field(5).repetition(1));
}

#[test]
fn obx_value_type_status_and_flags_are_checked_against_their_tables() {
    let issues = check(&oru_with("OBX|1|QQ|X^Y^L||1|||H~XX|||Z|||2024-01-01"));
    let found: Vec<_> = issues
        .iter()
        .map(|i| (i.code, i.location.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (
                TableValueNotFound,
                loc("OBX", 4).field(2).repetition(1).component(1)
            ),
            (
                TableValueNotFound,
                loc("OBX", 4).field(11).repetition(1).component(1)
            ),
            (
                TableValueNotFound,
                loc("OBX", 4).field(8).repetition(2).component(1)
            ),
            (DataType, loc("OBX", 4).field(14).repetition(1).component(1)),
        ]
    );
}

#[test]
fn obx_needs_an_identifier_a_status_and_a_type_for_its_value() {
    let issues = check(&oru_with("OBX|1|||x|5"));
    let found: Vec<_> = issues.iter().map(|i| (i.code, i.location.field)).collect();
    assert_eq!(
        found,
        [
            (RequiredFieldMissing, 3),
            (RequiredFieldMissing, 11),
            (RequiredFieldMissing, 2)
        ]
    );
    assert!(issues.iter().all(|i| i.severity == Severity::Warning));
    // No value, no type needed.
    let no_value = check(&oru_with("OBX|1||X^Y^L||||||||X"));
    assert_eq!(no_value, []);
}

#[test]
fn date_values_in_obx_are_checked_by_their_declared_type() {
    assert_eq!(check(&oru_with("OBX|1|DT|X^Y^L||20240101||||||F")), []);
    let dt = check(&oru_with("OBX|1|DT|X^Y^L||202401011200||||||F"));
    assert_eq!(only(&dt).code, DataType);
    let ts = check(&oru_with("OBX|1|TS|X^Y^L||20241301||||||F"));
    assert_eq!(
        only(&ts).location,
        loc("OBX", 4).field(5).repetition(1).component(1)
    );
}

#[test]
fn no_issue_message_quotes_a_field_value() {
    let text = "MSH|^~\\&|A|B|C|D|SECRET1||ADT^A01|1|SECRET2|SECRET3|||||SECRET4
EVN|A01|SECRET5
PID|1||||||SECRET6|SECRET7
PV1|1
OBX|1|NM|X^Y^L||SECRET8|||SECRET9||SECRET10||||SECRET11
SECRET12";
    let issues = check(text);
    assert!(issues.len() >= 10, "{issues:#?}");
    for i in &issues {
        assert!(!i.to_string().contains("SECRET"), "{i}");
    }
}

#[test]
fn parse_failures_become_located_errors() {
    let no_msh = Message::parse(b"PID|1").unwrap_err();
    let i = parse_error_issue(&no_msh);
    assert_eq!(
        (i.code, i.severity, i.location.clone()),
        (SegmentSequence, Severity::Error, loc("MSH", 1))
    );
    let bad = Message::parse(b"MSH|^^\\&|A").unwrap_err();
    let i = parse_error_issue(&bad);
    assert_eq!(
        (i.code, i.location.clone()),
        (DataType, loc("MSH", 1).field(2))
    );
    let bad_field = Message::parse(b"MSHA^~\\&").unwrap_err();
    assert_eq!(
        parse_error_issue(&bad_field).location,
        loc("MSH", 1).field(1)
    );
}

/// An IHE PCD-01 device observation (patient monitor), as the PCD
/// technical framework lays it out: MDC codes, hierarchy in OBX-4,
/// equipment identifiers in OBX-18, enhanced ACK fields and MSH-18.
pub(crate) const PCD01: &str = "MSH|^~\\&|MONITOR^ACDE48234567ABCD^EUI-64||HUB||20240713090030+0000||ORU^R01^ORU_R01|MSGID1234|P|2.6|||NE|AL||8859/1|ENG^English^ISO639||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO
PID|||010101^^^Hospital^PI||Doe^John^^^^^L
PV1||I|3 West^301^1
OBR|1|AB12345^MONITOR^ACDE48234567ABCD^EUI-64|CD12345^MONITOR^ACDE48234567ABCD^EUI-64|182777000^monitoring of patient^SNOMED-CT|||20240713090015+0000
OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||0123456789ABCDEF^EUI-64
OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.1.1|98|262688^MDC_DIM_PERCENT^MDC|90-100||||R|||20240713090015+0000||||0123456789ABCDEF^EUI-64
OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.2|172|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120|H|||R|||20240713090015+0000";

#[test]
fn a_device_observation_from_a_patient_monitor_has_no_issues() {
    assert_eq!(check(PCD01), []);
}

#[test]
fn a_message_over_the_segment_cap_is_refused_at_the_first_segment_over_it() {
    let mut text = String::from(ORU);
    for n in 0..limits::MAX_SEGMENTS {
        text.push_str(&format!("\nZ{:02}|{n}", n % 100));
    }
    let issues = check(&text);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (InternalError, Severity::Error));
    assert_eq!(i.location, loc("Z96", limits::MAX_SEGMENTS + 1));
    assert!(
        i.message
            .contains(&format!("at most {} per message", limits::MAX_SEGMENTS)),
        "{}",
        i.message
    );
    let within: String = text
        .lines()
        .take(limits::MAX_SEGMENTS)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        Validation {
            issues: check(&within)
        }
        .is_acceptable()
    );
}

#[test]
fn more_identifiers_than_the_cap_are_refused_at_the_repetition_over_it() {
    let ids: Vec<String> = (0..limits::MAX_IDENTIFIERS - 1)
        .map(|n| format!("{n}^^^H^MR"))
        .collect();
    let at_cap = oru_with(&format!("PID|1|X^^^H^PI|{}||DOE^JANE", ids.join("~")));
    assert_eq!(
        check(&at_cap),
        [],
        "PID-3 and PID-2 together are at the cap"
    );
    let over = at_cap.replace("||DOE^JANE", "|Y^^^H^AN|DOE^JANE");
    let issues = check(&over);
    let i = only(&issues);
    assert_eq!((i.code, i.severity), (InternalError, Severity::Error));
    assert_eq!(i.location, loc("PID", 2).field(4).repetition(1));
    let mrg: Vec<String> = (0..=limits::MAX_IDENTIFIERS)
        .map(|n| format!("MRG|{n}^^^H^MR"))
        .collect();
    let merge = format!(
        "MSH|^~\\&|A|B|C|D|20240102||ADT^A40|C1|P|2.5.1\nEVN|A40|20240102\nPID|1||1^^^H^MR||DOE\n{}",
        mrg.join("\n")
    );
    let errors: Vec<Issue> = check(&merge)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    let i = only(&errors);
    assert_eq!(
        i.location,
        loc("MRG", 4 + limits::MAX_IDENTIFIERS)
            .field(1)
            .repetition(1),
        "the MRG segments of a message count together"
    );
}

#[test]
fn issues_past_the_cap_are_summarized_and_an_error_among_them_still_refuses() {
    let mut text = String::from(ORU);
    for n in 0..limits::MAX_ISSUES + 10 {
        text.push_str(&format!("\nOBX|{n}|NM|1^a^LN||x|mg|||||F"));
    }
    let issues = check(&text);
    assert_eq!(issues.len(), limits::MAX_ISSUES + 1);
    let summary = issues.last().expect("a summary");
    assert_eq!(summary.severity, Severity::Warning);
    assert!(
        summary.message.starts_with("10 more issues not listed"),
        "{}",
        summary.message
    );
    assert_eq!(
        summary.location,
        loc("OBX", 5 + limits::MAX_ISSUES).field(5).repetition(1)
    );
    let with_error = format!("{text}\nobx|1");
    let issues = check(&with_error);
    assert_eq!(issues.len(), limits::MAX_ISSUES + 1);
    assert!(
        !Validation {
            issues: issues.clone()
        }
        .is_acceptable()
    );
    assert!(
        issues
            .iter()
            .any(|i| i.severity == Severity::Error && i.code == SegmentSequence),
        "the error is listed, in a warning's place"
    );
}

#[test]
fn a_message_type_part_over_32_characters_is_an_error_at_its_component() {
    let long = "X".repeat(70_000);
    for (msh9, component) in [
        (format!("{long}^R01"), 1),
        (format!("ORU^{long}"), 2),
        (format!("ORU^R01^{long}"), 3),
    ] {
        let issues = errors(&ORU.replace("ORU^R01^ORU_R01", &msh9));
        let i = only(&issues);
        assert_eq!((i.code, i.severity), (ValueTooLong, Severity::Error));
        assert_eq!(
            i.location,
            loc("MSH", 1).field(9).repetition(1).component(component)
        );
        assert!(i.message.contains("70000 characters"), "{}", i.message);
        assert!(!i.message.contains("XXX"), "no field value in the text");
    }
    let longest = "Z".repeat(32);
    let at_the_limit = ORU.replace("R01^ORU_R01", &format!("{longest}^{longest}"));
    assert_eq!(errors(&at_the_limit), []);
}

#[test]
fn topic_separators_wildcards_and_control_characters_in_msh_9_are_errors() {
    for (msh9, component) in [
        ("OR/U^R01", 1),
        ("ORU^R+1", 2),
        ("ORU^R01^ORU#R01", 3),
        ("ORU^R\u{0}1", 2),
        ("ORU^R\u{7}1", 2),
    ] {
        let issues = errors(&ORU.replace("ORU^R01^ORU_R01", msh9));
        let i = only(&issues);
        assert_eq!((i.code, i.severity), (DataType, Severity::Error), "{msh9}");
        assert_eq!(
            i.location,
            loc("MSH", 1).field(9).repetition(1).component(component)
        );
    }
}

/// The error issues of `text` (unknown types also get an information issue).
fn errors(text: &str) -> Vec<Issue> {
    let mut issues = check(text);
    issues.retain(|i| i.severity == Severity::Error);
    issues
}
