//! Building blocks of the gateway benchmark (`tests/benches/gateway.rs`): closed-loop and paced
//! MLLP load, a record counter over the hub subscriber, a queue prefill through the agent's own
//! store and ingest code, process memory readings and the result table.
//!
//! Invariants: every figure is measured against the real agent binary and a real broker; a
//! message counts as sent only when its positive ACK arrived, a record counts as delivered only
//! when it decoded from an envelope the subscriber received.

pub mod cpu;
pub mod disk;
pub mod load;
pub mod prefill;
pub mod records;
pub mod report;
pub mod sys;
