//! Address translation (NAT) for IPv4, as Linux's nf_nat: source NAT and
//! masquerade for flows leaving by a side, destination NAT (port
//! forwarding) for flows arriving from one.
//!
//! A mapping is made once, on a flow's first packet, and kept in the flow
//! as its reply tuple (see [`crate::conntrack::translation`]); every later
//! packet of the flow, in either direction, is rewritten from the flow's two
//! tuples ([`rewrite`]). The order is Linux's: destination NAT before the
//! rules, which see the translated destination and the original source
//! ([`Nat::destination`], the nat table's PREROUTING), source NAT after
//! them, for a flow they accepted ([`Nat::source`], POSTROUTING). The port
//! (or ICMP query identifier) is chosen as `nf_nat_core.c`'s
//! `get_unique_tuple` does ([`ports`]): the original when the tuple is free
//! and in range, else one from a random offset, so that no two flows ever
//! share a reply tuple.
//!
//! This module decides and rewrites; it keeps no per-flow state of its own
//! and does no I/O.

pub mod ftp;
pub mod manip;
pub mod packet_plan;
pub mod ports;
pub mod rewrite;
pub mod rules;
pub mod seqadj;

use core::hash::BuildHasher;
use core::net::{IpAddr, Ipv4Addr};
use std::collections::hash_map::RandomState;

use serde::Serialize;

use crate::conntrack::tuple::Tuple;
use crate::side::Side;
use manip::Manip;
use ports::unique_id;
use rules::{NatRules, SourceTarget};

/// NAT counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NatStats {
    /// New flows given a mapping (source, destination or both).
    pub mapped: u64,
    /// New flows whose packet was dropped because no free port or
    /// identifier was found (`nat.exhausted`).
    pub exhausted: u64,
    /// Packets of translated flows rewritten.
    pub translated: u64,
    /// ICMP errors about translated flows translated inside and out.
    pub errors_translated: u64,
    /// New flows a translated control flow's helper announced, given the
    /// control flow's translation (`nf_nat_follow_master`).
    pub followed: u64,
    /// FTP announcements rewritten in translated control flows.
    pub ftp_rewritten: u64,
    /// FTP announcements dropped because the segment had no room to grow.
    pub ftp_unwritable: u64,
    /// Packets whose sequence or acknowledgement numbers moved because a
    /// rewrite changed a line's length (`nf_ct_seq_adjust`).
    pub seq_adjusted: u64,
}

/// No free port or identifier was found for a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted;

/// The NAT rules in force and what choosing mappings needs: a random source
/// for port offsets and a keyed hash for picking an address of a range.
pub struct Nat {
    rules: NatRules,
    rng: u64,
    hasher: RandomState,
    /// Counters.
    pub stats: NatStats,
}

impl Nat {
    /// NAT with `rules`.
    pub fn new(rules: NatRules) -> Nat {
        let hasher = RandomState::new();
        Nat {
            rules,
            rng: hasher.hash_one(0x006e_6174_u64) | 1,
            hasher,
            stats: NatStats::default(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &NatRules {
        &self.rules
    }

    /// New rules, for new flows (a reload): flows keep their mappings.
    pub fn set_rules(&mut self, rules: NatRules) {
        self.rules = rules;
    }

    /// True when some rule may translate a new flow.
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    fn random(&mut self) -> u16 {
        // xorshift64*: offsets only need to be unpredictable enough that a
        // peer cannot aim at a port; the seed is the process's hash key.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 48) as u16
    }

    /// Destination NAT for a new flow arriving from `from` whose first
    /// packet has tuple `original`: the tuple as the rules see it (the
    /// original when no rule matches). `taken(reply)`: whether a flow
    /// already has `reply` as one of its tuples. A destination port is
    /// changed only within a configured range, and kept when it is in it
    /// and free (or the range is one port).
    pub fn destination(
        &mut self,
        from: Side,
        original: &Tuple,
        taken: impl Fn(&Tuple) -> bool,
    ) -> Tuple {
        let Some(target) = self.rules.destination_for(from, original) else {
            return *original;
        };
        let mut t = Tuple {
            dst: IpAddr::V4(target.to),
            ..*original
        };
        if let Some(range) = target.ports {
            let used = |c: &Tuple| used(c, &taken);
            let keep = range.contains(t.dst_id) && (range.size() == 1 || !used(&t));
            if !keep {
                t.dst_id = range.min;
                let mut rng = || self.random();
                // Not found: the last tried stays and the flow clashes at
                // confirmation, as in Linux.
                unique_id(&mut t, Some(range), Manip::Dst, &mut rng, used);
            }
        }
        t
    }

    /// Source NAT for a flow the rules accepted, leaving by `out`, whose
    /// first packet's tuple is `middle` after destination NAT: the tuple its
    /// packets leave with. Without a rule, a flow keeps its source unless
    /// that makes its reply tuple one a flow already has; then its source
    /// port moves (Linux's null binding).
    pub fn source(
        &mut self,
        out: Side,
        middle: &Tuple,
        taken: impl Fn(&Tuple) -> bool,
    ) -> Result<Tuple, Exhausted> {
        let used = |c: &Tuple| used(c, &taken);
        let Some(target) = self.rules.source_for(out, middle) else {
            // Linux's null binding: even an untranslated flow moves its
            // source port when its reply tuple is taken (by a translated
            // flow's), so that no two flows share one.
            if !used(middle) {
                return Ok(*middle);
            }
            let mut t = *middle;
            let mut rng = || self.random();
            return if unique_id(&mut t, None, Manip::Src, &mut rng, used) {
                Ok(t)
            } else {
                Err(Exhausted)
            };
        };
        // The original source, when the target holds it and it is free.
        let in_range = target.contains(middle.src)
            && target
                .ports
                .is_none_or(|r| r.contains(manip::id_of(middle, Manip::Src)));
        if in_range && !used(middle) {
            return Ok(*middle);
        }
        let mut t = Tuple {
            src: IpAddr::V4(self.pick_address(&target, middle)),
            ..*middle
        };
        let id = manip::id_of(&t, Manip::Src);
        let keep = match target.ports {
            Some(r) => r.contains(id) && (r.size() == 1 || !used(&t)),
            None => !used(&t),
        };
        if keep {
            return Ok(t);
        }
        let mut rng = || self.random();
        if unique_id(&mut t, target.ports, Manip::Src, &mut rng, used) {
            Ok(t)
        } else {
            Err(Exhausted)
        }
    }

    /// Destination NAT for a new flow that a translated control flow's
    /// helper announced (Linux's `nf_nat_follow_master`, its DST half):
    /// `original` goes to where the announcing side's packets came from
    /// (`announcing`: the control flow's tuple in the direction the
    /// announcement travelled, before translation), at `port`, the port
    /// the announcement named.
    pub fn follow_destination(original: &Tuple, announcing: &Tuple, port: u16) -> Tuple {
        Tuple {
            dst: announcing.src,
            dst_id: port,
            ..*original
        }
    }

    /// Source NAT for the same flow (the SRC half): from the address the
    /// announcing side's packets went to, its source port kept when free,
    /// else one of its class, as for any mapping.
    pub fn follow_source(
        &mut self,
        middle: &Tuple,
        announcing: &Tuple,
        taken: impl Fn(&Tuple) -> bool,
    ) -> Result<Tuple, Exhausted> {
        let used = |c: &Tuple| used(c, &taken);
        let mut t = Tuple {
            src: announcing.dst,
            ..*middle
        };
        if !used(&t) {
            return Ok(t);
        }
        let mut rng = || self.random();
        if unique_id(&mut t, None, Manip::Src, &mut rng, used) {
            Ok(t)
        } else {
            Err(Exhausted)
        }
    }

    /// The address of `target` a flow with tuple `t` takes: the only one,
    /// or one picked by a keyed hash of the flow's addresses, so that one
    /// client keeps one address towards one server (Linux's
    /// `find_best_ips_proto` hashes the same two).
    fn pick_address(&self, target: &SourceTarget, t: &Tuple) -> Ipv4Addr {
        let n = target.count();
        if n == 1 {
            return target.first;
        }
        let k = self.hasher.hash_one((t.src, t.dst)) % n;
        Ipv4Addr::from(u32::from(target.first).wrapping_add(k as u32))
    }
}

/// Whether the translated original-direction tuple `c` is taken: whether a
/// flow already has its inverse, the reply tuple it would get (Linux's
/// `nf_nat_used_tuple`).
fn used(c: &Tuple, taken: &impl Fn(&Tuple) -> bool) -> bool {
    c.invert().is_some_and(|reply| taken(&reply))
}

#[cfg(test)]
mod tests;
