//! The reassembler: fragments in, whole datagrams out, within a fixed
//! memory budget.

use std::hash::{BuildHasher, RandomState};

use super::config::{DefragConfig, MAX_FRAGMENTS};
use super::fragment::{First, Fragment, Read};
use super::index::Index;
use super::outcome::{Boundaries, Family, FragDrop, Outcome, Reassembled};
use super::pool::{chunks_for, Pool, CHUNK};
use super::queue::{Policy, Queue};
use super::slots::Slots;
use super::stats::DefragStats;
use super::{v4, v6};
use crate::side::Side;
use crate::time::Instant;
use crate::wire::PROTO_TCP;

/// Memory a queue record accounts for (the kernel charges `qsize`).
pub const QUEUE_COST: usize = core::mem::size_of::<Queue>();

/// Expired queues [`Reassembler::push`] removes before its own work, so
/// that a caller who seldom ticks still sees queues expire.
const PUSH_EXPIRY_BUDGET: usize = 4;

/// What a fragment without a queue is checked against.
static NO_QUEUE: Queue = Queue::EMPTY;

/// The datagram in the output buffer.
#[derive(Clone, Copy, Debug)]
struct Done {
    info: Reassembled,
    first: First,
}

/// See the module documentation of [`super`].
#[derive(Debug)]
pub struct Reassembler {
    cfg: DefragConfig,
    hasher: RandomState,
    pool: Pool,
    slots: Slots,
    index: Index,
    out: Box<[u8]>,
    done: Option<Done>,
    stats: DefragStats,
}

fn policy(family: Family) -> &'static Policy {
    match family {
        Family::V4 => &v4::POLICY,
        Family::V6 => &v6::POLICY,
    }
}

impl Reassembler {
    /// A reassembler with everything allocated: `high_thresh / 256`
    /// chunks of 256 bytes, as many queue records as that memory could
    /// hold (each queue holds at least one chunk), their index, and a
    /// datagram buffer of 65,575 bytes.
    pub fn new(cfg: DefragConfig) -> Reassembler {
        let chunks = cfg.high_thresh / CHUNK;
        let queues = (cfg.high_thresh / (QUEUE_COST + CHUNK)).max(1);
        Reassembler {
            cfg,
            hasher: RandomState::new(),
            pool: Pool::new(chunks),
            slots: Slots::new(queues),
            index: Index::for_queues(queues),
            out: vec![0; v6::MAX_LEN].into_boxed_slice(),
            done: None,
            stats: DefragStats::default(),
        }
    }

    /// The limits it was made with.
    pub fn config(&self) -> &DefragConfig {
        &self.cfg
    }

    /// The counters, and the memory held now.
    pub fn stats(&self) -> DefragStats {
        DefragStats {
            queues: self.slots.live(),
            memory: self.memory(),
            ..self.stats
        }
    }

    fn memory(&self) -> usize {
        self.pool.in_use() * CHUNK + self.slots.live() * QUEUE_COST
    }

    /// The datagram the last push completed (empty when it completed
    /// none), to read and change in place (TTL, NAT) until the next push.
    pub fn datagram_mut(&mut self) -> &mut [u8] {
        let len = self.done.map_or(0, |d| d.info.len);
        self.out.get_mut(..len).unwrap_or(&mut [])
    }

    /// [`Reassembler::datagram_mut`], read-only.
    pub fn datagram(&self) -> &[u8] {
        let len = self.done.map_or(0, |d| d.info.len);
        self.out.get(..len).unwrap_or(&[])
    }

    /// Write the first `out.len()` bytes (at most
    /// [`Reassembled::first_len`]) of the completed datagram's first
    /// fragment, as it came but with the datagram's header as it is now
    /// (IPv4: the TOS, total length and flags it came with, checksum
    /// recomputed; IPv6: the fragment header back in place). What an ICMP
    /// error about the datagram quotes. Returns the bytes written (0 when
    /// the last push completed no datagram).
    pub fn first_fragment(&self, out: &mut [u8]) -> usize {
        let Some(done) = self.done else {
            return 0;
        };
        match done.info.family {
            Family::V4 => v4::first_fragment(self.datagram(), &done.first, out),
            Family::V6 => v6::first_fragment(self.datagram(), &done.first, out),
        }
    }

    /// Take a packet that arrived on `side` at `now`. See [`Outcome`].
    ///
    /// Work: a few expired queues removed, a hash lookup, a binary search
    /// over at most 64 runs, the fragment's bytes copied once into the
    /// pool; when memory is short, whole queues evicted; on completion,
    /// every byte of the datagram copied once into its buffer. Never
    /// allocates or panics.
    pub fn push(&mut self, side: Side, pkt: &[u8], now: Instant) -> Outcome {
        self.done = None;
        self.expire(now, PUSH_EXPIRY_BUDGET);
        let read = match pkt.first().map(|b| b >> 4) {
            Some(4) => v4::read(side, pkt),
            Some(6) => v6::read(side, pkt),
            _ => Read::Whole,
        };
        match read {
            Read::Whole => Outcome::NotFragment,
            Read::Drop(reason) => self.refuse(reason),
            Read::Fragment(f) => self.queue(&f, now),
        }
    }

    fn refuse(&mut self, reason: FragDrop) -> Outcome {
        self.stats.count_drop(reason);
        Outcome::Dropped(reason)
    }

    fn queue(&mut self, f: &Fragment<'_>, now: Instant) -> Outcome {
        let hash = self.hasher.hash_one(f.key);
        let found = self.lookup(hash, f, now);
        let q = found.and_then(|id| self.slots.get(id)).unwrap_or(&NO_QUEUE);
        let plan = match q.check(policy(f.family), &f.incoming, self.cfg.max_fragments) {
            Ok(plan) => plan,
            Err((reason, discard)) => {
                if let (true, Some(id)) = (discard, found) {
                    self.discard(id);
                }
                return self.refuse(reason);
            }
        };
        let first = f.incoming.start == 0;
        let header: &[u8] = if first { f.header } else { &[] };
        let bytes = header.len() + f.data.len();
        let cost = chunks_for(bytes) * CHUNK + if found.is_none() { QUEUE_COST } else { 0 };
        if !self.make_room(cost, found) {
            return self.refuse(FragDrop::NoMemory);
        }
        let id = match found {
            Some(id) => id,
            None => match self.create(f, hash, now) {
                Some(id) => id,
                None => return self.refuse(FragDrop::NoMemory),
            },
        };
        let Some((chain, _)) = self.pool.store(&[header, f.data]) else {
            if found.is_none() {
                self.discard(id);
            }
            return self.refuse(FragDrop::NoMemory);
        };
        let committed = self
            .slots
            .get_mut(id)
            .is_some_and(|q| q.commit(&plan, chain));
        let Some(q) = self.slots.get_mut(id).filter(|_| committed) else {
            self.pool.release(chain);
            if found.is_none() {
                self.discard(id);
            }
            return self.refuse(FragDrop::NoMemory);
        };
        if first {
            q.first = f.first;
        }
        q.ecn |= f.ecn;
        q.max_size = q.max_size.max(f.size);
        if f.dont_fragment {
            q.max_df_size = q.max_df_size.max(f.size);
        }
        let complete = q.is_complete();
        self.stats.queued += 1;
        let memory = self.memory();
        self.stats.memory_high_water = self.stats.memory_high_water.max(memory);
        if complete {
            self.reassemble(id)
        } else {
            Outcome::Queued
        }
    }

    /// The live queue of `f`'s datagram; one that is due is expired first.
    fn lookup(&mut self, hash: u64, f: &Fragment<'_>, now: Instant) -> Option<u32> {
        let slots = &self.slots;
        let id = self
            .index
            .find(hash, |id| slots.get(id).is_some_and(|q| q.key == f.key))?;
        if self.slots.get(id).is_some_and(|q| q.deadline <= now) {
            self.discard(id);
            self.stats.timed_out += 1;
            return None;
        }
        Some(id)
    }

    fn create(&mut self, f: &Fragment<'_>, hash: u64, now: Instant) -> Option<u32> {
        let timeout = match f.family {
            Family::V4 => self.cfg.timeout_v4,
            Family::V6 => self.cfg.timeout_v6,
        };
        let mut q = Queue::EMPTY;
        q.key = f.key;
        q.hash = hash;
        q.family = f.family;
        q.created = now;
        q.deadline = now + timeout;
        let id = self.slots.take(q)?;
        if !self.index.insert(hash, id) {
            self.slots.put(id);
            return None;
        }
        Some(id)
    }

    /// Make `cost` more bytes fit under the high threshold: when they do
    /// not, evict the oldest queues other than `keep` until memory is at
    /// most the low threshold and they fit.
    fn make_room(&mut self, cost: usize, keep: Option<u32>) -> bool {
        let high = self.cfg.high_thresh;
        if self.memory() + cost <= high {
            return true;
        }
        while self.memory() > self.cfg.low_thresh || self.memory() + cost > high {
            let Some(victim) = self.slots.oldest_except(keep) else {
                break;
            };
            self.discard(victim);
            self.stats.evicted += 1;
        }
        self.memory() + cost <= high
    }

    /// Free queue `id` and everything it holds.
    fn discard(&mut self, id: u32) {
        let Some(q) = self.slots.get(id) else {
            return;
        };
        let hash = q.hash;
        for frag in q.frags() {
            self.pool.release(frag.chain);
        }
        let slots = &self.slots;
        self.index
            .remove(hash, id, |other| slots.get(other).map_or(0, |q| q.hash));
        self.slots.put(id);
    }

    /// Build queue `id`'s datagram in the output buffer and free the queue.
    fn reassemble(&mut self, id: u32) -> Outcome {
        let Some(q) = self.slots.get(id) else {
            return Outcome::Queued;
        };
        let ecn = match ecn_outcome(q.ecn) {
            Some(ecn) => ecn,
            None => {
                self.discard(id);
                return self.refuse(FragDrop::Ecn);
            }
        };
        let hlen = usize::from(q.first.header_len);
        let len = hlen + q.len as usize;
        let limit = match q.family {
            Family::V4 => v4::MAX_LEN,
            Family::V6 => v6::MAX_LEN,
        };
        let Some(dg) = self.out.get_mut(..len).filter(|_| len <= limit) else {
            self.discard(id);
            return self.refuse(FragDrop::Oversize);
        };
        for frag in q.frags() {
            let (start, end) = (usize::from(frag.start), frag.end() as usize);
            let at = if start == 0 { 0 } else { hlen + start };
            if let Some(dst) = dg.get_mut(at..hlen + end) {
                self.pool.load(frag.chain, 0, dst);
            }
        }
        match q.family {
            Family::V4 => v4::finish(dg, q, ecn),
            Family::V6 => v6::finish(dg, q, ecn),
        }
        let mut starts = [0u16; MAX_FRAGMENTS];
        for (s, frag) in starts.iter_mut().zip(q.frags()) {
            *s = frag.start;
        }
        let mut boundaries = Boundaries::new(hlen, &starts[..q.frags().len()]);
        // Linux's early demux (`ip_rcv_finish_core`, `tcp_v4_early_demux`)
        // pulls the 20 bytes of a TCP header into the first fragment's
        // buffer; when that fragment held fewer, the first piece no longer
        // ends on a multiple of 8 and `ip_do_fragment` cuts evenly.
        if q.family == Family::V4
            && q.key.protocol == PROTO_TCP
            && boundaries.start(1).is_some_and(|s| s < hlen + 20)
        {
            boundaries = Boundaries::NONE;
        }
        let info = Reassembled {
            boundaries,
            family: q.family,
            len,
            max_fragment_size: q.max_size as usize,
            first_len: q.first.len as usize,
            fragments: q.frags().len(),
            dont_fragment: q.family == Family::V4 && q.max_df_size == q.max_size,
            ident: q.key.ident,
        };
        self.done = Some(Done {
            info,
            first: q.first,
        });
        self.discard(id);
        self.stats.reassembled += 1;
        Outcome::Complete(info)
    }

    /// Expire queues due at `now`: all of them. No ICMP time exceeded is
    /// owed (Linux's defrag users skip it).
    pub fn tick(&mut self, now: Instant) {
        self.expire(now, usize::MAX);
    }

    fn expire(&mut self, now: Instant, mut budget: usize) {
        for family in [Family::V4, Family::V6] {
            while budget > 0 {
                let Some(id) = self.slots.oldest(family) else {
                    break;
                };
                if self.slots.get(id).is_none_or(|q| q.deadline > now) {
                    break;
                }
                self.discard(id);
                self.stats.timed_out += 1;
                budget -= 1;
            }
        }
    }

    /// When [`Reassembler::tick`] has work next: the earliest deadline
    /// (`now` when one is past), `Instant::NEVER` when no queue is live.
    pub fn next_deadline(&self, now: Instant) -> Instant {
        [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.slots.oldest(f).and_then(|id| self.slots.get(id)))
            .map(|q| q.deadline.max(now))
            .min()
            .unwrap_or(Instant::NEVER)
    }
}

/// `ip_frag_ecn_table` (RFC 3168 5.3): the bits to OR into the
/// reassembled header's ECN field, `None` when Not-ECT fragments mix with
/// ECT or CE ones.
fn ecn_outcome(seen: u8) -> Option<u8> {
    const NOT_ECT: u8 = 1;
    const CE: u8 = 1 << 3;
    const CE_CODE: u8 = 3;
    if seen & NOT_ECT != 0 && seen != NOT_ECT {
        return None;
    }
    Some(if seen & CE != 0 && seen != CE {
        CE_CODE
    } else {
        0
    })
}
