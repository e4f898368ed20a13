//! Fuzzes the wire decoders with arbitrary bytes: what a hub receives from
//! the broker, what the agent reads back from its queue, and the custody
//! receipts and signed pushes a gateway receives, is not trusted.
//!
//! Also the heartbeat and status decoders, and the envelope read entry by
//! entry as the hub reads it (the same entries as decoding it whole).
//!
//! Checked: no panic (and no allocation out of proportion: libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` catch those); whatever decodes
//! encodes again and decodes to an equal value (the compact record form is
//! positional, so a lenient reader that accepted two spellings of one value
//! would show up here).

#![no_main]

use hl7edge_protocol::push::{self, PushKey};
use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::telemetry::{Heartbeat, Status};
use hl7edge_protocol::wire::{Envelope, EnvelopeReader, StoredRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = Envelope::decode(data);
    if let Ok(envelope) = &whole {
        let again = envelope.encode().expect("a decoded envelope encodes");
        let back = Envelope::decode(&again).expect("an encoded envelope decodes");
        assert_eq!(&back, envelope);
    }
    // Entry by entry (as the hub reads): the same entries, up to the first bad one.
    if let Ok(reader) = EnvelopeReader::new(data) {
        let read: Vec<_> = reader.collect();
        match &whole {
            Ok(envelope) => {
                let entries: Vec<_> = read.into_iter().map(|e| e.expect("decodes whole")).collect();
                assert_eq!(entries, envelope.entries);
            }
            Err(_) => assert!(read.last().is_none_or(|e| e.is_err())),
        }
    }
    if let Ok(heartbeat) = Heartbeat::decode(data) {
        // Compared as bytes: a heartbeat may carry a NaN (hours_until_full), which is not
        // equal to itself.
        let again = heartbeat.encode().expect("a decoded heartbeat encodes");
        let back = Heartbeat::decode(&again).expect("an encoded heartbeat decodes");
        assert_eq!(back.encode().expect("encodes again"), again);
    }
    let _ = Status::decode(data);
    if let Ok(stored) = StoredRecord::decode(data) {
        let again = stored.encode().expect("a decoded stored record encodes");
        let back = StoredRecord::decode(&again).expect("an encoded stored record decodes");
        assert_eq!(back, stored);
    }
    if let Ok(receipt) = Receipt::decode(data) {
        let again = receipt.encode().expect("a decoded receipt encodes");
        let back = Receipt::decode(&again).expect("an encoded receipt decodes");
        assert_eq!(back, receipt);
        assert!(receipt.ids.len() * 16 <= data.len(), "ids beyond the input");
    }
    // A push never opens without its signature (the key is fixed; only a forged signature
    // could open, which libFuzzer cannot find): no panic, bounded work.
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(&[7u8; 32]);
    let key = PushKey::from_spki_der(&spki).expect("an Ed25519 key");
    assert!(push::open(data, &key).is_err());
    // The bundle's decoder (what runs once a signature verified), every kind of change and the
    // changes of later releases: what decodes encodes to a bundle that decodes equal.
    if let Ok(bundle) = push::decode_bundle(data) {
        let again = push::encode_bundle(&bundle).expect("a decoded bundle encodes");
        assert_eq!(push::decode_bundle(&again), Ok(bundle));
    }
});
