//! The audit lines of one transaction: what it received and answered, and what the broker
//! acknowledged, as ranges per interface, never one line per message (one small insert per
//! commit keeps the hot path cheap). Pure: built from a batch and its results.
//!
//! No PHI: interface names, counts, sequence numbers, quarantine entry ids and refusal causes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    error::StoreError,
    request::{Batch, BatchResults, Inserted},
};

/// Most ranges written out per list; the rest are counted.
const MAX_RANGES: usize = 8;

/// Per interface, what one transaction did with the messages it received.
#[derive(Debug, Default)]
struct Received {
    stored: Vec<i64>,
    resends: u64,
    quarantined: Vec<i64>,
    refused: BTreeMap<&'static str, u64>,
}

/// `messages.received`: per interface, stored seqs (AA), resends (stored ACK), quarantine entry
/// ids (AE) and refusals (AR, by cause); `None` when the batch received nothing.
pub(crate) fn received_line(batch: &Batch, results: &BatchResults) -> Option<String> {
    let mut by_source: BTreeMap<&str, Received> = BTreeMap::new();
    for (p, r) in batch.inserts.iter().zip(&results.inserts) {
        let s = by_source.entry(p.req.source.as_str()).or_default();
        match r {
            Ok(Inserted::Stored { seq, .. }) => s.stored.push(*seq),
            Ok(Inserted::Duplicate { .. }) => s.resends += 1,
            Err(e) => *s.refused.entry(refusal_kind(e)).or_default() += 1,
        }
    }
    for (p, r) in batch.quarantines.iter().zip(&results.quarantines) {
        let s = by_source.entry(p.req.source.as_str()).or_default();
        match r {
            Ok(id) => s.quarantined.push(*id),
            Err(e) => *s.refused.entry(refusal_kind(e)).or_default() += 1,
        }
    }
    if by_source.is_empty() {
        return None;
    }
    let parts: Vec<String> = by_source
        .iter()
        .map(|(source, r)| {
            let mut words = Vec::new();
            if !r.stored.is_empty() {
                words.push(format!(
                    "{} stored (AA) seq {}",
                    r.stored.len(),
                    ranges(&r.stored)
                ));
            }
            if r.resends > 0 {
                words.push(format!("{} resent (stored ACK)", r.resends));
            }
            if !r.quarantined.is_empty() {
                words.push(format!(
                    "{} quarantined (AE) entries {}",
                    r.quarantined.len(),
                    ranges(&r.quarantined)
                ));
            }
            for (cause, n) in &r.refused {
                words.push(format!("{n} refused (AR, {cause})"));
            }
            format!("{source}: {}", words.join(", "))
        })
        .collect();
    Some(parts.join("; "))
}

/// `records.forwarded`: the seqs the broker acknowledged; `None` when there were none.
pub(crate) fn forwarded_line(batch: &Batch, results: &BatchResults) -> Option<String> {
    let found: u64 = results.forwarded.iter().sum();
    if found == 0 {
        return None;
    }
    let mut seqs: Vec<i64> = batch
        .forwarded
        .iter()
        .flat_map(|p| p.req.seqs.iter().copied())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    Some(format!(
        "{found} acknowledged by the broker: seq {}",
        ranges(&seqs)
    ))
}

fn refusal_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Full { cause } => cause.kind(),
        _ => "error",
    }
}

/// `1-3, 7, 9-10` for sorted numbers (at most [`MAX_RANGES`] ranges, then a count).
fn ranges(sorted: &[i64]) -> String {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &n in sorted {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(n) => *last = n,
            _ => runs.push((n, n)),
        }
    }
    let mut out = String::new();
    for (i, (a, b)) in runs.iter().take(MAX_RANGES).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if a == b {
            let _ = write!(out, "{a}");
        } else {
            let _ = write!(out, "{a}-{b}");
        }
    }
    if runs.len() > MAX_RANGES {
        let _ = write!(out, " and {} more ranges", runs.len() - MAX_RANGES);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_ranges_and_long_lists_are_counted() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        let scattered: Vec<i64> = (0..20).map(|n| n * 2).collect();
        assert!(ranges(&scattered).ends_with("and 12 more ranges"));
    }
}
