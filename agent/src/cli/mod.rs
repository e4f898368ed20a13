//! Commands for field technicians on the box: `hl7edge status`,
//! `hl7edge quarantine ...` and `hl7edge parked ...`.
//!
//! Invariants:
//! - They read only the local configuration and the queue database, and
//!   work while the agent runs: reads go through a `query_only`
//!   [`StoreReader`] (WAL lets it read beside the writer), changes through
//!   [`store::offline`](crate::store::offline), one transaction each.
//! - A missing database is never created: the commands say where they
//!   looked and what to do instead.
//! - Summaries (`status`, `quarantine list`) show no PHI: counts, times,
//!   interface names, control ids, error codes and error texts only (error
//!   texts never contain field values). Only `quarantine show`, an explicit
//!   request for one message, prints a raw message.

pub mod audit;
pub mod parked;
pub mod quarantine;
pub mod status;

mod confirm;
mod error;
mod text;

use std::path::{Path, PathBuf};

pub use error::CliError;

use crate::config::Config;
use crate::store::{StoreError, StoreReader};

/// The configuration and a read-only connection to its queue database.
#[derive(Debug)]
struct Opened {
    config: Config,
    config_path: PathBuf,
    reader: StoreReader,
}

impl Opened {
    /// Loads the configuration at `config_path` and opens its database
    /// for reading; never creates the database.
    fn load(config_path: &Path) -> Result<Self, CliError> {
        let config = Config::load(config_path)?;
        let path = &config.storage.path;
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::DatabaseMissing { path: path.clone() });
            }
            Err(source) => {
                return Err(CliError::DatabaseUnreadable {
                    path: path.clone(),
                    source: StoreError::Io {
                        path: path.clone(),
                        source,
                    },
                });
            }
        }
        let reader = StoreReader::open(path).map_err(|source| CliError::DatabaseUnreadable {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            config_path: config_path.to_owned(),
            config,
            reader,
        })
    }

    /// The database file.
    fn db_path(&self) -> &Path {
        &self.config.storage.path
    }

    /// Runs one read, naming the database when it fails.
    fn read<T>(
        &self,
        read: impl FnOnce(&StoreReader) -> Result<T, StoreError>,
    ) -> Result<T, CliError> {
        read(&self.reader).map_err(|source| CliError::DatabaseUnreadable {
            path: self.db_path().to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod testing;
