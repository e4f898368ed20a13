//! TLS configuration from PEM files: the hub client (mutual TLS) and the
//! optional MLLP-over-TLS server.
//!
//! Every error names the file it is about and what was expected in it, so a
//! field technician can fix the right file. The crypto provider is `ring`
//! (small, builds for aarch64 without extra tools); TLS 1.2 and 1.3 only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds no usable certificate.
    #[error(
        "{path}: no PEM certificate could be read ({reason}); expected a file with -----BEGIN CERTIFICATE-----"
    )]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key file could not be read or holds no private key.
    #[error(
        "{path}: no PEM private key could be read ({reason}); expected a PKCS#8, SEC1 or PKCS#1 key"
    )]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A CA file holds certificates rustls refuses as trust anchors.
    #[error("{path}: not a usable CA certificate: {source}")]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The certificate and key do not belong together, or rustls refused them.
    #[error("{cert} with {key}: {source} (does the key belong to the certificate?)")]
    CertifiedKey {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA.
    #[error("{path}: cannot verify client certificates with this CA: {reason}")]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("the file holds no certificate".into()));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::PrivateKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Trust anchors from a CA file.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::TrustAnchor {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

/// The hub client: trusts only `ca` and presents `cert`/`key`.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = Arc::new(load_roots(ca)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Verifier {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let pair_err = |source| TlsError::CertifiedKey {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(pair_err)?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key_der)
        .map_err(pair_err)?;
    Ok(Arc::new(config))
}

/// The MLLP-over-TLS server; with `client_ca`, clients must present a
/// certificate issued by it.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let pair_err = |source| TlsError::CertifiedKey {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(pair_err)?;
    let builder = match client_ca {
        Some(ca) => {
            let roots = Arc::new(load_roots(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Verifier {
                    path: ca.to_path_buf(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(pair_err)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named_in_the_error() {
        let e = load_certs(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/ca.pem:"), "{e}");
        let e = load_key(Path::new("/nonexistent/device.key")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/device.key"), "{e}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("hl7edge-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = load_certs(&path).unwrap_err();
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
