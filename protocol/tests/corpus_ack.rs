//! Every corpus message gets a correct ACK: AA for the valid folders, AE
//! with a located, coded ERR for `malformed/` and (207) for messages whose
//! second patient a record would file under the first. Correct means: MSA-2 echoes
//! MSH-10, sending and receiving application/facility are swapped, the
//! sender's field separator and version are kept, MSH-9 is `ACK`.

mod common;

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::ack::{self, AckCode, AckHeader, AckMode, Outcome, ack_code_of};
use hl7edge_protocol::hl7::validate::{self, Validation};

fn ack_for(raw: &[u8]) -> (Vec<u8>, bool) {
    match Message::parse(raw) {
        Ok(msg) => {
            let v = Validation::of(&msg);
            let ok = v.is_acceptable();
            let outcome = if ok {
                Outcome::Accepted { issues: v.issues }
            } else {
                Outcome::Error { issues: v.issues }
            };
            let stamp = ack::AckStamp {
                control_id: "GW1",
                timestamp: "20260101000000+0000",
            };
            let code = if ok {
                AckCode::ApplicationAccept
            } else {
                AckCode::ApplicationError
            };
            (
                ack::build_ack(&AckHeader::from_message(&msg), code, &outcome, &stamp),
                ok,
            )
        }
        Err(e) => {
            let outcome = Outcome::Error {
                issues: vec![validate::parse_error_issue(&e)],
            };
            let acks = ack::build_acks(
                &AckHeader::scrape(raw),
                &outcome,
                AckMode::Original,
                "20260101000000+0000",
                || "GW1".into(),
            );
            (
                acks.into_iter().next().map(|(_, b)| b).unwrap_or_default(),
                false,
            )
        }
    }
}

fn field(msh: &[u8], sep: u8, n: usize) -> Vec<u8> {
    // MSH-n is piece n-1 when splitting on the separator.
    msh.split(|&b| b == sep)
        .nth(n - 1)
        .unwrap_or_default()
        .to_vec()
}

#[test]
fn every_corpus_message_gets_a_correct_ack() {
    let files = common::sample_files();
    assert!(files.len() > 100, "expected the ~200 corpus messages");
    let (mut aa, mut ae) = (0, 0);
    for path in &files {
        let raw = std::fs::read(path).unwrap();
        let malformed = common::is_malformed(path);
        let several_patients = !malformed && common::refuses_second_patient(&raw);
        let (ack, ok) = ack_for(&raw);
        let summary =
            ack_code_of(&ack).unwrap_or_else(|| panic!("unreadable ACK for {}", path.display()));
        assert_eq!(summary.control_id, "GW1");
        assert_eq!(ok, !malformed && !several_patients, "{}", path.display());
        if several_patients {
            assert_eq!(summary.code, AckCode::ApplicationError);
            assert_eq!(
                summary.error_codes.first(),
                Some(&207),
                "{}",
                path.display()
            );
            continue;
        }
        if malformed {
            ae += 1;
            assert_eq!(
                summary.code,
                AckCode::ApplicationError,
                "{}",
                path.display()
            );
            assert!(
                !summary.error_codes.is_empty(),
                "AE without a coded ERR: {}",
                path.display()
            );
            continue;
        }
        aa += 1;
        assert_eq!(
            summary.code,
            AckCode::ApplicationAccept,
            "{}",
            path.display()
        );
        let msg = Message::parse(&raw).unwrap();
        assert_eq!(
            summary.acknowledged_id,
            msg.control_id().unwrap(),
            "{}",
            path.display()
        );
        let sep = msg.delimiters().field;
        let ack_msh = ack.split(|&b| b == b'\r').next().unwrap();
        let orig_msh = msg.msh().raw();
        assert_eq!(ack_msh[3], sep, "field separator kept: {}", path.display());
        assert_eq!(
            field(ack_msh, sep, 3),
            field(orig_msh, sep, 5),
            "MSH-3 <- MSH-5: {}",
            path.display()
        );
        assert_eq!(
            field(ack_msh, sep, 4),
            field(orig_msh, sep, 6),
            "MSH-4 <- MSH-6: {}",
            path.display()
        );
        assert_eq!(
            field(ack_msh, sep, 5),
            field(orig_msh, sep, 3),
            "MSH-5 <- MSH-3: {}",
            path.display()
        );
        assert_eq!(
            field(ack_msh, sep, 6),
            field(orig_msh, sep, 4),
            "MSH-6 <- MSH-4: {}",
            path.display()
        );
        assert!(
            field(ack_msh, sep, 9).starts_with(b"ACK"),
            "{}",
            path.display()
        );
        let version = msg.version().map(|v| v.into_owned()).unwrap_or_default();
        if !version.is_empty() {
            let ack_version = field(ack_msh, sep, 12);
            assert!(
                ack_version.starts_with(version.as_bytes()),
                "version kept: {}",
                path.display()
            );
        }
    }
    println!("{aa} AA, {ae} AE");
    assert!(ae >= 6, "every malformed sample is answered AE");
}
