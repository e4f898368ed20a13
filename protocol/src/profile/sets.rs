//! A set of learned facts with a cap.
//!
//! Invariant: never more than `cap` entries; the first insert refused for
//! the cap reports [`Insert::Saturated`], later ones [`Insert::Full`].

use std::collections::BTreeSet;

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// The fact was new and is now kept.
    Added,
    /// The fact was already known.
    Known,
    /// The set just reached its cap (reported once); the fact is not kept.
    Saturated(&'static str),
    /// The set was already full; the fact is not kept.
    Full,
}

/// A capped set of facts.
#[derive(Debug, Clone)]
pub(crate) struct Bounded {
    name: &'static str,
    cap: usize,
    full: bool,
    entries: BTreeSet<String>,
}

impl Bounded {
    /// An empty set named `name` (in words, for the saturation note).
    pub(crate) fn new(name: &'static str, cap: usize) -> Self {
        Bounded {
            name,
            cap,
            full: false,
            entries: BTreeSet::new(),
        }
    }

    /// Learns `fact` if there is room.
    pub(crate) fn insert(&mut self, fact: &str) -> Insert {
        if self.entries.contains(fact) {
            Insert::Known
        } else if self.full {
            Insert::Full
        } else if self.entries.len() >= self.cap {
            self.full = true;
            Insert::Saturated(self.name)
        } else {
            self.entries.insert(fact.to_owned());
            Insert::Added
        }
    }

    /// The entries other than `except`, comma separated (for the words of
    /// a drift, built only when one is reported).
    pub(crate) fn joined_except(&self, except: &str) -> String {
        self.joined_with_prefix("", except)
    }

    /// The entries starting with `prefix`, other than `except`, without the
    /// prefix, comma separated; an empty remainder shows as `(none)`.
    pub(crate) fn joined_with_prefix(&self, prefix: &str, except: &str) -> String {
        let parts: Vec<&str> = self
            .entries
            .range(prefix.to_owned()..)
            .filter(|e| *e != except)
            .map_while(|e| e.strip_prefix(prefix))
            .map(|rest| if rest.is_empty() { "(none)" } else { rest })
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_set_says_so_once_and_keeps_its_size() {
        let mut set = Bounded::new("things", 2);
        assert_eq!(set.insert("a"), Insert::Added);
        assert_eq!(set.insert("a"), Insert::Known);
        assert_eq!(set.insert("b"), Insert::Added);
        assert_eq!(set.insert("c"), Insert::Saturated("things"));
        assert_eq!(set.insert("d"), Insert::Full);
        assert_eq!(set.insert("b"), Insert::Known);
        assert_eq!(set.joined_except("b"), "a");
    }

    #[test]
    fn entries_under_a_prefix_are_listed_without_it() {
        let mut set = Bounded::new("units", 10);
        for e in [
            "GLU\u{1f}mg/dL",
            "GLU\u{1f}",
            "GLUC\u{1f}x",
            "NA\u{1f}mmol/L",
        ] {
            set.insert(e);
        }
        assert_eq!(set.joined_with_prefix("GLU\u{1f}", ""), "(none), mg/dL");
        assert_eq!(
            set.joined_with_prefix("GLU\u{1f}", "GLU\u{1f}mg/dL"),
            "(none)"
        );
        assert_eq!(set.joined_with_prefix("K\u{1f}", ""), "");
    }
}
