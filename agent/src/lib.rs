//! hl7edge agent library: all IO of the gateway.
//!
//! The binary (`src/main.rs`) stays thin: it loads the [`config::Config`], sets up logging and hands
//! over to the modules here. Protocol logic without IO lives in the `hl7edge-protocol` crate.

pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod device_cert;
pub mod doctor;
pub mod enroll;
pub mod forwarder;
pub mod ingest;
pub mod inspect;
pub mod listener;
pub mod logging;
pub mod notify;
pub mod provision;
pub mod push;
pub mod record_text;
pub mod replay;
pub mod send;
pub mod service_account;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod upgrade;
pub mod watchdog;
