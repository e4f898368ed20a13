//! ACK/NAK building: which acknowledgments to send, and their bytes.
//!
//! Sans-IO: the caller passes the new ACK's control id and timestamp in.
//! The rules, from the HL7 standard (chapter 2, acknowledgments):
//!
//! - **Original mode** (MSH-15 and MSH-16 both empty, or forced with
//!   [`AckMode::Original`]): exactly one ACK, AA, AE or AR.
//! - **Enhanced mode**: a commit ACK (CA/CE/CR) when MSH-15 asks for one
//!   under this outcome, then an application ACK (AA/AE/AR) when MSH-16
//!   does. AL always, NE never, ER only on failure, SU only on success; an
//!   empty or unknown condition means AL. After a CE or CR no application
//!   ACK follows: the application never got the message.
//! - **Every message is answered** ([`AckMode::Always`], the default): where
//!   the enhanced rules would send nothing (`NE`/`NE`, `ER` on success, `SU`
//!   on failure), the original-mode ACK is sent. Senders copy `NE` from a
//!   message profile and still wait for an answer over MLLP; a silent
//!   gateway hangs them. [`AckMode::AsRequested`] honours "never" to the
//!   letter.
//! - An acknowledgment (MSH-9.1 `ACK`) is never acknowledged, whatever its
//!   outcome or MSH-15/16 say: answering ACKs with ACKs makes two systems
//!   loop. Its sender expects no reply.
//! - Every ACK has its own MSH-10; MSA-2 echoes the message's MSH-10 (empty
//!   when unreadable); sending and receiving application/facility are
//!   swapped; MSH-1/MSH-2, MSH-11, MSH-12 and MSH-18 are the sender's.
//! - ERR-2/ERR-1 number a segment by its occurrence among segments of its
//!   type (the second OBX is `OBX^2`): renumber the issues with
//!   [`erl::by_occurrence`] before building.
//! - Problems go in ERR segments coded with HL7 table 0357: ERR-2/3/4/8 from
//!   v2.5 on, ERR-1 (ELD) before; errors first, then (from v2.5 on, where
//!   ERR-4 carries a severity) warnings, at most ten ERR segments. Warnings
//!   are listed on AA too; information issues never are.
//!
//! Invariant: a positive ACK (AA, CA) is produced only for
//! [`Outcome::Accepted`]; the caller builds it only after the commit.

pub mod erl;
mod header;
mod read;
mod write;

pub use header::AckHeader;
pub use read::{AckSummary, ack_code_of};

use crate::hl7::issue::{ErrorCode, Issue};

/// MSA-1 acknowledgment codes (HL7 table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// `AA`: application accept (original mode, or enhanced application ACK).
    ApplicationAccept,
    /// `AE`: application error; the message was not accepted.
    ApplicationError,
    /// `AR`: application reject; the sender should retry later.
    ApplicationReject,
    /// `CA`: commit accept (enhanced mode); the message is safely stored.
    CommitAccept,
    /// `CE`: commit error (enhanced mode).
    CommitError,
    /// `CR`: commit reject (enhanced mode).
    CommitReject,
}

impl AckCode {
    /// The two-letter code written into MSA-1.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::ApplicationAccept => "AA",
            AckCode::ApplicationError => "AE",
            AckCode::ApplicationReject => "AR",
            AckCode::CommitAccept => "CA",
            AckCode::CommitError => "CE",
            AckCode::CommitReject => "CR",
        }
    }

    /// Reads an MSA-1 code (exact, uppercase).
    pub fn parse(code: &str) -> Option<AckCode> {
        Some(match code {
            "AA" => AckCode::ApplicationAccept,
            "AE" => AckCode::ApplicationError,
            "AR" => AckCode::ApplicationReject,
            "CA" => AckCode::CommitAccept,
            "CE" => AckCode::CommitError,
            "CR" => AckCode::CommitReject,
            _ => return None,
        })
    }

    /// True for AA and CA: the message is accepted and stored.
    pub fn is_positive(self) -> bool {
        matches!(self, AckCode::ApplicationAccept | AckCode::CommitAccept)
    }

    /// True for the enhanced-mode commit codes CA, CE and CR.
    pub fn is_commit(self) -> bool {
        matches!(
            self,
            AckCode::CommitAccept | AckCode::CommitError | AckCode::CommitReject
        )
    }
}

impl std::fmt::Display for AckCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether MSH-15/MSH-16 are honoured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AckMode {
    /// Enhanced mode when MSH-15 or MSH-16 is set, original mode otherwise;
    /// where the enhanced rules would send nothing, the original-mode ACK:
    /// every message (but an incoming ACK) gets an answer.
    #[default]
    Always,
    /// Enhanced mode when MSH-15 or MSH-16 is set, to the letter: `NE`
    /// (and `ER`/`SU` for the other outcome) means no answer at all.
    AsRequested,
    /// Always original mode (one AA/AE/AR), whatever MSH-15/16 say.
    Original,
}

/// What happened to a message, as far as its sender needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (committed). The issues (warnings) are listed on AA from v2.5.
    Accepted {
        /// Warnings and information found by validation.
        issues: Vec<Issue>,
    },
    /// Cannot be accepted: it did not parse or failed validation (AE/CE).
    /// Error issues are listed first; warnings follow from v2.5.
    Error {
        /// Every issue found (at least the errors).
        issues: Vec<Issue>,
    },
    /// Could not be stored, through no fault of the message: store full or
    /// unavailable, oversize, shutting down (AR/CR; the sender retries).
    Rejected {
        /// Table 0357 code, e.g. [`ErrorCode::RecordLocked`] for "full".
        code: ErrorCode,
        /// Short reason for people (no PHI).
        reason: String,
    },
}

impl Outcome {
    fn is_success(&self) -> bool {
        matches!(self, Outcome::Accepted { .. })
    }

    fn application_code(&self) -> AckCode {
        match self {
            Outcome::Accepted { .. } => AckCode::ApplicationAccept,
            Outcome::Error { .. } => AckCode::ApplicationError,
            Outcome::Rejected { .. } => AckCode::ApplicationReject,
        }
    }

    fn commit_code(&self) -> AckCode {
        match self {
            Outcome::Accepted { .. } => AckCode::CommitAccept,
            Outcome::Error { .. } => AckCode::CommitError,
            Outcome::Rejected { .. } => AckCode::CommitReject,
        }
    }
}

/// The per-ACK values the caller supplies (sans-IO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckStamp<'a> {
    /// MSH-10 of the ACK: new and unique for every ACK sent.
    pub control_id: &'a str,
    /// MSH-7 of the ACK, an HL7 DTM such as `20260301120000+0000`.
    pub timestamp: &'a str,
}

/// An MSH-15/MSH-16 condition (HL7 table 0155).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    Never,
    OnError,
    OnSuccess,
}

impl Condition {
    /// Empty or unknown values mean AL: answering is the safe default.
    fn parse(raw: &[u8]) -> Condition {
        match raw.trim_ascii().to_ascii_uppercase().as_slice() {
            b"NE" => Condition::Never,
            b"ER" => Condition::OnError,
            b"SU" => Condition::OnSuccess,
            _ => Condition::Always,
        }
    }

    fn applies(self, success: bool) -> bool {
        match self {
            Condition::Always => true,
            Condition::Never => false,
            Condition::OnError => !success,
            Condition::OnSuccess => success,
        }
    }
}

/// True when MSH-15 or MSH-16 is set and the mode allows enhanced ACKs.
pub fn is_enhanced(header: &AckHeader, mode: AckMode) -> bool {
    mode != AckMode::Original
        && !(header.accept_ack_type.trim_ascii().is_empty()
            && header.application_ack_type.trim_ascii().is_empty())
}

/// True when the message's MSH-15/MSH-16 ask for no acknowledgement of
/// this outcome (`NE`/`NE`, `ER` on success, `SU` on failure). Never true
/// for an incoming ACK, which is not acknowledged whatever it asks.
pub fn requests_no_ack(header: &AckHeader, outcome: &Outcome) -> bool {
    !header.is_acknowledgment()
        && is_enhanced(header, AckMode::AsRequested)
        && enhanced_plan(header, outcome).is_empty()
}

/// Which ACKs to send for `outcome`, in sending order: never any for an
/// incoming ACK; in [`AckMode::AsRequested`] possibly none (`NE`/`NE`, or
/// `ER`/`ER` on success); otherwise at least one.
pub fn plan_acks(header: &AckHeader, outcome: &Outcome, mode: AckMode) -> Vec<AckCode> {
    if header.is_acknowledgment() {
        return Vec::new();
    }
    if !is_enhanced(header, mode) {
        return vec![outcome.application_code()];
    }
    let plan = enhanced_plan(header, outcome);
    if plan.is_empty() && mode == AckMode::Always {
        return vec![outcome.application_code()];
    }
    plan
}

/// The enhanced-mode ACKs MSH-15/MSH-16 ask for under `outcome`.
fn enhanced_plan(header: &AckHeader, outcome: &Outcome) -> Vec<AckCode> {
    let success = outcome.is_success();
    let mut plan = Vec::with_capacity(2);
    if Condition::parse(&header.accept_ack_type).applies(success) {
        plan.push(outcome.commit_code());
    }
    let commit_failed = plan
        .iter()
        .any(|c| matches!(c, AckCode::CommitError | AckCode::CommitReject));
    if !commit_failed && Condition::parse(&header.application_ack_type).applies(success) {
        plan.push(outcome.application_code());
    }
    plan
}

/// Builds one ACK message (without MLLP framing), segments terminated by CR.
pub fn build_ack(
    header: &AckHeader,
    code: AckCode,
    outcome: &Outcome,
    stamp: &AckStamp<'_>,
) -> Vec<u8> {
    write::ack(header, code, outcome, stamp)
}

/// Plans and builds every ACK for `outcome`, asking `next_control_id` for a
/// fresh MSH-10 for each one.
pub fn build_acks(
    header: &AckHeader,
    outcome: &Outcome,
    mode: AckMode,
    timestamp: &str,
    mut next_control_id: impl FnMut() -> String,
) -> Vec<(AckCode, Vec<u8>)> {
    plan_acks(header, outcome, mode)
        .into_iter()
        .map(|code| {
            let control_id = next_control_id();
            let stamp = AckStamp {
                control_id: &control_id,
                timestamp,
            };
            (code, build_ack(header, code, outcome, &stamp))
        })
        .collect()
}

#[cfg(test)]
mod tests;
