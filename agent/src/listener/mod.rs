//! MLLP listeners: one accept loop per configured interface, one task per
//! connection.
//!
//! Checked before a single byte is read: the peer address against the
//! listener's allowlist, and the connection cap. MLLP over TLS, when
//! configured, is negotiated next (with a client-certificate check if the
//! listener has a client CA). Refusals are logged and counted.

mod connection;
mod pool;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::Listener as ListenerConfig;
use crate::ingest::{AckIds, Interface};
use crate::store::StoreHandle;

pub use connection::ConnectionSettings;
pub use pool::{PrepareError, PreparePool};

/// Counters of one listener (since start), for telemetry and tests.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused by the allowlist.
    pub refused_address: AtomicU64,
    /// Connections refused by the connection cap.
    pub refused_cap: AtomicU64,
    /// TLS handshakes that failed (including missing client certificates).
    pub tls_failures: AtomicU64,
    /// Frames received.
    pub received: AtomicU64,
    /// Messages stored and positively acknowledged.
    pub acked: AtomicU64,
    /// Resends answered with the stored ACK.
    pub duplicates: AtomicU64,
    /// Messages rejected with AR (store full, shutting down).
    pub rejected: AtomicU64,
    /// Messages answered AE and kept in quarantine.
    pub quarantined: AtomicU64,
    /// Incoming acknowledgments (MSH-9.1 `ACK`): kept, never answered.
    pub acks_received: AtomicU64,
    /// Bytes skipped outside MLLP frames.
    pub garbage_bytes: AtomicU64,
    /// Frames over the size limit.
    pub oversize: AtomicU64,
    /// Last time a message arrived, Unix ms (0 = never).
    pub last_message_ms: AtomicU64,
}

/// Everything a listener's connections share.
#[derive(Debug)]
pub struct Shared {
    /// Ingest settings of this interface.
    pub iface: Interface,
    /// The store writer.
    pub store: StoreHandle,
    /// ACK control id source.
    pub ids: AckIds,
    /// Counters.
    pub metrics: ListenerMetrics,
    /// Per-connection settings.
    pub settings: ConnectionSettings,
    /// Where frames are prepared (shared by every listener of the agent).
    pub pool: PreparePool,
}

/// A bound listener, ready to serve.
pub struct BoundListener {
    tcp: TcpListener,
    config: ListenerConfig,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
}

impl BoundListener {
    /// Binds the listener's address (port 0 picks a free port).
    pub async fn bind(config: ListenerConfig, shared: Arc<Shared>) -> Result<Self, BindError> {
        let tls = match &config.tls {
            Some(t) => Some(TlsAcceptor::from(crate::tls::server_config(
                &t.cert,
                &t.key,
                t.client_ca.as_deref(),
            )?)),
            None => None,
        };
        let tcp = TcpListener::bind(config.bind)
            .await
            .map_err(|source| BindError::Bind {
                name: config.name.clone(),
                addr: config.bind,
                source,
            })?;
        Ok(BoundListener {
            tcp,
            config,
            tls,
            shared,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The shared state (metrics) of this listener.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Accepts connections until `shutdown` turns true, then waits for the
    /// open connections to answer what they hold and close.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) {
        let name = self.config.name.clone();
        let cap = Arc::new(Semaphore::new(usize::from(
            self.config.max_connections.get(),
        )));
        let mut conns = JoinSet::new();
        let mut stop = shutdown.clone();
        info!(listener = %name, addr = %self.config.bind, "listening for MLLP");
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => {
                    let (sock, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            warn!(listener = %name, cause = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if !self.config.allows(peer.ip()) {
                        self.shared.metrics.refused_address.fetch_add(1, Ordering::Relaxed);
                        warn!(listener = %name, peer = %peer, "connection refused: address not in the allow list");
                        continue;
                    }
                    let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
                        self.shared.metrics.refused_cap.fetch_add(1, Ordering::Relaxed);
                        warn!(listener = %name, peer = %peer, "connection refused: max_connections reached");
                        continue;
                    };
                    self.shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.set_nodelay(true);
                    if let Err(e) = connection::tune_socket(&sock) {
                        debug!(cause = %e, "TCP keepalive or send buffer not set");
                    }
                    let shared = Arc::clone(&self.shared);
                    let tls = self.tls.clone();
                    let shutdown = shutdown.clone();
                    conns.spawn(async move {
                        connection::serve(sock, peer, tls, shared, shutdown).await;
                        drop(permit);
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = stop.changed() => break,
            }
        }
        drop(self.tcp);
        while conns.join_next().await.is_some() {}
        info!(listener = %name, "listener stopped");
    }
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address could not be bound (in use, or not allowed).
    #[error(
        "listener {name}: cannot listen on {addr}: {source} (is another program using the port?)"
    )]
    Bind {
        /// Listener name.
        name: String,
        /// Address from the config.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS files of the listener are not usable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
