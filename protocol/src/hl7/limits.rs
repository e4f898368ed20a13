//! How much of one message the gateway reads, and how many problems it
//! lists: the caps that keep the work and memory of one frame linear in its
//! size and small in absolute terms, whatever a sender sends.
//!
//! - **Segments**: a message of more than [`MAX_SEGMENTS`] segments is
//!   refused (AE, code 207, located at the first segment over the cap). Real
//!   messages hold a few hundred; a 1 MiB frame of typical segments about
//!   15,000. The cap also bounds what a record holds (orders and
//!   observations each come from one segment), see `crate::record::limits`.
//! - **Issues**: at most [`MAX_ISSUES`] issues are listed per message by
//!   validation, and normalization adds warnings only while the list is
//!   shorter than that. What is left out is never dropped silently: one
//!   summary issue ends the list, counting the omitted issues by code and
//!   located at the first of them, with the worst severity among them (an
//!   omitted error still makes the message unacceptable). Errors are
//!   listed before warnings when both compete for a place.
//!
//! Invariant: an [`Issues`] list never holds more than its limit plus one
//! summary, and memory for the omitted ones is a few counters.

use std::collections::BTreeMap;

use crate::hl7::issue::{ErrorCode, Issue, Location, Severity};
use crate::hl7::message::Message;

/// Most segments a message may have (MSH included).
pub const MAX_SEGMENTS: usize = 50_000;

/// Most issues listed per message; the rest are summarized in one more.
pub const MAX_ISSUES: usize = 256;

/// Most identifier repetitions of one patient (PID-2, PID-3 and PID-4 of a
/// PID together) and of the merged identities (MRG-1 and MRG-4 of every
/// MRG together); a message with more is refused (AE, 207, located at the
/// repetition over the cap).
pub const MAX_IDENTIFIERS: usize = 100;

/// The error for a message of more than [`MAX_SEGMENTS`] segments, located
/// at the first segment over the cap; `None` when the message is within it.
pub fn too_many_segments(msg: &Message<'_>) -> Option<Issue> {
    let first_over = msg.segment_at(MAX_SEGMENTS)?;
    Some(Issue::error(
        ErrorCode::InternalError,
        crate::hl7::validate::segment_location(&first_over),
        format!(
            "the message has {} segments; this gateway accepts at most {MAX_SEGMENTS} per message",
            msg.segment_count()
        ),
    ))
}

/// A list of issues that keeps at most a limit and counts the rest.
#[derive(Debug, Clone)]
pub struct Issues {
    limit: usize,
    listed: Vec<Issue>,
    /// How many of `listed` are not errors (places an error may take).
    not_errors: usize,
    omitted: Omitted,
}

impl Default for Issues {
    fn default() -> Self {
        Issues::new(MAX_ISSUES)
    }
}

impl Issues {
    /// An empty list that keeps at most `limit` issues.
    pub fn new(limit: usize) -> Self {
        Issues {
            limit,
            listed: Vec::new(),
            not_errors: 0,
            omitted: Omitted::default(),
        }
    }

    /// Adds an issue: listed while there is room (an error takes the place
    /// of the latest listed non-error when there is none), else counted.
    pub fn push(&mut self, issue: Issue) {
        let is_error = issue.severity == Severity::Error;
        if self.listed.len() < self.limit {
            self.not_errors += usize::from(!is_error);
            self.listed.push(issue);
            return;
        }
        if is_error
            && self.not_errors > 0
            && let Some(at) = self
                .listed
                .iter()
                .rposition(|i| i.severity != Severity::Error)
        {
            let evicted = self.listed.remove(at);
            self.not_errors -= 1;
            self.omitted.add(&evicted);
            self.listed.push(issue);
            return;
        }
        self.omitted.add(&issue);
    }

    /// A warning built only when it would be listed: past the limit only
    /// its code and place are counted (for problems found per repetition,
    /// where a frame may hold hundreds of thousands).
    pub fn warn_with(
        &mut self,
        code: ErrorCode,
        location: impl FnOnce() -> Location,
        message: impl FnOnce() -> String,
    ) {
        if self.listed.len() < self.limit {
            self.push(Issue::warning(code, location(), message()));
        } else {
            self.omitted.add_warning(code, location);
        }
    }

    /// Adds every issue of `issues`.
    pub fn extend(&mut self, issues: impl IntoIterator<Item = Issue>) {
        for issue in issues {
            self.push(issue);
        }
    }

    /// The issues listed so far.
    pub fn listed(&self) -> &[Issue] {
        &self.listed
    }

    /// How many issues were left out so far.
    pub fn omitted(&self) -> u64 {
        self.omitted.count
    }

    /// The listed issues, then the summary of the omitted ones (if any).
    pub fn into_vec(self) -> Vec<Issue> {
        let mut out = self.listed;
        out.extend(self.omitted.summary(self.limit));
        out
    }
}

/// Issues left out of a list: how many, by code, and the worst of them.
#[derive(Debug, Clone, Default)]
pub struct Omitted {
    count: u64,
    by_code: BTreeMap<u16, (ErrorCode, u64)>,
    /// The first omitted issue of the worst severity seen: its severity,
    /// code and place.
    worst: Option<(Severity, ErrorCode, Location)>,
}

impl Omitted {
    /// Counts one more omitted issue.
    pub fn add(&mut self, issue: &Issue) {
        self.count += 1;
        self.by_code
            .entry(issue.code.code())
            .or_insert((issue.code, 0))
            .1 += 1;
        if self.worst.as_ref().is_none_or(|w| issue.severity > w.0) {
            self.worst = Some((issue.severity, issue.code, issue.location.clone()));
        }
    }

    /// Counts one more omitted warning; its place is built only when it is
    /// the worst omitted so far.
    fn add_warning(&mut self, code: ErrorCode, location: impl FnOnce() -> Location) {
        self.count += 1;
        self.by_code.entry(code.code()).or_insert((code, 0)).1 += 1;
        if self.worst.as_ref().is_none_or(|w| Severity::Warning > w.0) {
            self.worst = Some((Severity::Warning, code, location()));
        }
    }

    /// The one issue that stands for all omitted ones, `None` when none
    /// was omitted. Its text counts them by code (no values: codes only).
    pub fn summary(&self, limit: usize) -> Option<Issue> {
        let (severity, code, location) = self.worst.clone()?;
        let counts: Vec<String> = self
            .by_code
            .iter()
            .map(|(n, (c, count))| format!("{count} of code {n} ({})", c.description()))
            .collect();
        let message = format!(
            "{} more issues not listed (at most {limit} are listed per message): {}; the first of the most severe is at this place",
            self.count,
            counts.join(", ")
        );
        Some(Issue {
            code,
            severity,
            location,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(seq: usize) -> Issue {
        Issue::warning(
            ErrorCode::DataType,
            Location::segment("OBX", seq).field(5),
            "not a number",
        )
    }

    fn error(seq: usize) -> Issue {
        Issue::error(
            ErrorCode::SegmentSequence,
            Location::segment("", seq),
            "bad segment id",
        )
    }

    #[test]
    fn issues_past_the_limit_are_summarized_by_code_at_the_first_omitted_place() {
        let mut list = Issues::new(3);
        for seq in 1..=10 {
            list.push(warning(seq));
        }
        list.push(Issue::warning(
            ErrorCode::TableValueNotFound,
            Location::segment("OBX", 11).field(8),
            "flag",
        ));
        assert_eq!(list.omitted(), 8);
        let issues = list.into_vec();
        assert_eq!(issues.len(), 4);
        let summary = issues.last().expect("a summary");
        assert_eq!(summary.severity, Severity::Warning);
        assert_eq!(summary.code, ErrorCode::DataType);
        assert_eq!(summary.location, Location::segment("OBX", 4).field(5));
        assert_eq!(
            summary.message,
            "8 more issues not listed (at most 3 are listed per message): \
             7 of code 102 (Data type error), 1 of code 103 (Table value not found); \
             the first of the most severe is at this place"
        );
    }

    #[test]
    fn an_error_past_the_limit_takes_a_warnings_place_and_an_omitted_error_stays_an_error() {
        let mut list = Issues::new(2);
        list.push(warning(1));
        list.push(warning(2));
        list.push(error(3));
        list.push(error(4));
        list.push(error(5));
        let issues = list.into_vec();
        let kinds: Vec<(Severity, u32)> = issues
            .iter()
            .map(|i| (i.severity, i.location.segment_sequence))
            .collect();
        assert_eq!(
            kinds,
            [
                (Severity::Error, 3),
                (Severity::Error, 4),
                (Severity::Error, 5)
            ],
            "both warnings gave way, the third error is summarized"
        );
        assert!(
            issues
                .last()
                .is_some_and(|s| s.message.starts_with("3 more"))
        );
    }

    #[test]
    fn a_list_within_its_limit_has_no_summary() {
        let mut list = Issues::new(2);
        list.push(warning(1));
        assert_eq!(list.into_vec(), vec![warning(1)]);
    }
}
