//! Coded elements (CWE/CE/CNE) with their original and standard coding.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::normalize::coding_system::CodingSystem;

/// One code in one coding system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coding {
    /// The code (`2345-7`).
    pub code: CompactString,
    /// Its display text as sent or as the mapping table gives it.
    pub display: Option<CompactString>,
    /// The coding system.
    pub system: CodingSystem,
}

impl Default for Coding {
    /// An empty code in an unnamed system.
    fn default() -> Self {
        Coding {
            code: CompactString::const_new(""),
            display: None,
            system: CodingSystem::Other(CompactString::const_new("")),
        }
    }
}

/// Which coding the hub should use as the standard one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Standard {
    /// The original coding is already in a standard system.
    Original,
    /// The alternate coding (CWE.4-6) is in a standard system.
    Alternate,
    /// The interface's mapping table translated the local code.
    Mapped(Coding),
    /// No standard code is known: flagged and counted, never guessed.
    #[default]
    Unmapped,
}

/// A coded element as sent, plus the standard code the gateway found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Coded {
    /// CWE.1-3 as sent.
    pub original: Coding,
    /// CWE.4-6 as sent, if any.
    pub alternate: Option<Coding>,
    /// Where the standard code is.
    pub standard: Standard,
    /// CWE.9 original text, when it is not already the display (the words
    /// the sender's user saw or typed: "Salmonella species" beside
    /// `27268008^Salmonella^SCT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<CompactString>,
}

impl Coded {
    /// The standard coding, whichever place it is in.
    pub fn standard_coding(&self) -> Option<&Coding> {
        match &self.standard {
            Standard::Original => Some(&self.original),
            Standard::Alternate => self.alternate.as_ref(),
            Standard::Mapped(c) => Some(c),
            Standard::Unmapped => None,
        }
    }

    /// True when a standard code is known.
    pub fn is_mapped(&self) -> bool {
        !matches!(self.standard, Standard::Unmapped)
    }
}
