use proptest::prelude::*;

use super::*;

fn signer(seed: u8) -> PushSigner {
    PushSigner(Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("a seed is a key"))
}

fn bundle(sequence: u64) -> Bundle {
    Bundle {
        scope: "acme-health/clinic-12".to_owned(),
        sequence,
        issued_at_ms: 1_700_000_000_000,
        change: Change::Mapping {
            listener: "lab".to_owned(),
            table: "kind,local_system,local_code,target_system,target_code\n".to_owned(),
        },
    }
}

#[test]
fn a_sealed_push_opens_with_the_signers_public_key_only() {
    let org = signer(1);
    let sealed = org.seal(&bundle(7)).unwrap();
    assert_eq!(open(&sealed, &org.public_key()).unwrap(), bundle(7));
    assert_eq!(
        open(&sealed, &signer(2).public_key()),
        Err(PushError::BadSignature)
    );
}

#[test]
fn a_changed_byte_anywhere_is_refused() {
    let org = signer(1);
    let sealed = org.seal(&bundle(7)).unwrap();
    for at in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        assert!(open(&bad, &org.public_key()).is_err(), "byte {at}");
    }
}

#[test]
fn an_oversized_push_is_refused_before_decoding() {
    let big = vec![0u8; MAX_PUSH_BYTES + 1];
    assert_eq!(
        open(&big, &signer(1).public_key()),
        Err(PushError::TooLarge(MAX_PUSH_BYTES + 1))
    );
}

#[test]
fn another_schema_version_is_named() {
    let mut sealed = signer(1).seal(&bundle(1)).unwrap();
    sealed[0] = 2;
    assert_eq!(
        open(&sealed, &signer(1).public_key()),
        Err(PushError::UnknownSchema(2))
    );
}

#[test]
fn a_bundle_with_a_topic_wildcard_in_a_name_is_not_signed() {
    let mut b = bundle(1);
    b.scope = "acme/#".to_owned();
    assert_eq!(
        signer(1).seal(&b),
        Err(PushError::BadName { what: "scope" })
    );
    let mut b = bundle(1);
    b.change = Change::Mapping {
        listener: "Lab".to_owned(),
        table: String::new(),
    };
    assert_eq!(
        signer(1).seal(&b),
        Err(PushError::BadName { what: "listener" })
    );
}

#[test]
fn a_scope_covers_its_organization_site_or_gateway_only() {
    let me = ("acme", "clinic-12", "gw-1");
    let covers = |scope| covers(scope, me.0, me.1, me.2);
    assert!(covers("acme"));
    assert!(covers("acme/clinic-12"));
    assert!(covers("acme/clinic-12/gw-1"));
    assert!(!covers("other"));
    assert!(!covers("acme/clinic-13"));
    assert!(!covers("acme/clinic-12/gw-2"));
    assert!(!covers("acme/clinic-12/gw-1/extra"));
    assert!(!covers(""));
}

#[test]
fn the_public_key_round_trips_through_its_spki_form() {
    let key = signer(3).public_key();
    assert_eq!(PushKey::from_spki_der(&key.to_spki_der()).unwrap(), key);
    assert!(PushKey::from_spki_der(&key.to_spki_der()[1..]).is_err());
    assert!(key.fingerprint().starts_with("ed25519:"));
}

#[test]
fn a_mapping_push_keeps_the_bytes_of_the_first_release() {
    let b = Bundle {
        scope: "a".to_owned(),
        sequence: 1,
        issued_at_ms: 2,
        change: Change::Mapping {
            listener: "l".to_owned(),
            table: "t".to_owned(),
        },
    };
    assert_eq!(
        postcard::to_stdvec(&b).unwrap(),
        [1, b'a', 1, 4, 0, 1, b'l', 1, b't']
    );
}

#[test]
fn listener_settings_and_switches_open_as_signed() {
    let org = signer(3);
    for change in [
        Change::Listener {
            listener: "lab".to_owned(),
            settings: "bind = \"0.0.0.0:2576\"\n".to_owned(),
        },
        Change::Switch {
            listener: "lab".to_owned(),
            enabled: false,
        },
    ] {
        let b = Bundle {
            change,
            ..bundle(11)
        };
        assert_eq!(open(&org.seal(&b).unwrap(), &org.public_key()).unwrap(), b);
    }
}

#[test]
fn a_change_of_a_later_release_is_refused_as_unknown_with_its_sequence() {
    // scope "a", sequence 5, issued at 2, variant 7, then whatever that variant holds.
    let later = [1, b'a', 5, 4, 7, 1, b'l', 0x2a];
    assert_eq!(
        decode_bundle(&later),
        Err(PushError::UnknownChange {
            variant: 7,
            sequence: 5
        })
    );
    assert_eq!(
        decode_bundle(&later).unwrap_err().reason(),
        "unknown_change"
    );
    // A known variant cut short is malformed, not unknown.
    assert!(matches!(
        decode_bundle(&[1, b'a', 5, 4, 1, 9]),
        Err(PushError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn arbitrary_bundle_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(b) = decode_bundle(&bytes) {
            prop_assert_eq!(decode_bundle(&postcard::to_stdvec(&b).unwrap()).unwrap(), b);
        }
    }

    #[test]
    fn every_valid_listener_change_round_trips(sequence in any::<u64>(), settings in ".{0,400}", enabled in any::<bool>()) {
        let org = signer(9);
        for change in [
            Change::Listener { listener: "lab_1".to_owned(), settings: settings.clone() },
            Change::Switch { listener: "lab_1".to_owned(), enabled },
        ] {
            let b = Bundle { scope: "acme".to_owned(), sequence, issued_at_ms: 0, change };
            prop_assert_eq!(open(&org.seal(&b).unwrap(), &org.public_key()).unwrap(), b);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(open(&bytes, &signer(1).public_key()).is_err());
    }

    #[test]
    fn every_valid_bundle_round_trips(sequence in any::<u64>(), at in any::<i64>(), table in ".{0,400}") {
        let b = Bundle {
            scope: "acme/site-1/gw.1".to_owned(),
            sequence,
            issued_at_ms: at,
            change: Change::Mapping { listener: "lab_1".to_owned(), table },
        };
        let org = signer(9);
        prop_assert_eq!(open(&org.seal(&b).unwrap(), &org.public_key()).unwrap(), b);
    }
}
