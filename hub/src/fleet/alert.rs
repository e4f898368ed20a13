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
    /// Online, but no heartbeat for more than the stale threshold.
    StaleHeartbeat {
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
    /// The buffer will be full soon at the current ingest rate.
    BufferFilling {
        /// Estimated hours left.
        hours: f64,
    },
    /// An interface's quarantined or rejected counts rose recently.
    InterfaceErrors {
        /// Interface name.
        source: String,
        /// Quarantined since start.
        quarantined: u64,
        /// Rejected since start.
        rejected: u64,
    },
    /// An interface reused control ids with different content recently
    /// (each such message was stored as new, not taken for a resend).
    ControlIdReused {
        /// Interface name.
        source: String,
        /// Reuses over the gateway store's lifetime.
        total: u64,
    },
    /// An interface changed what it sends.
    Drift {
        /// Interface name.
        source: String,
        /// What changed.
        detail: String,
    },
    /// A damaged database was set aside when the agent started.
    StoreRecovered {
        /// What was moved where.
        detail: String,
    },
    /// The heartbeat names another gateway than its topic.
    IdentityMismatch {
        /// The identity inside the heartbeat.
        reported: String,
    },
}

/// The alerts of a row, most serious first. `silent_ms` is set when the
/// heartbeat is stale.
pub(super) fn alerts(
    row: &Row,
    hb: Option<&Heartbeat>,
    config: &FleetConfig,
    silent_ms: Option<i64>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    if row.state == Liveness::Offline {
        out.push(Alert::Offline {
            reason: row.offline_reason.clone(),
        });
    }
    if let Some(silent) = silent_ms {
        out.push(Alert::StaleHeartbeat {
            silent_s: u64::try_from(silent / 1000).unwrap_or(0),
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
    if let Some(hours) = row
        .hours_until_full
        .filter(|h| h.is_finite() && *h < config.full_warn_hours)
    {
        out.push(Alert::BufferFilling { hours });
    }
    interface_alerts(row, &mut out);
    if let Some(hb) = hb {
        if let Some(detail) = &hb.storage.recovery {
            out.push(Alert::StoreRecovered {
                detail: detail.clone(),
            });
        }
        let reported = hb.gateway.to_string();
        if reported != row.key.to_string() {
            out.push(Alert::IdentityMismatch { reported });
        }
    }
    out
}

fn interface_alerts(row: &Row, out: &mut Vec<Alert>) {
    for s in row.sources.iter().filter(|s| s.failing) {
        out.push(Alert::InterfaceErrors {
            source: s.stats.name.clone(),
            quarantined: s.stats.quarantined,
            rejected: s.stats.rejected,
        });
    }
    for s in row.sources.iter().filter(|s| s.reusing) {
        out.push(Alert::ControlIdReused {
            source: s.stats.name.clone(),
            total: s.stats.control_id_reused,
        });
    }
    for s in &row.sources {
        for detail in &s.stats.drift {
            out.push(Alert::Drift {
                source: s.stats.name.clone(),
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
            Alert::StaleHeartbeat {
                silent_s,
                interval_s,
            } => write!(
                f,
                "no heartbeat for {} (expected every {})",
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
            Alert::BufferFilling { hours } => {
                write!(f, "buffer full in about {hours:.1} h at the current rate")
            }
            Alert::InterfaceErrors {
                source,
                quarantined,
                rejected,
            } => write!(
                f,
                "interface {source}: errors rising ({quarantined} quarantined, {rejected} rejected since start)"
            ),
            Alert::ControlIdReused { source, total } => write!(
                f,
                "interface {source}: control ids reused with different content ({total} in total, stored as new messages)"
            ),
            Alert::Drift { source, detail } => write!(f, "interface {source} drift: {detail}"),
            Alert::StoreRecovered { detail } => {
                write!(f, "damaged database set aside at start: {detail}")
            }
            Alert::IdentityMismatch { reported } => write!(
                f,
                "heartbeat says it is {reported}: check the gateway's [gateway] config"
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
