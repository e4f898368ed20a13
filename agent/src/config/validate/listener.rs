//! `[[listener]]` validation: each listener on its own, then uniqueness across listeners.

use std::num::NonZeroU16;
use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::{KIB, MIB, duration_or, nonzero_u16, required, size_or};
use crate::config::error::{Invalid, Problem, at_key};
use crate::config::raw::{RawListener, RawListenerTls, Whole};
use crate::config::{Listener, ListenerTls, values};

const DEFAULT_MAX_FRAME_BYTES: u64 = MIB;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
const DEFAULT_MAX_CONNECTIONS: u16 = 32;
const DEFAULT_DRIFT_LEARNING: u16 = 50;

/// All listeners: at least one, unique names, no two binding the same port on overlapping
/// addresses.
pub(super) fn listeners(raw: &[RawListener], base_dir: &Path) -> Result<Vec<Listener>, Invalid> {
    if raw.is_empty() {
        return Err(Invalid {
            key: "listener".into(),
            problem: Problem::Missing {
                example: "a [[listener]] table with name = \"lab\", bind = \"0.0.0.0:2575\", allow = [\"10.0.0.0/24\"]",
            },
        });
    }
    let mut out: Vec<Listener> = Vec::with_capacity(raw.len());
    for (i, raw) in raw.iter().enumerate() {
        let listener = listener(raw, i, base_dir)?;
        check_unique(&out, &listener, i)?;
        out.push(listener);
    }
    Ok(out)
}

pub(super) fn check_unique(
    earlier: &[Listener],
    listener: &Listener,
    i: usize,
) -> Result<(), Invalid> {
    if let Some(first) = earlier.iter().position(|l| l.name == listener.name) {
        let problem = Problem::DuplicateName {
            name: listener.name.clone(),
            first,
        };
        return Err(at_key(format!("listener[{i}].name"))(problem));
    }
    if let Some(first) = earlier
        .iter()
        .position(|l| values::binds_conflict(l.bind, listener.bind))
    {
        let other = earlier
            .get(first)
            .map(|l| l.bind.to_string())
            .unwrap_or_default();
        let problem = Problem::DuplicateBind {
            bind: listener.bind.to_string(),
            other,
            first,
        };
        return Err(at_key(format!("listener[{i}].bind"))(problem));
    }
    Ok(())
}

pub(super) fn listener(raw: &RawListener, i: usize, base_dir: &Path) -> Result<Listener, Invalid> {
    let key = |field: &str| format!("listener[{i}].{field}");
    let name = required(&raw.name, &key("name"), "name = \"lab\"")?;
    let bind = required(&raw.bind, &key("bind"), "bind = \"0.0.0.0:2575\"")?;
    let max_frame_bytes = size_or(
        &raw.max_frame,
        DEFAULT_MAX_FRAME_BYTES,
        KIB..=64 * MIB,
        &key("max_frame"),
    )?;
    let idle_timeout = duration_or(
        &raw.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
        Duration::ZERO..=MAX_IDLE_TIMEOUT,
        &key("idle_timeout"),
    )?;
    Ok(Listener {
        name: values::name(name, false).map_err(at_key(key("name")))?,
        bind: values::socket_addr(bind).map_err(at_key(key("bind")))?,
        allow: allow_list(raw.allow.as_deref(), i)?,
        max_frame_bytes: usize::try_from(max_frame_bytes).unwrap_or(usize::MAX),
        idle_timeout: Some(idle_timeout).filter(|d| !d.is_zero()),
        max_connections: max_connections(raw.max_connections, &key("max_connections"))?,
        mapping: optional_path(raw.mapping.as_deref(), base_dir, &key("mapping"))?,
        time_zone: time_zone(raw.time_zone.as_deref(), &key("time_zone"))?,
        ack_mode: raw.ack_mode.unwrap_or_default(),
        include_raw: raw.include_raw.unwrap_or(false),
        drift_learning_messages: nonzero_u16(
            raw.drift_learning_messages,
            DEFAULT_DRIFT_LEARNING,
            1..=u16::MAX,
            &key("drift_learning_messages"),
        )?,
        silence: raw.silence.unwrap_or(true),
        tls: raw
            .tls
            .as_ref()
            .map(|tls| listener_tls(tls, i, base_dir))
            .transpose()?,
    })
}

fn allow_list(raw: Option<&[String]>, i: usize) -> Result<Vec<ipnet::IpNet>, Invalid> {
    let key = format!("listener[{i}].allow");
    let example = "allow = [\"10.0.0.0/24\"]";
    let entries = raw.ok_or_else(|| at_key(key.clone())(Problem::Missing { example }))?;
    if entries.is_empty() {
        return Err(at_key(key)(Problem::EmptyAllowList));
    }
    let parse = |(j, entry): (usize, &String)| {
        values::network(entry).map_err(at_key(format!("{key}[{j}]")))
    };
    entries.iter().enumerate().map(parse).collect()
}

fn max_connections(value: Option<Whole>, key: &str) -> Result<NonZeroU16, Invalid> {
    nonzero_u16(value, DEFAULT_MAX_CONNECTIONS, 1..=u16::MAX, key)
}

fn optional_path(
    value: Option<&str>,
    base_dir: &Path,
    key: &str,
) -> Result<Option<std::path::PathBuf>, Invalid> {
    value
        .map(|v| values::path(base_dir, v).map_err(at_key(key)))
        .transpose()
}

/// The named zone, or the system's when absent.
fn time_zone(value: Option<&str>, key: &str) -> Result<TimeZone, Invalid> {
    match value {
        Some(name) => values::time_zone(name).map_err(at_key(key)),
        None => Ok(TimeZone::system()),
    }
}

fn listener_tls(raw: &RawListenerTls, i: usize, base_dir: &Path) -> Result<ListenerTls, Invalid> {
    let key = |field: &str| format!("listener[{i}].tls.{field}");
    let path = |value: &Option<String>, field: &str, example| {
        let value = required(value, &key(field), example)?;
        values::path(base_dir, value).map_err(at_key(key(field)))
    };
    Ok(ListenerTls {
        cert: path(&raw.cert, "cert", "cert = \"/etc/hl7edge/mllp.pem\"")?,
        key: path(&raw.key, "key", "key = \"/etc/hl7edge/mllp.key\"")?,
        client_ca: optional_path(raw.client_ca.as_deref(), base_dir, &key("client_ca"))?,
    })
}
