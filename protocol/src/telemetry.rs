//! What a gateway reports about itself to central IT (no PHI, ever).
//!
//! Published postcard-encoded on the topics of [`crate::topic`]: a retained
//! [`Status`] on `.../status` (the MQTT last will carries the offline form)
//! and a periodic [`Heartbeat`] on `.../telemetry`.

mod heartbeat;

use serde::{Deserialize, Serialize};

pub use heartbeat::{
    Counters, Custody, GatewayId, HEARTBEAT_SCHEMA_VERSION, Heartbeat, MAX_HEARTBEAT_BYTES,
    QueueStats, Refusing, SourceStats, StorageStats, TelemetryError, UnmappedCode, ratio,
};

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
