//! The `--url` flag: a broker URL as the protocol crate parses it
//! (`mqtts://host[:port]` or `mqtt://host[:port]`), refused with an error
//! that names the flag and the expected form.

pub use hl7edge_protocol::broker_url::BrokerUrl;

/// Why `--url` was refused.
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

/// Parses the `--url` flag (the rules are the protocol crate's, shared with the agent).
pub fn parse(value: &str) -> Result<BrokerUrl, UrlError> {
    BrokerUrl::parse(value).map_err(|e| UrlError {
        value: value.to_owned(),
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_by_scheme() {
        let u = parse("mqtts://Hub.Example.org").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (true, "hub.example.org", 8883)
        );
        let u = parse("mqtt://127.0.0.1:1884/").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 1884));
        let u = parse("mqtts://[::1]:9000").unwrap();
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
            let err = parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("expected mqtts://host:port"),
                "{bad}: {err}"
            );
        }
    }
}
