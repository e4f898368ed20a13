//! The version stamped on every record: a declared label plus a hash of the
//! table's content.
//!
//! The hash is SHA-256 over a canonical encoding of the mappings, truncated
//! to 8 bytes. The encoding is: the tag `hl7edge-mapping-v1`, then every code
//! mapping in (local system, local code) order (`code`, local system, local
//! code, target system, target code, display; then, only when the row has a
//! `target_unit`, `expects` and that unit), then every unit mapping in
//! unit order (`unit`, unit, UCUM), then every system declaration in local
//! name order (`system`, local name, target system); each field is its byte
//! length (u64 little-endian) followed by its bytes. Target systems are
//! encoded by their canonical HL7 name, so `LN` and `LOINC` give the same
//! hash. Tables without expected units or system rows hash as they did
//! before those existed. Comments, row order, whitespace, quoting
//! and the declared label do not change it; any change to a mapping does.
//! Changing this encoding changes every table's version: bump the tag.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Target;
use crate::normalize::coding_system::CodingSystem;

/// Domain-separation tag at the start of the hashed content.
const HASH_TAG: &[u8] = b"hl7edge-mapping-v1";

/// A mapping table's version, shown as `2026-03-lab-v4+3fa2c1d9e0b4a7f1`
/// (declared) or `sha256:3fa2c1d9e0b4a7f1` (undeclared).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MappingVersion {
    /// The `# version:` label of the file, if any.
    pub declared: Option<String>,
    /// The first 8 bytes of the SHA-256 content hash (hex in JSON).
    #[serde(with = "crate::serde_util::hex8")]
    pub hash: [u8; 8],
}

impl MappingVersion {
    /// The version of the given mappings (see the module doc for the hash).
    pub(super) fn of(
        codes: &BTreeMap<String, BTreeMap<String, Target>>,
        units: &BTreeMap<String, String>,
        systems: &BTreeMap<String, CodingSystem>,
        declared: Option<String>,
    ) -> MappingVersion {
        let mut hasher = Sha256::new();
        hasher.update(HASH_TAG);
        for (system, by_code) in codes {
            for (code, target) in by_code {
                let display = target.display.as_deref().unwrap_or("");
                let target_system = target.system.hl7_code();
                let fields = ["code", system, code, &target_system, &target.code, display];
                fields
                    .iter()
                    .for_each(|field| update_field(&mut hasher, field));
                if let Some(unit) = &target.unit {
                    ["expects", unit]
                        .iter()
                        .for_each(|field| update_field(&mut hasher, field));
                }
            }
        }
        for (unit, ucum) in units {
            ["unit", unit, ucum]
                .iter()
                .for_each(|field| update_field(&mut hasher, field));
        }
        for (name, system) in systems {
            ["system", name, &system.hl7_code()]
                .iter()
                .for_each(|field| update_field(&mut hasher, field));
        }
        let digest = hasher.finalize();
        let mut hash = [0u8; 8];
        hash.iter_mut()
            .zip(digest.iter())
            .for_each(|(dst, src)| *dst = *src);
        MappingVersion { declared, hash }
    }

    /// The content hash as 16 lowercase hex digits.
    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Display for MappingVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.declared {
            Some(label) => write!(f, "{label}+{}", self.hash_hex()),
            None => write!(f, "sha256:{}", self.hash_hex()),
        }
    }
}

/// Hashes one length-prefixed field.
fn update_field(hasher: &mut Sha256, field: &str) {
    let len = u64::try_from(field.len()).unwrap_or(u64::MAX);
    hasher.update(len.to_le_bytes());
    hasher.update(field.as_bytes());
}

#[cfg(test)]
mod tests {
    use crate::normalize::mapping::MappingTable;

    const HEADER: &str = "kind,local_system,local_code,target_system,target_code,target_display\n";

    fn version_of(rows: &str) -> super::MappingVersion {
        MappingTable::parse(&format!("{HEADER}{rows}"))
            .unwrap()
            .version()
            .clone()
    }

    #[test]
    fn hash_ignores_order_comments_whitespace_quoting_and_system_spelling() {
        let a = version_of("code,99LAB,GLU,LN,2345-7,Glucose\nunit,,mg/dl,UCUM,mg/dL,\n");
        let b = version_of(
            "# reordered\nunit, , mg/dl ,UCUM,mg/dL,\n\ncode,\"99LAB\",GLU,LOINC,2345-7, Glucose \n",
        );
        assert_eq!(a.hash, b.hash);
    }

    #[test]
    fn hash_changes_with_any_mapping_field() {
        let base = version_of("code,99LAB,GLU,LN,2345-7,Glucose\n");
        for changed in [
            "code,99LAB,GLU,LN,2345-7,Glucose!\n",
            "code,99LAB,GLU,LN,2339-0,Glucose\n",
            "code,99LAB,GLU,SCT,2345-7,Glucose\n",
            "code,99LAB,GLUC,LN,2345-7,Glucose\n",
            "code,,GLU,LN,2345-7,Glucose\n",
            "code,99LAB,GLU,LN,2345-7,Glucose\nunit,,mg/dl,UCUM,mg/dL,\n",
            "code,99LAB,GLU,LN,2345-7,Glucose\nsystem,99LABX,,LN,,\n",
        ] {
            assert_ne!(version_of(changed).hash, base.hash, "{changed}");
        }
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let a = version_of("code,99LAB,AB,SCT,C,\n");
        let b = version_of("code,99LAB,A,SCT,BC,\n");
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn hash_is_pinned_to_the_documented_encoding() {
        // Expected values computed independently from the encoding in the module doc.
        assert_eq!(
            MappingTable::empty().version().to_string(),
            "sha256:5e679d2f20769bf5"
        );
        let table = version_of("code,99LAB,GLU,LN,2345-7,Glucose\nunit,,mg/dl,UCUM,mg/dL,\n");
        assert_eq!(table.to_string(), "sha256:2b6ef075230d1958");
    }

    #[test]
    fn declared_label_does_not_change_the_hash() {
        let rows = "code,99LAB,GLU,LN,2345-7,\n";
        let plain = version_of(rows);
        let labelled = MappingTable::parse(&format!("# version: v4\n{HEADER}{rows}")).unwrap();
        assert_eq!(labelled.version().hash, plain.hash);
        assert_eq!(
            labelled.version().to_string(),
            format!("v4+{}", plain.hash_hex())
        );
        assert_eq!(plain.to_string(), format!("sha256:{}", plain.hash_hex()));
    }

    #[test]
    fn version_round_trips_through_postcard_and_json() {
        let version = MappingTable::parse(&format!("# version: lab-v4\n{HEADER}"))
            .unwrap()
            .version()
            .clone();
        let bytes = postcard::to_allocvec(&version).unwrap();
        assert_eq!(
            postcard::from_bytes::<super::MappingVersion>(&bytes).unwrap(),
            version
        );
        let json = serde_json::to_string(&version).unwrap();
        assert_eq!(
            serde_json::from_str::<super::MappingVersion>(&json).unwrap(),
            version
        );
    }
}
