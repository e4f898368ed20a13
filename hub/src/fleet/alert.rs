//! Alerts: the facts of a row that need someone's attention, in words.

use serde::Serialize;

use hl7edge_protocol::telemetry::Heartbeat;

use super::FleetConfig;
use super::row::{Liveness, Row};
use crate::human;

/// Something about a gateway that needs attention.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// The retained status says offline.
    Offline {
        /// The reason it gave, if any.
        reason: Option<String>,
    },
    /// Online for the broker, but heartbeats are missing: the gateway or its
    /// link may be stuck (the broker declares it offline only when its MQTT
    /// keep-alive runs out).
    Late {
        /// Heartbeats missed.
        missed: u64,
        /// Seconds since the last heartbeat (or since the hub first saw it).
        silent_s: u64,
        /// Its heartbeat interval, seconds.
        interval_s: u64,
    },
    /// The store is at its size limit or the disk is full: AR NAKs.
    StorageAlarm,
    /// Records too big for the hub's payload limit are set aside on the
    /// gateway (kept, not sent) and wait for a technician.
    RecordsParked {
        /// How many.
        count: u64,
    },
    /// The client certificate expires soon (or has expired: negative).
    CertExpiring {
        /// Days left.
        days_left: i64,
    },
    /// The oldest unsent record is older than the threshold.
    BacklogAge {
        /// Its age, seconds.
        oldest_s: u64,
        /// The threshold, seconds.
        limit_s: u64,
    },
    /// Records the broker acknowledged have waited too long for this hub's custody receipt
    /// (the gateway keeps them and publishes them again; the ingest may be down, behind, or
    /// dead-lettering them).
    ReceiptsOverdue {
        /// How many await a receipt.
        count: u64,
        /// The oldest one's wait, seconds.
        oldest_s: u64,
        /// The threshold, seconds.
        limit_s: u64,
    },
    /// The broker refuses the gateway's subscription to its receipts: in receipt mode nothing
    /// can leave it.
    ReceiptsRefused,
    /// The buffer will be full soon at the current ingest rate.
    BufferFilling {
        /// Estimated hours left.
        hours: f64,
    },
    /// A listener quarantined messages (answered AE) within the error window.
    ListenerFailing {
        /// Listener name.
        listener: String,
        /// Messages quarantined within the window.
        quarantined: u64,
        /// The window, seconds.
        window_s: u64,
    },
    /// A listener's sender reused control ids with different content within
    /// the error window (each such message was stored as new, not taken for
    /// a resend).
    ControlIdReused {
        /// Listener name.
        listener: String,
        /// Reuses within the window.
        count: u64,
        /// The window, seconds.
        window_s: u64,
    },
    /// A listener's sender changed what it sends.
    Drift {
        /// Listener name.
        listener: String,
        /// What changed.
        detail: String,
    },
    /// A listener has received nothing for far longer than it usually does at this hour of day
    /// (its sender or the interface may have stopped); never raised for a gateway that is
    /// offline or late.
    FeedSilent {
        /// Listener name.
        listener: String,
        /// Seconds since its last message.
        silent_s: u64,
        /// The usual gap between its messages at this hour, seconds; `None` when it usually
        /// sends nothing at this hour (it stopped before a quiet hour).
        usual_gap_s: Option<u64>,
    },
    /// A damaged database was set aside when the agent started.
    StoreRecovered {
        /// What was moved where.
        detail: String,
    },
    /// Quarantined messages on the gateway will be erased soon, never sent, unless a technician
    /// replays them (the gateway's `quarantine.warn_before`).
    QuarantineExpiring {
        /// How many.
        count: u64,
    },
    /// Damaged databases set aside at start are still on the gateway (patient data).
    DatabasesSetAside {
        /// How many.
        files: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A heartbeat on this gateway's topic named another gateway (it was dropped, not applied).
    IdentityMismatch {
        /// The identity the dropped heartbeat claimed (cut to a few hundred characters).
        reported: String,
    },
}

/// Every kind of alert, as the `kind` field and the metrics' `kind` label name them.
pub const KINDS: [&str; 17] = [
    "offline",
    "late",
    "storage_alarm",
    "records_parked",
    "quarantine_expiring",
    "databases_set_aside",
    "cert_expiring",
    "backlog_age",
    "receipts_overdue",
    "receipts_refused",
    "buffer_filling",
    "listener_failing",
    "control_id_reused",
    "drift",
    "feed_silent",
    "store_recovered",
    "identity_mismatch",
];

impl Alert {
    /// The alert's kind, one of [`KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::Offline { .. } => "offline",
            Alert::Late { .. } => "late",
            Alert::StorageAlarm => "storage_alarm",
            Alert::RecordsParked { .. } => "records_parked",
            Alert::QuarantineExpiring { .. } => "quarantine_expiring",
            Alert::DatabasesSetAside { .. } => "databases_set_aside",
            Alert::CertExpiring { .. } => "cert_expiring",
            Alert::BacklogAge { .. } => "backlog_age",
            Alert::ReceiptsOverdue { .. } => "receipts_overdue",
            Alert::ReceiptsRefused => "receipts_refused",
            Alert::BufferFilling { .. } => "buffer_filling",
            Alert::ListenerFailing { .. } => "listener_failing",
            Alert::ControlIdReused { .. } => "control_id_reused",
            Alert::Drift { .. } => "drift",
            Alert::FeedSilent { .. } => "feed_silent",
            Alert::StoreRecovered { .. } => "store_recovered",
            Alert::IdentityMismatch { .. } => "identity_mismatch",
        }
    }
}

/// The alerts of a row, most serious first; `silent_ms` is the time since
/// the gateway's last heartbeat (or status).
pub(super) fn alerts(
    row: &Row,
    hb: Option<&Heartbeat>,
    config: &FleetConfig,
    silent_ms: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    if row.state == Liveness::Offline {
        out.push(Alert::Offline {
            reason: row.offline_reason.clone(),
        });
    }
    if row.state == Liveness::Late {
        out.push(Alert::Late {
            missed: row.missed_heartbeats.unwrap_or(0),
            silent_s: u64::try_from(silent_ms / 1000).unwrap_or(0),
            interval_s: row.interval_s,
        });
    }
    if row.storage_alarm {
        out.push(Alert::StorageAlarm);
    }
    if let Some(count) = row.parked.filter(|n| *n > 0) {
        out.push(Alert::RecordsParked { count });
    }
    if let Some(days_left) = row.cert_days_left.filter(|d| *d < config.cert_warn_days) {
        out.push(Alert::CertExpiring { days_left });
    }
    let limit_s = config.backlog_alert.as_secs();
    if let Some(oldest_s) = row
        .oldest_unsent_ms
        .map(|m| m / 1000)
        .filter(|s| *s > limit_s)
    {
        out.push(Alert::BacklogAge { oldest_s, limit_s });
    }
    let receipt_limit_s = config.receipt_alert.as_secs();
    if let Some(oldest_s) = row
        .oldest_awaiting_receipt_ms
        .map(|m| m / 1000)
        .filter(|s| *s > receipt_limit_s)
    {
        out.push(Alert::ReceiptsOverdue {
            count: row.awaiting_receipt.unwrap_or(0),
            oldest_s,
            limit_s: receipt_limit_s,
        });
    }
    if row.hub_error_cause.as_deref() == Some("receipts_refused") {
        out.push(Alert::ReceiptsRefused);
    }
    if let Some(hours) = row
        .hours_until_full
        .filter(|h| h.is_finite() && *h < config.full_warn_hours)
    {
        out.push(Alert::BufferFilling { hours });
    }
    interface_alerts(row, &mut out);
    if let Some(detail) = hb.and_then(|hb| hb.storage.recovery.as_ref()) {
        out.push(Alert::StoreRecovered {
            detail: detail.clone(),
        });
    }
    if let Some(hb) = hb {
        at_rest_alerts(hb, &mut out);
    }
    out
}

/// Patient data the gateway holds besides its queue that needs a technician.
fn at_rest_alerts(hb: &Heartbeat, out: &mut Vec<Alert>) {
    let custody = &hb.custody;
    if custody.quarantine.expiring > 0 {
        out.push(Alert::QuarantineExpiring {
            count: custody.quarantine.expiring,
        });
    }
    if custody.set_aside.files > 0 {
        out.push(Alert::DatabasesSetAside {
            files: custody.set_aside.files,
            bytes: custody.set_aside.bytes,
        });
    }
}

fn interface_alerts(row: &Row, out: &mut Vec<Alert>) {
    let window_s = row.error_window_s;
    for l in row.listeners.iter().filter(|l| l.failing) {
        out.push(Alert::ListenerFailing {
            listener: l.stats.name.clone(),
            quarantined: l.quarantined_recently,
            window_s,
        });
    }
    for l in row.listeners.iter().filter(|l| l.reused_recently > 0) {
        out.push(Alert::ControlIdReused {
            listener: l.stats.name.clone(),
            count: l.reused_recently,
            window_s,
        });
    }
    for l in &row.listeners {
        if let Some(silent_s) = l.silent_s {
            out.push(Alert::FeedSilent {
                listener: l.stats.name.clone(),
                silent_s,
                usual_gap_s: l.stats.rhythm.and_then(|r| r.usual_gap_s),
            });
        }
    }
    for l in &row.listeners {
        for detail in &l.stats.drift {
            out.push(Alert::Drift {
                listener: l.stats.name.clone(),
                detail: detail.clone(),
            });
        }
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alert::Offline { reason: Some(r) } => write!(f, "offline ({r})"),
            Alert::Offline { reason: None } => write!(f, "offline"),
            Alert::Late {
                missed,
                silent_s,
                interval_s,
            } => write!(
                f,
                "late: no heartbeat for {} ({missed} missed, one expected every {}); the broker still has it online",
                human::duration(*silent_s),
                human::duration(*interval_s)
            ),
            Alert::StorageAlarm => write!(
                f,
                "storage full: new messages are refused (AR) until the queue drains"
            ),
            Alert::RecordsParked { count } => write!(
                f,
                "{count} record(s) too big for hub.max_payload set aside on the gateway, not sent \
                 (on the box: hl7edge parked list)"
            ),
            Alert::CertExpiring { days_left } => cert(f, *days_left),
            Alert::BacklogAge { oldest_s, limit_s } => write!(
                f,
                "backlog: oldest unsent record is {} old (alert above {})",
                human::duration(*oldest_s),
                human::duration(*limit_s)
            ),
            Alert::ReceiptsOverdue {
                count,
                oldest_s,
                limit_s,
            } => write!(
                f,
                "custody: {count} record(s) wait for this hub's receipt, the oldest for {} \
                 (alert above {}): check hl7edge-hub ingest (running? dead letters?)",
                human::duration(*oldest_s),
                human::duration(*limit_s)
            ),
            Alert::ReceiptsRefused => write!(
                f,
                "custody: the broker refuses the gateway's receipts subscription, so nothing \
                 leaves it (fix the broker ACL, hub/broker/mosquitto-acl)"
            ),
            Alert::BufferFilling { hours } => {
                write!(f, "buffer full in about {hours:.1} h at the current rate")
            }
            Alert::ListenerFailing {
                listener,
                quarantined,
                window_s,
            } => write!(
                f,
                "listener {listener}: {quarantined} message{} quarantined (answered AE) in the last {} (on the box: hl7edge quarantine list)",
                if *quarantined == 1 { "" } else { "s" },
                human::duration(*window_s)
            ),
            Alert::ControlIdReused {
                listener,
                count,
                window_s,
            } => write!(
                f,
                "listener {listener}: {count} control id{} reused with different content in the last {} (stored as new messages)",
                if *count == 1 { "" } else { "s" },
                human::duration(*window_s)
            ),
            Alert::Drift { listener, detail } => {
                write!(f, "listener {listener} drift: {detail}")
            }
            Alert::FeedSilent {
                listener,
                silent_s,
                usual_gap_s,
            } => {
                write!(
                    f,
                    "listener {listener}: no message for {}, ",
                    human::duration(*silent_s)
                )?;
                match usual_gap_s {
                    Some(gap) => write!(
                        f,
                        "usually one every {} at this hour",
                        human::duration(*gap)
                    )?,
                    None => write!(f, "far longer than usual before this hour")?,
                }
                write!(
                    f,
                    ": the sender or its interface may have stopped (the gateway itself is online)"
                )
            }
            Alert::StoreRecovered { detail } => {
                write!(f, "damaged database set aside at start: {detail}")
            }
            Alert::QuarantineExpiring { count } => write!(
                f,
                "{count} quarantined message(s) will be erased soon, never sent (on the box: \
                 hl7edge quarantine list, then replay or drop)"
            ),
            Alert::DatabasesSetAside { files, bytes } => write!(
                f,
                "{files} damaged database(s) set aside ({}) still hold patient data (on the box: \
                 hl7edge storage purge-set-aside once recovered)",
                human::bytes(*bytes)
            ),
            Alert::IdentityMismatch { reported } => write!(
                f,
                "a heartbeat on this gateway's topic said it is {reported} (dropped): check the \
                 gateway's [gateway] config, or whether its certificate is used by another box"
            ),
        }
    }
}

fn cert(f: &mut std::fmt::Formatter<'_>, days_left: i64) -> std::fmt::Result {
    match days_left {
        d if d < 0 => write!(f, "client certificate expired {} days ago", -d),
        0 => write!(f, "client certificate expires today"),
        1 => write!(f, "client certificate expires tomorrow"),
        d => write!(f, "client certificate expires in {d} days"),
    }
}
