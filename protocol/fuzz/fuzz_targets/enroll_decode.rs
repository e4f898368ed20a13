//! Fuzzes the enrollment decoders (`hl7edge_protocol::enroll`) with arbitrary bytes: the hub
//! reads requests from any holder of a claim certificate, and a box reads answers from the
//! broker, so neither is trusted.
//!
//! Checked: no panic, no allocation out of proportion (libFuzzer's limits); whatever decodes
//! encodes again and decodes to an equal value; a decoded request keeps its field limits.

#![no_main]

use hl7edge_protocol::enroll::{EnrollAnswer, EnrollRequest, MAX_CSR_BYTES, split_gateway};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = EnrollRequest::decode(data) {
        assert!(!request.csr_der.is_empty() && request.csr_der.len() <= MAX_CSR_BYTES);
        assert!(split_gateway(&request.gateway).is_some());
        let back = EnrollRequest::decode(&request.encode()).expect("an encoded request decodes");
        assert_eq!(back, request);
    }
    if let Ok(answer) = EnrollAnswer::decode(data) {
        let back = EnrollAnswer::decode(&answer.encode()).expect("an encoded answer decodes");
        assert_eq!(back, answer);
    }
});
