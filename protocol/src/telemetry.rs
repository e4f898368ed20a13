//! What a gateway reports about itself to central IT (no PHI, ever).
//!
//! Published postcard-encoded on the topics of [`crate::topic`]: a retained
//! [`Status`] on `.../status` (the MQTT last will carries the offline form)
//! and a periodic [`Heartbeat`] on `.../telemetry`.

mod heartbeat;

use serde::{Deserialize, Serialize};

pub use heartbeat::{
    Counters, Custody, GatewayId, HEARTBEAT_SCHEMA_VERSION, Heartbeat, HubLink,
    MAX_HEARTBEAT_BYTES, PushReport, QuarantineHold, QueueStats, Refusing, ReplayCounts, Rhythm,
    SetAsideFiles, SourceStats, StorageStats, TelemetryError, UnmappedCode, ratio,
};

/// [`Status::reason`] of the offline status a gateway leaves with the broker as its MQTT last
/// will: the broker publishes it when the connection is lost, so it is not a message from the
/// gateway and says nothing about when the gateway was last heard from.
pub const LAST_WILL_REASON: &str = "connection lost";

/// [`Status::reason`] of the offline status a gateway publishes itself when it shuts down.
pub const SHUTDOWN_REASON: &str = "shutdown";

/// The retained online/offline status of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// True while the agent is connected; false in the last will and at
    /// clean shutdown.
    pub online: bool,
    /// Agent version.
    pub version: String,
    /// When the agent process started, Unix milliseconds.
    pub started_at_ms: i64,
    /// Why it went offline, when known (`shutdown`, `connection lost`).
    pub reason: Option<String>,
}

impl Status {
    /// True for the offline status the broker published as the gateway's last will.
    pub fn is_last_will(&self) -> bool {
        !self.online && self.reason.as_deref() == Some(LAST_WILL_REASON)
    }

    /// Encodes the status with postcard.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    /// Decodes a status payload (strings and numbers only: it takes no
    /// more memory than its bytes).
    pub fn decode(bytes: &[u8]) -> Result<Status, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        let s = Status {
            online: false,
            version: "0.1.0".into(),
            started_at_ms: 1_795_000_000_000,
            reason: Some("connection lost".into()),
        };
        assert_eq!(Status::decode(&s.encode().unwrap()).unwrap(), s);
    }
}
