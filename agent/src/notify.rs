//! systemd readiness and watchdog notifications (the `sd_notify` protocol), without libsystemd.
//!
//! Under a `Type=notify` unit, systemd passes `NOTIFY_SOCKET` (a filesystem path, or an abstract
//! socket name starting with `@`) and, with `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`).
//! A [`Notifier`] reads them once and sends `READY=1`, `STATUS=…`, `WATCHDOG=1` and `STOPPING=1` as
//! newline-separated assignments in one datagram per call.
//!
//! Invariants:
//! - Not under systemd (no `NOTIFY_SOCKET`) means every call is a successful no-op, so the same
//!   binary runs from a shell, in tests and in containers.
//! - Sends never block: the socket is non-blocking; a full systemd queue is an error the caller can
//!   log and retry on its next tick, never a stalled task.
//! - `WATCHDOG=1` is sent only through [`Notifier::ping_if_healthy`] by the daemon, which asks the
//!   [`WatchdogGate`] first: a wedged store writer or forwarder stops the pings, and systemd kills
//!   and restarts the process (with `panic = "abort"`, there are no half-dead tasks either).
//! - `STATUS=` text is shown by `systemctl status`: it must never carry PHI.
//!
//! The environment is read only by [`Notifier::from_env`]; [`Notifier::from_values`] takes the same
//! values as arguments, which is what the tests use (changing the environment of a running,
//! multi-threaded process is unsound).

mod gate;

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

pub use gate::{Heartbeat, Verdict, WatchdogGate};

/// Why a notification could not be set up or sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is set but is neither an absolute path nor an abstract name (`@…`).
    #[error("NOTIFY_SOCKET={value:?} is not an absolute socket path or an @abstract name")]
    SocketAddress {
        /// The value found in the environment.
        value: String,
    },
    /// `NOTIFY_SOCKET` names an address the operating system rejects (too long, for example).
    #[error("NOTIFY_SOCKET={value:?} cannot be used: {source}")]
    SocketAddressRejected {
        /// The value found in the environment.
        value: String,
        /// The error from building the address.
        source: io::Error,
    },
    /// The sending socket could not be created.
    #[error("cannot create a socket for service manager notifications: {source}")]
    Socket {
        /// The socket error.
        source: io::Error,
    },
    /// `WATCHDOG_USEC` is set but is not a positive number of microseconds.
    #[error("WATCHDOG_USEC={value:?} is not a positive number of microseconds")]
    WatchdogUsec {
        /// The value found in the environment.
        value: String,
    },
    /// The datagram could not be sent to the service manager.
    #[error("sending {message:?} to the service manager failed: {source}")]
    Send {
        /// The assignments that were being sent (never PHI, see the module docs).
        message: String,
        /// The socket error.
        source: io::Error,
    },
}

/// One state change reported to the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State<'a> {
    /// `READY=1`: start-up is finished (listeners bound, store open).
    Ready,
    /// `STATUS=…`: a one-line, PHI-free status for `systemctl status`.
    Status(&'a str),
    /// `WATCHDOG=1`: the process is alive and making progress.
    Watchdog,
    /// `STOPPING=1`: a graceful shutdown has begun.
    Stopping,
}

impl State<'_> {
    /// Appends this state as one `KEY=value` line. Newlines in a status would start a new
    /// assignment, so they are replaced with spaces.
    fn write_to(&self, out: &mut String) {
        match self {
            State::Ready => out.push_str("READY=1"),
            State::Watchdog => out.push_str("WATCHDOG=1"),
            State::Stopping => out.push_str("STOPPING=1"),
            State::Status(text) => {
                out.push_str("STATUS=");
                out.extend(text.chars().map(|c| if c == '\n' { ' ' } else { c }));
            }
        }
    }
}

/// A client of the service manager's notification socket; a no-op when there is none.
#[derive(Debug)]
pub struct Notifier {
    /// The socket and where to send to; `None` when not started by systemd with `Type=notify`.
    target: Option<(UnixDatagram, SocketAddr)>,
    /// The watchdog timeout systemd applies to this process, if any.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that sends nothing (not under systemd).
    pub fn disabled() -> Self {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Result<Self, NotifyError> {
        Self::from_values(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            std::env::var_os("WATCHDOG_USEC").as_deref(),
            std::env::var_os("WATCHDOG_PID").as_deref(),
        )
    }

    /// Builds a notifier from the values of `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    ///
    /// The watchdog applies only when `WATCHDOG_PID` is unset or names this process, as in
    /// `sd_watchdog_enabled(3)`. An empty `NOTIFY_SOCKET` counts as unset.
    pub fn from_values(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
    ) -> Result<Self, NotifyError> {
        let target = match notify_socket.filter(|v| !v.is_empty()) {
            None => None,
            Some(value) => Some(connect_target(value)?),
        };
        let for_us = watchdog_pid
            .is_none_or(|pid| pid.as_bytes() == std::process::id().to_string().as_bytes());
        let watchdog = match watchdog_usec {
            Some(usec) if for_us => Some(parse_usec(usec)?),
            _ => None,
        };
        Ok(Notifier { target, watchdog })
    }

    /// Whether a service manager is listening (`NOTIFY_SOCKET` was set).
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog timeout (`WatchdogSec=`) systemd enforces, if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// How often to call [`Notifier::ping_if_healthy`]: half the watchdog timeout, as
    /// `sd_watchdog_enabled(3)` recommends; `None` when no watchdog is configured.
    pub fn watchdog_ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|t| t / 2)
    }

    /// Sends several state changes in one datagram.
    pub fn send(&self, states: &[State<'_>]) -> Result<(), NotifyError> {
        let Some((socket, addr)) = &self.target else {
            return Ok(());
        };
        let mut message = String::new();
        for (i, state) in states.iter().enumerate() {
            if i > 0 {
                message.push('\n');
            }
            state.write_to(&mut message);
        }
        match socket.send_to_addr(message.as_bytes(), addr) {
            Ok(n) if n == message.len() => Ok(()),
            Ok(n) => Err(NotifyError::Send {
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("sent {n} of {} bytes", message.len()),
                ),
                message,
            }),
            Err(source) => Err(NotifyError::Send { message, source }),
        }
    }

    /// Reports that start-up is finished, with a status line.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&[State::Ready, State::Status(status)])
    }

    /// Updates the status line shown by `systemctl status` (never PHI).
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&[State::Status(status)])
    }

    /// Reports that a graceful shutdown has begun.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send(&[State::Stopping, State::Status("stopping")])
    }

    /// Sends `WATCHDOG=1` if every component watched by `gate` has made progress recently;
    /// otherwise sends no ping but a status naming the stuck component, so that systemd's watchdog
    /// fires and `systemctl status` says why. Returns the gate's verdict.
    pub fn ping_if_healthy(
        &self,
        gate: &WatchdogGate,
        now: Instant,
    ) -> Result<Verdict, NotifyError> {
        let verdict = gate.verdict(now);
        match &verdict {
            Verdict::Healthy => self.send(&[State::Watchdog])?,
            Verdict::Stuck {
                component,
                stale_for,
                ..
            } => {
                let text = format!(
                    "{component} has made no progress for {}s",
                    stale_for.as_secs()
                );
                self.send(&[State::Status(&text)])?;
            }
        }
        Ok(verdict)
    }
}

/// Parses a `NOTIFY_SOCKET` value and creates the unbound, non-blocking sending socket.
fn connect_target(value: &OsStr) -> Result<(UnixDatagram, SocketAddr), NotifyError> {
    let bytes = value.as_bytes();
    let text = || value.to_string_lossy().into_owned();
    let addr = match bytes.split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name),
        Some((b'/', _)) => SocketAddr::from_pathname(value),
        _ => return Err(NotifyError::SocketAddress { value: text() }),
    }
    .map_err(|source| NotifyError::SocketAddressRejected {
        value: text(),
        source,
    })?;
    let socket = UnixDatagram::unbound()
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|source| NotifyError::Send {
            message: String::new(),
            source,
        })?;
    Ok((socket, addr))
}

/// Parses `WATCHDOG_USEC`: a positive integer number of microseconds.
fn parse_usec(value: &OsStr) -> Result<Duration, NotifyError> {
    value
        .to_str()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&usec| usec > 0)
        .map(Duration::from_micros)
        .ok_or_else(|| NotifyError::WatchdogUsec {
            value: value.to_string_lossy().into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// A service-manager stand-in: a datagram socket bound in a fresh temporary directory.
    struct Manager {
        _dir: tempfile::TempDir,
        path: PathBuf,
        socket: UnixDatagram,
    }

    impl Manager {
        fn bind() -> Manager {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notify.sock");
            let socket = UnixDatagram::bind(&path).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            Manager {
                _dir: dir,
                path,
                socket,
            }
        }

        fn notifier(&self, watchdog_usec: Option<&str>) -> Notifier {
            Notifier::from_values(
                Some(self.path.as_os_str()),
                watchdog_usec.map(OsStr::new),
                None,
            )
            .unwrap()
        }

        /// The next datagram, or `None` when nothing arrives within the read timeout.
        fn receive(&self) -> Option<String> {
            let mut buf = [0u8; 4096];
            let n = self.socket.recv(&mut buf).ok()?;
            Some(String::from_utf8_lossy(buf.get(..n)?).into_owned())
        }
    }

    #[test]
    fn ready_reaches_the_notify_socket_with_its_status() {
        let manager = Manager::bind();
        manager.notifier(None).ready("listening on 1 port").unwrap();
        assert_eq!(
            manager.receive().as_deref(),
            Some("READY=1\nSTATUS=listening on 1 port")
        );
    }

    #[test]
    fn abstract_notify_socket_receives_stopping() {
        let name = format!("hl7edge-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        let value = format!("@{name}");
        let notifier = Notifier::from_values(Some(OsStr::new(&value)), None, None).unwrap();
        notifier.stopping().unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(buf.get(..n), Some(&b"STOPPING=1\nSTATUS=stopping"[..]));
    }

    #[test]
    fn watchdog_ping_is_sent_while_every_component_progresses() {
        let manager = Manager::bind();
        let notifier = manager.notifier(Some("30000000"));
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 20 * SEC, t0);
        let forwarder = gate.watch("forwarder", 20 * SEC, t0);
        for tick in 1..=3 {
            let now = t0 + tick * 15 * SEC;
            writer.beat(now);
            forwarder.beat(now);
            assert!(notifier.ping_if_healthy(&gate, now).unwrap().is_healthy());
            assert_eq!(manager.receive().as_deref(), Some("WATCHDOG=1"));
        }
    }

    #[test]
    fn no_watchdog_ping_once_a_component_is_stuck() {
        let manager = Manager::bind();
        let notifier = manager.notifier(Some("30000000"));
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(t0);
        let writer = gate.watch("store writer", 20 * SEC, t0);
        let forwarder = gate.watch("forwarder", 20 * SEC, t0);
        writer.beat(t0 + 2 * SEC); // then blocked in a commit
        forwarder.beat(t0 + 30 * SEC);
        let verdict = notifier.ping_if_healthy(&gate, t0 + 30 * SEC).unwrap();
        assert!(matches!(
            verdict,
            Verdict::Stuck {
                component: "store writer",
                ..
            }
        ));
        let sent = manager.receive().unwrap_or_default();
        assert_eq!(sent, "STATUS=store writer has made no progress for 28s");
        assert_eq!(
            manager.receive(),
            None,
            "nothing else, in particular no WATCHDOG=1"
        );
    }

    #[test]
    fn without_notify_socket_every_call_succeeds_and_sends_nothing() {
        let notifier = Notifier::from_values(None, Some(OsStr::new("30000000")), None).unwrap();
        assert!(!notifier.is_enabled());
        assert!(notifier.ready("up").is_ok());
        assert!(notifier.stopping().is_ok());
        let gate = WatchdogGate::new(Instant::now());
        assert!(notifier.ping_if_healthy(&gate, Instant::now()).is_ok());
        assert!(!Notifier::disabled().is_enabled());
    }

    #[test]
    fn ping_interval_is_half_the_watchdog_timeout() {
        let notifier = Notifier::from_values(None, Some(OsStr::new("30000000")), None).unwrap();
        assert_eq!(notifier.watchdog_timeout(), Some(30 * SEC));
        assert_eq!(notifier.watchdog_ping_interval(), Some(15 * SEC));
    }

    #[test]
    fn watchdog_meant_for_another_process_is_ignored() {
        let other = (std::process::id() + 1).to_string();
        let notifier =
            Notifier::from_values(None, Some(OsStr::new("30000000")), Some(OsStr::new(&other)))
                .unwrap();
        assert_eq!(notifier.watchdog_ping_interval(), None);
        let ours = std::process::id().to_string();
        let notifier =
            Notifier::from_values(None, Some(OsStr::new("30000000")), Some(OsStr::new(&ours)))
                .unwrap();
        assert_eq!(notifier.watchdog_ping_interval(), Some(15 * SEC));
    }

    #[test]
    fn relative_socket_path_and_bad_watchdog_usec_are_rejected() {
        let relative = Notifier::from_values(Some(OsStr::new("run/notify")), None, None);
        assert!(
            matches!(relative, Err(NotifyError::SocketAddress { value }) if value == "run/notify")
        );
        for bad in ["0", "-5", "30s", ""] {
            let result = Notifier::from_values(None, Some(OsStr::new(bad)), None);
            assert!(
                matches!(result, Err(NotifyError::WatchdogUsec { .. })),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn newline_in_a_status_cannot_inject_an_assignment() {
        let manager = Manager::bind();
        manager.notifier(None).status("draining\nREADY=1").unwrap();
        assert_eq!(
            manager.receive().as_deref(),
            Some("STATUS=draining READY=1")
        );
    }

    #[test]
    fn send_to_a_socket_nobody_listens_on_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let notifier = Notifier::from_values(Some(path.as_os_str()), None, None).unwrap();
        assert!(matches!(
            notifier.ready("up"),
            Err(NotifyError::Send { .. })
        ));
    }
}
