//! Golden-byte tests: the custody receipt encoding is pinned byte for byte.
//!
//! If a change to `receipt::Receipt` makes these fail, the receipt wire
//! format changed. That is allowed only deliberately (see the module doc of
//! `hl7edge_protocol::receipt` for what may be appended without a version
//! bump); regenerate with `UPDATE_GOLDEN=1 cargo test -p hl7edge-protocol
//! --test receipt_golden` and review the diff of the `.bin` file.

use std::path::PathBuf;

use hl7edge_protocol::receipt::{RECEIPT_SCHEMA_VERSION, Receipt, ReceiptError};
use uuid::Uuid;

fn sample_receipt() -> Receipt {
    Receipt::new(
        "acme-health/clinic-12/gw-0001",
        [
            Uuid::from_u128(0x0193_4f6a_1b2c_7d3e_8f40_1234_5678_9abc),
            Uuid::from_u128(0x0193_4f6a_1b2d_7000_8000_0000_0000_0001),
        ],
    )
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn receipt_encoding_matches_the_golden_file() {
    let bytes = sample_receipt().encode().unwrap();
    let path = golden("receipt_v1.bin");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let expected = std::fs::read(&path).expect("golden file missing: run with UPDATE_GOLDEN=1");
    assert_eq!(bytes, expected, "the receipt encoding changed");
}

#[test]
fn golden_file_decodes_to_the_same_receipt() {
    let bytes = std::fs::read(golden("receipt_v1.bin")).unwrap();
    assert_eq!(Receipt::decode(&bytes).unwrap(), sample_receipt());
}

#[test]
fn the_layout_is_version_gateway_then_sixteen_bytes_per_id() {
    let bytes = sample_receipt().encode().unwrap();
    let gateway = b"acme-health/clinic-12/gw-0001";
    assert_eq!(bytes[0], 1, "schema version first");
    assert_eq!(usize::from(bytes[1]), gateway.len());
    assert_eq!(&bytes[2..2 + gateway.len()], gateway);
    assert_eq!(usize::from(bytes[2 + gateway.len()]), 32, "two ids");
    assert_eq!(bytes.len(), 3 + gateway.len() + 32);
}

#[test]
fn an_unknown_schema_version_is_refused_clearly() {
    let mut bytes = sample_receipt().encode().unwrap();
    bytes[0] = 9;
    match Receipt::decode(&bytes) {
        Err(ReceiptError::UnknownSchema {
            found: 9,
            supported,
        }) => {
            assert_eq!(supported, RECEIPT_SCHEMA_VERSION)
        }
        other => panic!("expected UnknownSchema, got {other:?}"),
    }
    let text = Receipt::decode(&bytes).unwrap_err().to_string();
    assert!(
        text.contains("version 9") && text.contains("upgrade"),
        "{text}"
    );
}

#[test]
fn truncated_payloads_are_malformed_not_panics() {
    let bytes = sample_receipt().encode().unwrap();
    for cut in 0..bytes.len() {
        assert!(Receipt::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}
