use super::*;

fn oru(version: &str, app: &str, extra: &str, obx: &[(&str, &str, &str)]) -> String {
    let mut s = format!(
        "MSH|^~\\&|{app}|LAB|EHR|CLINIC|20240101120000||ORU^R01|C1|P|{version}\r\
         PID|1||12345^^^MRN||DOE^JANE\rOBR|1\r"
    );
    for (i, (vt, code, unit)) in obx.iter().enumerate() {
        s.push_str(&format!(
            "OBX|{}|{vt}|{code}^Test^99LAB||42|{unit}\r",
            i + 1
        ));
    }
    s.push_str(extra);
    s
}

fn base() -> String {
    oru("2.3", "LABSYS", "", &[("NM", "GLU", "mg/dL")])
}

/// A profile that has learned `base()` and left its learning phase.
fn learned() -> InterfaceProfile {
    let mut p = InterfaceProfile::new(ProfileConfig {
        learning_messages: 3,
        max_entries: 512,
    });
    for _ in 0..3 {
        assert!(p.observe(&parse(&base())).is_empty(), "learning is silent");
    }
    assert!(!p.is_learning());
    p
}

fn parse(s: &str) -> Message<'_> {
    Message::parse(s.as_bytes()).unwrap()
}

fn words(p: &mut InterfaceProfile, s: &str) -> Vec<String> {
    p.observe(&parse(s)).iter().map(|d| d.to_string()).collect()
}

#[test]
fn a_known_message_is_no_drift_after_learning() {
    let mut p = learned();
    assert!(words(&mut p, &base()).is_empty());
}

#[test]
fn a_new_hl7_version_is_reported_with_the_old_one_once() {
    let mut p = learned();
    let msg = oru("2.5.1", "LABSYS", "", &[("NM", "GLU", "mg/dL")]);
    assert_eq!(words(&mut p, &msg), ["new HL7 version 2.5.1 (was 2.3)"]);
    assert!(
        words(&mut p, &msg).is_empty(),
        "reported once, then learned"
    );
}

#[test]
fn a_new_segment_is_reported() {
    let mut p = learned();
    let msg = oru("2.3", "LABSYS", "ZDS|1|x\r", &[("NM", "GLU", "mg/dL")]);
    assert_eq!(words(&mut p, &msg), ["new segment ZDS"]);
}

#[test]
fn a_changed_unit_names_the_code_and_both_units() {
    let mut p = learned();
    let msg = oru("2.3", "LABSYS", "", &[("NM", "GLU", "mmol/L")]);
    assert_eq!(
        words(&mut p, &msg),
        ["unit for GLU changed: mg/dL → mmol/L"]
    );
}

#[test]
fn a_new_value_type_for_a_known_code_is_reported() {
    let mut p = learned();
    let msg = oru("2.3", "LABSYS", "", &[("ST", "GLU", "mg/dL")]);
    assert_eq!(words(&mut p, &msg), ["new value type ST for GLU"]);
}

#[test]
fn a_new_code_is_one_alert_not_three() {
    let mut p = learned();
    let msg = oru(
        "2.3",
        "LABSYS",
        "",
        &[("NM", "GLU", "mg/dL"), ("ST", "K", "mmol/L")],
    );
    assert_eq!(words(&mut p, &msg), ["new observation code K"]);
}

#[test]
fn a_new_sending_application_message_type_and_coding_system_are_reported() {
    let mut p = learned();
    let msg = base()
        .replace("LABSYS", "LABSYS2")
        .replace("ORU^R01", "ORU^R30")
        .replace("99LAB", "LN");
    assert_eq!(
        words(&mut p, &msg),
        [
            "new message type ORU^R30",
            "new sending application LABSYS2 (was LABSYS)",
            "new coding system LN",
        ]
    );
}

#[test]
fn drift_words_carry_no_values_or_identifiers() {
    let mut p = learned();
    let msg = oru(
        "2.5.1",
        "LABSYS",
        "ZDS|1\r",
        &[("ST", "GLU", "mmol/L"), ("NM", "K", "x")],
    );
    let all = words(&mut p, &msg).join("\n");
    for phi in ["DOE", "JANE", "12345", "42"] {
        assert!(!all.contains(phi), "{phi} in {all}");
    }
}

#[test]
fn a_full_set_stops_learning_and_says_so_once() {
    let mut p = InterfaceProfile::new(ProfileConfig {
        learning_messages: 0,
        max_entries: 1,
    });
    let first = words(&mut p, &oru("2.3", "A", "", &[]));
    assert!(first.contains(&"new segment MSH".to_string()), "{first:?}");
    assert!(
        first.contains(&"too many distinct segment ids: no longer learned or checked".to_string()),
        "{first:?}"
    );
    let again = words(&mut p, &oru("2.3", "A", "ZZZ|1\r", &[]));
    assert!(again.is_empty(), "{again:?}");
}
