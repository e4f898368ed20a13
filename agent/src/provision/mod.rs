//! `hl7edge provision`: sets up a new gateway, in two steps.
//!
//! 1. `provision --org --site --gateway --hub --ca --listener --allow`: creates the device key
//!    (P-256; `root:hl7edge 0640` when run as root where the service account exists, else
//!    `0600`: see [`crate::service_account`]), a certificate signing request naming org (O),
//!    site (OU) and the gateway globally as `org/site/gateway` (CN: the broker's user name for
//!    the ACL), a copy of the hub CA, a configuration the agent loads and the queue's
//!    directory, then says what to do next.
//! 2. `provision --install-cert FILE`: checks the certificate central IT signed and installs it.
//!
//! Renewal: `provision --renew` writes a new CSR from the existing device key and the identity
//! in the configuration ([`renew`]); key and configuration stay as they are, so the box keeps
//! working with its current certificate until `--install-cert` installs the renewed one.
//!
//! Invariants: every file is written atomically ([`files`]); existing key, CSR, CA copy or
//! configuration are never replaced without `--force`, and nothing is written unless the
//! configuration validates and none of the files exists (or `--force` is given).

pub mod files;
pub mod install;
pub mod renew;
pub mod setup;
pub mod signing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jiff::Timestamp;

use crate::config::{self, ConfigError};
use crate::device_cert::CertProblem;
use crate::tls::TlsError;

use setup::{Identity, Layout, ListenerFlag, Settings};

/// Arguments of `hl7edge provision`.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// The configuration file to write (with --install-cert: to read).
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Install the certificate central IT signed from this gateway's CSR (PEM).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["org", "site", "gateway", "hub", "ca", "listener", "allow", "dir", "force", "renew"])]
    pub install_cert: Option<PathBuf>,
    /// Renew the certificate: write a new CSR from the existing device key and the configured
    /// identity, touching neither the key nor the configuration; then --install-cert the
    /// certificate central IT signs from it.
    #[arg(long, conflicts_with_all = ["org", "site", "gateway", "hub", "ca", "listener", "allow", "dir", "force"])]
    pub renew: bool,
    /// Organization (certificate O, topic level), e.g. acme-health.
    #[arg(long, required_unless_present_any = ["install_cert", "renew"])]
    pub org: Option<String>,
    /// Site (certificate OU, topic level), e.g. clinic-12.
    #[arg(long, required_unless_present_any = ["install_cert", "renew"])]
    pub site: Option<String>,
    /// Gateway id (topic level; the certificate CN is org/site/gateway), e.g. gw-0001.
    #[arg(long, required_unless_present_any = ["install_cert", "renew"])]
    pub gateway: Option<String>,
    /// The hub's MQTT broker, e.g. mqtts://hub.example.org:8883.
    #[arg(long, value_name = "URL", required_unless_present_any = ["install_cert", "renew"])]
    pub hub: Option<String>,
    /// The hub CA certificate (PEM) from central IT; copied next to the key as hub-ca.pem.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["install_cert", "renew"])]
    pub ca: Option<PathBuf>,
    /// Listeners as NAME=ADDRESS:PORT, e.g. lab=0.0.0.0:2575 (repeat or separate with commas).
    #[arg(
        long,
        value_name = "NAME=ADDR",
        value_delimiter = ',',
        required_unless_present_any = ["install_cert", "renew"]
    )]
    pub listener: Vec<String>,
    /// Networks allowed to send HL7 to every listener, e.g. 10.0.0.0/24 (repeat or commas).
    #[arg(
        long,
        value_name = "NET",
        value_delimiter = ',',
        required_unless_present_any = ["install_cert", "renew"]
    )]
    pub allow: Vec<String>,
    /// Directory for the key, CSR, certificate and CA copy (default: the configuration's).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The queue database.
    #[arg(long, default_value = "/var/lib/hl7edge/queue.db")]
    pub storage: PathBuf,
    /// Replace an existing key, CSR, CA copy and configuration.
    #[arg(long)]
    pub force: bool,
    /// The organization's Ed25519 public key for signed pushes (PEM, from `openssl pkey
    /// -pubout`): checked, copied next to the device key as org-push.pub and pinned as
    /// hub.push_key. Without it the box takes no pushes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["install_cert", "renew"])]
    pub push_key: Option<PathBuf>,
}

/// Why provisioning stopped. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The flags make a configuration the agent would refuse.
    #[error(transparent)]
    Config(ConfigError),
    /// The configuration of a provisioned box (for --install-cert or --renew) does not load.
    #[error("{}", configured_hint(.0))]
    Configured(ConfigError),
    /// A `--listener` value is not `NAME=ADDRESS:PORT`.
    #[error("--listener {0:?} is not NAME=ADDRESS:PORT (e.g. lab=0.0.0.0:2575)")]
    Listener(String),
    /// Files exist and `--force` was not given.
    #[error(
        "already provisioned: {0} exist(s); add --force to replace (the old key is then lost and a certificate signed for it stops working)"
    )]
    Exists(String),
    /// A PEM file could not be read.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Key or CSR generation failed.
    #[error("generating the device key or CSR: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] files::WriteError),
    /// The device key cannot be used to sign a renewal request.
    #[error("{}: the device key cannot sign a new request: {reason}", .path.display())]
    KeyUnusable {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The configured hub is plaintext, so there is no certificate to install.
    #[error(
        "the configured hub.url is plaintext mqtt://, so no certificate is used; provision with an mqtts:// hub"
    )]
    Plaintext,
    /// The `--push-key` file is not an Ed25519 public key; nothing was written.
    #[error(
        "--push-key {why}; nothing was written.\nfix: give the organization's public push key, made by central IT with:\n  openssl genpkey -algorithm ed25519 -out org-push.key\n  openssl pkey -in org-push.key -pubout -out org-push.pub"
    )]
    PushKey {
        /// What is wrong, naming the file.
        why: String,
    },
    /// The signed certificate was refused; nothing was installed.
    #[error("{}: {problem}; nothing was installed.\nfix: {fix}", .file.display())]
    Rejected {
        /// The certificate file given.
        file: PathBuf,
        /// What is wrong with it.
        problem: CertProblem,
        /// What to do.
        fix: String,
    },
}

/// Runs `provision`, printing what was done and the next steps.
pub fn command(args: &ProvisionArgs) -> Result<ExitCode, ProvisionError> {
    if args.renew {
        let renewed = renew::renew(&args.config, Timestamp::now())?;
        audit_if_stored(
            &args.config,
            "provision.renew",
            &format!(
                "new CSR {} from the existing device key {}",
                renewed.csr.display(),
                renewed.key.display()
            ),
        );
        print!("{}", renewed.next_steps(&args.config));
        return Ok(ExitCode::SUCCESS);
    }
    match &args.install_cert {
        Some(file) => {
            let (dates, path) = install::install(&args.config, file, Timestamp::now())?;
            audit_if_stored(
                &args.config,
                "provision.install-cert",
                &format!(
                    "certificate for {} installed at {}, valid until {}",
                    dates.subject,
                    path.display(),
                    dates.not_after
                ),
            );
            println!(
                "Installed the certificate for {} at {}\nIt is valid until {} ({} days from now).\n\n\
                 Next steps:\n  1. Check the box: hl7edge doctor --config {}\n  \
                 2. Start (or restart) the service: systemctl restart hl7edge",
                dates.subject,
                path.display(),
                dates.not_after,
                dates.days_left(Timestamp::now()),
                args.config.display()
            );
        }
        None => print!("{}", create(args)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The first step: key, CSR, CA copy and configuration. Returns the text to print.
pub fn create(args: &ProvisionArgs) -> Result<String, ProvisionError> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let identity = Identity {
        org: text(&args.org),
        site: text(&args.site),
        gateway: text(&args.gateway),
    };
    let config_path = std::path::absolute(&args.config).unwrap_or_else(|_| args.config.clone());
    let dir = match &args.dir {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => config_path.parent().unwrap_or(Path::new("/")).to_path_buf(),
    };
    let layout = Layout::new(&config_path, &dir);
    // The configuration reads a relative path from its own folder, not from here.
    let storage = std::path::absolute(&args.storage).unwrap_or_else(|_| args.storage.clone());
    let listeners = args
        .listener
        .iter()
        .map(|l| ListenerFlag::parse(l).ok_or_else(|| ProvisionError::Listener(l.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let hub_url = text(&args.hub);
    let push_key = match &args.push_key {
        Some(path) => {
            let key = crate::push::load_key(path).map_err(|why| ProvisionError::PushKey { why })?;
            let pem = std::fs::read(path).map_err(|source| files::WriteError {
                path: path.clone(),
                source,
            })?;
            Some((key, pem))
        }
        None => None,
    };
    let config_text = setup::config_text(&Settings {
        identity: &identity,
        layout: &layout,
        hub_url: &hub_url,
        listeners: &listeners,
        allow: &args.allow,
        storage: &storage,
        push_key: push_key.is_some(),
    })
    .map_err(ProvisionError::Config)?;
    let ca_source = args.ca.clone().unwrap_or_default();
    crate::tls::load_roots(&ca_source)?;
    let ca_bytes = std::fs::read(&ca_source).map_err(|source| files::WriteError {
        path: ca_source.clone(),
        source,
    })?;
    refuse_existing(&layout, args.force)?;
    let (key, csr) = setup::key_and_csr(&identity)?;
    let force = args.force;
    let policy = crate::service_account::key_policy(
        rustix::process::geteuid().as_raw(),
        crate::service_account::lookup(),
    );
    files::write_key(&layout.key, key.as_bytes(), policy, force)?;
    files::write_atomic(&layout.csr, csr.as_bytes(), files::PUBLIC, force)?;
    files::write_atomic(&layout.ca, &ca_bytes, files::PUBLIC, true)?;
    if let Some((_, pem)) = &push_key {
        files::write_atomic(&layout.push_key, pem, files::PUBLIC, true)?;
    }
    files::write_atomic(&layout.config, config_text.as_bytes(), files::PUBLIC, force)?;
    if let Some(queue_dir) = storage.parent() {
        files::private_dir(queue_dir)?;
    }
    audit_if_stored(
        &layout.config,
        "provision",
        &format!(
            "gateway {}/{}/{} provisioned: new device key and CSR {}{}",
            identity.org,
            identity.site,
            identity.gateway,
            layout.csr.display(),
            if force {
                " (--force: the old key was replaced)"
            } else {
                ""
            }
        ),
    );
    let mut steps = next_steps(&identity, &layout, policy);
    if let Some((key, _)) = &push_key {
        steps.push_str(&format!(
            "\nSigned pushes: the organization key {} is pinned ({}); the box takes\n\
             mapping and replay pushes signed with it (hl7edge-hub push).\n",
            key.fingerprint(),
            layout.push_key.display()
        ));
    }
    Ok(steps)
}

/// A configuration that does not load, for `--install-cert` and `--renew`: the reason with the
/// OS's words, and where to look.
fn configured_hint(e: &ConfigError) -> String {
    match e {
        ConfigError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            format!(
                "{}: no configuration there ({source}); give the one `hl7edge provision` wrote with --config FILE",
                path.display()
            )
        }
        ConfigError::Read { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            format!(
                "{}: cannot read the configuration ({source}); run as root (sudo)",
                path.display()
            )
        }
        ConfigError::Read { path, source } => {
            format!(
                "{}: cannot read the configuration ({source})",
                path.display()
            )
        }
        other => format!(
            "{other}\nfix: correct the configuration first (hl7edge doctor --config FILE shows every problem)"
        ),
    }
}

/// Appends an audit line to the store the configuration names, when it exists already (a
/// certificate renewal, a re-provisioning); a new box has no store yet, and its first start
/// records the configuration and certificate fingerprints (`agent.configuration`).
fn audit_if_stored(config_path: &Path, kind: &str, detail: &str) {
    let Ok(config) = config::Config::load(config_path) else {
        return;
    };
    if !config.storage.path.exists() {
        return;
    }
    if let Err(e) =
        crate::store::offline::audit(&config.storage.path, crate::store::now_ms(), kind, detail)
    {
        eprintln!(
            "note: {kind} could not be written to the audit trail in {}: {e}",
            config.storage.path.display()
        );
    }
}

fn refuse_existing(layout: &Layout, force: bool) -> Result<(), ProvisionError> {
    let existing: Vec<String> = [&layout.config, &layout.key, &layout.csr]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() || force {
        Ok(())
    } else {
        Err(ProvisionError::Exists(existing.join(", ")))
    }
}

fn next_steps(
    identity: &Identity,
    layout: &Layout,
    policy: crate::service_account::KeyPolicy,
) -> String {
    let mode = match policy.group {
        Some(_) => "root:hl7edge 0640, readable by the service".to_owned(),
        None => format!("mode {:04o}", policy.mode),
    };
    format!(
        "Provisioned gateway {org}/{site}/{gw}.\n\
         \x20 device key         {key} ({mode}; stays on this box, never send it anywhere)\n\
         \x20 signing request    {csr}\n\
         \x20 hub CA             {ca}\n\
         \x20 configuration      {config}\n\n\
         Next steps:\n\
         \x20 1. Send {csr} to central IT and ask them to sign it as a client certificate\n\
         \x20    for gateway {gw} (O={org}, OU={site}, CN={org}/{site}/{gw}; the broker's ACL\n\
         \x20    takes the CN as this gateway's user name).\n\
         \x20 2. When the signed certificate comes back, install it:\n\
         \x20      hl7edge provision --config {config} --install-cert SIGNED.pem\n\
         \x20 3. Check everything: hl7edge doctor --config {config}\n",
        org = identity.org,
        site = identity.site,
        gw = identity.gateway,
        key = layout.key.display(),
        csr = layout.csr.display(),
        ca = layout.ca.display(),
        config = layout.config.display(),
        mode = mode,
    )
}
