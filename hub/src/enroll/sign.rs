//! Signing a box's request with the organization's device CA.
//!
//! The certificate names what the allowlist says, never what the request asks for: subject
//! `O=org, OU=site, CN=org/site/gateway` (the broker's user name for the ACL, as for a
//! provisioned box), X.509 v3, `keyUsage = critical, digitalSignature`, `extendedKeyUsage =
//! clientAuth`, not a CA, valid from yesterday for `days` days, a random 128-bit serial. Only
//! the request's public key (after its signature is checked) is taken from it.

use hl7edge_protocol::enroll::split_gateway;
use jiff::{Timestamp, tz::TimeZone};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls_pki_types::CertificateSigningRequestDer;

/// The organization's device CA: its certificate and key.
pub struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
}

/// Why the CA files cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct CaError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Why a request cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The request cannot be read or its signature does not verify.
    #[error("the request cannot be read or its signature is wrong: {0}")]
    Request(rcgen::Error),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(rcgen::Error),
    /// The gateway name is not `org/site/gateway`.
    #[error("the gateway name is not org/site/gateway")]
    Gateway,
}

impl DeviceCa {
    /// Loads the CA certificate and key (PEM).
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<DeviceCa, CaError> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| CaError {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let key_pair = KeyPair::from_pem(&read(key)?).map_err(|e| CaError {
            path: key.display().to_string(),
            reason: format!("not a PEM private key rcgen can sign with ({e})"),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&read(cert)?, key_pair).map_err(|e| CaError {
            path: cert.display().to_string(),
            reason: format!("not a PEM CA certificate ({e})"),
        })?;
        Ok(DeviceCa { issuer })
    }

    /// The request's public key, after its signature is verified (for the nonce check).
    pub fn request_key(csr_der: &[u8]) -> Result<CertificateSigningRequestParams, SignError> {
        CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(SignError::Request)
    }

    /// Signs a certificate for `gateway` over the key of `request`; returns its PEM.
    pub fn sign(
        &self,
        request: &CertificateSigningRequestParams,
        gateway: &str,
        days: u16,
        now: Timestamp,
        serial: [u8; 16],
    ) -> Result<String, SignError> {
        let (org, site, _) = split_gateway(gateway).ok_or(SignError::Gateway)?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::OrganizationName, org);
        subject.push(DnType::OrganizationalUnitName, site);
        subject.push(DnType::CommonName, gateway);
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let mut serial = serial;
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let day = |offset: i64| {
            let date = now
                .to_zoned(TimeZone::UTC)
                .date()
                .checked_add(jiff::Span::new().days(offset))
                .unwrap_or(jiff::civil::date(2000, 1, 1));
            rcgen::date_time_ymd(
                i32::from(date.year()),
                u8::try_from(date.month()).unwrap_or(1),
                u8::try_from(date.day()).unwrap_or(1),
            )
        };
        params.not_before = day(-1);
        params.not_after = day(i64::from(days));
        params
            .signed_by(&request.public_key, &self.issuer)
            .map(|cert| cert.pem())
            .map_err(SignError::Sign)
    }
}

/// The raw public key of a verified request (the bytes the box's nonce is made from).
pub fn raw_key(request: &CertificateSigningRequestParams) -> &[u8] {
    request.public_key.der_bytes()
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams};
    use x509_parser::prelude::*;

    use super::*;

    fn ca(dir: &std::path::Path) -> DeviceCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "device CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
        DeviceCa::load(&dir.join("ca.pem"), &dir.join("ca.key")).unwrap()
    }

    #[test]
    fn the_certificate_names_the_allowlisted_gateway_not_what_the_request_asked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let key = KeyPair::generate().unwrap();
        let mut asked = CertificateParams::default();
        asked
            .distinguished_name
            .push(DnType::CommonName, "hl7edge-ingest");
        let csr = asked.serialize_request(&key).unwrap();
        let request = DeviceCa::request_key(csr.der()).unwrap();
        assert_eq!(raw_key(&request), key.public_key_raw());
        let pem = ca
            .sign(&request, "acme/s1/gw-1", 30, Timestamp::now(), [0xff; 16])
            .unwrap();
        let (_, parsed) = parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = parsed.parse_x509().unwrap();
        assert_eq!(cert.subject().to_string(), "O=acme, OU=s1, CN=acme/s1/gw-1");
        assert_eq!(cert.version(), X509Version::V3);
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
        assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 31);
    }

    #[test]
    fn a_request_with_a_broken_signature_or_garbage_is_refused() {
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let mut bytes = csr.der().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(DeviceCa::request_key(&bytes).is_err());
        assert!(DeviceCa::request_key(b"garbage").is_err());
        assert!(DeviceCa::request_key(&[]).is_err());
    }
}
