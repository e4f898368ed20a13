//! The forwarder: reads committed records from the store and publishes them
//! to the hub over MQTT/TLS at QoS 1, deleting a row only after its PUBACK.
//!
//! `state` decides (sans-IO, time passed in), `split` and `envelope` turn
//! rows into payloads no larger than `hub.max_payload`, `task` does the IO.

pub mod backoff;
pub mod deletes;
pub mod envelope;
pub mod split;
pub mod state;
pub mod task;
