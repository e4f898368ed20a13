//! Why the demo could not run to its summary.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// A failure that stops the demo (a check that fails is not an error: it
/// shows in the [`super::Summary`]).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The in-process MQTT broker could not be started.
    #[error("cannot start the demo MQTT broker: {0}")]
    Broker(#[source] io::Error),
    /// The hub subscriber could not connect and subscribe to the broker.
    #[error("the hub subscriber could not connect to the demo broker at {addr}: {cause}")]
    Hub {
        /// The broker address.
        addr: SocketAddr,
        /// What went wrong.
        cause: String,
    },
    /// A temporary file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Files {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The generated configuration was refused (a bug in the demo).
    #[error("the generated configuration is invalid: {0}")]
    Config(#[from] Box<ConfigError>),
    /// The gateway could not start, or failed while stopping.
    #[error("the gateway failed: {0:#}")]
    Agent(anyhow::Error),
    /// A simulated sender could not deliver a message.
    #[error("the simulated {sender} sender failed: {cause}")]
    Sender {
        /// The listener it sends to.
        sender: &'static str,
        /// What went wrong.
        #[source]
        cause: SendError,
    },
}

/// Why a simulated sender could not get an ACK for a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The TCP connection could not be opened or broke.
    #[error("connection to {addr}: {source}")]
    Io {
        /// The listener address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The message contains an MLLP framing byte (a bug in the demo data).
    #[error(transparent)]
    Frame(#[from] hl7edge_protocol::hl7::mllp::EncodeError),
    /// No ACK came within the wait.
    #[error("no ACK for {control_id} within {seconds} s")]
    Timeout {
        /// MSH-10 of the message.
        control_id: String,
        /// How long the sender waited.
        seconds: u64,
    },
    /// The gateway closed the connection before answering.
    #[error("the gateway closed the connection before acknowledging {control_id}")]
    Closed {
        /// MSH-10 of the message.
        control_id: String,
    },
    /// The answer is not an HL7 ACK with a known MSA-1 code.
    #[error("the answer to {control_id} is not a readable ACK")]
    NotAnAck {
        /// MSH-10 of the message.
        control_id: String,
    },
}
