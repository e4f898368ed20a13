//! The real hub tools (`hl7edge-hub fleet | serve | tail`) as child processes against the test
//! broker, authenticating with the subscriber certificate.
//!
//! Invariants:
//! - every process runs in its own temporary directory with its own log; it never outlives its
//!   value (killed on drop, like [`crate::process::Process`]), and its log tail is printed then;
//! - `tail` writes its NDJSON to a file of its own, so the lines a test reads are exactly what
//!   the tool printed on stdout, without its logs.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pki::{CertPaths, Pki};
use crate::process::{self, Process, ProcessError};

/// How long a one-shot command (`fleet --json`) may run.
const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `serve` may take to open its metrics port.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of a tool's log printed when it is dropped.
const LOG_LINES: usize = 40;

/// What can go wrong with the hub tools.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The binary could not be built or found.
    #[error("hl7edge-hub binary: {0}")]
    Binary(String),
    /// A directory or file could not be created or read.
    #[error("hub tool files: {0}")]
    Io(#[from] std::io::Error),
    /// Starting, signalling or waiting for the process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The command exited unsuccessfully.
    #[error("hl7edge-hub {command} exited with {status}; log:\n{log}")]
    Failed {
        /// The subcommand.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// The tool exited or timed out before it was ready.
    #[error("hl7edge-hub never got to {what}; log:\n{log}")]
    NotReady {
        /// What was awaited.
        what: String,
        /// The end of its log.
        log: String,
    },
    /// Its output is not the JSON expected.
    #[error("hl7edge-hub {command} printed no valid JSON: {source}")]
    Json {
        /// The subcommand.
        command: String,
        /// The parser's error.
        source: serde_json::Error,
    },
}

/// The path of the `hl7edge-hub` binary, built on first use (see [`crate::build`]);
/// `HL7EDGE_HUB_BIN` names a prebuilt one.
pub fn binary() -> Result<PathBuf, HubError> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            crate::build::workspace_binary("hl7edge-hub", "hl7edge-hub", "HL7EDGE_HUB_BIN")
        })
        .clone()
        .map_err(HubError::Binary)
}

/// How the hub tools reach one broker.
pub struct HubTools {
    binary: PathBuf,
    dir: TempDir,
    url: String,
    ca: PathBuf,
    identity: CertPaths,
}

impl HubTools {
    /// Tools for the broker at `url` (`mqtts://...`), trusting `pki.ca` and presenting the
    /// subscriber certificate.
    pub fn new(pki: &Pki, url: &str) -> Result<HubTools, HubError> {
        HubTools::with_identity(pki, url, &pki.subscriber)
    }

    /// Tools for the broker at `url` presenting `identity` (for a broker with the ACL template:
    /// a certificate named `hl7edge-monitor`).
    pub fn with_identity(pki: &Pki, url: &str, identity: &CertPaths) -> Result<HubTools, HubError> {
        Ok(HubTools {
            binary: binary()?,
            dir: tempfile::Builder::new().prefix("hl7edge-hub-").tempdir()?,
            url: url.to_owned(),
            ca: pki.ca.clone(),
            identity: identity.clone(),
        })
    }

    fn args(&self, command: &str, extra: &[&str]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![command.into(), "--url".into(), (&self.url).into()];
        args.extend(["--ca".into(), self.ca.clone().into_os_string()]);
        args.extend(["--cert".into(), self.identity.cert.clone().into_os_string()]);
        args.extend(["--key".into(), self.identity.key.clone().into_os_string()]);
        args.extend(extra.iter().map(OsString::from));
        args
    }

    /// Runs `push mapping EXTRA...` to completion (EXTRA: `--signing-key`, `--to`,
    /// `--listener`, `--sequence`, the file) and returns what it printed.
    pub async fn push_mapping(&self, extra: &[&str]) -> Result<String, HubError> {
        self.push("mapping", extra).await
    }

    /// Runs `push listener EXTRA...` to completion (EXTRA: `--signing-key`, `--to`,
    /// `--listener`, `--sequence`, and a settings file or `--disable`/`--enable`) and returns
    /// what it printed.
    pub async fn push_listener(&self, extra: &[&str]) -> Result<String, HubError> {
        self.push("listener", extra).await
    }

    /// Runs `push KIND EXTRA...` to completion (`mapping`, `listener`, `replay`, with their
    /// flags) and returns what it printed.
    pub async fn push(&self, kind: &str, extra: &[&str]) -> Result<String, HubError> {
        let name = format!("push-{}", unique());
        let stdout = self.dir.path().join(format!("{name}.out"));
        let log = self.dir.path().join(format!("{name}.log"));
        let mut args: Vec<OsString> = vec!["push".into()];
        args.extend(self.args(kind, extra));
        let mut process = Process::spawn_split(&name, &self.binary, args, Some(&stdout), &log)?;
        let status = process.wait_exit(ONE_SHOT_TIMEOUT).await?;
        if !status.success() {
            return Err(HubError::Failed {
                command: format!("push {kind}"),
                status,
                log: process::log_tail(&log, LOG_LINES),
            });
        }
        Ok(std::fs::read_to_string(&stdout)?)
    }

    /// Polls `fleet --json` until the first push report `which` picks (see
    /// [`crate::push::report`]) satisfies `ok`, and returns it; after `timeout`, an error
    /// naming the last report seen.
    pub async fn wait_push_report(
        &self,
        which: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, HubError> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let json = self.fleet_json(Duration::from_secs(2)).await?;
            let report = crate::push::report(&json, &which);
            if let Some(report) = report.as_ref().filter(|r| ok(r)) {
                return Ok(report.clone());
            }
            if tokio::time::Instant::now() >= until {
                return Err(HubError::NotReady {
                    what: "the expected push outcome".to_owned(),
                    log: format!("last report: {report:?}"),
                });
            }
        }
    }

    /// Runs `fleet --json --wait WAIT` to completion and returns its JSON snapshot.
    pub async fn fleet_json(&self, wait: Duration) -> Result<serde_json::Value, HubError> {
        self.fleet_json_with(wait, &[]).await
    }

    /// Like [`HubTools::fleet_json`], with more flags (`--error-window 2s`).
    pub async fn fleet_json_with(
        &self,
        wait: Duration,
        extra: &[&str],
    ) -> Result<serde_json::Value, HubError> {
        let name = format!("fleet-{}", unique());
        let stdout = self.dir.path().join(format!("{name}.json"));
        let log = self.dir.path().join(format!("{name}.log"));
        let wait = format!("{}ms", wait.as_millis());
        let mut own = vec!["--json", "--wait", wait.as_str()];
        own.extend_from_slice(extra);
        let args = self.args("fleet", &own);
        let mut process = Process::spawn_split(&name, &self.binary, args, Some(&stdout), &log)?;
        let status = process.wait_exit(ONE_SHOT_TIMEOUT).await?;
        if !status.success() {
            return Err(HubError::Failed {
                command: "fleet".into(),
                status,
                log: process::log_tail(&log, LOG_LINES),
            });
        }
        let text = std::fs::read_to_string(&stdout)?;
        serde_json::from_str(&text).map_err(|source| HubError::Json {
            command: "fleet".into(),
            source,
        })
    }

    /// Starts `serve --metrics 127.0.0.1:PORT` on a free port and waits until it accepts.
    pub async fn serve(&self) -> Result<Serve, HubError> {
        self.serve_with(&[]).await
    }

    /// Starts `serve --metrics 127.0.0.1:PORT EXTRA...` on a free port and waits until it
    /// accepts.
    pub async fn serve_with(&self, extra: &[&str]) -> Result<Serve, HubError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], process::free_port()?));
        let name = format!("serve-{}", unique());
        let log = self.dir.path().join(format!("{name}.log"));
        let metrics = addr.to_string();
        let mut own = vec!["--metrics", metrics.as_str()];
        own.extend_from_slice(extra);
        let args = self.args("serve", &own);
        let mut process = Process::spawn(&name, &self.binary, args, &log)?;
        process.wait_listening(addr, START_TIMEOUT).await?;
        Ok(Serve { process, addr })
    }

    /// Starts `tail --client-id ID EXTRA...` with at most `address_space` bytes of virtual
    /// memory (`ulimit -v`, as a container or a systemd `MemoryMax` would bound a real hub), its
    /// NDJSON going to a file of its own. An allocation beyond the limit aborts the process.
    pub fn tail_limited(
        &self,
        client_id: &str,
        extra: &[&str],
        address_space: u64,
    ) -> Result<Tail, HubError> {
        let stdout = self.dir.path().join(format!("{client_id}.ndjson"));
        let log = self.dir.path().join(format!("{client_id}.log"));
        let script = format!("ulimit -v {} && exec \"$0\" \"$@\"", address_space / 1024);
        let mut args: Vec<OsString> = vec!["-c".into(), script.into(), self.binary.clone().into()];
        let mut own = vec!["--client-id", client_id];
        own.extend_from_slice(extra);
        args.extend(self.args("tail", &own));
        let shell = std::path::Path::new("/bin/sh");
        let process = Process::spawn_split(client_id, shell, args, Some(&stdout), &log)?;
        Ok(Tail { process, stdout })
    }

    /// Starts `tail --client-id ID [--share GROUP]`, its NDJSON going to a file of its own.
    pub fn tail(&self, client_id: &str, share: Option<&str>) -> Result<Tail, HubError> {
        let mut extra = Vec::new();
        if let Some(group) = share {
            extra.extend(["--share", group]);
        }
        self.tail_with(client_id, &extra)
    }

    /// Starts `tail --client-id ID EXTRA...` (`--fhir`, say), its NDJSON going to a file of
    /// its own.
    pub fn tail_with(&self, client_id: &str, extra: &[&str]) -> Result<Tail, HubError> {
        let stdout = self.dir.path().join(format!("{client_id}.ndjson"));
        let log = self.dir.path().join(format!("{client_id}.log"));
        let mut own = vec!["--client-id", client_id];
        own.extend_from_slice(extra);
        let args = self.args("tail", &own);
        let process = Process::spawn_split(client_id, &self.binary, args, Some(&stdout), &log)?;
        Ok(Tail { process, stdout })
    }
}

/// A running `hl7edge-hub serve`.
pub struct Serve {
    process: Process,
    addr: SocketAddr,
}

impl Serve {
    /// `GET /metrics`: the response body.
    pub async fn metrics(&self) -> Result<String, HubError> {
        metrics_at(self.addr).await
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_exit(), Ok(None))
    }

    /// Where its metrics are served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        process::log_tail(self.process.log_path(), LOG_LINES)
    }
}

/// `GET /metrics` from a hub tool's metrics endpoint at `addr`: the response body.
pub async fn metrics_at(addr: SocketAddr) -> Result<String, HubError> {
    http_get(addr, "/metrics").await
}

/// `GET path` from an HTTP/1.1 server at `addr`: the response body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String, HubError> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    Ok(text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned()))
}

impl Drop for Serve {
    fn drop(&mut self) {
        process::print_log("hl7edge-hub serve", self.process.log_path(), LOG_LINES);
    }
}

/// A running `hl7edge-hub tail`.
pub struct Tail {
    process: Process,
    stdout: PathBuf,
}

impl Tail {
    /// The lines printed so far, parsed (a partly written last line is left out).
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The record ids printed so far, in order.
    pub fn record_ids(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|line| line.get("id").and_then(|id| id.as_str()).map(str::to_owned))
            .collect()
    }

    /// Waits until the tool has logged that its subscription is in place (records published
    /// from then on reach it).
    pub async fn wait_subscribed(&mut self, timeout: Duration) -> Result<(), HubError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // This run's log only: a restarted tool appends to the same file.
            if process::latest_start_logged(self.process.log_path(), "subscribed") {
                return Ok(());
            }
            if self.process.try_exit()?.is_some() || tokio::time::Instant::now() >= deadline {
                return Err(HubError::NotReady {
                    what: "tail subscribed".into(),
                    log: process::log_tail(self.process.log_path(), LOG_LINES),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_exit(), Ok(None))
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        process::log_tail(self.process.log_path(), LOG_LINES)
    }

    /// Stops the tool with SIGTERM (it flushes and acknowledges what it printed) and waits.
    pub async fn stop(&mut self) -> Result<(), HubError> {
        self.process.signal(Signal::SIGTERM)?;
        self.process.wait_exit(Duration::from_secs(10)).await?;
        Ok(())
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        process::print_log("hl7edge-hub tail", self.process.log_path(), LOG_LINES);
    }
}

/// A number distinct for each call in this process (file and client names).
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Waits until the sample `name{labels}` at `addr` is `want`, for at most `timeout`.
pub async fn wait_sample(
    addr: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
    timeout: Duration,
) -> Result<(), HubError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let text = metrics_at(addr).await?;
        if sample(&text, name, labels) == Some(want) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HubError::NotReady {
                what: format!("{name}{labels:?} = {want}"),
                log: text,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of the Prometheus sample `name` whose labels include every `labels` pair
/// (`key="value"`), if the exposition has one.
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then_some((rest, value))
        })
        .find(|(series, _)| {
            labels
                .iter()
                .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# HELP hl7edge_queue_depth Records waiting.\n\
        # TYPE hl7edge_queue_depth gauge\n\
        hl7edge_queue_depth{org=\"o\",site=\"s\",gateway=\"a\"} 5\n\
        hl7edge_queue_depth{org=\"o\",site=\"s\",gateway=\"b\"} 0\n\
        hl7edge_queue_depth_extra{gateway=\"a\"} 9\n";

    #[test]
    fn a_sample_is_found_by_name_and_labels() {
        assert_eq!(
            sample(EXPOSITION, "hl7edge_queue_depth", &[("gateway", "a")]),
            Some(5.0)
        );
        assert_eq!(
            sample(EXPOSITION, "hl7edge_queue_depth", &[("gateway", "b")]),
            Some(0.0)
        );
        assert_eq!(
            sample(EXPOSITION, "hl7edge_queue_depth", &[("gateway", "c")]),
            None
        );
    }
}
