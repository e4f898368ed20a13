//! A real `mosquitto` broker for one test: mutual TLS on 127.0.0.1 and a free port, optional
//! persistence, killable and restartable on the same port.
//!
//! Invariants:
//! - clients must present a certificate issued by the configured client CA
//!   (`require_certificate true`); the certificate's common name becomes the MQTT user name;
//! - a restart reuses the port, the configuration and the persistence directory, so persistent
//!   sessions and queued messages survive exactly as far as the [`Persistence`] mode promises;
//! - the broker process never outlives the [`Broker`] value (killed on drop).
//!
//! Persistence and SIGKILL: mosquitto keeps its state in memory and writes it to disk on a
//! graceful stop ([`Broker::stop`], SIGTERM) and when autosave triggers. [`Persistence::Periodic`]
//! saves about every two seconds; [`Persistence::EveryChange`] saves after each change, which
//! makes [`Broker::kill`] lose at most what arrived in the last moment but costs a full write per
//! message (slow with large queues). A test that needs the broker to keep what it acknowledged
//! across a kill uses `EveryChange` and gives it a moment before the kill.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::pki::{CertPaths, Pki};
use crate::process::{self, Process, ProcessError};

/// Where Debian's package installs the broker.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// How long a broker may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The configuration file's name in the broker directory.
const CONFIG: &str = "mosquitto.conf";

/// The log file's name in the broker directory.
const LOG: &str = "mosquitto.log";

/// How many fresh ports to try when a chosen port turns out to be taken.
const PORT_ATTEMPTS: usize = 5;

/// What can go wrong with the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker's files could not be written.
    #[error("preparing the broker directory: {0}")]
    Setup(#[from] std::io::Error),
    /// Starting, signalling or waiting for the process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The port was taken by someone else between our restarts.
    #[error("port {port} is in use by another process; cannot restart on it")]
    PortTaken {
        /// The port.
        port: u16,
    },
}

/// How the broker keeps sessions and queued messages across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Persistence {
    /// No persistence: a restart forgets sessions, subscriptions and queued messages.
    Off,
    /// Saved on graceful stop and about every two seconds.
    #[default]
    Periodic,
    /// Saved on graceful stop and after every change (slow with many queued messages).
    EveryChange,
}

/// Settings for [`Broker::start_with`].
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Persistence mode; default [`Persistence::Periodic`].
    pub persistence: Persistence,
    /// The broker's server certificate; default `pki.broker`.
    pub server: Option<CertPaths>,
    /// The CA that client certificates must chain to; default `pki.ca`.
    pub client_ca: Option<PathBuf>,
    /// Extra lines appended to the generated `mosquitto.conf`.
    pub extra_config: Vec<String>,
}

/// A running (or deliberately stopped) mosquitto.
#[derive(Debug)]
pub struct Broker {
    dir: TempDir,
    port: u16,
    process: Option<Process>,
}

impl Broker {
    /// Starts a broker with the default options (TLS from `pki`, periodic persistence).
    ///
    /// Panics with instructions when mosquitto is not installed.
    pub async fn start(pki: &Pki) -> Result<Broker, BrokerError> {
        Broker::start_with(pki, BrokerOptions::default()).await
    }

    /// Starts a broker with `options`. The certificate files must outlive the broker (keep the
    /// [`Pki`] alive).
    ///
    /// Panics with instructions when mosquitto is not installed.
    pub async fn start_with(pki: &Pki, options: BrokerOptions) -> Result<Broker, BrokerError> {
        require_mosquitto();
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-broker-")
            .tempdir()?;
        std::fs::create_dir(dir.path().join("data"))?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = process::free_port()?;
            let conf = config(pki, &options, dir.path(), port);
            std::fs::write(dir.path().join(CONFIG), conf)?;
            match launch(dir.path(), port).await {
                Ok(process) => {
                    return Ok(Broker {
                        dir,
                        port,
                        process: Some(process),
                    });
                }
                Err(err) if last_start_hit_port_in_use(dir.path()) => last_error = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or(BrokerError::PortTaken { port: 0 }))
    }

    /// The TCP port the broker listens on (stays the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's socket address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The broker URL for the agent's configuration: `mqtts://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// Kills the broker with SIGKILL (no chance to save its state) and waits for it to exit.
    /// `None` if it was not running.
    pub async fn kill(&mut self) -> Result<Option<ExitStatus>, BrokerError> {
        match self.process.take() {
            Some(mut process) => Ok(Some(process.kill().await?)),
            None => Ok(None),
        }
    }

    /// Stops the broker gracefully with SIGTERM (it saves its state) and waits for it to exit.
    /// `None` if it was not running.
    pub async fn stop(&mut self) -> Result<Option<ExitStatus>, BrokerError> {
        match self.process.take() {
            Some(mut process) => {
                process.signal(Signal::SIGTERM)?;
                Ok(Some(process.wait_exit(Duration::from_secs(30)).await?))
            }
            None => Ok(None),
        }
    }

    /// Starts the broker again on the same port with the same configuration and persistence
    /// directory. Stops it gracefully first if it is still running.
    pub async fn restart(&mut self) -> Result<(), BrokerError> {
        self.stop().await?;
        match launch(self.dir.path(), self.port).await {
            Ok(process) => {
                self.process = Some(process);
                Ok(())
            }
            Err(_) if last_start_hit_port_in_use(self.dir.path()) => {
                Err(BrokerError::PortTaken { port: self.port })
            }
            Err(err) => Err(err),
        }
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// The broker's log so far (all starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The broker's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG)
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(CONFIG)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.process = None;
        process::print_log("mosquitto", &self.log_path(), 30);
        if process::keep_files() {
            self.dir.disable_cleanup(true);
            eprintln!("kept broker files in {}", self.dir.path().display());
        }
    }
}

/// Starts mosquitto with the configuration in `dir` and waits until it accepts connections on
/// `port`. mosquitto loads its certificates before it listens, so an accepted TCP connection
/// means TLS is ready too.
async fn launch(dir: &Path, port: u16) -> Result<Process, BrokerError> {
    let config = dir.join(CONFIG);
    let args = [Path::new("-c"), config.as_path()];
    let mut process = Process::spawn("mosquitto", Path::new(MOSQUITTO), args, &dir.join(LOG))?;
    // "mosquitto version X running" comes once its sockets are open: a port that answers may be
    // another test's process that took the port this broker was given.
    process.wait_logged("running", START_TIMEOUT).await?;
    process
        .wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), START_TIMEOUT)
        .await?;
    Ok(process)
}

/// Whether the latest start in the log failed because its port was taken.
fn last_start_hit_port_in_use(dir: &Path) -> bool {
    process::latest_start_logged(&dir.join(LOG), "Address already in use")
}

/// Panics with instructions when the broker binary is missing.
fn require_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).exists(),
        "{MOSQUITTO} not found: the end-to-end tests need a real mosquitto broker. \
         Run `tests/run.sh`, which installs it (apt-get install -y mosquitto) and runs the tests."
    );
}

/// The mosquitto configuration.
fn config(pki: &Pki, options: &BrokerOptions, dir: &Path, port: u16) -> String {
    let server = options.server.as_ref().unwrap_or(&pki.broker);
    let client_ca = options.client_ca.as_ref().unwrap_or(&pki.ca);
    let mut conf = String::new();
    let mut line = |text: String| {
        conf.push_str(&text);
        conf.push('\n');
    };
    line(format!("listener {port} 127.0.0.1"));
    line(format!("cafile {}", client_ca.display()));
    line(format!("certfile {}", server.cert.display()));
    line(format!("keyfile {}", server.key.display()));
    line("require_certificate true".into());
    line("use_identity_as_username true".into());
    // Started as root, mosquitto would drop to the `mosquitto` user and lose access to the
    // 0600 key files; as any other user this line has no effect.
    line("user root".into());
    // stderr is unbuffered: the log is complete even when the broker is killed.
    line("log_dest stderr".into());
    line("log_type error\nlog_type warning\nlog_type notice\nlog_type information".into());
    line("connection_messages true".into());
    line("log_timestamp_format %Y-%m-%dT%H:%M:%S".into());
    line("max_inflight_messages 1000".into());
    line("max_queued_messages 1000000".into());
    line("max_queued_bytes 0".into());
    line(persistence_config(options.persistence, &dir.join("data")));
    for extra in &options.extra_config {
        line(extra.clone());
    }
    conf
}

fn persistence_config(persistence: Persistence, data: &Path) -> String {
    let mut conf = String::new();
    let (on, on_changes, interval) = match persistence {
        Persistence::Off => (false, false, 0),
        Persistence::Periodic => (true, false, 1),
        Persistence::EveryChange => (true, true, 1),
    };
    let _ = writeln!(conf, "persistence {on}");
    if on {
        // mosquitto wants the trailing slash on the directory.
        let _ = writeln!(conf, "persistence_location {}/", data.display());
        let _ = writeln!(conf, "autosave_on_changes {on_changes}");
        let _ = write!(conf, "autosave_interval {interval}");
    }
    conf
}
