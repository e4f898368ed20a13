//! The broker URL: `mqtts://host[:port]` or `mqtt://host[:port]`, nothing
//! else (no user, path or query), so a general URL parser would only add
//! ways to be wrong.

use std::net::Ipv6Addr;

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

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--url {value:?}: {reason}; expected mqtts://host:port (or mqtt://host:port with --insecure-plaintext)"
)]
pub struct UrlError {
    /// The URL as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl BrokerUrl {
    /// Parses `mqtts://host[:port]` (or `mqtt://...`).
    pub fn parse(value: &str) -> Result<BrokerUrl, UrlError> {
        let fail = |reason| UrlError {
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
            _ => return Err(fail("the scheme must be mqtts:// or mqtt://")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(fail("only scheme://host[:port] is allowed"));
        }
        let (host, port) =
            split_host_port(authority).ok_or_else(|| fail("the host is missing or malformed"))?;
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

/// `host`, `host:port`, `[v6]` or `[v6]:port` into the host and port text.
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
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    (!host.is_empty() && host.chars().all(valid)).then(|| (host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_by_scheme() {
        let u = BrokerUrl::parse("mqtts://Hub.Example.org").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "hub.example.org", 8883)
        );
        let u = BrokerUrl::parse("mqtt://127.0.0.1:1884/").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 1884));
        let u = BrokerUrl::parse("mqtts://[::1]:9000").unwrap();
        assert_eq!(u.to_string(), "mqtts://[::1]:9000");
    }

    #[test]
    fn other_schemes_and_extra_parts_are_refused_with_the_expected_form() {
        for bad in [
            "hub:8883",
            "https://hub",
            "mqtts://user@hub",
            "mqtts://hub/topic",
            "mqtts://hub:0",
            "mqtts://hub:x",
            "mqtts://",
            "mqtts://[zz]",
        ] {
            let err = BrokerUrl::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("expected mqtts://host:port"),
                "{bad}: {err}"
            );
        }
    }
}
