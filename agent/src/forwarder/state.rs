//! The forwarder's connection state, without IO: which rows are in flight,
//! which MQTT packet id carries which rows, how many bytes are outstanding,
//! whether the connection is up and making progress, and when to read the
//! queue next. The task (`task.rs`) drives it: every event, timer and read
//! result is handed in with the time it happened (`now`), and the state
//! answers what to do, the way rumqttc's `MqttState` is driven by its event
//! loop. Tests drive it on a virtual clock.
//!
//! Invariants:
//! - A row is reported as forwarded (and so deleted) only after the PUBACK
//!   of the publish that carried it.
//! - rumqttc does not return packet ids from `publish()`; it reports
//!   `Outgoing::Publish(pkid)` in the order publishes were requested, so
//!   requested publishes are queued and matched to packet ids in FIFO order.
//! - After any disconnect everything not yet PUBACKed is forgotten here and
//!   read again from the store (the store is the source of truth), starting
//!   at the lowest un-acknowledged sequence number, so order per source is
//!   kept and nothing is skipped. The cursor moves past a row only when the
//!   row was handed to the client or set aside (parked, or kept unsent for
//!   another build), never past a row that was merely read.
//! - At most `window` publishes are outstanding (requested or in flight),
//!   and a read is asked for only while the outstanding payload bytes leave
//!   room for it, so what the agent holds for the broker stays bounded by
//!   [`Limits::budget_bytes`] plus one read, whatever the records' sizes.
//! - The connection is given up when publishes are outstanding and no
//!   PUBACK arrived for [`Limits::no_progress`] plus the time the
//!   outstanding bytes need on a slow uplink ([`SLOWEST_UPLINK`]), so a
//!   large publish on a slow line is not mistaken for a dead connection
//!   (which would resend it forever).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Once caught up, how long the forwarder lets new commits gather before
/// it reads them: what arrives meanwhile goes out in the same read,
/// envelope, PUBACK and delete. At a few messages per second this is most
/// of the forwarder's cost per message (and a delete commit per message
/// competing with the ACKs' commits); it delays a record's arrival at the
/// hub by at most this much. A backlog is read without waiting.
pub const LINGER: Duration = Duration::from_millis(20);

/// The least time a connection may have publishes outstanding without any
/// PUBACK before it is considered wedged (also at least two keep-alives).
pub const MIN_NO_PROGRESS: Duration = Duration::from_secs(20);

/// The slowest uplink the no-progress rule allows for, in bytes per second
/// (256 kbit/s, a poor clinic DSL line): outstanding bytes add their
/// transfer time at this rate to the no-progress limit.
pub const SLOWEST_UPLINK: u64 = 32 * 1024;

/// The least outstanding-bytes budget: enough publishes in flight to keep a
/// drain of small records fast (a drain of 25,000 records a second moves
/// about 35 MB/s, so 2 MiB covers a round trip of 50 ms), small against the
/// agent's memory budget.
pub const MIN_BUDGET_BYTES: usize = 2 << 20;

/// How one connection paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most publishes outstanding (`hub.inflight`).
    pub window: usize,
    /// Most records per publish (`hub.batch_max_records`).
    pub batch_records: usize,
    /// Most bytes per payload (`hub.max_payload`).
    pub max_payload: usize,
    /// Most payload bytes outstanding before reads pause (at least one
    /// payload).
    pub budget_bytes: usize,
    /// No PUBACK for this long while publishes are outstanding (plus their
    /// transfer time, see [`SLOWEST_UPLINK`]) ends the connection.
    pub no_progress: Duration,
}

impl Limits {
    /// The limits for the hub settings.
    pub fn new(
        window: u16,
        batch_records: u16,
        max_payload: usize,
        keep_alive: Duration,
    ) -> Limits {
        Limits {
            window: usize::from(window).max(1),
            batch_records: usize::from(batch_records).max(1),
            max_payload: max_payload.max(1),
            budget_bytes: MIN_BUDGET_BYTES.max(max_payload),
            no_progress: MIN_NO_PROGRESS.max(keep_alive.saturating_mul(2)),
        }
    }

    /// Publishes asked for per read: a quarter of the window, so rows are
    /// read in pages of several publishes, not one page per PUBACK.
    fn page(&self) -> usize {
        self.window.div_ceil(4)
    }

    /// Bytes asked for per read: half the budget, at least one payload.
    fn page_bytes(&self) -> usize {
        (self.budget_bytes / 2).max(self.max_payload)
    }
}

/// What to read from the store next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Rows with a seq above this.
    pub after_seq: i64,
    /// Most rows.
    pub max_rows: usize,
    /// Most record bytes (the first row always comes, whatever its size).
    pub max_bytes: usize,
}

/// What to do after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// These rows are PUBACKed: tell the store.
    Forwarded(Vec<i64>),
    /// The broker refused, the bookkeeping broke or nothing moves: rebuild
    /// the connection.
    Reconnect(&'static str),
}

/// One requested publish: the rows it carries (none for status and
/// heartbeats) and its payload size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Publish {
    seqs: Option<Vec<i64>>,
    bytes: usize,
}

/// Forwarding state for one MQTT connection generation.
#[derive(Debug)]
pub struct ForwardState {
    limits: Limits,
    /// Highest sequence number handed out or set aside.
    cursor: i64,
    /// Requested publishes not yet given a packet id, in request order.
    awaiting_pkid: VecDeque<Publish>,
    /// Publishes sent and waiting for their PUBACK.
    in_flight: HashMap<u16, Publish>,
    /// Payload bytes of every outstanding publish.
    outstanding_bytes: usize,
    /// CONNACK received.
    connected: bool,
    /// A PUBACK forwarded rows on this connection (it proved healthy).
    acked_any: bool,
    /// The last CONNACK or PUBACK, or the start.
    last_progress: Instant,
    /// The last read found no rows after the cursor.
    backlog_empty: bool,
    /// When to read again after commits arrived while caught up.
    linger_until: Option<Instant>,
}

impl ForwardState {
    /// Fresh state at `now`: not connected, nothing in flight, reading from
    /// the start of the queue.
    pub fn new(limits: Limits, now: Instant) -> Self {
        ForwardState {
            limits,
            cursor: 0,
            awaiting_pkid: VecDeque::new(),
            in_flight: HashMap::new(),
            outstanding_bytes: 0,
            connected: false,
            acked_any: false,
            last_progress: now,
            backlog_empty: false,
            linger_until: None,
        }
    }

    /// The limits this state paces by.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The sequence number after which the next rows are read.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// True once the broker accepted the connection.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// True when a PUBACK forwarded rows on this connection: a connection
    /// that ends after this resets the reconnect backoff.
    pub fn proved_healthy(&self) -> bool {
        self.acked_any
    }

    /// Publishes requested or in flight.
    pub fn outstanding(&self) -> usize {
        self.awaiting_pkid.len() + self.in_flight.len()
    }

    /// Payload bytes requested or in flight.
    pub fn outstanding_bytes(&self) -> usize {
        self.outstanding_bytes
    }

    /// How many more publishes may be requested now.
    pub fn free_slots(&self) -> usize {
        self.limits.window.saturating_sub(self.outstanding())
    }

    /// The broker accepted the connection at `now`.
    pub fn on_connack(&mut self, now: Instant) {
        self.connected = true;
        self.last_progress = now;
        self.backlog_empty = false;
    }

    /// What to read next, if the forwarder should read now: connected,
    /// rows may be waiting, a page of the window is free, the outstanding
    /// bytes leave room for a page (or nothing is outstanding), and the
    /// deletes of PUBACKed rows keep up (`deletes_waiting` below
    /// `deletes_max`).
    pub fn next_read(&self, deletes_waiting: usize, deletes_max: usize) -> Option<Read> {
        let page_bytes = self.limits.page_bytes();
        let free_bytes = self
            .limits
            .budget_bytes
            .saturating_sub(self.outstanding_bytes);
        let room = self.outstanding() == 0 || free_bytes >= page_bytes;
        let ready = self.connected
            && !self.backlog_empty
            && self.free_slots() >= self.limits.page()
            && room
            && deletes_waiting < deletes_max;
        ready.then(|| Read {
            after_seq: self.cursor,
            max_rows: self.free_slots().min(self.limits.page()) * self.limits.batch_records,
            max_bytes: free_bytes.min(page_bytes).max(1),
        })
    }

    /// A read returned `rows` rows; none means the queue is caught up
    /// until the next commit or tick.
    pub fn on_read(&mut self, rows: usize) {
        if rows == 0 {
            self.backlog_empty = true;
        }
    }

    /// Records that a publish of `bytes` carrying `seqs` was handed to the
    /// client.
    pub fn requested(&mut self, seqs: Vec<i64>, bytes: usize) {
        if let Some(&last) = seqs.last() {
            self.cursor = self.cursor.max(last);
        }
        self.push(Some(seqs), bytes);
    }

    /// Records that a publish of `bytes` carrying no rows (status,
    /// telemetry) was handed to the client; it takes a packet id like any
    /// other.
    pub fn requested_other(&mut self, bytes: usize) {
        self.push(None, bytes);
    }

    /// Row `seq` was not published and stays in the store (set aside as
    /// too big, or unreadable by this build): the next reads start after it.
    pub fn skipped(&mut self, seq: i64) {
        self.cursor = self.cursor.max(seq);
    }

    /// The client wrote a publish with this packet id.
    pub fn on_outgoing_publish(&mut self, pkid: u16) -> Effect {
        let Some(publish) = self.awaiting_pkid.pop_front() else {
            return Effect::Reconnect("packet id reported for a publish that was not requested");
        };
        if let Some(old) = self.in_flight.insert(pkid, publish) {
            self.outstanding_bytes = self.outstanding_bytes.saturating_sub(old.bytes);
            return Effect::Reconnect("packet id reused while still in flight");
        }
        Effect::None
    }

    /// The broker acknowledged packet `pkid` at `now`.
    pub fn on_puback(&mut self, pkid: u16, success: bool, now: Instant) -> Effect {
        self.last_progress = now;
        let Some(publish) = self.in_flight.remove(&pkid) else {
            return Effect::None;
        };
        self.outstanding_bytes = self.outstanding_bytes.saturating_sub(publish.bytes);
        match (publish.seqs, success) {
            (_, false) => Effect::Reconnect("broker refused a publish (PUBACK failure reason)"),
            (Some(seqs), true) => {
                self.acked_any = true;
                Effect::Forwarded(seqs)
            }
            (None, true) => Effect::None,
        }
    }

    /// The store committed new records at `now`. While the queue is caught
    /// up, the next read waits [`LINGER`] so that records arriving meanwhile
    /// share it; during a backlog the next read picks them up anyway.
    pub fn on_commit(&mut self, now: Instant) {
        if self.backlog_empty && self.linger_until.is_none() {
            self.linger_until = Some(now + LINGER);
        }
    }

    /// When [`ForwardState::on_timer`] is due; `None` when no timer runs.
    pub fn next_timer(&self) -> Option<Instant> {
        self.linger_until
    }

    /// The timer of [`ForwardState::next_timer`] fired at `now`: the
    /// gathered commits are read.
    pub fn on_timer(&mut self, now: Instant) {
        if self.linger_until.is_some_and(|at| at <= now) {
            self.linger_until = None;
            self.backlog_empty = false;
        }
    }

    /// The periodic tick at `now`: gives up a connection that makes no
    /// progress, and reads again (rows may have been skipped while the
    /// window was full, or written by another process).
    pub fn on_tick(&mut self, now: Instant) -> Effect {
        if self.outstanding() > 0
            && now.saturating_duration_since(self.last_progress) > self.patience()
        {
            return Effect::Reconnect("no PUBACK for too long");
        }
        self.backlog_empty = false;
        self.linger_until = None;
        Effect::None
    }

    /// How long outstanding publishes may wait for a PUBACK: the base
    /// limit plus their transfer time on the slowest uplink allowed for.
    pub fn patience(&self) -> Duration {
        let transfer = self.outstanding_bytes as u64 / SLOWEST_UPLINK;
        self.limits
            .no_progress
            .saturating_add(Duration::from_secs(transfer))
    }

    /// The connection is gone: forget everything not acknowledged and read
    /// again from the store, from the start of the queue.
    pub fn reset(&mut self, now: Instant) {
        *self = ForwardState::new(self.limits, now);
    }

    fn push(&mut self, seqs: Option<Vec<i64>>, bytes: usize) {
        self.outstanding_bytes = self.outstanding_bytes.saturating_add(bytes);
        self.awaiting_pkid.push_back(Publish { seqs, bytes });
    }
}

#[cfg(test)]
mod tests;
