//! What travels from a [`StoreHandle`](super::StoreHandle) to the writer
//! thread, and how a batch of it is grouped and answered.
//!
//! Every request carries a oneshot sender for its answer. A request's
//! answer is sent exactly once: after COMMIT returned OK (success), or when
//! its batch failed (error). Dropping a request unanswered is also an
//! answer (the handle maps it to [`StoreError::Closed`] or the writer's
//! fatal state), so a sender can never wait forever.

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    custody::Receipted,
    error::{FailureKind, FullCause, StoreError},
    hub_link::HubLinkRow,
    quarantine::{Quarantined, Resolution},
};

/// A parsed, normalized message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The listener (interface) name it arrived on.
    pub source: String,
    /// MSH-10, the sender's message control id.
    pub control_id: String,
    /// A hash of the message content (computed by the listener), used with
    /// the control id to recognize a resend.
    pub content_hash: [u8; 32],
    /// MSH-9 as a short code, for example `ORU^R01`.
    pub message_type: String,
    /// When it was received, Unix milliseconds.
    pub received_at_ms: i64,
    /// The raw frame content, kept only when the interface forwards it
    /// (`include_raw`); `None` stores the record without it (schema 5).
    pub raw: Option<Vec<u8>>,
    /// The encoded normalized record (opaque to the store).
    pub record: Vec<u8>,
    /// The positive ACK to send once stored; answered again to a resend.
    pub ack: Vec<u8>,
    /// Its MSH-15/MSH-16 asked for no acknowledgement (counted per source).
    pub no_ack_requested: bool,
}

/// The outcome of a successful insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Committed as a new record.
    Stored {
        /// The record id, a UUIDv7 assigned at commit.
        id: Uuid,
        /// The record's sequence number; it orders records.
        seq: i64,
        /// The same source sent this control id within the dedupe window
        /// with other content: this is a new record, not a resend.
        reused_control_id: bool,
    },
    /// A resend of a message stored within the dedupe window (same source,
    /// control id and content): nothing was inserted.
    Duplicate {
        /// The id of the record stored the first time.
        id: Uuid,
        /// The ACK stored the first time, to send again.
        ack: Vec<u8>,
    },
}

/// Records acknowledged by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    pub(crate) seqs: Vec<i64>,
    pub(crate) now_ms: i64,
}

/// A record the forwarder sets aside: it can never fit the hub's payload
/// limit on its own (see `forwarder/split.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Park {
    pub(crate) seq: i64,
    pub(crate) at_ms: i64,
    /// The audit line's detail: sizes and ids, never PHI.
    pub(crate) detail: String,
}

/// An operator's decision on a quarantine entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolve {
    pub(crate) id: i64,
    pub(crate) how: Resolution,
    pub(crate) at_ms: i64,
    /// The record a replayed entry became (its raw message is erased once that record has
    /// left the queue).
    pub(crate) record: Option<Uuid>,
}

/// A quarantine entry ingested again by the running agent: `message` (prepared again from the
/// entry's raw bytes) is stored and the entry marked replayed in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replay {
    pub(crate) id: i64,
    pub(crate) message: NewMessage,
    pub(crate) at_ms: i64,
}

/// An audit trail line. `detail` must not contain PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditLine {
    pub(crate) at_ms: i64,
    pub(crate) kind: String,
    pub(crate) detail: String,
}

/// A request and the channel its answer goes to.
#[derive(Debug)]
pub(crate) struct Pending<Q, A> {
    pub(crate) req: Q,
    pub(crate) reply: oneshot::Sender<Result<A, StoreError>>,
}

impl<Q, A> Pending<Q, A> {
    /// Sends the answer; a requester that went away is not an error.
    pub(crate) fn answer(self, result: Result<A, StoreError>) {
        let _ignored = self.reply.send(result);
    }
}

/// One message on the writer's channel.
#[derive(Debug)]
pub(crate) enum Op {
    Insert(Pending<NewMessage, Inserted>),
    Quarantine(Pending<Quarantined, i64>),
    Forwarded(Pending<Forward, u64>),
    Park(Pending<Park, bool>),
    Resolve(Pending<Resolve, ()>),
    Audit(Pending<AuditLine, ()>),
    Receipt(Pending<Receipted, u64>),
    HubLink(Pending<HubLinkRow, ()>),
    Replay(Pending<Replay, Inserted>),
    /// Stop writing: the integrity check found the database corrupt.
    Halt {
        detail: String,
    },
}

/// Which request of a batch caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpRef {
    Insert(usize),
    Quarantine(usize),
    Forwarded(usize),
    Park(usize),
    Resolve(usize),
    Audit(usize),
    Receipt(usize),
    HubLink(usize),
    Replay(usize),
}

/// The requests of one transaction, grouped by kind, each kind in arrival
/// order. Within a transaction the writer applies forwarded deletes first
/// (they free space), then parked records, resolutions and audit lines,
/// then inserts and quarantines in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) inserts: Vec<Pending<NewMessage, Inserted>>,
    pub(crate) quarantines: Vec<Pending<Quarantined, i64>>,
    pub(crate) forwarded: Vec<Pending<Forward, u64>>,
    pub(crate) parks: Vec<Pending<Park, bool>>,
    pub(crate) resolves: Vec<Pending<Resolve, ()>>,
    pub(crate) audits: Vec<Pending<AuditLine, ()>>,
    pub(crate) receipts: Vec<Pending<Receipted, u64>>,
    pub(crate) links: Vec<Pending<HubLinkRow, ()>>,
    pub(crate) replays: Vec<Pending<Replay, Inserted>>,
    pub(crate) halt: Option<String>,
}

/// Per-request results of a committed batch, index-aligned with [`Batch`].
#[derive(Debug, Default)]
pub(crate) struct BatchResults {
    pub(crate) inserts: Vec<Result<Inserted, StoreError>>,
    pub(crate) quarantines: Vec<Result<i64, StoreError>>,
    pub(crate) forwarded: Vec<u64>,
    pub(crate) parks: Vec<bool>,
    pub(crate) resolves: Vec<Result<(), StoreError>>,
    /// The seqs each receipt found, in seq order.
    pub(crate) receipts: Vec<Vec<i64>>,
    pub(crate) replays: Vec<Result<Inserted, StoreError>>,
}

impl Batch {
    /// Adds a request to the batch.
    pub(crate) fn push(&mut self, op: Op) {
        match op {
            Op::Insert(p) => self.inserts.push(p),
            Op::Quarantine(p) => self.quarantines.push(p),
            Op::Forwarded(p) => self.forwarded.push(p),
            Op::Park(p) => self.parks.push(p),
            Op::Resolve(p) => self.resolves.push(p),
            Op::Audit(p) => self.audits.push(p),
            Op::Receipt(p) => self.receipts.push(p),
            Op::HubLink(p) => self.links.push(p),
            Op::Replay(p) => self.replays.push(p),
            Op::Halt { detail } => self.halt = Some(detail),
        }
    }

    /// Number of requests waiting for an answer.
    pub(crate) fn len(&self) -> usize {
        self.inserts.len()
            + self.quarantines.len()
            + self.forwarded.len()
            + self.parks.len()
            + self.resolves.len()
            + self.audits.len()
            + self.receipts.len()
            + self.links.len()
            + self.replays.len()
    }

    /// True when nothing waits for an answer.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the batch adds data (inserts or quarantines).
    pub(crate) fn grows(&self) -> bool {
        !self.inserts.is_empty() || !self.quarantines.is_empty() || !self.replays.is_empty()
    }

    /// Whether the commit must be on disk before the batch is answered:
    /// every request but a forwarded delete is a promise to someone (a
    /// sender's ACK, an operator's decision, an audit line, a record set
    /// aside with its audit line). A lost delete (at a PUBACK or a receipt)
    /// or mark (at broker) only means its records are sent again, under the
    /// same ids; a lost hub link update is replaced by the next.
    pub(crate) fn must_be_durable(&self) -> bool {
        self.grows()
            || !self.parks.is_empty()
            || !self.resolves.is_empty()
            || !self.audits.is_empty()
    }

    /// Answers every request of a committed batch.
    pub(crate) fn answer(self, results: BatchResults) {
        zip_answer(self.inserts, results.inserts);
        zip_answer(self.quarantines, results.quarantines);
        zip_answer(
            self.forwarded,
            results.forwarded.into_iter().map(Ok).collect(),
        );
        zip_answer(self.parks, results.parks.into_iter().map(Ok).collect());
        zip_answer(self.resolves, results.resolves);
        zip_answer(self.replays, results.replays);
        zip_answer(
            self.receipts,
            results
                .receipts
                .into_iter()
                .map(|seqs| Ok(seqs.len() as u64))
                .collect(),
        );
        for p in self.audits {
            p.answer(Ok(()));
        }
        for p in self.links {
            p.answer(Ok(()));
        }
    }

    /// Answers every request with an error made by `error`, leaving the
    /// batch empty.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> StoreError) {
        self.inserts.drain(..).for_each(|p| p.answer(Err(error())));
        self.quarantines
            .drain(..)
            .for_each(|p| p.answer(Err(error())));
        self.forwarded
            .drain(..)
            .for_each(|p| p.answer(Err(error())));
        self.parks.drain(..).for_each(|p| p.answer(Err(error())));
        self.resolves.drain(..).for_each(|p| p.answer(Err(error())));
        self.audits.drain(..).for_each(|p| p.answer(Err(error())));
        self.receipts.drain(..).for_each(|p| p.answer(Err(error())));
        self.links.drain(..).for_each(|p| p.answer(Err(error())));
        self.replays.drain(..).for_each(|p| p.answer(Err(error())));
    }

    /// Answers the inserts and quarantines with `Full` and removes them.
    pub(crate) fn refuse_growth(&mut self) {
        let full = || StoreError::Full {
            cause: FullCause::Filesystem,
        };
        self.inserts.drain(..).for_each(|p| p.answer(Err(full())));
        self.quarantines
            .drain(..)
            .for_each(|p| p.answer(Err(full())));
        self.replays.drain(..).for_each(|p| p.answer(Err(full())));
    }

    /// Answers the request that made the batch fail and removes it, so the
    /// rest can be retried without it.
    pub(crate) fn eject(&mut self, culprit: OpRef, kind: &FailureKind) {
        match culprit {
            OpRef::Insert(i) => eject_at(&mut self.inserts, i, kind),
            OpRef::Quarantine(i) => eject_at(&mut self.quarantines, i, kind),
            OpRef::Forwarded(i) => eject_at(&mut self.forwarded, i, kind),
            OpRef::Park(i) => eject_at(&mut self.parks, i, kind),
            OpRef::Resolve(i) => eject_at(&mut self.resolves, i, kind),
            OpRef::Audit(i) => eject_at(&mut self.audits, i, kind),
            OpRef::Receipt(i) => eject_at(&mut self.receipts, i, kind),
            OpRef::HubLink(i) => eject_at(&mut self.links, i, kind),
            OpRef::Replay(i) => eject_at(&mut self.replays, i, kind),
        }
    }
}

fn eject_at<Q, A>(list: &mut Vec<Pending<Q, A>>, index: usize, kind: &FailureKind) {
    if index < list.len() {
        list.remove(index).answer(Err(kind.to_error()));
    }
}

fn zip_answer<Q, A>(pending: Vec<Pending<Q, A>>, results: Vec<Result<A, StoreError>>) {
    let mut results = results.into_iter();
    for p in pending {
        // A missing result would be a bug in the batch code; answering
        // `Closed` keeps the requester from waiting forever.
        p.answer(results.next().unwrap_or(Err(StoreError::Closed)));
    }
}
