//! Named sets of addresses and ports that rules match against (`src:
//! "@blocklist"`, `dport: "@web"`), changed at runtime without a reload
//! (`tunfw ctl set add|del|list|flush`), as ipset, nftables' named sets
//! and pf's tables are.
//!
//! An address set holds CIDR blocks of either family, each optionally with
//! a timeout. A lookup hashes the address masked to each prefix length the
//! set holds (SipHash under a random per-process key: the addresses come
//! from the network), so it costs one hash probe per distinct prefix
//! length, whatever the number of elements (a set of 100,000 host
//! addresses: one probe; `cargo bench --bench sets`). A port set holds
//! ports and ranges: a 65,536-bit map for its elements without a timeout
//! (one bit test), and at most [`MAX_TIMED_PORT_ELEMENTS`] ranges with a
//! timeout, tested one by one.
//!
//! Every set has a maximum number of elements, fixed by the config; its
//! table is allocated for that many when the set is built, so adding an
//! element never allocates and memory is bounded whatever callers add. An
//! element whose timeout passed no longer matches (lookups compare with
//! the time they are given); it is removed when the set is full and room
//! is needed, or by [`Sets::collect_expired`].
//!
//! Elements remember whether they came from the config or were added at
//! runtime: a reload builds the sets of the new config and carries over the
//! runtime elements of every set that still exists with the same kind.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::matchers::{Cidr, Family, PortSpec};
use crate::time::Instant;

/// The most elements one set may be configured for.
pub const MAX_SET_ELEMENTS: usize = 1_000_000;
/// A set's maximum when the config names none.
pub const DEFAULT_SET_MAX: usize = 65_536;
/// The most sets a config may name.
pub const MAX_SETS: usize = 256;
/// The most port ranges with a timeout one port set holds (each is tested
/// on every lookup).
pub const MAX_TIMED_PORT_ELEMENTS: usize = 64;
/// The longest timeout an element may have: 50 days, as conntrack timeouts.
pub const MAX_ELEMENT_TIMEOUT_SECS: u64 = 4_320_000;

/// What a set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum SetKind {
    /// Address blocks (CIDRs), either family; used by `src` and `dst`.
    Address,
    /// Ports and port ranges; used by `sport` and `dport`.
    Port,
}

impl SetKind {
    /// `Address` or `Port`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SetKind::Address => "Address",
            SetKind::Port => "Port",
        }
    }
}

/// One element's bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// When it stops matching (`None`: never).
    expires: Option<Instant>,
    /// Added at runtime (kept across reloads), not from the config.
    runtime: bool,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

/// Why a set refused a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    /// No set of that name.
    NoSuchSet(String),
    /// The element does not parse as the set's kind.
    BadElement(String),
    /// The set holds its maximum of live elements.
    Full(usize),
    /// A timeout out of range.
    BadTimeout(u64),
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetError::NoSuchSet(n) => write!(f, "no set named {n:?}"),
            SetError::BadElement(m) => f.write_str(m),
            SetError::Full(max) => write!(f, "the set is full ({max} elements)"),
            SetError::BadTimeout(t) => write!(
                f,
                "timeout {t} is out of range: must be 1 to {MAX_ELEMENT_TIMEOUT_SECS} seconds"
            ),
        }
    }
}

/// An element as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The element (`10.0.0.0/8`, `2001:db8::1/128`, `22`, `6000:6010`).
    pub element: String,
    /// Seconds until it expires, if it has a timeout.
    pub expires_in: Option<u64>,
    /// Added at runtime (a reload keeps it) rather than from the config.
    pub runtime: bool,
}

/// The key of an address block: family, prefix length, masked bits.
type BlockKey = (bool, u8, u128);

fn block_key(c: &Cidr) -> BlockKey {
    let v6 = c.family() == Family::V6;
    (v6, c.prefix(), bits(c.addr()))
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn masked(ip: IpAddr, prefix: u8) -> u128 {
    let (b, width) = match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    if prefix == 0 {
        0
    } else {
        let keep = u128::MAX << (width - u32::from(prefix));
        b & keep & (u128::MAX >> (128 - width))
    }
}

/// A set of address blocks.
pub struct AddrSet {
    entries: HashMap<BlockKey, Entry, RandomState>,
    /// How many elements of each prefix length each family holds
    /// (index 0: IPv4, 1: IPv6).
    per_length: [[u32; 129]; 2],
    /// The prefix lengths in use, per family, longest first.
    lengths: [Vec<u8>; 2],
    max: usize,
    /// No element with a timeout expires before this (`None`: none has one).
    earliest: Option<Instant>,
}

/// Room for `max` elements under any churn: twice as many slots, so that
/// removals' tombstones never make the table grow (hashbrown rehashes in
/// place while at most half its capacity is live).
fn table<K, V>(max: usize) -> HashMap<K, V, RandomState> {
    HashMap::with_capacity_and_hasher(2 * max, RandomState::new())
}

/// The sooner of two optional deadlines.
fn sooner(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

/// An element added again: the later expiry wins (`None`, never, the
/// latest), so a timed add never shortens a permanent element; a config
/// element stays a config element.
fn refreshed(old: Entry, new: Entry) -> Entry {
    Entry {
        expires: match (old.expires, new.expires) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        },
        runtime: old.runtime && new.runtime,
    }
}

impl AddrSet {
    /// An empty set for at most `max` elements, allocated now.
    pub fn new(max: usize) -> AddrSet {
        AddrSet {
            entries: table(max),
            per_length: [[0; 129]; 2],
            lengths: [Vec::with_capacity(129), Vec::with_capacity(129)],
            max,
            earliest: None,
        }
    }

    /// Whether `ip` lies in a live block at `now`. Never allocates.
    pub fn contains(&self, ip: IpAddr, now: Instant) -> bool {
        let v6 = ip.is_ipv6();
        self.lengths[usize::from(v6)].iter().any(|&len| {
            self.entries
                .get(&(v6, len, masked(ip, len)))
                .is_some_and(|e| e.live(now))
        })
    }

    fn count(&mut self, key: &BlockKey, up: bool) {
        let (v6, len, _) = *key;
        let f = usize::from(v6);
        let n = &mut self.per_length[f][usize::from(len)];
        let was = *n;
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
        }
        if (was == 0) != (*n == 0) {
            self.relist(f);
        }
    }

    /// Rebuild family `f`'s list of prefix lengths in use (its capacity is
    /// all 129: no allocation).
    fn relist(&mut self, f: usize) {
        let lengths = &mut self.lengths[f];
        lengths.clear();
        for l in (0..=128u8).rev() {
            if self.per_length[f][usize::from(l)] > 0 {
                lengths.push(l);
            }
        }
    }

    /// Add or refresh `key` (see [`refreshed`]). Full: expired elements
    /// are swept first, if any is due. Never allocates.
    fn put(&mut self, key: BlockKey, entry: Entry, now: Instant) -> Result<(), SetError> {
        if let Some(e) = self.entries.get_mut(&key) {
            *e = refreshed(*e, entry);
            self.earliest = sooner(self.earliest, e.expires);
            return Ok(());
        }
        if self.entries.len() >= self.max {
            self.collect_expired(now);
            if self.entries.len() >= self.max {
                return Err(SetError::Full(self.max));
            }
        }
        self.entries.insert(key, entry);
        self.earliest = sooner(self.earliest, entry.expires);
        self.count(&key, true);
        Ok(())
    }

    fn insert(&mut self, c: &Cidr, entry: Entry, now: Instant) -> Result<(), SetError> {
        self.insert_key(block_key(c), entry, now)
    }

    fn insert_key(&mut self, key: BlockKey, entry: Entry, now: Instant) -> Result<(), SetError> {
        self.put(key, entry, now)
    }

    fn remove(&mut self, c: &Cidr) -> bool {
        let key = block_key(c);
        let found = self.entries.remove(&key).is_some();
        if found {
            self.count(&key, false);
        }
        found
    }

    /// Remove expired elements, when one is due (one pass over the table,
    /// no allocation); how many.
    fn collect_expired(&mut self, now: Instant) -> usize {
        if self.earliest.is_none_or(|t| t > now) {
            return 0;
        }
        let before = self.entries.len();
        let per_length = &mut self.per_length;
        let mut earliest = None;
        self.entries.retain(|&(v6, len, _), e| {
            if e.live(now) {
                earliest = sooner(earliest, e.expires);
                return true;
            }
            let n = &mut per_length[usize::from(v6)][usize::from(len)];
            *n = n.saturating_sub(1);
            false
        });
        self.earliest = earliest;
        self.relist(0);
        self.relist(1);
        before - self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.per_length = [[0; 129]; 2];
        self.lengths.iter_mut().for_each(Vec::clear);
        self.earliest = None;
    }

    fn listed(&self, now: Instant) -> Vec<Listed> {
        let mut out: Vec<(BlockKey, Listed)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.live(now))
            .map(|(k, e)| (*k, listed(block_text(k), e, now)))
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out.into_iter().map(|(_, l)| l).collect()
    }
}

fn block_text(&(v6, len, b): &BlockKey) -> String {
    if v6 {
        format!("{}/{len}", core::net::Ipv6Addr::from(b))
    } else {
        format!("{}/{len}", core::net::Ipv4Addr::from(b as u32))
    }
}

fn listed(element: String, e: &Entry, now: Instant) -> Listed {
    Listed {
        element,
        expires_in: e.expires.map(|t| t.saturating_since(now).as_secs()),
        runtime: e.runtime,
    }
}

/// A set of ports.
pub struct PortSet {
    /// Bit `p` set: port `p` is in an element without a timeout.
    map: Box<[u64; 1024]>,
    /// Every element: range and bookkeeping.
    entries: HashMap<(u16, u16), Entry, RandomState>,
    /// The elements with a timeout (at most [`MAX_TIMED_PORT_ELEMENTS`]).
    timed: Vec<(u16, u16, Instant)>,
    max: usize,
}

impl PortSet {
    /// An empty set for at most `max` elements, allocated now.
    pub fn new(max: usize) -> PortSet {
        PortSet {
            map: Box::new([0; 1024]),
            entries: table(max),
            timed: Vec::with_capacity(MAX_TIMED_PORT_ELEMENTS),
            max,
        }
    }

    /// Whether `port` is in a live element at `now`. Never allocates.
    pub fn contains(&self, port: u16, now: Instant) -> bool {
        let p = usize::from(port);
        self.map[p / 64] >> (p % 64) & 1 == 1
            || self
                .timed
                .iter()
                .any(|&(lo, hi, t)| lo <= port && port <= hi && t > now)
    }

    fn rebuild(&mut self) {
        self.map.fill(0);
        self.timed.clear();
        for (&(lo, hi), e) in &self.entries {
            if let Some(t) = e.expires {
                self.timed.push((lo, hi, t));
                continue;
            }
            for p in lo..=hi {
                let p = usize::from(p);
                self.map[p / 64] |= 1 << (p % 64);
            }
        }
    }

    fn set_bits(&mut self, (lo, hi): (u16, u16)) {
        for p in lo..=hi {
            let p = usize::from(p);
            self.map[p / 64] |= 1 << (p % 64);
        }
    }

    /// Add or refresh `range` (see [`refreshed`]): a new element without a
    /// timeout only sets its bits, a timed one joins the timed list; only
    /// a change between the two rebuilds the map.
    fn insert(&mut self, range: (u16, u16), entry: Entry, now: Instant) -> Result<(), SetError> {
        let old = self.entries.get(&range).copied();
        let entry = old.map_or(entry, |o| refreshed(o, entry));
        let adds_timed = entry.expires.is_some() && old.is_none_or(|o| o.expires.is_none());
        if adds_timed && self.timed.len() >= MAX_TIMED_PORT_ELEMENTS {
            self.collect_expired(now);
            if self.timed.len() >= MAX_TIMED_PORT_ELEMENTS {
                return Err(SetError::BadElement(format!(
                    "a port set holds at most {MAX_TIMED_PORT_ELEMENTS} live elements with a timeout"
                )));
            }
        }
        if old.is_none() && self.entries.len() >= self.max {
            self.collect_expired(now);
            if self.entries.len() >= self.max {
                return Err(SetError::Full(self.max));
            }
        }
        self.entries.insert(range, entry);
        match (old, entry.expires) {
            (None, None) => self.set_bits(range),
            (None, Some(t)) => self.timed.push((range.0, range.1, t)),
            _ => self.rebuild(),
        }
        Ok(())
    }

    fn remove(&mut self, range: (u16, u16)) -> bool {
        let found = self.entries.remove(&range).is_some();
        if found {
            self.rebuild();
        }
        found
    }

    fn collect_expired(&mut self, now: Instant) -> usize {
        if self.timed.iter().all(|&(_, _, t)| t > now) {
            return 0;
        }
        let before = self.entries.len();
        self.entries.retain(|_, e| e.live(now));
        let n = before - self.entries.len();
        if n > 0 {
            self.rebuild();
        }
        n
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.rebuild();
    }

    fn listed(&self, now: Instant) -> Vec<Listed> {
        let mut out: Vec<((u16, u16), Listed)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.live(now))
            .map(|(&r, e)| (r, listed(PortSpec(vec![r]).to_string(), e, now)))
            .collect();
        out.sort_by_key(|(r, _)| *r);
        out.into_iter().map(|(_, l)| l).collect()
    }
}

/// One named set.
pub enum Set {
    /// Addresses.
    Address(Box<AddrSet>),
    /// Ports.
    Port(PortSet),
}

impl Set {
    /// An empty set of `kind` for `max` elements.
    pub fn new(kind: SetKind, max: usize) -> Set {
        match kind {
            SetKind::Address => Set::Address(Box::new(AddrSet::new(max))),
            SetKind::Port => Set::Port(PortSet::new(max)),
        }
    }

    /// What it holds.
    pub fn kind(&self) -> SetKind {
        match self {
            Set::Address(_) => SetKind::Address,
            Set::Port(_) => SetKind::Port,
        }
    }

    /// Live elements.
    pub fn len(&self, now: Instant) -> usize {
        match self {
            Set::Address(s) => s.entries.values().filter(|e| e.live(now)).count(),
            Set::Port(s) => s.entries.values().filter(|e| e.live(now)).count(),
        }
    }

    /// Whether it holds no live element.
    pub fn is_empty(&self, now: Instant) -> bool {
        self.len(now) == 0
    }

    /// Add (or refresh) one element from its text (`10.0.0.0/8`,
    /// `192.0.2.7`, `2001:db8::/32`; `22`, `6000:6010`), with an optional
    /// timeout; `runtime`: added by `ctl`, not the config.
    pub fn add(
        &mut self,
        text: &str,
        timeout: Option<Duration>,
        runtime: bool,
        now: Instant,
    ) -> Result<(), SetError> {
        let entry = Entry {
            expires: timeout.map(|t| now + t),
            runtime,
        };
        match self {
            Set::Address(s) => s.insert(&parse_block(text)?, entry, now),
            Set::Port(s) => s.insert(parse_range(text)?, entry, now),
        }
    }

    /// Remove one element; whether it was there.
    pub fn remove(&mut self, text: &str) -> Result<bool, SetError> {
        Ok(match self {
            Set::Address(s) => s.remove(&parse_block(text)?),
            Set::Port(s) => s.remove(parse_range(text)?),
        })
    }

    /// Remove every element.
    pub fn clear(&mut self) {
        match self {
            Set::Address(s) => s.clear(),
            Set::Port(s) => s.clear(),
        }
    }

    /// Live elements, in order.
    pub fn list(&self, now: Instant) -> Vec<Listed> {
        match self {
            Set::Address(s) => s.listed(now),
            Set::Port(s) => s.listed(now),
        }
    }

    /// Remove elements whose timeout passed; how many.
    pub fn collect_expired(&mut self, now: Instant) -> usize {
        match self {
            Set::Address(s) => s.collect_expired(now),
            Set::Port(s) => s.collect_expired(now),
        }
    }

    /// Copy this set's live runtime elements into `into` (a set of the
    /// same kind; as many as fit).
    fn carry_runtime(&self, into: &mut Set, now: Instant) {
        match (self, into) {
            (Set::Address(from), Set::Address(to)) => {
                for (k, e) in from
                    .entries
                    .iter()
                    .filter(|(_, e)| e.runtime && e.live(now))
                {
                    let _ = to.insert_key(*k, *e, now);
                }
            }
            (Set::Port(from), Set::Port(to)) => {
                for (r, e) in from
                    .entries
                    .iter()
                    .filter(|(_, e)| e.runtime && e.live(now))
                {
                    let _ = to.insert(*r, *e, now);
                }
            }
            _ => {}
        }
    }
}

fn parse_block(text: &str) -> Result<Cidr, SetError> {
    Cidr::parse(text).map_err(SetError::BadElement)
}

fn parse_range(text: &str) -> Result<(u16, u16), SetError> {
    let spec = PortSpec::parse(text).map_err(SetError::BadElement)?;
    match spec.0.as_slice() {
        [one] => Ok(*one),
        _ => Err(SetError::BadElement(format!(
            "{text:?}: one port or range per element"
        ))),
    }
}

/// A set as a config defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDefinition {
    /// Its name (rules say `@name`).
    pub name: String,
    /// What it holds.
    pub kind: SetKind,
    /// The most elements it holds.
    pub max: usize,
    /// Its elements from the config (without timeouts).
    pub elements: Vec<String>,
}

/// Every named set, in the config's order (rules refer to a set by its
/// index, resolved when the config was read).
#[derive(Default)]
pub struct Sets {
    sets: Vec<(String, Set)>,
    /// When [`Sets::tick`] sweeps next.
    next_sweep: Instant,
}

/// How often [`Sets::tick`] sweeps expired elements (lookups ignore them
/// at once; the sweep frees their room and keeps listings short).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl Sets {
    /// The sets of `defs`, filled with their elements (already validated:
    /// an element that does not parse or fit is skipped).
    pub fn new(defs: &[SetDefinition], now: Instant) -> Sets {
        let sets = defs
            .iter()
            .map(|d| {
                let mut set = Set::new(d.kind, d.max);
                for e in &d.elements {
                    let _ = set.add(e, None, false, now);
                }
                (d.name.clone(), set)
            })
            .collect();
        Sets {
            sets,
            next_sweep: now,
        }
    }

    /// The sets of `defs`, with the runtime elements of `old`'s sets of the
    /// same name and kind carried over (as many as fit).
    pub fn reloaded(defs: &[SetDefinition], old: &Sets, now: Instant) -> Sets {
        let mut new = Sets::new(defs, now);
        for (name, set) in &mut new.sets {
            let Some(prev) = old.get(name).filter(|p| p.kind() == set.kind()) else {
                continue;
            };
            prev.carry_runtime(set, now);
        }
        new
    }

    /// The set at `index` (as rules hold it).
    #[inline]
    pub fn at(&self, index: usize) -> Option<&Set> {
        self.sets.get(index).map(|(_, s)| s)
    }

    /// The set named `name`.
    pub fn get(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The set named `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Set, SetError> {
        self.sets
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| SetError::NoSuchSet(name.to_string()))
    }

    /// Names and kinds of every set, in order.
    pub fn names(&self) -> impl Iterator<Item = (&str, SetKind)> {
        self.sets.iter().map(|(n, s)| (n.as_str(), s.kind()))
    }

    /// Whether address `ip` is in set `index` at `now` (false for a
    /// missing set or a port set).
    #[inline]
    pub fn has_address(&self, index: usize, ip: IpAddr, now: Instant) -> bool {
        matches!(self.at(index), Some(Set::Address(s)) if s.contains(ip, now))
    }

    /// Whether `port` is in set `index` at `now`.
    #[inline]
    pub fn has_port(&self, index: usize, port: u16, now: Instant) -> bool {
        matches!(self.at(index), Some(Set::Port(s)) if s.contains(port, now))
    }

    /// Add (or refresh) host address `ip` (a /32 or /128) to address set
    /// `index` as a runtime element, for the packet path (a rule's
    /// `overload`): never allocates; a full set first sweeps its expired
    /// elements (one pass, only when one is due), then refuses
    /// ([`SetError::Full`]; a missing set or a port set:
    /// [`SetError::NoSuchSet`]).
    pub fn add_host(
        &mut self,
        index: usize,
        ip: IpAddr,
        timeout: Option<Duration>,
        now: Instant,
    ) -> Result<(), SetError> {
        let Some((_, Set::Address(s))) = self.sets.get_mut(index) else {
            return Err(SetError::NoSuchSet(String::new()));
        };
        let key = match ip {
            IpAddr::V4(_) => (false, 32, bits(ip)),
            IpAddr::V6(_) => (true, 128, bits(ip)),
        };
        let entry = Entry {
            expires: timeout.map(|t| now + t),
            runtime: true,
        };
        s.put(key, entry, now)
    }

    /// Sweep expired elements at most once per [`SWEEP_INTERVAL`] (a pass
    /// over a set only when one of its elements is due; no allocation).
    pub fn tick(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.collect_expired(now);
            self.next_sweep = now + SWEEP_INTERVAL;
        }
    }

    /// Remove expired elements of every set; how many.
    pub fn collect_expired(&mut self, now: Instant) -> usize {
        self.sets
            .iter_mut()
            .map(|(_, s)| s.collect_expired(now))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn address_sets_match_blocks_of_every_length_and_family() {
        let mut s = Set::new(SetKind::Address, 16);
        for e in ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "fd00::1"] {
            s.add(e, None, false, at(0)).unwrap();
        }
        let Set::Address(a) = &s else { unreachable!() };
        for (ip, want) in [
            ("10.9.8.7", true),
            ("11.0.0.1", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("2001:db8:1::5", true),
            ("2001:db9::", false),
            ("fd00::1", true),
            ("fd00::2", false),
        ] {
            assert_eq!(a.contains(ip.parse().unwrap(), at(1)), want, "{ip}");
        }
        assert!(s.remove("10.0.0.0/8").unwrap());
        let Set::Address(a) = &s else { unreachable!() };
        assert!(!a.contains("10.9.8.7".parse().unwrap(), at(1)));
        assert_eq!(a.lengths[0], vec![32]);
    }

    #[test]
    fn timeouts_end_membership_and_free_room() {
        let mut s = Set::new(SetKind::Address, 2);
        s.add("192.0.2.1", Some(Duration::from_secs(10)), true, at(0))
            .unwrap();
        s.add("192.0.2.2", None, true, at(0)).unwrap();
        assert_eq!(
            s.add("192.0.2.3", None, true, at(5)),
            Err(SetError::Full(2))
        );
        let Set::Address(a) = &s else { unreachable!() };
        assert!(a.contains("192.0.2.1".parse().unwrap(), at(9)));
        assert!(!a.contains("192.0.2.1".parse().unwrap(), at(10)));
        // Full of live elements no more: the expired one makes room.
        s.add("192.0.2.3", None, true, at(11)).unwrap();
        let l = s.list(at(11));
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].element, "192.0.2.2/32");
    }

    #[test]
    fn port_sets_match_ranges_with_and_without_timeouts() {
        let mut s = Set::new(SetKind::Port, 8);
        s.add("22", None, false, at(0)).unwrap();
        s.add("6000:6010", None, false, at(0)).unwrap();
        s.add("8080", Some(Duration::from_secs(5)), true, at(0))
            .unwrap();
        let Set::Port(p) = &s else { unreachable!() };
        for (port, want) in [
            (22, true),
            (23, false),
            (6005, true),
            (6011, false),
            (8080, true),
        ] {
            assert_eq!(p.contains(port, at(1)), want, "{port}");
        }
        assert!(!p.contains(8080, at(5)));
        assert!(s.add("1,2", None, true, at(0)).is_err());
        assert!(s.remove("22").unwrap());
        let Set::Port(p) = &s else { unreachable!() };
        assert!(!p.contains(22, at(1)));
    }

    #[test]
    fn a_reload_keeps_runtime_elements_of_sets_that_still_exist() {
        let defs = vec![
            SetDefinition {
                name: "block".into(),
                kind: SetKind::Address,
                max: 8,
                elements: vec!["10.0.0.1".into()],
            },
            SetDefinition {
                name: "gone".into(),
                kind: SetKind::Port,
                max: 8,
                elements: vec![],
            },
        ];
        let mut old = Sets::new(&defs, at(0));
        old.get_mut("block")
            .unwrap()
            .add("192.0.2.9", Some(Duration::from_secs(100)), true, at(0))
            .unwrap();
        old.get_mut("gone")
            .unwrap()
            .add("22", None, true, at(0))
            .unwrap();
        let new_defs = vec![SetDefinition {
            elements: vec!["10.0.0.2".into()],
            ..defs[0].clone()
        }];
        let new = Sets::reloaded(&new_defs, &old, at(40));
        let l = new.get("block").unwrap().list(at(40));
        let texts: Vec<&str> = l.iter().map(|l| l.element.as_str()).collect();
        assert_eq!(
            texts,
            ["10.0.0.2/32", "192.0.2.9/32"],
            "config element replaced, runtime kept"
        );
        assert_eq!(l[1].expires_in, Some(60));
        assert!(new.get("gone").is_none());
        assert!(new.has_address(0, "192.0.2.9".parse().unwrap(), at(99)));
        assert!(!new.has_address(0, "192.0.2.9".parse().unwrap(), at(100)));
    }
}
