//! MQTT topic names, defined once for the agent and the hub.
//!
//! ```text
//! {prefix}/{org}/{site}/{gateway}/records/{message-type}   records, QoS 1
//! {prefix}/{org}/{site}/{gateway}/status                   retained online/offline
//! {prefix}/{org}/{site}/{gateway}/telemetry                heartbeat, QoS 1
//! {prefix}/{org}/{site}/{gateway}/receipts                 hub -> gateway custody receipts, QoS 1
//! ```
//!
//! Gateways publish under their own `{org}/{site}/{gateway}` subtree only and
//! read only their own `receipts` topic; the hub's ingest reads `records`
//! and `telemetry` of every gateway and writes every `receipts` topic (see
//! `crate::receipt` for what a receipt promises).
//!
//! The organization level [`ENROLL_ORG`] is reserved: `{prefix}/enroll/...` holds the
//! enrollment topics (`crate::enroll`), and a claim certificate (CN `enroll/{claim}`) reaches
//! through the broker's gateway ACL patterns only topics under it. [`reserved_org`] is the one
//! rule: no gateway is configured or provisioned under it, and every hub tool refuses a
//! gateway topic under it, so nothing a claim certificate publishes counts as a gateway's.

/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "hl7edge/v1";

/// Most characters of one part of a message type (MSH-9.1 code, MSH-9.2
/// event, MSH-9.3 structure). HL7 defines codes and events of 3 characters
/// and structures of 7; this is several times that, so any real message
/// type fits, while no message type can make a topic longer than MQTT
/// allows (65,535 bytes) or a level absurdly long. Validation refuses a
/// longer part (AE), and [`GatewayTopics::records`] cuts one anyway, so a
/// record queued before the rule existed still gets a well-formed topic.
pub const MAX_MESSAGE_TYPE_PART: usize = 32;

/// Characters a message type part may not contain: MQTT's level separator
/// and wildcards, and NUL (which MQTT forbids in topic names).
/// Validation refuses them (AE) rather than rewriting them; other
/// characters that are not letters, digits or `-` become `_` in the topic.
pub const TOPIC_UNSAFE: [char; 4] = ['/', '+', '#', '\0'];

/// The organization level of the enrollment topics (`{prefix}/enroll/{claim}/{nonce}/...`),
/// and the first part of every claim certificate's common name (`enroll/{claim}`).
pub const ENROLL_ORG: &str = "enroll";

/// True when `org` may not be a gateway's organization: it is [`ENROLL_ORG`], whose subtree
/// holds the enrollment topics and is all that a claim certificate can reach through the
/// gateway ACL patterns. Topic levels are case-sensitive, so only this exact name is reserved.
pub fn reserved_org(org: &str) -> bool {
    org == ENROLL_ORG
}

/// The topic root of one gateway: `{prefix}/{org}/{site}/{gateway}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTopics {
    root: String,
}

impl GatewayTopics {
    /// Topics for this gateway identity. Levels must not contain `/`, `+`
    /// or `#` (the agent's config validation guarantees it).
    pub fn new(prefix: &str, org: &str, site: &str, gateway: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        GatewayTopics {
            root: format!("{prefix}/{org}/{site}/{gateway}"),
        }
    }

    /// Where records of this message type go, e.g. `.../records/ORU_R01`.
    ///
    /// The message type is written `CODE_EVENT` (`ORU_R01`), or `CODE` when
    /// there is no event; characters not allowed in a topic level become `_`,
    /// and each part is cut to [`MAX_MESSAGE_TYPE_PART`] characters.
    pub fn records(&self, code: &str, event: &str) -> String {
        let kind = if event.is_empty() {
            level(code)
        } else {
            format!("{}_{}", level(code), level(event))
        };
        let kind = if kind.is_empty() {
            "UNKNOWN".to_string()
        } else {
            kind
        };
        format!("{}/records/{kind}", self.root)
    }

    /// The retained online/offline status topic (also the last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.root)
    }

    /// The heartbeat topic.
    pub fn telemetry(&self) -> String {
        format!("{}/telemetry", self.root)
    }

    /// The custody receipts topic: the hub's ingest publishes here, the
    /// gateway subscribes (see `crate::receipt`).
    pub fn receipts(&self) -> String {
        format!("{}/receipts", self.root)
    }

    /// Where the hub retains a signed mapping push for `listener` of this gateway (see
    /// `crate::push`): one retained message per listener, so a push for one interface never
    /// replaces another's.
    pub fn push_mapping(&self, listener: &str) -> String {
        format!("{}/push/mapping/{listener}", self.root)
    }

    /// Where the hub retains a signed push of `kind` (`crate::push::Change::kind`: `mapping`,
    /// `listener`, `switch`) for `listener`: one retained message per kind and listener.
    pub fn push(&self, kind: &str, listener: &str) -> String {
        format!("{}/push/{kind}/{listener}", self.root)
    }

    /// Where the hub retains a signed replay push for this gateway (see `crate::push`): one
    /// retained message per gateway, the latest replay replaces the one before.
    pub fn push_replay(&self) -> String {
        format!("{}/push/replay", self.root)
    }

    /// The gateway's subscription to every push meant for it.
    pub fn push_filter(&self) -> String {
        format!("{}/push/#", self.root)
    }

    /// True when `topic` is one of this gateway's push topics.
    pub fn is_push(&self, topic: &str) -> bool {
        topic
            .strip_prefix(self.root.as_str())
            .is_some_and(|rest| rest.starts_with("/push/"))
    }
}

/// The hub's filter for every gateway's heartbeat, optionally through an
/// MQTT shared subscription group.
pub fn all_telemetry_filter(prefix: &str, share_group: Option<&str>) -> String {
    let prefix = prefix.trim_end_matches('/');
    match share_group {
        Some(group) => format!("$share/{group}/{prefix}/+/+/+/telemetry"),
        None => format!("{prefix}/+/+/+/telemetry"),
    }
}

/// The hub's filter for every gateway's records, optionally through an
/// MQTT shared subscription group.
pub fn all_records_filter(prefix: &str, share_group: Option<&str>) -> String {
    let prefix = prefix.trim_end_matches('/');
    match share_group {
        Some(group) => format!("$share/{group}/{prefix}/+/+/+/records/#"),
        None => format!("{prefix}/+/+/+/records/#"),
    }
}

fn level(s: &str) -> String {
    s.chars()
        .take(MAX_MESSAGE_TYPE_PART)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = GatewayTopics::new("hl7edge/v1/", "acme", "clinic-12", "gw-1");
        assert_eq!(
            t.records("ORU", "R01"),
            "hl7edge/v1/acme/clinic-12/gw-1/records/ORU_R01"
        );
        assert_eq!(
            t.records("ACK", ""),
            "hl7edge/v1/acme/clinic-12/gw-1/records/ACK"
        );
        assert_eq!(
            t.records("", ""),
            "hl7edge/v1/acme/clinic-12/gw-1/records/UNKNOWN"
        );
        assert_eq!(t.status(), "hl7edge/v1/acme/clinic-12/gw-1/status");
        assert_eq!(t.telemetry(), "hl7edge/v1/acme/clinic-12/gw-1/telemetry");
        assert_eq!(t.receipts(), "hl7edge/v1/acme/clinic-12/gw-1/receipts");
    }

    #[test]
    fn wildcards_in_message_types_cannot_escape_their_level() {
        let t = GatewayTopics::new("p", "o", "s", "g");
        assert_eq!(t.records("A/B", "#+"), "p/o/s/g/records/A_B___");
    }

    #[test]
    fn an_absurdly_long_message_type_still_makes_a_short_topic() {
        let t = GatewayTopics::new("p", "o", "s", "g");
        let long = "X".repeat(70_000);
        let topic = t.records(&long, &long);
        let part = "X".repeat(MAX_MESSAGE_TYPE_PART);
        assert_eq!(topic, format!("p/o/s/g/records/{part}_{part}"));
    }

    #[test]
    fn only_the_enroll_organization_is_reserved() {
        assert!(reserved_org("enroll"));
        for org in [
            "acme-health",
            "enrolled",
            "enroll-acme",
            "Enroll",
            "",
            "enroll/",
        ] {
            assert!(!reserved_org(org), "{org}");
        }
    }

    #[test]
    fn shared_subscription_filter_is_built() {
        assert_eq!(
            all_records_filter("hl7edge/v1", None),
            "hl7edge/v1/+/+/+/records/#"
        );
        assert_eq!(
            all_records_filter("hl7edge/v1", Some("hub")),
            "$share/hub/hl7edge/v1/+/+/+/records/#"
        );
        assert_eq!(
            all_telemetry_filter("hl7edge/v1", Some("hub")),
            "$share/hub/hl7edge/v1/+/+/+/telemetry"
        );
    }
}
