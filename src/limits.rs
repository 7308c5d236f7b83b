//! Per-source limits of a rule, as pf's `max-src-states`,
//! `max-src-conn-rate` and `overload`, iptables' `connlimit` and
//! `hashlimit`:
//!
//! ```ron
//! (proto: Tcp, dport: [22], state: [New], action: Accept,
//!  limit: (per_source_states: 20, per_source_rate: (5, 10),
//!          overload: "@banned", overload_timeout: 600)),
//! ```
//!
//! A limit applies to the packets its rule accepts that would create a
//! flow (state NEW, not yet tracked): such a packet is dropped with
//! [`crate::stats::DropReason::SourceLimit`] when its source address
//! already has `per_source_states` live flows in the table (every flow
//! from that address, counted by [`crate::conntrack::sources`]), or when
//! the source's token bucket for this rule is empty (`per_source_rate:
//! (per_second, burst)`: `burst` new flows at once, then `per_second`).
//! With `overload`, the source is then added to that address set (for
//! `overload_timeout` seconds, or until removed), where an earlier rule
//! can drop everything it sends. Packets of flows already tracked are
//! never limited.
//!
//! The buckets are kept in a [`SourceLimiter`]: one table for every rule,
//! keyed by (chain, rule, source address), hashed with std's
//! `RandomState` (SipHash under a random key: sources are
//! attacker-chosen), sized by the config's `limits.sources` and allocated
//! at start. When it is full, the source seen first of those in the table
//! makes room (first in, first out): an evicted source starts again with
//! a full bucket, so a flood of many sources can make a limit lenient,
//! never stricter. A reload empties the table (rule numbers may change).

use core::net::IpAddr;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::matchers::SetRef;
use crate::ratelimit::TokenBucket;
use crate::time::Instant;

/// The most live flows `per_source_states` may allow (the table's maximum).
pub const MAX_PER_SOURCE_STATES: u64 = 16_777_215;
/// The highest `per_source_rate` rate and burst.
pub const MAX_PER_SOURCE_RATE: u64 = 1_000_000;
/// The longest `overload_timeout`: 50 days, as set element timeouts.
pub const MAX_OVERLOAD_TIMEOUT_SECS: u64 = crate::sets::MAX_ELEMENT_TIMEOUT_SECS;
/// The most sources `limits.sources` may size the tables for.
pub const MAX_SOURCES: usize = 16_777_215;
/// `limits.sources` when the config names none.
pub const DEFAULT_SOURCES: usize = 65_536;

/// New flows per second per source, and the burst allowed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rate {
    /// New flows per second, refilled continuously.
    pub per_second: u32,
    /// New flows at once (the bucket's size).
    pub burst: u32,
}

/// A rule's per-source limits (`limit: (...)`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The most live flows a source may have in the table for this rule
    /// to accept another (1 to [`MAX_PER_SOURCE_STATES`]).
    #[serde(default, deserialize_with = "per_source_states")]
    pub per_source_states: Option<u32>,
    /// `(per_second, burst)`: new flows per second per source, each 1 to
    /// [`MAX_PER_SOURCE_RATE`].
    #[serde(default, deserialize_with = "per_source_rate")]
    pub per_source_rate: Option<Rate>,
    /// `"@set"`: the address set a source that exceeds a limit is added to.
    #[serde(default, deserialize_with = "overload")]
    pub overload: Option<SetRef>,
    /// How long the source stays in the overload set, in seconds (1 to
    /// [`MAX_OVERLOAD_TIMEOUT_SECS`]); without it, until removed.
    #[serde(default, deserialize_with = "overload_timeout")]
    pub overload_timeout: Option<u32>,
}

fn in_range<E: de::Error>(what: &str, n: u64, max: u64, unit: &str) -> Result<u32, E> {
    if n == 0 || n > max {
        return Err(E::custom(format!(
            "{n} is out of range: {what} must be 1 to {max}{unit}"
        )));
    }
    Ok(n as u32)
}

fn per_source_states<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<u64>::deserialize(d)? else {
        return Ok(None);
    };
    in_range("per_source_states", n, MAX_PER_SOURCE_STATES, " flows").map(Some)
}

fn per_source_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let Some((rate, burst)) = Option::<(u64, u64)>::deserialize(d)? else {
        return Ok(None);
    };
    Ok(Some(Rate {
        per_second: in_range("the rate", rate, MAX_PER_SOURCE_RATE, " per second")?,
        burst: in_range("the burst", burst, MAX_PER_SOURCE_RATE, "")?,
    }))
}

fn overload<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SetRef>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    match text.trim().strip_prefix('@') {
        Some(name) if !name.is_empty() => Ok(Some(SetRef {
            name: name.to_string(),
            index: usize::MAX,
        })),
        _ => Err(de::Error::custom(format!(
            "overload {text:?}: name an address set as \"@name\""
        ))),
    }
}

fn overload_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<u64>::deserialize(d)? else {
        return Ok(None);
    };
    in_range("overload_timeout", n, MAX_OVERLOAD_TIMEOUT_SECS, " seconds").map(Some)
}

impl Limit {
    /// Cross-field checks: at least one limit; a timeout needs a set.
    pub fn validate(&self) -> Result<(), String> {
        if self.per_source_states.is_none() && self.per_source_rate.is_none() {
            return Err("limit needs per_source_states or per_source_rate".into());
        }
        if self.overload_timeout.is_some() && self.overload.is_none() {
            return Err("overload_timeout needs overload".into());
        }
        Ok(())
    }

    /// `--max-src-states 20 --max-src-conn-rate 5/s burst 10 --overload @banned 600s`, for listings.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(n) = self.per_source_states {
            out += &format!(" --max-src-states {n}");
        }
        if let Some(r) = self.per_source_rate {
            out += &format!(" --max-src-conn-rate {}/s burst {}", r.per_second, r.burst);
        }
        if let Some(s) = &self.overload {
            out += &format!(" --overload @{}", s.name);
            if let Some(t) = self.overload_timeout {
                out += &format!(" {t}s");
            }
        }
        out.trim_start().to_string()
    }
}

/// The top-level `limits` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// The most sources the per-source tables hold (1 to
    /// [`MAX_SOURCES`], default [`DEFAULT_SOURCES`]): the token buckets
    /// of every rule together, and the sources with live flows counted
    /// for `per_source_states`. Allocated at start, and only when a rule
    /// has a limit.
    #[serde(default = "default_sources", deserialize_with = "sources")]
    pub sources: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            sources: DEFAULT_SOURCES,
        }
    }
}

fn default_sources() -> usize {
    DEFAULT_SOURCES
}

fn sources<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)?;
    in_range("limits.sources", n, MAX_SOURCES as u64, " sources").map(|n| n as usize)
}

/// A key of the bucket table: chain and rule (`side << 24 | rule`), family, address bits.
type Key = (u32, bool, u128);

fn key(rule: u32, src: IpAddr) -> Key {
    match src {
        IpAddr::V4(a) => (rule, false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (rule, true, u128::from(a)),
    }
}

/// Bytes one source takes in a [`SourceLimiter`] at most: its hash table
/// slots (allocated for twice the sources, at 7/8 load after growth to a
/// power of two: up to 4.6 slots of key, bucket and control byte) and
/// its place in the eviction ring.
pub const LIMITER_SOURCE_BYTES: u64 = 5 * (core::mem::size_of::<(Key, TokenBucket)>() as u64 + 1)
    + core::mem::size_of::<Key>() as u64;

/// What the limiter did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LimiterStats {
    /// Sources evicted to make room for another.
    pub evicted: u64,
    /// Sources added to an overload set.
    pub overloaded: u64,
    /// Sources that could not be added to their overload set (full).
    pub overload_failed: u64,
}

/// The token buckets of every rule's `per_source_rate`, by (chain, rule,
/// source): bounded, allocated at start, never allocating afterwards.
#[derive(Debug, Default)]
pub struct SourceLimiter {
    buckets: HashMap<Key, TokenBucket, RandomState>,
    /// Keys in the order they were inserted; `next` is the oldest once full.
    ring: Vec<Key>,
    next: usize,
    max: usize,
    /// Counters.
    pub stats: LimiterStats,
}

impl SourceLimiter {
    /// A table for `max` sources (0: none; every new source is then
    /// allowed), allocated now: its hash map for twice `max`, so that
    /// inserting after evictions rehashes in place rather than growing.
    pub fn new(max: usize) -> SourceLimiter {
        SourceLimiter {
            buckets: HashMap::with_capacity_and_hasher(2 * max, RandomState::new()),
            ring: Vec::with_capacity(max),
            next: 0,
            max,
            stats: LimiterStats::default(),
        }
    }

    /// The most sources it holds.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Sources (per rule) it holds.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Forget every bucket (the table stays allocated).
    pub fn clear(&mut self) {
        self.buckets.clear();
        self.ring.clear();
        self.next = 0;
    }

    /// Whether `src` may open one more flow under rule `rule` (an opaque
    /// number: chain and rule) at `now`, taking a token if so. A source
    /// not in the table starts with a full bucket of `rate`. Never
    /// allocates, never panics.
    pub fn take(&mut self, rule: u32, src: IpAddr, rate: Rate, now: Instant) -> bool {
        let k = key(rule, src);
        if let Some(b) = self.buckets.get_mut(&k) {
            return b.take(now);
        }
        if self.max == 0 {
            return true;
        }
        if self.ring.len() < self.max {
            self.ring.push(k);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            let old = core::mem::replace(slot, k);
            self.buckets.remove(&old);
            self.stats.evicted += 1;
            self.next = (self.next + 1) % self.max;
        } else {
            return true;
        }
        let mut b = TokenBucket::new(u64::from(rate.per_second), u64::from(rate.burst));
        let ok = b.take(now);
        self.buckets.insert(k, b);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    const R: Rate = Rate {
        per_second: 2,
        burst: 3,
    };

    #[test]
    fn a_bucket_per_rule_and_source_refilled_with_time() {
        let mut l = SourceLimiter::new(8);
        let t = Instant::from_secs(10);
        assert_eq!((0..5).filter(|_| l.take(1, ip(1), R, t)).count(), 3);
        // Another source, and the same source under another rule, have their own.
        assert!(l.take(1, ip(2), R, t));
        assert!(l.take(2, ip(1), R, t));
        // Half a second at 2/s: one more.
        let later = Instant::from_millis(10_500);
        assert!(l.take(1, ip(1), R, later));
        assert!(!l.take(1, ip(1), R, later));
    }

    #[test]
    fn full_evicts_the_oldest_source() {
        let mut l = SourceLimiter::new(2);
        let t = Instant::from_secs(1);
        let one = Rate {
            per_second: 1,
            burst: 1,
        };
        assert!(l.take(0, ip(1), one, t));
        assert!(l.take(0, ip(2), one, t));
        assert!(!l.take(0, ip(1), one, t));
        assert!(l.take(0, ip(3), one, t)); // evicts ip(1)
        assert_eq!((l.len(), l.stats.evicted), (2, 1));
        assert!(l.take(0, ip(1), one, t)); // back with a full bucket, evicts ip(2)
        assert!(!l.take(0, ip(3), one, t));
        assert_eq!(l.len(), 2);
    }
}
