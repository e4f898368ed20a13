//! Fuzzes the wire decoders with arbitrary bytes: what a hub receives from
//! the broker, what the agent reads back from its queue, and the custody
//! receipts a gateway receives, is not trusted.
//!
//! Checked: no panic (and no allocation out of proportion: libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` catch those); whatever decodes
//! encodes again and decodes to an equal value (the compact record form is
//! positional, so a lenient reader that accepted two spellings of one value
//! would show up here).

#![no_main]

use hl7edge_protocol::receipt::Receipt;
use hl7edge_protocol::wire::{Envelope, StoredRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        let again = envelope.encode().expect("a decoded envelope encodes");
        let back = Envelope::decode(&again).expect("an encoded envelope decodes");
        assert_eq!(back, envelope);
    }
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
});
