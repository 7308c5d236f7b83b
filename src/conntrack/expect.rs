//! Expectations (Linux `nf_conntrack_expect.c`): flows a helper announced.
//!
//! An expectation names the data flow's source address (any source port),
//! destination address and port, TCP. The first packet of a new flow that
//! matches one consumes it (one-shot) and the flow is RELATED. Expectations
//! time out, are removed with the control flow that made them, and are capped
//! in number; the table is allocated in full when created.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use serde::Serialize;

use super::flow::FlowId;
use super::tuple::Dir;
use crate::slab::Slab;
use crate::time::Instant;

/// What an expectation matches: a TCP flow from `src` (any port) to `dst:dport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ExpectKey {
    /// Source address of the expected flow.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// How the expected flow is translated, when its control flow is (Linux's
/// `exp->dir`, `exp->saved_proto` and `nf_nat_follow_master`): its source
/// becomes the address the control flow's packets of direction
/// `dir.other()` go to, its destination the address they come from, at
/// the port the announcement named before NAT rewrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatFollow {
    /// The direction, in the control flow, of the expected flow's first
    /// packet (the opposite of the announcement's).
    pub dir: Dir,
    /// The port the announcement named (the expected flow's destination
    /// port after translation).
    pub port: u16,
}

/// One pending expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// What it matches.
    pub key: ExpectKey,
    /// The control flow that announced it.
    pub master: FlowId,
    /// When it stops matching.
    pub expires: Instant,
    /// The expected flow's translation, when the control flow is translated.
    pub nat: Option<NatFollow>,
}

/// Why [`Expectations::insert_unique`] refused an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectRefused {
    /// Another control flow's live expectation has this key (the kernel's
    /// `-EBUSY`: a NAT helper then tries another port).
    Busy,
    /// The table is full of live expectations.
    Full,
}

/// Expectation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExpectStats {
    /// Expectations created.
    pub created: u64,
    /// Expectations consumed by a RELATED flow.
    pub used: u64,
    /// Expectations that timed out.
    pub expired: u64,
    /// Expectations replaced by a newer one of the same control flow.
    pub replaced: u64,
    /// Expectations removed because their control flow ended.
    pub removed_with_master: u64,
    /// Announcements refused because the table was full.
    pub table_full: u64,
}

/// The table was full of live expectations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectFull;

/// The expectation table.
pub struct Expectations {
    index: HashMap<ExpectKey, u32, RandomState>,
    slots: Slab<Expectation>,
    /// Counters.
    pub stats: ExpectStats,
}

impl Expectations {
    /// A table for `max` expectations, allocated now.
    pub fn new(max: usize) -> Expectations {
        let max = max.max(1);
        Expectations {
            index: HashMap::with_capacity_and_hasher(max, RandomState::new()),
            slots: Slab::with_limit(max),
            stats: ExpectStats::default(),
        }
    }

    /// Number of pending expectations (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when none is pending.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// An expectation by id.
    pub fn get(&self, id: u32) -> Option<&Expectation> {
        self.slots.get(id)
    }

    /// Live expectations at `now`.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = &Expectation> {
        self.slots
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e.expires > now)
    }

    /// Live expectations at `now`, with their ids, in id order.
    pub fn iter_ids(&self, now: Instant) -> impl Iterator<Item = (u32, &Expectation)> {
        self.slots.iter().filter(move |(_, e)| e.expires > now)
    }

    /// The cap.
    pub fn limit(&self) -> usize {
        self.slots.limit()
    }

    /// File `exp` as it is (a restored expectation: its master, expiry
    /// and translation already set); `None` when the table is full or an
    /// expectation has its key. Not counted as created.
    pub fn insert_restored(&mut self, exp: Expectation) -> Option<u32> {
        if self.index.contains_key(&exp.key) {
            return None;
        }
        let id = self.slots.insert(exp).ok()?;
        self.index.insert(exp.key, id);
        Some(id)
    }

    /// Change the cap; a larger one allocates now (outside the packet path).
    pub fn resize(&mut self, max: usize) {
        let max = max.max(1);
        if max > self.slots.limit() {
            self.index.reserve(max - self.index.len());
        }
        self.slots.set_limit(max);
    }

    /// Remove an expectation by id.
    pub fn remove(&mut self, id: u32) -> Option<Expectation> {
        let exp = self.slots.remove(id)?;
        self.index.remove(&exp.key);
        Some(exp)
    }

    /// Remove every expectation.
    pub fn clear(&mut self) {
        for id in 0..self.slots.slot_count() {
            self.remove(id as u32);
        }
    }

    /// Add an expectation for `master`, valid for `timeout`. An existing
    /// expectation with the same key is replaced. When the table is full,
    /// expired ones are collected first.
    pub fn insert(
        &mut self,
        key: ExpectKey,
        master: FlowId,
        timeout: Duration,
        now: Instant,
    ) -> Result<u32, ExpectFull> {
        if let Some(&old) = self.index.get(&key) {
            self.remove(old);
        }
        self.put(key, master, now + timeout, None, now)
    }

    /// Add an expectation for `master` whose flow is translated as `nat`
    /// says, valid for `timeout`, unless another control flow's live
    /// expectation has the same key (then [`ExpectRefused::Busy`], as the
    /// kernel's `__nf_ct_expect_check`; `master`'s own is replaced).
    pub fn insert_unique(
        &mut self,
        key: ExpectKey,
        master: FlowId,
        nat: NatFollow,
        timeout: Duration,
        now: Instant,
    ) -> Result<u32, ExpectRefused> {
        if let Some(&old) = self.index.get(&key) {
            let live_other = self
                .get(old)
                .is_some_and(|e| e.master != master && e.expires > now);
            if live_other {
                return Err(ExpectRefused::Busy);
            }
            self.remove(old);
        }
        self.put(key, master, now + timeout, Some(nat), now)
            .map_err(|_| ExpectRefused::Full)
    }

    fn put(
        &mut self,
        key: ExpectKey,
        master: FlowId,
        expires: Instant,
        nat: Option<NatFollow>,
        now: Instant,
    ) -> Result<u32, ExpectFull> {
        if self.slots.len() >= self.slots.limit() {
            self.collect_expired(now);
        }
        let exp = Expectation {
            key,
            master,
            expires,
            nat,
        };
        let Ok(id) = self.slots.insert(exp) else {
            self.stats.table_full += 1;
            return Err(ExpectFull);
        };
        self.index.insert(key, id);
        self.stats.created += 1;
        Ok(id)
    }

    /// Consume the expectation a new flow `src -> dst:dport` matches, if any.
    pub fn take(&mut self, key: &ExpectKey, now: Instant) -> Option<Expectation> {
        let &id = self.index.get(key)?;
        let exp = self.remove(id)?;
        if exp.expires <= now {
            self.stats.expired += 1;
            return None;
        }
        self.stats.used += 1;
        Some(exp)
    }

    /// Remove expired expectations.
    pub fn collect_expired(&mut self, now: Instant) {
        for id in 0..self.slots.slot_count() as u32 {
            if self.slots.get(id).is_some_and(|e| e.expires <= now) {
                self.remove(id);
                self.stats.expired += 1;
            }
        }
    }
}
