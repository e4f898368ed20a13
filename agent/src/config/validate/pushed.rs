//! A listener's settings pushed by the hub (`hl7edge-hub push listener`), laid over the
//! listener as the configuration file sets it.
//!
//! The pushed text has the keys of a `[[listener]]` table. Each key it holds replaces the
//! configured one, validated by the same rules; a key it does not hold keeps the configured
//! value, so a push says only what changes and the effective settings are always the file's
//! plus the latest push (never the sum of a push history). The keys a push may change are the
//! ones the listener's socket and connections use (`bind`, `allow`, `max_frame`,
//! `idle_timeout`, `max_connections`, `tls`); the ones that shape records (`mapping`,
//! `time_zone`, `ack_mode`, `include_raw`, `drift_learning_messages`, `silence`) may be
//! repeated with the configured value but not changed. The result must agree with the other
//! listeners as the file's listeners must (no two binding one port).
//!
//! Error keys are the pushed text's own (`bind`, `tls.cert`), so the position found is in it.

use std::path::Path;

use super::listener::{check_unique, listener as validate_one};
use crate::config::Listener;
use crate::config::error::{Invalid, Problem};
use crate::config::raw::RawListener;

/// `raw` (the pushed text) over `base` (the configured listener), checked against `others`
/// (the other listeners as they run).
pub(super) fn listener(
    mut raw: RawListener,
    base: &Listener,
    others: &[Listener],
    base_dir: &Path,
) -> Result<Listener, Invalid> {
    let unprefix = |mut invalid: Invalid| {
        if let Some((_, rest)) = invalid.key.split_once("].") {
            invalid.key = rest.to_owned();
        }
        invalid
    };
    if let Some(name) = &raw.name
        && *name != base.name
    {
        return Err(Invalid {
            key: "name".into(),
            problem: Problem::Shape {
                message: format!(
                    "the settings name listener {name:?} but are pushed for {:?} (leave name out)",
                    base.name
                ),
            },
        });
    }
    let fixed = [
        (
            "mapping",
            raw.mapping.is_some(),
            " (a mapping push changes the table)",
        ),
        ("time_zone", raw.time_zone.is_some(), ""),
        ("ack_mode", raw.ack_mode.is_some(), ""),
        ("include_raw", raw.include_raw.is_some(), ""),
        (
            "drift_learning_messages",
            raw.drift_learning_messages.is_some(),
            "",
        ),
        ("silence", raw.silence.is_some(), ""),
    ];
    let given = (
        raw.allow.is_some(),
        raw.max_frame.is_some(),
        raw.idle_timeout.is_some(),
        raw.max_connections.is_some(),
        raw.tls.is_some(),
    );
    raw.name = Some(base.name.clone());
    raw.bind.get_or_insert_with(|| base.bind.to_string());
    raw.allow
        .get_or_insert_with(|| base.allow.iter().map(ToString::to_string).collect());
    let pushed = validate_one(&raw, 0, base_dir).map_err(unprefix)?;
    let unchanged = |key: &str| match key {
        "mapping" => pushed.mapping == base.mapping,
        "time_zone" => pushed.time_zone == base.time_zone,
        "ack_mode" => pushed.ack_mode == base.ack_mode,
        "include_raw" => pushed.include_raw == base.include_raw,
        "drift_learning_messages" => pushed.drift_learning_messages == base.drift_learning_messages,
        _ => pushed.silence == base.silence,
    };
    if let Some((key, _, hint)) = fixed
        .iter()
        .find(|(key, present, _)| *present && !unchanged(key))
    {
        return Err(Invalid {
            key: (*key).to_owned(),
            problem: Problem::NotPushable { key, hint },
        });
    }
    let (allow, max_frame, idle, max_connections, tls) = given;
    let merged = Listener {
        name: base.name.clone(),
        bind: pushed.bind,
        allow: if allow {
            pushed.allow
        } else {
            base.allow.clone()
        },
        max_frame_bytes: if max_frame {
            pushed.max_frame_bytes
        } else {
            base.max_frame_bytes
        },
        idle_timeout: if idle {
            pushed.idle_timeout
        } else {
            base.idle_timeout
        },
        max_connections: if max_connections {
            pushed.max_connections
        } else {
            base.max_connections
        },
        tls: if tls { pushed.tls } else { base.tls.clone() },
        ..base.clone()
    };
    let others: Vec<Listener> = others
        .iter()
        .filter(|l| l.name != base.name)
        .cloned()
        .collect();
    check_unique(&others, &merged, 0).map_err(unprefix)?;
    Ok(merged)
}
