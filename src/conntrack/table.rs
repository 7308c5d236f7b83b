//! The flow table's storage: the flow pool, the keyed index over it, the
//! helper-state pool, early drop and limits. Classification is in
//! [`super::track`]; the expiry sweep's bookkeeping in [`super::expiry`].
//!
//! The table allocates everything it will ever need when it is created
//! (`max` flows), so tracking never allocates. Lookups hash with std's
//! SipHash under a random per-process key, so remote peers cannot choose
//! colliding tuples; one index entry per flow serves both directions (see
//! `FlowKey` in [`super::tuple`]), and a translated flow, whose reply tuple
//! is not the inverse of its original, has a second entry filed under its
//! reply tuple's key (as Linux hashes both of a conntrack's tuples).

use std::collections::hash_map::RandomState;

use serde::Serialize;

use super::config::{ConntrackConfig, HelperConfig};
use super::events::{Event, EventKind, EventRing};
use super::expect::Expectations;
use super::expiry::ExpiryState;
use super::flow::{Flow, FlowId, HelperSlot, NatSlot};
use super::index::FlowIndex;
use super::seqadj::SeqAdjust;
use super::sources::SourceCounts;
use super::translation::Translation;
use super::tuple::{key_hash, Dir, Tuple};
use crate::slab::Slab;
use crate::time::Instant;

/// How many slots early drop looks at for an evictable flow (the kernel looks
/// at a few buckets near the new flow's bucket).
const EARLY_DROP_SCAN: usize = 64;

/// Per-flow state of a helper, kept in a pool the table owns so that a
/// flow's helper state lives and dies with the flow. Implemented by the
/// helpers (see [`crate::helpers`]); `()` for a table without helpers.
pub trait HelperState: Default {
    /// The expectation this flow announced last, if still pending: it is
    /// removed with the flow.
    fn pending_expectation(&self) -> Option<u32>;

    /// The flow's sequence adjustment, when a NAT helper rewrote a line
    /// to another length (see [`super::seqadj`]); `None` otherwise.
    fn seq_adjust(&self) -> Option<&SeqAdjust> {
        None
    }
}

impl HelperState for () {
    fn pending_expectation(&self) -> Option<u32> {
        None
    }
}

/// Table counters, as `conntrack -S`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// Lookups made.
    pub searched: u64,
    /// Flows inserted (confirmed).
    pub inserted: u64,
    /// Flows removed for any reason.
    pub deleted: u64,
    /// Flows removed because their timeout passed.
    pub expired: u64,
    /// Non-assured flows evicted to make room.
    pub early_drop: u64,
    /// New flows refused because the table was full.
    pub table_full: u64,
    /// New flows refused at confirmation because a flow with one of their
    /// tuples was already tracked (the kernel's `insert_failed`).
    pub clash: u64,
    /// Closed flows replaced by a new SYN on the same tuple.
    pub reopened: u64,
    /// Flows that should have had a helper but got none: the helper-state
    /// pool was full.
    pub helper_no_slot: u64,
}

/// Why [`Conntrack::confirm`] did not insert a flow; the packet is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmError {
    /// The table is full and no flow could be evicted.
    TableFull,
    /// One of the flow's tuples is already tracked.
    Clash,
}

/// The connection tracking table; `S` is the helpers' per-flow state.
pub struct Conntrack<S: HelperState = ()> {
    pub(super) cfg: ConntrackConfig,
    pub(super) helpers: HelperConfig,
    index: FlowIndex,
    index_hasher: RandomState,
    pub(super) flows: Slab<Flow>,
    helper_states: Slab<S>,
    translations: Slab<Translation>,
    expiry: ExpiryState,
    pub(super) last_now: Instant,
    /// Table counters.
    pub stats: TableStats,
    /// Pending expectations.
    pub expectations: Expectations,
    /// Flow events, recorded while enabled.
    pub events: EventRing,
    /// Live flows per source address, when a rule limits them
    /// ([`Conntrack::count_sources`]).
    pub sources: SourceCounts,
}

impl<S: HelperState> Conntrack<S> {
    /// A table for `cfg.max` flows (and `cfg.expectation_max` expectations),
    /// allocated in full now, with the given helpers.
    pub fn new(cfg: ConntrackConfig, helpers: HelperConfig) -> Conntrack<S> {
        let max = cfg.max.max(1);
        Conntrack {
            helper_states: Slab::with_limit(helpers.max_helped_flows()),
            translations: Slab::with_limit(cfg.translated_max()),
            expectations: Expectations::new(cfg.expectation_max),
            events: EventRing::default(),
            helpers,
            cfg,
            index: FlowIndex::for_flows(max + cfg.translated_max()),
            index_hasher: RandomState::new(),
            flows: Slab::with_limit(max),
            expiry: ExpiryState::default(),
            last_now: Instant::ZERO,
            stats: TableStats::default(),
            sources: SourceCounts::default(),
        }
    }

    /// Count live flows per source address in a table for `max` sources
    /// (0: stop counting), counting the flows already tracked. Allocates
    /// (a new table) only when `max` changes; call it outside the packet
    /// path (start, reload, restore).
    pub fn count_sources(&mut self, max: usize) {
        if max == 0 && !self.sources.enabled() {
            return;
        }
        if max == self.sources.max() {
            // Same size: recount in the table already allocated.
            self.sources.clear();
        } else {
            self.sources = SourceCounts::new(max);
        }
        for id in 0..self.flows.slot_count() {
            if let Some(f) = self.flows.get(id as FlowId) {
                self.sources.up(f.original.src);
            }
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ConntrackConfig {
        &self.cfg
    }

    /// The helpers in force.
    pub fn helpers(&self) -> &HelperConfig {
        &self.helpers
    }

    /// Number of flows in the table (expired ones included until collected).
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// A flow by id.
    pub fn get(&self, id: FlowId) -> Option<&Flow> {
        self.flows.get(id)
    }

    /// Every flow in the table that has not expired at `now`.
    pub fn flows(&self, now: Instant) -> impl Iterator<Item = &Flow> {
        self.flows
            .iter()
            .map(|(_, f)| f)
            .filter(move |f| f.expires > now)
    }

    /// Ids of every flow that has not expired at `now`.
    pub fn flow_ids(&self, now: Instant) -> impl Iterator<Item = FlowId> + '_ {
        self.flows
            .iter()
            .filter(move |(_, f)| f.expires > now)
            .map(|(id, _)| id)
    }

    /// Find the flow a tuple belongs to without touching the table or its
    /// counters (for inspection; the packet path uses [`Conntrack::lookup`]).
    pub fn peek(&self, tuple: &Tuple, now: Instant) -> Option<(&Flow, Dir)> {
        let (id, dir) = self.find(tuple)?;
        self.get(id)
            .filter(|f| f.expires > now)
            .map(|flow| (flow, dir))
    }

    /// The flow `tuple` belongs to and the direction it travels in.
    fn find(&self, tuple: &Tuple) -> Option<(FlowId, Dir)> {
        let mut dir = Dir::Original;
        let inverse = tuple.invert();
        let entry = self
            .index
            .find(key_hash(&self.index_hasher, tuple), |entry| {
                let flow = self.flows.get(entry >> 1);
                let found = flow.and_then(|f| {
                    // The original direction needs no translation looked up.
                    if f.original == *tuple {
                        return Some(Dir::Original);
                    }
                    let reply = self.translation(f).map(|t| &t.reply);
                    f.direction_of(tuple, inverse.as_ref(), reply)
                });
                match found {
                    Some(d) => {
                        dir = d;
                        true
                    }
                    None => false,
                }
            })?;
        Some((entry >> 1, dir))
    }

    /// A translated flow's translation.
    fn translation(&self, flow: &Flow) -> Option<&Translation> {
        self.translations.get(flow.nat.index()?)
    }

    /// The tuple of `flow`'s reply packets: the inverse of its original,
    /// or what address translation made it.
    pub fn reply_tuple(&self, flow: &Flow) -> Tuple {
        match self.translation(flow) {
            Some(t) => t.reply,
            None => flow.tuple(Dir::Reply),
        }
    }

    /// The tuple of `flow`'s packets in direction `dir`, as they arrive.
    pub fn tuple(&self, flow: &Flow, dir: Dir) -> Tuple {
        match dir {
            Dir::Original => flow.original,
            Dir::Reply => self.reply_tuple(flow),
        }
    }

    /// Whether a flow that has not expired at `now` has `tuple` as one of
    /// its tuples (Linux's `nf_conntrack_tuple_taken`, what address
    /// translation asks of a candidate reply tuple).
    pub fn tuple_taken(&self, tuple: &Tuple, now: Instant) -> bool {
        self.peek(tuple, now).is_some()
    }

    /// Look a tuple up; a flow found expired is removed and not returned.
    pub fn lookup(&mut self, tuple: &Tuple, now: Instant) -> Option<(FlowId, Dir)> {
        self.stats.searched += 1;
        let (id, dir) = self.find(tuple)?;
        if self.get(id).is_some_and(|f| f.expires > now) {
            return Some((id, dir));
        }
        self.remove(id);
        self.stats.expired += 1;
        None
    }

    /// Remove a flow, its helper state and the expectation it announced.
    pub fn remove(&mut self, id: FlowId) {
        let Some(flow) = self.flows.get(id).copied() else {
            return;
        };
        let reply = self.translation(&flow).map(|t| t.reply);
        // The index entries go first, while the flow and its translation are
        // still in their pools: moving entries back asks `hash_of` for the
        // hash of every entry behind the hole, which may be this flow's
        // other entry.
        let (flows, translations, hasher) = (&self.flows, &self.translations, &self.index_hasher);
        // The hash an entry is filed under: its flow's original tuple's
        // key, or (key bit set) its translated reply tuple's.
        let hash_of = |entry: u32| {
            let Some(f) = flows.get(entry >> 1) else {
                return 0;
            };
            let reply = f.nat.index().and_then(|slot| translations.get(slot));
            match (entry & 1, reply) {
                (1, Some(t)) => key_hash(hasher, &t.reply),
                _ => key_hash(hasher, &f.original),
            }
        };
        self.index.remove(
            key_hash(hasher, &flow.original),
            entry(id, Dir::Original),
            hash_of,
        );
        if let Some(r) = reply {
            self.index
                .remove(key_hash(hasher, &r), entry(id, Dir::Reply), hash_of);
        }
        self.flows.remove(id);
        self.sources.down(flow.original.src);
        if let Some(slot) = flow.nat.index() {
            self.translations.remove(slot);
        }
        let at = self.last_now;
        self.emit(EventKind::Destroy, &flow, at);
        if let HelperSlot::Attached(slot) = flow.helper {
            let pending = self
                .helper_states
                .remove(slot)
                .and_then(|st| st.pending_expectation());
            if let Some(eid) = pending {
                if self.expectations.get(eid).is_some_and(|e| e.master == id) {
                    self.expectations.remove(eid);
                    self.expectations.stats.removed_with_master += 1;
                }
            }
        }
        self.stats.deleted += 1;
    }

    /// Tell the table the time, for events of removals that do not come from
    /// a packet (flush, kill).
    pub fn set_clock(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// Remove every flow and expectation.
    pub fn flush(&mut self) {
        for id in 0..self.flows.slot_count() {
            self.remove(id as FlowId);
        }
        self.expectations.clear();
    }

    pub(super) fn emit(&mut self, kind: EventKind, flow: &Flow, at: Instant) {
        if self.events.enabled() {
            self.events.push(Event {
                kind,
                tuple: flow.tuple(Dir::Original),
                tcp_state: flow.tcp_state(),
                replied: flow.seen_reply,
                assured: flow.assured,
                at,
            });
        }
    }

    /// Apply new settings to a running table: timeouts and switches take
    /// effect for the next packet of every flow; a larger `max` grows the
    /// table (allocating now, outside the packet path); helpers change for
    /// flows created from now on.
    pub fn reconfigure(&mut self, cfg: ConntrackConfig, helpers: HelperConfig) {
        let max = cfg.max.max(1);
        let entries = max + cfg.translated_max();
        if entries > self.index.capacity() {
            // Grow the index (allocating now, outside the packet path).
            let mut index = FlowIndex::for_flows(entries);
            for (id, flow) in self.flows.iter() {
                let hasher = &self.index_hasher;
                index.insert(key_hash(hasher, &flow.original), entry(id, Dir::Original));
                if let Some(t) = self.translation(flow) {
                    index.insert(key_hash(hasher, &t.reply), entry(id, Dir::Reply));
                }
            }
            self.index = index;
        }
        self.flows.set_limit(max);
        self.translations.set_limit(cfg.translated_max());
        self.helper_states.set_limit(helpers.max_helped_flows());
        self.expectations.resize(cfg.expectation_max);
        self.cfg = cfg;
        self.helpers = helpers;
    }

    /// Insert a pending flow after the rules accepted its first packet.
    ///
    /// When the table is full, first evicts an expired or non-assured flow near
    /// the new flow's (keyed) hash position; if there is none, the flow is
    /// refused ([`ConfirmError::TableFull`]) and the packet must be dropped.
    /// A flow one of whose tuples is already tracked is refused too
    /// ([`ConfirmError::Clash`]).
    ///
    /// `reply` is the reply tuple address translation chose (`None`, or the
    /// inverse of the original: untranslated); a translated flow takes a
    /// slot of the translation pool, refused as [`ConfirmError::TableFull`]
    /// when there is none (a config without NAT has none).
    pub fn confirm(
        &mut self,
        mut flow: Flow,
        reply: Option<Tuple>,
        now: Instant,
    ) -> Result<FlowId, ConfirmError> {
        let reply = reply.filter(|r| Some(*r) != flow.original.invert());
        // A tuple and its inverse have one key: one search finds either. A
        // flow that holds one of the tuples but has expired is removed
        // (address translation counted its tuples free).
        // With translated flows in the table, an untranslated flow's reply
        // tuple may be a translated flow's tuple: it is looked up too.
        let reply_to_check = match reply {
            Some(r) => Some(r),
            None if self.translations.limit() > 0 || !self.translations.is_empty() => {
                flow.original.invert()
            }
            None => None,
        };
        for tuple in core::iter::once(flow.original).chain(reply_to_check) {
            if let Some((id, _)) = self.find(&tuple) {
                if self.get(id).is_some_and(|f| f.expires > now) {
                    self.stats.clash += 1;
                    return Err(ConfirmError::Clash);
                }
                self.remove(id);
                self.stats.expired += 1;
            }
        }
        let hash = key_hash(&self.index_hasher, &flow.original);
        if self.flows.len() >= self.flows.limit() && !self.early_drop(hash, now) {
            self.stats.table_full += 1;
            return Err(ConfirmError::TableFull);
        }
        // Room in the index for the flow's entries, checked first so that
        // the inserts below cannot fail halfway (the index only refuses at
        // capacity, and slot ids fit: the pool's limit is at most MAX_FLOWS).
        let entries = 1 + usize::from(reply.is_some());
        if self.index.len() + entries > self.index.capacity() {
            self.stats.table_full += 1;
            return Err(ConfirmError::TableFull);
        }
        flow.nat = NatSlot::NONE;
        if let Some(reply) = reply {
            match self.translations.insert(Translation { reply }) {
                Ok(slot) => flow.nat = NatSlot::at(slot),
                Err(_) => {
                    self.stats.table_full += 1;
                    return Err(ConfirmError::TableFull);
                }
            }
        }
        let wants_helper = flow.helper == HelperSlot::Wanted;
        flow.helper = HelperSlot::None;
        let id = match self.flows.insert(flow) {
            Ok(id) => id,
            Err(_) => {
                // Over the limit after a reload lowered `max`.
                if let Some(slot) = flow.nat.index() {
                    self.translations.remove(slot);
                }
                self.stats.table_full += 1;
                return Err(ConfirmError::TableFull);
            }
        };
        let hasher = &self.index_hasher;
        self.index.insert(hash, entry(id, Dir::Original));
        if let Some(reply) = reply {
            self.index
                .insert(key_hash(hasher, &reply), entry(id, Dir::Reply));
        }
        if wants_helper {
            match self.helper_states.insert(S::default()) {
                Ok(slot) => {
                    if let Some(f) = self.flows.get_mut(id) {
                        f.helper = HelperSlot::Attached(slot);
                    }
                }
                Err(_) => self.stats.helper_no_slot += 1,
            }
        }
        self.note_expiry(flow.expires);
        self.sources.up(flow.original.src);
        self.emit(EventKind::New, &flow, now);
        self.stats.inserted += 1;
        Ok(id)
    }

    fn early_drop(&mut self, near_hash: u64, now: Instant) -> bool {
        let n = self.flows.slot_count();
        if n == 0 {
            return false;
        }
        let start = (near_hash as usize) % n;
        for step in 0..EARLY_DROP_SCAN.min(n) {
            let id = (start + step) % n;
            let evictable = self
                .flows
                .get(id as FlowId)
                .is_some_and(|f| f.expires <= now || !f.assured);
            if evictable {
                self.remove(id as FlowId);
                self.stats.early_drop += 1;
                return true;
            }
        }
        false
    }

    /// Remember that a flow expires at `at`.
    pub(super) fn note_expiry(&mut self, at: Instant) {
        self.expiry.note(at);
    }

    /// When [`Conntrack::collect_expired`] has work next: `now` while a pass is
    /// under way, else a lower bound of the earliest expiry (`NEVER` when empty).
    pub fn next_deadline(&self, now: Instant) -> Instant {
        self.expiry.deadline(now, self.flows.is_empty())
    }

    /// Remove expired flows, looking at no more than `slots` slots and
    /// removing no more than `removals` flows, so that a large table is swept
    /// in bounded steps (looking at a slot is a few nanoseconds, removing a
    /// flow a few hundred). Call again while [`Conntrack::next_deadline`] is
    /// not in the future.
    pub fn collect_expired(&mut self, now: Instant, slots: usize, removals: usize) {
        self.last_now = now;
        let n = self.flows.slot_count();
        let Some(range) = self.expiry.step(now, self.flows.is_empty(), slots, n) else {
            return;
        };
        let (mut next, mut removed, mut live_min) = (range.start, 0, Instant::NEVER);
        while next < range.end && removed < removals {
            let id = next as FlowId;
            match self.flows.get(id).map(|f| f.expires) {
                Some(expires) if expires <= now => {
                    self.remove(id);
                    self.stats.expired += 1;
                    removed += 1;
                }
                Some(expires) => live_min = live_min.min(expires),
                None => {}
            }
            next += 1;
        }
        self.expiry.advance(next, live_min, n);
    }

    /// The sequence adjustment of flow `id`, when it has one in force
    /// (a helper flow whose lines a NAT helper rewrote to another length).
    pub fn seq_adjust(&self, id: FlowId) -> Option<SeqAdjust> {
        let HelperSlot::Attached(slot) = self.flows.get(id)?.helper else {
            return None;
        };
        self.helper_states
            .get(slot)?
            .seq_adjust()
            .filter(|s| s.is_active())
            .copied()
    }

    /// The helper state of `flow` (one of this table's), when it has one.
    pub fn helper_state(&self, flow: &Flow) -> Option<&S> {
        match flow.helper {
            HelperSlot::Attached(slot) => self.helper_states.get(slot),
            _ => None,
        }
    }

    /// What a helper works on for flow `id`, when one is attached: the
    /// flow, its helper state and the expectation table, borrowed together.
    pub fn helper_view(&mut self, id: FlowId) -> Option<HelperView<'_, S>> {
        let flow = self.flows.get(id)?;
        let HelperSlot::Attached(slot) = flow.helper else {
            return None;
        };
        let reply = self.reply_tuple(flow);
        Some(HelperView {
            flow,
            reply,
            state: self.helper_states.get_mut(slot)?,
            expectations: &mut self.expectations,
        })
    }
}

/// The index entry filing flow `id` under the key of its `key` tuple.
fn entry(id: FlowId, key: Dir) -> u32 {
    id << 1 | key.index() as u32
}

/// See [`Conntrack::helper_view`].
pub struct HelperView<'a, S> {
    /// The control flow.
    pub flow: &'a Flow,
    /// Its reply tuple.
    pub reply: Tuple,
    /// Its helper state.
    pub state: &'a mut S,
    /// Every pending expectation.
    pub expectations: &'a mut Expectations,
}
