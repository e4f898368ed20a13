//! Asking a technician before something is erased for good.
//!
//! Invariant: nothing is confirmed without a yes: typed at the terminal,
//! or `--yes` on the command line; without a terminal and without `--yes`
//! the confirmation is impossible and the command refuses.

use std::io::BufRead;

/// How an erasing command is confirmed.
#[derive(Debug)]
pub(in crate::cli) enum Confirm<R> {
    /// `--yes` was given.
    Given,
    /// Ask on the terminal and read the answer from `R`.
    Ask(R),
    /// No terminal and no `--yes`: refuse.
    Impossible,
}

impl<R: BufRead> Confirm<R> {
    /// The confirmation for `--yes` (`yes`) and whether stdin is a terminal.
    pub(in crate::cli) fn new(yes: bool, on_terminal: bool, input: R) -> Self {
        match (yes, on_terminal) {
            (true, _) => Self::Given,
            (false, true) => Self::Ask(input),
            (false, false) => Self::Impossible,
        }
    }
}

/// Reads one line; true for `y` or `yes` in any case.
pub(in crate::cli) fn answered_yes(mut input: impl BufRead) -> std::io::Result<bool> {
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
