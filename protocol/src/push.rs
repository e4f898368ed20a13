//! Signed pushes: a change central IT sends to gateways through the broker (a mapping table for
//! one listener, a listener's settings, a listener switched off or on), signed with the
//! organization's Ed25519 key.
//!
//! # The contract
//!
//! - **Topic**: `{prefix}/{org}/{site}/{gateway}/push/{kind}/{listener}` with `kind` one of
//!   `mapping`, `listener`, `switch` ([`Change::kind`], [`crate::topic::GatewayTopics::push`]),
//!   QoS 1, **retained**: a gateway that was
//!   offline gets the latest push when it connects. Only the hub may publish there (broker ACL);
//!   a gateway reads its own subtree only. A push for a site or the whole organization is the
//!   same signed bytes retained on each gateway's topic.
//! - **Signature**: Ed25519 over [`SIGNING_CONTEXT`] followed by the encoded [`Bundle`]. The
//!   gateway pins the organization's public key ([`PushKey`]); a push whose signature does not
//!   verify with it is refused whatever it says.
//! - **Scope**: the signed [`Bundle::scope`] (`org`, `org/site` or `org/site/gateway`) must
//!   cover the gateway that reads it, so a signed push cannot be replayed on another site's
//!   gateways by whoever can write to their topics.
//! - **Order**: [`Bundle::sequence`] only grows; a gateway refuses a push whose sequence is
//!   lower than the one it runs (no downgrade), and a different push under the sequence it
//!   runs. The same push again (a retained redelivery) is no change.
//!
//! # Encoding
//!
//! Postcard: [`PUSH_SCHEMA_VERSION`], the encoded bundle as a byte string, the signature as a
//! byte string. [`open`] refuses anything over [`MAX_PUSH_BYTES`] before decoding, checks the
//! signature before decoding the bundle, and checks every name of the bundle; decoding is
//! linear in the input and allocates at most its size.
//!
//! A [`Change`] variant is appended, never inserted, so the pushes of an earlier release keep
//! their bytes. A gateway of an earlier release that reads a change it does not know (a variant
//! index past its own) refuses it as [`PushError::UnknownChange`] (`unknown_change`), with the
//! sequence it read, instead of failing on it.

use ring::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The push schema version this crate writes and reads.
pub const PUSH_SCHEMA_VERSION: u16 = 1;

/// The largest push written or read: it must fit the gateway's largest incoming MQTT packet
/// (256 KiB) with its topic. A mapping table of a few thousand rows is well under it.
pub const MAX_PUSH_BYTES: usize = 192 << 10;

/// What the signature covers before the bundle: no signature made for another purpose with
/// the same key verifies as a push.
pub const SIGNING_CONTEXT: &[u8] = b"hl7edge push v1\0";

/// Longest organization, site, gateway or listener name (as the agent's configuration).
const MAX_NAME: usize = 64;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// One signed change, as the hub means it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Who it is for: `org`, `org/site` or `org/site/gateway`.
    pub scope: String,
    /// Only grows from one push to the next (the hub uses the time in ms unless told).
    pub sequence: u64,
    /// When the hub signed it, Unix ms (for people; order is by `sequence`).
    pub issued_at_ms: i64,
    /// What changes.
    pub change: Change,
}

/// What a push changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Listener `listener` codes with this mapping table (the CSV text of a mapping file).
    Mapping {
        /// The listener (`[[listener]] name`).
        listener: String,
        /// The table, as a mapping file holds it.
        table: String,
    },
    /// Listener `listener` runs with these settings: the text of a TOML table with the keys of
    /// the agent's `[[listener]]` (the keys it holds replace the configured ones).
    Listener {
        /// The listener (`[[listener]] name`).
        listener: String,
        /// The TOML text.
        settings: String,
    },
    /// Listener `listener` accepts connections (`enabled`) or refuses them.
    Switch {
        /// The listener (`[[listener]] name`).
        listener: String,
        /// Accepting connections or not.
        enabled: bool,
    },
}

/// How many [`Change`] variants this crate knows (a larger variant index is a change of a later
/// release).
const KNOWN_CHANGES: u32 = 3;

impl Change {
    /// The listener the change is for.
    pub fn listener(&self) -> &str {
        match self {
            Change::Mapping { listener, .. }
            | Change::Listener { listener, .. }
            | Change::Switch { listener, .. } => listener,
        }
    }

    /// The kind of change, as its topic level names it: `mapping`, `listener` or `switch`.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Mapping { .. } => "mapping",
            Change::Listener { .. } => "listener",
            Change::Switch { .. } => "switch",
        }
    }
}

/// The start of a bundle, as every release encodes it: what an agent can still read of a change
/// it does not know.
#[derive(Deserialize)]
struct Head {
    _scope: String,
    sequence: u64,
    _issued_at_ms: i64,
    variant: u32,
}

/// The signed form on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    schema_version: u16,
    bundle: Vec<u8>,
    signature: Vec<u8>,
}

/// Why a push was refused. [`PushError::reason`] is the short fixed word the heartbeat, the
/// audit trail and `status` carry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// Over [`MAX_PUSH_BYTES`].
    #[error("the push is {0} bytes, more than the {MAX_PUSH_BYTES} a gateway reads")]
    TooLarge(usize),
    /// Not a push of a known schema.
    #[error("the push has schema version {0}; this agent reads version {PUSH_SCHEMA_VERSION}")]
    UnknownSchema(u16),
    /// Not decodable.
    #[error("the push does not decode: {0}")]
    Malformed(String),
    /// The signature does not verify with the pinned key.
    #[error("the push's signature does not verify with the pinned organization key")]
    BadSignature,
    /// A change of a later release (variant index past the ones this agent knows).
    #[error(
        "the push (sequence {sequence}) is a kind of change this agent does not know (variant {variant}); upgrade the agent"
    )]
    UnknownChange {
        /// The variant index read.
        variant: u32,
        /// The push's sequence.
        sequence: u64,
    },
    /// A name in the bundle is not a valid name.
    #[error("the push names an invalid {what}")]
    BadName {
        /// Which name.
        what: &'static str,
    },
}

impl PushError {
    /// The short fixed word for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::TooLarge(_) => "too_large",
            PushError::UnknownSchema(_) | PushError::Malformed(_) => "malformed",
            PushError::BadSignature => "bad_signature",
            PushError::BadName { .. } => "bad_name",
            PushError::UnknownChange { .. } => "unknown_change",
        }
    }
}

/// A key that is not an Ed25519 key of the expected form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct KeyError(&'static str);

impl Default for KeyError {
    fn default() -> KeyError {
        KeyError("not an Ed25519 private key (PKCS#8)")
    }
}

/// The organization's public key, as a gateway pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushKey([u8; 32]);

impl PushKey {
    /// From a DER SubjectPublicKeyInfo (the body of a `PUBLIC KEY` PEM block).
    pub fn from_spki_der(der: &[u8]) -> Result<PushKey, KeyError> {
        let key = der.strip_prefix(&ED25519_SPKI_PREFIX[..]).ok_or(KeyError(
            "not an Ed25519 public key (SubjectPublicKeyInfo, RFC 8410)",
        ))?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| KeyError("an Ed25519 public key has 32 bytes"))?;
        Ok(PushKey(key))
    }

    /// The DER SubjectPublicKeyInfo of this key.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        der
    }

    /// A short name of the key for people: `ed25519:` and the first 8 bytes of its SHA-256.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("ed25519:{hex}")
    }
}

/// The organization's signing key (the hub side).
pub struct PushSigner(Ed25519KeyPair);

impl std::fmt::Debug for PushSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PushSigner")
            .field(&self.public_key())
            .finish()
    }
}

impl PushSigner {
    /// From a PKCS#8 DER Ed25519 private key (the body of a `PRIVATE KEY` PEM block, as
    /// `openssl genpkey -algorithm ed25519` writes it).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PushSigner, KeyError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(PushSigner)
            .map_err(|_| KeyError("not an Ed25519 private key (PKCS#8)"))
    }

    /// The public key gateways pin.
    pub fn public_key(&self) -> PushKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.0.public_key().as_ref());
        PushKey(key)
    }

    /// The signed bytes of `bundle`.
    pub fn seal(&self, bundle: &Bundle) -> Result<Vec<u8>, PushError> {
        check(bundle)?;
        let body = encode_bundle(bundle)?;
        let signature = self.0.sign(&signed_bytes(&body)).as_ref().to_vec();
        let sealed = Sealed {
            schema_version: PUSH_SCHEMA_VERSION,
            bundle: body,
            signature,
        };
        let bytes =
            postcard::to_stdvec(&sealed).map_err(|e| PushError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_PUSH_BYTES {
            return Err(PushError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    signed.extend_from_slice(SIGNING_CONTEXT);
    signed.extend_from_slice(body);
    signed
}

/// Checks the size, the schema, the signature with `key`, then decodes and checks the bundle.
pub fn open(bytes: &[u8], key: &PushKey) -> Result<Bundle, PushError> {
    if bytes.len() > MAX_PUSH_BYTES {
        return Err(PushError::TooLarge(bytes.len()));
    }
    let (schema, _) =
        postcard::take_from_bytes::<u16>(bytes).map_err(|e| PushError::Malformed(e.to_string()))?;
    if schema != PUSH_SCHEMA_VERSION {
        return Err(PushError::UnknownSchema(schema));
    }
    let (sealed, rest) = postcard::take_from_bytes::<Sealed>(bytes)
        .map_err(|e| PushError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PushError::Malformed(format!(
            "{} bytes after the push",
            rest.len()
        )));
    }
    UnparsedPublicKey::new(&signature::ED25519, &key.0)
        .verify(&signed_bytes(&sealed.bundle), &sealed.signature)
        .map_err(|_| PushError::BadSignature)?;
    decode_bundle(&sealed.bundle)
}

/// The encoded bundle (what the signature covers, after [`SIGNING_CONTEXT`]).
pub fn encode_bundle(bundle: &Bundle) -> Result<Vec<u8>, PushError> {
    postcard::to_stdvec(bundle).map_err(|e| PushError::Malformed(e.to_string()))
}

/// Decodes and checks the bundle inside a push (after its signature verified: [`open`] is what
/// the gateway calls; this is its decoding half, public for fuzzing).
pub fn decode_bundle(bytes: &[u8]) -> Result<Bundle, PushError> {
    let (bundle, rest) = match postcard::take_from_bytes::<Bundle>(bytes) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Err(match postcard::take_from_bytes::<Head>(bytes) {
                Ok((head, _)) if head.variant >= KNOWN_CHANGES => PushError::UnknownChange {
                    variant: head.variant,
                    sequence: head.sequence,
                },
                _ => PushError::Malformed(e.to_string()),
            });
        }
    };
    if !rest.is_empty() {
        return Err(PushError::Malformed(format!(
            "{} bytes after the bundle",
            rest.len()
        )));
    }
    check(&bundle)?;
    Ok(bundle)
}

/// The SHA-256 of a push's bytes, hex: what identifies one push (a redelivery has the same).
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `scope` (`org`, `org/site` or `org/site/gateway`) covers this gateway.
pub fn covers(scope: &str, org: &str, site: &str, gateway: &str) -> bool {
    let parts: Vec<&str> = scope.split('/').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .zip([org, site, gateway])
            .all(|(p, own)| *p == own)
}

/// The names of a bundle are names the agent's configuration could hold.
fn check(bundle: &Bundle) -> Result<(), PushError> {
    let levels: Vec<&str> = bundle.scope.split('/').collect();
    if levels.len() > 3 || !levels.iter().all(|l| valid_name(l, true)) {
        return Err(PushError::BadName { what: "scope" });
    }
    if !valid_name(bundle.change.listener(), false) {
        return Err(PushError::BadName { what: "listener" });
    }
    Ok(())
}

/// Lowercase letters, digits, `-`, `_` (and `.` in identities), 1 to 64 characters: the
/// agent's configuration's rule for names.
fn valid_name(name: &str, dot: bool) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || c == '_'
                || (dot && c == '.')
        })
}

#[cfg(test)]
mod tests;
