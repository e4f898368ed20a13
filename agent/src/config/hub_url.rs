//! Parsers for the MQTT side: the hub URL, the topic prefix and the client id.
//!
//! The hub URL's rules live in [`hl7edge_protocol::broker_url`] (shared with the hub tools);
//! here its refusal becomes a config [`Problem`] naming the value.

use hl7edge_protocol::broker_url::BrokerUrl;

use super::error::Problem;

/// Parses `mqtts://host[:port]` (or `mqtt://…`); the rules are the protocol crate's, shared
/// with the hub tools.
pub(super) fn hub_url(value: &str) -> Result<BrokerUrl, Problem> {
    BrokerUrl::parse(value).map_err(|e| Problem::Url {
        value: value.to_owned(),
        reason: e.reason,
    })
}

/// An MQTT topic prefix: `/`-separated non-empty levels, no wildcards, not a `$` system topic.
/// Longest topic prefix: with the gateway's three levels (64 characters
/// each) and the longest records level, every topic stays far below MQTT's
/// 65,535 bytes.
const MAX_TOPIC_PREFIX: usize = 256;

pub(super) fn topic_prefix(value: &str) -> Result<String, Problem> {
    let fail = |reason| Problem::TopicPrefix {
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("it is empty"));
    }
    if value.len() > MAX_TOPIC_PREFIX {
        return Err(fail("it is longer than 256 bytes"));
    }
    if value.starts_with('$') {
        return Err(fail(
            "topics starting with \"$\" are reserved for the broker",
        ));
    }
    if value.contains(['+', '#']) {
        return Err(fail("\"+\" and \"#\" are MQTT wildcards"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("it contains spaces or control characters"));
    }
    if value.split('/').any(str::is_empty) {
        return Err(fail(
            "it has an empty level (leading, trailing or double \"/\")",
        ));
    }
    Ok(value.to_owned())
}

/// An MQTT client id: 1 to 256 visible characters.
pub(super) fn client_id(value: &str) -> Result<String, Problem> {
    let visible = |c: char| !c.is_whitespace() && !c.is_control();
    if (1..=256).contains(&value.chars().count()) && value.chars().all(visible) {
        Ok(value.to_owned())
    } else {
        Err(Problem::ClientId {
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_parse_and_refusals_name_the_value() {
        let url = hub_url("mqtts://Hub.Example.org").unwrap();
        assert_eq!(
            (url.tls, url.host.as_str(), url.port),
            (true, "hub.example.org", 8883)
        );
        match hub_url("https://hub.example.org") {
            Err(Problem::Url { value, reason }) => {
                assert_eq!(value, "https://hub.example.org");
                assert!(reason.contains("mqtts://"), "{reason}");
            }
            other => panic!("expected Problem::Url, got {other:?}"),
        }
    }

    #[test]
    fn topic_prefixes_reject_wildcards_empty_levels_and_system_topics() {
        assert_eq!(topic_prefix("hl7edge/v1").unwrap(), "hl7edge/v1");
        for bad in [
            "",
            "/hl7edge",
            "hl7edge/",
            "a//b",
            "a/+/b",
            "a/#",
            "$SYS/x",
            "a b",
            &"x".repeat(257),
        ] {
            assert!(
                matches!(topic_prefix(bad), Err(Problem::TopicPrefix { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_ids_must_be_visible_and_short() {
        assert_eq!(
            client_id("acme-clinic-12-gw-0001").unwrap(),
            "acme-clinic-12-gw-0001"
        );
        for bad in ["", "a b", "a\tb", &"x".repeat(257)] {
            assert!(client_id(bad).is_err(), "{bad:?}");
        }
    }
}
