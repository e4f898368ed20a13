//! A TCP proxy between the agent and the broker, for faults the broker itself cannot make: cut
//! every connection at once, let the agent's bytes through while swallowing everything the
//! broker sends back (so a publish reaches the broker but its PUBACK never reaches the agent),
//! or turn the open connections into a half-open link that silently drops everything.
//!
//! The proxy works below TLS: it forwards and drops opaque bytes and never looks into them.
//!
//! Invariants:
//! - bytes are forwarded unchanged and in order in both directions, except broker-to-client
//!   bytes read while [`Proxy::swallow_downstream`] is on, and all bytes of connections
//!   silenced by [`Proxy::silence`], which are counted and dropped;
//! - [`Proxy::cut`] closes every connection open at that moment (both sides); connections
//!   accepted afterwards are forwarded normally;
//! - the accept loop and all connections end when the [`Proxy`] is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy's control and connection tasks share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    swallow: AtomicBool,
    swallowed: AtomicU64,
    /// Bumped by [`Proxy::cut`]; a connection ends when it changes.
    cuts: watch::Sender<u64>,
    /// Connections accepted so far (a connection's number is the count after its accept).
    accepted: watch::Sender<u64>,
    /// Connections numbered up to this are silenced (both directions dropped).
    silenced_upto: AtomicU64,
}

/// A running proxy on `127.0.0.1` and a free port.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            swallow: AtomicBool::new(false),
            swallowed: AtomicU64::new(0),
            cuts: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
            silenced_upto: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Proxy {
            addr,
            shared,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL for the agent's configuration: `mqtts://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.addr.port())
    }

    /// While `on`, bytes from the broker to the client are read and dropped instead of
    /// forwarded (the client sees silence; its own bytes still reach the broker).
    pub fn swallow_downstream(&self, on: bool) {
        self.shared.swallow.store(on, Ordering::SeqCst);
    }

    /// Bytes dropped so far (swallowed or silenced).
    pub fn swallowed_bytes(&self) -> u64 {
        self.shared.swallowed.load(Ordering::SeqCst)
    }

    /// Silences every connection open now: from here on their bytes are dropped in both
    /// directions while the sockets stay open (a half-open link: no FIN, no RST). Connections
    /// accepted later are forwarded normally.
    pub fn silence(&self) {
        let upto = *self.shared.accepted.borrow();
        self.shared.silenced_upto.store(upto, Ordering::SeqCst);
    }

    /// Closes every connection open now, on both sides.
    pub fn cut(&self) {
        self.shared.cuts.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        *self.shared.accepted.borrow()
    }

    /// Waits until at least `count` connections have been accepted; `false` on timeout.
    pub async fn wait_accepted(&self, count: u64, timeout: Duration) -> bool {
        let mut accepted = self.shared.accepted.subscribe();
        tokio::time::timeout(timeout, accepted.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts clients until aborted; each connection lives in the loop's [`JoinSet`], so aborting
/// the loop closes them all.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.accepted.send_modify(|n| *n += 1);
                let number = *shared.accepted.borrow();
                connections.spawn(connection(client, number, shared.clone()));
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Forwards one connection until either side closes or the proxy cuts it.
async fn connection(client: TcpStream, number: u64, shared: Arc<Shared>) {
    let mut cuts = shared.cuts.subscribe();
    cuts.mark_unchanged();
    let Ok(upstream) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up = Direction {
        shared: &shared,
        number,
        downstream: false,
    };
    let down = Direction {
        downstream: true,
        ..up
    };
    tokio::select! {
        _ = pump(client_read, upstream_write, up) => {}
        _ = pump(upstream_read, client_write, down) => {}
        _ = cuts.changed() => {}
    }
}

/// One direction of one connection, and whether its bytes are dropped right now.
#[derive(Clone, Copy)]
struct Direction<'a> {
    shared: &'a Shared,
    number: u64,
    downstream: bool,
}

impl Direction<'_> {
    fn drops(&self) -> bool {
        let silenced = self.number <= self.shared.silenced_upto.load(Ordering::SeqCst);
        silenced || (self.downstream && self.shared.swallow.load(Ordering::SeqCst))
    }
}

/// Copies bytes from `from` to `to` until EOF or an error; bytes read while `direction` drops
/// are counted and dropped.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, direction: Direction<'_>) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if direction.drops() {
            direction
                .shared
                .swallowed
                .fetch_add(n as u64, Ordering::SeqCst);
            continue;
        }
        let Some(bytes) = buf.get(..n) else { return };
        if to.write_all(bytes).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok(addr)
    }

    async fn read_some(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        let mut buf = [0_u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await??;
        Ok(buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default())
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_until_swallowed_and_a_cut_closes_the_connection()
    -> std::io::Result<()> {
        let proxy = Proxy::start(echo_server().await?).await?;
        let mut s = TcpStream::connect(proxy.addr()).await?;
        s.write_all(b"ping").await?;
        assert_eq!(read_some(&mut s).await?, b"ping");
        proxy.swallow_downstream(true);
        s.write_all(b"lost").await?;
        let silent = tokio::time::timeout(Duration::from_millis(300), s.read(&mut [0_u8; 8])).await;
        assert!(silent.is_err(), "swallowed bytes reached the client");
        assert!(proxy.wait_accepted(1, Duration::from_secs(1)).await);
        proxy.cut();
        assert_eq!(
            read_some(&mut s).await?,
            b"",
            "the cut did not close the client side"
        );
        assert_eq!(proxy.swallowed_bytes(), 4);
        proxy.swallow_downstream(false);
        let mut again = TcpStream::connect(proxy.addr()).await?;
        again.write_all(b"back").await?;
        assert_eq!(read_some(&mut again).await?, b"back");
        assert_eq!(proxy.accepted(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn silenced_connections_drop_everything_while_new_ones_pass() -> std::io::Result<()> {
        let proxy = Proxy::start(echo_server().await?).await?;
        let mut old = TcpStream::connect(proxy.addr()).await?;
        assert!(proxy.wait_accepted(1, Duration::from_secs(1)).await);
        proxy.silence();
        old.write_all(b"void").await?;
        let silent =
            tokio::time::timeout(Duration::from_millis(300), old.read(&mut [0_u8; 8])).await;
        assert!(silent.is_err(), "a silenced connection answered or closed");
        let mut new = TcpStream::connect(proxy.addr()).await?;
        new.write_all(b"live").await?;
        assert_eq!(read_some(&mut new).await?, b"live");
        assert_eq!(proxy.swallowed_bytes(), 4);
        Ok(())
    }
}
