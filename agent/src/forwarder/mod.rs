//! The forwarder: reads committed records from the store and publishes them
//! to the hub over MQTT/TLS at QoS 1, deleting a row only after its PUBACK.

pub mod backoff;
pub mod deletes;
pub mod state;
pub mod task;
