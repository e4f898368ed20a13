//! `[hub]` validation: TLS unless plaintext was explicitly allowed, MQTT settings with defaults.

use std::path::Path;
use std::time::Duration;

use super::{KIB, MIB, SECOND, duration_or, nonzero_u16, required, size_or};
use crate::config::error::{Invalid, Problem, at_key};
use crate::config::hub_url;
use crate::config::raw::RawHub;
use crate::config::{Gateway, Hub, HubTls, HubTransport, values};
use hl7edge_protocol::broker_url::BrokerUrl;

const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// MQTT carries keep-alive as a 16-bit number of seconds.
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(65_535);
const DEFAULT_INFLIGHT: u16 = 64;
const DEFAULT_TOPIC_PREFIX: &str = "hl7edge/v1";
const DEFAULT_BATCH_MAX_RECORDS: u16 = 64;
const MAX_BATCH_RECORDS: u16 = 1024;
/// 128,000 bytes: under AWS IoT Core's payload cap (128 KB) whichever way
/// it is counted, and far under mosquitto's, EMQX's and HiveMQ's defaults.
const DEFAULT_MAX_PAYLOAD: u64 = 128_000;
/// A heartbeat must fit; more than 64 MiB in one payload would only cost
/// the box memory (a publish is held whole until its PUBACK).
const MAX_PAYLOAD_RANGE: std::ops::RangeInclusive<u64> = 16 * KIB..=64 * MIB;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn hub(raw: &RawHub, gateway: &Gateway, base_dir: &Path) -> Result<Hub, Invalid> {
    let url = required(
        &raw.url,
        "hub.url",
        "url = \"mqtts://hub.example.org:8883\"",
    )?;
    let BrokerUrl { tls, host, port } = hub_url::hub_url(url).map_err(at_key("hub.url"))?;
    if !tls && raw.insecure_plaintext != Some(true) {
        return Err(at_key("hub.url")(Problem::PlaintextRefused {
            value: url.clone(),
        }));
    }
    let transport = if tls {
        HubTransport::Tls(hub_tls(raw, base_dir)?)
    } else {
        plaintext(raw)?
    };
    let default_client_id = format!("{}-{}-{}", gateway.org, gateway.site, gateway.id);
    let client_id = raw.client_id.as_deref().unwrap_or(&default_client_id);
    let topic_prefix = raw.topic_prefix.as_deref().unwrap_or(DEFAULT_TOPIC_PREFIX);
    Ok(Hub {
        host,
        port,
        transport,
        client_id: hub_url::client_id(client_id).map_err(at_key("hub.client_id"))?,
        keep_alive: duration_or(
            &raw.keep_alive,
            DEFAULT_KEEP_ALIVE,
            SECOND..=MAX_KEEP_ALIVE,
            "hub.keep_alive",
        )?,
        inflight: nonzero_u16(raw.inflight, DEFAULT_INFLIGHT, 1..=u16::MAX, "hub.inflight")?,
        topic_prefix: hub_url::topic_prefix(topic_prefix).map_err(at_key("hub.topic_prefix"))?,
        batch_max_records: nonzero_u16(
            raw.batch_max_records,
            DEFAULT_BATCH_MAX_RECORDS,
            1..=MAX_BATCH_RECORDS,
            "hub.batch_max_records",
        )?,
        max_payload: usize::try_from(size_or(
            &raw.max_payload,
            DEFAULT_MAX_PAYLOAD,
            MAX_PAYLOAD_RANGE,
            "hub.max_payload",
        )?)
        .unwrap_or(usize::MAX),
        connect_timeout: duration_or(
            &raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
            SECOND..=MAX_CONNECT_TIMEOUT,
            "hub.connect_timeout",
        )?,
    })
}

fn hub_tls(raw: &RawHub, base_dir: &Path) -> Result<HubTls, Invalid> {
    let path = |value: &Option<String>, key: &str, example| {
        let value = required(value, key, example)?;
        values::path(base_dir, value).map_err(at_key(key))
    };
    Ok(HubTls {
        ca: path(&raw.ca, "hub.ca", "ca = \"/etc/hl7edge/hub-ca.pem\"")?,
        cert: path(&raw.cert, "hub.cert", "cert = \"/etc/hl7edge/device.pem\"")?,
        key: path(&raw.key, "hub.key", "key = \"/etc/hl7edge/device.key\"")?,
    })
}

/// Plaintext: TLS keys would be silently ignored, so they are refused instead.
fn plaintext(raw: &RawHub) -> Result<HubTransport, Invalid> {
    let set = [
        ("hub.ca", &raw.ca),
        ("hub.cert", &raw.cert),
        ("hub.key", &raw.key),
    ];
    match set.iter().find(|(_, value)| value.is_some()) {
        Some((key, _)) => Err(at_key(*key)(Problem::TlsWithPlaintext)),
        None => Ok(HubTransport::Plaintext),
    }
}
