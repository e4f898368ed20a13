//! The work on one frame is linear in its size, with a constant close to a
//! typical message's: every worst case we know costs at most
//! [`MAX_RATIO`] times the CPU of a typical ORU of the same size, and
//! doubling a frame at most [`MAX_GROWTH`] times its CPU. A step that
//! searches a list per segment (ERR renumbering, the drift profile's
//! segment ids, normalization's warning and unmapped-code lists, component
//! reads by number) costs 100 to 1,000 times more on these frames and
//! cannot meet either bound.
//!
//! Times are the CPU time of the test's thread (other processes on the
//! machine do not count), the least of a few runs.

mod heavy;

use std::time::Duration;

use heavy::{Shape, frame, process, reporting_profile};
use hl7edge_protocol::hl7::limits::MAX_SEGMENTS;

/// Most CPU a worst-case frame may cost, as a multiple of a typical ORU of
/// the same size.
const MAX_RATIO: f64 = 10.0;

/// Most a frame twice as large may cost, as a multiple of the smaller one.
const MAX_GROWTH: f64 = 3.0;

const MIB: usize = 1 << 20;

/// The thread's CPU time spent in `f`, the least of `runs` runs.
fn cpu_time(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = thread_cpu();
            f();
            thread_cpu().saturating_sub(start)
        })
        .min()
        .unwrap_or_default()
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// CPU time of the whole path on `raw`.
fn cost(raw: &[u8]) -> Duration {
    cpu_time(3, || {
        let mut profile = reporting_profile();
        std::hint::black_box(process(raw, &mut profile));
    })
}

#[test]
fn a_frame_of_150000_distinct_segments_is_refused_at_the_cap_in_linear_time() {
    let raw = frame(Shape::DistinctSegments, MIB);
    let msg = hl7edge_protocol::hl7::Message::parse(&raw).unwrap();
    assert!(msg.segment_count() >= 150_000, "{}", msg.segment_count());
    let out = process(&raw, &mut reporting_profile());
    assert!(!out.accepted);
    let ack = String::from_utf8_lossy(&out.ack);
    assert!(ack.contains("MSA|AE|C1"), "{ack}");
    assert!(
        ack.contains(&format!("at most {MAX_SEGMENTS} per message")),
        "{ack}"
    );
    let typical = cost(&frame(Shape::TypicalOru, MIB));
    let heavy = cost(&raw);
    eprintln!("150,000 distinct segments: {heavy:?}, typical ORU of 1 MiB: {typical:?}");
    assert!(
        heavy.as_secs_f64() <= MAX_RATIO * typical.as_secs_f64(),
        "{heavy:?} against {typical:?} for a typical ORU of the same size"
    );
}

#[test]
fn every_worst_case_frame_costs_at_most_a_bounded_multiple_of_a_typical_one() {
    let typical = cost(&frame(Shape::TypicalOru, MIB));
    let mut report = Vec::new();
    for &shape in heavy::SHAPES {
        // Just under the segment cap, so the whole path runs on it.
        let raw = if shape == Shape::DistinctSegments {
            let under = frame(shape, MIB);
            let cut = under
                .split(|&b| b == b'\r')
                .take(MAX_SEGMENTS - 1)
                .map(<[u8]>::len)
                .sum::<usize>()
                + MAX_SEGMENTS
                - 1;
            under.get(..cut).unwrap_or_default().to_vec()
        } else {
            frame(shape, MIB)
        };
        let heavy = cost(&raw);
        let per_byte = heavy.as_secs_f64() / raw.len() as f64;
        let typical_per_byte = typical.as_secs_f64() / MIB as f64;
        report.push(format!(
            "{shape:?}: {} bytes, {heavy:?} ({:.1}x typical)",
            raw.len(),
            per_byte / typical_per_byte
        ));
        assert!(
            per_byte <= MAX_RATIO * typical_per_byte,
            "{shape:?}: {heavy:?} for {} bytes against {typical:?} for a typical MiB\n{}",
            raw.len(),
            report.join("\n")
        );
    }
    eprintln!("typical ORU of 1 MiB: {typical:?}\n{}", report.join("\n"));
}

#[test]
fn doubling_a_worst_case_frame_at_most_doubles_its_cost_and_a_bit() {
    for &shape in heavy::SHAPES {
        let small = cost(&frame(shape, MIB / 2));
        let large = cost(&frame(shape, MIB));
        eprintln!("{shape:?}: {small:?} -> {large:?}");
        assert!(
            large.as_secs_f64() <= MAX_GROWTH * small.as_secs_f64().max(1e-4),
            "{shape:?}: {small:?} for half a MiB, {large:?} for one"
        );
    }
}
