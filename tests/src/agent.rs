//! The hl7edge agent under test, run as a child process (`hl7edge run --config FILE`) with its
//! own directory (configuration, database, log) and free ports for its MLLP listeners.
//!
//! Finding the binary: built on first use, see [`crate::build`]. `HL7EDGE_BIN=/path/to/hl7edge`
//! skips the build (for a release or cross-compiled binary).
//! `HL7EDGE_RUNNER=qemu-aarch64` starts it through that program (`$HL7EDGE_RUNNER $HL7EDGE_BIN run
//! --config FILE`, for an aarch64 build on an x86 machine without binfmt_misc); the runner is the
//! same process as the agent (qemu-user), so signals reach the agent. With a runner, the agent
//! gets [`EMULATED_START_TIMEOUT`] to open its ports.
//!
//! Invariants:
//! - the agent process never outlives the [`Agent`] value (killed on drop);
//! - a restart reuses the configuration, ports and database, like systemd restarting the service;
//! - stdout and stderr go to one log file, whose end is printed when the value is dropped (test
//!   output capture shows it only for failing tests); the directory is kept when a test panics
//!   or `HL7EDGE_E2E_KEEP` is set.

mod config;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::process::{self, Process, ProcessError};

pub use config::{AgentConfig, ListenerSpec, write_config};

/// How long the agent may take to open its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the agent may take to open its listeners when started through a runner (emulation
/// is 5 to 20 times slower, and the build machines are shared).
pub const EMULATED_START_TIMEOUT: Duration = Duration::from_secs(120);

/// How many sets of fresh ports to try when one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;

/// Lines of the agent log printed when an [`Agent`] is dropped.
const LOG_LINES: usize = 200;

/// What can go wrong with the agent process.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The binary could not be built or found.
    #[error("hl7edge binary: {0}")]
    Binary(String),
    /// The directory or configuration could not be written.
    #[error("preparing the agent directory: {0}")]
    Setup(#[from] std::io::Error),
    /// Starting, signalling or waiting for the process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The agent is not running.
    #[error("the agent is not running")]
    NotRunning,
    /// `hl7edge status --json` printed no JSON.
    #[error("hl7edge status printed no JSON ({0}): {1}")]
    Status(serde_json::Error, String),
}

/// A running (or deliberately stopped) agent.
pub struct Agent {
    runner: Option<PathBuf>,
    binary: PathBuf,
    dir: TempDir,
    ports: BTreeMap<String, u16>,
    process: Option<Process>,
}

impl Agent {
    /// Writes the configuration, starts the agent (through `HL7EDGE_RUNNER` when that is set)
    /// and waits until every listener accepts connections.
    pub async fn start(config: &AgentConfig) -> Result<Agent, AgentError> {
        Agent::launch_new(runner(), &binary()?, config).await
    }

    /// Like [`Agent::start`] with another build of the agent (a release or cross-compiled
    /// binary) or, in the harness's own tests, a stand-in taking the same arguments. Runs the
    /// binary directly, whatever `HL7EDGE_RUNNER` says.
    pub async fn start_binary(binary: &Path, config: &AgentConfig) -> Result<Agent, AgentError> {
        Agent::launch_new(None, binary, config).await
    }

    async fn launch_new(
        runner: Option<PathBuf>,
        binary: &Path,
        config: &AgentConfig,
    ) -> Result<Agent, AgentError> {
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-agent-")
            .tempdir()?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let ports = free_ports(config)?;
            write_config(
                &dir.path().join(CONFIG),
                config,
                &dir.path().join(DATABASE),
                &ports,
            )?;
            match launch(runner.as_deref(), binary, dir.path(), &ports).await {
                Ok(process) => {
                    let binary = binary.to_owned();
                    return Ok(Agent {
                        runner,
                        binary,
                        dir,
                        ports,
                        process: Some(process),
                    });
                }
                Err(err) if last_start_hit_port_in_use(dir.path()) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or(AgentError::NotRunning))
    }

    /// The address of the listener named `name`, if there is one.
    pub fn mllp_addr(&self, name: &str) -> Option<SocketAddr> {
        self.ports
            .get(name)
            .map(|&port| SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Listener `name` listens on `port` from now on (moved by a listener push): what
    /// [`Agent::mllp_addr`] says and what a restart waits for.
    pub fn set_port(&mut self, name: &str, port: u16) {
        self.ports.insert(name.to_owned(), port);
    }

    /// The process id while the agent runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Whether the agent process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// Kills the agent with SIGKILL and waits for it to exit. `None` if it was not running.
    pub async fn sigkill(&mut self) -> Result<Option<ExitStatus>, AgentError> {
        match self.process.as_mut() {
            Some(process) => Ok(Some(process.kill().await?)),
            None => Ok(None),
        }
    }

    /// Sends SIGTERM (graceful shutdown) without waiting; see [`Agent::wait_exit`].
    pub fn sigterm(&mut self) -> Result<(), AgentError> {
        let process = self.process.as_mut().ok_or(AgentError::NotRunning)?;
        Ok(process.signal(Signal::SIGTERM)?)
    }

    /// Waits up to `timeout` for the agent to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, AgentError> {
        let process = self.process.as_mut().ok_or(AgentError::NotRunning)?;
        Ok(process.wait_exit(timeout).await?)
    }

    /// Starts the agent again with the same configuration, ports and database. If it is still
    /// running it is stopped with SIGTERM first (up to 30 s, then SIGKILL).
    pub async fn restart(&mut self) -> Result<(), AgentError> {
        self.stop().await?;
        self.relaunch().await
    }

    /// Stops the agent like [`Agent::restart`] does, rewrites its configuration from `config`
    /// (same listener ports and database; `config` must name the same listeners) and starts it
    /// again: a technician fixing a setting on a box that keeps its queue.
    pub async fn reconfigure(&mut self, config: &AgentConfig) -> Result<(), AgentError> {
        self.stop().await?;
        write_config(
            &self.config_path(),
            config,
            &self.database_path(),
            &self.ports,
        )?;
        self.relaunch().await
    }

    /// Starts the stopped agent again from its directory, with its runner, binary and ports.
    async fn relaunch(&mut self) -> Result<(), AgentError> {
        let process = launch(
            self.runner.as_deref(),
            &self.binary,
            self.dir.path(),
            &self.ports,
        )
        .await?;
        self.process = Some(process);
        Ok(())
    }

    /// SIGTERM, up to 30 s to exit, then SIGKILL; nothing if it is not running. [`Agent::restart`]
    /// starts it again (a test may change its database meanwhile).
    pub async fn stop(&mut self) -> Result<(), AgentError> {
        if let Some(mut old) = self.process.take() {
            old.signal(Signal::SIGTERM)?;
            if old.wait_exit(Duration::from_secs(30)).await.is_err() {
                old.kill().await?;
            }
        }
        Ok(())
    }

    /// The agent's directory (configuration, database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(CONFIG)
    }

    /// The SQLite database the configuration points at.
    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join(DATABASE)
    }

    /// The log file (stdout and stderr of every start).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `hl7edge status` for this agent's configuration, as people read it.
    pub fn status_text(&self) -> Result<String, AgentError> {
        let output = std::process::Command::new(binary()?)
            .arg("status")
            .arg("--config")
            .arg(self.config_path())
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `hl7edge status --json` for this agent's configuration.
    pub fn status_json(&self) -> Result<serde_json::Value, AgentError> {
        let output = std::process::Command::new(binary()?)
            .args(["status", "--json", "--config"])
            .arg(self.config_path())
            .output()?;
        serde_json::from_slice(&output.stdout).map_err(|e| {
            AgentError::Status(e, String::from_utf8_lossy(&output.stderr).into_owned())
        })
    }

    /// Polls `status --json` until `done` holds or `timeout` passes; returns the last reading.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, AgentError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status_json()?;
            if done(&status) || tokio::time::Instant::now() >= deadline {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Prints the end of the log to stderr.
    pub fn print_log(&self, lines: usize) {
        process::print_log("hl7edge", &self.log_path(), lines);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.process = None;
        self.print_log(LOG_LINES);
        if process::keep_files() {
            self.dir.disable_cleanup(true);
            eprintln!("kept agent files in {}", self.dir.path().display());
        }
    }
}

/// File names in the agent directory.
const CONFIG: &str = "hl7edge.toml";
const DATABASE: &str = "queue.db";
const LOG: &str = "hl7edge.log";

/// The path of the agent binary, built on first use (see the module documentation).
pub fn binary() -> Result<PathBuf, AgentError> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(build_binary)
        .clone()
        .map_err(AgentError::Binary)
}

fn build_binary() -> Result<PathBuf, String> {
    crate::build::workspace_binary("hl7edge", "hl7edge", "HL7EDGE_BIN")
}

/// The program to start the agent binary through (`HL7EDGE_RUNNER`, e.g. `qemu-aarch64`), if
/// any; an empty value means none.
pub fn runner() -> Option<PathBuf> {
    std::env::var_os("HL7EDGE_RUNNER")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
}

/// Starts the agent in `dir` (as `runner binary run --config FILE` when there is a runner) and
/// waits until each listener in `ports` accepts connections.
async fn launch(
    runner: Option<&Path>,
    binary: &Path,
    dir: &Path,
    ports: &BTreeMap<String, u16>,
) -> Result<Process, AgentError> {
    let config = dir.join(CONFIG);
    let args = [Path::new("run"), Path::new("--config"), config.as_path()];
    let log = dir.join(LOG);
    let (mut process, timeout) = match runner {
        Some(runner) => {
            let args = std::iter::once(binary).chain(args);
            let process = Process::spawn("hl7edge", runner, args, &log)?;
            (process, EMULATED_START_TIMEOUT)
        }
        None => (
            Process::spawn("hl7edge", binary, args, &log)?,
            START_TIMEOUT,
        ),
    };
    // The agent logs this once every listener is bound (a port that answers may be another
    // test's process that took the port this agent was given; the agent then exits, AddrInUse).
    process.wait_logged(AGENT_READY, timeout).await?;
    for &port in ports.values() {
        process
            .wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), timeout)
            .await?;
    }
    Ok(process)
}

/// What the agent logs once its listeners are bound and it runs.
const AGENT_READY: &str = "hl7edge started";

/// A distinct free port for each listener, by name.
fn free_ports(config: &AgentConfig) -> std::io::Result<BTreeMap<String, u16>> {
    let ports = process::free_ports(config.listeners.len())?;
    Ok(config
        .listeners
        .iter()
        .map(|l| l.name.clone())
        .zip(ports)
        .collect())
}

/// Whether the latest start in the log failed because a port was taken.
fn last_start_hit_port_in_use(dir: &Path) -> bool {
    let log = dir.join(LOG);
    process::latest_start_logged(&log, "Address already in use")
        || process::latest_start_logged(&log, "AddrInUse")
}
