//! Fuzzes the certificate field reader with arbitrary bytes: a certificate file is put on the
//! box by hand (or answered by the hub), and `doctor` and `provision` read it before anything
//! else has checked it.
//!
//! Checked: no panic, no allocation out of proportion; a certificate that reads has a version
//! of 1 to 3 and its usages in words.

#![no_main]

use hl7edge_protocol::x509;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = x509::read(data) {
        assert!((1..=3).contains(&fields.version));
        let _ = fields.key_usage_words();
        let _ = fields.ext_key_usage_words();
    }
});
