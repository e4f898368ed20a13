//! Split segments as normalizers use them: the parser's one-pass field index
//! ([`crate::hl7::fields`]) plus the place of a field, for warnings.

pub(crate) use crate::hl7::fields::{Fields, Parts};

use crate::normalize::context::At;

impl<'a> Fields<'a> {
    /// The place of field `n`, for warnings.
    pub(crate) fn at(&self, n: usize) -> At<'a> {
        At::new(self.segment(), n)
    }
}
