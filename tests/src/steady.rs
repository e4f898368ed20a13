//! Steady MLLP load while a test breaks something: each sender sends lab messages `0, 1, ...`
//! one at a time (resending what was not ACKed, like a lab system) until [`Steady::finish`]
//! stops them, which then requires every message to have been ACKed.
//!
//! Invariant: a sender stops only between messages, so each one it started is either ACKed or
//! reported as not ACKed by [`Steady::finish`]; nothing is left half sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;

use crate::checker::Acked;
use crate::hl7gen::{self, Kind};
use crate::mllp::Sender;

/// What [`Steady::finish`] can find.
#[derive(Debug, thiserror::Error)]
pub enum SteadyError {
    /// A sender task panicked or was cancelled.
    #[error("sender task: {0}")]
    Task(String),
    /// A sender got a negative ACK or gave up on a message.
    #[error("{source_name}: a message was not ACKed: {outcome}")]
    NotAcked {
        /// The sender's name (its messages' sending application).
        source_name: String,
        /// The first outcome without a positive ACK, as debug text.
        outcome: String,
    },
}

/// Senders running until [`Steady::finish`].
pub struct Steady {
    listener: String,
    stop: Arc<AtomicBool>,
    tasks: Vec<(&'static str, JoinHandle<Sender>)>,
}

impl Steady {
    /// Starts one task per `(name, sender)`, each sending lab messages from `name` through its
    /// sender; `listener` is the listener the senders point at (the source of their records).
    pub fn start(
        listener: &str,
        senders: impl IntoIterator<Item = (&'static str, Sender)>,
    ) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = senders
            .into_iter()
            .map(|(name, sender)| (name, tokio::spawn(send_until(sender, name, stop.clone()))))
            .collect();
        Steady {
            listener: listener.to_owned(),
            stop,
            tasks,
        }
    }

    /// Stops every sender after its current message and returns what each had ACKed; an error
    /// if any message was not ACKed.
    pub async fn finish(self) -> Result<Vec<Acked>, SteadyError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        for (name, task) in self.tasks {
            let sender = task.await.map_err(|e| SteadyError::Task(e.to_string()))?;
            if let Some(outcome) = sender.outcomes().iter().find(|o| !o.is_acked()) {
                return Err(SteadyError::NotAcked {
                    source_name: name.to_owned(),
                    outcome: format!("{outcome:?}"),
                });
            }
            acked.push(Acked::new(&self.listener, sender.acked()));
        }
        Ok(acked)
    }
}

async fn send_until(mut sender: Sender, name: &'static str, stop: Arc<AtomicBool>) -> Sender {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        sender.send(&hl7gen::message(Kind::Lab, name, n)).await;
        n += 1;
    }
    sender
}
