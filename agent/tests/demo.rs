//! The demo end to end, as `hl7edge demo` runs it: in-process broker,
//! gateway, simulated senders and hub subscriber, with a small message count.

#![cfg(feature = "demo")]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hl7edge::demo::{self, Console, Options};

/// An output sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn options(messages: usize) -> Options {
    Options {
        messages,
        keep: false,
        pace: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_reaches_the_hub_and_the_refusal_and_resend_behave() {
    let out = Captured::default();
    let console = Console::new(Box::new(out.clone()), None);
    let summary = demo::run(&options(3), &console).await.unwrap();

    assert!(summary.all_acked_arrived(), "{:?}", summary.missing);
    assert_eq!(summary.errors(), 1, "one AE, for the malformed message");
    assert_eq!(summary.quarantined(), 1);
    assert_eq!(summary.duplicates(), 1, "one resend recognised");
    assert_eq!(summary.resends_replayed, 1, "the resend got the stored ACK");
    assert_eq!(
        summary.sent(),
        3 + 2 + 3,
        "lab: 3 + malformed + resend; monitors: 3"
    );
    assert_eq!(
        summary.accepted(),
        7,
        "every valid message and the resend: AA/CA"
    );
    assert_eq!(
        summary.records_at_hub(),
        6,
        "one record per distinct accepted message"
    );
    assert!(summary.stored_twice.is_empty() && summary.forwarded_refused.is_empty());
    assert!(summary.passed());

    let text = out.text();
    assert!(
        text.contains("lab      -> LAB00001  ORU^R01  CBC panel"),
        "{text}"
    );
    assert!(
        text.contains("ACK CA"),
        "the PCD-01 monitor asks for a commit ACK: {text}"
    );
    assert!(
        text.contains("ACK AE  refused, kept in quarantine"),
        "{text}"
    );
    assert!(
        text.contains("LOINC 2345-7 Glucose"),
        "local code mapped: {text}"
    );
    assert!(text.contains("(code mapped from 99LAB GLU)"), "{text}");
    assert!(text.contains("(unit mapped from Tsd/ul)"), "{text}");
    assert!(text.contains("MDC 150456 MDC_PULS_OXIM_SAT_O2"), "{text}");
    assert!(text.contains("device 0012A3FFFE00D3E0 (EUI-64)"), "{text}");
    assert!(
        text.contains("is offline (shutdown)"),
        "clean shutdown: {text}"
    );
    assert!(!text.contains('✗'), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_writes_one_parsable_record_per_accepted_message() {
    let human = Captured::default();
    let records = Captured::default();
    let console = Console::new(Box::new(human.clone()), Some(Box::new(records.clone())));
    let summary = demo::run(&options(1), &console).await.unwrap();

    assert!(summary.passed(), "{}", human.text());
    let lines: Vec<serde_json::Value> = records
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            let source = v["source"].as_str().unwrap().to_string();
            let control = v["record"]["header"]["control_id"].as_str().unwrap();
            (source, control.to_string())
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("lab".to_string(), "LAB00001".to_string()),
            ("monitors".to_string(), "MON00001".to_string())
        ]
    );
    assert!(
        lines
            .iter()
            .all(|v| v["gateway"] == "demo-org/demo-clinic/gw-demo")
    );
    assert!(
        !human.text().contains("LOINC 718-7"),
        "records are not also printed as text"
    );
}
