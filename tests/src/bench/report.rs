//! The benchmark's result table: one row per figure with its target, the measured value and
//! whether the target was met, plus latency percentiles.

use std::fmt;
use std::time::Duration;

/// Which way a target points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The measured value must be at least the target.
    AtLeast(f64),
    /// The measured value must be at most the target.
    AtMost(f64),
    /// No target: informational.
    None,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The unit of target and value.
    pub unit: String,
    /// The target.
    pub goal: Goal,
    /// The measured value (`None`: not measured, e.g. the phase failed).
    pub value: Option<f64>,
    /// A short remark (sample size, conditions).
    pub note: String,
}

impl Row {
    /// A row.
    pub fn new(name: &str, unit: &str, goal: Goal, value: Option<f64>, note: &str) -> Row {
        Row {
            name: name.to_owned(),
            unit: unit.to_owned(),
            goal,
            value,
            note: note.to_owned(),
        }
    }

    /// `pass`, `MISS`, `info`, or `n/a` when nothing was measured.
    pub fn verdict(&self) -> &'static str {
        match (self.goal, self.value) {
            (_, None) => "n/a",
            (Goal::None, Some(_)) => "info",
            (Goal::AtLeast(t), Some(v)) if v >= t => "pass",
            (Goal::AtMost(t), Some(v)) if v <= t => "pass",
            _ => "MISS",
        }
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.goal {
            Goal::AtLeast(t) => format!(">= {t} {}", self.unit),
            Goal::AtMost(t) => format!("<= {t} {}", self.unit),
            Goal::None => "-".to_owned(),
        };
        let value = self
            .value
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.1} {}", self.unit));
        write!(
            f,
            "| {:<44} | {:>18} | {:>18} | {:<4} | {}",
            self.name,
            target,
            value,
            self.verdict(),
            self.note
        )
    }
}

/// Prints the table with a header.
pub fn print_table(rows: &[Row]) {
    println!(
        "| {:<44} | {:>18} | {:>18} | {:<4} | note",
        "figure", "target", "measured", ""
    );
    println!("|{}|", "-".repeat(100));
    for row in rows {
        println!("{row}");
    }
}

/// The `q`-quantile (0.0 to 1.0, nearest rank) of `samples`, sorting them; `None` when empty.
pub fn quantile(samples: &mut [Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let last = samples.len() - 1;
    // Nearest rank: ceil(q * n) - 1, clamped to the slice.
    let rank = (q.clamp(0.0, 1.0) * samples.len() as f64).ceil() as usize;
    samples.get(rank.saturating_sub(1).min(last)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_past_an_upper_bound_is_a_miss() {
        let row = Row::new("p99", "ms", Goal::AtMost(2.0), Some(2.5), "");
        assert_eq!(row.verdict(), "MISS");
        let row = Row::new("p99", "ms", Goal::AtMost(2.0), Some(1.5), "");
        assert_eq!(row.verdict(), "pass");
    }

    #[test]
    fn a_rate_below_its_target_is_a_miss_and_an_unmeasured_row_is_na() {
        let low = Row::new("rate", "msg/s", Goal::AtLeast(20000.0), Some(9000.0), "");
        assert_eq!(low.verdict(), "MISS");
        let none = Row::new("rate", "msg/s", Goal::AtLeast(20000.0), None, "");
        assert_eq!(none.verdict(), "n/a");
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        samples.reverse();
        assert_eq!(quantile(&mut samples, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(
            quantile(&mut samples, 0.99),
            Some(Duration::from_millis(99))
        );
        assert_eq!(
            quantile(&mut samples, 1.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
