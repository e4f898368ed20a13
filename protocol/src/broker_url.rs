//! The broker URL both sides use: `mqtts://host[:port]` or `mqtt://host[:port]`.
//!
//! Deliberately narrow: nothing else (no user, path, query or fragment), so a general URL parser
//! would only add ways to be wrong. Hosts are DNS names (RFC 1123 labels, lowercased), IPv4
//! addresses or bracketed IPv6 addresses. The error carries only the reason; the caller says
//! where the URL came from (a config key, a command-line flag).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Default port for MQTT over TLS.
pub const MQTTS_PORT: u16 = 8883;
/// Default port for plaintext MQTT.
pub const MQTT_PORT: u16 = 1883;

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://` (true) or `mqtt://` (false).
    pub tls: bool,
    /// Host name (lowercase) or IP address, IPv6 without brackets.
    pub host: String,
    /// Explicit port, or the scheme's default.
    pub port: u16,
}

/// Why a broker URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BrokerUrlError {
    /// What is wrong with it, in words.
    pub reason: &'static str,
}

impl BrokerUrl {
    /// Parses `mqtts://host[:port]` (or `mqtt://…`).
    pub fn parse(value: &str) -> Result<BrokerUrl, BrokerUrlError> {
        let fail = |reason| BrokerUrlError { reason };
        let (scheme, rest) = value
            .trim()
            .split_once("://")
            .ok_or_else(|| fail("it has no scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtts" => true,
            "mqtt" => false,
            _ => return Err(fail("the scheme must be mqtts:// (or mqtt://)")),
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
            None if tls => MQTTS_PORT,
            None => MQTT_PORT,
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| fail("the port must be 1 to 65535"))?,
        };
        Ok(BrokerUrl { tls, host, port })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
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
    (host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host))
        .then(|| (host.to_ascii_lowercase(), port))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, tls: bool) -> BrokerUrl {
        BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn ports_default_by_scheme_and_hosts_are_lowercased() {
        let parse = |s| BrokerUrl::parse(s).unwrap();
        assert_eq!(
            parse("mqtts://hub.example.org"),
            url("hub.example.org", 8883, true)
        );
        assert_eq!(parse("mqtt://127.0.0.1"), url("127.0.0.1", 1883, false));
        assert_eq!(
            parse("MQTTS://Hub.Example.org:9883/"),
            url("hub.example.org", 9883, true)
        );
        assert_eq!(
            parse("mqtts://[2001:db8::1]:8884"),
            url("2001:db8::1", 8884, true)
        );
        assert_eq!(parse("mqtts://[::1]"), url("::1", 8883, true));
    }

    #[test]
    fn display_brackets_ipv6_and_always_names_the_port() {
        assert_eq!(
            BrokerUrl::parse("mqtts://[::1]:9000").unwrap().to_string(),
            "mqtts://[::1]:9000"
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://hub").unwrap().to_string(),
            "mqtt://hub:1883"
        );
    }

    #[test]
    fn other_schemes_extra_parts_and_bad_hosts_are_refused() {
        for bad in [
            "hub.example.org:8883",
            "https://hub.example.org",
            "ssl://hub.example.org",
            "mqtts://user@hub.example.org",
            "mqtts://hub.example.org/topic",
            "mqtts://hub.example.org:0",
            "mqtts://hub.example.org:70000",
            "mqtts://hub.example.org:x",
            "mqtts://hub.example.org:",
            "mqtts://",
            "mqtts://hub_example.org",
            "mqtts://2001:db8::1",
            "mqtts://[2001:db8::1]x",
            "mqtts://[zz]",
            "mqtts://-hub.example.org",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
