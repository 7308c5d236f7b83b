//! The `defrag` section: the reassembler's memory thresholds and queue
//! lifetimes, with Linux's defaults (`ipfrag_high_thresh`,
//! `ipfrag_low_thresh`, `ipfrag_time`, `nf_conntrack_frag6_timeout`).

use core::time::Duration;

use serde::Deserialize;

use super::bounds::{defrag_bytes, defrag_timeout};
use crate::defrag::DefragConfig;

/// Reassembly limits. Every field is optional; the defaults are Linux's.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragSection {
    /// Memory fragments may hold, both families together, 65,536 bytes to
    /// 1 GiB (default 4 MiB); allocated in full at start.
    #[serde(deserialize_with = "defrag_bytes")]
    pub high_thresh: usize,
    /// When a fragment would take memory above `high_thresh`, the oldest
    /// queues are evicted down to this (default 3 MiB; at most `high_thresh`).
    #[serde(deserialize_with = "defrag_bytes")]
    pub low_thresh: usize,
    /// Lifetime of an IPv4 datagram's queue, 1 to 600 s (default 30).
    #[serde(deserialize_with = "defrag_timeout")]
    pub timeout_v4: u64,
    /// Lifetime of an IPv6 datagram's queue, 1 to 600 s (default 60).
    #[serde(deserialize_with = "defrag_timeout")]
    pub timeout_v6: u64,
}

impl Default for DefragSection {
    fn default() -> Self {
        let d = DefragConfig::default();
        DefragSection {
            high_thresh: d.high_thresh,
            low_thresh: d.low_thresh,
            timeout_v4: d.timeout_v4.as_secs(),
            timeout_v6: d.timeout_v6.as_secs(),
        }
    }
}

impl DefragSection {
    /// The reassembler's settings (a low threshold above the high one is
    /// taken as the high one).
    pub fn to_defrag_config(&self) -> DefragConfig {
        DefragConfig {
            high_thresh: self.high_thresh,
            low_thresh: self.low_thresh.min(self.high_thresh),
            timeout_v4: Duration::from_secs(self.timeout_v4),
            timeout_v6: Duration::from_secs(self.timeout_v6),
            ..DefragConfig::default()
        }
    }
}
