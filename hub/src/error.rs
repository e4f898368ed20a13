//! Why a command stopped. Every message says what failed and what to do.

use std::net::SocketAddr;

use crate::mqtt::SettingsError;
use crate::topics::TypeError;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The broker settings are unusable (URL, TLS files).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A flag has a value that cannot work.
    #[error("{0}")]
    Usage(String),
    /// A `--types` entry is not a message type.
    #[error(transparent)]
    Types(#[from] TypeError),
    /// The broker connection failed for good (the message explains).
    #[error("{0}")]
    Broker(String),
    /// The connection task stopped without saying why.
    #[error("the broker connection stopped unexpectedly; run again, and report it if it repeats")]
    ConnectionEnded,
    /// The metrics address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} — is another process using it? Pick another with --metrics"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database cannot be used (the message says why and what to check).
    #[error("{0}")]
    Database(String),
    /// Standard output could not be written.
    #[error("writing to standard output failed: {0}")]
    Stdout(std::io::Error),
    /// The `--fhir-out` directory cannot be made.
    #[error(
        "--fhir-out {}: {source} — give a directory this user can create and write, or - for standard output",
        path.display()
    )]
    FhirOut {
        /// The path given.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}
