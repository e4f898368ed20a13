//! The hub's one rule about who sent a payload: a records envelope or a
//! heartbeat names its gateway itself, and that claim is trusted only when
//! it is the gateway of the topic the payload arrived on (the broker's ACL
//! ties a topic subtree to one device certificate; the payload's own claim
//! is only a claim). Every consumer applies this check: the ingest
//! dead-letters a mismatch, `tail`, `fleet` and `serve` drop it, count it
//! and log it. A topic under the organization reserved for enrollment names
//! no gateway at all ([`crate::topics::gateway_topic`]): a claim certificate
//! can publish there, so nothing published there reaches these checks.
//!
//! Invariant: the text of a mismatch holds gateway names only (the claimed
//! one quoted with escapes and cut to [`MAX_SHOWN`] characters, since it is
//! whatever the payload says), never content of a record.

use hl7edge_protocol::telemetry::GatewayId;

use crate::topics::GatewayKey;

/// Characters of a claimed gateway name shown in a log line or dead letter.
pub const MAX_SHOWN: usize = 200;

/// A payload that names another gateway than the one of its topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} names gateway {} but arrived on the topic of {topic}", shown(.named))]
pub struct GatewayMismatch {
    /// What made the claim: `envelope` or `heartbeat`.
    pub what: &'static str,
    /// The gateway the payload names (`org/site/id`).
    pub named: String,
    /// The gateway of the topic.
    pub topic: GatewayKey,
}

impl GatewayMismatch {
    /// The claimed gateway as shown (escaped, cut to [`MAX_SHOWN`] characters).
    pub fn named_shown(&self) -> String {
        shown(&self.named)
    }
}

/// Checks the gateway a records envelope names (`org/site/id`) against its topic's.
pub fn check_envelope(topic: &GatewayKey, named: &str) -> Result<(), GatewayMismatch> {
    if named == topic.to_string() {
        return Ok(());
    }
    Err(GatewayMismatch {
        what: "envelope",
        named: named.to_owned(),
        topic: topic.clone(),
    })
}

/// Checks the gateway a heartbeat names against its topic's.
pub fn check_heartbeat(topic: &GatewayKey, named: &GatewayId) -> Result<(), GatewayMismatch> {
    let same = (named.org.as_str(), named.site.as_str(), named.id.as_str())
        == (
            topic.org.as_str(),
            topic.site.as_str(),
            topic.gateway.as_str(),
        );
    if same {
        return Ok(());
    }
    Err(GatewayMismatch {
        what: "heartbeat",
        named: named.to_string(),
        topic: topic.clone(),
    })
}

/// A claimed name for a log line: quoted with escapes, cut to [`MAX_SHOWN`] characters.
fn shown(named: &str) -> String {
    let cut: String = named.chars().take(MAX_SHOWN).collect();
    let more = if cut.len() < named.len() { "..." } else { "" };
    format!("{cut:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> GatewayKey {
        GatewayKey {
            org: "acme".into(),
            site: "clinic-12".into(),
            gateway: "gw-0001".into(),
        }
    }

    #[test]
    fn a_payload_naming_its_topics_gateway_passes_and_any_other_does_not() {
        assert_eq!(check_envelope(&key(), "acme/clinic-12/gw-0001"), Ok(()));
        let err = check_envelope(&key(), "acme/clinic-13/gw-0001").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the envelope names gateway \"acme/clinic-13/gw-0001\" but arrived on the topic of \
             acme/clinic-12/gw-0001"
        );
        let own = GatewayId {
            org: "acme".into(),
            site: "clinic-12".into(),
            id: "gw-0001".into(),
        };
        assert_eq!(check_heartbeat(&key(), &own), Ok(()));
        let other = GatewayId {
            id: "gw-0002".into(),
            ..own
        };
        assert_eq!(
            check_heartbeat(&key(), &other).unwrap_err().what,
            "heartbeat"
        );
    }

    #[test]
    fn a_long_or_hostile_claim_is_shown_cut_and_escaped() {
        let named = format!("x\n\u{1b}[2J{}", "y".repeat(100_000));
        let text = check_envelope(&key(), &named).unwrap_err().to_string();
        assert!(text.len() < 400, "{} bytes", text.len());
        assert!(text.contains("\\n") && text.contains("\\u{1b}"), "{text}");
        assert!(!text.contains('\n') && !text.contains('\u{1b}'));
    }
}
