//! Errors of the field-technician commands. Each message says what went
//! wrong, names the file involved, and what to do next.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a `status` or `quarantine` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file could not be read or is invalid.
    #[error(
        "the configuration could not be loaded (give it with --config FILE, default {default}; \
         `hl7edge doctor --config FILE` explains what is wrong)",
        default = crate::config::DEFAULT_PATH
    )]
    Config(#[from] ConfigError),
    /// The queue database named in the configuration does not exist.
    #[error(
        "the queue database {} does not exist. Check `path` under [storage] in the configuration, \
         or start the agent once (systemctl start hl7edge) so that it creates the database",
        path.display()
    )]
    DatabaseMissing {
        /// The configured database path.
        path: PathBuf,
    },
    /// The queue database exists but could not be opened or read.
    #[error(
        "cannot read the queue database {}. Run this as root or as the agent's user, and \
         check that the file is an hl7edge database (hl7edge doctor checks both)",
        path.display()
    )]
    DatabaseUnreadable {
        /// The configured database path.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: StoreError,
    },
    /// A change to the queue database failed.
    #[error("could not {action} in the queue database {}", path.display())]
    DatabaseWrite {
        /// What was being done, for example "drop quarantine entry 7".
        action: String,
        /// The configured database path.
        path: PathBuf,
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// No quarantine entry has this id.
    #[error("there is no quarantine entry {id}; `hl7edge quarantine list` shows the open ones")]
    NoSuchEntry {
        /// The id given.
        id: i64,
    },
    /// The entry was already replayed or dropped.
    #[error("quarantine entry {id} was already {how} at {at}; nothing to do")]
    AlreadyResolved {
        /// The id given.
        id: i64,
        /// "replayed" or "dropped".
        how: &'static str,
        /// When, as UTC text.
        at: String,
    },
    /// The entry's interface is no longer in the configuration.
    #[error(
        "quarantine entry {id} came from interface {interface:?}, which is not in the \
         configuration {} any more; add the [[listener]] back to replay it, or drop the entry",
        config.display()
    )]
    UnknownInterface {
        /// The entry id.
        id: i64,
        /// The interface (listener) name stored with the entry.
        interface: String,
        /// The configuration file read.
        config: PathBuf,
    },
    /// The interface's mapping table could not be loaded.
    #[error("cannot prepare interface {interface:?} for the replay: {detail}")]
    Interface {
        /// The interface (listener) name.
        interface: String,
        /// What went wrong (the mapping file and the problem).
        detail: String,
    },
    /// `drop` was run without a terminal to confirm on and without `--yes`.
    #[error(
        "not dropping {what} {id}: there is no terminal to confirm on; \
         add --yes to drop it without asking"
    )]
    NeedsConfirmation {
        /// What would be dropped: "quarantine entry", "parked record".
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// No parked record has this id.
    #[error("there is no parked record {seq}; `hl7edge parked list` shows them")]
    NoSuchParked {
        /// The id given.
        seq: i64,
    },
    /// Writing the output or reading the confirmation failed.
    #[error("terminal input/output failed")]
    Io(#[from] std::io::Error),
    /// The JSON output could not be produced.
    #[error("cannot write JSON output")]
    Json(#[from] serde_json::Error),
}
