//! Serde helpers that keep the wire compact and JSON readable.
//!
//! postcard is not human-readable, JSON is: the same value can be written as
//! raw bytes for the wire and as text for people and tools.

/// `[u8; 8]` as raw bytes on the wire and as 16 hex digits in JSON.
pub mod hex8 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes the array.
    pub fn serialize<S: Serializer>(bytes: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&format_args!("{:016x}", u64::from_be_bytes(*bytes)))
        } else {
            bytes.serialize(s)
        }
    }

    /// Deserializes the array.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 8], D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            u64::from_str_radix(&text, 16)
                .map(u64::to_be_bytes)
                .map_err(|_| D::Error::custom("expected 16 hex digits"))
        } else {
            <[u8; 8]>::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct H(#[serde(with = "super::hex8")] [u8; 8]);

    #[test]
    fn hashes_are_hex_in_json_and_raw_on_the_wire() {
        let h = H([0x3f, 0xa2, 0xc1, 0xd9, 0xe0, 0xb4, 0xa7, 0xf1]);
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"3fa2c1d9e0b4a7f1\"");
        assert_eq!(
            serde_json::from_str::<H>("\"3fa2c1d9e0b4a7f1\"").unwrap(),
            h
        );
        let wire = postcard::to_allocvec(&h).unwrap();
        assert_eq!(wire, h.0);
        assert_eq!(postcard::from_bytes::<H>(&wire).unwrap(), h);
    }
}
