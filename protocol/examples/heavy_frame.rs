//! Runs the listener's whole path on one generated worst-case frame (the
//! shapes of `tests/heavy`), for profilers and instruction counts:
//!
//! ```sh
//! cargo build --profile bench -p hl7edge-protocol --example heavy_frame
//! valgrind --tool=callgrind target/release/examples/heavy_frame DistinctSegments 1048576
//! ```
//!
//! Arguments: the shape (`TypicalOru`, `DistinctSegments`, ...; `list`
//! names them all), the frame size in bytes (default 1 MiB) and the
//! number of rounds (default 1). Prints the frame's size, whether it was
//! accepted, and the time per round.

#[path = "../tests/heavy/mod.rs"]
mod heavy;

use heavy::{SHAPES, Shape, frame, process, reporting_profile};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "list".to_string());
    let shapes: Vec<Shape> = std::iter::once(Shape::TypicalOru)
        .chain(SHAPES.iter().copied())
        .collect();
    let Some(&shape) = shapes.iter().find(|s| format!("{s:?}") == name) else {
        let names: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
        println!("shapes: {}", names.join(", "));
        return;
    };
    let bytes = args.next().and_then(|n| n.parse().ok()).unwrap_or(1 << 20);
    let rounds: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let raw = frame(shape, bytes);
    let start = std::time::Instant::now();
    let mut accepted = false;
    for _ in 0..rounds {
        accepted = process(&raw, &mut reporting_profile()).accepted;
    }
    let per_round = start.elapsed() / rounds.max(1);
    println!(
        "{shape:?}: {} bytes, accepted: {accepted}, {per_round:?} per round",
        raw.len()
    );
}
