use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::*;

fn cert(params: CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn named(parts: &[(DnType, &str)]) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    params.distinguished_name = dn;
    params
}

/// The fields as x509-parser, an independent reader, sees them.
fn reference(der: &[u8]) -> (u8, String, i64, i64) {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    (
        (c.version().0 + 1) as u8,
        c.subject().to_string(),
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    )
}

#[test]
fn a_device_certificate_reads_as_an_independent_reader_reads_it() {
    let mut params = named(&[
        (DnType::OrganizationName, "acme"),
        (DnType::OrganizationalUnitName, "s1"),
        (DnType::CommonName, "acme/s1/gw-1"),
    ]);
    params.not_before = rcgen::date_time_ymd(2026, 1, 2);
    params.not_after = rcgen::date_time_ymd(2051, 3, 4);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let der = cert(params);
    let f = read(&der).unwrap();
    assert_eq!(
        (f.version, f.subject.clone(), f.not_before, f.not_after),
        reference(&der)
    );
    assert_eq!(f.subject, "O=acme, OU=s1, CN=acme/s1/gw-1");
    assert_eq!(f.common_name.as_deref(), Some("acme/s1/gw-1"));
    assert!(f.allows_client_auth());
    assert!(f.allows_digital_signature());
    assert_eq!(f.ca, None);
}

#[test]
fn a_server_certificate_names_its_usages_and_refuses_client_authentication() {
    let mut params = named(&[(DnType::CommonName, "broker")]);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::Other(vec![1, 2, 3, 4]),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let f = read(&cert(params)).unwrap();
    assert!(!f.allows_client_auth());
    assert_eq!(
        f.ext_key_usage_words(),
        "server authentication (serverAuth) and OID 1.2.3.4"
    );
    assert!(!f.allows_digital_signature());
    assert_eq!(f.key_usage_words(), "keyEncipherment, keyCertSign");
}

#[test]
fn a_ca_certificate_says_so_and_one_without_extensions_allows_everything() {
    let mut params = named(&[(DnType::CommonName, "hub CA")]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    assert_eq!(read(&cert(params)).unwrap().ca, Some(true));
    let plain = read(&cert(named(&[(DnType::CommonName, "x")]))).unwrap();
    assert!(plain.allows_client_auth() && plain.allows_digital_signature());
    assert_eq!(plain.key_usage_words(), "nothing");
}

#[test]
fn bytes_that_are_not_a_certificate_are_an_error_that_says_so() {
    assert!(read(b"").is_err());
    assert!(read(b"-----BEGIN CERTIFICATE-----").is_err());
    let der = cert(named(&[(DnType::CommonName, "x")]));
    let err = read(&der[..der.len() - 1]).unwrap_err();
    assert!(
        err.to_string().starts_with("not a DER X.509 certificate"),
        "{err}"
    );
    let mut longer = der.clone();
    longer.push(0);
    assert!(read(&longer).is_err());
}

#[test]
fn a_length_near_the_end_of_memory_is_an_error_not_an_overflow() {
    // Found by the cert_fields fuzz target: yasna added this length to its position unchecked.
    let der = include_bytes!("crash-overflowing-length.der");
    assert!(read(der).is_err());
    // The same in a few bytes: a sequence claiming 2^32 - 1 bytes, and one inside a sequence.
    assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
    assert!(read(&[0x30, 0x06, 0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(
        read(&[
            0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0
        ])
        .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_subject_reads_as_the_independent_reader_reads_it(
        cn in "[ -~]{1,40}",
        org in proptest::option::of("[a-zA-Z0-9 ]{1,20}"),
        years in 1u16..60,
    ) {
        let mut parts = vec![];
        if let Some(org) = &org {
            parts.push((DnType::OrganizationName, org.as_str()));
        }
        parts.push((DnType::CommonName, cn.as_str()));
        let mut params = named(&parts);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000 + i32::from(years) * 2, 6, 30);
        let der = cert(params);
        let f = read(&der).unwrap();
        prop_assert_eq!(f.common_name.as_deref(), Some(cn.as_str()));
        prop_assert_eq!((f.version, f.subject, f.not_before, f.not_after), reference(&der));
    }

    #[test]
    fn any_damage_to_a_certificate_is_an_error_or_a_reading_never_a_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = cert(named(&[(DnType::CommonName, "gw")]));
        let i = at.index(der.len());
        der[i] = byte;
        let _ = read(&der);
        let _ = read(&der[..cut.index(der.len())]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read(&bytes);
    }
}
