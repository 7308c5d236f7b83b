//! The reassembler's limits, with Linux's defaults.

use core::time::Duration;

/// Limits of a [`super::Reassembler`]; every one is fixed when it is made.
///
/// Defaults are Linux's: `net.ipv4.ipfrag_high_thresh` 4 MiB and
/// `ipfrag_low_thresh` 3 MiB (the same for `nf_conntrack_frag6_*_thresh`),
/// `ipfrag_time` 30 s and `nf_conntrack_frag6_timeout` 60 s; the cap of 64
/// fragments a datagram is pf's (`PF_FRAG_ENTRY_LIMIT`); Linux has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Memory (chunk bytes plus queue records) fragments may hold, both
    /// families together. Everything is allocated for this much up front.
    pub high_thresh: usize,
    /// When a fragment would take memory above `high_thresh`, the oldest
    /// queues (other than the fragment's own) are evicted until memory is
    /// at most this, and the fragment fits.
    pub low_thresh: usize,
    /// Lifetime of an IPv4 queue, from its first fragment (never extended).
    pub timeout_v4: Duration,
    /// Lifetime of an IPv6 queue, from its first fragment.
    pub timeout_v6: Duration,
    /// Most fragments one datagram may have queued (at most 64).
    pub max_fragments: usize,
}

/// The hard cap on [`DefragConfig::max_fragments`]: a queue's fragments
/// live in a fixed array of this size.
pub const MAX_FRAGMENTS: usize = 64;

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            high_thresh: 4 << 20,
            low_thresh: 3 << 20,
            timeout_v4: Duration::from_secs(30),
            timeout_v6: Duration::from_secs(60),
            max_fragments: MAX_FRAGMENTS,
        }
    }
}
