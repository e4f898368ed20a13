//! One listener's supervisor: the task that owns its listening socket and, on command, moves
//! it to new settings, closes it, or opens it again, without losing a message.
//!
//! The decision is [`plan`], a pure function of what runs and what is asked. The task carries
//! it out:
//! - **Rebind** (a new address): the new socket is bound first; if that fails the command fails
//!   and the old socket keeps accepting (nothing changed). Once it is bound, new connections go
//!   to it, the old socket is closed, and the connections it accepted are told to close: each
//!   finishes the frame it holds (stored, answered) and then closes, so no ACKed message is
//!   lost and none is cut off mid-frame.
//! - **Reconfigure** (same address, other limits or TLS files): the socket is kept, the new
//!   TLS files are loaded first (a failure changes nothing), new connections get the new
//!   settings, the old connections close as above.
//! - **Close** (switched off): the socket is closed, so connections are refused (senders queue
//!   on their side); open connections close as above.
//! - **Bind** (switched on again): as Rebind from nothing.
//!
//! Invariants: at most one listening socket per listener at any time after a command returns;
//! the reported state ([`Running`]) changes only when a command succeeded; at shutdown every
//! connection is told to close and the task ends when they have.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::{BindError, ConnectionSettings, Shared, connection};
use crate::config::Listener as ListenerConfig;

/// What a listener should run: its settings and whether it accepts connections.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The effective settings.
    pub config: ListenerConfig,
    /// Accepting connections (not switched off).
    pub enabled: bool,
}

/// What the supervisor does to go from what runs to what is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing changes.
    Nothing,
    /// Switched off, and stays so: only the settings to open with later change.
    Remember,
    /// Same address: keep the socket, new settings for new connections.
    Reconfigure,
    /// Another address: bind the new socket first, then close the old one.
    Rebind,
    /// Switched off: close the socket.
    Close,
    /// Switched on: bind.
    Bind,
}

/// The step from `running` to `asked`.
pub fn plan(running: &Target, asked: &Target) -> Step {
    match (running.enabled, asked.enabled) {
        (true, false) => Step::Close,
        (false, true) => Step::Bind,
        (false, false) if running.config == asked.config => Step::Nothing,
        (false, false) => Step::Remember,
        (true, true) if running.config == asked.config => Step::Nothing,
        (true, true) if running.config.bind == asked.config.bind => Step::Reconfigure,
        (true, true) => Step::Rebind,
    }
}

/// What a listener runs, as its supervisor last set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// Settings and switch.
    pub target: Target,
    /// The address bound, while accepting.
    pub addr: Option<SocketAddr>,
}

struct Command {
    target: Target,
    reply: oneshot::Sender<Result<Step, BindError>>,
}

/// The handle others keep: sends commands, reads what runs.
#[derive(Debug, Clone)]
pub struct ListenerHandle {
    commands: mpsc::Sender<Command>,
    running: watch::Receiver<Running>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("target", &self.target)
            .finish()
    }
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The new socket could not be bound or its TLS files not loaded; nothing changed.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The listener has stopped (shutdown).
    #[error("the listener has stopped")]
    Stopped,
}

impl ListenerHandle {
    /// What runs now.
    pub fn running(&self) -> Running {
        self.running.borrow().clone()
    }

    /// Asks for `target`; returns the step taken once it is done, or why nothing changed.
    pub async fn set(&self, target: Target) -> Result<Step, SetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command { target, reply })
            .await
            .map_err(|_| SetError::Stopped)?;
        answer
            .await
            .map_err(|_| SetError::Stopped)?
            .map_err(SetError::from)
    }
}

/// One open socket with the settings its connections get.
struct Generation {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    config: ListenerConfig,
    cap: Arc<Semaphore>,
    close: watch::Sender<bool>,
}

fn acceptor(config: &ListenerConfig) -> Result<Option<TlsAcceptor>, BindError> {
    match &config.tls {
        Some(t) => Ok(Some(TlsAcceptor::from(crate::tls::server_config(
            &t.cert,
            &t.key,
            t.client_ca.as_deref(),
        )?))),
        None => Ok(None),
    }
}

impl Generation {
    async fn bind(config: &ListenerConfig) -> Result<Generation, BindError> {
        let tls = acceptor(config)?;
        let tcp = TcpListener::bind(config.bind)
            .await
            .map_err(|source| BindError::Bind {
                name: config.name.clone(),
                addr: config.bind,
                source,
            })?;
        Ok(Generation::new(tcp, tls, config))
    }

    fn new(tcp: TcpListener, tls: Option<TlsAcceptor>, config: &ListenerConfig) -> Generation {
        Generation {
            tcp,
            tls,
            config: config.clone(),
            cap: Arc::new(Semaphore::new(usize::from(config.max_connections.get()))),
            close: watch::channel(false).0,
        }
    }

    fn settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            name: self.config.name.clone(),
            max_frame_bytes: self.config.max_frame_bytes,
            idle_timeout: self.config.idle_timeout,
        }
    }
}

/// Starts the supervisor of a listener: binds first when `target` is enabled (an error is
/// returned and nothing runs when it cannot), then serves until `shutdown` turns true. The
/// join handle ends when every connection has closed.
pub async fn start(
    target: Target,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> Result<(ListenerHandle, JoinHandle<()>), BindError> {
    let current = if target.enabled {
        Some(Generation::bind(&target.config).await?)
    } else {
        None
    };
    let addr = current.as_ref().and_then(|g| g.tcp.local_addr().ok());
    let (report, running) = watch::channel(Running {
        target: target.clone(),
        addr,
    });
    let (commands, inbox) = mpsc::channel(4);
    let supervisor = Supervisor {
        target,
        current,
        retired: Vec::new(),
        shared,
        report,
    };
    let task = tokio::spawn(supervisor.run(inbox, shutdown));
    Ok((ListenerHandle { commands, running }, task))
}

struct Supervisor {
    target: Target,
    current: Option<Generation>,
    /// Close signals of earlier sockets whose connections may still run.
    retired: Vec<watch::Sender<bool>>,
    shared: Arc<Shared>,
    report: watch::Sender<Running>,
}

async fn accept(
    current: Option<&Generation>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match current {
        Some(g) => g.tcp.accept().await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>, mut stop: watch::Receiver<bool>) {
        let name = self.target.config.name.clone();
        let mut conns = JoinSet::new();
        match &self.current {
            Some(g) => info!(listener = %name, addr = %g.config.bind, "listening for MLLP"),
            None => info!(listener = %name, "switched off by a push: not listening"),
        }
        loop {
            tokio::select! {
                accepted = accept(self.current.as_ref()) => {
                    let Some(g) = &self.current else { continue };
                    let (sock, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            warn!(listener = %name, cause = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let metrics = &self.shared.metrics;
                    if !g.config.allows(peer.ip()) {
                        metrics.refused_address.fetch_add(1, Ordering::Relaxed);
                        warn!(listener = %name, peer = %peer, "connection refused: address not in the allow list");
                        continue;
                    }
                    let Ok(permit) = Arc::clone(&g.cap).try_acquire_owned() else {
                        metrics.refused_cap.fetch_add(1, Ordering::Relaxed);
                        warn!(listener = %name, peer = %peer, "connection refused: max_connections reached");
                        continue;
                    };
                    metrics.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.set_nodelay(true);
                    if let Err(e) = connection::tune_socket(&sock) {
                        debug!(cause = %e, "TCP keepalive or send buffer not set");
                    }
                    let shared = Arc::clone(&self.shared);
                    let (tls, settings, close) = (g.tls.clone(), g.settings(), g.close.subscribe());
                    conns.spawn(async move {
                        connection::serve(sock, peer, tls, shared, settings, close).await;
                        drop(permit);
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {
                    self.retired.retain(|close| close.receiver_count() > 0);
                }
                Some(command) = inbox.recv() => {
                    let result = self.apply(command.target).await;
                    let _ = command.reply.send(result);
                }
                _ = stop.changed() => break,
            }
        }
        if let Some(g) = self.current.take() {
            g.close.send_replace(true);
            self.retired.push(g.close);
        }
        for close in &self.retired {
            close.send_replace(true);
        }
        while conns.join_next().await.is_some() {}
        info!(listener = %name, "listener stopped");
    }

    /// Carries out the step to `asked`; on an error nothing has changed.
    async fn apply(&mut self, asked: Target) -> Result<Step, BindError> {
        let step = plan(&self.target, &asked);
        let name = &asked.config.name;
        match step {
            Step::Nothing | Step::Remember => {}
            Step::Close => {
                self.retire();
                info!(listener = %name, "switched off: not listening; open connections close after the message in hand");
            }
            Step::Bind | Step::Rebind => {
                let next = Generation::bind(&asked.config).await?;
                self.retire();
                info!(listener = %name, addr = %asked.config.bind, from = ?self.report.borrow().addr, "listening for MLLP");
                self.current = Some(next);
            }
            Step::Reconfigure => {
                let tls = acceptor(&asked.config)?;
                if let Some(old) = self.current.take() {
                    let next = Generation::new(old.tcp, tls, &asked.config);
                    old.close.send_replace(true);
                    self.retired.push(old.close);
                    self.current = Some(next);
                }
                info!(listener = %name, addr = %asked.config.bind, "new settings for new connections");
            }
        }
        self.target = asked;
        let addr = self.current.as_ref().and_then(|g| g.tcp.local_addr().ok());
        self.report.send_replace(Running {
            target: self.target.clone(),
            addr,
        });
        Ok(step)
    }

    /// Closes the current socket and tells its connections to close.
    fn retire(&mut self) {
        if let Some(old) = self.current.take() {
            drop(old.tcp);
            old.close.send_replace(true);
            self.retired.push(old.close);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn lab() -> ListenerConfig {
        let config = Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml"))
            .expect("the example parses");
        config.listeners[0].clone()
    }

    fn target(f: impl FnOnce(&mut ListenerConfig), enabled: bool) -> Target {
        let mut config = lab();
        f(&mut config);
        Target { config, enabled }
    }

    #[test]
    fn the_same_settings_and_switch_change_nothing() {
        let t = target(|_| {}, true);
        assert_eq!(plan(&t, &t.clone()), Step::Nothing);
        let off = target(|_| {}, false);
        assert_eq!(plan(&off, &off.clone()), Step::Nothing);
    }

    #[test]
    fn another_address_binds_anew_and_the_same_address_keeps_the_socket() {
        let running = target(|_| {}, true);
        let moved = target(|c| c.bind.set_port(c.bind.port() + 1), true);
        assert_eq!(plan(&running, &moved), Step::Rebind);
        let slower = target(|c| c.idle_timeout = None, true);
        assert_eq!(plan(&running, &slower), Step::Reconfigure);
    }

    /// The shared state of the example's listener `lab` over a store in `dir`, bound to a
    /// free port of 127.0.0.1.
    fn shared_lab(dir: &Path) -> (Arc<Shared>, ListenerConfig) {
        use crate::store::{Store, StoreConfig};
        let config = Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml"))
            .expect("the example parses");
        let mut lab = config.listeners[0].clone();
        lab.bind = "127.0.0.1:0".parse().expect("an address");
        lab.mapping = None;
        lab.tls = None;
        let opened = Store::open(StoreConfig::new(dir.join("queue.db"))).expect("open");
        let shared = Arc::new(Shared {
            iface: crate::daemon::interface(&config, &lab).expect("the interface"),
            store: opened.handle.clone(),
            ids: crate::ingest::AckIds::default(),
            metrics: super::super::ListenerMetrics::default(),
            settings: ConnectionSettings {
                name: lab.name.clone(),
                max_frame_bytes: lab.max_frame_bytes,
                idle_timeout: lab.idle_timeout,
            },
            pool: super::super::PreparePool::for_this_machine(),
        });
        (shared, lab)
    }

    async fn accepts(addr: SocketAddr) -> bool {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    }

    #[tokio::test]
    async fn a_move_to_a_held_port_changes_nothing_and_a_move_to_a_free_port_closes_the_old_socket()
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let (shared, lab) = shared_lab(dir.path());
        let (stop, shutdown) = watch::channel(false);
        let running = Target {
            config: lab,
            enabled: true,
        };
        let (handle, task) = start(running.clone(), shared, shutdown)
            .await
            .expect("binds");
        let first = handle.running().addr.expect("bound");
        assert!(accepts(first).await);

        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let mut asked = running.clone();
        asked.config.bind = held.local_addr().expect("its address");
        let refused = handle.set(asked).await;
        assert!(
            matches!(&refused, Err(SetError::Bind(e)) if crate::push::listener::bind_reason(e) == "port_in_use"),
            "{refused:?}"
        );
        assert_eq!(handle.running().target, running, "nothing changed");
        assert!(accepts(first).await, "the old socket keeps serving");

        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let mut moved = running.clone();
        moved.config.bind = free.local_addr().expect("its address");
        drop(free);
        assert_eq!(
            handle.set(moved.clone()).await.expect("moves"),
            Step::Rebind
        );
        assert_eq!(handle.running().addr, Some(moved.config.bind));
        assert!(accepts(moved.config.bind).await);
        assert!(!accepts(first).await, "the old socket is closed");

        let off = Target {
            enabled: false,
            ..moved.clone()
        };
        assert_eq!(handle.set(off).await.expect("closes"), Step::Close);
        assert_eq!(handle.running().addr, None);
        assert!(!accepts(moved.config.bind).await);
        assert_eq!(handle.set(moved.clone()).await.expect("opens"), Step::Bind);
        assert!(accepts(moved.config.bind).await);

        stop.send_replace(true);
        task.await.expect("the supervisor ends at shutdown");
        drop(held);
    }

    #[test]
    fn switching_off_closes_and_switching_on_binds_whatever_the_settings() {
        let on = target(|_| {}, true);
        let off = target(|_| {}, false);
        assert_eq!(plan(&on, &off), Step::Close);
        assert_eq!(plan(&off, &on), Step::Bind);
        let off_moved = target(|c| c.bind.set_port(c.bind.port() + 1), false);
        assert_eq!(plan(&on, &off_moved), Step::Close);
        assert_eq!(
            plan(&off, &off_moved),
            Step::Remember,
            "settings kept for later"
        );
    }
}
