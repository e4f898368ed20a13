//! An MLLP client as a lab system or device gateway would run it: frames a message
//! (`0x0B … 0x1C 0x0D`), writes it over TCP (optionally TLS), reads the ACK frame back with a
//! timeout, and reads MSA-1/MSA-2 from it. [`Sender`] adds the resend policy.
//!
//! The ACK is parsed minimally here (segments split on CR, fields on the separator from MSH), on
//! purpose independent of the agent's own parser, so a parser bug cannot hide itself.
//!
//! Invariants:
//! - bytes before a start block are skipped (as real clients do), never returned as a frame;
//! - a frame larger than [`MAX_FRAME`] is an error, so a misbehaving peer cannot exhaust memory.

mod ack;
mod sender;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::pki::CertPaths;
use crate::tls::{self, TlsError};

pub use ack::{Ack, AckCode, parse_ack};
pub use sender::{Outcome, Sender, SenderConfig, SenderStats};

/// Start block.
pub const START: u8 = 0x0B;
/// End block (file separator) and the carriage return after it.
pub const END: [u8; 2] = [0x1C, 0x0D];
/// Largest frame the client reads (16 MiB).
pub const MAX_FRAME: usize = 16 << 20;

/// What can go wrong on an MLLP connection.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// Connecting, reading or writing failed.
    #[error("MLLP I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS server name is not a valid DNS name or address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// No complete frame arrived in time.
    #[error("no ACK frame within {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection before a complete frame arrived.
    #[error("connection closed by the peer ({buffered} bytes of an incomplete frame)")]
    Closed {
        /// Bytes received after the last complete frame.
        buffered: usize,
    },
    /// The peer sent a frame larger than [`MAX_FRAME`].
    #[error("frame larger than {MAX_FRAME} bytes")]
    FrameTooLarge,
    /// The ACK could not be read.
    #[error("unreadable ACK: {0}")]
    BadAck(String),
}

/// TLS settings for MLLP over TLS.
#[derive(Debug, Clone)]
pub struct MllpTls {
    /// CA certificate(s) trusted for the listener's certificate.
    pub ca: PathBuf,
    /// Client certificate to present, if any.
    pub identity: Option<CertPaths>,
    /// The name the listener's certificate must carry, e.g. `localhost`.
    pub server_name: String,
}

/// Anything a connection can run over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One MLLP connection.
pub struct Connection {
    stream: Box<dyn Io>,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `addr`, with TLS when `tls` is given, within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<&MllpTls>,
        timeout: Duration,
    ) -> Result<Connection, MllpError> {
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let stream: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(settings) => Box::new(handshake(tcp, settings).await?),
            };
            Ok::<_, MllpError>(stream)
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| MllpError::Timeout(timeout))??;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Sends `message` in one frame and returns the content of the next frame (the ACK).
    pub async fn send(&mut self, message: &[u8], timeout: Duration) -> Result<Vec<u8>, MllpError> {
        self.write_raw(&frame(message)).await?;
        self.read_frame(timeout).await
    }

    /// Writes bytes exactly as given (for malformed and hostile input).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), MllpError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Reads the next frame's content (without the framing bytes).
    pub async fn read_frame(&mut self, timeout: Duration) -> Result<Vec<u8>, MllpError> {
        tokio::time::timeout(timeout, self.next_frame())
            .await
            .map_err(|_| MllpError::Timeout(timeout))?
    }

    /// Whether the peer has closed the connection: waits up to `timeout` for EOF, discarding
    /// any bytes that arrive meanwhile. `false` if the connection is still open at the end.
    pub async fn closed_by_peer(&mut self, timeout: Duration) -> bool {
        let mut chunk = [0_u8; 4096];
        let wait = async {
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    async fn next_frame(&mut self) -> Result<Vec<u8>, MllpError> {
        let mut chunk = [0_u8; 8192];
        loop {
            if let Some(frame) = take_frame(&mut self.buffer)? {
                return Ok(frame);
            }
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(MllpError::Closed {
                    buffered: self.buffer.len(),
                });
            }
            self.buffer
                .extend_from_slice(chunk.get(..read).unwrap_or_default());
        }
    }
}

/// `message` wrapped in MLLP framing.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(message.len() + 3);
    framed.push(START);
    framed.extend_from_slice(message);
    framed.extend_from_slice(&END);
    framed
}

/// Removes and returns the first complete frame's content from `buffer`; bytes before the start
/// block are dropped. `Ok(None)` until a frame is complete.
fn take_frame(buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, MllpError> {
    let Some(start) = buffer.iter().position(|&b| b == START) else {
        buffer.clear();
        return Ok(None);
    };
    buffer.drain(..start);
    let end = buffer.windows(2).position(|w| w == END);
    match end {
        Some(end) => {
            let content = buffer.get(1..end).unwrap_or_default().to_vec();
            buffer.drain(..end + END.len());
            Ok(Some(content))
        }
        None if buffer.len() > MAX_FRAME => Err(MllpError::FrameTooLarge),
        None => Ok(None),
    }
}

async fn handshake(
    tcp: TcpStream,
    settings: &MllpTls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MllpError> {
    let config = tls::client_config(&settings.ca, settings.identity.as_ref())?;
    let name = ServerName::try_from(settings.server_name.clone())
        .map_err(|_| MllpError::ServerName(settings.server_name.clone()))?;
    Ok(TlsConnector::from(config).connect(name, tcp).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_wrapped_in_start_and_end_blocks() {
        assert_eq!(frame(b"MSH|x"), b"\x0bMSH|x\x1c\x0d");
    }

    #[test]
    fn frames_are_taken_one_at_a_time_and_junk_before_a_start_is_skipped() {
        let mut buffer = b"junk\x0bone\x1c\x0d\x0btwo\x1c".to_vec();
        assert_eq!(take_frame(&mut buffer).unwrap(), Some(b"one".to_vec()));
        assert_eq!(take_frame(&mut buffer).unwrap(), None);
        buffer.push(0x0d);
        assert_eq!(take_frame(&mut buffer).unwrap(), Some(b"two".to_vec()));
        assert!(buffer.is_empty());
    }

    #[test]
    fn an_oversize_frame_is_an_error() {
        let mut buffer = vec![START];
        buffer.resize(MAX_FRAME + 2, b'x');
        assert!(matches!(
            take_frame(&mut buffer),
            Err(MllpError::FrameTooLarge)
        ));
    }

    #[tokio::test]
    async fn send_returns_the_ack_frame_from_the_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = vec![0_u8; 10];
            socket.read_exact(&mut got).await.unwrap();
            socket.write_all(b"noise\x0bMSH|ack\x1c\x0d").await.unwrap();
            got
        });
        let mut connection = Connection::connect(addr, None, Duration::from_secs(5))
            .await
            .unwrap();
        let ack = connection
            .send(b"MSH|msg", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ack, b"MSH|ack");
        assert_eq!(peer.await.unwrap(), b"\x0bMSH|msg\x1c\x0d");
    }
}
