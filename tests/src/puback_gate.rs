//! A TLS relay between an agent and the broker that passes every MQTT packet except the broker's
//! PUBACKs to the agent. Everything the agent publishes (status, heartbeats, records) reaches the
//! broker and its subscribers, but no record is ever acknowledged, so the agent's queue keeps
//! exactly the backlog a test gave it while the agent stays online: a deterministic "gateway with
//! a backlog" for the fleet tests.
//!
//! Invariants:
//! - the relay terminates TLS on both sides: towards the agent it presents the broker's
//!   certificate (so the agent's verification of `127.0.0.1` passes), towards the broker the
//!   agent's client certificate (so the broker sees the same user);
//! - agent → broker bytes are copied unchanged; broker → agent bytes are split into MQTT packets
//!   (fixed header and remaining length) and only PUBACKs (type 4) are left out;
//! - every connection is served until either side closes it; the relay stops when dropped.
//!
//! The relay's tasks run on the caller's tokio runtime: a test that also blocks its thread
//! (building a binary, polling a port) uses a multi-thread runtime, or the relay stalls and the
//! agent's connection times out.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::pki::Pki;
use crate::tls::{self, TlsError};

/// MQTT control packet type of PUBACK.
const PUBACK: u8 = 4;

/// What can go wrong while starting the relay.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listening socket could not be opened.
    #[error("binding the relay: {0}")]
    Bind(#[from] std::io::Error),
}

/// A running relay that withholds PUBACKs.
pub struct PubackGate {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PubackGate {
    /// Listens on a free port of 127.0.0.1 and relays each connection to `broker`.
    pub async fn start(pki: &Pki, broker: SocketAddr) -> Result<PubackGate, GateError> {
        let acceptor = TlsAcceptor::from(tls::server_config(&pki.broker, None)?);
        let connector = TlsConnector::from(tls::client_config(&pki.ca, Some(&pki.agent))?);
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((agent, _)) = listener.accept().await {
                let (acceptor, connector) = (acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    let _ = relay(agent, broker, acceptor, connector).await;
                });
            }
        });
        Ok(PubackGate { addr, task })
    }

    /// The URL an agent uses to reach the broker through the relay.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for PubackGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    agent: TcpStream,
    broker: SocketAddr,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
) -> std::io::Result<()> {
    let agent = acceptor.accept(agent).await?;
    let name = ServerName::IpAddress(broker.ip().into());
    let upstream = connector
        .connect(name, TcpStream::connect(broker).await?)
        .await?;
    let (mut agent_rx, agent_tx) = tokio::io::split(agent);
    let (upstream_rx, mut upstream_tx) = tokio::io::split(upstream);
    let up = async {
        let _ = tokio::io::copy(&mut agent_rx, &mut upstream_tx).await;
        let _ = upstream_tx.shutdown().await;
    };
    let down = pass_all_but_pubacks(upstream_rx, agent_tx);
    tokio::select! {
        () = up => Ok(()),
        result = down => result,
    }
}

/// Copies MQTT packets from `from` to `to`, leaving out PUBACKs, until `from` ends.
async fn pass_all_but_pubacks(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    loop {
        let first = from.read_u8().await?;
        let mut header = vec![first];
        let mut length: usize = 0;
        for shift in [0u32, 7, 14, 21] {
            let byte = from.read_u8().await?;
            header.push(byte);
            length |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; length];
        from.read_exact(&mut body).await?;
        if first >> 4 != PUBACK {
            to.write_all(&header).await?;
            to.write_all(&body).await?;
            to.flush().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pubacks_are_left_out_and_other_packets_pass_whole() {
        let connack = [0x20, 0x02, 0x00, 0x00];
        let puback = [0x40, 0x02, 0x00, 0x07];
        let pingresp = [0xd0, 0x00];
        let mut publish = vec![0x30, 0x80, 0x01]; // remaining length 128 (two bytes)
        publish.extend(std::iter::repeat_n(0xab, 128));
        let input: Vec<u8> = [&connack[..], &puback, &publish, &puback, &pingresp].concat();
        let mut out = Vec::new();
        let result = pass_all_but_pubacks(&input[..], &mut out).await;
        assert!(result.is_err(), "ends with the end of the input");
        let expected: Vec<u8> = [&connack[..], &publish, &pingresp].concat();
        assert_eq!(out, expected);
    }
}
