//! What a decoder allocates for a crafted payload: a count claimed by the
//! bytes never reserves memory beyond what the input could hold and the
//! record limits allow, a string repeated by reference cannot decode into
//! more text than a record may hold, and a payload read entry by entry
//! holds one record at a time. Measured with a counting global allocator
//! (dhat's heap statistics), in one test: the statistics are per process.

use hl7edge_protocol::hl7::Issue;
use hl7edge_protocol::hl7::{ErrorCode, Location, Severity};
use hl7edge_protocol::normalize::mapping::MappingTable;
use hl7edge_protocol::record::limits::{self, MAX_ORDERS};
use hl7edge_protocol::record::{
    Body, CompactString, Header, ObservationGroup, ObservationReport, Processing, Record,
    encode_compact,
};
use hl7edge_protocol::telemetry::{Heartbeat, MAX_HEARTBEAT_BYTES};
use hl7edge_protocol::wire::{Envelope, EnvelopeReader, SCHEMA_VERSION, WireError};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: usize = 1 << 20;

/// An unsigned LEB128 varint, as postcard and the compact form write them.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn record(body: Body, issues: Vec<Issue>) -> Record {
    let s = CompactString::from;
    Record {
        header: Header {
            message_code: s("ORU"),
            trigger_event: s("R01"),
            control_id: s("C1"),
            version: s("2.5.1"),
            sending_application: s("LAB"),
            sending_facility: s("F"),
            message_time: None,
            processing: Processing::Production,
            ..Header::default()
        },
        body,
        issues,
        ..Record::default()
    }
}

fn empty_group() -> ObservationGroup {
    ObservationGroup::default()
}

/// An envelope payload holding `records` (compact bytes each), written
/// field by field as postcard writes an `Envelope`.
fn envelope(records: &[Vec<u8>]) -> Vec<u8> {
    let size = 64 + records.iter().map(|r| r.len() + 64).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend(postcard::to_allocvec(&SCHEMA_VERSION).unwrap());
    out.extend(postcard::to_allocvec("org/site/gw").unwrap());
    out.extend(postcard::to_allocvec("lab").unwrap());
    varint(records.len() as u64, &mut out);
    for (i, r) in records.iter().enumerate() {
        let id = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128);
        let sequence = Some(i as u64 + 1);
        out.extend(postcard::to_allocvec(&(id, sequence, 1_700_000_000_000_i64)).unwrap());
        out.extend(postcard::to_allocvec(MappingTable::empty().version()).unwrap());
        varint(r.len() as u64, &mut out);
        out.extend_from_slice(r);
        out.push(0);
    }
    out
}

/// A record whose last list count (ending its bytes) claims `claim` items,
/// followed by zero bytes up to about `size`.
fn claiming(base: Record, claim: u64, size: usize) -> Vec<u8> {
    let mut bytes = encode_compact(&base).unwrap();
    assert_eq!(bytes.pop(), Some(0), "the record ends with an empty list");
    varint(claim, &mut bytes);
    bytes.reserve_exact(size.saturating_sub(bytes.len()));
    bytes.resize(size, 0);
    bytes
}

/// The peak heap in use so far, in bytes.
fn peak() -> usize {
    dhat::HeapStats::get().max_bytes
}

/// The most heap in use at once over the whole test: the 16 MiB payloads
/// are built twice over (record, then envelope), and the largest record a
/// decoder may build is about 20 MiB. Reserving by the counts the payloads
/// claim would take gigabytes.
const PEAK_LIMIT: usize = 48 * MIB;

fn assert_peak(case: &str) {
    let peak = peak();
    assert!(
        peak < PEAK_LIMIT,
        "{case}: {peak} bytes in use at peak (limit {PEAK_LIMIT})"
    );
}

#[test]
fn crafted_payloads_are_refused_or_read_within_the_memory_their_bytes_and_the_limits_allow() {
    let _profiler = dhat::Profiler::builder().testing().build();

    // A record claiming fifteen million orders in a 16 MiB payload (as
    // many as its bytes could number): once a reservation of gigabytes,
    // now refused by the count.
    {
        let payload = envelope(&[claiming(
            record(
                Body::Observations(ObservationReport { orders: vec![] }),
                vec![],
            ),
            15 << 20,
            16 * MIB,
        )]);
        let err = Envelope::decode(&payload).unwrap_err();
        assert!(matches!(err, WireError::Record(_)), "{err}");
        assert!(err.to_string().contains("50000 orders"), "{err}");
    }
    assert_peak("fifteen million orders claimed");

    // A group claiming fifteen million results, then as many as a record
    // may hold, in 16 MiB of zero bytes (not results): refused, or
    // reserved up to a bound and then refused.
    {
        let payload = envelope(&[claiming(
            record(
                Body::Observations(ObservationReport {
                    orders: vec![empty_group()],
                }),
                vec![],
            ),
            15 << 20,
            16 * MIB,
        )]);
        let err = Envelope::decode(&payload).unwrap_err();
        assert!(err.to_string().contains("50000 results"), "{err}");
    }
    assert_peak("fifteen million results claimed");
    {
        let payload = envelope(&[claiming(
            record(
                Body::Observations(ObservationReport {
                    orders: vec![empty_group()],
                }),
                vec![],
            ),
            limits::MAX_OBSERVATIONS as u64,
            16 * MIB,
        )]);
        assert!(Envelope::decode(&payload).is_err());
    }
    {
        let payload = envelope(&[claiming(
            record(
                Body::Observations(ObservationReport { orders: vec![] }),
                vec![],
            ),
            u64::MAX,
            MIB,
        )]);
        assert!(Envelope::decode(&payload).is_err());
    }
    assert_peak("fifty thousand results claimed");

    // One long text repeated by reference in every issue: 1 MiB of input,
    // 258 MiB of text once decoded; refused at the text limit.
    {
        let long = "x".repeat(MIB);
        let issue = Issue {
            code: ErrorCode::DataType,
            severity: Severity::Warning,
            location: Location::segment("OBX", 4),
            message: long,
        };
        let with = |n: usize| {
            let body = Body::Observations(ObservationReport { orders: vec![] });
            encode_compact(&record(body, vec![issue.clone(); n])).unwrap()
        };
        let (one, two) = (with(1), with(2));
        // The two differ in the issue count, then `two` has one more issue:
        // the same text again, as a reference.
        let count_at = one.iter().zip(&two).position(|(a, b)| a != b).unwrap();
        let again = two.get(one.len()..).unwrap();
        let mut bomb = one.get(..count_at).unwrap().to_vec();
        varint(limits::MAX_ISSUES as u64, &mut bomb);
        bomb.extend_from_slice(one.get(count_at + 1..).unwrap());
        for _ in 1..limits::MAX_ISSUES {
            bomb.extend_from_slice(again);
        }
        assert!(bomb.len() < 2 * MIB, "the writer repeats it by reference");
        let payload = envelope(&[bomb]);
        let err = Envelope::decode(&payload).unwrap_err();
        assert!(err.to_string().contains("bytes of text"), "{err}");
    }
    assert_peak("a text repeated by reference");

    // Records with as many (empty) orders as a record may hold, read one
    // at a time: the reader holds one record at a time.
    {
        let widest = encode_compact(&record(
            Body::Observations(ObservationReport {
                orders: vec![empty_group(); MAX_ORDERS],
            }),
            vec![],
        ))
        .unwrap();
        let payload = envelope(&vec![widest; 8]);
        let mut read = 0;
        for entry in EnvelopeReader::new(&payload).unwrap() {
            let entry = entry.unwrap();
            read += 1;
            let Body::Observations(report) = &entry.record.body else {
                panic!("a result")
            };
            assert_eq!(report.orders.len(), MAX_ORDERS);
        }
        assert_eq!(read, 8);
    }
    assert_peak("eight of the widest records, one at a time");

    // A heartbeat larger than any heartbeat is refused before decoding.
    let mut big = postcard::to_allocvec(&1u16).unwrap();
    big.resize(MAX_HEARTBEAT_BYTES + 1, 0xff);
    assert!(Heartbeat::decode(&big).is_err());
}
