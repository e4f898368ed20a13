//! End-to-end test harness for hl7edge: a real `mosquitto` broker over mutual TLS, a persistent
//! MQTT subscriber, a realistic MLLP sender, the agent as a child process, and a checker that
//! compares what senders were told (ACKs) with what reached the broker.
//!
//! Nothing here is mocked: every test talks to real processes over real sockets on 127.0.0.1.
//! Run the whole suite with `tests/run.sh`, which installs `mosquitto` when it is missing.

pub mod agent;
pub mod broker;
pub mod checker;
pub mod hl7gen;
pub mod mllp;
pub mod mqtt;
pub mod pki;
pub mod process;
pub mod tls;
