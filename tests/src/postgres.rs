//! A real PostgreSQL server for one test, from Debian's packages: `initdb` into a temporary
//! directory and `postgres` on 127.0.0.1 and a free port, run as an unprivileged user.
//!
//! Invariants:
//! - PostgreSQL refuses to run as root, and the tests run as root: the server then runs as the
//!   `postgres` system user (created by Debian's package), or `nobody` where that user is
//!   missing, through `setpriv`, which execs (so the process id is the postmaster's own and a
//!   signal reaches it); run as another user, the server runs as that user;
//! - the cluster trusts connections from 127.0.0.1 (test only) and listens nowhere else; its
//!   socket directory is the temporary directory;
//! - a restart reuses the port and the data directory; the server never outlives the
//!   [`Postgres`] value (fast shutdown, then SIGKILL, on drop).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::process::{self, Process, ProcessError};

/// Where Debian's `postgresql` packages put the server binaries (one directory per version).
pub const POSTGRESQL_LIB: &str = "/usr/lib/postgresql";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many fresh ports to try when one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;
/// The log file's name in the server directory.
const LOG: &str = "postgres.log";

/// What can go wrong with the server.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The directory could not be prepared.
    #[error("preparing the PostgreSQL directory: {0}")]
    Setup(#[from] std::io::Error),
    /// `initdb` failed.
    #[error("initdb failed ({status}): {output}")]
    Initdb {
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its output.
        output: String,
    },
    /// Starting, signalling or waiting for the process failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The server did not answer queries in time.
    #[error("PostgreSQL on port {port} did not answer: {cause}")]
    NotReady {
        /// The port.
        port: u16,
        /// The last error.
        cause: String,
    },
}

/// A running (or deliberately stopped) PostgreSQL server.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    process: Option<Process>,
}

impl Postgres {
    /// Creates a cluster and starts the server.
    ///
    /// Panics with instructions when PostgreSQL is not installed.
    pub async fn start() -> Result<Postgres, PostgresError> {
        let bin = require_postgresql();
        let run_as = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-postgres-")
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        if let Some(user) = &run_as {
            chown(dir.path(), user)?;
        }
        initdb(&bin, dir.path(), run_as.as_deref())?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = process::free_port()?;
            match launch(&bin, dir.path(), run_as.as_deref(), port).await {
                Ok(process) => {
                    let mut pg = Postgres {
                        dir,
                        bin,
                        run_as,
                        port,
                        process: Some(process),
                    };
                    pg.wait_ready().await?;
                    return Ok(pg);
                }
                Err(e) if process::latest_start_logged(&dir.path().join(LOG), "in use") => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(PostgresError::NotReady {
            port: 0,
            cause: "no free port".into(),
        }))
    }

    /// The connection string for the ingest: `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's programs (`psql`, `createdb`, ...).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A connection string for `user` (with `password`) to `database` on this server.
    pub fn url_for(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Connects a client (for the test's own queries).
    pub async fn client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Stops the server with a fast shutdown (SIGINT: open transactions roll back, clients are
    /// disconnected) and waits for it to exit.
    pub async fn stop(&mut self) -> Result<(), PostgresError> {
        if let Some(mut process) = self.process.take() {
            process.signal(Signal::SIGINT)?;
            if process.wait_exit(Duration::from_secs(30)).await.is_err() {
                process.kill().await?;
            }
        }
        Ok(())
    }

    /// Starts the stopped server again on the same port and data directory.
    pub async fn start_again(&mut self) -> Result<(), PostgresError> {
        self.stop().await?;
        let process = launch(
            &self.bin,
            self.dir.path(),
            self.run_as.as_deref(),
            self.port,
        )
        .await?;
        self.process = Some(process);
        self.wait_ready().await
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG)).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> Result<(), PostgresError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let cause = match self.client().await {
                Ok(client) => match client.simple_query("SELECT 1").await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(PostgresError::NotReady {
                    port: self.port,
                    cause,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            // Fast shutdown, so no backend outlives the postmaster; SIGKILL (Process's drop) after.
            if process.signal(Signal::SIGINT).is_ok() {
                for _ in 0..100 {
                    if !process.is_running() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.process = None;
        process::print_log("postgres", &self.dir.path().join(LOG), 30);
        if process::keep_files() {
            self.dir.disable_cleanup(true);
            eprintln!("kept PostgreSQL files in {}", self.dir.path().display());
        }
    }
}

/// The newest installed server's `bin` directory; panics with instructions when there is none.
fn require_postgresql() -> PathBuf {
    let newest = std::fs::read_dir(POSTGRESQL_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(v, _)| *v);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server under {POSTGRESQL_LIB}: the ingest tests need one. \
             Run `tests/run.sh`, which installs it (apt-get install -y postgresql) and runs the tests."
        ),
    }
}

/// The user to run the server as: none (ourselves) unless we are root.
fn unprivileged_user() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let exists = |name: &str| nix::unistd::User::from_name(name).ok().flatten().is_some();
    Some(
        if exists("postgres") {
            "postgres"
        } else {
            "nobody"
        }
        .to_owned(),
    )
}

fn chown(path: &Path, user: &str) -> std::io::Result<()> {
    let u = nix::unistd::User::from_name(user)
        .map_err(std::io::Error::other)?
        .ok_or_else(|| std::io::Error::other(format!("no user {user}")))?;
    nix::unistd::chown(path, Some(u.uid), Some(u.gid)).map_err(std::io::Error::other)
}

/// `program args` as `user` through `setpriv` (exec, no fork), or directly.
fn as_user(user: Option<&str>, program: &Path) -> (PathBuf, Vec<String>) {
    match user {
        Some(user) => (
            PathBuf::from("/usr/bin/setpriv"),
            vec![
                format!("--reuid={user}"),
                format!("--regid={user}"),
                "--init-groups".into(),
                "--".into(),
                program.display().to_string(),
            ],
        ),
        None => (program.to_owned(), Vec::new()),
    }
}

fn initdb(bin: &Path, dir: &Path, user: Option<&str>) -> Result<(), PostgresError> {
    let (program, mut args) = as_user(user, &bin.join("initdb"));
    args.extend(
        [
            "-D",
            &dir.join("data").display().to_string(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]
        .map(String::from),
    );
    let out = Command::new(program).args(args).current_dir(dir).output()?;
    if !out.status.success() {
        return Err(PostgresError::Initdb {
            status: out.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    Ok(())
}

async fn launch(
    bin: &Path,
    dir: &Path,
    user: Option<&str>,
    port: u16,
) -> Result<Process, PostgresError> {
    let (program, mut args) = as_user(user, &bin.join("postgres"));
    args.extend([
        "-D".into(),
        dir.join("data").display().to_string(),
        "-p".into(),
        port.to_string(),
        "-h".into(),
        "127.0.0.1".into(),
        "-k".into(),
        dir.display().to_string(),
        "-c".into(),
        "max_connections=50".into(),
    ]);
    let log = dir.join(LOG);
    let mut process = Process::spawn("postgres", &program, &args, &log)?;
    process
        .wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), START_TIMEOUT)
        .await?;
    Ok(process)
}
