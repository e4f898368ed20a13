//! MLLP load as real senders produce it: each connection sends one message and waits for its
//! ACK before the next. [`ClosedLoop`] runs N such senders as fast as the agent answers;
//! [`paced`] runs a few senders on a fixed schedule (open loop) and records each ACK's latency
//! from the message's scheduled send time, so a stall is not hidden by sending later.
//!
//! Invariant: a message counts only when a positive ACK (AA/CA) for it arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::hl7gen;
use crate::mllp::{Connection, MllpError, parse_ack};

/// How long a sender waits for one ACK.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What can stop a sender.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The connection or an ACK failed.
    #[error(transparent)]
    Mllp(#[from] MllpError),
    /// The agent answered with a negative ACK.
    #[error("negative ACK for {control_id}")]
    Nak {
        /// The message's control id.
        control_id: String,
    },
    /// A sender task panicked or was cancelled.
    #[error("sender task: {0}")]
    Task(String),
}

/// N senders in a closed loop; stop them with [`ClosedLoop::stop`].
pub struct ClosedLoop {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Result<u64, LoadError>>>,
}

impl ClosedLoop {
    /// Starts `senders` connections to `addr`; sender `i` is called `{prefix}{i}` (its messages'
    /// control ids are `{prefix}{i}-{n}`, unique per run).
    pub fn start(addr: SocketAddr, senders: usize, prefix: &str) -> ClosedLoop {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..senders)
            .map(|i| {
                let name = format!("{prefix}{i}");
                tokio::spawn(run_sender(addr, name, acked.clone(), stop.clone()))
            })
            .collect();
        ClosedLoop { acked, stop, tasks }
    }

    /// Positively acknowledged messages so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops every sender after its current message; returns the total acknowledged, or the
    /// first sender error.
    pub async fn stop(self) -> Result<u64, LoadError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for task in self.tasks {
            total += task.await.map_err(|e| LoadError::Task(e.to_string()))??;
        }
        Ok(total)
    }
}

async fn run_sender(
    addr: SocketAddr,
    name: String,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<u64, LoadError> {
    let mut connection = Connection::connect(addr, None, ACK_TIMEOUT).await?;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        send_one(&mut connection, hl7gen::lab_result(&name, n)).await?;
        n += 1;
        acked.fetch_add(1, Ordering::Relaxed);
    }
    Ok(n)
}

/// Sends `message` and checks the ACK is positive.
async fn send_one(connection: &mut Connection, message: hl7gen::Message) -> Result<(), LoadError> {
    let ack = parse_ack(&connection.send(&message.bytes, ACK_TIMEOUT).await?)?;
    if ack.code.is_positive() {
        Ok(())
    } else {
        Err(LoadError::Nak {
            control_id: message.control_id,
        })
    }
}

/// Sends `rate` messages per second in total for `duration`, spread over `senders`
/// connections, and returns every ACK latency: from the scheduled send time when the previous
/// ACK came after it, else from the send.
pub async fn paced(
    addr: SocketAddr,
    senders: usize,
    rate: f64,
    duration: Duration,
    prefix: &str,
) -> Result<Vec<Duration>, LoadError> {
    let senders = senders.max(1);
    let interval = Duration::from_secs_f64(senders as f64 / rate.max(1.0));
    let count = (duration.as_secs_f64() / interval.as_secs_f64()) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..senders)
        .map(|i| {
            // Spread the senders' schedules over one interval.
            let offset = interval.mul_f64(i as f64 / senders as f64);
            let name = format!("{prefix}{i}");
            tokio::spawn(paced_sender(addr, name, start + offset, interval, count))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(|e| LoadError::Task(e.to_string()))??);
    }
    Ok(latencies)
}

async fn paced_sender(
    addr: SocketAddr,
    name: String,
    start: Instant,
    interval: Duration,
    count: u64,
) -> Result<Vec<Duration>, LoadError> {
    let mut connection = Connection::connect(addr, None, ACK_TIMEOUT).await?;
    let mut latencies = Vec::with_capacity(usize::try_from(count).unwrap_or_default());
    let mut free_at = start;
    for n in 0..count {
        let due = start + interval.mul_f64(n as f64);
        let message = hl7gen::lab_result(&name, n);
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        send_one(&mut connection, message).await?;
        let done = Instant::now();
        // A message held up by the previous one's slow ACK counts from its
        // slot (no coordinated omission); otherwise from when the bench's
        // timer, which wakes up to a millisecond late, let it go: that
        // delay is the bench's, not the gateway's.
        let from = if free_at > due { due } else { woke };
        latencies.push(done.duration_since(from));
        free_at = done;
    }
    Ok(latencies)
}
