//! Raw → typed: parses the TOML, then validates each section and fills in defaults.
//!
//! Validation stops at the first problem; the error says where it is. Defaults live here, next to
//! the checks that apply to them, and are listed in `docs/configuration.md`.

mod hub;
mod listener;
mod pushed;

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use toml::de::DeTable;

use super::error::{self, Invalid, Problem, at_key};
use super::raw::{
    Quantity, RawConfig, RawEnroll, RawGateway, RawQuarantine, RawSilence, RawStorage,
    RawTelemetry, Whole,
};
use super::{Config, ConfigError, Gateway, Log, Quarantine, Storage, Telemetry, values};
use crate::telemetry::rhythm::SilenceConfig;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const SECOND: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(86_400);

const DEFAULT_STORAGE_PATH: &str = "/var/lib/hl7edge/queue.db";
const DEFAULT_MAX_BYTES: u64 = 2 * GIB;
/// SQLite's own limit with 4 KiB pages is 16 TiB.
const MAX_BYTES_RANGE: RangeInclusive<u64> = MIB..=16 * TIB;
const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 86_400);
const RETENTION_RANGE: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(365 * 86_400);
const DEFAULT_TELEMETRY_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_QUARANTINE_MAX_BYTES: u64 = 256 * MIB;
const DEFAULT_QUARANTINE_RETENTION: Duration = Duration::from_secs(30 * 86_400);
const QUARANTINE_RETENTION_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(3600)..=Duration::from_secs(3650 * 86_400);
/// The alarm's default lead: a week, or half the retention when that is shorter.
const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(7 * 86_400);

/// Parses and validates configuration text read from `origin`.
pub(super) fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|err| syntax_error(text, origin, &err))?;
    let raw: RawConfig = serde_path_to_error::deserialize(deserializer)
        .map_err(|err| shape_error(text, origin, err))?;
    let base_dir = origin.parent().unwrap_or(Path::new(""));
    validate(&raw, base_dir).map_err(|invalid| key_error(text, origin, invalid))
}

/// A listener's pushed settings (TOML text named `origin` in errors) laid over its configured
/// settings `base` (see [`pushed::listener`]).
pub(super) fn pushed_listener(
    text: &str,
    origin: &Path,
    base: &super::Listener,
    others: &[super::Listener],
    base_dir: &Path,
) -> Result<super::Listener, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|err| syntax_error(text, origin, &err))?;
    let raw: super::raw::RawListener = serde_path_to_error::deserialize(deserializer)
        .map_err(|err| shape_error(text, origin, err))?;
    pushed::listener(raw, base, others, base_dir)
        .map_err(|invalid| key_error(text, origin, invalid))
}

fn validate(raw: &RawConfig, base_dir: &Path) -> Result<Config, Invalid> {
    let gateway = gateway(&raw.gateway)?;
    let storage = storage(&raw.storage, base_dir)?;
    let quarantine = quarantine(&raw.quarantine)?;
    let listeners = listener::listeners(&raw.listener, base_dir)?;
    let hub = hub::hub(&raw.hub, &gateway, base_dir)?;
    let telemetry = telemetry(&raw.telemetry)?;
    let silence = silence(&raw.silence)?;
    let log = Log {
        level: raw.log.level.unwrap_or_default(),
        format: raw.log.format.unwrap_or_default(),
    };
    let enroll = raw
        .enroll
        .as_ref()
        .map(|e| enroll(e, &hub, base_dir))
        .transpose()?;
    Ok(Config {
        gateway,
        storage,
        quarantine,
        listeners,
        hub,
        telemetry,
        silence,
        log,
        enroll,
    })
}

/// `[enroll]`: both paths, and only with a TLS hub (enrollment installs a device certificate).
fn enroll(raw: &RawEnroll, hub: &super::Hub, base_dir: &Path) -> Result<super::Enroll, Invalid> {
    let path = |value: &Option<String>, key: &str, example| {
        let value = required(value, key, example)?;
        values::path(base_dir, value).map_err(at_key(key))
    };
    if hub.transport == super::HubTransport::Plaintext {
        return Err(at_key("enroll.claim_cert")(Problem::TlsWithPlaintext));
    }
    Ok(super::Enroll {
        claim_cert: path(
            &raw.claim_cert,
            "enroll.claim_cert",
            "claim_cert = \"/etc/hl7edge/claim.pem\"",
        )?,
        claim_key: path(
            &raw.claim_key,
            "enroll.claim_key",
            "claim_key = \"/etc/hl7edge/claim.key\"",
        )?,
    })
}

fn gateway(raw: &RawGateway) -> Result<Gateway, Invalid> {
    let part = |value: &Option<String>, key: &str, example| {
        values::name(required(value, key, example)?, true).map_err(at_key(key))
    };
    let org = part(&raw.org, "gateway.org", "org = \"acme-health\"")?;
    if hl7edge_protocol::topic::reserved_org(&org) {
        return Err(at_key("gateway.org")(Problem::Reserved { value: org }));
    }
    Ok(Gateway {
        org,
        site: part(&raw.site, "gateway.site", "site = \"clinic-12\"")?,
        id: part(&raw.id, "gateway.id", "id = \"gw-0001\"")?,
    })
}

fn storage(raw: &RawStorage, base_dir: &Path) -> Result<Storage, Invalid> {
    let path = raw.path.as_deref().unwrap_or(DEFAULT_STORAGE_PATH);
    Ok(Storage {
        path: values::path(base_dir, path).map_err(at_key("storage.path"))?,
        max_bytes: size_or(
            &raw.max_bytes,
            DEFAULT_MAX_BYTES,
            MAX_BYTES_RANGE,
            "storage.max_bytes",
        )?,
        retain_sent: duration_or(
            &raw.retain_sent,
            Duration::ZERO,
            RETENTION_RANGE,
            "storage.retain_sent",
        )?,
        dedupe_window: duration_or(
            &raw.dedupe_window,
            DEFAULT_DEDUPE_WINDOW,
            RETENTION_RANGE,
            "storage.dedupe_window",
        )?,
    })
}

fn quarantine(raw: &RawQuarantine) -> Result<Quarantine, Invalid> {
    let retention = duration_or(
        &raw.retention,
        DEFAULT_QUARANTINE_RETENTION,
        QUARANTINE_RETENTION_RANGE,
        "quarantine.retention",
    )?;
    let warn_before = duration_or(
        &raw.warn_before,
        DEFAULT_WARN_BEFORE.min(retention / 2),
        Duration::ZERO..=retention,
        "quarantine.warn_before",
    )?;
    if warn_before >= retention {
        return Err(at_key("quarantine.warn_before")(Problem::NotShorterThan {
            value: warn_before,
            other_key: "quarantine.retention",
            other: retention,
        }));
    }
    Ok(Quarantine {
        max_bytes: size_or(
            &raw.max_bytes,
            DEFAULT_QUARANTINE_MAX_BYTES,
            MAX_BYTES_RANGE,
            "quarantine.max_bytes",
        )?,
        retention,
        warn_before,
    })
}

fn telemetry(raw: &RawTelemetry) -> Result<Telemetry, Invalid> {
    let interval = duration_or(
        &raw.interval,
        DEFAULT_TELEMETRY_INTERVAL,
        SECOND..=DAY,
        "telemetry.interval",
    )?;
    Ok(Telemetry { interval })
}

fn silence(raw: &RawSilence) -> Result<SilenceConfig, Invalid> {
    let d = SilenceConfig::default();
    let whole = |value: Option<Whole>, default: u32, range: RangeInclusive<i64>, key: &str| {
        values::integer(value.map_or(i64::from(default), |w| w.0), range)
            .map(|n| u32::try_from(n).unwrap_or(default))
            .map_err(at_key(key))
    };
    Ok(SilenceConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        factor: whole(raw.factor, d.factor, 2..=1000, "silence.factor")?,
        floor: duration_or(
            &raw.floor,
            d.floor,
            SECOND..=Duration::from_secs(7 * 86_400),
            "silence.floor",
        )?,
        learn_days: whole(raw.learn_days, d.learn_days, 1..=60, "silence.learn_days")?,
        window_days: whole(
            raw.window_days,
            d.window_days,
            1..=60,
            "silence.window_days",
        )?,
        hour: duration_or(
            &raw.hour,
            d.hour,
            Duration::from_millis(100)..=Duration::from_secs(3600),
            "silence.hour",
        )?,
    })
}

/// The value of a required key, or [`Problem::Missing`] with an example line.
fn required<'a, T>(
    value: &'a Option<T>,
    key: &str,
    example: &'static str,
) -> Result<&'a T, Invalid> {
    value.as_ref().ok_or_else(|| Invalid {
        key: key.to_owned(),
        problem: Problem::Missing { example },
    })
}

/// A size in bytes, `default` when absent.
fn size_or(
    value: &Option<Quantity>,
    default: u64,
    range: RangeInclusive<u64>,
    key: &str,
) -> Result<u64, Invalid> {
    value
        .as_ref()
        .map_or(Ok(default), |q| values::size(q, range).map_err(at_key(key)))
}

/// A duration, `default` when absent.
fn duration_or(
    value: &Option<Quantity>,
    default: Duration,
    range: RangeInclusive<Duration>,
    key: &str,
) -> Result<Duration, Invalid> {
    value.as_ref().map_or(Ok(default), |q| {
        values::duration(q, range).map_err(at_key(key))
    })
}

/// An integer that must fit a `NonZeroU16` within `range` (which must start at 1 or above).
fn nonzero_u16(
    value: Option<Whole>,
    default: u16,
    range: RangeInclusive<u16>,
    key: &str,
) -> Result<std::num::NonZeroU16, Invalid> {
    let wide = i64::from(*range.start())..=i64::from(*range.end());
    let n = values::integer(value.map_or(i64::from(default), |w| w.0), wide.clone())
        .map_err(at_key(key))?;
    u16::try_from(n)
        .ok()
        .and_then(std::num::NonZeroU16::new)
        .ok_or_else(|| {
            at_key(key)(Problem::IntegerRange {
                value: n,
                min: *wide.start(),
                max: *wide.end(),
            })
        })
}

fn syntax_error(text: &str, origin: &Path, err: &toml::de::Error) -> ConfigError {
    ConfigError::Syntax {
        file: origin.to_path_buf(),
        position: err
            .span()
            .and_then(|span| error::position_of(text, span.start)),
        message: err.message().trim_end().to_owned(),
    }
}

fn shape_error(
    text: &str,
    origin: &Path,
    err: serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let key = err.path().to_string();
    let inner = err.into_inner();
    let position = inner
        .span()
        .and_then(|span| error::position_of(text, span.start))
        .or_else(|| locate(text, &key));
    let mut message = inner.message().trim_end().to_owned();
    if key == "listener" && message.contains("expected a sequence") {
        message.push_str(" (listeners are written [[listener]], with double brackets)");
    }
    ConfigError::Key {
        file: origin.to_path_buf(),
        position,
        key,
        problem: Box::new(Problem::Shape { message }),
    }
}

fn key_error(text: &str, origin: &Path, invalid: Invalid) -> ConfigError {
    ConfigError::Key {
        file: origin.to_path_buf(),
        position: locate(text, &invalid.key),
        key: invalid.key,
        problem: Box::new(invalid.problem),
    }
}

/// Re-parses the text (only on the error path) to find where `key` is.
fn locate(text: &str, key: &str) -> Option<super::Position> {
    let root = DeTable::parse(text).ok()?;
    error::locate(text, &root, key)
}

#[cfg(test)]
mod tests;
