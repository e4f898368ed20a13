//! postcard output appended to an existing `Vec<u8>`.
//!
//! `postcard::to_extend` feeds a `Vec` through `Extend`, one byte at a
//! time for every string and byte array; this flavor appends slices with
//! `extend_from_slice` (one copy). The bytes written are exactly
//! postcard's: a flavor only decides where they go.

use postcard::ser_flavors::Flavor;

/// Serializes `value` with postcard at the end of `out`.
pub(crate) fn append<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, Append(out))
}

/// The flavor: every write goes to the end of the vector.
struct Append<'v>(&'v mut Vec<u8>);

impl Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_bytes_are_postcards_after_what_was_there() {
        let value = (
            7u16,
            "segment|text",
            vec!["a".to_string(), "bc".into()],
            -3i64,
        );
        let mut out = vec![0xAA, 0xBB];
        append(&value, &mut out).unwrap();
        let mut expected = vec![0xAA, 0xBB];
        expected.extend(postcard::to_allocvec(&value).unwrap());
        assert_eq!(out, expected);
    }
}
