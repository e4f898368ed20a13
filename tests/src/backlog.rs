//! Filling the agent's queue until it refuses: the first half of every disk-limit test (the
//! store's `max_bytes`, a full filesystem).
//!
//! Invariant: only AA and AR are acceptable answers here; anything else (AE, no answer) fails
//! the test at once, so a store error can never pass for "full".

use crate::hl7gen::{self, Kind};
use crate::mllp::{AckCode, Sender};

/// Sends lab message `n` (from `lis`) once; `true` if the agent refused it with AR, `false` if
/// it ACKed it. Panics on any other outcome.
pub async fn refused_with_ar(sender: &mut Sender, n: u64) -> bool {
    let outcome = sender.send(&hl7gen::message(Kind::Lab, "lis", n)).await;
    match outcome.ack.as_ref().map(|a| a.code) {
        Some(AckCode::AR) => true,
        Some(AckCode::AA) => false,
        _ => panic!("message {n}: expected AA or AR, got {outcome:?}"),
    }
}

/// Sends lab messages `0, 1, ...` one at a time until the first AR and returns how many were
/// ACKed before it. Panics when none of the first `at_most` is refused, or when fewer than
/// `min_acked` were ACKed first (the queue filled suspiciously early).
pub async fn fill_until_ar(sender: &mut Sender, at_most: u64, min_acked: u64) -> u64 {
    let mut n = 0;
    while !refused_with_ar(sender, n).await {
        n += 1;
        assert!(n < at_most, "{at_most} messages ACKed, none refused");
    }
    assert!(
        n >= min_acked,
        "refused after only {n} messages (expected at least {min_acked})"
    );
    n
}
