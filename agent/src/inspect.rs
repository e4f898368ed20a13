//! `hl7edge inspect`: what the gateway makes of messages, for people.
//!
//! For each message in the given files (or stdin): whether it is valid
//! (with located errors and warnings), the ACK the gateway would send, and
//! the normalized record as JSON. Files may hold several messages, HL7
//! batches or MLLP-framed captures. The exit code is 1 when any message
//! would be rejected, so scripts can use it as a check.
//!
//! With `--fhir` it prints, for each message the gateway would accept, the
//! record as a FHIR R4 transaction bundle, one JSON object per line (the
//! hub's `tail --fhir` writes the same for delivered records). The record
//! id of a bundle is derived from the message bytes (a real record's is
//! assigned when the gateway commits it), so inspecting a file twice gives
//! the same bundles.
//!
//! With `--unmapped` it prints instead a mapping-table skeleton of every
//! code and unit the accepted messages carried without a standard coding
//! (`skeleton`), to fill in and load as the interface's mapping file.

mod report;
mod skeleton;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use hl7edge_protocol::fhir;
use hl7edge_protocol::hl7::ack::{self, AckHeader, AckMode, Outcome, erl};
use hl7edge_protocol::hl7::batch::{messages_in_file, refuse_unparsed};
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::hl7::{Issue, Message, Severity};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{self, Context};
use hl7edge_protocol::wire::StoredRecord;
use serde::Serialize;

/// Arguments of `hl7edge inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files with HL7 messages (several per file are fine); stdin when none.
    pub files: Vec<PathBuf>,
    /// Apply this mapping table (CSV) as an interface would.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Site time zone for timestamps without offset (default: the system's).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Print one JSON object per message instead of the readable report.
    #[arg(long)]
    pub json: bool,
    /// Print a mapping-table skeleton (CSV) of every code and unit without
    /// a standard coding, with how often each was seen, instead of reports.
    #[arg(long, conflicts_with = "json")]
    pub unmapped: bool,
    /// Print each accepted message's record as a FHIR R4 transaction
    /// bundle, one per line (NDJSON); rejected messages are named on stderr.
    #[arg(long, conflicts_with_all = ["json", "unmapped"])]
    pub fhir: bool,
}

/// What inspect reports for one message.
#[derive(Debug, Serialize)]
struct Report {
    source: String,
    index: usize,
    valid: bool,
    message_type: Option<String>,
    control_id: Option<String>,
    issues: Vec<Issue>,
    ack: String,
    /// Why no ACK is sent, when none is.
    no_ack: Option<String>,
    /// Serialized straight from the record: a JSON tree of a message with
    /// thousands of OBX would take a hundred times its size in memory.
    record: Option<StoredRecord>,
    encoded_bytes: Option<usize>,
    raw_bytes: usize,
    /// The issues as the ACK's ERR-2 locates them (segments numbered by occurrence), for the
    /// readable report; `issues` keeps the positions the record and the quarantine use.
    #[serde(skip)]
    located: Vec<Issue>,
}

impl Report {
    /// How many issues have `severity`.
    fn count(&self, severity: Severity) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == severity)
            .count()
    }
}

/// Runs the command; exit code 1 when any message is invalid.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let mapping = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read mapping file {}", path.display()))?;
            MappingTable::parse(&text)
                .with_context(|| format!("mapping file {}", path.display()))?
        }
        None => MappingTable::empty(),
    };
    let time_zone = match &args.time_zone {
        Some(name) => jiff::tz::TimeZone::get(name).with_context(|| {
            format!("unknown time zone {name:?} (expected e.g. \"Europe/Berlin\")")
        })?,
        None => jiff::tz::TimeZone::system(),
    };
    let inputs = read_inputs(&args.files)?;
    if args.unmapped {
        return unmapped(&inputs, &mapping, &time_zone);
    }
    let mut any_invalid = false;
    let mut count = 0;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stamp = ack_stamp(jiff::Timestamp::now());
    for (source, bytes) in inputs {
        for (i, raw) in messages_in_file(&bytes).iter().enumerate() {
            count += 1;
            let report = inspect_one(&source, i + 1, raw, &mapping, &time_zone, &stamp);
            any_invalid |= !report.valid;
            if args.fhir {
                write_fhir(&mut out, &report, raw)?;
            } else if args.json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                report::write(&mut out, &report)?;
            }
        }
    }
    if count == 0 {
        anyhow::bail!(
            "no HL7 message found in the input (expected text starting with MSH, or MLLP frames)"
        );
    }
    Ok(if any_invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--unmapped`: the skeleton of every accepted message's unmapped codes.
fn unmapped(
    inputs: &[(String, Vec<u8>)],
    mapping: &MappingTable,
    time_zone: &jiff::tz::TimeZone,
) -> anyhow::Result<ExitCode> {
    let ctx = Context { time_zone, mapping };
    let (mut count, mut refused) = (0, 0);
    let mut skeleton = skeleton::Skeleton::default();
    for (_, bytes) in inputs {
        for raw in messages_in_file(bytes) {
            count += 1;
            let Ok(msg) = Message::parse(&raw) else {
                refused += 1;
                continue;
            };
            let validation = Validation::of(&msg);
            if !validation.is_acceptable() {
                refused += 1;
                continue;
            }
            skeleton.add(&normalize::normalize(&msg, validation.issues, &ctx));
        }
    }
    if count == 0 {
        anyhow::bail!(
            "no HL7 message found in the input (expected text starting with MSH, or MLLP frames)"
        );
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    skeleton.write(&mut out)?;
    if refused > 0 {
        eprintln!(
            "{refused} of {count} message(s) would be rejected and were left out; see why with: hl7edge inspect FILE"
        );
    }
    if skeleton.is_empty() {
        eprintln!("every code and unit in {count} message(s) has a standard coding");
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable report of every message in `bytes` (a file's content, named `source`), as
/// `hl7edge inspect` prints it, with ACKs stamped `ack_time`: a pure function of its inputs
/// (the golden tests pin it).
pub fn report_text(
    source: &str,
    bytes: &[u8],
    mapping: &MappingTable,
    time_zone: &jiff::tz::TimeZone,
    ack_time: jiff::Timestamp,
) -> String {
    let stamp = ack_stamp(ack_time);
    let mut out = Vec::new();
    for (i, raw) in messages_in_file(bytes).iter().enumerate() {
        let report = inspect_one(source, i + 1, raw, mapping, time_zone, &stamp);
        // Writing to a Vec cannot fail.
        let _ = report::write(&mut out, &report);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// MSH-7 of the ACKs inspect shows.
fn ack_stamp(now: jiff::Timestamp) -> String {
    now.strftime("%Y%m%d%H%M%S%z").to_string()
}

/// Writes the report's record as one FHIR bundle line, or says on stderr
/// why there is none.
fn write_fhir(out: &mut impl Write, report: &Report, raw: &[u8]) -> anyhow::Result<()> {
    let Some(stored) = &report.record else {
        eprintln!(
            "{} #{}: not valid, so no record and no FHIR bundle (run without --fhir to see why)",
            report.source, report.index
        );
        return Ok(());
    };
    let received_at_ms = stored
        .record
        .header
        .message_time
        .map_or_else(|| jiff::Timestamp::now().as_millisecond(), |t| t.utc_ms);
    let origin = fhir::Origin {
        record_id: fhir::preview_record_id(raw),
        received_at_ms,
        gateway: "inspect",
        source: "inspect",
        mapping_version: &stored.mapping_version,
    };
    let bundle = fhir::bundle(&stored.record, &origin);
    serde_json::to_writer(&mut *out, &fhir::Json(&bundle))?;
    writeln!(out)?;
    Ok(())
}

fn read_inputs(files: &[PathBuf]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    if files.is_empty() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
        return Ok(vec![("stdin".to_string(), bytes)]);
    }
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok((p.display().to_string(), bytes))
        })
        .collect()
}

fn inspect_one(
    source: &str,
    index: usize,
    raw: &[u8],
    mapping: &MappingTable,
    tz: &jiff::tz::TimeZone,
    stamp: &str,
) -> Report {
    let mut report = Report {
        source: source.to_string(),
        index,
        valid: false,
        message_type: None,
        control_id: None,
        issues: Vec::new(),
        ack: String::new(),
        no_ack: None,
        record: None,
        encoded_bytes: None,
        raw_bytes: raw.len(),
        located: Vec::new(),
    };
    let msg = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => {
            let refused = refuse_unparsed(raw, &e);
            if refused.batch {
                report.message_type = Some("HL7 batch (FHS/BHS)".to_string());
                let id = String::from_utf8_lossy(&refused.header.control_id);
                report.control_id = (!id.is_empty()).then(|| id.into_owned());
            }
            report.issues = vec![refused.issue];
            report.located = report.issues.clone();
            let outcome = Outcome::Error {
                issues: report.issues.clone(),
            };
            report.ack = render_acks(&refused.header, &outcome, stamp);
            return report;
        }
    };
    report.message_type = Some(msg.message_type().to_string());
    report.control_id = msg.control_id().map(|c| c.into_owned());
    let validation = Validation::of(&msg);
    report.valid = validation.is_acceptable();
    report.issues = validation.issues.clone();
    let header = AckHeader::from_message(&msg);
    let ack_issues = erl::by_occurrence(&msg, validation.issues.clone());
    let outcome = if report.valid {
        Outcome::Accepted { issues: ack_issues }
    } else {
        Outcome::Error { issues: ack_issues }
    };
    report.ack = render_acks(&header, &outcome, stamp);
    if header.is_acknowledgment() {
        report.no_ack = Some(
            "the message is itself an acknowledgment (MSH-9.1 ACK), and an ACK is never \
             acknowledged (that would make the two systems loop); it is kept like any message"
                .to_string(),
        );
    } else if report.ack.is_empty() {
        report.no_ack = Some("MSH-15/MSH-16 ask for no acknowledgment in this case".to_string());
    }
    if report.valid {
        let ctx = Context {
            time_zone: tz,
            mapping,
        };
        let normalized = normalize::normalize(&msg, validation.issues, &ctx);
        // Normalization adds warnings of its own (a value it could not read,
        // a repetition it dropped): they travel on the record, so count
        // and list them too. The record's issues start with the validation
        // issues, unchanged; what follows is normalization's (taken by
        // position: searching the list per issue was quadratic).
        let validated = report.issues.len();
        report
            .issues
            .extend(normalized.record.issues.iter().skip(validated).cloned());
        let stored = StoredRecord {
            mapping_version: mapping.version().clone(),
            record: normalized.record,
        };
        report.encoded_bytes = stored.encode().ok().map(|b| b.len());
        report.record = Some(stored);
    }
    report.located = erl::by_occurrence(&msg, report.issues.clone());
    report
}

fn render_acks(header: &AckHeader, outcome: &Outcome, stamp: &str) -> String {
    let mut n = 0;
    ack::build_acks(header, outcome, AckMode::Always, stamp, || {
        n += 1;
        format!("INSPECT{n}")
    })
    .into_iter()
    .map(|(_, bytes)| String::from_utf8_lossy(&bytes).replace('\r', "\n"))
    .collect::<Vec<_>>()
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(raw: &[u8]) -> Report {
        inspect_one(
            "test",
            1,
            raw,
            &MappingTable::empty(),
            &jiff::tz::TimeZone::UTC,
            "20260101000000+0000",
        )
    }

    fn printed(r: &Report) -> String {
        let mut out = Vec::new();
        report::write(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn warnings_found_by_normalization_are_counted_in_the_header() {
        let r = inspect(
            b"MSH|^~\\&|EHR|HOSP|GW|CLINIC|20240102123045||VXU^V04^VXU_V04|V1|P|2.5.1\r\
PID|1||12345^^^HOSP^MR||DOE^JOHN||19700101|M\r\
RXA|0|1|20240102|20240102|08^HepB^CVX|abc|mL\r",
        );
        assert!(r.valid);
        let warnings: Vec<_> = r
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .collect();
        assert_eq!(warnings.len(), 1, "{:#?}", r.issues);
        assert_eq!(
            warnings[0].location.field, 6,
            "RXA-6, found by normalization"
        );
        let printed = printed(&r);
        assert!(
            printed.contains("Accepted: stored and answered AA; 1 warning"),
            "{printed}"
        );
        assert!(
            printed.contains("  warning   102  RXA^1^6 "),
            "located as ERR-2 locates it: {printed}"
        );
    }

    #[test]
    fn an_incoming_ack_is_shown_with_no_ack_and_the_reason() {
        let r = inspect(
            b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ACK^R01^ACK|A1|P|2.5.1\rMSA|AA|MSG001\r",
        );
        assert!(r.valid);
        assert_eq!(r.ack, "");
        let why = r.no_ack.as_deref().unwrap_or_default();
        assert!(why.contains("never acknowledged"), "{why}");
        let printed = printed(&r);
        assert!(
            printed
                .contains("ACK the gateway sends: none: the message is itself an acknowledgment"),
            "{printed}"
        );
        let after = printed
            .split("ACK the gateway sends:")
            .nth(1)
            .unwrap_or_default();
        let next = after.lines().nth(1).unwrap_or_default();
        assert!(!next.starts_with("  MSH"), "no ACK lines: {printed}");
    }

    #[test]
    fn a_batch_frame_shows_the_batch_control_id_in_the_header_and_the_ack() {
        let r = inspect(crate::ingest::tests::BATCH_FRAME);
        assert!(!r.valid);
        assert_eq!(r.control_id.as_deref(), Some("BATCH1"));
        assert_eq!(r.message_type.as_deref(), Some("HL7 batch (FHS/BHS)"));
        assert!(r.ack.contains("MSA|AE|BATCH1|"), "{}", r.ack);
    }

    #[test]
    fn fhir_prints_one_stable_bundle_line_per_accepted_message_and_none_for_a_rejected_one() {
        let raw = b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01^ORU_R01|M1|P|2.5.1\r\
PID|1||123^^^HOSP^MR||Doe^Jane\rOBR|1||F1|2345-7^Glucose^LN\r\
OBX|1|NM|2345-7^Glucose^LN||5.40|mmol/L^^UCUM|||||F\r";
        let mut first = Vec::new();
        write_fhir(&mut first, &inspect(raw), raw).unwrap();
        let mut second = Vec::new();
        write_fhir(&mut second, &inspect(raw), raw).unwrap();
        assert_eq!(first, second, "inspecting twice gives the same bundle");
        let text = String::from_utf8(first).unwrap();
        assert_eq!(text.lines().count(), 1);
        let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(bundle["type"], "transaction");
        assert!(text.contains(r#""value":5.40"#));

        let rejected = b"MSH|^~\\&|LIS|LAB|GW|CLINIC|20240102123045||ORU^R01^ORU_R01||P|2.5.1\r";
        let report = inspect(rejected);
        assert!(!report.valid);
        let mut none = Vec::new();
        write_fhir(&mut none, &report, rejected).unwrap();
        assert!(none.is_empty());
    }
}
