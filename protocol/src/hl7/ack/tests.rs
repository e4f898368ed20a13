//! ACK planning and building: modes, codes, header echo, ERR layouts.

use proptest::prelude::*;

use super::*;
use crate::hl7::Message;
use crate::hl7::issue::{Location, Severity};
use crate::hl7::validate::validate;

use AckCode::*;

const STAMP: AckStamp<'static> = AckStamp {
    control_id: "GW-1",
    timestamp: "20260301120000+0000",
};

const ORU: &str = "MSH|^~\\&|LAB|HOSP|HUB|ORG|20240102030405||ORU^R01^ORU_R01|CTRL1|P|2.5.1";

fn header(text: &str) -> AckHeader {
    let bytes = text.replace('\n', "\r").into_bytes();
    AckHeader::from_message(&Message::parse(&bytes).expect("test message parses"))
}

/// `ORU` with MSH-15 and MSH-16 set.
fn enhanced(accept: &str, application: &str) -> AckHeader {
    header(&format!("{ORU}|||{accept}|{application}"))
}

fn accepted() -> Outcome {
    Outcome::Accepted { issues: Vec::new() }
}

fn error() -> Outcome {
    Outcome::Error {
        issues: vec![Issue::error(
            ErrorCode::RequiredFieldMissing,
            Location::segment("PID", 2).field(3),
            "PID-3 (patient identifier list) is missing",
        )],
    }
}

fn rejected(reason: &str) -> Outcome {
    Outcome::Rejected {
        code: ErrorCode::RecordLocked,
        reason: reason.to_string(),
    }
}

fn ack(h: &AckHeader, code: AckCode, outcome: &Outcome) -> String {
    String::from_utf8(build_ack(h, code, outcome, &STAMP)).unwrap()
}

fn segments(ack: &str) -> Vec<&str> {
    ack.split_terminator('\r').collect()
}

#[test]
fn original_mode_answers_with_exactly_one_of_aa_ae_ar() {
    let h = header(ORU);
    assert_eq!(
        plan_acks(&h, &accepted(), AckMode::Always),
        [ApplicationAccept]
    );
    assert_eq!(plan_acks(&h, &error(), AckMode::Always), [ApplicationError]);
    assert_eq!(
        plan_acks(&h, &rejected("full"), AckMode::Always),
        [ApplicationReject]
    );
}

#[test]
fn an_incoming_ack_is_never_acknowledged_whatever_the_outcome_or_mode() {
    let incoming =
        "MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ACK^R01^ACK|A1|P|2.5.1\nMSA|AA|MSG001";
    let enhanced_ack = format!("{}|||AL|AL", incoming.lines().next().unwrap_or_default());
    for h in [header(incoming), header(&enhanced_ack)] {
        assert!(h.is_acknowledgment());
        for outcome in [accepted(), error(), rejected("store full")] {
            for mode in [AckMode::Always, AckMode::AsRequested, AckMode::Original] {
                assert_eq!(plan_acks(&h, &outcome, mode), [], "{outcome:?} {mode:?}");
                assert!(build_acks(&h, &outcome, mode, "20260301", || "X".into()).is_empty());
            }
        }
    }
    let scraped = AckHeader::scrape(b"MSH|^~\\&|LIS|LAB|GW|CLINIC|2024||ACK|A1|P|2.3\rMSA|A");
    assert_eq!(plan_acks(&scraped, &error(), AckMode::Always), []);
    assert!(!header(ORU).is_acknowledgment());
}

#[test]
fn an_aa_swaps_sender_and_receiver_and_echoes_the_control_id() {
    let h = header(ORU);
    assert_eq!(
        ack(&h, ApplicationAccept, &accepted()),
        "MSH|^~\\&|HUB|ORG|LAB|HOSP|20260301120000+0000||ACK^R01^ACK|GW-1|P|2.5.1\rMSA|AA|CTRL1\r"
    );
}

#[test]
fn enhanced_mode_honours_msh_15_and_msh_16_independently() {
    let cases = [
        ("AL", "NE", accepted(), vec![CommitAccept]),
        ("NE", "AL", accepted(), vec![ApplicationAccept]),
        ("NE", "AL", error(), vec![ApplicationError]),
        (
            "AL",
            "AL",
            accepted(),
            vec![CommitAccept, ApplicationAccept],
        ),
        ("ER", "SU", accepted(), vec![ApplicationAccept]),
        ("ER", "SU", error(), vec![CommitError]),
        ("ER", "ER", accepted(), vec![]),
        ("ER", "ER", error(), vec![CommitError]),
        ("SU", "ER", error(), vec![ApplicationError]),
        ("NE", "NE", error(), vec![]),
        ("", "AL", accepted(), vec![CommitAccept, ApplicationAccept]),
        ("", "NE", rejected("full"), vec![CommitReject]),
        ("AL", "AL", rejected("full"), vec![CommitReject]),
        ("AL", "AL", error(), vec![CommitError]),
    ];
    for (accept, application, outcome, expected) in cases {
        let h = enhanced(accept, application);
        assert_eq!(
            plan_acks(&h, &outcome, AckMode::AsRequested),
            expected,
            "MSH-15 {accept:?} MSH-16 {application:?} {outcome:?}"
        );
        assert_eq!(
            requests_no_ack(&h, &outcome),
            expected.is_empty(),
            "MSH-15 {accept:?} MSH-16 {application:?} {outcome:?}"
        );
        let always = plan_acks(&h, &outcome, AckMode::Always);
        if expected.is_empty() {
            assert_eq!(
                always,
                [outcome.application_code()],
                "{accept} {application}"
            );
        } else {
            assert_eq!(always, expected, "{accept} {application}");
        }
    }
}

#[test]
fn by_default_a_message_that_asks_for_no_ack_still_gets_the_original_mode_answer() {
    for (accept, application) in [("NE", "NE"), ("ER", "ER"), ("NE", "ER")] {
        let h = enhanced(accept, application);
        assert_eq!(
            plan_acks(&h, &accepted(), AckMode::default()),
            [ApplicationAccept],
            "{accept}/{application}"
        );
        assert!(requests_no_ack(&h, &accepted()));
    }
    let h = enhanced("NE", "NE");
    assert_eq!(plan_acks(&h, &error(), AckMode::Always), [ApplicationError]);
    assert_eq!(
        plan_acks(&h, &rejected("full"), AckMode::Always),
        [ApplicationReject]
    );
    assert_eq!(plan_acks(&h, &accepted(), AckMode::AsRequested), []);
    let built = build_acks(&h, &accepted(), AckMode::Always, "20260301", || "X".into());
    assert_eq!(built.len(), 1);
    assert_eq!(ack_code_of(&built[0].1).unwrap().code, ApplicationAccept);
    assert!(!requests_no_ack(&header(ORU), &accepted()));
}

#[test]
fn forced_original_mode_ignores_msh_15_and_16() {
    let h = enhanced("NE", "NE");
    assert_eq!(
        plan_acks(&h, &accepted(), AckMode::Original),
        [ApplicationAccept]
    );
    assert!(is_enhanced(&h, AckMode::Always));
    assert!(is_enhanced(&h, AckMode::AsRequested));
    assert!(!is_enhanced(&header(ORU), AckMode::Always));
}

#[test]
fn build_acks_gives_each_ack_its_own_control_id() {
    let h = enhanced("AL", "AL");
    let mut n = 0;
    let acks = build_acks(&h, &accepted(), AckMode::Always, "20260301", || {
        n += 1;
        format!("ID{n}")
    });
    let read: Vec<_> = acks
        .iter()
        .map(|(_, bytes)| ack_code_of(bytes).unwrap())
        .collect();
    assert_eq!(read[0].code, CommitAccept);
    assert_eq!(read[1].code, ApplicationAccept);
    assert_eq!(
        (read[0].control_id.as_str(), read[1].control_id.as_str()),
        ("ID1", "ID2")
    );
    assert!(read.iter().all(|r| r.acknowledged_id == "CTRL1"));
}

#[test]
fn v2_5_errors_use_err_2_3_4_and_8() {
    let h = header(ORU);
    let text = ack(&h, ApplicationError, &error());
    assert_eq!(
        segments(&text)[1..],
        [
            "MSA|AE|CTRL1",
            "ERR||PID^2^3|101^Required field missing^HL70357|E||||PID-3 (patient identifier list) is missing",
        ]
    );
}

#[test]
fn before_v2_5_errors_use_err_1_and_msa_3() {
    let h = header(&ORU.replace("2.5.1", "2.3"));
    let text = ack(&h, ApplicationError, &error());
    assert_eq!(
        segments(&text),
        [
            "MSH|^~\\&|HUB|ORG|LAB|HOSP|20260301120000+0000||ACK^R01|GW-1|P|2.3",
            "MSA|AE|CTRL1|PID-3 (patient identifier list) is missing",
            "ERR|PID^2^3^101&Required field missing&HL70357",
        ]
    );
    let v231 = header(&ORU.replace("2.5.1", "2.3.1"));
    assert!(ack(&v231, ApplicationAccept, &accepted()).contains("|ACK^R01^ACK|"));
    let v24 = header(&ORU.replace("2.5.1", "2.4"));
    assert!(
        ack(&v24, ApplicationAccept, &accepted()).contains("\rMSA|AA|CTRL1|Message accepted\r")
    );
}

#[test]
fn warnings_are_listed_on_aa_from_v2_5_only() {
    let warning = Issue::warning(
        ErrorCode::DataType,
        Location::segment("PID", 2)
            .field(7)
            .repetition(1)
            .component(1),
        "PID-7 (date/time of birth) is not a valid date/time",
    );
    let info = Issue {
        severity: Severity::Information,
        ..warning.clone()
    };
    let outcome = Outcome::Accepted {
        issues: vec![warning, info],
    };
    let modern = ack(&header(ORU), ApplicationAccept, &outcome);
    assert_eq!(
        segments(&modern)[2..],
        [
            "ERR||PID^2^7^1^1|102^Data type error^HL70357|W||||PID-7 (date/time of birth) is not a valid date/time"
        ]
    );
    let old = ack(
        &header(&ORU.replace("2.5.1", "2.4")),
        ApplicationAccept,
        &outcome,
    );
    assert_eq!(segments(&old).len(), 2);
    let commit = ack(&header(ORU), CommitAccept, &outcome);
    assert_eq!(segments(&commit).len(), 2);
}

#[test]
fn errors_come_before_warnings_and_err_segments_are_capped() {
    let mut issues: Vec<Issue> = (0..12)
        .map(|n| {
            Issue::warning(
                ErrorCode::DataType,
                Location::segment("OBX", n + 2).field(5),
                "w",
            )
        })
        .collect();
    issues.push(Issue::error(
        ErrorCode::SegmentSequence,
        Location::segment("", 14),
        "bad line",
    ));
    let text = ack(&header(ORU), ApplicationError, &Outcome::Error { issues });
    let errs: Vec<_> = segments(&text)
        .into_iter()
        .filter(|s| s.starts_with("ERR"))
        .collect();
    assert_eq!(errs.len(), 10);
    assert_eq!(
        errs[0],
        "ERR||^14|100^Segment sequence error^HL70357|E||||bad line"
    );
    assert!(errs[1].contains("|W|"));
}

#[test]
fn a_rejection_carries_its_code_and_escaped_reason() {
    let reason = "store full | retry ^ later & soon ~ see \\logs\\";
    let text = ack(&header(ORU), ApplicationReject, &rejected(reason));
    assert_eq!(
        segments(&text)[2],
        "ERR|||206^Application record locked^HL70357|E||||store full \\F\\ retry \\S\\ later \\T\\ soon \\R\\ see \\E\\logs\\E\\"
    );
    let parsed = Message::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.text("ERR-8").unwrap(), reason);
    assert_eq!(ack_code_of(text.as_bytes()).unwrap().error_codes, [206]);
}

#[test]
fn text_of_ours_is_reduced_to_printable_ascii() {
    let text = ack(
        &header(ORU),
        ApplicationReject,
        &rejected("voll: Speicher \u{fc}berf\u{fc}llt\r\nx"),
    );
    assert!(text.ends_with("|voll: Speicher ?berf?llt  x\r"), "{text:?}");
}

#[test]
fn an_error_outcome_without_issues_still_names_a_problem() {
    let text = ack(
        &header(ORU),
        ApplicationError,
        &Outcome::Error { issues: vec![] },
    );
    assert_eq!(ack_code_of(text.as_bytes()).unwrap().error_codes, [207]);
}

#[test]
fn custom_delimiters_are_kept_in_the_ack() {
    let h = header("MSH#!@%*#SND#SF#RCV#RF#2026##ADT!A01#M7#P#2.5");
    let text = ack(&h, ApplicationReject, &rejected("a#b!c"));
    assert_eq!(
        segments(&text),
        [
            "MSH#!@%*#RCV#RF#SND#SF#20260301120000+0000##ACK!A01!ACK#GW-1#P#2.5",
            "MSA#AR#M7",
            "ERR###206!Application record locked!HL70357#E####a%F%b%S%c",
        ]
    );
    let read = ack_code_of(text.as_bytes()).unwrap();
    assert_eq!(
        (read.code, read.acknowledged_id.as_str()),
        (ApplicationReject, "M7")
    );
}

#[test]
fn three_encoding_characters_without_escape_are_kept_and_delimiters_blanked() {
    let h = header("MSH|^~&|A|B|C|D|1994||ADT^A01|9|P|2.2");
    let text = ack(&h, ApplicationReject, &rejected("a|b^c"));
    assert_eq!(
        segments(&text),
        [
            "MSH|^~&|C|D|A|B|20260301120000+0000||ACK^A01|GW-1|P|2.2",
            "MSA|AR|9|a b c",
            "ERR|^^^206&Application record locked&HL70357"
        ]
    );
}

#[test]
fn processing_id_version_and_charset_are_echoed_with_defaults() {
    let h = header(&format!("{}||||||8859/1", ORU.replace("|P|", "|T^A|")));
    let text = ack(&h, ApplicationAccept, &accepted());
    assert!(text.starts_with("MSH|^~\\&|HUB|ORG|LAB|HOSP|20260301120000+0000||ACK^R01^ACK|GW-1|T^A|2.5.1||||||8859/1\r"), "{text:?}");
    let bare = header("MSH|^~\\&|A|B|C|D|2024||ORU^R01|X1");
    let text = ack(&bare, ApplicationAccept, &accepted());
    assert!(
        text.starts_with("MSH|^~\\&|C|D|A|B|20260301120000+0000||ACK^R01^ACK|GW-1|P|2.5.1\r"),
        "{text:?}"
    );
    let odd = header(&ORU.replace("2.5.1", "v2.x"));
    assert!(ack(&odd, ApplicationAccept, &accepted()).contains("|P|2.5.1\r"));
}

#[test]
fn echoed_values_keep_their_original_bytes() {
    let mut raw =
        b"MSH|^~\\&|LAB\xe9|H\\T\\1|HUB|ORG|2024||ORU^R01|C\xe91|P|2.5.1||||||8859/1".to_vec();
    raw.push(b'\r');
    let h = AckHeader::from_message(&Message::parse(&raw).unwrap());
    let out = build_ack(&h, ApplicationAccept, &accepted(), &STAMP);
    let expected: &[u8] = b"MSH|^~\\&|HUB|ORG|LAB\xe9|H\\T\\1|";
    assert!(out.starts_with(expected));
    assert!(memchr::memmem::find(&out, b"\rMSA|AA|C\xe91\r").is_some());
}

#[test]
fn an_ack_for_a_message_without_event_has_type_ack_only() {
    let h = header("MSH|^~\\&|A|B|C|D|2024||ZZZ|1|P|2.5");
    assert!(ack(&h, ApplicationAccept, &accepted()).contains("||ACK|GW-1|"));
}

#[test]
fn broken_delimiters_fall_back_to_the_defaults_and_keep_the_control_id() {
    let raw = b"MSH|^~\\\\&|SE050|050|PACS|050|20120912011230||ADT^A01|102|T|2.6\rEVN||2012";
    assert!(Message::parse(raw).is_err());
    let h = AckHeader::scrape(raw);
    let text = ack(&h, ApplicationError, &error());
    assert_eq!(
        segments(&text)[..2],
        [
            "MSH|^~\\&|PACS|050|SE050|050|20260301120000+0000||ACK^A01^ACK|GW-1|T|2.6",
            "MSA|AE|102"
        ]
    );
}

#[test]
fn junk_before_msh_does_not_hide_the_header() {
    let raw = b"\x0bnoise\r\nMSH|^~\\&|A|B|C|D|2024||ADT^A01|77|P|2.5\rPID|1";
    let read = ack_code_of(&build_ack(
        &AckHeader::scrape(raw),
        ApplicationError,
        &error(),
        &STAMP,
    ))
    .unwrap();
    assert_eq!(
        (read.code, read.acknowledged_id.as_str()),
        (ApplicationError, "77")
    );
}

#[test]
fn a_message_without_msh_gets_an_ack_with_an_empty_msa_2() {
    for raw in [&b"PID|1||123^^^MRN||DOE^JOHN"[..], b"", b"MSH|", b"MSH"] {
        let text = ack(&AckHeader::scrape(raw), ApplicationError, &error());
        assert_eq!(
            segments(&text)[..2],
            [
                "MSH|^~\\&|||||20260301120000+0000||ACK|GW-1|P|2.5.1",
                "MSA|AE|"
            ],
            "{raw:?}"
        );
    }
}

#[test]
fn ack_code_of_reads_legacy_err_codes_and_rejects_non_acks() {
    let h = header(&ORU.replace("2.5.1", "2.4"));
    let read = ack_code_of(&build_ack(&h, ApplicationError, &error(), &STAMP)).unwrap();
    assert_eq!(read.error_codes, [101]);
    assert!(ack_code_of(ORU.as_bytes()).is_none());
    assert!(ack_code_of(b"MSH|^~\\&|A\rMSA|ZZ|1").is_none());
    assert!(ack_code_of(b"junk").is_none());
}

#[test]
fn our_acks_pass_our_own_validation() {
    for version in ["2.2", "2.3", "2.4", "2.5.1", "2.8"] {
        let h = header(&ORU.replace("2.5.1", version));
        for (code, outcome) in [
            (ApplicationAccept, accepted()),
            (ApplicationError, error()),
            (CommitReject, rejected("full")),
        ] {
            let bytes = build_ack(
                &h,
                code,
                &outcome,
                &AckStamp {
                    control_id: "1",
                    timestamp: "20260301120000",
                },
            );
            let msg = Message::parse(&bytes).unwrap();
            let issues = validate(&msg);
            assert!(
                issues.iter().all(|i| i.severity != Severity::Error),
                "{version} {code}: {issues:#?}"
            );
        }
    }
}

proptest! {
    #[test]
    fn any_input_gets_a_readable_ack(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let h = AckHeader::scrape(&raw);
        let bytes = build_ack(&h, ApplicationError, &error(), &STAMP);
        let read = ack_code_of(&bytes);
        prop_assert!(read.is_some());
        prop_assert_eq!(read.map(|r| r.code), Some(ApplicationError));
    }

    #[test]
    fn any_header_after_msh_gets_a_readable_ack(tail in "[ -~]{0,120}") {
        let raw = format!("MSH{tail}");
        let h = AckHeader::scrape(raw.as_bytes());
        let bytes = build_ack(&h, ApplicationAccept, &accepted(), &STAMP);
        prop_assert!(ack_code_of(&bytes).is_some(), "{:?}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn a_device_asking_for_application_acks_only_gets_one_aa() {
    let h = header(crate::hl7::validate::tests::PCD01);
    let plan = plan_acks(&h, &accepted(), AckMode::Always);
    assert_eq!(plan, [ApplicationAccept]);
    let text = ack(&h, ApplicationAccept, &accepted());
    assert_eq!(
        segments(&text),
        [
            "MSH|^~\\&|HUB||MONITOR^ACDE48234567ABCD^EUI-64||20260301120000+0000||ACK^R01^ACK|GW-1|P|2.6||||||8859/1",
            "MSA|AA|MSGID1234",
        ]
    );
}

#[test]
fn an_absurdly_long_trigger_event_is_not_echoed_into_the_ack() {
    let long = "X".repeat(70_000);
    let raw = format!("MSH|^~\\&|A|B|C|D|20240101||ORU^{long}|C9|P|2.5.1\rPID|1\r");
    let header = AckHeader::scrape(raw.as_bytes());
    let outcome = Outcome::Error { issues: vec![] };
    let acks = build_acks(&header, &outcome, AckMode::Original, "20240101", || {
        "A1".into()
    });
    let text = String::from_utf8_lossy(&acks[0].1).into_owned();
    assert!(text.contains("||ACK|A1|"), "{text}");
    assert!(text.len() < 500, "{} bytes", text.len());
}
