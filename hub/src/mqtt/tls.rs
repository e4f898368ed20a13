//! The TLS client configuration for the broker: trusts only `--ca` and
//! presents `--cert`/`--key` (mutual TLS). Crypto provider `ring`, TLS 1.2
//! and 1.3, like the agent.
//!
//! Every error names the flag and the file, so the fix is obvious.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file holds no readable certificate.
    #[error(
        "{flag} {path}: no PEM certificate could be read ({reason}); expected -----BEGIN CERTIFICATE-----"
    )]
    Certificates {
        /// The command-line flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file holds no readable private key.
    #[error(
        "--key {path}: no PEM private key could be read ({reason}); expected a PKCS#8, SEC1 or PKCS#1 key"
    )]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The CA file cannot serve as trust anchors.
    #[error("--ca {path}: not a usable CA certificate: {reason}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The certificate and key do not belong together, or rustls refused them.
    #[error("--cert {cert} with --key {key}: {source} (does the key belong to the certificate?)")]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
}

/// Builds the client configuration from the three PEM files.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(roots(ca)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Ca {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    let chain = certs("--cert", cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::PrivateKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let pair = |source| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(pair)?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key_der)
        .map_err(pair)?;
    Ok(Arc::new(config))
}

fn certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Certificates {
        flag,
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

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs("--ca", path)? {
        roots.add(cert).map_err(|e| TlsError::Ca {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_names_the_flag_and_the_file() {
        let e = client_config(
            Path::new("/nonexistent/ca.pem"),
            Path::new("/nonexistent/hub.pem"),
            Path::new("/nonexistent/hub.key"),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("--ca /nonexistent/ca.pem:"), "{text}");
    }
}
