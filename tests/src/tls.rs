//! rustls configurations for the harness's own clients (the MQTT subscriber and the MLLP
//! sender) and for scripted TLS peers in tests, built from PEM files such as those written by
//! [`crate::pki`].
//!
//! Invariant: every configuration uses the `ring` crypto provider explicitly, so nothing depends
//! on a process-wide default provider being installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki::CertPaths;

/// What can go wrong while building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("reading {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls rejected a certificate, key or setting.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate verifier could not be built from the CA file.
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The `ring` crypto provider, shared by every configuration made here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts the CA certificates in `ca` and, when `identity` is given,
/// presents that client certificate.
pub fn client_config(
    ca: &Path,
    identity: Option<&CertPaths>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = Arc::new(root_store(ca)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider()).build()?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier);
    let config = match identity {
        Some(identity) => {
            builder.with_client_auth_cert(load_certs(&identity.cert)?, load_key(&identity.key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server configuration presenting `identity` and, when `client_ca` is given, requiring client
/// certificates issued by it (for scripted TLS peers in tests).
pub fn server_config(
    identity: &CertPaths,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
                    .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(load_certs(&identity.cert)?, load_key(&identity.key)?)?;
    Ok(Arc::new(config))
}

/// A root store holding every certificate in the PEM file `ca`.
pub fn root_store(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::UnixTime;

    use super::*;
    use crate::pki::Pki;

    fn verify_client(pki: &Pki, client: &CertPaths) -> Result<(), rustls::Error> {
        let roots = Arc::new(root_store(&pki.ca).unwrap());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .unwrap();
        let chain = load_certs(&client.cert).unwrap();
        verifier
            .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn client_certificates_verify_only_under_their_own_valid_ca() {
        let pki = Pki::generate().unwrap();
        assert!(verify_client(&pki, &pki.agent).is_ok());
        assert!(verify_client(&pki, &pki.subscriber).is_ok());
        let wrong = verify_client(&pki, &pki.wrong_ca_client).unwrap_err();
        assert!(format!("{wrong:?}").contains("UnknownIssuer"), "{wrong:?}");
        let expired = verify_client(&pki, &pki.expired_client).unwrap_err();
        assert!(format!("{expired:?}").contains("Expired"), "{expired:?}");
    }

    #[test]
    fn a_client_config_loads_a_ca_and_an_identity() {
        let pki = Pki::generate().unwrap();
        let with_cert = client_config(&pki.ca, Some(&pki.agent)).unwrap();
        assert!(with_cert.client_auth_cert_resolver.has_certs());
        let without = client_config(&pki.ca, None).unwrap();
        assert!(!without.client_auth_cert_resolver.has_certs());
    }
}
