//! A sender that behaves like a lab system's HL7 interface: one message at a time, each waiting
//! for its ACK; on a timeout or a lost connection it reconnects with backoff and sends the same
//! message again (same control id, same bytes), until it gets an ACK or gives up.
//!
//! Invariants:
//! - after a timeout the connection is dropped before the resend, so a late ACK for the earlier
//!   attempt can never be taken for the answer to the next message;
//! - an ACK whose MSA-2 does not echo the message's control id is not accepted as its answer: it
//!   is counted in [`SenderStats::mismatched_acks`] and the message is sent again;
//! - outcomes are recorded in send order, one per message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Ack, Connection, MllpError, MllpTls, parse_ack};
use crate::hl7gen::Message;

/// How a [`Sender`] connects, waits and retries.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// The listener to send to.
    pub addr: SocketAddr,
    /// MLLP over TLS, if set.
    pub tls: Option<MllpTls>,
    /// How long to wait for an ACK before resending (default 5 s).
    pub ack_timeout: Duration,
    /// First pause before reconnecting (default 50 ms); doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest pause before reconnecting (default 1 s).
    pub backoff_max: Duration,
    /// Stop trying one message after this long (default 120 s); its outcome has no ACK.
    pub give_up_after: Duration,
    /// Resend after AR/CR (the receiver could not store it now) instead of recording it
    /// (default false).
    pub retry_rejects: bool,
}

impl SenderConfig {
    /// Defaults for a plain TCP listener at `addr`.
    pub fn new(addr: SocketAddr) -> SenderConfig {
        SenderConfig {
            addr,
            tls: None,
            ack_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            give_up_after: Duration::from_secs(120),
            retry_rejects: false,
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The message's control id (MSH-10).
    pub control_id: String,
    /// The accepted ACK, or `None` if the sender gave up.
    pub ack: Option<Ack>,
    /// How many times the message was written (1 = no resend).
    pub attempts: u32,
}

impl Outcome {
    /// Whether the message got AA or CA.
    pub fn is_acked(&self) -> bool {
        self.ack.as_ref().is_some_and(|ack| ack.code.is_positive())
    }
}

/// Counters over all messages of a sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Successful connections.
    pub connects: u32,
    /// Failed connection attempts.
    pub connect_failures: u32,
    /// Writes of a message after its first.
    pub resends: u32,
    /// ACK waits that timed out.
    pub timeouts: u32,
    /// Connections lost (closed or reset) while waiting for an ACK.
    pub connection_losses: u32,
    /// ACK frames that could not be read.
    pub unreadable_acks: u32,
    /// ACKs whose MSA-2 did not match the message sent.
    pub mismatched_acks: u32,
}

/// A sequential MLLP sender with a lab system's resend policy.
pub struct Sender {
    config: SenderConfig,
    connection: Option<Connection>,
    outcomes: Vec<Outcome>,
    stats: SenderStats,
}

impl Sender {
    /// A sender that connects on its first message.
    pub fn new(config: SenderConfig) -> Sender {
        Sender {
            config,
            connection: None,
            outcomes: Vec::new(),
            stats: SenderStats::default(),
        }
    }

    /// Sends every message in order, each waiting for its ACK.
    pub async fn send_all(&mut self, messages: impl IntoIterator<Item = Message>) {
        for message in messages {
            self.send(&message).await;
        }
    }

    /// Sends one message until it is answered (or the sender gives up) and records the outcome.
    ///
    /// When the sender gives up after rejects (with `retry_rejects`), the last reject is the
    /// recorded ACK.
    pub async fn send(&mut self, message: &Message) -> Outcome {
        let started = Instant::now();
        let mut backoff = self.config.backoff_min;
        let mut attempts: u32 = 0;
        let mut last_reject = None;
        let ack = loop {
            if started.elapsed() >= self.config.give_up_after {
                break last_reject;
            }
            attempts += 1;
            match self.attempt(message).await {
                Some(ack) if ack.code.is_reject() && self.config.retry_rejects => {
                    last_reject = Some(ack)
                }
                Some(ack) => break Some(ack),
                None => self.connection = None,
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.backoff_max);
        };
        self.stats.resends += attempts.saturating_sub(1);
        let outcome = Outcome {
            control_id: message.control_id.clone(),
            ack,
            attempts,
        };
        self.outcomes.push(outcome.clone());
        outcome
    }

    /// Every outcome so far, in send order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Control ids that got AA or CA, in the order they were acknowledged.
    pub fn acked(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.is_acked())
            .map(|o| o.control_id.clone())
            .collect()
    }

    /// Control ids that got no AA or CA (refused, errored or unanswered), in send order.
    pub fn not_acked(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| !o.is_acked())
            .map(|o| o.control_id.clone())
            .collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// Closes the connection (the next message reconnects).
    pub fn disconnect(&mut self) {
        self.connection = None;
    }

    /// One write and ACK wait; `None` when the connection must be rebuilt.
    async fn attempt(&mut self, message: &Message) -> Option<Ack> {
        let timeout = self.config.ack_timeout;
        let connection = self.connection().await?;
        let result = connection.send(&message.bytes, timeout).await;
        let frame = match result {
            Ok(frame) => frame,
            Err(MllpError::Timeout(_)) => {
                self.stats.timeouts += 1;
                return None;
            }
            Err(_) => {
                self.stats.connection_losses += 1;
                return None;
            }
        };
        match parse_ack(&frame) {
            Ok(ack) if ack.control_id == message.control_id => Some(ack),
            Ok(_) => {
                self.stats.mismatched_acks += 1;
                None
            }
            Err(_) => {
                self.stats.unreadable_acks += 1;
                None
            }
        }
    }

    async fn connection(&mut self) -> Option<&mut Connection> {
        if self.connection.is_none() {
            let timeout = self.config.ack_timeout;
            match Connection::connect(self.config.addr, self.config.tls.as_ref(), timeout).await {
                Ok(connection) => {
                    self.stats.connects += 1;
                    self.connection = Some(connection);
                }
                Err(_) => self.stats.connect_failures += 1,
            }
        }
        self.connection.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::hl7gen::lab_result;
    use crate::mllp::{AckCode, frame, take_frame};

    /// What the scripted receiver does with the n-th message it reads (counting from 0).
    #[derive(Clone, Copy)]
    enum Reply {
        Ack(&'static str),
        Silence,
        Hangup,
        WrongControlId,
    }

    /// A scripted MLLP receiver, one connection at a time; returns its address and a log of the
    /// control ids it read.
    async fn receiver(script: Vec<Reply>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut script = script.into_iter();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = Vec::new();
                'connection: loop {
                    let mut chunk = [0_u8; 4096];
                    let read = socket.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(message) = take_frame(&mut buffer).unwrap() {
                        let text = String::from_utf8(message).unwrap();
                        let control_id = text.split('|').nth(9).unwrap().to_owned();
                        log.lock().unwrap().push(control_id.clone());
                        let ack = |code: &str, id: &str| {
                            frame(
                                format!(
                                    "MSH|^~\\&|R|F|S|F|20250301||ACK|A1|P|2.5.1\rMSA|{code}|{id}\r"
                                )
                                .as_bytes(),
                            )
                        };
                        match script.next().unwrap_or(Reply::Ack("AA")) {
                            Reply::Ack(code) => {
                                socket.write_all(&ack(code, &control_id)).await.unwrap()
                            }
                            Reply::Silence => {}
                            Reply::Hangup => break 'connection,
                            Reply::WrongControlId => {
                                socket.write_all(&ack("AA", "someone-else")).await.unwrap()
                            }
                        }
                    }
                }
            }
        });
        (addr, seen)
    }

    fn quick(addr: SocketAddr) -> SenderConfig {
        SenderConfig {
            ack_timeout: Duration::from_millis(300),
            backoff_min: Duration::from_millis(10),
            ..SenderConfig::new(addr)
        }
    }

    #[tokio::test]
    async fn a_message_without_an_ack_is_resent_on_a_new_connection() {
        let (addr, seen) = receiver(vec![Reply::Silence]).await;
        let mut sender = Sender::new(quick(addr));
        let outcome = sender.send(&lab_result("lab", 1)).await;
        assert!(outcome.is_acked() && outcome.attempts == 2, "{outcome:?}");
        assert_eq!(*seen.lock().unwrap(), ["lab-1", "lab-1"]);
        let stats = sender.stats();
        assert_eq!((stats.timeouts, stats.connects, stats.resends), (1, 2, 1));
    }

    #[tokio::test]
    async fn a_lost_connection_is_rebuilt_and_the_message_sent_again() {
        let (addr, seen) = receiver(vec![Reply::Ack("AA"), Reply::Hangup]).await;
        let mut sender = Sender::new(quick(addr));
        sender
            .send_all(crate::hl7gen::messages(
                crate::hl7gen::Kind::Lab,
                "lab",
                0..3,
            ))
            .await;
        assert_eq!(sender.acked(), ["lab-0", "lab-1", "lab-2"]);
        assert_eq!(*seen.lock().unwrap(), ["lab-0", "lab-1", "lab-1", "lab-2"]);
        assert_eq!(sender.stats().connection_losses, 1);
    }

    #[tokio::test]
    async fn an_ack_for_another_control_id_is_not_taken_as_the_answer() {
        let (addr, _) = receiver(vec![Reply::WrongControlId]).await;
        let mut sender = Sender::new(quick(addr));
        let outcome = sender.send(&lab_result("lab", 5)).await;
        assert_eq!(
            outcome.ack.map(|a| (a.code, a.control_id)),
            Some((AckCode::AA, "lab-5".to_owned()))
        );
        assert_eq!(sender.stats().mismatched_acks, 1);
    }

    #[tokio::test]
    async fn rejects_are_recorded_or_retried_as_configured() {
        let (addr, _) = receiver(vec![Reply::Ack("AR"), Reply::Ack("AE")]).await;
        let mut recording = Sender::new(quick(addr));
        assert_eq!(
            recording
                .send(&lab_result("lab", 1))
                .await
                .ack
                .map(|a| a.code),
            Some(AckCode::AR)
        );
        assert_eq!(
            recording
                .send(&lab_result("lab", 2))
                .await
                .ack
                .map(|a| a.code),
            Some(AckCode::AE)
        );
        assert!(recording.acked().is_empty());

        let (addr, _) = receiver(vec![Reply::Ack("AR"), Reply::Ack("AR")]).await;
        let mut retrying = Sender::new(SenderConfig {
            retry_rejects: true,
            ..quick(addr)
        });
        let outcome = retrying.send(&lab_result("lab", 1)).await;
        assert!(outcome.is_acked() && outcome.attempts == 3, "{outcome:?}");
    }

    #[tokio::test]
    async fn a_sender_gives_up_when_nobody_listens() {
        let port = crate::process::free_port().unwrap();
        let config = SenderConfig {
            give_up_after: Duration::from_millis(300),
            ..quick(SocketAddr::from(([127, 0, 0, 1], port)))
        };
        let mut sender = Sender::new(config);
        let outcome = sender.send(&lab_result("lab", 1)).await;
        assert_eq!(outcome.ack, None);
        assert!(sender.stats().connect_failures >= 2, "{:?}", sender.stats());
    }
}
