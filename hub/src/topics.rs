//! The hub's side of the topic layout of `hl7edge_protocol::topic`: the
//! filters it subscribes to and the parse of a topic back into a gateway
//! and a kind.
//!
//! ```text
//! {prefix}/{org}/{site}/{gateway}/records/{message-type}
//! {prefix}/{org}/{site}/{gateway}/status
//! {prefix}/{org}/{site}/{gateway}/telemetry
//! ```
//!
//! Invariant: no topic under the reserved organization (`hl7edge_protocol::topic::reserved_org`:
//! `enroll`, the enrollment topics and all a claim certificate reaches through the broker's
//! gateway patterns) parses into a gateway: [`gateway_topic`] says so, [`parse`] gives `None`, so
//! no hub tool takes anything published there for a gateway's.

use serde::Serialize;

use hl7edge_protocol::topic::all_records_filter;

/// One gateway, as named by its topic levels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct GatewayKey {
    /// Organization level.
    pub org: String,
    /// Site level.
    pub site: String,
    /// Gateway level.
    pub gateway: String,
}

/// What a topic carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicKind {
    /// The retained online/offline status.
    Status,
    /// The heartbeat.
    Telemetry,
    /// Records of this message type (`ORU_R01`).
    Records(String),
}

/// A topic under the prefix, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTopic {
    /// The gateway it belongs to.
    pub key: GatewayKey,
    /// What it carries.
    pub kind: TopicKind,
}

/// Why a `--types` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--types {value:?}: a message type is letters, digits, '_' and '-' (e.g. ORU_R01)")]
pub struct TypeError {
    /// The entry as given.
    pub value: String,
}

/// Every gateway's retained status.
pub fn status_filter(prefix: &str) -> String {
    format!("{}/+/+/+/status", prefix.trim_end_matches('/'))
}

/// Every gateway's heartbeat.
pub fn telemetry_filter(prefix: &str) -> String {
    format!("{}/+/+/+/telemetry", prefix.trim_end_matches('/'))
}

/// The record filters: all types, or one filter per listed type; through a
/// shared subscription group when one is given.
pub fn record_filters(
    prefix: &str,
    share: Option<&str>,
    types: &[String],
) -> Result<Vec<String>, TypeError> {
    if types.is_empty() {
        return Ok(vec![all_records_filter(prefix, share)]);
    }
    let share = share.map_or(String::new(), |g| format!("$share/{g}/"));
    let prefix = prefix.trim_end_matches('/');
    types
        .iter()
        .map(|t| {
            let ok = !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if ok {
                Ok(format!("{share}{prefix}/+/+/+/records/{t}"))
            } else {
                Err(TypeError { value: t.clone() })
            }
        })
        .collect()
}

/// Why a topic is not a gateway's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAGatewayTopic {
    /// Not `{prefix}/{org}/{site}/{gateway}/{kind}` with a kind the hub reads.
    #[error("not a gateway's records, status or telemetry topic under the prefix")]
    Layout,
    /// Under the organization reserved for enrollment: a claim certificate published it (the
    /// broker lets one reach only that subtree), never a gateway.
    #[error(
        "under the organization {:?}, reserved for enrollment: a claim certificate's topic, no gateway's",
        hl7edge_protocol::topic::ENROLL_ORG
    )]
    ReservedOrg,
}

/// Splits a topic under `prefix` into its gateway and kind, or says why it names no gateway.
pub fn gateway_topic(prefix: &str, topic: &str) -> Result<ParsedTopic, NotAGatewayTopic> {
    let layout = NotAGatewayTopic::Layout;
    let rest = topic
        .strip_prefix(prefix.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or(layout)?;
    let mut levels = rest.split('/');
    let mut next = || levels.next().filter(|l| !l.is_empty());
    let org = next().ok_or(layout)?;
    if hl7edge_protocol::topic::reserved_org(org) {
        return Err(NotAGatewayTopic::ReservedOrg);
    }
    let key = GatewayKey {
        org: org.to_owned(),
        site: next().ok_or(layout)?.to_owned(),
        gateway: next().ok_or(layout)?.to_owned(),
    };
    let kind = match (next().ok_or(layout)?, next(), next()) {
        ("status", None, _) => TopicKind::Status,
        ("telemetry", None, _) => TopicKind::Telemetry,
        ("records", Some(kind), None) => TopicKind::Records(kind.to_owned()),
        _ => return Err(layout),
    };
    Ok(ParsedTopic { key, kind })
}

/// Splits a topic under `prefix`; `None` for anything else, and for every topic under the
/// reserved organization ([`gateway_topic`] says which).
pub fn parse(prefix: &str, topic: &str) -> Option<ParsedTopic> {
    gateway_topic(prefix, topic).ok()
}

impl std::fmt::Display for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.site, self.gateway)
    }
}

#[cfg(test)]
mod tests {
    use hl7edge_protocol::topic::GatewayTopics;

    use super::*;

    #[test]
    fn agent_topics_parse_back_into_gateway_and_kind() {
        let t = GatewayTopics::new("hl7edge/v1", "acme", "clinic-12", "gw-1");
        let key = GatewayKey {
            org: "acme".into(),
            site: "clinic-12".into(),
            gateway: "gw-1".into(),
        };
        let parsed = parse("hl7edge/v1/", &t.status()).unwrap();
        assert_eq!((parsed.key, parsed.kind), (key.clone(), TopicKind::Status));
        assert_eq!(
            parse("hl7edge/v1", &t.telemetry()).unwrap().kind,
            TopicKind::Telemetry
        );
        assert_eq!(
            parse("hl7edge/v1", &t.records("ORU", "R01")).unwrap().kind,
            TopicKind::Records("ORU_R01".into())
        );
    }

    #[test]
    fn foreign_or_short_topics_are_not_parsed() {
        for topic in [
            "other/acme/c/g/status",
            "hl7edge/v1/acme/c/status",
            "hl7edge/v1/acme/c/g/status/extra",
            "hl7edge/v1/acme//g/status",
            "hl7edge/v1/acme/c/g/records",
            "hl7edge/v1x/acme/c/g/status",
        ] {
            assert_eq!(parse("hl7edge/v1", topic), None, "{topic}");
        }
    }

    #[test]
    fn no_topic_under_the_enroll_organization_names_a_gateway() {
        // Everything a claim certificate (CN enroll/CLAIM) may publish through the gateway
        // patterns, including the forms the hub's filters match.
        for topic in [
            "hl7edge/v1/enroll/claim-a/records/records/ORU_R01",
            "hl7edge/v1/enroll/claim-a/records/telemetry",
            "hl7edge/v1/enroll/claim-a/records/status",
            "hl7edge/v1/enroll/claim-a/status",
            "hl7edge/v1/enroll/claim-a/nonce/request",
        ] {
            assert_eq!(
                gateway_topic("hl7edge/v1", topic),
                Err(NotAGatewayTopic::ReservedOrg),
                "{topic}"
            );
            assert_eq!(parse("hl7edge/v1", topic), None, "{topic}");
        }
        // A near name is an organization like any other.
        let t = GatewayTopics::new("hl7edge/v1", "enroll-health", "c", "g");
        assert_eq!(
            parse("hl7edge/v1", &t.status()).unwrap().key.org,
            "enroll-health"
        );
        assert_eq!(
            gateway_topic("hl7edge/v1", "hl7edge/v1/acme/c/status/x"),
            Err(NotAGatewayTopic::Layout)
        );
    }

    #[test]
    fn type_filters_follow_the_share_group() {
        let types = vec!["ORU_R01".to_string(), "ADT_A01".to_string()];
        assert_eq!(
            record_filters("p", Some("hub"), &types).unwrap(),
            [
                "$share/hub/p/+/+/+/records/ORU_R01",
                "$share/hub/p/+/+/+/records/ADT_A01"
            ]
        );
        assert_eq!(
            record_filters("p", None, &[]).unwrap(),
            ["p/+/+/+/records/#"]
        );
    }

    #[test]
    fn wildcards_in_types_are_refused() {
        let err = record_filters("p", None, &["ORU/#".to_string()]).unwrap_err();
        assert!(err.to_string().contains("ORU/#"));
    }

    #[test]
    fn status_and_telemetry_filters_match_every_gateway() {
        assert_eq!(status_filter("hl7edge/v1/"), "hl7edge/v1/+/+/+/status");
        assert_eq!(telemetry_filter("hl7edge/v1"), "hl7edge/v1/+/+/+/telemetry");
    }
}
