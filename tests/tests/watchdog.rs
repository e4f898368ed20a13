//! systemd readiness and watchdog, against the real binary and a stand-in for systemd's notify
//! socket (a datagram socket the test binds and passes as `NOTIFY_SOCKET`, with `WATCHDOG_USEC`):
//! `READY=1` only once the MLLP port accepts connections, `WATCHDOG=1` while healthy, no
//! `WATCHDOG=1` while the store writer is stuck (and a `STATUS=` saying so), pings again once it
//! moves, `STOPPING=1` and exit 0 on SIGTERM.
//!
//! The writer is stuck for real: its thread (`store-writer`) is stopped with ptrace
//! (`PTRACE_SEIZE` + `PTRACE_INTERRUPT` stop that one thread; the rest of the process runs on),
//! exactly what a write blocked in the kernel looks like from inside the process. Where ptrace is
//! not permitted the test says so loudly and passes without that part.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use hl7edge_e2e::agent::{self, AgentConfig, write_config};
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::pki::Pki;
use hl7edge_e2e::process::{self, Process};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::net::UnixDatagram;

/// systemd's `WatchdogSec` as the agent sees it: 2 s, so it pings every second.
const WATCHDOG_USEC: &str = "2000000";

/// How long a frozen writer may take to stop the pings: the agent's allowance for a silent
/// component (10 s) plus its heartbeat and tick periods and slack for a loaded machine.
const STUCK_WITHIN: Duration = Duration::from_secs(25);

/// How long the pings must stay away once the agent has reported the writer stuck.
const QUIET_FOR: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_pings_only_while_the_store_writer_makes_progress() -> Result<()> {
    let pki = Pki::generate()?;
    let broker = Broker::start(&pki).await?;
    let dir = tempfile::Builder::new()
        .prefix("hl7edge-notify-")
        .tempdir()?;
    let notify = Notify::bind(&dir.path().join("notify.sock"))?;
    let ports: BTreeMap<String, u16> = [("lab".to_owned(), process::free_port()?)].into();
    let config_path = dir.path().join("hl7edge.toml");
    let config = AgentConfig::new(&pki, &broker.url());
    write_config(&config_path, &config, &dir.path().join("queue.db"), &ports)?;
    let binary = agent::binary()?;
    let mut env_args = vec![
        format!("NOTIFY_SOCKET={}", notify.path).into(),
        format!("WATCHDOG_USEC={WATCHDOG_USEC}").into(),
    ];
    env_args.extend([binary.into_os_string(), "run".into(), "--config".into()]);
    env_args.push(config_path.into_os_string());
    // env(1) execs the agent, so the child's pid is the agent's.
    let log = dir.path().join("hl7edge.log");
    let mut agent = Process::spawn("hl7edge", Path::new("/usr/bin/env"), env_args, &log)?;
    let result = exercise(&mut agent, &notify, ports["lab"]).await;
    if result.is_err() {
        process::print_log("hl7edge", &log, 80);
    }
    result
}

async fn exercise(agent: &mut Process, notify: &Notify, port: u16) -> Result<()> {
    let ready = notify
        .wait_for(Duration::from_secs(30), |m| has(m, "READY=1"))
        .await?;
    TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .context("READY=1 was sent before the MLLP listener accepted connections")?;
    ensure!(
        !ready.iter().any(|m| has(m, "WATCHDOG=1")),
        "a ping before READY=1: {ready:?}"
    );
    notify.wait_pings(2, Duration::from_secs(10)).await?;

    let writer = thread_named(agent.pid(), "store-writer")?;
    let Some(frozen) = Frozen::stop(writer)? else {
        return stop_cleanly(agent, notify).await;
    };
    let before = notify
        .wait_for(STUCK_WITHIN, |m| {
            m.iter().any(|l| l.starts_with("STATUS=store writer"))
        })
        .await
        .context("the pings went on while the store writer was stopped")?;
    eprintln!("writer reported stuck after {} notifications", before.len());
    let during = notify.collect(QUIET_FOR).await?;
    ensure!(
        !during.iter().any(|m| has(m, "WATCHDOG=1")),
        "WATCHDOG=1 while the store writer is stopped: {during:?}"
    );
    drop(frozen);
    notify
        .wait_pings(1, Duration::from_secs(10))
        .await
        .context("no ping after the store writer moved again")?;
    stop_cleanly(agent, notify).await
}

/// SIGTERM: `STOPPING=1` and exit 0.
async fn stop_cleanly(agent: &mut Process, notify: &Notify) -> Result<()> {
    agent.signal(Signal::SIGTERM)?;
    let status = agent.wait_exit(Duration::from_secs(30)).await?;
    ensure!(status.success(), "exit status {status:?}");
    notify
        .wait_for(Duration::from_secs(1), |m| has(m, "STOPPING=1"))
        .await?;
    Ok(())
}

/// Whether a notification holds the line `line` (e.g. `WATCHDOG=1`).
fn has(message: &[String], line: &str) -> bool {
    message.iter().any(|l| l == line)
}

/// The stand-in for systemd's notification socket.
struct Notify {
    socket: UnixDatagram,
    path: String,
}

impl Notify {
    fn bind(path: &Path) -> Result<Notify> {
        let socket = UnixDatagram::bind(path)?;
        let path = path.to_str().context("non-UTF-8 temp path")?.to_owned();
        Ok(Notify { socket, path })
    }

    /// The next notification (its `KEY=value` lines) within `timeout`.
    async fn next(&self, timeout: Duration) -> Result<Option<Vec<String>>> {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(timeout, self.socket.recv(&mut buf)).await {
            Err(_elapsed) => Ok(None),
            Ok(received) => {
                let n = received?;
                let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                Ok(Some(text.lines().map(str::to_owned).collect()))
            }
        }
    }

    /// Every notification until one satisfies `done` (included), failing after `timeout`.
    async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<Vec<String>>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(message) = self.next(left).await? else {
                bail!("nothing matched within {timeout:?}; received {seen:?}");
            };
            let matched = done(&message);
            seen.push(message);
            if matched {
                return Ok(seen);
            }
        }
    }

    /// Waits for `count` `WATCHDOG=1` pings.
    async fn wait_pings(&self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for _ in 0..count {
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_for(left, |m| has(m, "WATCHDOG=1")).await?;
        }
        Ok(())
    }

    /// Every notification received during `period`.
    async fn collect(&self, period: Duration) -> Result<Vec<Vec<String>>> {
        let deadline = Instant::now() + period;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                Some(message) => seen.push(message),
                None => return Ok(seen),
            }
        }
    }
}

/// The id of the thread of process `pid` named `name`.
fn thread_named(pid: u32, name: &str) -> Result<i32> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let tid = entry.file_name();
            return tid
                .to_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| anyhow!("odd task entry {tid:?}"));
        }
    }
    bail!("process {pid} has no thread named {name}")
}

/// One thread of another process, stopped under ptrace until this value is dropped.
///
/// A ptrace tracer is a thread: seizing, stopping and detaching all happen on one thread of our
/// own, which waits for the drop (or for the test to end, when the kernel detaches it).
struct Frozen {
    release: Option<mpsc::Sender<()>>,
    tracer: Option<std::thread::JoinHandle<()>>,
}

impl Frozen {
    /// Stops thread `tid`. `None` (after a loud message) where ptrace is not permitted.
    fn stop(tid: i32) -> Result<Option<Frozen>> {
        let (stopped_tx, stopped_rx) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let tracer = std::thread::spawn(move || {
            let pid = Pid::from_raw(tid);
            let stopped = ptrace::seize(pid, ptrace::Options::empty())
                .and_then(|()| ptrace::interrupt(pid))
                .and_then(|()| waitpid(pid, Some(WaitPidFlag::__WALL)).map(drop));
            let ok = stopped.is_ok();
            let _ = stopped_tx.send(stopped);
            if ok {
                // Until released (or the test is gone: the sender is dropped).
                let _ = released.recv();
                let _ = ptrace::detach(pid, None);
            }
        });
        match stopped_rx.recv()? {
            Ok(()) => Ok(Some(Frozen {
                release: Some(release),
                tracer: Some(tracer),
            })),
            Err(nix::Error::EPERM) => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "SKIPPED (partly) watchdog: ptrace is not permitted here (Yama ptrace_scope or \
                     a seccomp profile), so the stuck-writer part of the test did NOT run"
                );
                Ok(None)
            }
            Err(err) => Err(anyhow!("stopping thread {tid} with ptrace: {err}")),
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.join();
        }
    }
}
