//! `provision --install-cert`: checks the certificate central IT signed before it replaces
//! anything: it must be a certificate a TLS client can use (X.509 v3, not a CA, allowed for
//! client authentication and digital signatures), belong to this gateway's key, chain to the
//! configured hub CA and be valid now. Only then is it written, atomically, to the configured
//! certificate path (mode 0644). Each refusal says in words what is wrong and what central IT
//! must do ([`fix`]), with the exact signing command where a signing mistake is the cause.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::config::{Config, HubTls, HubTransport};
use crate::device_cert::{self, CertDates, CertProblem};

use super::ProvisionError;
use super::files::{self, PUBLIC};
use super::signing;

/// Checks `file` against the configuration at `config` and installs it; returns the installed
/// certificate's dates and where it went.
pub fn install(
    config: &Path,
    file: &Path,
    now: Timestamp,
) -> Result<(CertDates, PathBuf), ProvisionError> {
    let loaded = Config::load(config).map_err(ProvisionError::Configured)?;
    let HubTransport::Tls(tls) = loaded.hub.transport else {
        return Err(ProvisionError::Plaintext);
    };
    let chain = crate::tls::load_certs(file)?;
    let key = crate::tls::load_key(&tls.key)?;
    let roots = crate::tls::load_roots(&tls.ca)?;
    let rejected = |problem| ProvisionError::Rejected {
        fix: fix(&problem, file, &tls),
        file: file.to_path_buf(),
        problem,
    };
    let leaf = chain
        .first()
        .map(device_cert::dates)
        .transpose()
        .map_err(rejected)?
        .ok_or_else(|| rejected(CertProblem::Unparsable("no certificate".into())))?;
    if let Some(first) = chain.first() {
        device_cert::client_profile(first).map_err(rejected)?;
    }
    device_cert::verify_key_matches(chain.clone(), &key).map_err(rejected)?;
    device_cert::verify_chain(&chain, roots, now).map_err(rejected)?;
    let bytes = std::fs::read(file).map_err(|source| files::WriteError {
        path: file.to_path_buf(),
        source,
    })?;
    files::write_atomic(&tls.cert, &bytes, PUBLIC, true)?;
    Ok((leaf, tls.cert))
}

/// What to do about a refused certificate, in plain words.
fn fix(problem: &CertProblem, file: &Path, tls: &HubTls) -> String {
    let csr = tls.key.with_extension("csr");
    match problem {
        CertProblem::KeyMismatch => format!(
            "{} was signed for another key, not this gateway's {}: send this gateway's request {} to central IT and install the certificate they return for it",
            file.display(),
            tls.key.display(),
            csr.display()
        ),
        CertProblem::WrongIssuer => format!(
            "ask central IT for a certificate signed by the hub CA ({}); if the hub CA itself changed, put the new CA file there first",
            tls.ca.display()
        ),
        CertProblem::Expired { .. } => format!(
            "ask central IT to sign {} again with a current validity period",
            csr.display()
        ),
        CertProblem::NotYetValid { .. } => {
            "check the clock (timedatectl; set-ntp true); if it is right, ask central IT why the certificate starts in the future".into()
        }
        CertProblem::Version1 => format!(
            "ask central IT to sign {} again as an X.509 v3 client certificate (extendedKeyUsage = clientAuth), then install that one:\n{}",
            csr.display(),
            signing::recipe(&csr, "  ")
        ),
        CertProblem::NotForClients { .. } => format!(
            "a gateway logs in to the broker as a TLS client: ask central IT to sign {} again with extendedKeyUsage = clientAuth (a server certificate cannot be used), then install that one:\n{}",
            csr.display(),
            signing::recipe(&csr, "  ")
        ),
        CertProblem::NoDigitalSignature { .. } => format!(
            "ask central IT to sign {} again with keyUsage = critical, digitalSignature (and extendedKeyUsage = clientAuth), then install that one:\n{}",
            csr.display(),
            signing::recipe(&csr, "  ")
        ),
        CertProblem::CaCertificate => format!(
            "this is a CA's certificate (perhaps the hub CA itself), not the one signed for this gateway: install the certificate central IT signed from {}",
            csr.display()
        ),
        CertProblem::Unparsable(_) | CertProblem::Rejected(_) => format!(
            "ask central IT for the certificate signed from {} again, as a PEM file (-----BEGIN CERTIFICATE-----); if they sent it that way, tell them what is printed above",
            csr.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::provision::setup::{self, Identity, ListenerFlag, Settings};

    /// A provisioned directory: CA, device key and configuration; returns the issuer and the
    /// layout.
    fn provisioned(dir: &Path) -> (Issuer<'static, KeyPair>, setup::Layout) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "hub CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let layout = setup::Layout::new(&dir.join("hl7edge.toml"), dir);
        std::fs::write(&layout.ca, ca_cert.pem()).unwrap();
        std::fs::write(&layout.key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let identity = Identity {
            org: "acme".into(),
            site: "s1".into(),
            gateway: "gw-1".into(),
        };
        let text = setup::config_text(&Settings {
            identity: &identity,
            layout: &layout,
            hub_url: "mqtts://hub.example.org:8883",
            listeners: &[ListenerFlag::parse("lab=0.0.0.0:2575").unwrap()],
            allow: &["10.0.0.0/24".to_owned()],
            storage: &dir.join("queue.db"),
            push_key: false,
        })
        .unwrap();
        std::fs::write(&layout.config, text).unwrap();
        (Issuer::new(ca, ca_key), layout)
    }

    fn signed_for(key: &KeyPair, issuer: &Issuer<'_, KeyPair>, path: &Path) {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "gw-1");
        std::fs::write(path, params.signed_by(key, issuer).unwrap().pem()).unwrap();
    }

    #[test]
    fn a_certificate_for_the_device_key_is_installed_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, layout) = provisioned(dir.path());
        let device = KeyPair::from_pem(&std::fs::read_to_string(&layout.key).unwrap()).unwrap();
        let signed = dir.path().join("signed.pem");
        signed_for(&device, &issuer, &signed);
        let (dates, path) = install(&layout.config, &signed, Timestamp::now()).unwrap();
        assert_eq!(path, layout.cert);
        assert_eq!(dates.subject, "CN=gw-1");
        let mode = std::fs::metadata(&layout.cert)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_certificate_for_another_key_is_refused_and_nothing_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, layout) = provisioned(dir.path());
        let signed = dir.path().join("other.pem");
        signed_for(&KeyPair::generate().unwrap(), &issuer, &signed);
        let err = install(&layout.config, &signed, Timestamp::now()).unwrap_err();
        let ProvisionError::Rejected { problem, fix, .. } = err else {
            panic!("expected a refusal, got {err}")
        };
        assert!(matches!(problem, CertProblem::KeyMismatch), "{problem}");
        assert!(fix.contains("device.csr"), "{fix}");
        assert!(!layout.cert.exists());
    }

    #[test]
    fn a_version_1_certificate_is_refused_with_the_v3_signing_command() {
        let dir = tempfile::tempdir().unwrap();
        let (_, layout) = provisioned(dir.path());
        let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provision/testdata/v1-client.pem");
        let err = install(&layout.config, &v1, Timestamp::now()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("X.509 version 1"), "{text}");
        assert!(text.contains("nothing was installed"), "{text}");
        assert!(
            text.contains("-extfile client.ext") && text.contains("extendedKeyUsage = clientAuth"),
            "the fix shows the signing command: {text}"
        );
        assert!(!layout.cert.exists());
    }

    #[test]
    fn a_server_certificate_is_refused_as_not_for_clients() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, layout) = provisioned(dir.path());
        let device = KeyPair::from_pem(&std::fs::read_to_string(&layout.key).unwrap()).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "gw-1");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let signed = dir.path().join("server.pem");
        std::fs::write(&signed, params.signed_by(&device, &issuer).unwrap().pem()).unwrap();
        let text = install(&layout.config, &signed, Timestamp::now())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("only for server authentication (serverAuth)"),
            "{text}"
        );
        assert!(text.contains("extendedKeyUsage = clientAuth"), "{text}");
        assert!(!layout.cert.exists());
    }

    #[test]
    fn without_a_configuration_the_reason_and_the_flag_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("hl7edge.toml");
        let text = install(&missing, &dir.path().join("signed.pem"), Timestamp::now())
            .unwrap_err()
            .to_string();
        assert!(text.contains("No such file or directory"), "{text}");
        assert!(text.contains("--config FILE"), "{text}");
    }
}
