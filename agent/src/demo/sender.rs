//! A simulated HL7 sender: one MLLP connection over TCP, one message at a
//! time, each sent only after the ACK of the previous one arrived (as real
//! analyzers and monitors do).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hl7edge_protocol::hl7::ack::{AckSummary, ack_code_of};
use hl7edge_protocol::hl7::mllp::{self, Decoder, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::console::Console;
use super::error::SendError;
use super::messages::{Kind, Outgoing};
use super::render;

/// How long a sender waits for each ACK.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest ACK the sender reads.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// What one sender sends, and where.
#[derive(Debug)]
pub(super) struct Script {
    /// The listener name (`lab`, `monitors`).
    pub name: &'static str,
    /// The listener's address.
    pub addr: SocketAddr,
    /// The messages, in order.
    pub messages: Vec<Outgoing>,
    /// Pause after each ACK, so a person can follow the output.
    pub pace: Duration,
}

/// One message and the gateway's answer.
#[derive(Debug, Clone)]
pub(super) struct Exchange {
    /// The listener it went to.
    pub sender: &'static str,
    /// What was sent.
    pub message: Outgoing,
    /// MSA-1, MSA-2 and ERR codes of the answer.
    pub ack: AckSummary,
    /// For a resend: whether the answer is byte for byte the ACK the first
    /// send got (the stored ACK, replayed).
    pub replayed: Option<bool>,
}

/// Sends the script over one connection and prints a line per ACK.
pub(super) async fn run(script: Script, console: Console) -> Result<Vec<Exchange>, SendError> {
    let mut client = MllpClient::connect(script.addr).await?;
    let mut first_acks: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::with_capacity(script.messages.len());
    for message in script.messages {
        let raw_ack = client.exchange(&message).await?;
        let ack = ack_code_of(&raw_ack).ok_or_else(|| SendError::NotAnAck {
            control_id: message.control_id.clone(),
        })?;
        let replayed = match message.kind {
            Kind::Resend => Some(first_acks.get(&message.control_id) == Some(&raw_ack)),
            Kind::Valid | Kind::Malformed => {
                first_acks.insert(message.control_id.clone(), raw_ack);
                None
            }
        };
        let exchange = Exchange {
            sender: script.name,
            message,
            ack,
            replayed,
        };
        console.line(render::exchange_line(&exchange));
        out.push(exchange);
        tokio::time::sleep(script.pace).await;
    }
    Ok(out)
}

/// An MLLP client connection.
struct MllpClient {
    addr: SocketAddr,
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes read but not yet decoded.
    pending: Vec<u8>,
}

impl MllpClient {
    async fn connect(addr: SocketAddr) -> Result<MllpClient, SendError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| SendError::Io { addr, source })?;
        Ok(MllpClient {
            addr,
            stream,
            decoder: Decoder::new(MAX_ACK_BYTES),
            pending: Vec::new(),
        })
    }

    /// Sends one framed message and returns the first frame answered.
    async fn exchange(&mut self, message: &Outgoing) -> Result<Vec<u8>, SendError> {
        let mut frame = Vec::new();
        mllp::encode(&message.bytes, &mut frame)?;
        let addr = self.addr;
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| SendError::Io { addr, source })?;
        match tokio::time::timeout(ACK_TIMEOUT, self.read_frame()).await {
            Err(_) => Err(SendError::Timeout {
                control_id: message.control_id.clone(),
                seconds: ACK_TIMEOUT.as_secs(),
            }),
            Ok(Err(source)) => Err(SendError::Io { addr, source }),
            Ok(Ok(None)) => Err(SendError::Closed {
                control_id: message.control_id.clone(),
            }),
            Ok(Ok(Some(ack))) => Ok(ack),
        }
    }

    /// The next complete frame; `None` when the peer closed first.
    async fn read_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut chunk = [0u8; 4096];
        loop {
            let mut input: &[u8] = &self.pending;
            while let Some(event) = self.decoder.decode(&mut input) {
                if let Event::Frame(payload) = event {
                    let used = self.pending.len() - input.len();
                    self.pending.drain(..used);
                    return Ok(Some(payload));
                }
            }
            self.pending.clear();
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.pending
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn an_ack_split_across_reads_and_followed_by_more_bytes_is_read_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await.unwrap();
            sock.write_all(b"\x0bMSH|^~\\&|A|B|C|D|2026||ACK|X1|P|2.5.1\rMSA|A")
                .await
                .unwrap();
            sock.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            sock.write_all(b"A|M1\r\x1c\r\x0bnext").await.unwrap();
        });
        let mut client = MllpClient::connect(addr).await.unwrap();
        let message = Outgoing {
            control_id: "M1".into(),
            label: "test",
            kind: Kind::Valid,
            bytes: b"MSH|^~\\&|X\r".to_vec(),
        };
        let ack = client.exchange(&message).await.unwrap();
        let summary = ack_code_of(&ack).unwrap();
        assert_eq!(summary.code.as_str(), "AA");
        assert_eq!(summary.acknowledged_id, "M1");
        server.await.unwrap();
    }
}
