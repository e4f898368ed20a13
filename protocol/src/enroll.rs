//! Enrollment by claim: a box that holds only a claim credential (a certificate shared by a batch
//! of boxes, good for nothing but enrolling) asks the hub's `hl7edge-hub enroll` to sign a
//! certificate request it made itself, and gets its device certificate back over MQTT.
//!
//! # Topics
//!
//! ```text
//! {prefix}/enroll/{claim}/{nonce}/request   box -> hub, QoS 1   (an EnrollRequest)
//! {prefix}/enroll/{claim}/{nonce}/answer    hub -> box, QoS 1   (an EnrollAnswer)
//! ```
//!
//! A claim certificate's common name is `enroll/{claim}` ([`claim_from_common_name`]): the
//! broker takes it as the user name (`use_identity_as_username`), so the ACL pattern
//! `hl7edge/v1/%u/+/request` lets a claim write only under its own name and the hub learns from
//! the topic which claim a request came under, vouched for by the broker rather than by the
//! payload. The two-level name also keeps everything a claim reaches through the gateway
//! patterns (`hl7edge/v1/%u/records/#`, ...) under the organization `enroll`, which
//! `crate::topic::reserved_org` reserves: no gateway has it and every hub tool refuses it.
//! `{nonce}` is
//! [`key_nonce`] of the box's new public key: the box subscribes to its answer topic before it
//! publishes the request, retries on the same topic while it keeps the same key, and the hub
//! refuses a request whose nonce is not that of the request's own key.
//!
//! # What the topics promise, and what they cannot
//!
//! - Only the hub's enroll user may write answers (ACL), so a claim holder cannot answer another
//!   box; and the box installs only a certificate that chains to the hub CA and belongs to its
//!   own key, so a forged answer would be refused anyway.
//! - Claim holders of one batch share a user name, so one of them may subscribe to
//!   `.../enroll/{claim}/+/answer` and read the other boxes' answers. An answer carries only a
//!   certificate (public by nature; useless without the private key, which never leaves its
//!   box) or a refusal word, so this reveals a gateway's name and nothing secret.
//! - A claim holder may ask for any gateway name on the allowlist: the allowlist (each entry
//!   bound to the first key it is signed for) is what stops a second box from taking a name.
//!
//! # Encoding
//!
//! Postcard, [`ENROLL_SCHEMA_VERSION`] first. Decoders refuse a payload over
//! [`MAX_ENROLL_PAYLOAD`] before reading it, refuse another schema version by name, and check
//! every field's size, so no payload costs more than its own length (fuzz target
//! `enroll_decode`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The enrollment schema version this crate writes and reads.
pub const ENROLL_SCHEMA_VERSION: u16 = 1;

/// Largest request or answer payload accepted (a CSR is a few hundred bytes; a chain a few KiB).
pub const MAX_ENROLL_PAYLOAD: usize = 64 * 1024;

/// Most bytes of a DER certificate request.
pub const MAX_CSR_BYTES: usize = 8 * 1024;

/// Characters of a nonce: 32 lowercase hex digits (128 bits of the key's SHA-256).
pub const NONCE_LEN: usize = 32;

/// A box's request: who it says it is and the certificate request it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// Always [`ENROLL_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u16,
    /// The gateway name the box is configured with, `org/site/id`.
    pub gateway: String,
    /// The certificate request (PKCS#10, DER), signed with the box's new key.
    pub csr_der: Vec<u8>,
}

/// The hub's answer on the box's answer topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollAnswer {
    /// Always [`ENROLL_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u16,
    /// The gateway name of the request answered.
    pub gateway: String,
    /// Signed, or refused.
    pub outcome: Outcome,
}

/// What the hub decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The device certificate (PEM, leaf first, then any intermediates).
    Issued {
        /// The chain, PEM.
        chain_pem: String,
    },
    /// Refused, for a reason from a fixed list.
    Refused(Refusal),
}

/// Why the hub refused a request: a fixed list of words, so an answer carries no free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The gateway is not on the allowlist for this claim.
    NotAllowed,
    /// The gateway was already enrolled with another key.
    AlreadyEnrolled,
    /// The request cannot be read, its signature is wrong, or its nonce is not its key's.
    BadRequest,
    /// The hub could not sign (its CA files, its ledger); worth retrying later.
    HubError,
}

impl Refusal {
    /// Every refusal, for documentation and tests.
    pub const ALL: [Refusal; 4] = [
        Refusal::NotAllowed,
        Refusal::AlreadyEnrolled,
        Refusal::BadRequest,
        Refusal::HubError,
    ];

    /// The word logged, audited and shown in `status`.
    pub fn word(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::AlreadyEnrolled => "already_enrolled",
            Refusal::BadRequest => "bad_request",
            Refusal::HubError => "hub_error",
        }
    }
}

/// Why an enrollment payload was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollDecodeError {
    /// Larger than [`MAX_ENROLL_PAYLOAD`].
    #[error("{0} bytes is more than an enrollment message may have ({MAX_ENROLL_PAYLOAD})")]
    TooLarge(usize),
    /// Not postcard of the expected shape.
    #[error("not an enrollment message: {0}")]
    Malformed(String),
    /// Another schema version.
    #[error(
        "enrollment schema version {0} is not the one this build reads ({ENROLL_SCHEMA_VERSION})"
    )]
    Version(u16),
    /// A field breaks its limit (a CSR over [`MAX_CSR_BYTES`], a gateway name that is not
    /// `org/site/id`).
    #[error("enrollment field {0} is out of bounds")]
    Field(&'static str),
}

impl EnrollRequest {
    /// A request for `gateway` with `csr_der`.
    pub fn new(gateway: &str, csr_der: Vec<u8>) -> Self {
        EnrollRequest {
            schema_version: ENROLL_SCHEMA_VERSION,
            gateway: gateway.to_owned(),
            csr_der,
        }
    }

    /// The postcard bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes and checks a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnrollDecodeError> {
        let request: EnrollRequest = decode(bytes)?;
        check_version(request.schema_version)?;
        if request.csr_der.is_empty() || request.csr_der.len() > MAX_CSR_BYTES {
            return Err(EnrollDecodeError::Field("csr_der"));
        }
        if split_gateway(&request.gateway).is_none() {
            return Err(EnrollDecodeError::Field("gateway"));
        }
        Ok(request)
    }
}

impl EnrollAnswer {
    /// An answer for `gateway`.
    pub fn new(gateway: &str, outcome: Outcome) -> Self {
        EnrollAnswer {
            schema_version: ENROLL_SCHEMA_VERSION,
            gateway: gateway.to_owned(),
            outcome,
        }
    }

    /// The postcard bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes and checks an answer.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnrollDecodeError> {
        let answer: EnrollAnswer = decode(bytes)?;
        check_version(answer.schema_version)?;
        Ok(answer)
    }
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, EnrollDecodeError> {
    if bytes.len() > MAX_ENROLL_PAYLOAD {
        return Err(EnrollDecodeError::TooLarge(bytes.len()));
    }
    // Postcard checks every length prefix against the bytes present, and serde preallocates at
    // most a bounded amount for a sequence, so the cost is bounded by the (capped) input.
    postcard::from_bytes(bytes).map_err(|e| EnrollDecodeError::Malformed(e.to_string()))
}

fn check_version(version: u16) -> Result<(), EnrollDecodeError> {
    if version == ENROLL_SCHEMA_VERSION {
        Ok(())
    } else {
        Err(EnrollDecodeError::Version(version))
    }
}

/// `org/site/id` split in three non-empty levels without MQTT wildcards, or `None`.
pub fn split_gateway(gateway: &str) -> Option<(&str, &str, &str)> {
    let mut parts = gateway.split('/');
    let (org, site, id) = (parts.next()?, parts.next()?, parts.next()?);
    let level_ok = |s: &str| {
        !s.is_empty() && s.len() <= 64 && !s.contains(crate::topic::TOPIC_UNSAFE.as_slice())
    };
    (parts.next().is_none() && level_ok(org) && level_ok(site) && level_ok(id))
        .then_some((org, site, id))
}

/// The nonce of a public key: the first 128 bits of the SHA-256 of its raw bytes (the
/// subjectPublicKey bit string), as 32 lowercase hex digits.
pub fn key_nonce(public_key_raw: &[u8]) -> String {
    Sha256::digest(public_key_raw)[..NONCE_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The topics of one enrollment: `{prefix}/enroll/{claim}/{nonce}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollTopics {
    root: String,
}

impl EnrollTopics {
    /// Topics for a box of claim `claim` (the claim certificate's CN) with `nonce`.
    pub fn new(prefix: &str, claim: &str, nonce: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        let org = crate::topic::ENROLL_ORG;
        EnrollTopics {
            root: format!("{prefix}/{org}/{claim}/{nonce}"),
        }
    }

    /// Where the box publishes its request.
    pub fn request(&self) -> String {
        format!("{}/request", self.root)
    }

    /// Where the hub answers.
    pub fn answer(&self) -> String {
        format!("{}/answer", self.root)
    }
}

/// The hub's filter for every request, optionally through a shared subscription group.
pub fn all_requests_filter(prefix: &str) -> String {
    format!("{}/enroll/+/+/request", prefix.trim_end_matches('/'))
}

/// The claim and nonce of a request topic under `prefix`, or `None` for any other topic.
pub fn parse_request_topic<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, &'t str)> {
    let rest = topic
        .strip_prefix(prefix.trim_end_matches('/'))?
        .strip_prefix("/enroll/")?;
    let mut levels = rest.split('/');
    let (claim, nonce, last) = (levels.next()?, levels.next()?, levels.next()?);
    (levels.next().is_none() && last == "request" && !claim.is_empty() && !nonce.is_empty())
        .then_some((claim, nonce))
}

/// The claim a claim certificate's common name stands for: the CN is `enroll/{claim}`
/// ([`crate::topic::ENROLL_ORG`], then a name [`claim_name_ok`] accepts), or `None`.
pub fn claim_from_common_name(common_name: &str) -> Option<&str> {
    common_name
        .strip_prefix(crate::topic::ENROLL_ORG)?
        .strip_prefix('/')
        .filter(|claim| claim_name_ok(claim))
}

/// True when `level` may be a claim name in a topic: a non-empty single level without MQTT
/// wildcards (the ACL's `%u` cannot stand for a name with `+` or `#`).
pub fn claim_name_ok(level: &str) -> bool {
    !level.is_empty() && level.len() <= 64 && !level.contains(crate::topic::TOPIC_UNSAFE.as_slice())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let t = EnrollTopics::new("hl7edge/v1/", "claim-2026a", "ab12");
        assert_eq!(t.request(), "hl7edge/v1/enroll/claim-2026a/ab12/request");
        assert_eq!(t.answer(), "hl7edge/v1/enroll/claim-2026a/ab12/answer");
        assert_eq!(
            all_requests_filter("hl7edge/v1"),
            "hl7edge/v1/enroll/+/+/request"
        );
        assert_eq!(
            parse_request_topic("hl7edge/v1", &t.request()),
            Some(("claim-2026a", "ab12"))
        );
        assert_eq!(parse_request_topic("hl7edge/v1", &t.answer()), None);
        assert_eq!(
            parse_request_topic("hl7edge/v1", "hl7edge/v1/enroll/a/b/c/request"),
            None
        );
    }

    #[test]
    fn a_claim_certificates_name_is_enroll_then_one_claim_level() {
        assert_eq!(
            claim_from_common_name("enroll/claim-acme-2026a"),
            Some("claim-acme-2026a")
        );
        for cn in [
            "claim-acme-2026a",
            "enroll",
            "enroll/",
            "enroll/a/b",
            "enroll/+",
            "enroll/#",
            "Enroll/claim",
            "enrollx/claim",
            "acme/clinic-12/gw-1",
        ] {
            assert_eq!(claim_from_common_name(cn), None, "{cn}");
        }
    }

    #[test]
    fn a_request_and_an_answer_survive_the_round_trip() {
        let request = EnrollRequest::new("acme/s1/gw-1", vec![0x30, 0x82, 1, 2]);
        assert_eq!(EnrollRequest::decode(&request.encode()), Ok(request));
        for outcome in Refusal::ALL
            .map(Outcome::Refused)
            .into_iter()
            .chain([Outcome::Issued {
                chain_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            }])
        {
            let answer = EnrollAnswer::new("acme/s1/gw-1", outcome);
            assert_eq!(EnrollAnswer::decode(&answer.encode()), Ok(answer));
        }
    }

    #[test]
    fn a_request_naming_no_gateway_or_an_empty_csr_is_refused_by_field() {
        let bad_name = EnrollRequest::new("acme/s1", vec![1]).encode();
        assert_eq!(
            EnrollRequest::decode(&bad_name),
            Err(EnrollDecodeError::Field("gateway"))
        );
        let wildcard = EnrollRequest::new("acme/+/gw", vec![1]).encode();
        assert_eq!(
            EnrollRequest::decode(&wildcard),
            Err(EnrollDecodeError::Field("gateway"))
        );
        let empty = EnrollRequest::new("acme/s1/gw-1", Vec::new()).encode();
        assert_eq!(
            EnrollRequest::decode(&empty),
            Err(EnrollDecodeError::Field("csr_der"))
        );
        let huge = EnrollRequest::new("acme/s1/gw-1", vec![0; MAX_CSR_BYTES + 1]).encode();
        assert_eq!(
            EnrollRequest::decode(&huge),
            Err(EnrollDecodeError::Field("csr_der"))
        );
    }

    #[test]
    fn another_schema_version_is_refused_by_number() {
        let mut answer = EnrollAnswer::new("a/b/c", Outcome::Refused(Refusal::NotAllowed));
        answer.schema_version = 2;
        assert_eq!(
            EnrollAnswer::decode(&answer.encode()),
            Err(EnrollDecodeError::Version(2))
        );
    }

    #[test]
    fn a_payload_over_the_limit_is_refused_before_it_is_read() {
        let bytes = vec![0u8; MAX_ENROLL_PAYLOAD + 1];
        assert_eq!(
            EnrollRequest::decode(&bytes),
            Err(EnrollDecodeError::TooLarge(MAX_ENROLL_PAYLOAD + 1))
        );
    }

    #[test]
    fn the_nonce_is_32_hex_digits_and_depends_on_the_key() {
        let a = key_nonce(b"key a");
        assert_eq!(a.len(), NONCE_LEN);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, key_nonce(b"key b"));
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_decoders_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = EnrollRequest::decode(&bytes);
            let _ = EnrollAnswer::decode(&bytes);
        }

        #[test]
        fn any_request_within_limits_round_trips(
            org in "[a-z0-9-]{1,16}", site in "[a-z0-9-]{1,16}", id in "[a-z0-9-]{1,16}",
            csr in proptest::collection::vec(any::<u8>(), 1..MAX_CSR_BYTES),
        ) {
            let request = EnrollRequest::new(&format!("{org}/{site}/{id}"), csr);
            prop_assert_eq!(EnrollRequest::decode(&request.encode()), Ok(request));
        }

        #[test]
        fn a_truncated_request_never_decodes_as_another(
            csr in proptest::collection::vec(any::<u8>(), 1..512), cut in 0usize..600,
        ) {
            let bytes = EnrollRequest::new("o/s/g", csr.clone()).encode();
            let cut = cut.min(bytes.len());
            if let Ok(decoded) = EnrollRequest::decode(&bytes[..cut]) {
                prop_assert_eq!(cut, bytes.len());
                prop_assert_eq!(decoded.csr_der, csr);
            }
        }
    }
}
