//! The few fields of an X.509 certificate the gateway explains to people: version, subject,
//! validity, and the basic-constraints, key-usage and extended-key-usage extensions.
//!
//! Read with `yasna`'s DER reader (the gateway links it already for the CSRs `rcgen` writes),
//! walking the RFC 5280 structure and keeping nothing else: the chain, the signature and the
//! key are rustls' and webpki's business, which check every certificate this module describes.
//!
//! Invariants:
//! - pure: bytes in, fields out; no clock, no files;
//! - strict DER (yasna's DER mode): input that is not a well-formed certificate is an error
//!   naming what did not read, never a panic; work and memory are linear in the input;
//! - yasna is handed only bytes whose every element, nested ones included, is a definite length
//!   that fits what holds it ([`well_formed`]): its reader adds a claimed length to its position
//!   unchecked, which a length near `usize::MAX` overflows (found by the `cert_fields` fuzz
//!   target).

use yasna::models::ObjectIdentifier;
use yasna::{ASN1Error, ASN1ErrorKind, BERReader, BERReaderSeq, Tag};

/// `id-ce-keyUsage`.
const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
/// `id-ce-basicConstraints`.
const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
/// `id-ce-extKeyUsage`.
const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
/// `anyExtendedKeyUsage`.
const ANY_USAGE: &[u64] = &[2, 5, 29, 37, 0];
/// `id-kp-clientAuth`.
pub const CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];

/// The extended key usages named in words (RFC 5280 4.2.1.12).
const NAMED_USAGES: [(&[u64], &str); 6] = [
    (
        &[1, 3, 6, 1, 5, 5, 7, 3, 1],
        "server authentication (serverAuth)",
    ),
    (CLIENT_AUTH, "client authentication (clientAuth)"),
    (&[1, 3, 6, 1, 5, 5, 7, 3, 3], "code signing (codeSigning)"),
    (
        &[1, 3, 6, 1, 5, 5, 7, 3, 4],
        "e-mail protection (emailProtection)",
    ),
    (&[1, 3, 6, 1, 5, 5, 7, 3, 8], "time stamping (timeStamping)"),
    (&[1, 3, 6, 1, 5, 5, 7, 3, 9], "OCSP signing (OCSPSigning)"),
];

/// The key usage bits in order (RFC 5280 4.2.1.3), as OpenSSL names them.
const KEY_USAGE_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

/// `id-at-commonName`.
const COMMON_NAME: &[u64] = &[2, 5, 4, 3];

/// The attribute types of a distinguished name shown by their short names (RFC 4514).
const NAME_ATTRIBUTES: [(&[u64], &str); 9] = [
    (COMMON_NAME, "CN"),
    (&[2, 5, 4, 5], "serialNumber"),
    (&[2, 5, 4, 6], "C"),
    (&[2, 5, 4, 7], "L"),
    (&[2, 5, 4, 8], "ST"),
    (&[2, 5, 4, 9], "STREET"),
    (&[2, 5, 4, 10], "O"),
    (&[2, 5, 4, 11], "OU"),
    (&[0, 9, 2342, 19200300, 100, 1, 25], "DC"),
];

/// What the gateway reads of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The X.509 version: 1, 2 or 3.
    pub version: u8,
    /// The subject, as `O=org, OU=site, CN=name` (RDNs in certificate order).
    pub subject: String,
    /// The subject's first common name (the one a broker takes as the user name).
    pub common_name: Option<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// basicConstraints cA, when the extension is present.
    pub ca: Option<bool>,
    /// keyUsage bits (bit 0 digitalSignature ...), when the extension is present.
    pub key_usage: Option<u16>,
    /// extKeyUsage purposes, when the extension is present.
    pub ext_key_usage: Option<Vec<ObjectIdentifier>>,
}

impl Fields {
    /// Whether keyUsage (when present) allows a digital signature.
    pub fn allows_digital_signature(&self) -> bool {
        self.key_usage.is_none_or(|bits| bits & 1 != 0)
    }

    /// Whether extKeyUsage (when present) allows client authentication.
    pub fn allows_client_auth(&self) -> bool {
        self.ext_key_usage.as_ref().is_none_or(|usages| {
            usages
                .iter()
                .any(|oid| oid.components() == CLIENT_AUTH || oid.components() == ANY_USAGE)
        })
    }

    /// The key usage in words: `keyEncipherment, keyCertSign`, or `nothing`.
    pub fn key_usage_words(&self) -> String {
        let bits = self.key_usage.unwrap_or(0);
        let words: Vec<&str> = KEY_USAGE_NAMES
            .iter()
            .enumerate()
            .filter(|(n, _)| bits & (1 << n) != 0)
            .map(|(_, name)| *name)
            .collect();
        if words.is_empty() {
            "nothing".to_owned()
        } else {
            words.join(", ")
        }
    }

    /// The extended key usage in words, e.g. `server authentication (serverAuth)`.
    pub fn ext_key_usage_words(&self) -> String {
        let words: Vec<String> = self
            .ext_key_usage
            .iter()
            .flatten()
            .map(|oid| {
                NAMED_USAGES
                    .iter()
                    .find(|(known, _)| oid.components() == known)
                    .map_or_else(|| format!("OID {oid}"), |(_, name)| (*name).to_owned())
            })
            .collect();
        if words.is_empty() {
            "nothing".to_owned()
        } else {
            words.join(" and ")
        }
    }
}

/// Why a certificate's fields do not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a DER X.509 certificate ({what})")]
pub struct FieldsError {
    what: String,
}

impl From<ASN1Error> for FieldsError {
    fn from(e: ASN1Error) -> FieldsError {
        let what = match e.kind() {
            ASN1ErrorKind::Eof => "it ends early",
            ASN1ErrorKind::Extra => "bytes follow its end",
            ASN1ErrorKind::IntegerOverflow => "a number is out of range",
            ASN1ErrorKind::StackOverflow => "it nests too deep",
            ASN1ErrorKind::Invalid => "an element is malformed or not where RFC 5280 puts it",
        };
        FieldsError {
            what: what.to_owned(),
        }
    }
}

/// Reads the fields of a DER certificate.
pub fn read(der: &[u8]) -> Result<Fields, FieldsError> {
    if !well_formed(der, 0) {
        return Err(FieldsError {
            what: "an element's length does not fit what holds it".to_owned(),
        });
    }
    let fields = yasna::parse_der(der, |r| {
        r.read_sequence(|cert| {
            let fields = cert.next().read_sequence(tbs)?;
            let _signature_algorithm = cert.next().read_der()?;
            let _signature = cert.next().read_bitvec_bytes()?;
            Ok(fields)
        })
    })?;
    Ok(fields)
}

/// How deep elements may nest (a certificate nests about 8 deep; yasna stops at 100).
const MAX_DEPTH: usize = 32;

/// True when `der` is a sequence of elements with definite lengths (DER: at most 4 length bytes,
/// plenty for a certificate) that end exactly where it ends, and so is the content of each
/// constructed element, to [`MAX_DEPTH`]. Looks at each element's header once: linear in the
/// input. (An extension's value, DER inside an OCTET STRING, is checked before it is read.)
fn well_formed(der: &[u8], depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let mut rest = der;
    while let Some((&identifier, after)) = rest.split_first() {
        let mut after = after;
        if identifier & 0x1f == 0x1f {
            // A tag number in further bytes: at most 4, the last without the high bit.
            let Some(end) = after.iter().take(4).position(|b| b & 0x80 == 0) else {
                return false;
            };
            after = &after[end + 1..];
        }
        let Some((&first, after)) = after.split_first() else {
            return false;
        };
        let (length, after) = match first {
            0..=0x7f => (usize::from(first), after),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                if after.len() < n {
                    return false;
                }
                let length = after[..n]
                    .iter()
                    .fold(0usize, |l, &b| (l << 8) | usize::from(b));
                (length, &after[n..])
            }
            _ => return false,
        };
        if length > after.len() {
            return false;
        }
        let (content, next) = after.split_at(length);
        if identifier & 0x20 != 0 && !well_formed(content, depth + 1) {
            return false;
        }
        rest = next;
    }
    true
}

/// TBSCertificate (RFC 5280 4.1).
fn tbs(r: &mut BERReaderSeq<'_, '_>) -> Result<Fields, ASN1Error> {
    let version = r
        .read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_u8()))?
        .unwrap_or(0);
    if version > 2 {
        return Err(ASN1Error::new(ASN1ErrorKind::Invalid));
    }
    let _serial = r.next().read_der()?;
    let _signature = r.next().read_der()?;
    let _issuer = r.next().read_der()?;
    let (not_before, not_after) = r
        .next()
        .read_sequence(|v| Ok((time(v.next())?, time(v.next())?)))?;
    let (subject, common_name) = r.next().read_sequence(name)?;
    let _key = r.next().read_der()?;
    let _issuer_uid =
        r.read_optional(|r| r.read_tagged_implicit(Tag::context(1), |r| r.read_bitvec_bytes()))?;
    let _subject_uid =
        r.read_optional(|r| r.read_tagged_implicit(Tag::context(2), |r| r.read_bitvec_bytes()))?;
    let mut fields = Fields {
        version: version + 1,
        subject,
        common_name,
        not_before,
        not_after,
        ca: None,
        key_usage: None,
        ext_key_usage: None,
    };
    r.read_optional(|r| {
        r.read_tagged(Tag::context(3), |r| {
            r.read_sequence_of(|r| extension(r, &mut fields))
        })
    })?;
    Ok(fields)
}

/// A Time: UTCTime or GeneralizedTime, as Unix seconds.
fn time(r: BERReader<'_, '_>) -> Result<i64, ASN1Error> {
    match r.lookahead_tag()? {
        yasna::tags::TAG_UTCTIME => Ok(r.read_utctime()?.datetime().unix_timestamp()),
        yasna::tags::TAG_GENERALIZEDTIME => {
            Ok(r.read_generalized_time()?.datetime().unix_timestamp())
        }
        _ => Err(ASN1Error::new(ASN1ErrorKind::Invalid)),
    }
}

/// A Name: RDNs joined by `, `, the attributes of one RDN by `+`; and its first common name.
fn name(r: &mut BERReaderSeq<'_, '_>) -> Result<(String, Option<String>), ASN1Error> {
    let mut rdns = Vec::new();
    let mut common_name = None;
    loop {
        let rdn = r.read_optional(|r| {
            let mut attributes = Vec::new();
            r.read_set_of(|r| {
                attributes.push(r.read_sequence(|a| {
                    let kind = a.next().read_oid()?;
                    let value = text(&a.next().read_tagged_der()?);
                    if common_name.is_none() && kind.components() == COMMON_NAME {
                        common_name = Some(value.clone());
                    }
                    Ok(format!("{}={value}", attribute_name(&kind)))
                })?);
                Ok(())
            })?;
            Ok(attributes.join("+"))
        })?;
        match rdn {
            Some(rdn) => rdns.push(rdn),
            None => return Ok((rdns.join(", "), common_name)),
        }
    }
}

fn attribute_name(oid: &ObjectIdentifier) -> String {
    NAME_ATTRIBUTES
        .iter()
        .find(|(known, _)| oid.components() == known)
        .map_or_else(|| oid.to_string(), |(_, name)| (*name).to_owned())
}

/// A directory string as text: the string types as UTF-8 (BMPString as UTF-16), anything
/// else as `#` and its DER value in hex (RFC 4514 2.4).
fn text(value: &yasna::models::TaggedDerValue) -> String {
    use yasna::tags::{
        TAG_BMPSTRING, TAG_IA5STRING, TAG_NUMERICSTRING, TAG_PRINTABLESTRING, TAG_TELETEXSTRING,
        TAG_UTF8STRING, TAG_VISIBLESTRING,
    };
    let bytes = value.value();
    match value.tag() {
        TAG_UTF8STRING | TAG_PRINTABLESTRING | TAG_IA5STRING | TAG_VISIBLESTRING
        | TAG_NUMERICSTRING | TAG_TELETEXSTRING => String::from_utf8_lossy(bytes).into_owned(),
        TAG_BMPSTRING => char::decode_utf16(
            bytes
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        _ => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        }
    }
}

/// One Extension: the three this module reads are decoded, the others skipped.
fn extension(r: BERReader<'_, '_>, fields: &mut Fields) -> Result<(), ASN1Error> {
    r.read_sequence(|e| {
        let id = e.next().read_oid()?;
        let _critical = e.read_default(false, |r| r.read_bool())?;
        let value = e.next().read_bytes()?;
        if !well_formed(&value, 0) {
            return Err(ASN1Error::new(ASN1ErrorKind::Invalid));
        }
        match id.components().as_slice() {
            BASIC_CONSTRAINTS => {
                fields.ca = Some(yasna::parse_der(&value, |r| {
                    r.read_sequence(|s| {
                        let ca = s.read_default(false, |r| r.read_bool())?;
                        let _path_len = s.read_optional(|r| r.read_der())?;
                        Ok(ca)
                    })
                })?);
            }
            KEY_USAGE => {
                let (bytes, len) = yasna::parse_der(&value, |r| r.read_bitvec_bytes())?;
                let mut bits = 0u16;
                for n in 0..len.min(16) {
                    if bytes[n / 8] & (0x80 >> (n % 8)) != 0 {
                        bits |= 1 << n;
                    }
                }
                fields.key_usage = Some(bits);
            }
            EXT_KEY_USAGE => {
                fields.ext_key_usage = Some(yasna::parse_der(&value, |r| {
                    r.collect_sequence_of(|r| r.read_oid())
                })?);
            }
            _ => {}
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
