//! The forwarder: reads committed records from the store and publishes them
//! to the hub over MQTT/TLS at QoS 1, deleting a row only after custody
//! passes: its PUBACK, or in receipt mode the hub's custody receipt.
//!
//! `state`, `receipt_wait` and `link` decide (sans-IO, time passed in),
//! `split` and `envelope` turn rows into payloads no larger than
//! `hub.max_payload`, `receipts` checks and applies custody receipts, `task`
//! does the IO.

pub mod backoff;
pub mod deletes;
pub mod envelope;
pub mod link;
pub mod receipt_wait;
pub mod receipts;
pub mod split;
pub mod state;
pub mod task;
