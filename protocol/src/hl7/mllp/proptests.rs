//! Property tests: chunking never changes the events, encode/decode round
//! trips, and arbitrary input never panics or grows memory past the limit.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// A payload byte: anything but the two framing bytes.
fn payload_byte() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("framing byte", |b| *b != START_BLOCK && *b != END_BLOCK)
}

/// A garbage byte: anything but a start byte (which would open a frame).
fn garbage_byte() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("start byte", |b| *b != START_BLOCK)
}

/// Garbage bytes followed by the payload of one frame.
type Piece = (Vec<u8>, Vec<u8>);

/// Garbage then a framed payload, repeated; then trailing garbage.
fn stream() -> impl Strategy<Value = (Vec<Piece>, Vec<u8>)> {
    let piece = (vec(garbage_byte(), 0..20), vec(payload_byte(), 0..120));
    (vec(piece, 0..8), vec(garbage_byte(), 0..20))
}

/// Cut points (as fractions of the length) for splitting a stream.
fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    vec(any::<prop::sample::Index>(), 0..12)
}

/// Builds the byte stream and the events a correct decoder must report.
fn encode_stream(pieces: &[Piece], tail: &[u8], limit: usize) -> (Vec<u8>, Vec<Event>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (garbage, payload) in pieces {
        bytes.extend_from_slice(garbage);
        let garbage_len = garbage.len();
        if garbage_len > 0 {
            expected.push(Event::Garbage {
                skipped: garbage_len,
            });
        }
        assert_encoded(encode(payload, &mut bytes));
        expected.extend(expected_frame_events(payload, limit));
    }
    bytes.extend_from_slice(tail);
    if !tail.is_empty() {
        expected.push(Event::Garbage {
            skipped: tail.len(),
        });
    }
    (bytes, expected)
}

fn assert_encoded(result: Result<(), EncodeError>) {
    assert_eq!(result, Ok(()), "payload strategy produced a framing byte");
}

fn expected_frame_events(payload: &[u8], limit: usize) -> Vec<Event> {
    if payload.len() <= limit {
        return vec![Event::Frame(payload.to_vec())];
    }
    let head_len = limit.min(OVERSIZE_HEAD_LEN);
    vec![
        Event::Oversize {
            limit,
            head: payload[..head_len].to_vec(),
        },
        Event::OversizeEnd {
            len: payload.len() as u64,
        },
    ]
}

/// Splits `bytes` at the given cut points (sorted, possibly repeated).
fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut reads = Vec::new();
    let mut start = 0;
    for point in points {
        reads.push(&bytes[start..point]);
        start = point;
    }
    reads.push(&bytes[start..]);
    reads
}

/// Decodes `reads` checking the invariants after every call; returns the
/// events including the one from `finish`.
fn decode_checked(limit: usize, reads: &[&[u8]]) -> Vec<Event> {
    let mut decoder = Decoder::new(limit);
    let mut events = Vec::new();
    for read in reads {
        let mut input = *read;
        loop {
            let event = decoder.decode(&mut input);
            assert!(decoder.buffered_len() <= limit);
            assert!(decoder.payload.capacity() <= limit);
            match event {
                Some(event) => events.push(event),
                None => break,
            }
        }
        assert!(input.is_empty());
    }
    events.extend(decoder.finish());
    events
}

/// Checks the bounds every event must respect.
fn assert_event_bounds(event: &Event, limit: usize) {
    match event {
        Event::Frame(payload) => assert!(payload.len() <= limit),
        Event::Garbage { skipped } => assert!((1..=GARBAGE_REPORT_LEN).contains(skipped)),
        Event::Oversize { limit: l, head } => {
            assert_eq!(*l, limit);
            assert_eq!(head.len(), limit.min(OVERSIZE_HEAD_LEN));
        }
        Event::OversizeEnd { len } => assert!(*len > limit as u64),
        Event::Truncated { .. } | Event::Incomplete { .. } => {}
    }
}

proptest! {
    #[test]
    fn framed_stream_gives_the_expected_events_however_it_is_cut(
        (pieces, tail) in stream(),
        limit in 0usize..150,
        cuts in cuts(),
    ) {
        let (bytes, expected) = encode_stream(&pieces, &tail, limit);
        prop_assert_eq!(&decode_checked(limit, &[&bytes]), &expected);
        prop_assert_eq!(&decode_checked(limit, &split(&bytes, &cuts)), &expected);
    }

    #[test]
    fn encoded_payload_decodes_back_to_itself(payload in vec(payload_byte(), 0..2000)) {
        let mut bytes = Vec::new();
        prop_assert_eq!(encode(&payload, &mut bytes), Ok(()));
        prop_assert_eq!(decode_checked(payload.len(), &[&bytes]), vec![Event::Frame(payload)]);
    }

    #[test]
    fn encode_fails_exactly_when_the_payload_has_a_framing_byte(payload in vec(any::<u8>(), 0..200)) {
        let has_framing_byte = payload.iter().any(|b| *b == START_BLOCK || *b == END_BLOCK);
        prop_assert_eq!(encode(&payload, &mut Vec::new()).is_err(), has_framing_byte);
    }

    #[test]
    fn arbitrary_bytes_respect_the_bounds_and_ignore_chunking(
        bytes in vec(prop_oneof![
            4 => any::<u8>(),
            1 => Just(START_BLOCK),
            1 => Just(END_BLOCK),
            1 => Just(CARRIAGE_RETURN),
        ], 0..600),
        limit in 0usize..64,
        cuts in cuts(),
    ) {
        let whole = decode_checked(limit, &[&bytes]);
        for event in &whole {
            assert_event_bounds(event, limit);
        }
        prop_assert_eq!(decode_checked(limit, &split(&bytes, &cuts)), whole);
    }
}
