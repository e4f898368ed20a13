//! Re-running quarantined messages: the one step `hl7edge quarantine replay` (a second
//! process) and a replay push (the running agent, `crate::push::replay`) share.
//!
//! Invariants:
//! - A quarantined message is prepared again by [`ingest::prepare`], the listener's own
//!   step, with the interface as it runs now (its mapping table, time zone, ACK mode) and
//!   the message's original receive time ([`prepare`]): there is no second normalization
//!   path.
//! - Only a message that now passes is stored, and storing it and marking its entry
//!   replayed are one transaction: through the running agent's writer ([`run`], with
//!   [`StoreHandle::replay_quarantined`]) or, from another process, `store::offline::replay`.
//!   An entry leaves quarantine only once its record is committed; a message stored before
//!   (its sender resent it) is found by the ingest path's resend check, not stored twice.
//! - [`run`] reads the entries a page at a time ([`PAGE`] entries with their bytes), so
//!   memory stays bounded whatever the quarantine holds; an entry resolved meanwhile (a
//!   technician's replay or drop) is skipped.
//! - No PHI: the outcome is counts; entries are named by id only.

use std::collections::BTreeMap;
use std::sync::Arc;

use hl7edge_protocol::push::ReplayFilter;

use crate::ingest::{self, AckIds, Interface, Prepared, Stamp};
use crate::listener::Shared;
use crate::store::{QuarantineEntry, StoreError, StoreHandle};

/// Entries read per page.
pub const PAGE: usize = 16;

/// The entry's message prepared again by `iface` as it runs now, received when it was.
pub fn prepare(iface: &Interface, entry: &QuarantineEntry) -> Prepared {
    let s = &entry.summary;
    let stamp = Stamp {
        now_ms: s.received_at_ms,
        ..Stamp::now()
    };
    ingest::prepare(iface, &entry.raw, &s.peer, &stamp, &AckIds::default())
}

/// What one replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Entries that now pass and became records (or found their record stored already).
    pub replayed: u64,
    /// Entries the filter took that still fail (or whose listener this configuration does
    /// not have): they stay in quarantine.
    pub still_quarantined: u64,
}

/// Why a replay stopped before the end: what it did so far, and the store's error.
#[derive(Debug, thiserror::Error)]
#[error("the replay stopped after {} replayed: {source}", done.replayed)]
pub struct Stopped {
    /// What it did before it stopped.
    pub done: Outcome,
    /// The store's error (full, failed).
    #[source]
    pub source: StoreError,
}

impl Stopped {
    /// The short fixed word for the report: `store_full` or `store_error`.
    pub fn reason(&self) -> &'static str {
        match self.source {
            StoreError::Full { .. } => "store_full",
            _ => "store_error",
        }
    }
}

/// Replays every open entry `filter` takes, oldest first, through the listeners of the
/// running agent (`listeners` by name) and its writer (`store`), at `at_ms`.
pub async fn run(
    store: &StoreHandle,
    listeners: &BTreeMap<String, Arc<Shared>>,
    filter: &ReplayFilter,
    at_ms: i64,
) -> Result<Outcome, Stopped> {
    let mut done = Outcome::default();
    let mut after_id = 0;
    loop {
        let page = match read_page(store, filter, after_id).await {
            Ok(page) => page,
            Err(source) => return Err(Stopped { done, source }),
        };
        let Some(last) = page.last() else {
            return Ok(done);
        };
        after_id = last.summary.id;
        for entry in page {
            let Some(shared) = listeners.get(&entry.summary.source) else {
                done.still_quarantined += 1;
                continue;
            };
            let id = entry.summary.id;
            let prepared = prepare_off_thread(Arc::clone(shared), entry).await;
            let Some(Prepared::Store { message, .. }) = prepared else {
                done.still_quarantined += 1;
                continue;
            };
            match store.replay_quarantined(id, *message, at_ms).await {
                Ok(_) => done.replayed += 1,
                // Resolved meanwhile by a technician: not this replay's.
                Err(StoreError::NotFound { .. }) => {}
                Err(source) => return Err(Stopped { done, source }),
            }
        }
    }
}

async fn read_page(
    store: &StoreHandle,
    filter: &ReplayFilter,
    after_id: i64,
) -> Result<Vec<QuarantineEntry>, StoreError> {
    let store = store.clone();
    let filter = filter.clone();
    tokio::task::spawn_blocking(move || {
        store
            .open_reader()?
            .quarantine_matching(&filter, after_id, PAGE)
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

/// Prepares on a blocking thread (parsing and normalizing may take a while); `None` when
/// that thread failed.
async fn prepare_off_thread(shared: Arc<Shared>, entry: QuarantineEntry) -> Option<Prepared> {
    tokio::task::spawn_blocking(move || prepare(&shared.iface, &entry))
        .await
        .ok()
}
