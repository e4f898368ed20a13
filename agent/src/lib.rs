//! hl7edge agent library: all IO of the gateway.

pub mod store;
