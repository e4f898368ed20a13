//! Drops records the hub has already seen, by record id.
//!
//! Delivery from the gateways is at-least-once: after a reconnect or a
//! restart a gateway resends what the broker had not acknowledged. The
//! window is bounded: it remembers the last `capacity` ids (first in, first
//! out), so memory stays fixed however long the hub runs. A resend older
//! than the window would pass again; with ids time-ordered and resends
//! coming within minutes, a window of 100 000 covers far more than that.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;

use uuid::Uuid;

/// A bounded set of recently seen record ids.
#[derive(Debug, Clone)]
pub struct Dedupe {
    capacity: NonZeroUsize,
    order: VecDeque<Uuid>,
    seen: HashSet<Uuid>,
}

impl Dedupe {
    /// Remembers at most `capacity` ids.
    pub fn new(capacity: NonZeroUsize) -> Dedupe {
        Dedupe {
            capacity,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// True the first time an id is offered (within the window); the id is
    /// then remembered.
    pub fn first_time(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity.get()
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True before any id was offered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn a_repeated_id_is_dropped() {
        let mut d = Dedupe::new(cap(10));
        let id = Uuid::from_u128(1);
        assert!(d.first_time(id));
        assert!(!d.first_time(id));
        assert!(d.first_time(Uuid::from_u128(2)));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_id_is_forgotten_first() {
        let mut d = Dedupe::new(cap(3));
        for n in 1..=4 {
            assert!(d.first_time(Uuid::from_u128(n)));
        }
        assert_eq!(d.len(), 3);
        assert!(!d.first_time(Uuid::from_u128(4)), "recent ids are kept");
        assert!(d.first_time(Uuid::from_u128(1)), "the oldest was forgotten");
    }

    #[test]
    fn a_duplicate_does_not_refresh_or_grow_the_window() {
        let mut d = Dedupe::new(cap(2));
        d.first_time(Uuid::from_u128(1));
        d.first_time(Uuid::from_u128(2));
        assert!(!d.first_time(Uuid::from_u128(1)));
        assert_eq!(d.len(), 2);
        d.first_time(Uuid::from_u128(3));
        assert!(
            d.first_time(Uuid::from_u128(1)),
            "1 stayed oldest and left first"
        );
    }
}
