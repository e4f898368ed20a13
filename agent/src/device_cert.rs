//! What the gateway can tell about its own client certificate without the network: whether it
//! chains to the hub CA, whether the device key belongs to it, and its validity window.
//!
//! Used by `provision --install-cert` (before a certificate is installed) and by `doctor`. The
//! PEM files are read with [`crate::tls`]; chain verification is rustls' own client-certificate
//! verifier (webpki), so a certificate accepted here is one the broker's kind of check accepts
//! too. Dates are read with `hl7edge_protocol::x509`.
//!
//! Invariant: nothing here reads the clock; the caller passes "now", so the checks are
//! deterministic and testable.

use std::path::Path;
use std::sync::Arc;

use hl7edge_protocol::x509;
use jiff::Timestamp;
use rustls::pki_types::UnixTime;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, Error as RustlsError, InconsistentKeys, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a device certificate is not usable.
#[derive(Debug, thiserror::Error)]
pub enum CertProblem {
    /// The certificate's validity ended before now.
    #[error("the certificate expired on {not_after}")]
    Expired {
        /// End of validity.
        not_after: Timestamp,
    },
    /// The certificate's validity starts after now (or the local clock is behind).
    #[error("the certificate is valid only from {not_before}, and the local clock says {now}")]
    NotYetValid {
        /// Start of validity.
        not_before: Timestamp,
        /// The time used for the check.
        now: Timestamp,
    },
    /// The certificate was not issued by (does not chain to) the hub CA.
    #[error("the certificate was not issued by the hub CA")]
    WrongIssuer,
    /// The private key does not belong to the certificate.
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    /// The certificate is X.509 version 1: it carries no extensions, so nothing says it may
    /// authenticate a client (what `openssl x509 -req` makes without `-extfile`).
    #[error(
        "it is an X.509 version 1 certificate: it carries no extensions, and TLS clients need version 3 (with extendedKeyUsage = clientAuth)"
    )]
    Version1,
    /// The certificate's extended key usage does not include client authentication (a server
    /// certificate, say).
    #[error(
        "it may be used only for {usages} (its extendedKeyUsage), not to log in to the broker as a client (clientAuth)"
    )]
    NotForClients {
        /// What its extended key usage allows, in words.
        usages: String,
    },
    /// The certificate's key usage does not allow the digital signature a TLS client makes.
    #[error(
        "its keyUsage ({usages}) does not allow digitalSignature, which a TLS client needs to prove it holds the key"
    )]
    NoDigitalSignature {
        /// What its key usage allows, in words.
        usages: String,
    },
    /// The certificate is a CA certificate (perhaps the hub CA itself), not a device's.
    #[error("it is a CA certificate (basicConstraints CA:TRUE), not a certificate for a device")]
    CaCertificate,
    /// The certificate cannot be read as X.509.
    #[error("the certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// rustls refused the certificate or key for another reason.
    #[error("{0}")]
    Rejected(RustlsError),
}

/// The validity window and subject of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDates {
    /// The subject, as `CN=..., O=...`.
    pub subject: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
}

impl CertDates {
    /// Whole days from `now` until the certificate expires (negative once expired).
    pub fn days_left(&self, now: Timestamp) -> i64 {
        self.not_after.as_second().saturating_sub(now.as_second()) / 86_400
    }
}

/// Reads the subject and validity window of a DER certificate.
pub fn dates(cert: &CertificateDer<'_>) -> Result<CertDates, CertProblem> {
    let fields = fields(cert)?;
    let stamp =
        |t: i64| Timestamp::from_second(t).map_err(|e| CertProblem::Unparsable(e.to_string()));
    Ok(CertDates {
        subject: fields.subject,
        not_before: stamp(fields.not_before)?,
        not_after: stamp(fields.not_after)?,
    })
}

fn fields(cert: &CertificateDer<'_>) -> Result<x509::Fields, CertProblem> {
    x509::read(cert.as_ref()).map_err(|e| CertProblem::Unparsable(e.to_string()))
}

/// Checks that a DER certificate is one a TLS client can authenticate with: X.509 version 3,
/// not a CA, an extended key usage (when it has one) that includes `clientAuth`, and a key
/// usage (when it has one) that includes `digitalSignature`. The checks the broker's TLS
/// library makes, named one by one so each can be explained.
pub fn client_profile(cert: &CertificateDer<'_>) -> Result<(), CertProblem> {
    let fields = fields(cert)?;
    if fields.version == 1 {
        return Err(CertProblem::Version1);
    }
    if fields.ca == Some(true) {
        return Err(CertProblem::CaCertificate);
    }
    if !fields.allows_client_auth() {
        return Err(CertProblem::NotForClients {
            usages: fields.ext_key_usage_words(),
        });
    }
    if !fields.allows_digital_signature() {
        return Err(CertProblem::NoDigitalSignature {
            usages: fields.key_usage_words(),
        });
    }
    Ok(())
}

/// The subject and validity window of the first (leaf) certificate of `chain`.
pub fn leaf_dates(chain: &[CertificateDer<'_>]) -> Result<CertDates, CertProblem> {
    chain
        .first()
        .ok_or_else(|| CertProblem::Unparsable("the file holds no certificate".into()))
        .and_then(dates)
}

/// Reads the subject and validity window of the first certificate in the PEM file at `path`:
/// the one place the agent reads a certificate's dates from a file (`doctor`, telemetry).
pub fn file_dates(path: &Path) -> Result<CertDates, FileCheckError> {
    Ok(leaf_dates(&crate::tls::load_certs(path)?)?)
}

/// Checks that `chain` (leaf first, then any intermediates) chains to one of `roots` for client
/// authentication at `now`, and that the leaf is within its validity window.
pub fn verify_chain(
    chain: &[CertificateDer<'static>],
    roots: RootCertStore,
    now: Timestamp,
) -> Result<(), CertProblem> {
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| CertProblem::Unparsable("the file holds no certificate".into()))?;
    client_profile(leaf)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| CertProblem::Rejected(RustlsError::General(e.to_string())))?;
    let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now.as_second()).unwrap_or(0),
    ));
    match verifier.verify_client_cert(leaf, intermediates, unix) {
        Ok(_) => Ok(()),
        Err(err) => Err(classify(err, leaf, now)),
    }
}

/// Maps a rustls verification error onto a [`CertProblem`], with the dates where it is about
/// time.
fn classify(err: RustlsError, leaf: &CertificateDer<'_>, now: Timestamp) -> CertProblem {
    let known = dates(leaf).ok();
    match (&err, known) {
        (
            RustlsError::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ),
            Some(d),
        ) => CertProblem::Expired {
            not_after: d.not_after,
        },
        (
            RustlsError::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ),
            Some(d),
        ) => CertProblem::NotYetValid {
            not_before: d.not_before,
            now,
        },
        (
            RustlsError::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ),
            _,
        ) => CertProblem::WrongIssuer,
        (
            RustlsError::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
            ),
            _,
        ) => CertProblem::NotForClients {
            usages: "other purposes".to_owned(),
        },
        _ => CertProblem::Rejected(err),
    }
}

/// Checks that `key` is the private key of the leaf of `chain`.
pub fn verify_key_matches(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<(), CertProblem> {
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(CertProblem::Rejected)?;
    match CertifiedKey::new(chain, signing).keys_match() {
        Ok(()) => Ok(()),
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(CertProblem::KeyMismatch)
        }
        Err(other) => Err(CertProblem::Rejected(other)),
    }
}

/// Reads `cert` (PEM chain), `key` and the CA file and runs every offline check: chain to the
/// CA at `now`, key match. Returns the leaf's dates on success, so callers can report expiry.
pub fn check_files(
    ca: &Path,
    cert: &Path,
    key: &Path,
    now: Timestamp,
) -> Result<CertDates, FileCheckError> {
    let chain = crate::tls::load_certs(cert)?;
    let key_der = crate::tls::load_key(key)?;
    let roots = crate::tls::load_roots(ca)?;
    let leaf_dates = leaf_dates(&chain)?;
    verify_key_matches(chain.clone(), &key_der)?;
    verify_chain(&chain, roots, now)?;
    Ok(leaf_dates)
}

/// [`check_files`] failed: a file could not be read, or the certificate is not usable.
#[derive(Debug, thiserror::Error)]
pub enum FileCheckError {
    /// A PEM file could not be read.
    #[error(transparent)]
    Files(#[from] crate::tls::TlsError),
    /// The certificate is not usable.
    #[error(transparent)]
    Cert(#[from] CertProblem),
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    use super::*;

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: CertificateDer<'static>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn client(ca: &Ca, years: Option<(i32, i32)>) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "gw-1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some((from, to)) = years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        (cert.der().clone(), key)
    }

    fn roots(ca: &Ca) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(ca.der.clone()).unwrap();
        roots
    }

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
        rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into()
    }

    #[test]
    fn a_certificate_from_the_hub_ca_with_its_key_passes() {
        let ca = ca("hub CA");
        let (cert, key) = client(&ca, Some((2026, 2027)));
        verify_chain(std::slice::from_ref(&cert), roots(&ca), now()).unwrap();
        verify_key_matches(vec![cert.clone()], &key_der(&key)).unwrap();
        let d = dates(&cert).unwrap();
        assert_eq!(d.days_left(now()), 214);
        assert!(d.subject.contains("CN=gw-1"), "{}", d.subject);
    }

    #[test]
    fn an_expired_certificate_reports_its_end_date() {
        let ca = ca("hub CA");
        let (cert, _) = client(&ca, Some((2000, 2001)));
        let err = verify_chain(&[cert], roots(&ca), now()).unwrap_err();
        assert!(
            matches!(err, CertProblem::Expired { not_after } if not_after.to_string() == "2001-01-01T00:00:00Z"),
            "{err:?}"
        );
    }

    #[test]
    fn a_certificate_valid_only_in_the_future_says_so() {
        let ca = ca("hub CA");
        let (cert, _) = client(&ca, Some((2030, 2031)));
        let err = verify_chain(&[cert], roots(&ca), now()).unwrap_err();
        assert!(matches!(err, CertProblem::NotYetValid { .. }), "{err:?}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_the_wrong_issuer() {
        let (hub, other) = (ca("hub CA"), ca("other CA"));
        let (cert, _) = client(&other, None);
        let err = verify_chain(&[cert], roots(&hub), now()).unwrap_err();
        assert!(matches!(err, CertProblem::WrongIssuer), "{err:?}");
    }

    #[test]
    fn the_dates_of_a_pem_certificate_file_are_read() {
        // Self-signed test certificate (no key kept), notAfter 2036-11-19 22:03:17 UTC.
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/telemetry/testdata/expires-2036.pem");
        let d = file_dates(&path).unwrap();
        assert_eq!(d.not_after.as_millisecond(), 2_110_744_997_000);
    }

    #[test]
    fn a_missing_or_non_pem_file_has_no_dates() {
        let err = file_dates(Path::new("/nonexistent/hl7edge/cert.pem")).unwrap_err();
        assert!(matches!(err, FileCheckError::Files(_)), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("cert.pem");
        std::fs::write(&garbage, "not a pem").unwrap();
        assert!(file_dates(&garbage).is_err());
        assert!(matches!(leaf_dates(&[]), Err(CertProblem::Unparsable(_))));
    }

    fn leaf(configure: impl FnOnce(&mut CertificateParams)) -> CertificateDer<'static> {
        let ca = ca("hub CA");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "gw-1");
        configure(&mut params);
        params.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    #[test]
    fn a_version_1_certificate_is_named_as_such() {
        // Made by `openssl x509 -req -signkey` without -extfile: X.509 version 1.
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provision/testdata/v1-client.pem");
        let chain = crate::tls::load_certs(&path).unwrap();
        assert!(matches!(
            client_profile(&chain[0]),
            Err(CertProblem::Version1)
        ));
        let err = verify_chain(&chain, RootCertStore::empty(), now()).unwrap_err();
        assert!(matches!(err, CertProblem::Version1), "{err:?}");
        assert!(err.to_string().contains("version 1"), "{err}");
    }

    #[test]
    fn a_server_only_certificate_is_not_for_clients() {
        let cert = leaf(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]);
        let err = client_profile(&cert).unwrap_err();
        assert!(
            matches!(&err, CertProblem::NotForClients { usages } if usages == "server authentication (serverAuth)"),
            "{err:?}"
        );
        assert!(err.to_string().contains("clientAuth"), "{err}");
    }

    #[test]
    fn a_ca_certificate_or_one_without_digital_signature_is_refused() {
        let ca_cert = leaf(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained));
        assert!(matches!(
            client_profile(&ca_cert),
            Err(CertProblem::CaCertificate)
        ));
        let no_sign = leaf(|p| p.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment]);
        let err = client_profile(&no_sign).unwrap_err();
        assert!(
            matches!(&err, CertProblem::NoDigitalSignature { usages } if usages == "keyEncipherment"),
            "{err:?}"
        );
        let plain = leaf(|_| {});
        client_profile(&plain).expect("no extended key usage at all is allowed");
    }

    #[test]
    fn another_key_does_not_match() {
        let ca = ca("hub CA");
        let (cert, _) = client(&ca, None);
        let stranger = KeyPair::generate().unwrap();
        let err = verify_key_matches(vec![cert], &key_der(&stranger)).unwrap_err();
        assert!(matches!(err, CertProblem::KeyMismatch), "{err:?}");
    }
}
