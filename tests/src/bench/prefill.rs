//! Fills an (agent's, stopped) queue database with realistic records, much faster than MLLP:
//! each generated lab result goes through the agent's own ingest step
//! ([`hl7edge::ingest::prepare`]: parse, validate, normalize, encode the stored record and its
//! ACK) and is inserted with the agent's own store, exactly the rows the listener would write.
//!
//! Invariant: the agent must not be running on the same database while this runs.

use std::path::Path;
use std::sync::Mutex;

use hl7edge::ingest::{AckIds, Interface, PayloadLimit, Prepared, Stamp, prepare};
use hl7edge::store::{Store, StoreConfig, StoreError};
use hl7edge::telemetry::drift::DriftWatch;
use hl7edge_protocol::hl7::ack::AckMode;
use hl7edge_protocol::normalize::mapping::{MappingTable, UnmappedCounter};
use tokio::task::JoinSet;

use crate::hl7gen;

/// Inserts waiting at once (the store's writer commits them in batches).
const CONCURRENCY: usize = 512;

/// What can go wrong while prefilling.
#[derive(Debug, thiserror::Error)]
pub enum PrefillError {
    /// The store refused to open or to insert.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A generated message was not accepted by the ingest step.
    #[error("generated message {control_id} was quarantined")]
    Quarantined {
        /// Its control id.
        control_id: String,
    },
    /// An insert task failed.
    #[error("insert task: {0}")]
    Task(String),
}

/// Inserts `count` lab results from sender `sender` on listener `source` into the database at
/// `path`, allowing it to grow to `max_bytes`. Returns once everything is committed and the
/// store is closed.
pub async fn prefill(
    path: &Path,
    source: &str,
    sender: &str,
    count: u64,
    max_bytes: u64,
) -> Result<(), PrefillError> {
    let mut config = StoreConfig::new(path);
    config.max_bytes = max_bytes;
    let opened = tokio::task::spawn_blocking(move || Store::open(config))
        .await
        .map_err(|e| PrefillError::Task(e.to_string()))??;
    let iface = Interface {
        name: source.to_owned(),
        ack_mode: AckMode::Always,
        time_zone: jiff::tz::TimeZone::UTC,
        mapping: hl7edge::ingest::MappingSlot::new(MappingTable::empty()),
        unmapped: Mutex::new(UnmappedCounter::new(64)),
        drift: Mutex::new(DriftWatch::default()),
        payload: PayloadLimit {
            max_payload: 128_000,
            gateway: "acme-health/clinic-12/gw-0001".into(),
            include_raw: false,
        },
        quarantine_unmapped: false,
    };
    let ids = AckIds::default();
    let mut inserts = JoinSet::new();
    for n in 0..count {
        let message = hl7gen::lab_result(sender, n);
        let Prepared::Store { message: row, .. } =
            prepare(&iface, &message.bytes, "127.0.0.1", &Stamp::now(), &ids)
        else {
            return Err(PrefillError::Quarantined {
                control_id: message.control_id,
            });
        };
        if inserts.len() >= CONCURRENCY {
            join_one(&mut inserts).await?;
        }
        let handle = opened.handle.clone();
        inserts.spawn(async move { handle.insert(*row).await.map(drop) });
    }
    while !inserts.is_empty() {
        join_one(&mut inserts).await?;
    }
    drop(opened.handle);
    let writer = opened.writer;
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| PrefillError::Task(e.to_string()))??;
    Ok(())
}

async fn join_one(inserts: &mut JoinSet<Result<(), StoreError>>) -> Result<(), PrefillError> {
    match inserts.join_next().await {
        Some(joined) => Ok(joined.map_err(|e| PrefillError::Task(e.to_string()))??),
        None => Ok(()),
    }
}
