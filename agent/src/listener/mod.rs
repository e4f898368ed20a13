//! MLLP listeners: one supervisor per configured interface (`supervisor`: it owns the
//! listening socket, moves, closes and opens it on command), one task per connection.
//!
//! Checked before a single byte is read: the peer address against the
//! listener's allowlist, and the connection cap. MLLP over TLS, when
//! configured, is negotiated next (with a client-certificate check if the
//! listener has a client CA). Refusals are logged and counted.

mod connection;
mod pool;
pub mod supervisor;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use crate::ingest::{AckIds, Interface};
use crate::store::StoreHandle;

pub use connection::ConnectionSettings;
pub use pool::{PrepareError, PreparePool};
pub use supervisor::{ListenerHandle, Running, SetError, Step, Target};

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
    /// Messages stored as new that reused a known control id with other content.
    pub control_id_reused: AtomicU64,
    /// Messages whose MSH-15/MSH-16 asked for no acknowledgement.
    pub no_ack_requested: AtomicU64,
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
    /// Per-connection settings as configured (a listener push gives new connections others).
    pub settings: ConnectionSettings,
    /// Where frames are prepared (shared by every listener of the agent).
    pub pool: PreparePool,
}

/// The OS's reason for a failed bind, with what to do about it.
fn bind_hint(e: &std::io::Error, addr: &SocketAddr) -> String {
    let port = addr.port();
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{e}: another program holds the port (find it with: ss -ltnp 'sport = :{port}'; \
             hl7edge doctor names it); stop it, or choose another port in the listener's bind"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "{e}: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{e}: this box has no such address (ip addr); use 0.0.0.0 or one of its addresses"
        ),
        _ => e.to_string(),
    }
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address could not be bound (in use, or not allowed).
    #[error("listener {name}: cannot listen on {addr}: {}", bind_hint(.source, .addr))]
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
