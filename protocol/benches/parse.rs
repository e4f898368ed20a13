//! Parse benchmark: hl7edge's parser against the `hl7-parser` crate on the
//! same messages in the same run, touching the same fields.
//!
//! Run: `cargo bench -p hl7edge-protocol --bench parse`
//! (set `HL7EDGE_CORPUS` to another folder of `.hl7` files if needed).
//!
//! Fields touched per message, by both parsers: MSH-9.1, MSH-9.2, MSH-10,
//! PID-3 (first repetition, component 1), and OBX-3.1 and OBX-5 of every
//! OBX. A naive byte-loop split (segments on CR, fields on `|`) is printed for scale.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::validate::Validation;
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::normalize::{Context, normalize};
use hl7edge_protocol::wire::StoredRecord;

/// How long each measurement runs.
const RUN_FOR: Duration = Duration::from_millis(1500);

fn main() {
    let oru = realistic_oru();
    let corpus = load_corpus();
    println!(
        "hl7edge parse benchmark (one core, {} ms per figure)",
        RUN_FOR.as_millis()
    );
    println!();
    report("ORU^R01, 20 OBX", std::slice::from_ref(&oru));
    size_ratios("the 20-OBX ORU^R01", std::slice::from_ref(&oru));
    assert!(
        corpus.len() > 100,
        "the HL7 corpus (protocol/tests/corpus, or HL7EDGE_CORPUS) has only {} messages",
        corpus.len()
    );
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    report(
        &format!("corpus, {} messages, {} bytes", corpus.len(), bytes),
        &corpus,
    );
    size_ratios("the corpus", &corpus);
}

fn report(label: &str, messages: &[Vec<u8>]) {
    // hl7-parser takes &str: give it the messages that are UTF-8, and
    // measure hl7edge on exactly the same set for a fair ratio.
    let texts: Vec<&str> = messages
        .iter()
        .filter_map(|m| std::str::from_utf8(m).ok())
        .collect();
    let same: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let ours = throughput(&same, touch_ours);
    let theirs = throughput(&same, touch_hl7_parser);
    let split = throughput(&same, bare_split);
    println!("{label} ({} of them UTF-8 and compared)", same.len());
    println!("  hl7edge      {:>9.1} MB/s", ours);
    println!("  hl7-parser   {:>9.1} MB/s", theirs);
    println!(
        "  naive split  {:>9.1} MB/s  (a plain byte loop splitting segments and fields, for scale)",
        split
    );
    println!("  ratio        {:>9.1} x hl7-parser", ours / theirs);
    let all: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let pipeline = throughput(&all, full_pipeline);
    println!("  parse+validate+normalize+encode {:>9.1} MB/s", pipeline);
    println!();
}

/// Everything the gateway does with a frame before the store: parse,
/// validate, normalize, encode. Returns the encoded size.
fn full_pipeline(m: &[u8]) -> usize {
    thread_local! {
        static MAPPING: MappingTable = MappingTable::empty();
    }
    let Ok(msg) = Message::parse(m) else { return 0 };
    let validation = Validation::of(&msg);
    let tz = jiff::tz::TimeZone::UTC;
    MAPPING.with(|mapping| {
        let ctx = Context {
            time_zone: &tz,
            mapping,
        };
        let out = normalize(&msg, validation.issues, &ctx);
        let stored = StoredRecord {
            mapping_version: mapping.version().clone(),
            record: out.record,
        };
        stored.encode().map_or(0, |b| b.len())
    })
}

/// Encoded record size over raw size, for the ORU^R01 messages.
fn size_ratios(label: &str, messages: &[Vec<u8>]) {
    let mut ratios: Vec<f64> = messages
        .iter()
        .filter(|m| Message::parse(m).is_ok_and(|msg| msg.message_type().code == "ORU"))
        .map(|m| full_pipeline(m) as f64 / m.len() as f64)
        .collect();
    if ratios.is_empty() {
        return;
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "encoded record / raw HL7, {} ORU^R01 of {label}: median {:.1} %, min {:.1} %, max {:.1} %",
        ratios.len(),
        median * 100.0,
        ratios[0] * 100.0,
        ratios[ratios.len() - 1] * 100.0
    );
}

/// Runs `f` over all messages repeatedly for [`RUN_FOR`]; returns MB/s.
fn throughput(messages: &[&[u8]], mut f: impl FnMut(&[u8]) -> usize) -> f64 {
    let bytes: usize = messages.iter().map(|m| m.len()).sum();
    let mut sink = 0usize;
    for m in messages {
        sink += f(m);
    }
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < RUN_FOR {
        for m in messages {
            sink = sink.wrapping_add(f(black_box(m)));
        }
        rounds += 1;
    }
    black_box(sink);
    (bytes as f64 * rounds as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn touch_ours(m: &[u8]) -> usize {
    let Ok(msg) = Message::parse(m) else { return 0 };
    let msh = msg.msh();
    let mut n = 0;
    if let Some(f) = msh.field(9) {
        n += f.component(1).map_or(0, |c| c.raw().len());
        n += f.component(2).map_or(0, |c| c.raw().len());
    }
    n += msh.field(10).map_or(0, |f| f.raw().len());
    let mut pid_done = false;
    for seg in msg.segments() {
        match seg.id_bytes() {
            b"PID" if !pid_done => {
                pid_done = true;
                n += seg
                    .field(3)
                    .and_then(|f| f.component(1))
                    .map_or(0, |c| c.raw().len());
            }
            b"OBX" => {
                n += seg
                    .field(3)
                    .and_then(|f| f.component(1))
                    .map_or(0, |c| c.raw().len());
                n += seg.field(5).map_or(0, |f| f.raw().len());
            }
            _ => {}
        }
    }
    n
}

fn touch_hl7_parser(m: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(m) else {
        return 0;
    };
    let Ok(msg) = hl7_parser::Message::parse_with_lenient_newlines(text, true) else {
        return 0;
    };
    let mut n = 0;
    if let Some(msh) = msg.segment("MSH") {
        if let Some(f) = msh.field(9) {
            n += f.component(1).map_or(0, |c| c.raw_value().len());
            n += f.component(2).map_or(0, |c| c.raw_value().len());
        }
        n += msh.field(10).map_or(0, |f| f.raw_value().len());
    }
    if let Some(pid) = msg.segment("PID") {
        n += pid
            .field(3)
            .and_then(|f| f.component(1))
            .map_or(0, |c| c.raw_value().len());
    }
    for seg in msg.segments().filter(|s| s.name == "OBX") {
        n += seg
            .field(3)
            .and_then(|f| f.component(1))
            .map_or(0, |c| c.raw_value().len());
        n += seg.field(5).map_or(0, |f| f.raw_value().len());
    }
    n
}

/// For scale: split segments on CR and fields on `|` with a plain byte loop.
fn bare_split(m: &[u8]) -> usize {
    m.split(|&b| b == b'\r')
        .map(|s| s.split(|&b| b == b'|').count())
        .sum()
}

fn load_corpus() -> Vec<Vec<u8>> {
    let root = std::env::var_os("HL7EDGE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"));
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "malformed") {
                collect(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "hl7") {
            out.push(p);
        }
    }
}

/// A lab ORU^R01 as analyzers send it: CBC and basic chemistry, 20 OBX
/// (`benches/realistic-oru.hl7`, which the callgrind recipe in the README
/// profiles too).
fn realistic_oru() -> Vec<u8> {
    include_bytes!("realistic-oru.hl7").to_vec()
}
