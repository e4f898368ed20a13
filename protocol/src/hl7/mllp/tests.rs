//! Unit tests for the MLLP decoder and encoder, one behaviour each.

use super::*;

/// Feeds `reads` one after another, then `finish`, and collects every event.
fn decode_reads(decoder: &mut Decoder, reads: &[&[u8]]) -> Vec<Event> {
    let mut events = Vec::new();
    for read in reads {
        let mut input = *read;
        while let Some(event) = decoder.decode(&mut input) {
            events.push(event);
        }
        assert!(input.is_empty(), "decode returned None with input left");
    }
    events.extend(decoder.finish());
    events
}

fn decode_with_limit(limit: usize, reads: &[&[u8]]) -> Vec<Event> {
    decode_reads(&mut Decoder::new(limit), reads)
}

fn frame(payload: &[u8]) -> Event {
    Event::Frame(payload.to_vec())
}

#[test]
fn single_frame_is_decoded_without_its_markers() {
    let events = decode_with_limit(100, &[b"\x0bMSH|^~\\&|LAB\x1c\r"]);
    assert_eq!(events, [frame(b"MSH|^~\\&|LAB")]);
}

#[test]
fn frame_split_into_single_bytes_is_reassembled() {
    let stream = b"\x0bMSH|A\rPID|1\x1c\r";
    let reads: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_with_limit(100, &reads), [frame(b"MSH|A\rPID|1")]);
}

#[test]
fn many_frames_in_one_read_come_out_in_order() {
    let events = decode_with_limit(100, &[b"\x0bone\x1c\r\x0btwo\x1c\r\x0bthree\x1c\r"]);
    assert_eq!(events, [frame(b"one"), frame(b"two"), frame(b"three")]);
}

#[test]
fn empty_frame_is_a_frame_with_an_empty_payload() {
    assert_eq!(decode_with_limit(100, &[b"\x0b\x1c\r"]), [frame(b"")]);
}

#[test]
fn garbage_before_a_frame_is_reported_with_its_length() {
    let events = decode_with_limit(100, &[b"GET / HTTP/1.1\r\n\x0bMSH\x1c\r"]);
    assert_eq!(events, [Event::Garbage { skipped: 16 }, frame(b"MSH")]);
}

#[test]
fn garbage_run_split_across_reads_is_reported_once() {
    let events = decode_with_limit(100, &[b"\x0bA\x1c\rxx", b"yyy", b"z\x0bB\x1c\r"]);
    assert_eq!(
        events,
        [frame(b"A"), Event::Garbage { skipped: 6 }, frame(b"B")]
    );
}

#[test]
fn long_garbage_run_is_reported_every_garbage_report_len_bytes() {
    let garbage = vec![b'x'; GARBAGE_REPORT_LEN * 2 + 5];
    let events = decode_with_limit(100, &[&garbage]);
    let full = Event::Garbage {
        skipped: GARBAGE_REPORT_LEN,
    };
    assert_eq!(events, [full.clone(), full, Event::Garbage { skipped: 5 }]);
}

#[test]
fn trailing_garbage_is_reported_by_finish() {
    let mut decoder = Decoder::new(100);
    let mut input: &[u8] = b"\x0bA\x1c\rtail";
    assert_eq!(decoder.decode(&mut input), Some(frame(b"A")));
    assert_eq!(decoder.decode(&mut input), None);
    assert_eq!(decoder.finish(), Some(Event::Garbage { skipped: 4 }));
}

#[test]
fn frame_is_delivered_at_its_end_block_before_the_cr_arrives() {
    let mut decoder = Decoder::new(100);
    let mut input: &[u8] = b"\x0bMSH|A\x1c";
    assert_eq!(decoder.decode(&mut input), Some(frame(b"MSH|A")));
    assert!(input.is_empty());
}

#[test]
fn cr_arriving_in_the_next_read_is_taken_as_part_of_the_end_marker() {
    let events = decode_with_limit(100, &[b"\x0bA\x1c", b"\r", b"\x0bB\x1c\r"]);
    assert_eq!(events, [frame(b"A"), frame(b"B")]);
}

#[test]
fn missing_cr_does_not_disturb_the_next_frame() {
    let events = decode_with_limit(100, &[b"\x0bA\x1c\x0bB\x1c\r"]);
    assert_eq!(events, [frame(b"A"), frame(b"B")]);
}

#[test]
fn byte_other_than_cr_after_end_block_is_garbage() {
    let events = decode_with_limit(100, &[b"\x0bA\x1c\r\n\x0bB\x1c!\x0bC\x1c\r"]);
    let one = Event::Garbage { skipped: 1 };
    assert_eq!(
        events,
        [frame(b"A"), one.clone(), frame(b"B"), one, frame(b"C")]
    );
}

#[test]
fn start_block_inside_a_frame_truncates_it_and_starts_a_new_one() {
    let events = decode_with_limit(100, &[b"\x0bMSH|half", b"\x0bMSH|whole\x1c\r"]);
    assert_eq!(events, [Event::Truncated { len: 8 }, frame(b"MSH|whole")]);
}

#[test]
fn a_start_block_that_does_not_start_a_message_is_content() {
    let stream: &[u8] =
        b"\x0bMSH|a\rOBX|1|TX|||line\x0bnext\x1c\r\x0bMSH|b\x0b\x1c\r\x0bMSH|c\x0bMS\x1c\r";
    let expected = [
        frame(b"MSH|a\rOBX|1|TX|||line\x0bnext"),
        frame(b"MSH|b\x0b"),
        frame(b"MSH|c\x0bMS"),
    ];
    assert_eq!(decode_with_limit(100, &[stream]), expected);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_with_limit(100, &bytes), expected, "byte by byte");
}

#[test]
fn a_start_block_followed_by_a_message_start_restarts_however_the_stream_is_cut() {
    let stream: &[u8] = b"\x0bMSH|half\x0b\x0bMSH|whole\x1c\r\x0bMSH|x\x0b\xef\xbb\xbfMSH|y\x1c\r";
    let expected = [
        Event::Truncated { len: 9 },
        frame(b"MSH|whole"),
        Event::Truncated { len: 5 },
        frame(b"\xef\xbb\xbfMSH|y"),
    ];
    assert_eq!(decode_with_limit(100, &[stream]), expected);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_with_limit(100, &bytes), expected, "byte by byte");
}

#[test]
fn a_restart_decided_by_the_bytes_that_overflow_the_limit_does_not_depend_on_the_cut() {
    // Found by fuzzing: the three bytes after an inner 0x0B arrived in the
    // same read as the byte that overflowed the limit.
    let stream: &[u8] = b"\x0bMSH|^~IC^\x0bMSH\xf8\xf8\xf8\xf8\xf8\xf8\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffSH|\x9b\x940\x1c\r";
    let whole = decode_with_limit(32, &[stream]);
    assert!(
        matches!(whole.first(), Some(Event::Truncated { len: 9 })),
        "{whole:?}"
    );
    for size in 1..8 {
        let reads: Vec<&[u8]> = stream.chunks(size).collect();
        assert_eq!(decode_with_limit(32, &reads), whole, "reads of {size}");
    }
}

#[test]
fn a_start_block_with_no_room_left_restarts_the_frame() {
    assert_eq!(
        decode_with_limit(5, &[b"\x0b12345\x0bok\x1c\r"]),
        [Event::Truncated { len: 5 }, frame(b"ok")]
    );
}

#[test]
fn payload_of_exactly_the_limit_is_accepted() {
    assert_eq!(
        decode_with_limit(5, &[b"\x0b12345\x1c\r"]),
        [frame(b"12345")]
    );
}

#[test]
fn payload_one_byte_over_the_limit_is_reported_as_oversize() {
    let events = decode_with_limit(5, &[b"\x0b123456\x1c\r\x0bok\x1c\r"]);
    let oversize = Event::Oversize {
        limit: 5,
        head: b"12345".to_vec(),
    };
    assert_eq!(
        events,
        [oversize, Event::OversizeEnd { len: 6 }, frame(b"ok")]
    );
}

#[test]
fn oversize_event_comes_before_the_end_of_the_frame_arrives() {
    let mut decoder = Decoder::new(3);
    let mut input: &[u8] = b"\x0bMSH|";
    let event = decoder.decode(&mut input);
    let expected = Event::Oversize {
        limit: 3,
        head: b"MSH".to_vec(),
    };
    assert_eq!(event, Some(expected));
    assert_eq!(decoder.decode(&mut input), None);
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn oversize_head_keeps_only_the_first_oversize_head_len_bytes() {
    let payload: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut stream = vec![START_BLOCK];
    stream.extend_from_slice(&payload);
    stream.extend_from_slice(b"\x1c\r");
    let events = decode_with_limit(9_000, &[&stream]);
    let Some(Event::Oversize { head, .. }) = events.first() else {
        panic!("expected an oversize event, got {events:?}");
    };
    assert_eq!(head.as_slice(), &payload[..OVERSIZE_HEAD_LEN]);
    assert_eq!(events.get(1), Some(&Event::OversizeEnd { len: 10_000 }));
}

#[test]
fn hundred_megabyte_frame_is_discarded_with_memory_bounded_by_the_limit() {
    const LIMIT: usize = 64 * 1024;
    const TOTAL: u64 = 100 * 1024 * 1024;
    let chunk = vec![b'A'; 64 * 1024];
    let mut decoder = Decoder::new(LIMIT);
    let mut events = decode_chunk(&mut decoder, b"\x0bMSH|^~\\&|");
    let mut sent = 9u64;
    while sent < TOTAL {
        events.extend(decode_chunk(&mut decoder, &chunk));
        sent += chunk.len() as u64;
        assert!(decoder.payload.capacity() <= LIMIT);
    }
    events.extend(decode_chunk(&mut decoder, b"\x1c\r\x0bMSH|next\x1c\r"));
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(&events[0], Event::Oversize { head, .. } if head.starts_with(b"MSH|^~\\&|")));
    assert_eq!(events[1], Event::OversizeEnd { len: sent });
    assert_eq!(events[2], frame(b"MSH|next"));
}

fn decode_chunk(decoder: &mut Decoder, mut input: &[u8]) -> Vec<Event> {
    std::iter::from_fn(|| decoder.decode(&mut input)).collect()
}

#[test]
fn start_block_inside_an_oversize_frame_truncates_it() {
    let events = decode_with_limit(2, &[b"\x0babcdef\x0bok\x1c\r"]);
    let oversize = Event::Oversize {
        limit: 2,
        head: b"ab".to_vec(),
    };
    assert_eq!(
        events,
        [oversize, Event::Truncated { len: 6 }, frame(b"ok")]
    );
}

#[test]
fn finish_reports_an_incomplete_frame_and_resets_the_decoder() {
    let mut decoder = Decoder::new(100);
    let mut input: &[u8] = b"\x0bMSH|never ends";
    assert_eq!(decoder.decode(&mut input), None);
    assert_eq!(decoder.finish(), Some(Event::Incomplete { len: 14 }));
    assert_eq!(decoder.buffered_len(), 0);
    let events = decode_reads(&mut decoder, &[b"\x0bA\x1c\r"]);
    assert_eq!(events, [frame(b"A")]);
}

#[test]
fn finish_reports_the_total_length_of_an_incomplete_oversize_frame() {
    let events = decode_with_limit(2, &[b"\x0babc", b"defg"]);
    let oversize = Event::Oversize {
        limit: 2,
        head: b"ab".to_vec(),
    };
    assert_eq!(events, [oversize, Event::Incomplete { len: 7 }]);
}

#[test]
fn finish_after_complete_frames_reports_nothing() {
    let mut decoder = Decoder::new(100);
    let events = decode_chunk(&mut decoder, b"\x0bA\x1c");
    assert_eq!(events, [frame(b"A")]);
    assert_eq!(decoder.finish(), None);
}

#[test]
fn zero_limit_accepts_only_empty_frames() {
    let events = decode_with_limit(0, &[b"\x0b\x1c\r\x0bx\x1c\r"]);
    let oversize = Event::Oversize {
        limit: 0,
        head: Vec::new(),
    };
    assert_eq!(
        events,
        [frame(b""), oversize, Event::OversizeEnd { len: 1 }]
    );
}

#[test]
fn encode_wraps_the_payload_in_start_and_end_markers() {
    let mut out = b"prefix".to_vec();
    assert_eq!(encode(b"MSH|A", &mut out), Ok(()));
    assert_eq!(out, b"prefix\x0bMSH|A\x1c\r");
}

#[test]
fn encode_rejects_a_framing_byte_and_leaves_the_output_unchanged() {
    let mut out = Vec::new();
    let err = encode(b"MSH|\x1c|A", &mut out);
    let expected = EncodeError::FramingByte {
        byte: END_BLOCK,
        offset: 4,
    };
    assert_eq!(err, Err(expected));
    assert!(out.is_empty());
}

#[test]
fn debug_of_an_event_shows_lengths_but_not_payload_bytes() {
    let frame_debug = format!("{:?}", frame(b"PID|||12345^^^MRN||DOE^JANE"));
    let oversize = Event::Oversize {
        limit: 4,
        head: b"DOE^".to_vec(),
    };
    let oversize_debug = format!("{oversize:?}");
    assert_eq!(frame_debug, "Frame(len=27)");
    assert_eq!(oversize_debug, "Oversize { limit: 4, head_len: 4 }");
}
