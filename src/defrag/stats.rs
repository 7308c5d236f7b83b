//! The reassembler's counters.

use super::outcome::FragDrop;

/// Counters since the reassembler was made, and its memory now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments accepted into a queue.
    pub queued: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Queues that expired incomplete (no ICMP is sent: Linux's defrag
    /// users skip the reassembly-timeout message).
    pub timed_out: u64,
    /// Queues evicted to make room (the oldest first).
    pub evicted: u64,
    /// Fragments dropped, by reason, in [`FragDrop::ALL`]'s order.
    pub dropped: [u64; FragDrop::ALL.len()],
    /// Queues live now.
    pub queues: usize,
    /// Memory held now: chunk bytes and queue records.
    pub memory: usize,
    /// The most memory ever held.
    pub memory_high_water: usize,
}

impl DefragStats {
    /// Fragments dropped for `reason`.
    pub fn dropped(&self, reason: FragDrop) -> u64 {
        let i = FragDrop::ALL.iter().position(|r| *r == reason);
        i.and_then(|i| self.dropped.get(i)).copied().unwrap_or(0)
    }

    pub(super) fn count_drop(&mut self, reason: FragDrop) {
        if let Some(i) = FragDrop::ALL.iter().position(|r| *r == reason) {
            if let Some(c) = self.dropped.get_mut(i) {
                *c += 1;
            }
        }
    }
}
