//! The result model of `doctor`: one [`Check`] per thing a technician would otherwise verify by
//! hand, and the [`Report`] that renders them for people or as JSON.
//!
//! Pure: no IO here. Invariants: every WARN and FAIL carries a fix in plain words; a check that
//! could not run because an earlier one failed is listed as not run (SKIP), never left out; the
//! report passes (exit code 0) exactly when no check failed (warnings and skips do not fail it).

use std::fmt::Write as _;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing to do.
    Ok,
    /// Works now, but needs attention soon (e.g. a certificate expiring within 30 days).
    Warn,
    /// Broken: the gateway cannot work like this.
    Fail,
    /// Not run, because a check it depends on failed (named in the detail).
    Skipped,
}

impl Outcome {
    /// The label printed in front of the check.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "SKIP",
        }
    }
}

/// One check and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name, e.g. `device key permissions`.
    pub name: String,
    /// The result.
    pub outcome: Outcome,
    /// What was found, in plain words.
    pub detail: String,
    /// What to do about it; empty for OK.
    pub fix: String,
}

impl Check {
    /// A passed check.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check::new(name, Outcome::Ok, detail, String::new())
    }

    /// A warning with its fix.
    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Outcome::Warn, detail, fix)
    }

    /// A check not run because `cause` failed first; its fix is that check's.
    pub fn skipped(name: impl Into<String>, cause: &str) -> Check {
        Check::new(
            name,
            Outcome::Skipped,
            format!("not run: {cause}"),
            String::new(),
        )
    }

    /// A failure with its fix.
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(name, Outcome::Fail, detail, fix)
    }

    fn new(
        name: impl Into<String>,
        outcome: Outcome,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            outcome,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

/// All checks of one `doctor` run, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Adds checks at the end.
    pub fn extend(&mut self, checks: impl IntoIterator<Item = Check>) {
        self.checks.extend(checks);
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// How many checks had `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// The report for people: one line per check, the fix indented below each non-OK check, and
    /// a summary line.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{:<4}  {:<width$}  {}",
                check.outcome.label(),
                check.name,
                check.detail
            );
            if !check.fix.is_empty() {
                let _ = writeln!(out, "{:<4}  {:<width$}  fix: {}", "", "", check.fix);
            }
        }
        let _ = write!(
            out,
            "\n{} OK, {} WARN, {} FAIL",
            self.count(Outcome::Ok),
            self.count(Outcome::Warn),
            self.count(Outcome::Fail)
        );
        let skipped = self.count(Outcome::Skipped);
        if skipped > 0 {
            let _ = write!(out, ", {skipped} not run");
        }
        out.push('\n');
        out
    }

    /// The report for machines: `{"passed": bool, "checks": [{name, outcome, detail, fix}]}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            passed: bool,
            checks: &'a [Check],
        }
        let json = Json {
            passed: self.passed(),
            checks: &self.checks,
        };
        serde_json::to_string_pretty(&json).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            checks: vec![
                Check::ok("config", "/etc/hl7edge/hl7edge.toml parses"),
                Check::warn(
                    "certificate expiry",
                    "expires in 12 days",
                    "ask central IT for a renewed certificate",
                ),
            ],
        }
    }

    #[test]
    fn warnings_alone_pass_and_one_failure_fails() {
        let mut report = sample();
        assert!(report.passed());
        report.extend([Check::fail("device key", "mode 0644", "chmod 600 /k")]);
        assert!(!report.passed());
        assert_eq!(report.count(Outcome::Fail), 1);
    }

    #[test]
    fn text_aligns_names_and_puts_the_fix_under_the_check() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "OK    config              /etc/hl7edge/hl7edge.toml parses"
        );
        assert_eq!(lines[1], "WARN  certificate expiry  expires in 12 days");
        assert_eq!(
            lines[2],
            "                          fix: ask central IT for a renewed certificate"
        );
        assert_eq!(lines.last(), Some(&"1 OK, 1 WARN, 0 FAIL"));
    }

    #[test]
    fn json_names_outcomes_in_lowercase_and_says_whether_it_passed() {
        let value: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(value["passed"], true);
        assert_eq!(value["checks"][1]["outcome"], "warn");
        assert_eq!(
            value["checks"][1]["fix"],
            "ask central IT for a renewed certificate"
        );
    }
}
