//! Where a frame's CPU work runs: parse, validate, normalize, encode and
//! build the ACKs ([`ingest::prepare`]) happen on tokio's blocking threads,
//! at most [`PreparePool::threads`] frames at a time for the whole agent,
//! never on the async workers that read sockets, write ACKs and drive the
//! store and the forwarder.
//!
//! Invariants:
//! - One heavy frame holds one thread of the pool for as long as its
//!   (linear, see `hl7edge_protocol::hl7::limits`) work takes; the async
//!   workers and the other threads of the pool keep serving every other
//!   connection meanwhile.
//! - At most `threads` frames are prepared at once, so a burst of large
//!   frames from many connections cannot start more threads (and hold more
//!   frames' memory) than that; the others wait for a permit in arrival
//!   order (tokio's semaphore is fair).
//! - Each connection still prepares, stores and answers its frames one
//!   after the other: the pool changes where the work runs, not its order,
//!   and an ACK is still sent only after its commit.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::Shared;
use crate::ingest::{self, Prepared, Stamp};

/// The fewest threads a pool has: one heavy frame must leave one free.
const MIN_THREADS: usize = 2;

/// The most threads a pool has, however many cores the machine has.
const MAX_THREADS: usize = 8;

/// The bounded set of blocking threads frames are prepared on.
#[derive(Debug, Clone)]
pub struct PreparePool {
    permits: Arc<Semaphore>,
    threads: usize,
}

/// Why a frame could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The preparing thread panicked or was cancelled.
    #[error("preparing a frame failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The pool was closed.
    #[error("the prepare pool is closed")]
    Closed,
}

impl PreparePool {
    /// A pool of `threads` threads (at least [`MIN_THREADS`]).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(MIN_THREADS);
        PreparePool {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
        }
    }

    /// A pool of one thread per core, between [`MIN_THREADS`] and
    /// [`MAX_THREADS`].
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(MIN_THREADS, NonZeroUsize::get);
        PreparePool::new(cores.clamp(MIN_THREADS, MAX_THREADS))
    }

    /// How many frames may be prepared at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Prepares one frame of `shared`'s interface on the pool; gives the
    /// frame back with the outcome.
    pub async fn prepare(
        &self,
        shared: Arc<Shared>,
        payload: Vec<u8>,
        peer: String,
        stamp: Stamp,
    ) -> Result<(Prepared, Vec<u8>, Stamp), PrepareError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PrepareError::Closed)?;
        let task = tokio::task::spawn_blocking(move || {
            let prepared = ingest::prepare(&shared.iface, &payload, &peer, &stamp, &shared.ids);
            drop(permit);
            (prepared, payload, stamp)
        });
        Ok(task.await?)
    }
}

impl Default for PreparePool {
    fn default() -> Self {
        PreparePool::for_this_machine()
    }
}
