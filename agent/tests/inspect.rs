//! `hl7edge inspect` as a technician runs it: files and stdin, readable and
//! JSON output, and an exit code that says whether anything would be
//! rejected.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ORU: &str = "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|C1|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
OBR|1|P1|F1|24323-8^Panel^LN|||20260102020000\r\
OBX|1|NM|GLU^Glucose^99LAB||112|mg/dl|70-99|H|||F\r";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hl7edge"))
}

fn temp(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hl7edge-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn a_valid_message_exits_zero_and_shows_ack_and_record() {
    let file = temp("valid.hl7", ORU.as_bytes());
    let out = bin().arg("inspect").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("valid: yes"), "{text}");
    assert!(text.contains("MSA|AA|C1"), "{text}");
    assert!(text.contains("\"Observations\""), "{text}");
}

#[test]
fn a_mapping_file_maps_local_codes_and_units() {
    let file = temp("mapped.hl7", ORU.as_bytes());
    let map = temp(
        "lab.csv",
        b"# version: lab-v1\nkind,local_system,local_code,target_system,target_code,target_display\ncode,99LAB,GLU,LN,2345-7,Glucose\n",
    );
    let out = bin()
        .arg("inspect")
        .arg("--json")
        .arg("--mapping")
        .arg(&map)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let record = &line["record"];
    assert_eq!(record["mapping_version"]["declared"], "lab-v1");
    let obs = &record["record"]["body"]["Observations"]["orders"][0]["observations"][0];
    assert_eq!(obs["code"]["standard"]["Mapped"]["code"], "2345-7", "{obs}");
    assert_eq!(obs["value"]["Quantity"]["unit"]["ucum"], "mg/dL", "{obs}");
}

#[test]
fn the_json_view_shows_comments_specimens_visit_performing_lab_and_what_is_not_carried() {
    let oru = "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|C1|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F|||1 Main St^^Springfield^IL^62701\r\
PV1|1|O|LAB^^^HOSP||||1234^DOC^ANNA\r\
ORC|RE|P1|F1||CM|||||||5678^ORDER^OTTO\r\
OBR|1|P1|F1|24323-8^Panel^LN|||20260102020000\r\
OBX|1|NM|2345-7^Glucose^LN||112|mg/dL^^UCUM|70-99|H|||F||||||||||||Main Lab^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0000000\r\
NTE|1|L|hemolyzed\r\
SPM|1|S1||SER^Serum^HL70487|||||||P||||||20260102020000\r\
ZXX|1|site specific\r";
    let file = temp("rich.hl7", oru.as_bytes());
    let out = bin()
        .args(["inspect", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let record = &line["record"]["record"];
    assert_eq!(
        record["patient"]["addresses"][0]["city"], "Springfield",
        "{record}"
    );
    assert_eq!(record["encounter"]["class"], "O", "{record}");
    let group = &record["body"]["Observations"]["orders"][0];
    assert_eq!(group["orderers"][0]["name"]["family"], "ORDER", "{group}");
    assert_eq!(group["specimens"][0]["placer_id"]["id"], "S1", "{group}");
    let obs = &group["observations"][0];
    assert_eq!(obs["notes"][0]["text"], "hemolyzed", "{obs}");
    assert_eq!(obs["performing_organization"]["name"], "Main Lab", "{obs}");
    assert_eq!(
        record["not_carried"],
        serde_json::json!([{"segment": "ZXX", "field": 0, "count": 1}]),
        "{record}"
    );
}

#[test]
fn a_malformed_message_exits_one_with_a_located_error() {
    let file = temp(
        "bad.hl7",
        b"MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01||P|2.5.1\rPIDX|1\r",
    );
    let out = bin().arg("inspect").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("valid: NO"), "{text}");
    assert!(text.contains("MSA|AE"), "{text}");
    assert!(text.contains("MSH(segment 1)-10"), "{text}");
}

#[test]
fn stdin_with_several_messages_gives_one_json_line_each() {
    let mut child = bin()
        .args(["inspect", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let two = format!("{ORU}\n{}", ORU.replace("|C1|", "|C2|"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(two.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["control_id"], "C2");
    assert_eq!(lines[0]["valid"], true);
}

#[test]
fn the_whole_corpus_is_inspected_with_only_malformed_rejected() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/corpus");
    let mut files = Vec::new();
    collect(&corpus, &mut files);
    assert!(
        files.len() > 100,
        "the corpus at {} holds only {} messages",
        corpus.display(),
        files.len()
    );
    let out = bin()
        .args(["inspect", "--json"])
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "malformed samples make the exit code 1"
    );
    let mut invalid = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["valid"] == false {
            invalid.push(v["source"].as_str().unwrap().to_string());
        }
    }
    assert!(!invalid.is_empty());
    assert!(
        invalid.iter().all(|s| s.contains("/malformed/")),
        "{invalid:?}"
    );
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "hl7") {
            out.push(p);
        }
    }
}

/// An ORU with a local code, a local unit spelling, a code sent as LOINC
/// with a wrong check digit, and a LOINC code written as its OID.
const UNMAPPED_ORU: &str = "MSH|^~\\&|LAB|HOSP|GW|ORG|20260102030405||ORU^R01^ORU_R01|C9|P|2.5.1\r\
PID|1||123^^^HOSP^MR||DOE^JANE||19800101|F\r\
OBR|1|P1|F1|24323-8^Panel^2.16.840.1.113883.6.1|||20260102020000\r\
OBX|1|NM|GLU^Glucose, fasting^99LAB||112|MGS/DL|70-99|H|||F\r\
OBX|2|NM|2823-4^Potassium^LN||4.1|mmol/L|||||F\r\
OBX|3|NM|GLU^Glucose, fasting^99LAB||5.4|mmol/L|||||F\r";

#[test]
fn the_unmapped_skeleton_lists_codes_and_units_and_loads_once_filled_in() {
    let file = temp("unmapped.hl7", UNMAPPED_ORU.as_bytes());
    let out = bin()
        .args(["inspect", "--unmapped"])
        .arg(&file)
        .output()
        .unwrap();
    let skeleton = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{skeleton}");
    assert!(
        skeleton.contains("\ncode,99LAB,GLU,,,\"Glucose, fasting\",\n"),
        "{skeleton}"
    );
    assert!(
        skeleton.contains("\ncode,LN,2823-4,,,Potassium,\n"),
        "{skeleton}"
    );
    assert!(skeleton.contains("\nunit,,MGS/DL,UCUM,,,\n"), "{skeleton}");
    assert!(
        !skeleton.contains("24323-8"),
        "an OID-named LOINC code is standard"
    );
    let unfilled = temp("skeleton.csv", skeleton.as_bytes());
    let refused = bin()
        .args(["inspect", "--mapping"])
        .arg(&unfilled)
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("column 4 (`target_system`)"), "{err}");

    let filled = skeleton
        .replace(
            "code,99LAB,GLU,,,\"Glucose, fasting\",",
            "code,99LAB,GLU,LN,2345-7,\"Glucose, fasting\",mg/dL",
        )
        .replace(
            "code,LN,2823-4,,,Potassium,",
            "code,LN,2823-4,LN,2823-3,Potassium,",
        )
        .replace("unit,,MGS/DL,UCUM,,,", "unit,,MGS/DL,UCUM,mg/dL,,");
    let map = temp("filled.csv", filled.as_bytes());
    let out = bin()
        .args(["inspect", "--json", "--mapping"])
        .arg(&map)
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let obs = &line["record"]["record"]["body"]["Observations"]["orders"][0]["observations"];
    assert_eq!(
        obs[0]["code"]["standard"]["Mapped"]["code"], "2345-7",
        "{obs}"
    );
    assert_eq!(
        obs[0]["value"]["Quantity"]["unit"]["ucum"], "mg/dL",
        "{obs}"
    );
    assert_eq!(
        obs[1]["code"]["standard"]["Mapped"]["code"], "2823-3",
        "{obs}"
    );
    // 5.4 mmol/L sent where the row expects mg/dL: flagged, not converted.
    assert_eq!(
        obs[2]["value"]["Quantity"]["converted"],
        serde_json::Value::Null
    );
    let issues = line["issues"].to_string();
    assert!(issues.contains("not commensurable"), "{issues}");

    let again = bin()
        .args(["inspect", "--unmapped", "--mapping"])
        .arg(&map)
        .arg(&file)
        .output()
        .unwrap();
    let rest = String::from_utf8_lossy(&again.stdout);
    assert!(
        !rest
            .lines()
            .any(|l| l.starts_with("code,") || l.starts_with("unit,")),
        "{rest}"
    );
}
