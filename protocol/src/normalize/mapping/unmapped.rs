//! Counting mapped and unmapped codes per interface, for the unmapped-code
//! rate in telemetry.
//!
//! Codes and systems are terminology identifiers (e.g. `99LAB|GLU`), not
//! patient data, so they may be reported. Coded *answers* (OBX-5) are
//! patient data: they are counted with [`UnmappedCounter::record_unnamed`]
//! and never kept by name. A "code" with white space or a control
//! character is free text, not an identifier: counted, never kept.
//!
//! Invariants (memory is bounded whatever senders send):
//! - at most `max_distinct` distinct (system, code) keys are kept; once full,
//!   new keys are counted only in `untracked_total`;
//! - a system or code longer than [`MAX_KEY_BYTES`] is never kept as a key
//!   (also counted in `untracked_total`);
//! - `unmapped_total` is the sum of all per-key counts plus `untracked_total`
//!   (counters saturate instead of wrapping).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Distinct unmapped keys kept by [`UnmappedCounter::default`].
pub const DEFAULT_MAX_DISTINCT: usize = 1000;

/// Longest system or code kept as a key, in bytes.
const MAX_KEY_BYTES: usize = 128;

/// Mapped and unmapped counts for one interface (sans-IO; the caller decides
/// when to snapshot and clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedCounter {
    max_distinct: usize,
    distinct: usize,
    /// system → code → count.
    per_key: BTreeMap<String, BTreeMap<String, u64>>,
    mapped_total: u64,
    unmapped_total: u64,
    untracked_total: u64,
    unit_mismatch_total: u64,
}

/// One unmapped code and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmappedCode {
    /// The coding system as sent (may be empty).
    pub system: String,
    /// The code as sent.
    pub code: String,
    /// Occurrences since the last clear.
    pub count: u64,
}

/// A report of an [`UnmappedCounter`], for telemetry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmappedSnapshot {
    /// Codes that were mapped.
    pub mapped_total: u64,
    /// Codes that were not mapped (tracked or not).
    pub unmapped_total: u64,
    /// Unmapped occurrences not attributed to a key (bound reached or key too long).
    pub untracked_total: u64,
    /// Distinct unmapped keys kept.
    pub distinct_unmapped: u64,
    /// The most frequent unmapped codes, most frequent first (ties by system, code).
    pub top: Vec<UnmappedCode>,
    /// Results in a unit not commensurable with the one their code's
    /// mapping row expects.
    pub unit_mismatches: u64,
}

impl UnmappedCounter {
    /// A counter keeping at most `max_distinct` distinct unmapped keys.
    pub fn new(max_distinct: usize) -> UnmappedCounter {
        UnmappedCounter {
            max_distinct,
            distinct: 0,
            per_key: BTreeMap::new(),
            mapped_total: 0,
            unmapped_total: 0,
            untracked_total: 0,
            unit_mismatch_total: 0,
        }
    }

    /// Counts one code that was mapped.
    pub fn record_mapped(&mut self) {
        self.mapped_total = self.mapped_total.saturating_add(1);
    }

    /// Counts one code that was not mapped. Allocates only for a new key.
    pub fn record_unmapped(&mut self, system: &str, code: &str) {
        self.unmapped_total = self.unmapped_total.saturating_add(1);
        if let Some(count) = self
            .per_key
            .get_mut(system)
            .and_then(|codes| codes.get_mut(code))
        {
            *count = count.saturating_add(1);
            return;
        }
        let too_long = system.len() > MAX_KEY_BYTES || code.len() > MAX_KEY_BYTES;
        let text = |s: &str| s.chars().any(|c| c.is_whitespace() || c.is_control());
        if too_long || text(system) || text(code) || self.distinct >= self.max_distinct {
            self.untracked_total = self.untracked_total.saturating_add(1);
            return;
        }
        let codes = self.per_key.entry(system.to_owned()).or_default();
        codes.insert(code.to_owned(), 1);
        self.distinct += 1;
    }

    /// Counts results whose unit was not commensurable with the unit the
    /// mapping table expects for their code.
    pub fn record_unit_mismatches(&mut self, results: u32) {
        self.unit_mismatch_total = self.unit_mismatch_total.saturating_add(u64::from(results));
    }

    /// Results in an incommensurable unit since the last clear.
    pub fn unit_mismatch_total(&self) -> u64 {
        self.unit_mismatch_total
    }

    /// Counts `n` unmapped codes that must not be named (coded answers): in the totals only.
    pub fn record_unnamed(&mut self, n: u64) {
        self.unmapped_total = self.unmapped_total.saturating_add(n);
        self.untracked_total = self.untracked_total.saturating_add(n);
    }

    /// Codes mapped since the last clear.
    pub fn mapped_total(&self) -> u64 {
        self.mapped_total
    }

    /// Codes not mapped since the last clear.
    pub fn unmapped_total(&self) -> u64 {
        self.unmapped_total
    }

    /// Unmapped occurrences not attributed to a key.
    pub fn untracked_total(&self) -> u64 {
        self.untracked_total
    }

    /// Distinct unmapped keys kept.
    pub fn distinct_unmapped(&self) -> usize {
        self.distinct
    }

    /// How often (system, code) was counted unmapped (0 if not kept).
    pub fn count(&self, system: &str, code: &str) -> u64 {
        self.per_key
            .get(system)
            .and_then(|codes| codes.get(code))
            .copied()
            .unwrap_or(0)
    }

    /// Unmapped share of all counted codes, in 0.0..=1.0; `None` before any.
    pub fn unmapped_rate(&self) -> Option<f64> {
        let total = self.mapped_total.saturating_add(self.unmapped_total);
        // u64 -> f64 loses precision only past 2^53 codes, irrelevant for a rate.
        (total > 0).then(|| self.unmapped_total as f64 / total as f64)
    }

    /// The totals and the `top` most frequent unmapped codes.
    pub fn snapshot(&self, top: usize) -> UnmappedSnapshot {
        let mut codes: Vec<UnmappedCode> = self
            .per_key
            .iter()
            .flat_map(|(system, codes)| {
                codes.iter().map(move |(code, count)| UnmappedCode {
                    system: system.clone(),
                    code: code.clone(),
                    count: *count,
                })
            })
            .collect();
        codes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.system, &a.code).cmp(&(&b.system, &b.code)))
        });
        codes.truncate(top);
        UnmappedSnapshot {
            mapped_total: self.mapped_total,
            unmapped_total: self.unmapped_total,
            untracked_total: self.untracked_total,
            distinct_unmapped: u64::try_from(self.distinct).unwrap_or(u64::MAX),
            top: codes,
            unit_mismatches: self.unit_mismatch_total,
        }
    }

    /// Resets all counts (e.g. after a telemetry report), keeping the bound.
    pub fn clear(&mut self) {
        *self = UnmappedCounter::new(self.max_distinct);
    }
}

impl Default for UnmappedCounter {
    fn default() -> Self {
        UnmappedCounter::new(DEFAULT_MAX_DISTINCT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_mapped_and_unmapped_codes_and_the_rate() {
        let mut counter = UnmappedCounter::default();
        assert_eq!(counter.unmapped_rate(), None);
        for _ in 0..3 {
            counter.record_mapped();
        }
        counter.record_unmapped("99LAB", "XYZ");
        assert_eq!(counter.mapped_total(), 3);
        assert_eq!(counter.unmapped_total(), 1);
        assert_eq!(counter.unmapped_rate(), Some(0.25));
        assert_eq!(counter.count("99LAB", "XYZ"), 1);
        assert_eq!(counter.count("99LAB", "ABC"), 0);
    }

    #[test]
    fn repeated_codes_share_one_key() {
        let mut counter = UnmappedCounter::default();
        counter.record_unmapped("99LAB", "XYZ");
        counter.record_unmapped("99LAB", "XYZ");
        counter.record_unmapped("L", "XYZ");
        assert_eq!(counter.distinct_unmapped(), 2);
        assert_eq!(counter.count("99LAB", "XYZ"), 2);
        assert_eq!(counter.count("L", "XYZ"), 1);
    }

    #[test]
    fn distinct_keys_are_bounded_but_totals_keep_counting() {
        let mut counter = UnmappedCounter::new(3);
        for i in 0..10 {
            counter.record_unmapped("99LAB", &format!("C{i}"));
        }
        counter.record_unmapped("99LAB", "C0");
        assert_eq!(counter.distinct_unmapped(), 3);
        assert_eq!(counter.unmapped_total(), 11);
        assert_eq!(counter.untracked_total(), 7);
        assert_eq!(counter.count("99LAB", "C0"), 2);
        assert_eq!(counter.count("99LAB", "C9"), 0);
    }

    #[test]
    fn oversized_keys_are_counted_but_not_kept() {
        let mut counter = UnmappedCounter::default();
        counter.record_unmapped("99LAB", &"X".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(counter.distinct_unmapped(), 0);
        assert_eq!(counter.untracked_total(), 1);
        assert_eq!(counter.unmapped_total(), 1);
    }

    #[test]
    fn snapshot_lists_most_frequent_first_and_clear_resets() {
        let mut counter = UnmappedCounter::default();
        for (code, times) in [("A", 1), ("B", 3), ("C", 2), ("D", 3)] {
            for _ in 0..times {
                counter.record_unmapped("99LAB", code);
            }
        }
        counter.record_mapped();
        counter.record_unit_mismatches(2);
        let snapshot = counter.snapshot(3);
        assert_eq!(snapshot.unit_mismatches, 2);
        let top: Vec<(&str, u64)> = snapshot
            .top
            .iter()
            .map(|c| (c.code.as_str(), c.count))
            .collect();
        assert_eq!(top, [("B", 3), ("D", 3), ("C", 2)]);
        assert_eq!(snapshot.unmapped_total, 9);
        assert_eq!(snapshot.mapped_total, 1);
        assert_eq!(snapshot.distinct_unmapped, 4);
        counter.clear();
        assert_eq!(counter, UnmappedCounter::default());
    }
}
