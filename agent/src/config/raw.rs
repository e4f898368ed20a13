//! The configuration file as written: every key optional, unknown keys rejected.
//!
//! Nothing here is validated beyond TOML types; `validate.rs` turns this into the typed
//! [`Config`](super::Config). Keeping required keys optional here lets validation say which key
//! is missing and give an example, instead of serde's generic "missing field".

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{AckMode, Custody, LogFormat, LogLevel};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub quarantine: RawQuarantine,
    #[serde(default)]
    pub listener: Vec<RawListener>,
    #[serde(default)]
    pub hub: RawHub,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub silence: RawSilence,
    #[serde(default)]
    pub log: RawLog,
    pub enroll: Option<RawEnroll>,
}

/// `[enroll]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnroll {
    pub claim_cert: Option<String>,
    pub claim_key: Option<String>,
}

/// `[gateway]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub org: Option<String>,
    pub site: Option<String>,
    pub id: Option<String>,
}

/// `[storage]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub path: Option<String>,
    pub max_bytes: Option<Quantity>,
    pub retain_sent: Option<Quantity>,
    pub dedupe_window: Option<Quantity>,
}

/// `[quarantine]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuarantine {
    pub max_bytes: Option<Quantity>,
    pub retention: Option<Quantity>,
    pub warn_before: Option<Quantity>,
}

/// One `[[listener]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub name: Option<String>,
    pub bind: Option<String>,
    pub allow: Option<Vec<String>>,
    pub max_frame: Option<Quantity>,
    pub idle_timeout: Option<Quantity>,
    pub max_connections: Option<Whole>,
    pub mapping: Option<String>,
    pub time_zone: Option<String>,
    pub ack_mode: Option<AckMode>,
    pub include_raw: Option<bool>,
    pub drift_learning_messages: Option<Whole>,
    pub silence: Option<bool>,
    pub unmapped: Option<super::UnmappedPolicy>,
    pub tls: Option<RawListenerTls>,
}

/// `[listener.tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListenerTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
}

/// `[hub]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHub {
    pub url: Option<String>,
    pub insecure_plaintext: Option<bool>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_id: Option<String>,
    pub keep_alive: Option<Quantity>,
    pub inflight: Option<Whole>,
    pub topic_prefix: Option<String>,
    pub batch_max_records: Option<Whole>,
    pub max_payload: Option<Quantity>,
    pub connect_timeout: Option<Quantity>,
    pub custody: Option<Custody>,
    pub receipt_timeout: Option<Quantity>,
    pub push_key: Option<String>,
}

/// `[telemetry]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    pub interval: Option<Quantity>,
}

/// `[silence]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSilence {
    pub enabled: Option<bool>,
    pub factor: Option<Whole>,
    pub floor: Option<Quantity>,
    pub learn_days: Option<Whole>,
    pub window_days: Option<Whole>,
    pub hour: Option<Quantity>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<LogLevel>,
    pub format: Option<LogFormat>,
}

/// A size or duration as written: normally a string with a unit, but a bare integer is kept so
/// validation can say "add a unit" (durations) or take it as bytes (sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Quantity {
    /// `"30s"`, `"2 GiB"`
    Text(String),
    /// `30`
    Integer(i64),
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string with a unit, such as \"30s\" or \"512 MiB\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        Ok(Quantity::Text(v.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        Ok(Quantity::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        i64::try_from(v)
            .map(Quantity::Integer)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

/// An integer key. Its own visitor makes a wrong type read "expected a whole number" rather
/// than serde's "expected i64".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Whole(pub i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(WholeVisitor)
    }
}

struct WholeVisitor;

impl Visitor<'_> for WholeVisitor {
    type Value = Whole;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, such as 32")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
        Ok(Whole(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
        i64::try_from(v)
            .map(Whole)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_keeps_text_and_integers_apart() {
        let raw: RawStorage = toml::from_str("max_bytes = \"2 GiB\"\nretain_sent = 30").unwrap();
        assert_eq!(raw.max_bytes, Some(Quantity::Text("2 GiB".into())));
        assert_eq!(raw.retain_sent, Some(Quantity::Integer(30)));
    }

    #[test]
    fn quantity_rejects_a_boolean_saying_what_it_expected() {
        let err = toml::from_str::<RawStorage>("max_bytes = true").unwrap_err();
        assert!(
            err.message().contains("such as \"30s\""),
            "{}",
            err.message()
        );
    }

    #[test]
    fn whole_numbers_reject_strings_saying_what_they_expected() {
        let err = toml::from_str::<RawHub>("inflight = \"64\"").unwrap_err();
        assert!(
            err.message().contains("expected a whole number"),
            "{}",
            err.message()
        );
        let raw: RawHub = toml::from_str("inflight = 64").unwrap();
        assert_eq!(raw.inflight, Some(Whole(64)));
    }

    #[test]
    fn unknown_keys_in_a_section_are_rejected() {
        let err = toml::from_str::<RawHub>("urll = \"mqtts://x\"").unwrap_err();
        assert!(
            err.message().contains("unknown field `urll`"),
            "{}",
            err.message()
        );
    }
}
