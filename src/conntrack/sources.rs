//! Live flows per source address, for rules that limit them
//! (`limit: (per_source_states: N)`, see [`crate::limits`]).
//!
//! The count of a source is the number of flows in the table whose
//! original tuple has that source address (the address of the host that
//! opened them, before any translation): every flow, whichever rule
//! accepted it. It is kept incrementally: one hash update when a flow is
//! confirmed, one when it is removed (expired, evicted, killed, flushed),
//! so reading it is one hash probe.
//!
//! The table is sized when tunfw starts (or a reload changes its size)
//! for `conntrack.max` sources (every flow has one source, so it is never
//! full and the counts are exact) and holds only sources that have live
//! flows: a source's entry goes when its last flow does. Were it ever
//! full, a flow from a new source would not be counted
//! ([`SourceCounts::uncounted`], and its removal would then uncount
//! another of that source's flows: the reason the table is that large).
//! The keys are attacker-chosen
//! addresses, hashed with std's `RandomState` (SipHash under a random
//! key).

use core::net::IpAddr;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;

/// Flows per source address, bounded.
#[derive(Debug, Default)]
pub struct SourceCounts {
    counts: HashMap<IpAddr, u32, RandomState>,
    max: usize,
    /// Flows that were not counted because every entry was taken.
    pub uncounted: u64,
}

impl SourceCounts {
    /// A table for at most `max` sources (0: counting is off), allocated
    /// now. Its hash map is allocated for twice `max`, so that inserting
    /// after removals rehashes in place rather than growing: counting
    /// never allocates.
    pub fn new(max: usize) -> SourceCounts {
        let cap = if max == 0 { 0 } else { 2 * max };
        SourceCounts {
            counts: HashMap::with_capacity_and_hasher(cap, RandomState::new()),
            max,
            uncounted: 0,
        }
    }

    /// Whether flows are counted at all.
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    /// The most sources the table holds.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Sources with at least one counted flow.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no source has a counted flow.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The live flows counted for `src` (0 when counting is off).
    #[inline]
    pub fn count(&self, src: IpAddr) -> u32 {
        if self.max == 0 {
            return 0;
        }
        self.counts.get(&src).copied().unwrap_or(0)
    }

    /// Forget every count (the table stays allocated).
    pub(super) fn clear(&mut self) {
        self.counts.clear();
    }

    /// One more flow from `src`.
    pub(super) fn up(&mut self, src: IpAddr) {
        if self.max == 0 {
            return;
        }
        if let Some(n) = self.counts.get_mut(&src) {
            *n = n.saturating_add(1);
        } else if self.counts.len() < self.max {
            self.counts.insert(src, 1);
        } else {
            self.uncounted += 1;
        }
    }

    /// One flow fewer from `src`; the entry goes with the last one.
    pub(super) fn down(&mut self, src: IpAddr) {
        if self.max == 0 {
            return;
        }
        if let Some(n) = self.counts.get_mut(&src) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&src);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn counts_up_and_down_and_frees_the_entry_with_the_last_flow() {
        let mut c = SourceCounts::new(2);
        c.up(ip(1));
        c.up(ip(1));
        c.up(ip(2));
        assert_eq!((c.count(ip(1)), c.count(ip(2)), c.len()), (2, 1, 2));
        // Full: a third source is not counted.
        c.up(ip(3));
        assert_eq!((c.count(ip(3)), c.uncounted), (0, 1));
        c.down(ip(2));
        assert_eq!((c.count(ip(2)), c.len()), (0, 1));
        c.up(ip(3));
        assert_eq!(c.count(ip(3)), 1);
        // Removing an uncounted flow changes nothing.
        c.down(ip(9));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn off_counts_nothing() {
        let mut c = SourceCounts::new(0);
        c.up(ip(1));
        assert_eq!((c.count(ip(1)), c.len(), c.enabled()), (0, 0, false));
    }
}
