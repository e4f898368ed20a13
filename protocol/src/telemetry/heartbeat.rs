//! The periodic heartbeat a gateway publishes on `.../telemetry`.
//!
//! Invariants:
//! - No PHI, by construction: every field is a count, a size, a time, a
//!   version, an interface name, a terminology code (a code is not about a
//!   patient) or a fixed-vocabulary message written by the agent (drift
//!   alerts, the store recovery note). No field holds a message, a value
//!   from a message, or an identifier of a person.
//! - The first field is [`HEARTBEAT_SCHEMA_VERSION`]; [`Heartbeat::decode`]
//!   reads it first and refuses a version it does not know, the same rule
//!   as the record envelope (`crate::wire`).
//! - Counters are cumulative since the agent started, every one of them
//!   (one scope: a reader detects a restart by `uptime_s` going down, or
//!   `started` changing in the retained status, and takes the new values as
//!   they are, as Prometheus' `rate()` does).
//! - The gateway publishes it retained: the broker keeps each gateway's
//!   last heartbeat, so a hub that starts later (or again) knows every
//!   gateway's backlog and counters at once; `sent_at_ms` says how old it
//!   is.
//! - One name for one thing: an interface is a *listener* (the
//!   configuration's `[[listener]]`); the JSON form names the list
//!   `listeners` (and still reads the older `sources`).
//! - The golden file `protocol/tests/golden/heartbeat_v1.bin` pins the
//!   encoding byte for byte.
//!
//! Compatibility: [`Heartbeat::custody`], [`Heartbeat::cert_not_after_ms`],
//! [`Heartbeat::hub`] and then [`Heartbeat::pushes`] were appended before any release too
//! (and [`PushReport::change`] and the fields after it), and so
//! were [`Custody::quarantine`] and [`Custody::set_aside`]; `resends`,
//! `control_id_reused` and `no_ack_requested` changed from the store's
//! lifetime to since start (one scope for every counter) before any release.
//! `SourceStats::resends`, `SourceStats::control_id_reused`,
//! `SourceStats::acks_received` and the counters after it, and
//! `QueueStats::parked`, and `SourceStats::rhythm`, were
//! appended before any release shipped, so the schema stayed at version 1 and the golden file was
//! regenerated; from the first release on, such a change bumps
//! [`HEARTBEAT_SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};

/// The heartbeat schema version this crate writes and reads.
pub const HEARTBEAT_SCHEMA_VERSION: u16 = 1;

/// The largest heartbeat written or read, in bytes. A heartbeat is a few
/// hundred bytes per interface; the cap bounds what a decoder spends on a
/// payload that claims long lists (its lists take about 20 times their
/// encoded size in memory).
pub const MAX_HEARTBEAT_BYTES: usize = 1 << 20;

/// One heartbeat: the health of one gateway at `sent_at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Always [`HEARTBEAT_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u16,
    /// The gateway's configured identity.
    pub gateway: GatewayId,
    /// Agent version (the package version).
    pub version: String,
    /// When this heartbeat was built, Unix milliseconds (the gateway's clock).
    pub sent_at_ms: i64,
    /// Seconds since the agent process started.
    pub uptime_s: u64,
    /// The configured heartbeat interval in seconds, so a reader knows
    /// when a heartbeat is overdue.
    pub interval_s: u32,
    /// The store queue: what is waiting for the hub.
    pub queue: QueueStats,
    /// Disk and database sizes and storage alarms.
    pub storage: StorageStats,
    /// Message counters since the agent started, over all interfaces.
    pub counters: Counters,
    /// Connections to the broker re-established since start (the first
    /// connection is not counted).
    pub broker_reconnects: u64,
    /// Whole days until the client certificate expires (negative once
    /// expired); `None` when unknown (plaintext lab setups).
    pub cert_days_left: Option<i64>,
    /// Estimated hours until the buffer reaches its size limit at the
    /// current ingest rate; `None` when the queue is not growing or the
    /// rate is unknown.
    pub hours_until_full: Option<f64>,
    /// Gateway clock minus reference clock in milliseconds, where a
    /// reference is known (positive: the gateway is ahead).
    pub clock_offset_ms: Option<i64>,
    /// One entry per configured listener, in config order.
    #[serde(rename = "listeners", alias = "sources")]
    pub sources: Vec<SourceStats>,
    /// Patient data at rest on the gateway: refusals, quarantine, audit.
    pub custody: Custody,
    /// When the client certificate expires, Unix milliseconds; `None` when
    /// unknown (plaintext lab setups). `cert_days_left` in whole days is
    /// kept for older readers.
    pub cert_not_after_ms: Option<i64>,
    /// The hub connection and custody receipts as the gateway sees them.
    pub hub: HubLink,
    /// The outcome of the latest signed push per listener since the agent started, and the
    /// pushed mapping each listener runs (at most one entry per listener).
    pub pushes: Vec<PushReport>,
}

/// What became of the latest signed push (`crate::push`) for one listener.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PushReport {
    /// The listener the push was for (empty when the push could not be read far enough to
    /// say).
    pub listener: String,
    /// The push's sequence, when it could be read.
    pub sequence: Option<u64>,
    /// `applied`, `rejected`, or `restored` (the last applied push, at start).
    pub outcome: String,
    /// Why it was rejected, one of a fixed list (`bad_signature`, `downgrade`,
    /// `invalid_mapping`, `not_for_this_gateway`, `unknown_listener`, `malformed`, ...).
    pub reason: Option<String>,
    /// When, Unix ms (the gateway's clock).
    pub at_ms: i64,
    /// The mapping version the listener codes with after it (as records carry it).
    pub mapping_version: String,
    /// Which kind of push the outcome is about: `mapping`, `listener` or `switch`
    /// (`crate::push::Change::kind`); empty when the push could not be read far enough to say.
    pub change: String,
    /// A short SHA-256 (16 hex digits) of the listener settings the listener runs after it
    /// (bind, allow, limits, TLS files): the same settings give the same hash on every box.
    pub config_hash: String,
    /// True while the listener is switched off by a push: it refuses connections on purpose
    /// (not a failure, and its silence is no alert).
    pub disabled: bool,
}

/// The gateway's side of its hub connection: whether custody ends at the broker's PUBACK or at
/// the hub's receipt, what waits for a receipt, and the last failure with its cause (the
/// heartbeat travels only while connected, so this says what went wrong before).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HubLink {
    /// `puback` or `receipt` (`hub.custody`).
    pub custody: String,
    /// Records the broker acknowledged that wait for the hub's custody receipt (receipt mode).
    pub awaiting_receipt: u64,
    /// How long the oldest of them has waited since its first PUBACK, ms; `None` when none
    /// waits.
    pub oldest_awaiting_receipt_age_ms: Option<u64>,
    /// Records custody receipts removed from the queue since the agent started.
    pub receipted: u64,
    /// Connection attempts that failed since the last successful one.
    pub failures: u64,
    /// The last failure's cause, one of a fixed list (`hub_certificate_untrusted`,
    /// `client_certificate_refused`, `not_authorized`, `receipts_refused`, `not_listening`,
    /// `dns`, `timeout`, `closed`, ...); `receipts_refused` stays while it holds.
    pub last_error_cause: Option<String>,
    /// The last failure as the TLS or MQTT stack said it (no message content).
    pub last_error: Option<String>,
    /// When it happened, Unix ms (the gateway's clock).
    pub last_error_at_ms: Option<i64>,
    /// The current connection's CONNACK, Unix ms.
    pub connected_at_ms: Option<i64>,
    /// The last PUBACK of records, Unix ms.
    pub last_puback_at_ms: Option<i64>,
    /// The last receipt that named a queued record, Unix ms.
    pub last_receipt_at_ms: Option<i64>,
}

/// What the gateway holds of patient data at rest, and whether it takes more. New fields
/// (quarantine bytes and expiry, set-aside files) are appended here as they are measured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Custody {
    /// Set while new messages are refused for space (every message gets AR).
    pub refusing: Option<Refusing>,
    /// Quarantine entries neither replayed nor dropped.
    pub quarantine_open: u64,
    /// The audit trail's head: the hash of its newest line, hex. A reader that keeps it can
    /// later tell whether the box's trail was cut or rewritten (`hl7edge audit verify`).
    pub audit_head: Option<String>,
    /// Lines in the audit trail (kept lines, after pruning).
    pub audit_lines: u64,
    /// The quarantine against its own cap and retention.
    pub quarantine: QuarantineHold,
    /// Damaged databases set aside at start and still on the gateway.
    pub set_aside: SetAsideFiles,
}

/// What the quarantine holds against its own cap (`quarantine.max_bytes`) and retention: sizes,
/// counts and times only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuarantineHold {
    /// Bytes of the messages (and NAKs) it holds.
    pub bytes: u64,
    /// Its cap, `quarantine.max_bytes`; a rejected message past it is refused (AR).
    pub max_bytes: u64,
    /// Open entries whose raw message is erased within `quarantine.warn_before` (never sent
    /// unless replayed first). Non-zero is an alarm.
    pub expiring: u64,
    /// When the next open entry's raw message is erased, Unix ms.
    pub next_expiry_ms: Option<i64>,
}

/// Damaged databases the agent set aside at start: they hold patient data until a technician
/// purges them (`hl7edge storage purge-set-aside`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SetAsideFiles {
    /// How many.
    pub files: u64,
    /// Their bytes, with their logs.
    pub bytes: u64,
    /// When the oldest was set aside, Unix ms.
    pub oldest_ms: Option<i64>,
}

/// Why new messages are refused, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Refusing {
    /// `quota` (`storage.max_bytes` reached), `reserve` (the filesystem would keep less than the
    /// store needs beside its data) or `filesystem` (no space left).
    pub cause: String,
    /// The reason in words, with sizes.
    pub reason: String,
}

/// The identity a gateway is configured with (`[gateway]` in its config).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GatewayId {
    /// Organization.
    pub org: String,
    /// Site (clinic).
    pub site: String,
    /// Gateway id within the site.
    pub id: String,
}

/// The store queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStats {
    /// Records committed and not yet acknowledged by the broker.
    pub depth: u64,
    /// Age of the oldest unsent record in milliseconds; `None` when the
    /// queue is empty. Parked records are not counted here nor in `depth`.
    pub oldest_unsent_age_ms: Option<u64>,
    /// Records set aside because they can never fit the hub's payload
    /// limit (`hub.max_payload`): kept on the gateway, not sent, waiting
    /// for a technician (`hl7edge parked`). Non-zero is an alarm.
    pub parked: u64,
}

/// Disk space, database size and storage events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StorageStats {
    /// Free bytes on the filesystem holding the database.
    pub disk_free_bytes: u64,
    /// Database size in bytes: the main file plus its WAL.
    pub db_bytes: u64,
    /// True while the store is at its size limit or the disk is full
    /// (new messages get AR NAKs).
    pub alarm: bool,
    /// Set when a damaged database was set aside at start: what was moved
    /// where (paths and the reason, no content).
    pub recovery: Option<String>,
}

/// Message counters since the agent started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Messages read from MLLP frames.
    pub received: u64,
    /// Messages answered with a positive ACK (AA/CA) after commit.
    pub acknowledged: u64,
    /// Messages answered with AR (not stored: size limit, disk full).
    pub rejected: u64,
    /// Messages answered with AE and kept in quarantine.
    pub quarantined: u64,
    /// Resends answered with the stored ACK instead of a new record.
    pub duplicates: u64,
    /// Records acknowledged by the broker (PUBACK).
    pub forwarded: u64,
}

/// One interface (listener) of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceStats {
    /// The listener name from the config.
    pub name: String,
    /// When the last message arrived on it, Unix milliseconds; `None` if
    /// none since start.
    pub last_message_ms: Option<i64>,
    /// Messages received on this interface since start.
    pub received: u64,
    /// Messages acknowledged positively.
    pub acknowledged: u64,
    /// Messages answered with AR.
    pub rejected: u64,
    /// Messages answered with AE and quarantined.
    pub quarantined: u64,
    /// Coded elements (observation and order codes, coded answers, units,
    /// ...) with a standard code since start: sent in a standard system or
    /// mapped by the listener's mapping table. Each occurrence counts.
    pub codes_mapped: u64,
    /// Coded elements without a standard code since start (each
    /// occurrence); `codes_unmapped / (codes_mapped + codes_unmapped)` is
    /// the listener's unmapped ratio.
    pub codes_unmapped: u64,
    /// The most frequent unmapped codes, most frequent first (a bounded
    /// list; the agent decides how many).
    pub top_unmapped: Vec<UnmappedCode>,
    /// Drift alerts: changes in what this interface sends, in words
    /// (e.g. `new segment ZXY`). The most recent few, oldest first; the
    /// agent's profile re-learns after a restart, so the list starts empty.
    pub drift: Vec<String>,
    /// Resends answered with the stored ACK since start.
    pub resends: u64,
    /// Messages that reused a known control id with different content and
    /// were stored as new, since start.
    pub control_id_reused: u64,
    /// Incoming acknowledgments (MSH-9.1 `ACK`) since start: kept, never
    /// answered (an ACK is never acknowledged).
    pub acks_received: u64,
    /// Frames larger than the listener's `max_frame`, answered AE, since
    /// start.
    pub oversize_frames: u64,
    /// Bytes outside MLLP frames, skipped, since start.
    pub garbage_bytes: u64,
    /// Connections refused since start: by the allowlist or the connection
    /// cap.
    pub refused_connections: u64,
    /// MLLP-over-TLS handshakes that failed since start (including a
    /// missing or untrusted client certificate).
    pub tls_failures: u64,
    /// Messages whose MSH-15/MSH-16 asked for no acknowledgement (`NE`)
    /// since start. They are answered anyway unless the listener's
    /// `ack_mode` is `as_requested`.
    pub no_ack_requested: u64,
    /// The feed's rhythm: how long it has been quiet against what it usually sends at this hour
    /// of day (`None` until the gateway has learned the listener's rhythm).
    pub rhythm: Option<Rhythm>,
}

/// A listener's quiet time against its learned rhythm (the agent's `[silence]` settings): only
/// times, so no PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rhythm {
    /// Seconds since the listener's last message (over restarts: the store's time).
    pub quiet_s: u64,
    /// The usual gap between messages at this hour of day, seconds; `None` when the listener
    /// usually sends nothing at this hour.
    pub usual_gap_s: Option<u64>,
    /// True when the quiet time is far beyond the norm: the feed is silent.
    pub silent: bool,
}

/// An unmapped terminology code and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnmappedCode {
    /// The coding system as sent (e.g. `99LAB`, `L`).
    pub system: String,
    /// The code.
    pub code: String,
    /// Occurrences since start.
    pub count: u64,
}

/// Why a heartbeat could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The payload was written with a schema this decoder does not know.
    #[error(
        "heartbeat uses telemetry schema version {found}, this decoder reads version {supported}; upgrade the reader"
    )]
    UnknownSchema {
        /// The version in the payload.
        found: u16,
        /// The version this crate reads.
        supported: u16,
    },
    /// The bytes are not a valid heartbeat (or a value could not be encoded).
    #[error("payload is not a valid hl7edge heartbeat: {0}")]
    Malformed(#[from] postcard::Error),
    /// The payload is larger than any heartbeat.
    #[error("heartbeat of {len} bytes; a heartbeat is at most {MAX_HEARTBEAT_BYTES} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
    },
}

impl Heartbeat {
    /// Encodes the heartbeat with postcard.
    pub fn encode(&self) -> Result<Vec<u8>, TelemetryError> {
        let bytes = postcard::to_allocvec(self)?;
        if bytes.len() > MAX_HEARTBEAT_BYTES {
            return Err(TelemetryError::TooLarge { len: bytes.len() });
        }
        Ok(bytes)
    }

    /// Decodes a payload, checking its size and then the schema version
    /// first.
    pub fn decode(bytes: &[u8]) -> Result<Heartbeat, TelemetryError> {
        if bytes.len() > MAX_HEARTBEAT_BYTES {
            return Err(TelemetryError::TooLarge { len: bytes.len() });
        }
        let (version, _) = postcard::take_from_bytes::<u16>(bytes)?;
        if version != HEARTBEAT_SCHEMA_VERSION {
            return Err(TelemetryError::UnknownSchema {
                found: version,
                supported: HEARTBEAT_SCHEMA_VERSION,
            });
        }
        Ok(postcard::from_bytes(bytes)?)
    }
}

impl SourceStats {
    /// Share of codes left unmapped since start, 0.0 to 1.0; `None` before
    /// any code was seen.
    pub fn unmapped_ratio(&self) -> Option<f64> {
        ratio(self.codes_unmapped, self.codes_mapped)
    }
}

impl std::fmt::Display for GatewayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.site, self.id)
    }
}

/// `unmapped / (mapped + unmapped)`, `None` when both are zero.
pub fn ratio(unmapped: u64, mapped: u64) -> Option<f64> {
    let total = unmapped.saturating_add(mapped);
    // Counts stay far below 2^53, where f64 is exact.
    (total > 0).then(|| unmapped as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Heartbeat {
        Heartbeat {
            schema_version: HEARTBEAT_SCHEMA_VERSION,
            gateway: GatewayId {
                org: "o".into(),
                site: "s".into(),
                id: "g".into(),
            },
            version: "0.1.0".into(),
            sent_at_ms: 1_795_000_000_000,
            uptime_s: 5,
            interval_s: 60,
            queue: QueueStats::default(),
            storage: StorageStats::default(),
            counters: Counters::default(),
            broker_reconnects: 0,
            cert_days_left: None,
            hours_until_full: None,
            clock_offset_ms: None,
            sources: vec![],
            custody: Custody::default(),
            cert_not_after_ms: None,
            hub: HubLink::default(),
            pushes: vec![],
        }
    }

    #[test]
    fn a_minimal_heartbeat_round_trips() {
        let hb = minimal();
        assert_eq!(Heartbeat::decode(&hb.encode().unwrap()).unwrap(), hb);
    }

    #[test]
    fn a_heartbeat_whose_forecast_is_nan_decodes_and_encodes_to_the_same_bytes() {
        // Found by the wire_decode fuzz target (seed heartbeat_nan_forecast.bin,
        // in the layout of its day): no agent sends NaN, but a crafted heartbeat
        // may; it decodes, and re-encodes byte for byte although it equals no
        // value (NaN != NaN).
        let crafted = Heartbeat {
            hours_until_full: Some(f64::NAN),
            ..minimal()
        }
        .encode()
        .unwrap();
        let hb = Heartbeat::decode(&crafted).unwrap();
        assert!(hb.hours_until_full.is_some_and(f64::is_nan));
        let again = hb.encode().unwrap();
        assert_eq!(Heartbeat::decode(&again).unwrap().encode().unwrap(), again);
    }

    #[test]
    fn the_schema_version_is_checked_before_the_body() {
        let mut hb = minimal();
        hb.schema_version = 2;
        let err = Heartbeat::decode(&hb.encode().unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                TelemetryError::UnknownSchema {
                    found: 2,
                    supported: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_empty_payload_is_malformed() {
        assert!(matches!(
            Heartbeat::decode(&[]),
            Err(TelemetryError::Malformed(_))
        ));
    }

    #[test]
    fn unmapped_ratio_is_unknown_until_a_code_was_seen() {
        let mut s = SourceStats::default();
        assert_eq!(s.unmapped_ratio(), None);
        s.codes_mapped = 3;
        s.codes_unmapped = 1;
        assert_eq!(s.unmapped_ratio(), Some(0.25));
    }

    #[test]
    fn the_json_form_calls_the_interfaces_listeners_and_reads_the_old_name() {
        let mut hb = minimal();
        hb.sources.push(SourceStats {
            name: "lab".into(),
            ..SourceStats::default()
        });
        let json = serde_json::to_value(&hb).unwrap();
        assert_eq!(json["listeners"][0]["name"], "lab");
        assert!(json.get("sources").is_none());
        let old = json.to_string().replace("\"listeners\"", "\"sources\"");
        let read: Heartbeat = serde_json::from_str(&old).unwrap();
        assert_eq!(read, hb);
    }

    #[test]
    fn gateway_ids_print_as_a_path() {
        assert_eq!(minimal().gateway.to_string(), "o/s/g");
    }
}
