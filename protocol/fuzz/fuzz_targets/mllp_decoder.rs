//! Fuzzes the MLLP decoder with arbitrary bytes cut into arbitrary reads.
//!
//! Input layout: byte 0 picks the frame-size limit (`byte * 8`, so oversize
//! frames are common), byte 1 the number `n` (0..=15) of chunk-size bytes that
//! follow; each chunk-size byte gives a read length of `byte + 1`, used in
//! turn. The rest is the byte stream.
//!
//! Checked: no panic; `decode` returns `None` only with its input consumed;
//! the buffer never holds more than the limit; every event respects its
//! bounds (a frame's payload holds no end byte, and a start byte only as
//! content, never followed by a message start); and cutting the stream into
//! reads does not change the events.

#![no_main]

use hl7edge_protocol::hl7::mllp::{
    Decoder, END_BLOCK, Event, GARBAGE_REPORT_LEN, OVERSIZE_HEAD_LEN, START_BLOCK,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit_byte, rest)) = data.split_first() else {
        return;
    };
    let Some((&count_byte, rest)) = rest.split_first() else {
        return;
    };
    let limit = usize::from(limit_byte) * 8;
    let (sizes, stream) = rest.split_at(usize::from(count_byte % 16).min(rest.len()));

    let whole = decode(limit, [stream]);
    let chunked = decode(limit, Chunks::new(stream, sizes));
    assert_eq!(whole, chunked, "events depend on how the stream was cut");
    for event in &whole {
        check_event(event, limit);
    }
});

/// Decodes the given reads, checking the decoder's invariants after each call.
fn decode<'a>(limit: usize, reads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Event> {
    let mut decoder = Decoder::new(limit);
    let mut events = Vec::new();
    for mut input in reads {
        while let Some(event) = decoder.decode(&mut input) {
            assert!(decoder.buffered_len() <= limit);
            events.push(event);
        }
        assert!(input.is_empty(), "decode returned None with input left");
        assert!(decoder.buffered_len() <= limit);
    }
    events.extend(decoder.finish());
    assert_eq!(decoder.buffered_len(), 0);
    events
}

/// Checks the bounds each kind of event promises.
fn check_event(event: &Event, limit: usize) {
    match event {
        Event::Frame(payload) => {
            assert!(payload.len() <= limit);
            assert!(!payload.contains(&END_BLOCK));
            // A start byte stays in a payload only as content: never one
            // that a message start follows (that restarts the frame).
            for (at, _) in payload
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == START_BLOCK)
            {
                let probe = payload.get(at + 1..).unwrap_or_default();
                let probe = probe.get(..3).unwrap_or(probe);
                assert!(!matches!(
                    probe,
                    b"MSH" | b"FHS" | b"BHS" | [0xEF, 0xBB, 0xBF]
                ));
            }
        }
        Event::Garbage { skipped } => assert!((1..=GARBAGE_REPORT_LEN).contains(skipped)),
        Event::Oversize {
            limit: reported,
            head,
        } => {
            assert_eq!(*reported, limit);
            assert_eq!(head.len(), limit.min(OVERSIZE_HEAD_LEN));
        }
        Event::OversizeEnd { len } => assert!(*len > limit as u64),
        Event::Truncated { .. } | Event::Incomplete { .. } => {}
    }
}

/// Cuts a stream into reads whose lengths cycle through `sizes`.
struct Chunks<'a> {
    stream: &'a [u8],
    sizes: &'a [u8],
    next: usize,
}

impl<'a> Chunks<'a> {
    fn new(stream: &'a [u8], sizes: &'a [u8]) -> Self {
        Self {
            stream,
            sizes,
            next: 0,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.stream.is_empty() {
            return None;
        }
        let size = match self.sizes.get(self.next % self.sizes.len().max(1)) {
            Some(&byte) => usize::from(byte) + 1,
            None => 1,
        };
        self.next += 1;
        let (read, rest) = self.stream.split_at(size.min(self.stream.len()));
        self.stream = rest;
        Some(read)
    }
}
