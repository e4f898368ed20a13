//! Fuzzes the HL7 v2 parser on every frame the MLLP decoder finds in
//! arbitrary bytes. Checked: no panic.
//!
//! Not yet listed as a `[[bin]]` in `Cargo.toml`: it needs
//! `hl7edge_protocol::hl7::Message::parse(&[u8])`, which does not exist yet.
//! Enable the commented `[[bin]]` entry once the parser lands (adjust the call
//! if its signature differs).

#![no_main]

use hl7edge_protocol::hl7::Message;
use hl7edge_protocol::hl7::mllp::{Decoder, Event};
use libfuzzer_sys::fuzz_target;

/// Large enough for any message a fuzzer produces; oversize frames are the
/// `mllp_decoder` target's business.
const MAX_FRAME_LEN: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // Raw input as one message, as if it had arrived in a single frame.
    let _ = Message::parse(data);

    let mut decoder = Decoder::new(MAX_FRAME_LEN);
    let mut input = data;
    while let Some(event) = decoder.decode(&mut input) {
        if let Event::Frame(payload) = event {
            let _ = Message::parse(&payload);
        }
    }
});
