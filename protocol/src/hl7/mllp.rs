//! MLLP framing: a sans-IO streaming decoder and an encoder for frames
//! `0x0B <payload> 0x1C 0x0D`.
//!
//! # Shape
//!
//! The caller owns the reading. After each read it hands the bytes to
//! [`Decoder::decode`] as a `&mut &[u8]` and calls it until it returns `None`;
//! each call consumes input and returns at most one [`Event`]. `None` means
//! every byte of the input was consumed, so nothing is lost between reads:
//!
//! ```
//! use hl7edge_protocol::hl7::mllp::{Decoder, Event};
//!
//! let mut decoder = Decoder::new(1024);
//! let mut seen = Vec::new();
//! for read in [&b"\x0bMSH|^~\\&|A"[..], &b"\x1c\r\x0bMSH|B\x1c\r"[..]] {
//!     let mut input = read;
//!     while let Some(event) = decoder.decode(&mut input) {
//!         seen.push(event);
//!     }
//! }
//! assert_eq!(seen, [Event::Frame(b"MSH|^~\\&|A".to_vec()), Event::Frame(b"MSH|B".to_vec())]);
//! assert_eq!(decoder.finish(), None);
//! ```
//!
//! At the end of the stream the caller calls [`Decoder::finish`], which
//! reports what was left over (an incomplete frame or unreported garbage) and
//! resets the decoder.
//!
//! # Invariants
//!
//! - Memory is bounded by the frame-size limit: the decoder never holds more
//!   than `max_frame_len` payload bytes (length and capacity), whatever the
//!   input. It keeps no input of its own; bytes it has not consumed stay in
//!   the caller's slice.
//! - Events depend only on the byte stream, never on how it was cut into
//!   reads: feeding a stream whole or byte by byte gives the same events.
//! - Every input byte is scanned once (`memchr`), so decoding is linear.
//!
//! # Rules for imperfect input
//!
//! - **Garbage.** Bytes outside a frame are skipped up to the next `0x0B` and
//!   reported as [`Event::Garbage`] when the run ends (at that `0x0B` or at
//!   [`Decoder::finish`]), or every [`GARBAGE_REPORT_LEN`] bytes for a long
//!   run, so a sender that never frames its data is still seen.
//! - **End marker.** `0x1C` ends the payload and the frame is reported at
//!   once; a `0x0D` right after it is consumed as the rest of the end marker.
//!   Any other byte after `0x1C` is read as outside a frame: a `0x0B` starts
//!   the next frame, anything else is garbage. So a sender that omits the CR
//!   is served without waiting for a byte that never comes, and its next
//!   frame is not disturbed. MLLP forbids `0x1C` inside a payload, so this
//!   cannot split a conforming message.
//! - **Restart.** A `0x0B` inside a frame followed by the start of a message
//!   (`MSH`, `FHS`, `BHS` or a UTF-8 byte order mark) means the sender started
//!   over: the partial frame is dropped and reported as [`Event::Truncated`],
//!   and the `0x0B` starts a new frame. Any other `0x0B` inside a frame is
//!   content (MS Word's manual line break is that byte, and pasted report
//!   text carries it): it stays in the payload, where validation can flag
//!   it. The decision waits for the three bytes after the `0x0B`, so it does
//!   not depend on how the stream was cut.
//! - **Oversize.** When a payload grows past `max_frame_len` the decoder
//!   reports [`Event::Oversize`] with the first [`OVERSIZE_HEAD_LEN`] bytes
//!   (enough to read the MSH and build an AR NAK), then discards the rest of
//!   that frame without keeping it, and reports [`Event::OversizeEnd`] with
//!   the total payload length when its `0x1C` arrives.
//!
//! [`Event`]'s `Debug` shows lengths, never payload bytes: payloads carry PHI.

use std::fmt;

use memchr::{memchr, memchr2};
use thiserror::Error;

/// Start block byte (VT) that opens a frame.
pub const START_BLOCK: u8 = 0x0B;
/// End block byte (FS) that closes a payload.
pub const END_BLOCK: u8 = 0x1C;
/// Carriage return that follows [`END_BLOCK`] in a well-formed frame.
pub const CARRIAGE_RETURN: u8 = 0x0D;
/// How many leading payload bytes an [`Event::Oversize`] keeps.
pub const OVERSIZE_HEAD_LEN: usize = 4096;
/// A garbage run is reported at least every this many bytes.
pub const GARBAGE_REPORT_LEN: usize = 64 * 1024;

/// Smallest capacity the payload buffer grows to, to avoid tiny reallocations.
const MIN_BUFFER_CAPACITY: usize = 1024;

/// What the decoder found in the byte stream.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete frame: its payload, without start and end markers.
    Frame(Vec<u8>),
    /// Bytes outside any frame were skipped (never more than
    /// [`GARBAGE_REPORT_LEN`] per event).
    Garbage {
        /// Number of bytes skipped.
        skipped: usize,
    },
    /// The frame in progress grew past the limit; the decoder now discards
    /// the rest of it and reports [`Event::OversizeEnd`] at its end.
    Oversize {
        /// The configured maximum payload length.
        limit: usize,
        /// The first `min(limit, OVERSIZE_HEAD_LEN)` payload bytes.
        head: Vec<u8>,
    },
    /// The end marker of an oversize frame arrived.
    OversizeEnd {
        /// Total payload length of the discarded frame.
        len: u64,
    },
    /// A `0x0B` followed by the start of a message arrived inside a frame
    /// (or one that no longer fit): the partial frame was dropped and a new
    /// frame started.
    Truncated {
        /// Payload bytes the dropped frame had received.
        len: u64,
    },
    /// The stream ended inside a frame (only from [`Decoder::finish`]).
    Incomplete {
        /// Payload bytes the unfinished frame had received.
        len: u64,
    },
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Frame(payload) => write!(f, "Frame(len={})", payload.len()),
            Event::Garbage { skipped } => write!(f, "Garbage {{ skipped: {skipped} }}"),
            Event::Oversize { limit, head } => {
                write!(f, "Oversize {{ limit: {limit}, head_len: {} }}", head.len())
            }
            Event::OversizeEnd { len } => write!(f, "OversizeEnd {{ len: {len} }}"),
            Event::Truncated { len } => write!(f, "Truncated {{ len: {len} }}"),
            Event::Incomplete { len } => write!(f, "Incomplete {{ len: {len} }}"),
        }
    }
}

/// Why a payload cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The payload contains a framing byte (`0x0B` or `0x1C`), which would
    /// make the receiver cut the message apart.
    #[error("payload contains MLLP framing byte {byte:#04x} at offset {offset}")]
    FramingByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the payload.
        offset: usize,
    },
}

/// Appends the MLLP frame of `payload` to `out`.
///
/// Fails, leaving `out` unchanged, if the payload contains `0x0B` or `0x1C`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if let Some(offset) = memchr2(START_BLOCK, END_BLOCK, payload) {
        let byte = payload.get(offset).copied().unwrap_or_default();
        return Err(EncodeError::FramingByte { byte, offset });
    }
    out.reserve(payload.len() + 3);
    out.push(START_BLOCK);
    out.extend_from_slice(payload);
    out.extend_from_slice(&[END_BLOCK, CARRIAGE_RETURN]);
    Ok(())
}

/// Where the decoder is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside frames; `skipped` bytes of the current garbage run unreported.
    Idle { skipped: usize },
    /// Inside a frame; its payload so far is in `Decoder::payload`.
    Payload,
    /// Inside an oversize frame; `len` payload bytes seen, none kept.
    Discarding { len: u64 },
    /// Right after `0x1C`: a `0x0D` here belongs to the end marker.
    AfterEnd,
}

/// Streaming MLLP frame decoder; see the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame_len: usize,
    state: State,
    payload: Vec<u8>,
    /// Where in `payload` a `0x0B` sits whose next three bytes have not all
    /// arrived: a restart if they start a message, content otherwise.
    inner_start: Option<usize>,
}

/// How many bytes after an inner `0x0B` decide whether it is a restart.
const RESTART_PROBE_LEN: usize = 3;

/// Whether `probe` (the bytes after a `0x0B` inside a frame) starts a
/// message: the sender started over.
fn starts_a_message(probe: &[u8]) -> bool {
    matches!(probe, b"MSH" | b"FHS" | b"BHS" | [0xEF, 0xBB, 0xBF])
}

impl Decoder {
    /// Creates a decoder that accepts payloads of at most `max_frame_len`
    /// bytes (markers not counted).
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            state: State::Idle { skipped: 0 },
            payload: Vec::new(),
            inner_start: None,
        }
    }

    /// The configured maximum payload length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Payload bytes held for the frame in progress (never more than
    /// [`Decoder::max_frame_len`]).
    pub fn buffered_len(&self) -> usize {
        self.payload.len()
    }

    /// Consumes bytes from the front of `input` until it has an event.
    ///
    /// Returns `None` only once `input` is empty; call it again after each
    /// event until then.
    pub fn decode(&mut self, input: &mut &[u8]) -> Option<Event> {
        while !input.is_empty() {
            let event = match self.state {
                State::Idle { skipped } => self.skip_garbage(skipped, input),
                State::Payload => self.read_payload(input),
                State::Discarding { len } => self.discard(len, input),
                State::AfterEnd => self.finish_end_marker(input),
            };
            if event.is_some() {
                return event;
            }
        }
        None
    }

    /// Ends the stream: reports what is left over, if anything, and resets
    /// the decoder to its initial state.
    ///
    /// Returns [`Event::Incomplete`] when the stream stopped inside a frame,
    /// [`Event::Garbage`] for an unreported garbage run, `None` otherwise.
    pub fn finish(&mut self) -> Option<Event> {
        let leftover = match self.state {
            State::Idle { skipped } if skipped > 0 => Some(Event::Garbage { skipped }),
            State::Idle { .. } | State::AfterEnd => None,
            State::Payload => Some(Event::Incomplete {
                len: len_u64(self.payload.len()),
            }),
            State::Discarding { len } => Some(Event::Incomplete { len }),
        };
        self.state = State::Idle { skipped: 0 };
        self.payload = Vec::new();
        self.inner_start = None;
        leftover
    }

    /// Skips garbage up to the next start byte or the report length.
    fn skip_garbage(&mut self, skipped: usize, input: &mut &[u8]) -> Option<Event> {
        let room = GARBAGE_REPORT_LEN.saturating_sub(skipped);
        let window = input.get(..room).unwrap_or(input);
        let (garbage, started) = match memchr(START_BLOCK, window) {
            Some(at) => (at, true),
            None => (window.len(), false),
        };
        let skipped = skipped + garbage;
        advance(input, garbage + usize::from(started));
        if started {
            self.start_frame();
        } else if skipped < GARBAGE_REPORT_LEN {
            self.state = State::Idle { skipped };
            return None;
        } else {
            self.state = State::Idle { skipped: 0 };
        }
        (skipped > 0).then_some(Event::Garbage { skipped })
    }

    /// Copies payload bytes up to a marker, or detects an oversize payload.
    fn read_payload(&mut self, input: &mut &[u8]) -> Option<Event> {
        let room = self.max_frame_len.saturating_sub(self.payload.len());
        let window = input.get(..=room).unwrap_or(input);
        let Some(at) = memchr2(START_BLOCK, END_BLOCK, window) else {
            // Take what fits first: those bytes may decide an inner 0x0B
            // (a restart gives the new frame the whole limit again).
            let fit = window.len().min(room);
            self.append(window.get(..fit).unwrap_or_default());
            advance(input, fit);
            if let Some(truncated) = self.probe_restart() {
                return Some(truncated);
            }
            if window.len() > room {
                return Some(self.start_discarding(input));
            }
            return None;
        };
        let (data, marker) = window.split_at(at);
        let is_end = marker.first() == Some(&END_BLOCK);
        self.append(data);
        advance(input, at);
        // A restart decided by these bytes comes before the marker's event;
        // the marker stays in the input for the next call.
        if let Some(truncated) = self.probe_restart() {
            return Some(truncated);
        }
        advance(input, 1);
        if is_end {
            // Fewer than three bytes followed an inner 0x0B: content.
            self.inner_start = None;
            self.state = State::AfterEnd;
            Some(Event::Frame(std::mem::take(&mut self.payload)))
        } else if at < room {
            // Kept as content until its next bytes say otherwise; an
            // earlier undecided 0x0B is content, since this one follows it.
            self.inner_start = Some(self.payload.len());
            self.append(&[START_BLOCK]);
            None
        } else {
            // No room left to keep it: the sender must be starting over.
            let len = len_u64(self.payload.len());
            self.start_frame();
            Some(Event::Truncated { len })
        }
    }

    /// Decides an inner `0x0B` once the bytes after it have arrived: when
    /// they start a message, drops what came before it and reports
    /// [`Event::Truncated`]; otherwise it stays as content.
    fn probe_restart(&mut self) -> Option<Event> {
        let at = self.inner_start?;
        let probe = self.payload.get(at + 1..)?.get(..RESTART_PROBE_LEN)?;
        self.inner_start = None;
        if !starts_a_message(probe) {
            return None;
        }
        self.payload.drain(..=at);
        Some(Event::Truncated { len: len_u64(at) })
    }

    /// Switches to discarding: the payload is full and one more byte (the
    /// first of `input`, consumed here) does not fit.
    fn start_discarding(&mut self, input: &mut &[u8]) -> Event {
        self.inner_start = None;
        let len = len_u64(self.max_frame_len).saturating_add(1);
        advance(input, 1);
        self.state = State::Discarding { len };
        let mut head = std::mem::take(&mut self.payload);
        head.truncate(OVERSIZE_HEAD_LEN);
        head.shrink_to_fit();
        Event::Oversize {
            limit: self.max_frame_len,
            head,
        }
    }

    /// Drops oversize payload bytes up to a marker.
    fn discard(&mut self, len: u64, input: &mut &[u8]) -> Option<Event> {
        let Some(at) = memchr2(START_BLOCK, END_BLOCK, input) else {
            self.state = State::Discarding {
                len: len.saturating_add(len_u64(input.len())),
            };
            advance(input, input.len());
            return None;
        };
        let len = len.saturating_add(len_u64(at));
        let is_end = input.get(at) == Some(&END_BLOCK);
        advance(input, at + 1);
        if is_end {
            self.state = State::AfterEnd;
            Some(Event::OversizeEnd { len })
        } else {
            self.start_frame();
            Some(Event::Truncated { len })
        }
    }

    /// Consumes the CR of an end marker if it is there.
    fn finish_end_marker(&mut self, input: &mut &[u8]) -> Option<Event> {
        if input.first() == Some(&CARRIAGE_RETURN) {
            advance(input, 1);
        }
        self.state = State::Idle { skipped: 0 };
        None
    }

    /// Begins a new frame after its start byte was consumed.
    fn start_frame(&mut self) {
        self.payload.clear();
        self.inner_start = None;
        self.state = State::Payload;
    }

    /// Appends payload bytes, growing capacity without passing the limit.
    /// Callers never append past `max_frame_len`.
    fn append(&mut self, data: &[u8]) {
        let needed = self.payload.len() + data.len();
        if needed > self.payload.capacity() {
            let target = needed
                .max(self.payload.capacity() * 2)
                .max(MIN_BUFFER_CAPACITY)
                .min(self.max_frame_len)
                .max(needed);
            self.payload.reserve_exact(target - self.payload.len());
        }
        self.payload.extend_from_slice(data);
    }
}

/// Drops the first `n` bytes of `input` (all of them if it is shorter).
fn advance(input: &mut &[u8], n: usize) {
    *input = input.get(n..).unwrap_or_default();
}

/// Widens a length for counters that may pass `usize` on 32-bit targets.
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
