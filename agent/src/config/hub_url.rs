//! Parsers for the MQTT side: the hub URL, the topic prefix and the client id.
//!
//! The hub URL is deliberately narrow: `mqtts://host[:port]` or `mqtt://host[:port]`, nothing
//! else (no user, path, query or fragment), so a general URL parser would only add ways to be
//! wrong. Hosts are DNS names (RFC 1123 labels), IPv4 addresses or bracketed IPv6 addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::Problem;

/// Default port for MQTT over TLS.
pub(super) const MQTTS_PORT: u16 = 8883;
/// Default port for plaintext MQTT.
pub(super) const MQTT_PORT: u16 = 1883;

/// A parsed hub URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HubUrl {
    /// `mqtts://` (true) or `mqtt://` (false).
    pub tls: bool,
    /// Host name (lowercase) or IP address, IPv6 without brackets.
    pub host: String,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

/// Parses `mqtts://host[:port]` (or `mqtt://…`).
pub(super) fn hub_url(value: &str) -> Result<HubUrl, Problem> {
    let fail = |reason| Problem::Url {
        value: value.to_owned(),
        reason,
    };
    let (scheme, rest) = value
        .trim()
        .split_once("://")
        .ok_or_else(|| fail("it has no scheme"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "mqtts" => true,
        "mqtt" => false,
        _ => return Err(fail("the scheme must be mqtts://")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(fail(
            "only scheme://host[:port] is allowed (no user, path or query)",
        ));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| fail("the host or port is malformed"))?;
    let port = match port {
        None => {
            if tls {
                MQTTS_PORT
            } else {
                MQTT_PORT
            }
        }
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail("the port must be 1 to 65535"))?,
    };
    Ok(HubUrl { tls, host, port })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` into a validated host and the port text.
fn split_host_port(authority: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = v6.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((ip.to_string(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host = if host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host) {
        host.to_ascii_lowercase()
    } else {
        return None;
    };
    Some((host, port))
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_dns_name(host: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (1..=253).contains(&host.len()) && host.split('.').all(label_ok)
}

/// An MQTT topic prefix: `/`-separated non-empty levels, no wildcards, not a `$` system topic.
pub(super) fn topic_prefix(value: &str) -> Result<String, Problem> {
    let fail = |reason| Problem::TopicPrefix {
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("it is empty"));
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

    fn url(host: &str, port: u16, tls: bool) -> HubUrl {
        HubUrl {
            tls,
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn hub_urls_default_the_port_by_scheme() {
        assert_eq!(
            hub_url("mqtts://hub.example.org").unwrap(),
            url("hub.example.org", 8883, true)
        );
        assert_eq!(
            hub_url("mqtt://127.0.0.1").unwrap(),
            url("127.0.0.1", 1883, false)
        );
        assert_eq!(
            hub_url("MQTTS://Hub.Example.org:9883/").unwrap(),
            url("hub.example.org", 9883, true)
        );
        assert_eq!(
            hub_url("mqtts://[2001:db8::1]:8884").unwrap(),
            url("2001:db8::1", 8884, true)
        );
        assert_eq!(hub_url("mqtts://[::1]").unwrap(), url("::1", 8883, true));
    }

    #[test]
    fn hub_urls_with_other_schemes_or_extra_parts_are_rejected() {
        for bad in [
            "hub.example.org:8883",
            "https://hub.example.org",
            "ssl://hub.example.org",
            "mqtts://user@hub.example.org",
            "mqtts://hub.example.org/topic",
            "mqtts://hub.example.org:0",
            "mqtts://hub.example.org:70000",
            "mqtts://hub.example.org:",
            "mqtts://",
            "mqtts://hub_example.org",
            "mqtts://2001:db8::1",
            "mqtts://[2001:db8::1]x",
            "mqtts://-hub.example.org",
        ] {
            assert!(
                matches!(hub_url(bad), Err(Problem::Url { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn topic_prefixes_reject_wildcards_empty_levels_and_system_topics() {
        assert_eq!(topic_prefix("hl7edge/v1").unwrap(), "hl7edge/v1");
        for bad in [
            "", "/hl7edge", "hl7edge/", "a//b", "a/+/b", "a/#", "$SYS/x", "a b",
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
