//! Errors of the structural parser and of HL7 path queries.

/// Why a byte string could not be read as an HL7 v2 message at all.
///
/// These are the "cannot be understood or routed" cases: the gateway answers
/// them with AE and keeps the bytes in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is empty or only whitespace.
    #[error("the message is empty")]
    Empty,
    /// The first segment is not MSH (junk before MSH, or no header at all).
    #[error("the message does not start with an MSH segment (found {found:?})")]
    NoMsh {
        /// The first few characters found instead, for the error text.
        found: String,
    },
    /// MSH-1/MSH-2 cannot be used as delimiters.
    #[error("unreadable delimiters in MSH-1/MSH-2: {reason}")]
    BadDelimiters {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// The message is larger than this parser can index (4 GiB).
    #[error("the message is larger than 4 GiB")]
    TooLarge,
}

/// A malformed HL7 path such as `PID-3[2].4.1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad HL7 path {path:?}: {reason} (expected e.g. \"PID-3[2].4.1\" or \"OBX[3]-5\")")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}
