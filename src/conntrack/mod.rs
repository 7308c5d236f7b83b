//! Connection tracking: the flow table and the classification of every packet
//! as NEW, ESTABLISHED, RELATED or INVALID, as Linux conntrack and `xt_state`
//! see it.
//!
//! [`Conntrack::track`] runs before the rules (the kernel's PREROUTING): it
//! updates existing flows and returns a *pending* flow for a NEW packet.
//! [`Conntrack::confirm`] inserts the pending flow only once the rules accepted
//! the packet, so a flow whose first packet was dropped is never kept.
//!
//! The table allocates everything it will ever need when it is created
//! (`max` flows), so tracking never allocates. Lookups use std's SipHash with a
//! random per-process key, so remote peers cannot choose colliding tuples;
//! one index entry per flow serves both directions (see `FlowKey`).

pub mod events;
pub mod expect;
pub mod generic;
pub mod icmp;
pub mod index;
pub mod tcp;
pub mod udp;

use core::hash::BuildHasher;
use core::net::IpAddr;
use core::time::Duration;
use std::collections::hash_map::RandomState;

use serde::Serialize;

use crate::answer::TokenBucket;
use crate::helpers::ftp::{FtpState, Inspect};
use crate::packet::{Packet, Side, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::rules::PortSpec;
use crate::slab::Slab;
use crate::stats::InvalidReason;
use crate::time::Instant;
use events::{Event, EventKind, EventRing};
use expect::{ExpectKey, Expectations};
use index::FlowIndex;
use tcp::{TcpConfig, TcpConn, TcpOutcome};
use udp::{UdpConn, UdpTimeouts};

/// Direction of a packet relative to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Dir {
    /// Same direction as the flow's first packet.
    Original = 0,
    /// The answering direction.
    Reply = 1,
}

impl Dir {
    /// The opposite direction.
    pub fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// A flow key in one direction, as the kernel's `nf_conntrack_tuple`.
///
/// For TCP and UDP the ids are the ports; for ICMP queries `src_id` is the
/// identifier and `dst_id` is `type << 8 | code`; for other protocols both are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port, or ICMP identifier.
    pub src_id: u16,
    /// Destination port, or ICMP type and code.
    pub dst_id: u16,
}

impl Tuple {
    /// The tuple of a parsed packet.
    pub fn of_packet(pkt: &Packet<'_>) -> Tuple {
        let (src_id, dst_id) = match pkt.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp(u) => (u.src_port, u.dst_port),
            Transport::Icmp(i) => (i.ident, u16::from_be_bytes([i.icmp_type, i.code])),
            Transport::Other => (0, 0),
        };
        Tuple {
            src: pkt.ip.src,
            dst: pkt.ip.dst,
            protocol: pkt.ip.protocol,
            src_id,
            dst_id,
        }
    }

    /// The tuple of the answering direction; `None` for ICMP types that have no answer.
    pub fn invert(&self) -> Option<Tuple> {
        let (src_id, dst_id) = match self.protocol {
            PROTO_TCP | PROTO_UDP => (self.dst_id, self.src_id),
            PROTO_ICMP => {
                let [ty, code] = self.dst_id.to_be_bytes();
                (
                    self.src_id,
                    u16::from_be_bytes([icmp::inverse_type(ty)?, code]),
                )
            }
            _ => (0, 0),
        };
        Some(Tuple {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            src_id,
            dst_id,
        })
    }
}

/// The index key of a flow: a tuple and its inverse give the same key, so
/// one index entry (16 bytes and a slot id) finds a flow from either
/// direction. TCP and UDP: the two endpoints in a fixed order; ICMP queries:
/// the requester first and the request type, whichever way the packet goes;
/// other protocols: the two addresses in a fixed order. IPv4 only (tunfw
/// does not track IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    a: u32,
    b: u32,
    a_id: u16,
    b_id: u16,
    protocol: u8,
}

impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // One write of the 13 significant bytes: SipHash pays per call.
        state.write_u128(
            u128::from(self.a) << 96
                | u128::from(self.b) << 64
                | u128::from(self.a_id) << 48
                | u128::from(self.b_id) << 32
                | u128::from(self.protocol),
        );
    }
}

impl FlowKey {
    /// The key of `t`'s flow.
    fn of(t: &FlowTuple) -> FlowKey {
        let (src, dst) = (t.src, t.dst);
        let ordered = |a: (u32, u16), b: (u32, u16)| {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            FlowKey {
                a: lo.0,
                b: hi.0,
                a_id: lo.1,
                b_id: hi.1,
                protocol: t.protocol,
            }
        };
        match t.protocol {
            PROTO_ICMP => {
                let [ty, code] = t.dst_id.to_be_bytes();
                let (requester, responder, ty) = match icmp::inverse_type(ty) {
                    Some(request) if icmp::is_query_reply(ty) => (dst, src, request),
                    _ => (src, dst, ty),
                };
                FlowKey {
                    a: requester,
                    b: responder,
                    a_id: t.src_id,
                    b_id: u16::from_be_bytes([ty, code]),
                    protocol: t.protocol,
                }
            }
            _ => ordered((src, t.src_id), (dst, t.dst_id)),
        }
    }
}

/// The keyed hash the index files a flow under: of its [`FlowKey`], so
/// both of its tuples give the same hash.
fn key_hash(hasher: &RandomState, t: &FlowTuple) -> u64 {
    hasher.hash_one(FlowKey::of(t))
}

/// A tuple as a flow stores it: IPv4 only (tunfw does not track IPv6),
/// 16 bytes instead of [`Tuple`]'s 40.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    src: u32,
    dst: u32,
    src_id: u16,
    dst_id: u16,
    protocol: u8,
}

impl FlowTuple {
    /// The compact form of `t`; `None` for IPv6 tuples.
    pub fn of(t: &Tuple) -> Option<FlowTuple> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (t.src, t.dst) else {
            return None;
        };
        Some(FlowTuple {
            src: src.into(),
            dst: dst.into(),
            src_id: t.src_id,
            dst_id: t.dst_id,
            protocol: t.protocol,
        })
    }

    /// The full tuple.
    pub fn tuple(&self) -> Tuple {
        Tuple {
            src: IpAddr::V4(self.src.into()),
            dst: IpAddr::V4(self.dst.into()),
            protocol: self.protocol,
            src_id: self.src_id,
            dst_id: self.dst_id,
        }
    }
}

/// The state of a packet as rules see it (`-m state --state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum CtState {
    /// Starts a new flow.
    New,
    /// Belongs to a flow that has seen traffic both ways (any reply-direction packet).
    Established,
    /// Starts a flow related to another (ICMP error, expected FTP data).
    Related,
    /// Could not be tracked.
    Invalid,
}

impl CtState {
    /// A bit for state sets: NEW=1, ESTABLISHED=2, RELATED=4, INVALID=8.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The iptables name.
    pub fn as_str(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
        }
    }
}

/// Protocol-specific state of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoState {
    /// TCP state machine and windows.
    Tcp(TcpConn),
    /// UDP stream detection.
    Udp(UdpConn),
    /// ICMP query flow.
    Icmp,
    /// Any other protocol.
    Generic,
}

/// One tracked flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The tuple of the first packet, compact (see [`Flow::tuple`]; the
    /// reply tuple is its inverse).
    pub original: FlowTuple,
    /// Protocol state.
    pub proto: ProtoState,
    /// A packet was seen in the reply direction.
    pub seen_reply: bool,
    /// The flow is ASSURED: never evicted early.
    pub assured: bool,
    /// The flow was created as RELATED (expected by a helper).
    pub expected: bool,
    /// When the first packet was seen.
    pub created: Instant,
    /// When the flow expires unless refreshed.
    pub expires: Instant,
    /// Packets seen per direction.
    pub packets: [u64; 2],
    /// Bytes seen per direction.
    pub bytes: [u64; 2],
    /// The helper attached to this flow, if any.
    pub helper: HelperSlot,
    /// The device the flow's first packet came from.
    pub origin: Side,
}

/// A flow's helper: its state lives in a preallocated pool, so flows without
/// a helper carry only this tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelperSlot {
    /// No helper.
    #[default]
    None,
    /// The FTP helper is configured for this flow; its state is allocated when
    /// the flow is confirmed.
    FtpWanted,
    /// The FTP helper, with its state at this pool index.
    Ftp(u32),
}

impl Flow {
    /// The tuple of packets in direction `dir`.
    pub fn tuple(&self, dir: Dir) -> Tuple {
        let original = self.original.tuple();
        match dir {
            Dir::Original => original,
            // A flow exists only for tuples that have an inverse.
            Dir::Reply => original.invert().unwrap_or(original),
        }
    }

    /// The TCP state, if this is a TCP flow.
    pub fn tcp_state(&self) -> Option<tcp::TcpState> {
        match self.proto {
            ProtoState::Tcp(c) => Some(c.state),
            _ => None,
        }
    }

    fn account(&mut self, dir: Dir, len: usize) {
        let d = dir as usize;
        self.packets[d] += 1;
        self.bytes[d] += len as u64;
    }
}

/// Conntrack settings: the table size and the per-protocol timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// Maximum number of flows (`nf_conntrack_max`).
    pub max: usize,
    /// TCP switches and timeouts.
    pub tcp: TcpConfig,
    /// UDP timeouts.
    pub udp: UdpTimeouts,
    /// ICMP query timeout.
    pub icmp_timeout: Duration,
    /// Timeout of other protocols.
    pub generic_timeout: Duration,
    /// Maximum number of pending expectations (`nf_ct_expect_max`).
    pub expectation_max: usize,
}

/// Helpers attached to control flows, as the raw table's `-j CT --helper`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperConfig {
    /// The FTP helper: `None` when off.
    pub ftp: Option<FtpHelperConfig>,
}

/// Where the FTP helper is attached and how long its expectations live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtpHelperConfig {
    /// TCP destination ports of control flows that get the helper.
    pub ports: PortSpec,
    /// Lifetime of an expectation (Linux: 300 s).
    pub expectation_timeout: Duration,
    /// Control flows that can have the helper at once.
    pub max_control_flows: usize,
}

/// FTP helper counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FtpStats {
    /// Announcements parsed (PORT, EPRT, 227, 229).
    pub announcements: u64,
    /// Announcements refused: the address was not the sender's own (FTP bounce).
    pub refused_address: u64,
    /// Announcements of port 0, ignored.
    pub refused_port_zero: u64,
    /// Commands split across segments, kept until their line was complete.
    pub split_commands: u64,
    /// Complete command lines that did not parse (garbage, octets over 255, ...).
    pub malformed: u64,
    /// Command lines longer than the line buffer.
    pub overlong: u64,
    /// Announcements dropped because the expectation table was full.
    pub expectation_table_full: u64,
    /// Control flows that got no helper because its state pool was full.
    pub no_state_slot: u64,
}

/// What the helper decided about a packet the rules accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpVerdict {
    /// Forward it.
    Accept,
    /// Drop it: no room for its expectation (as Linux, the sender retransmits).
    Drop,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            max: 65_536,
            tcp: TcpConfig::default(),
            udp: UdpTimeouts::default(),
            icmp_timeout: icmp::DEFAULT_TIMEOUT,
            generic_timeout: generic::DEFAULT_TIMEOUT,
            expectation_max: 1024,
        }
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
    /// Closed flows replaced by a new SYN on the same tuple.
    pub reopened: u64,
}

/// Index of a flow in the table.
pub type FlowId = u32;

/// The flow a tracked packet belongs to.
// A pending flow is carried by value: boxing it would allocate for every new
// flow, and the packet path does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowRef {
    /// No flow (INVALID, or the flow was deleted by this packet).
    None,
    /// An existing flow.
    Existing(FlowId),
    /// A new flow, to be inserted with [`Conntrack::confirm`] if the rules accept the packet.
    Pending(Flow),
}

/// What tracking decided about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// The state the rules see.
    pub state: CtState,
    /// Why the packet is INVALID (only with [`CtState::Invalid`]).
    pub invalid: Option<InvalidReason>,
    /// Direction within its flow.
    pub dir: Dir,
    /// The flow.
    pub flow: FlowRef,
}

impl Tracked {
    fn invalid(reason: InvalidReason) -> Tracked {
        Tracked {
            state: CtState::Invalid,
            invalid: Some(reason),
            dir: Dir::Original,
            flow: FlowRef::None,
        }
    }
}

/// The table was full and no entry could be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// How many slots early drop looks at for an evictable flow (the kernel looks
/// at a few buckets near the new flow's bucket).
const EARLY_DROP_SCAN: usize = 64;

/// The connection tracking table.
pub struct Conntrack {
    cfg: ConntrackConfig,
    index: FlowIndex,
    index_hasher: RandomState,
    flows: Slab<Flow>,
    gc_cursor: usize,
    gc_in_pass: bool,
    earliest_expiry: Instant,
    pass_min_expiry: Instant,
    last_now: Instant,
    /// Table counters.
    pub stats: TableStats,
    helpers: HelperConfig,
    ftp_states: Slab<FtpState>,
    /// Pending expectations.
    pub expectations: Expectations,
    /// FTP helper counters.
    pub ftp_stats: FtpStats,
    helper_log_limit: TokenBucket,
    /// Flow events, recorded while enabled.
    pub events: EventRing,
}

enum Update {
    Done(CtState, bool),
    Invalid(InvalidReason),
    Reopen,
}

impl Conntrack {
    /// A table for `cfg.max` flows (and `cfg.expectation_max` expectations),
    /// allocated in full now, with the given helpers.
    pub fn new(cfg: ConntrackConfig, helpers: HelperConfig) -> Conntrack {
        let max = cfg.max.max(1);
        let ftp_flows = helpers.ftp.as_ref().map_or(0, |f| f.max_control_flows);
        Conntrack {
            helpers,
            ftp_states: Slab::with_limit(ftp_flows),
            expectations: Expectations::new(cfg.expectation_max),
            ftp_stats: FtpStats::default(),
            helper_log_limit: TokenBucket::new(1, 10),
            events: EventRing::default(),
            cfg,
            index: FlowIndex::for_flows(max),
            index_hasher: RandomState::new(),
            flows: Slab::with_limit(max),
            gc_cursor: 0,
            gc_in_pass: false,
            earliest_expiry: Instant::NEVER,
            pass_min_expiry: Instant::NEVER,
            last_now: Instant::ZERO,
            stats: TableStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ConntrackConfig {
        &self.cfg
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
        self.find_compact(&FlowTuple::of(tuple)?)
    }

    fn find_compact(&self, t: &FlowTuple) -> Option<(FlowId, Dir)> {
        let key = FlowKey::of(t);
        let mut dir = Dir::Original;
        let id = self.index.find(key_hash(&self.index_hasher, t), |id| {
            self.flows.get(id).is_some_and(|f| {
                if f.original == *t {
                    dir = Dir::Original;
                    true
                } else if FlowKey::of(&f.original) == key {
                    // Same key, other tuple: the inverse (see FlowKey).
                    dir = Dir::Reply;
                    true
                } else {
                    false
                }
            })
        })?;
        Some((id, dir))
    }

    /// Ids of every flow that has not expired at `now`.
    pub fn flow_ids(&self, now: Instant) -> impl Iterator<Item = FlowId> + '_ {
        self.flows
            .iter()
            .filter(move |(_, f)| f.expires > now)
            .map(|(id, _)| id)
    }

    /// Look a tuple up; a flow found expired is removed and not returned.
    pub fn lookup(&mut self, tuple: &Tuple, now: Instant) -> Option<(FlowId, Dir)> {
        self.stats.searched += 1;
        let (id, dir) = self.find(tuple)?;
        let expired = self.get(id).is_none_or(|f| f.expires <= now);
        if expired {
            self.remove(id);
            self.stats.expired += 1;
            return None;
        }
        Some((id, dir))
    }

    /// Remove a flow.
    pub fn remove(&mut self, id: FlowId) {
        let Some(flow) = self.flows.remove(id) else {
            return;
        };
        let at = self.last_now;
        self.emit(EventKind::Destroy, &flow, at);
        let (flows, hasher) = (&self.flows, &self.index_hasher);
        self.index
            .remove(key_hash(hasher, &flow.original), id, |other| {
                flows
                    .get(other)
                    .map_or(0, |f| key_hash(hasher, &f.original))
            });
        if let HelperSlot::Ftp(slot) = flow.helper {
            let pending = self.ftp_states.remove(slot).and_then(|st| st.expectation);
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

    fn emit(&mut self, kind: EventKind, flow: &Flow, at: Instant) {
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
        if max > self.index.capacity() {
            // Grow the index (allocating now, outside the packet path).
            let mut index = FlowIndex::for_flows(max);
            for (id, flow) in self.flows.iter() {
                index.insert(key_hash(&self.index_hasher, &flow.original), id);
            }
            self.index = index;
        }
        self.flows.set_limit(max);
        self.ftp_states
            .set_limit(helpers.ftp.as_ref().map_or(0, |f| f.max_control_flows));
        self.expectations.resize(cfg.expectation_max);
        self.cfg = cfg;
        self.helpers = helpers;
    }

    fn note_expiry(&mut self, at: Instant) {
        self.earliest_expiry = self.earliest_expiry.min(at);
        self.pass_min_expiry = self.pass_min_expiry.min(at);
    }

    /// Insert a pending flow after the rules accepted its first packet.
    ///
    /// When the table is full, first evicts an expired or non-assured flow near
    /// the new flow's (keyed) hash position; if there is none, returns
    /// [`TableFull`] and the packet must be dropped.
    pub fn confirm(&mut self, mut flow: Flow, now: Instant) -> Result<FlowId, TableFull> {
        let hash = key_hash(&self.index_hasher, &flow.original);
        if self.flows.len() >= self.flows.limit() && !self.early_drop(hash, now) {
            self.stats.table_full += 1;
            return Err(TableFull);
        }
        if self.find_compact(&flow.original).is_some() {
            // Either tuple already tracked: the packet path never gets here
            // (it found the flow); refuse rather than corrupt.
            return Err(TableFull);
        }
        let wants_ftp = flow.helper == HelperSlot::FtpWanted;
        flow.helper = HelperSlot::None;
        self.note_expiry(flow.expires);
        self.emit(EventKind::New, &flow, now);
        let Ok(id) = self.flows.insert(flow) else {
            return Err(TableFull);
        };
        if !self.index.insert(hash, id) {
            // Cannot happen: the index holds as many flows as the table.
            self.flows.remove(id);
            return Err(TableFull);
        }
        self.stats.inserted += 1;
        if wants_ftp {
            let helper = match self.ftp_states.insert(FtpState::default()) {
                Ok(slot) => HelperSlot::Ftp(slot),
                Err(_) => {
                    self.ftp_stats.no_state_slot += 1;
                    HelperSlot::None
                }
            };
            if let Some(f) = self.flows.get_mut(id) {
                f.helper = helper;
            }
        }
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

    /// When [`Conntrack::collect_expired`] has work next: `now` while a pass is
    /// under way, else a lower bound of the earliest expiry (`NEVER` when empty).
    pub fn next_deadline(&self, now: Instant) -> Instant {
        if self.gc_in_pass {
            now
        } else if self.flows.is_empty() {
            Instant::NEVER
        } else {
            self.earliest_expiry
        }
    }

    /// Remove expired flows, looking at no more than `slots` slots and
    /// removing no more than `removals` flows, so that a large table is swept
    /// in bounded steps (looking at a slot is a few nanoseconds, removing a
    /// flow a few hundred). Call again while [`Conntrack::next_deadline`] is
    /// not in the future.
    pub fn collect_expired(&mut self, now: Instant, slots: usize, removals: usize) {
        self.last_now = now;
        if !self.gc_in_pass {
            if now < self.earliest_expiry || self.flows.is_empty() {
                return;
            }
            self.gc_in_pass = true;
            self.gc_cursor = 0;
            self.pass_min_expiry = Instant::NEVER;
        }
        let n = self.flows.slot_count();
        let stop = (self.gc_cursor + slots).min(n);
        let mut removed = 0;
        while self.gc_cursor < stop && removed < removals {
            let id = self.gc_cursor;
            if let Some(expires) = self.flows.get(id as FlowId).map(|f| f.expires) {
                if expires <= now {
                    self.remove(id as FlowId);
                    self.stats.expired += 1;
                    removed += 1;
                } else {
                    self.pass_min_expiry = self.pass_min_expiry.min(expires);
                }
            }
            self.gc_cursor += 1;
        }
        if self.gc_cursor >= n {
            self.gc_in_pass = false;
            self.earliest_expiry = self.pass_min_expiry;
        }
    }

    /// Track one parsed packet at `now`: update its flow, or prepare a new one.
    pub fn track(&mut self, pkt: &Packet<'_>, now: Instant) -> Tracked {
        self.last_now = now;
        if let Transport::Icmp(i) = pkt.transport {
            if icmp::is_error(i.icmp_type) {
                return self.track_icmp_error(pkt, i.body, now);
            }
        }
        let tuple = Tuple::of_packet(pkt);
        if let Some((id, dir)) = self.lookup(&tuple, now) {
            match self.update(id, dir, pkt, now) {
                Update::Done(state, alive) => {
                    return Tracked {
                        state,
                        invalid: None,
                        dir,
                        flow: if alive {
                            FlowRef::Existing(id)
                        } else {
                            FlowRef::None
                        },
                    };
                }
                Update::Invalid(reason) => return Tracked::invalid(reason),
                Update::Reopen => {
                    self.remove(id);
                    self.stats.reopened += 1;
                }
            }
        }
        // A new flow a helper announced is RELATED (the expectation is one-shot).
        let expected = tuple.protocol == PROTO_TCP
            && !self.expectations.is_empty()
            && self
                .expectations
                .take(
                    &ExpectKey {
                        src: tuple.src,
                        dst: tuple.dst,
                        dport: tuple.dst_id,
                    },
                    now,
                )
                .is_some();
        match self.new_flow(pkt, tuple, now).map(|mut flow| {
            if expected {
                flow.expected = true;
                flow.helper = HelperSlot::None;
            }
            flow
        }) {
            Ok(flow) => Tracked {
                state: if flow.expected {
                    CtState::Related
                } else {
                    CtState::New
                },
                invalid: None,
                dir: Dir::Original,
                flow: FlowRef::Pending(flow),
            },
            Err(reason) => Tracked::invalid(reason),
        }
    }

    fn update(&mut self, id: FlowId, dir: Dir, pkt: &Packet<'_>, now: Instant) -> Update {
        let cfg = self.cfg;
        let Some(flow) = self.flows.get_mut(id) else {
            return Update::Invalid(InvalidReason::TcpInvalidState);
        };
        let state = if dir == Dir::Reply || flow.seen_reply {
            CtState::Established
        } else if flow.expected {
            CtState::Related
        } else {
            CtState::New
        };
        let mut kill = false;
        let mut new_expiry = None;
        let before = (flow.tcp_state(), flow.seen_reply, flow.assured);
        match (&mut flow.proto, pkt.transport) {
            (ProtoState::Tcp(conn), Transport::Tcp(seg)) => {
                match conn.packet(dir, &seg, flow.seen_reply, flow.assured, &cfg.tcp) {
                    TcpOutcome::Accept {
                        timeout,
                        assured,
                        kill: k,
                    } => {
                        new_expiry = Some(now + timeout);
                        flow.assured |= assured;
                        kill = k;
                    }
                    TcpOutcome::AcceptNoRefresh | TcpOutcome::Ignore => {}
                    TcpOutcome::Reopen => return Update::Reopen,
                    TcpOutcome::Invalid(reason) => return Update::Invalid(reason),
                    TcpOutcome::InvalidCapTimeout(reason) => {
                        let left = flow.expires.saturating_since(now);
                        let cap = cfg.tcp.timeouts.unacknowledged;
                        if left >= Duration::from_secs(120) && left > cap {
                            flow.expires = now + cap;
                        }
                        return Update::Invalid(reason);
                    }
                }
            }
            (ProtoState::Udp(conn), _) => {
                let out = conn.packet(flow.seen_reply, now, &cfg.udp);
                new_expiry = Some(now + out.timeout);
                flow.assured |= out.assured;
            }
            (ProtoState::Icmp, _) => new_expiry = Some(now + cfg.icmp_timeout),
            (ProtoState::Generic, _) => new_expiry = Some(now + cfg.generic_timeout),
            (ProtoState::Tcp(_), _) => return Update::Invalid(InvalidReason::TcpTruncated),
        }
        flow.account(dir, pkt.ip.total_len);
        if dir == Dir::Reply {
            flow.seen_reply = true;
        }
        if let Some(at) = new_expiry {
            flow.expires = at;
        }
        if self.events.enabled() && before != (flow.tcp_state(), flow.seen_reply, flow.assured) {
            let snapshot = *flow;
            self.emit(EventKind::Update, &snapshot, now);
        }
        if kill {
            self.remove(id);
        } else if let Some(at) = new_expiry {
            self.note_expiry(at);
        }
        Update::Done(state, !kill)
    }

    fn new_flow(
        &self,
        pkt: &Packet<'_>,
        tuple: Tuple,
        now: Instant,
    ) -> Result<Flow, InvalidReason> {
        let cfg = &self.cfg;
        let (proto, timeout) = match pkt.transport {
            Transport::Tcp(seg) => {
                let mut conn = TcpConn::new(&seg, &cfg.tcp)?;
                match conn.packet(Dir::Original, &seg, false, false, &cfg.tcp) {
                    TcpOutcome::Accept { timeout, .. } => (ProtoState::Tcp(conn), timeout),
                    TcpOutcome::Invalid(reason) => return Err(reason),
                    _ => return Err(InvalidReason::TcpInvalidNew),
                }
            }
            Transport::Udp(_) => (ProtoState::Udp(UdpConn::new(now)), cfg.udp.unreplied),
            Transport::Icmp(i) => {
                if icmp::is_query_reply(i.icmp_type) {
                    return Err(InvalidReason::IcmpUnsolicitedReply);
                }
                if !icmp::is_query_request(i.icmp_type) {
                    return Err(InvalidReason::IcmpUntrackedType);
                }
                (ProtoState::Icmp, cfg.icmp_timeout)
            }
            Transport::Other => (ProtoState::Generic, cfg.generic_timeout),
        };
        if tuple.invert().is_none() {
            return Err(InvalidReason::IcmpUntrackedType);
        }
        let helper = match (&self.helpers.ftp, pkt.transport) {
            (Some(f), Transport::Tcp(seg)) if f.ports.contains(seg.dst_port) => {
                HelperSlot::FtpWanted
            }
            _ => HelperSlot::None,
        };
        let mut flow = Flow {
            // Only IPv4 packets are tracked (the parser passes no other).
            original: FlowTuple::of(&tuple).ok_or(InvalidReason::IpBadHeader)?,
            proto,
            seen_reply: false,
            assured: false,
            expected: false,
            created: now,
            expires: now + timeout,
            packets: [0; 2],
            bytes: [0; 2],
            helper,
            origin: Side::Lan,
        };
        flow.account(Dir::Original, pkt.ip.total_len);
        Ok(flow)
    }

    /// Whether a TCP segment between these ports may belong to a control
    /// flow a helper reads (either port is a helper port): such a segment
    /// must reach the helper one segment at a time, never as a super-packet.
    pub fn helper_may_read(&self, src_port: u16, dst_port: u16) -> bool {
        self.helpers
            .ftp
            .as_ref()
            .is_some_and(|f| f.ports.contains(src_port) || f.ports.contains(dst_port))
    }

    /// Run the flow's helper on a packet the rules accepted, in state
    /// ESTABLISHED (as Linux helpers run only on ESTABLISHED packets).
    pub fn help(&mut self, id: FlowId, dir: Dir, pkt: &Packet<'_>, now: Instant) -> HelpVerdict {
        let Transport::Tcp(seg) = pkt.transport else {
            return HelpVerdict::Accept;
        };
        let Some(ftp_cfg) = self.helpers.ftp.as_ref() else {
            return HelpVerdict::Accept;
        };
        let timeout = ftp_cfg.expectation_timeout;
        let Some(flow) = self.flows.get(id) else {
            return HelpVerdict::Accept;
        };
        let HelperSlot::Ftp(slot) = flow.helper else {
            return HelpVerdict::Accept;
        };
        let Some(state) = self.ftp_states.get_mut(slot) else {
            return HelpVerdict::Accept;
        };
        let (command, addr, port) = match state.inspect(dir, seg.seq, seg.payload) {
            Inspect::Pass => return HelpVerdict::Accept,
            Inspect::Incomplete(_) => {
                self.ftp_stats.split_commands += 1;
                return HelpVerdict::Accept;
            }
            Inspect::Malformed(c) => {
                self.ftp_stats.malformed += 1;
                log::debug!(
                    "ftp {}: malformed {}",
                    flow.original.tuple().describe(),
                    c.as_str()
                );
                return HelpVerdict::Accept;
            }
            Inspect::Overlong => {
                self.ftp_stats.overlong += 1;
                return HelpVerdict::Accept;
            }
            Inspect::PortZero(_) => {
                self.ftp_stats.refused_port_zero += 1;
                return HelpVerdict::Accept;
            }
            Inspect::Announce {
                command,
                addr,
                port,
            } => (command, addr, port),
        };
        self.ftp_stats.announcements += 1;
        let sender = flow.tuple(dir).src;
        let peer = flow.tuple(dir.other()).src;
        let announced = addr.unwrap_or(sender);
        if announced != sender {
            self.ftp_stats.refused_address += 1;
            if self.helper_log_limit.take(now) {
                log::info!(
                    "ftp {}: {} announces {announced}:{port}, not the sender's own address {sender}; nothing expected (FTP bounce refused)",
                    flow.original.tuple().describe(),
                    command.as_str()
                );
            }
            return HelpVerdict::Accept;
        }
        // One pending expectation per control flow: a new one replaces it.
        if let Some(old) = state.expectation.take() {
            if self.expectations.remove(old).is_some() {
                self.expectations.stats.replaced += 1;
            }
        }
        let key = ExpectKey {
            src: peer,
            dst: announced,
            dport: port,
        };
        match self.expectations.insert(key, id, timeout, now) {
            Ok(eid) => {
                state.expectation = Some(eid);
                log::debug!(
                    "ftp {}: {} expects {peer} -> {announced}:{port}",
                    flow.original.tuple().describe(),
                    command.as_str()
                );
                HelpVerdict::Accept
            }
            Err(_) => {
                self.ftp_stats.expectation_table_full += 1;
                HelpVerdict::Drop
            }
        }
    }

    fn track_icmp_error(&mut self, pkt: &Packet<'_>, body: &[u8], now: Instant) -> Tracked {
        let inner = match icmp::embedded_tuple(body) {
            Ok(t) => t,
            Err(reason) => return Tracked::invalid(reason),
        };
        let Some(answer) = inner.invert() else {
            return Tracked::invalid(InvalidReason::IcmpErrorBadInner);
        };
        let Some((id, dir)) = self.lookup(&answer, now) else {
            return Tracked::invalid(InvalidReason::IcmpErrorNoFlow);
        };
        let Some(flow) = self.get(id) else {
            return Tracked::invalid(InvalidReason::IcmpErrorNoFlow);
        };
        if flow.tuple(dir).dst != pkt.ip.dst {
            return Tracked::invalid(InvalidReason::IcmpErrorWrongDestination);
        }
        Tracked {
            state: CtState::Related,
            invalid: None,
            dir,
            flow: FlowRef::Existing(id),
        }
    }
}

impl Tuple {
    /// `proto src:port -> dst:port` (ICMP: `id N type T/C`), for logs and listings.
    pub fn describe(&self) -> String {
        match self.protocol {
            PROTO_TCP | PROTO_UDP => format!(
                "{} {}:{} -> {}:{}",
                crate::packet::protocol_name(self.protocol),
                self.src,
                self.src_id,
                self.dst,
                self.dst_id
            ),
            PROTO_ICMP => {
                let [ty, code] = self.dst_id.to_be_bytes();
                format!(
                    "icmp {} -> {} id {} type {ty}/{code}",
                    self.src, self.dst, self.src_id
                )
            }
            p => format!("proto {p} {} -> {}", self.src, self.dst),
        }
    }
}
