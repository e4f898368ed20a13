//! Child processes (the broker, the agent) whose output goes to a log file, with the signals and
//! timed waits the fault tests need.
//!
//! Invariants:
//! - a signal is only sent while the child has not been reaped, so its pid cannot belong to an
//!   unrelated process;
//! - dropping a [`Process`] kills the child (SIGKILL) and reaps it: no test leaves a broker or an
//!   agent running;
//! - stdout and stderr go to one log file, opened for appending, so a restarted process adds to
//!   the same log after a `==== started ... ====` marker.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Written to the log before each start.
const START_MARKER: &str = "==== started";

/// How often a waiting loop looks again.
const POLL: Duration = Duration::from_millis(20);

/// What can go wrong with a child process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The log file could not be opened or read.
    #[error("log file {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A signal could not be delivered.
    #[error("sending {signal} to pid {pid}: {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// The process id.
        pid: u32,
        /// The underlying error.
        source: nix::Error,
    },
    /// Waiting on the child failed.
    #[error("waiting for pid {pid}: {source}")]
    Wait {
        /// The process id.
        pid: u32,
        /// The underlying error.
        source: io::Error,
    },
    /// The child did not exit in time.
    #[error("{name} (pid {pid}) still running after {after:?}")]
    StillRunning {
        /// The process name.
        name: String,
        /// The process id.
        pid: u32,
        /// How long we waited.
        after: Duration,
    },
    /// The child exited while it was expected to start serving.
    #[error("{name} exited with {status} while starting; last lines of its log:\n{log_tail}")]
    ExitedEarly {
        /// The process name.
        name: String,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// The child did not accept connections in time.
    #[error(
        "{name} not accepting connections on {addr} after {after:?}; last lines of its log:\n{log_tail}"
    )]
    NotListening {
        /// The process name.
        name: String,
        /// The address polled.
        addr: SocketAddr,
        /// How long we waited.
        after: Duration,
        /// The end of its log.
        log_tail: String,
    },
    /// The process did not log a line it logs once it is ready.
    #[error("{name} did not log {needle:?} within {after:?}; last lines of its log:\n{log_tail}")]
    NotReady {
        /// The process name.
        name: String,
        /// The text waited for.
        needle: &'static str,
        /// How long we waited.
        after: Duration,
        /// The end of its log.
        log_tail: String,
    },
}

/// A running (or exited, not yet dropped) child process logging to a file.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub fn spawn<I, S>(
        name: &str,
        program: &Path,
        args: I,
        log: &Path,
    ) -> Result<Process, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Process::spawn_split(name, program, args, None, log)
    }

    /// Like [`Process::spawn`], with stdout appended to its own file `stdout` when given (for
    /// programs whose output a test reads), stderr to `log`.
    pub fn spawn_split<I, S>(
        name: &str,
        program: &Path,
        args: I,
        stdout: Option<&Path>,
        log: &Path,
    ) -> Result<Process, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| ProcessError::Log {
                    path: path.to_owned(),
                    source,
                })
        };
        let log_error = |source| ProcessError::Log {
            path: log.to_owned(),
            source,
        };
        let mut err = open(log)?;
        writeln!(err, "{START_MARKER} {} ====", program.display()).map_err(log_error)?;
        let out = match stdout {
            Some(path) => open(path)?,
            None => err.try_clone().map_err(log_error)?,
        };
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            exit: None,
        })
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited (reaping it), `None` while it runs.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>, ProcessError> {
        if self.exit.is_none() {
            let pid = self.pid();
            self.exit = self
                .child
                .try_wait()
                .map_err(|source| ProcessError::Wait { pid, source })?;
        }
        Ok(self.exit)
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit(), Ok(None))
    }

    /// Sends `signal` unless the child has already exited (then does nothing).
    pub fn signal(&mut self, signal: Signal) -> Result<(), ProcessError> {
        if self.try_exit()?.is_some() {
            return Ok(());
        }
        let pid = self.pid();
        let raw = i32::try_from(pid).map_err(|_| ProcessError::Signal {
            signal,
            pid,
            source: nix::Error::ESRCH,
        })?;
        signal::kill(Pid::from_raw(raw), signal).map_err(|source| ProcessError::Signal {
            signal,
            pid,
            source,
        })
    }

    /// Waits up to `timeout` for the child to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let (name, pid) = (self.name.clone(), self.pid());
                return Err(ProcessError::StillRunning {
                    name,
                    pid,
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL, then wait for the exit.
    pub async fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        self.signal(Signal::SIGKILL)?;
        self.wait_exit(Duration::from_secs(10)).await
    }

    /// Waits until `addr` accepts TCP connections (failing early if the process exits).
    pub async fn wait_listening(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), ProcessError> {
        self.wait_until(
            timeout,
            |_| TcpStream::connect_timeout(&addr, POLL).is_ok(),
            |name, log_tail| ProcessError::NotListening {
                name,
                addr,
                after: timeout,
                log_tail,
            },
        )
        .await
    }

    /// Waits until the process's log since its latest start holds `needle`. A port that accepts
    /// connections may be another process's (parallel tests pick free ports independently, and
    /// one may take a port another was given), so a process is known ready only by its own word.
    pub async fn wait_logged(
        &mut self,
        needle: &'static str,
        timeout: Duration,
    ) -> Result<(), ProcessError> {
        self.wait_until(
            timeout,
            |p| latest_start_logged(&p.log, needle),
            |name, log_tail| ProcessError::NotReady {
                name,
                needle,
                after: timeout,
                log_tail,
            },
        )
        .await
    }

    /// Polls `ready` until it holds; fails with the log's end if the process exits first, or
    /// with `late` (given the name and the log's end) once `timeout` has passed.
    async fn wait_until(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut(&Self) -> bool,
        late: impl FnOnce(String, String) -> ProcessError,
    ) -> Result<(), ProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(status) = self.try_exit()? {
                let (name, log_tail) = (self.name.clone(), log_tail(&self.log, 40));
                return Err(ProcessError::ExitedEarly {
                    name,
                    status,
                    log_tail,
                });
            }
            if Instant::now() >= deadline {
                return Err(late(self.name.clone(), log_tail(&self.log, 40)));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.signal(Signal::SIGKILL).is_ok() {
            // Reap the child so it does not linger as a zombie; SIGKILL cannot be ignored.
            let _ = self.child.wait();
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
///
/// Another process may take it before the caller binds it; callers retry on "address in use".
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (all bound at once, so
/// they differ, then released). The same race as [`free_port`] applies.
pub fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Whether the log written since the latest start (see [`Process::spawn`]) contains `needle`.
pub fn latest_start_logged(log: &Path, needle: &str) -> bool {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.rsplit(START_MARKER)
        .next()
        .unwrap_or_default()
        .contains(needle)
}

/// The last `lines` lines of a log file (or a note that it could not be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("<cannot read {}: {err}>", path.display()),
    }
}

/// Prints the end of a log to stderr with a header. The test harness captures it, so it shows
/// only for failing tests (or with `--nocapture`).
pub fn print_log(what: &str, path: &Path, lines: usize) {
    eprintln!("---- {what}: last {lines} lines of {} ----", path.display());
    eprintln!("{}", log_tail(path, lines));
    eprintln!("---- end of {what} log ----");
}

/// Reports a test that could not run, as `SKIPPED: <why>: <test>`, straight to the process's
/// stderr: the test harness captures `eprintln!` of passing tests, and a skip must never look
/// like a silent pass.
pub fn print_skipped(test: &str, why: &str) {
    let _unreported = writeln!(io::stderr().lock(), "SKIPPED: {why}: {test}");
}

/// Whether temporary directories should be kept for inspection: when the current thread is
/// panicking (a failing test) or `HL7EDGE_E2E_KEEP` is set.
pub fn keep_files() -> bool {
    std::thread::panicking() || std::env::var_os("HL7EDGE_E2E_KEEP").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sigterm_ends_a_child_and_its_output_lands_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let script = "echo ready; trap 'echo bye; exit 3' TERM; while true; do sleep 0.05; done";
        let mut child = Process::spawn("sh", Path::new("/bin/sh"), ["-c", script], &log).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.signal(Signal::SIGTERM).unwrap();
        let status = child.wait_exit(Duration::from_secs(5)).await.unwrap();
        assert_eq!(status.code(), Some(3));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("==== started /bin/sh ====\nready\n"),
            "{text}"
        );
        assert!(text.contains("bye"), "{text}");
    }

    #[tokio::test]
    async fn waiting_for_a_port_fails_early_when_the_child_exits() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("false.log");
        let mut child = Process::spawn("false", Path::new("/bin/false"), [""; 0], &log).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let err = child
            .wait_listening(addr, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::ExitedEarly { .. }), "{err}");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(5).unwrap();
        let unique: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), 5);
    }

    #[test]
    fn only_the_latest_start_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(
            &log,
            "==== started a ====\nin use\n==== started a ====\nfine\n",
        )
        .unwrap();
        assert!(!latest_start_logged(&log, "in use"));
        assert!(latest_start_logged(&log, "fine"));
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&log, 2), "c\nd");
        assert_eq!(log_tail(&log, 10), "a\nb\nc\nd");
    }
}
