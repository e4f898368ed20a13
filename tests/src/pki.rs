//! A throw-away public key infrastructure for one test: certificate authorities, the broker's
//! server certificate and client certificates, written as PEM files into a temporary directory.
//!
//! Invariants:
//! - every private key file is created with mode 0600 (never readable by others, not even for a
//!   moment: the mode is set when the file is created);
//! - the broker and MLLP server certificates are valid for `localhost`, `127.0.0.1` and `::1`;
//! - everything called "wrong CA" chains to [`Pki::wrong_ca`], a CA that signed nothing else and
//!   that no test component trusts unless a test says so;
//! - the files live as long as the [`Pki`] value; dropping it removes the directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// Host names and addresses every server certificate made here is valid for.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What can go wrong while making or writing the certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused to generate a key or certificate.
    #[error("generating {what}: {source}")]
    Generate {
        /// The certificate or key being made.
        what: String,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The certificate (PEM, one certificate).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8), mode 0600.
    pub key: PathBuf,
}

/// All certificates a test needs, written to a temporary directory.
pub struct Pki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The test CA certificate: trusted by the broker for clients and by clients for the broker.
    pub ca: PathBuf,
    /// The test CA's private key (PEM, mode 0600), for signing with a CA tool as central IT
    /// does (`openssl x509 -req -CAkey`, easy-rsa).
    pub ca_key: PathBuf,
    /// The broker's server certificate (signed by the test CA).
    pub broker: CertPaths,
    /// A server certificate for MLLP over TLS (signed by the test CA).
    pub mllp_server: CertPaths,
    /// The agent's client certificate, CN `acme-health/clinic-12/gw-0001` (the gateway of
    /// [`crate::agent::AgentConfig::new`], named globally as the broker ACL needs it).
    pub agent: CertPaths,
    /// The test subscriber's client certificate, CN `hl7edge-subscriber` (signed by the test CA).
    pub subscriber: CertPaths,
    /// A second, unrelated CA certificate.
    pub wrong_ca: PathBuf,
    /// A client certificate signed by the unrelated CA.
    pub wrong_ca_client: CertPaths,
    /// A server certificate for `localhost` signed by the unrelated CA.
    pub wrong_ca_server: CertPaths,
    /// A client certificate signed by the test CA that expired in 2001.
    pub expired_client: CertPaths,
    /// A server certificate for `localhost` signed by the test CA that expired in 2001.
    pub expired_server: CertPaths,
}

/// How the test CA is made.
#[derive(Debug, Clone, Copy, Default)]
pub struct PkiOptions {
    /// The CA expires at the start (UTC) of the day this many days from today; `None`: in 4096.
    pub ca_expires_in_days: Option<i64>,
}

impl Pki {
    /// Generates every certificate and writes them into a new temporary directory.
    pub fn generate() -> Result<Pki, PkiError> {
        Pki::generate_with(PkiOptions::default())
    }

    /// Like [`Pki::generate`], with the test CA made as `options` say.
    pub fn generate_with(options: PkiOptions) -> Result<Pki, PkiError> {
        let dir = tempfile::Builder::new()
            .prefix("hl7edge-pki-")
            .tempdir()
            .map_err(|source| write_error(Path::new("<tempdir>"), source))?;
        let (issuer, ca) = make_ca(dir.path(), "ca", "hl7edge test CA", options)?;
        let ca_key = dir.path().join("ca.key");
        write_file(&ca_key, issuer.key().serialize_pem().as_bytes(), 0o600)?;
        let (wrong_issuer, wrong_ca) = make_ca(
            dir.path(),
            "wrong-ca",
            "unrelated test CA",
            PkiOptions::default(),
        )?;
        let valid = Validity::Current;
        let expired = Validity::Expired;
        let server = |name: &str, issuer: &Issuer<'_, KeyPair>, validity| {
            issue(dir.path(), name, issuer, Role::Server, validity)
        };
        let client = |name: &str, issuer: &Issuer<'_, KeyPair>, validity| {
            issue(dir.path(), name, issuer, Role::Client, validity)
        };
        Ok(Pki {
            broker: server("broker", &issuer, valid)?,
            mllp_server: server("mllp-server", &issuer, valid)?,
            agent: issue_named(
                dir.path(),
                "hl7edge-agent",
                &gateway_name("acme-health", "clinic-12", "gw-0001"),
                &issuer,
                Role::Client,
                valid,
            )?,
            subscriber: client("hl7edge-subscriber", &issuer, valid)?,
            wrong_ca_client: client("wrong-ca-client", &wrong_issuer, valid)?,
            wrong_ca_server: server("wrong-ca-server", &wrong_issuer, valid)?,
            expired_client: client("expired-client", &issuer, expired)?,
            expired_server: server("expired-server", &issuer, expired)?,
            dir,
            issuer,
            ca,
            ca_key,
            wrong_ca,
        })
    }

    /// Issues one more client certificate from the test CA with the given common name (which the
    /// broker uses as the MQTT user name). `name` must be a plain file-name-safe word.
    pub fn client(&self, name: &str) -> Result<CertPaths, PkiError> {
        issue(
            self.dir.path(),
            name,
            &self.issuer,
            Role::Client,
            Validity::Current,
        )
    }

    /// Issues a device certificate for the gateway `org/site/id` the way central IT signs one
    /// for a provisioned box: O = org, OU = site, CN = `org/site/id` (the broker's user name,
    /// which the ACL's `%u` patterns put in the topic). Files `gateway-{org}-{site}-{id}`.
    pub fn gateway(&self, org: &str, site: &str, id: &str) -> Result<CertPaths, PkiError> {
        issue_named(
            self.dir.path(),
            &format!("gateway-{org}-{site}-{id}"),
            &gateway_name(org, site, id),
            &self.issuer,
            Role::Client,
            Validity::Current,
        )
    }

    /// Signs a certificate signing request (PEM) with the test CA, as central IT would: a client
    /// certificate with the request's subject and key, valid from 1975 to 4096. Returns the
    /// certificate as PEM.
    pub fn sign_csr(&self, csr_pem: &str) -> Result<String, PkiError> {
        let generate = |source| PkiError::Generate {
            what: "certificate from a CSR".to_owned(),
            source,
        };
        let mut csr =
            rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(generate)?;
        csr.params.use_authority_key_identifier_extension = true;
        csr.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = csr.signed_by(&self.issuer).map_err(generate)?;
        Ok(cert.pem())
    }

    /// The directory holding all files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether a leaf certificate is for a server or a client.
#[derive(Clone, Copy)]
enum Role {
    Server,
    Client,
}

/// The validity period of a leaf certificate.
#[derive(Clone, Copy)]
enum Validity {
    /// From 1975 to 4096 (rcgen's default).
    Current,
    /// The year 2000 only.
    Expired,
}

/// Makes a self-signed CA, writes its certificate as `{file}.pem` and returns its issuer.
fn make_ca(
    dir: &Path,
    file: &str,
    common_name: &str,
    options: PkiOptions,
) -> Result<(Issuer<'static, KeyPair>, PathBuf), PkiError> {
    let generate = |source| PkiError::Generate {
        what: common_name.to_owned(),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if let Some(days) = options.ca_expires_in_days {
        let day = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .checked_add(jiff::Span::new().days(days))
            .unwrap_or(jiff::civil::date(2100, 1, 1));
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after =
            rcgen::date_time_ymd(i32::from(day.year()), day.month() as u8, day.day() as u8);
    }
    let cert = params.self_signed(&key).map_err(generate)?;
    let path = dir.join(format!("{file}.pem"));
    write_file(&path, cert.pem().as_bytes(), 0o644)?;
    Ok((Issuer::new(params, key), path))
}

/// Issues a leaf certificate named `name` (file names and common name) and writes it.
fn issue(
    dir: &Path,
    name: &str,
    issuer: &Issuer<'_, KeyPair>,
    role: Role,
    validity: Validity,
) -> Result<CertPaths, PkiError> {
    issue_named(dir, name, name, issuer, role, validity)
}

/// A gateway's global name, the common name of its device certificate: `org/site/id`.
pub fn gateway_name(org: &str, site: &str, id: &str) -> String {
    format!("{org}/{site}/{id}")
}

/// Issues a leaf certificate with files `{file}.pem`/`{file}.key` and the given common name.
fn issue_named(
    dir: &Path,
    file: &str,
    common_name: &str,
    issuer: &Issuer<'_, KeyPair>,
    role: Role,
    validity: Validity,
) -> Result<CertPaths, PkiError> {
    let name = file;
    let generate = |source| PkiError::Generate {
        what: name.to_owned(),
        source,
    };
    let key = KeyPair::generate().map_err(generate)?;
    let mut params = match role {
        Role::Server => CertificateParams::new(SERVER_NAMES.map(String::from).to_vec()),
        Role::Client => Ok(CertificateParams::default()),
    }
    .map_err(generate)?;
    params.distinguished_name = common_name_dn(common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    if let Validity::Expired = validity {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).map_err(generate)?;
    let paths = CertPaths {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    write_file(&paths.cert, cert.pem().as_bytes(), 0o644)?;
    write_file(&paths.key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(paths)
}

/// A subject with the common name; a gateway name `org/site/id` also gets O = org, OU = site,
/// as `hl7edge provision` writes them.
fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let [org, site, _id] = common_name.split('/').collect::<Vec<_>>()[..] {
        dn.push(DnType::OrganizationName, org);
        dn.push(DnType::OrganizationalUnitName, site);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Creates `path` (which must not exist) with `mode` and writes `contents`.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| write_error(path, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| write_error(path, source))?;
    // The process umask may have cleared bits; set the mode exactly.
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|source| write_error(path, source))
}

fn write_error(path: &Path, source: std::io::Error) -> PkiError {
    PkiError::Write {
        path: path.to_owned(),
        source,
    }
}

/// An Ed25519 key pair for signed pushes as central IT makes one, with the README's two
/// `openssl` commands (Debian's openssl package): `(private PKCS#8 PEM, public SPKI PEM)` in
/// `dir` as `{name}.key` and `{name}.pub`.
pub fn org_push_key(dir: &Path, name: &str) -> std::io::Result<(PathBuf, PathBuf)> {
    let (key, public) = (format!("{name}.key"), format!("{name}.pub"));
    let openssl = |args: &[&str]| -> std::io::Result<()> {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("openssl {args:?}: {status}")))
        }
    };
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", &key])?;
    openssl(&["pkey", "-in", &key, "-pubout", "-out", &public])?;
    Ok((dir.join(key), dir.join(public)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn key_files_are_readable_by_their_owner_only() {
        let pki = Pki::generate().unwrap();
        for paths in [
            &pki.broker,
            &pki.agent,
            &pki.expired_client,
            &pki.wrong_ca_client,
        ] {
            let mode = fs::metadata(&paths.key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", paths.key.display());
        }
    }

    #[test]
    fn files_are_pem_and_removed_with_the_pki() {
        let pki = Pki::generate().unwrap();
        let extra = pki.client("second-subscriber").unwrap();
        let ca = fs::read_to_string(&pki.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = fs::read_to_string(&extra.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let dir = pki.dir().to_owned();
        drop(pki);
        assert!(!dir.exists());
    }
}
