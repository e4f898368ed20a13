//! Who may enroll: the allowlist central IT writes, the ledger of what was signed, and the one
//! decision made from them. Pure: the files are read and written by the caller.
//!
//! Allowlist (`--allowlist FILE`), one entry a line, `#` starts a comment:
//!
//! ```text
//! # claim            gateway
//! claim-acme-2026a   acme-health/clinic-12/gw-0003
//! *                  acme-health/clinic-14/gw-0001
//! ```
//!
//! An entry lets a box holding the named claim certificate (`CLAIM`: the claim certificate's
//! common name is `enroll/CLAIM`; `*`: any claim) enroll as that gateway. A gateway under the
//! organization reserved for enrollment (`enroll`) is refused: its topics are the claims'. The file is read again for every request, so an entry added or
//! removed counts from the next request on, without a restart.
//!
//! Ledger (`--ledger FILE`), one line per gateway signed, appended and fsynced before the
//! answer is sent: `gateway nonce`. Invariant: a gateway is signed for one key only. The same
//! key asking again (an answer lost on the way) gets a certificate again; another key asking
//! for an enrolled gateway is refused `already_enrolled`, until central IT removes the ledger
//! line (a box replaced) or provisions the box by hand.

use std::collections::HashMap;

use hl7edge_protocol::enroll::{Refusal, split_gateway};

/// A line of the allowlist that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}: {problem} (expected `CLAIM org/site/gateway`, CLAIM being the claim of the claim certificate's common name enroll/CLAIM, or *)"
)]
pub struct AllowlistError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: &'static str,
}

/// The allowlist's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<(String, String)>,
}

impl Allowlist {
    /// Parses the allowlist text.
    pub fn parse(text: &str) -> Result<Allowlist, AllowlistError> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let err = |problem| AllowlistError {
                line: n + 1,
                problem,
            };
            let mut words = content.split_whitespace();
            let (Some(claim), Some(gateway), None) = (words.next(), words.next(), words.next())
            else {
                return Err(err("not two words"));
            };
            match split_gateway(gateway) {
                None => return Err(err("the gateway is not org/site/gateway")),
                Some((org, _, _)) if hl7edge_protocol::topic::reserved_org(org) => {
                    return Err(err(
                        "the organization enroll is reserved for the enrollment topics",
                    ));
                }
                Some(_) => {}
            }
            if claim != "*" && !hl7edge_protocol::enroll::claim_name_ok(claim) {
                return Err(err("the claim is not one topic level"));
            }
            entries.push((claim.to_owned(), gateway.to_owned()));
        }
        Ok(Allowlist { entries })
    }

    /// True when a box holding `claim` may enroll as `gateway`.
    pub fn allows(&self, claim: &str, gateway: &str) -> bool {
        self.entries
            .iter()
            .any(|(c, g)| g == gateway && (c == "*" || c == claim))
    }
}

/// The gateways signed so far, each with the nonce of the key it was signed for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    signed: HashMap<String, String>,
}

impl Ledger {
    /// Reads the ledger text (lines that are not `gateway nonce` are skipped: a line cut by a
    /// crash while it was appended names nothing).
    pub fn parse(text: &str) -> Ledger {
        let signed = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some(g), Some(n), None) if n.len() == hl7edge_protocol::enroll::NONCE_LEN => {
                        Some((g.to_owned(), n.to_owned()))
                    }
                    _ => None,
                }
            })
            .collect();
        Ledger { signed }
    }

    /// The line to append when `gateway` is signed for `nonce`.
    pub fn line(gateway: &str, nonce: &str) -> String {
        format!("{gateway} {nonce}\n")
    }

    /// Records a signature (after its line is on disk).
    pub fn record(&mut self, gateway: &str, nonce: &str) {
        self.signed.insert(gateway.to_owned(), nonce.to_owned());
    }

    /// True when `gateway` was signed for exactly this key before.
    pub fn is_repeat(&self, gateway: &str, nonce: &str) -> bool {
        self.signed.get(gateway).is_some_and(|n| n == nonce)
    }

    fn taken_by_another(&self, gateway: &str, nonce: &str) -> bool {
        self.signed.get(gateway).is_some_and(|n| n != nonce)
    }
}

/// What the hub knows of one request before it signs.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The claim, from the topic (the broker vouches for it through the ACL).
    pub claim: &'a str,
    /// The nonce of the topic.
    pub topic_nonce: &'a str,
    /// The nonce of the request's own key.
    pub key_nonce: &'a str,
    /// The gateway the request names.
    pub gateway: &'a str,
}

/// Signs, or refuses with a reason: the nonce must be the key's, the allowlist must name the
/// claim and gateway, and the gateway must not be signed for another key.
pub fn decide(allowlist: &Allowlist, ledger: &Ledger, asked: Asked<'_>) -> Result<(), Refusal> {
    if asked.topic_nonce != asked.key_nonce {
        return Err(Refusal::BadRequest);
    }
    if !allowlist.allows(asked.claim, asked.gateway) {
        return Err(Refusal::NotAllowed);
    }
    if ledger.taken_by_another(asked.gateway, asked.key_nonce) {
        return Err(Refusal::AlreadyEnrolled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: &str = "0123456789abcdef0123456789abcdef";
    const N2: &str = "fedcba9876543210fedcba9876543210";

    fn asked<'a>(claim: &'a str, gateway: &'a str, nonce: &'a str) -> Asked<'a> {
        Asked {
            claim,
            topic_nonce: nonce,
            key_nonce: nonce,
            gateway,
        }
    }

    #[test]
    fn a_gateway_under_the_organization_reserved_for_enrollment_is_refused_by_line() {
        let err = Allowlist::parse("claim-a  acme/s1/gw-1\nclaim-a  enroll/s1/gw-1\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn an_entry_lets_its_claim_enroll_its_gateway_and_nothing_else() {
        let list = Allowlist::parse(
            "# claim gateway\nclaim-a  acme/s1/gw-1\n\n*  acme/s2/gw-9  # any claim\n",
        )
        .unwrap();
        let ledger = Ledger::default();
        assert_eq!(
            decide(&list, &ledger, asked("claim-a", "acme/s1/gw-1", N1)),
            Ok(())
        );
        assert_eq!(
            decide(&list, &ledger, asked("claim-b", "acme/s1/gw-1", N1)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            decide(&list, &ledger, asked("claim-a", "acme/s1/gw-2", N1)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            decide(&list, &ledger, asked("claim-b", "acme/s2/gw-9", N1)),
            Ok(())
        );
    }

    #[test]
    fn a_gateway_is_signed_again_for_its_key_and_refused_for_another() {
        let list = Allowlist::parse("claim-a acme/s1/gw-1\n").unwrap();
        let ledger = Ledger::parse(&Ledger::line("acme/s1/gw-1", N1));
        assert!(ledger.is_repeat("acme/s1/gw-1", N1));
        assert_eq!(
            decide(&list, &ledger, asked("claim-a", "acme/s1/gw-1", N1)),
            Ok(())
        );
        assert_eq!(
            decide(&list, &ledger, asked("claim-a", "acme/s1/gw-1", N2)),
            Err(Refusal::AlreadyEnrolled)
        );
    }

    #[test]
    fn a_nonce_that_is_not_the_keys_is_a_bad_request() {
        let list = Allowlist::parse("claim-a acme/s1/gw-1\n").unwrap();
        let mut a = asked("claim-a", "acme/s1/gw-1", N1);
        a.topic_nonce = N2;
        assert_eq!(
            decide(&list, &Ledger::default(), a),
            Err(Refusal::BadRequest)
        );
    }

    #[test]
    fn a_bad_allowlist_line_is_named_by_number() {
        let err = Allowlist::parse("claim-a acme/s1/gw-1\nclaim-b acme/s1\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("line 2"), "{err}");
        assert_eq!(Allowlist::parse("just-one-word\n").unwrap_err().line, 1);
        assert_eq!(Allowlist::parse("a/b acme/s1/gw-1\n").unwrap_err().line, 1);
    }

    #[test]
    fn a_torn_ledger_line_names_nothing() {
        let ledger = Ledger::parse(&format!("acme/s1/gw-1 {N1}\nacme/s1/gw-2 0123"));
        assert!(ledger.is_repeat("acme/s1/gw-1", N1));
        assert!(!ledger.taken_by_another("acme/s1/gw-2", N2));
        let mut recorded = Ledger::default();
        recorded.record("acme/s1/gw-2", N2);
        assert!(recorded.taken_by_another("acme/s1/gw-2", N1));
    }
}
