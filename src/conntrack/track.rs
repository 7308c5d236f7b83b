//! Classification: every packet is NEW, ESTABLISHED, RELATED, INVALID or
//! UNTRACKED, as Linux conntrack and `xt_state` see it.
//!
//! [`Conntrack::track`] runs before the rules (the kernel's PREROUTING): it
//! updates existing flows and returns a *pending* flow for a NEW packet.
//! [`Conntrack::confirm`] inserts the pending flow only once the rules
//! accepted the packet, so a flow whose first packet was dropped is never
//! kept.

use core::time::Duration;

use super::events::EventKind;
use super::expect::{ExpectKey, NatFollow};
use super::flow::{Flow, FlowId, HelperSlot, NatSlot, ProtoState};
use super::icmp::{embedded_tuple, embedded_tuple_v6};
use super::state::CtState;
use super::table::{Conntrack, HelperState};
use super::tcp::{TcpConn, TcpOutcome};
use super::tuple::{Dir, Tuple};
use super::udp::UdpConn;
use crate::packet::{Packet, Transport};
use crate::side::Side;
use crate::stats::InvalidReason;
use crate::time::Instant;
use crate::wire::{icmp, icmpv6, PROTO_TCP};

/// The flow a tracked packet belongs to.
// A pending flow is carried by value: boxing it would allocate for every new
// flow, and the packet path does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowRef {
    /// No flow (INVALID, UNTRACKED).
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
    /// Why the packet is INVALID, when it is.
    pub invalid: Option<InvalidReason>,
    /// The packet's direction in its flow (original for new flows).
    pub dir: Dir,
    /// The flow.
    pub flow: FlowRef,
    /// For a new flow a translated control flow's helper announced: that
    /// control flow and how the new flow follows its translation.
    pub follows: Option<(FlowId, NatFollow)>,
}

impl Tracked {
    fn invalid(reason: InvalidReason) -> Tracked {
        Tracked::of(CtState::Invalid, Some(reason), Dir::Original, FlowRef::None)
    }

    fn of(state: CtState, invalid: Option<InvalidReason>, dir: Dir, flow: FlowRef) -> Tracked {
        Tracked {
            state,
            invalid,
            dir,
            flow,
            follows: None,
        }
    }
}

/// What one packet did to its existing flow.
enum Update {
    /// Tracked in `state` (the flow may have ended with the packet: it
    /// then expires now).
    Done(CtState),
    /// INVALID; the flow is unchanged (or only its timeout shortened).
    Invalid(InvalidReason),
    /// A SYN reopening a closed flow: remove it and track the packet as new.
    Reopen,
}

/// What a protocol's tracker said about a packet of an existing flow.
enum Step {
    /// Accepted: refresh the timeout; the flow becomes ASSURED if `assured`;
    /// `kill` ends it with this packet.
    Accept {
        timeout: Duration,
        assured: bool,
        kill: bool,
    },
    /// Accepted without touching the timeout.
    Keep,
    /// See [`Update::Reopen`].
    Reopen,
    /// INVALID; with `cap`, a remaining timeout of 120 s or more is cut to
    /// the `unacknowledged` timeout.
    Invalid { reason: InvalidReason, cap: bool },
}

impl<S: HelperState> Conntrack<S> {
    /// Track one parsed packet at `now`, read from `side`: update its flow,
    /// or prepare a new one.
    pub fn track(&mut self, pkt: &Packet<'_>, side: Side, now: Instant) -> Tracked {
        self.last_now = now;
        match pkt.transport {
            Transport::Icmp(i) if icmp::is_error(i.icmp_type) => {
                return self.track_icmp_error(pkt, embedded_tuple(i.body), now);
            }
            // Linux never tracks neighbour discovery and MLD.
            Transport::Icmpv6(i) if icmpv6::is_untracked(i.icmp_type) => {
                return Tracked::of(CtState::Untracked, None, Dir::Original, FlowRef::None);
            }
            Transport::Icmpv6(i) if icmpv6::is_error(i.icmp_type) => {
                return self.track_icmp_error(pkt, embedded_tuple_v6(i.body), now);
            }
            _ => {}
        }
        let tuple = Tuple::of_packet(pkt);
        let found = self.lookup(&tuple, now);
        if let Some((id, dir, update)) =
            found.and_then(|(id, dir)| Some((id, dir, self.update(id, dir, pkt, now)?)))
        {
            match update {
                Update::Done(state) => {
                    return Tracked::of(state, None, dir, FlowRef::Existing(id));
                }
                Update::Invalid(reason) => return Tracked::invalid(reason),
                Update::Reopen => {
                    self.remove(id);
                    self.stats.reopened += 1;
                }
            }
        }
        // A new flow a helper announced is RELATED (the expectation is one-shot).
        let expectation = if tuple.protocol == PROTO_TCP && !self.expectations.is_empty() {
            let key = ExpectKey {
                src: tuple.src,
                dst: tuple.dst,
                dport: tuple.dst_id,
            };
            self.expectations.take(&key, now)
        } else {
            None
        };
        match self.new_flow(pkt, tuple, side, now) {
            Ok(mut flow) => {
                let state = match expectation {
                    Some(_) => {
                        flow.expected = true;
                        flow.helper = HelperSlot::None;
                        CtState::Related
                    }
                    None => CtState::New,
                };
                Tracked {
                    follows: expectation.and_then(|e| Some((e.master, e.nat?))),
                    ..Tracked::of(state, None, Dir::Original, FlowRef::Pending(flow))
                }
            }
            Err(reason) => Tracked::invalid(reason),
        }
    }

    /// Run the flow's protocol tracker on a packet of flow `id`; `None`
    /// when there is no such flow.
    fn update(&mut self, id: FlowId, dir: Dir, pkt: &Packet<'_>, now: Instant) -> Option<Update> {
        let cfg = self.cfg;
        // An ack of data a NAT helper moved arrives in the moved numbering
        // (only a flow with a helper can have had its numbers moved).
        let ack_offset = match (pkt.transport, self.flows.get(id)?.helper) {
            (Transport::Tcp(seg), HelperSlot::Attached(_)) => self
                .seq_adjust(id)
                .map_or(0, |s| s.ack_offset(dir, seg.ack)),
            _ => 0,
        };
        let flow = self.flows.get_mut(id)?;
        let state = if dir == Dir::Reply || flow.seen_reply {
            CtState::Established
        } else if flow.expected {
            CtState::Related
        } else {
            CtState::New
        };
        let before = (flow.tcp_state(), flow.seen_reply, flow.assured);
        let step = match (&mut flow.proto, pkt.transport) {
            (ProtoState::Tcp(conn), Transport::Tcp(seg)) => {
                let status = (flow.seen_reply, flow.assured);
                Step::from(conn.packet_adjusted(dir, &seg, ack_offset, status, &cfg.tcp))
            }
            (ProtoState::Udp(conn), _) => {
                let out = conn.packet(flow.seen_reply, now, &cfg.udp);
                Step::Accept {
                    timeout: out.timeout,
                    assured: out.assured,
                    kill: false,
                }
            }
            (ProtoState::Icmp, Transport::Icmpv6(_)) => Step::refresh(cfg.icmpv6_timeout),
            (ProtoState::Icmp, _) => Step::refresh(cfg.icmp_timeout),
            // A TCP flow's tuple says protocol 6, and the parser gives every
            // such packet a TCP transport: the second arm is the compiler's.
            (ProtoState::Generic, _) | (ProtoState::Tcp(_), _) => {
                Step::refresh(cfg.generic_timeout)
            }
        };
        let (new_expiry, kill) = match step {
            Step::Accept {
                timeout,
                assured,
                kill,
            } => {
                flow.assured |= assured;
                (Some(now + timeout), kill)
            }
            Step::Keep => (None, false),
            Step::Reopen => return Some(Update::Reopen),
            Step::Invalid { reason, cap } => {
                let left = flow.expires.saturating_since(now);
                let most = cfg.tcp.timeouts.unacknowledged;
                if cap && left >= Duration::from_secs(120) && left > most {
                    flow.expires = now + most;
                }
                return Some(Update::Invalid(reason));
            }
        };
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
            // Gone for every later packet (lookups and the sweep treat an
            // expired flow as absent), but still there for this one: its
            // address translation (a RST answering an unreplied SYN goes
            // back translated, as Linux keeps a killed conntrack on the
            // packet that killed it).
            if let Some(f) = self.flows.get_mut(id) {
                f.expires = now;
            }
            self.note_expiry(now);
        } else if let Some(at) = new_expiry {
            self.note_expiry(at);
        }
        Some(Update::Done(state))
    }

    /// The pending flow a packet that matched no flow would start, or why it
    /// cannot start one.
    fn new_flow(
        &self,
        pkt: &Packet<'_>,
        tuple: Tuple,
        side: Side,
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
            Transport::Icmpv6(i) => {
                if icmpv6::is_query_reply(i.icmp_type) {
                    return Err(InvalidReason::IcmpUnsolicitedReply);
                }
                // An unknown informational type cannot start a flow.
                if !icmpv6::is_query_request(i.icmp_type) {
                    return Err(InvalidReason::IcmpUntrackedType);
                }
                (ProtoState::Icmp, cfg.icmpv6_timeout)
            }
            Transport::Other => (ProtoState::Generic, cfg.generic_timeout),
        };
        // Only an ICMP type without an answer has no inverse, and those
        // were refused above.
        if tuple.invert().is_none() {
            return Err(InvalidReason::IcmpUntrackedType);
        }
        let helper = match pkt.transport {
            Transport::Tcp(seg) if self.helpers.attaches_to(seg.dst_port) => HelperSlot::Wanted,
            _ => HelperSlot::None,
        };
        let mut flow = Flow {
            original: tuple,
            proto,
            seen_reply: false,
            assured: false,
            expected: false,
            expires: now + timeout,
            packets: [0; 2],
            bytes: [0; 2],
            helper,
            origin: side,
            nat: NatSlot::NONE,
        };
        flow.account(Dir::Original, pkt.ip.total_len);
        Ok(flow)
    }

    /// An ICMP or ICMPv6 error is RELATED to the flow of the packet it
    /// quotes (`quoted`: its tuple as sent), when its outer destination is
    /// where that packet came from.
    fn track_icmp_error(
        &mut self,
        pkt: &Packet<'_>,
        quoted: Result<Tuple, InvalidReason>,
        now: Instant,
    ) -> Tracked {
        let inner = match quoted {
            Ok(t) => t,
            Err(reason) => return Tracked::invalid(reason),
        };
        let Some(answer) = inner.invert() else {
            return Tracked::invalid(InvalidReason::IcmpErrorBadInner);
        };
        let Some((id, dir)) = self.lookup(&answer, now) else {
            return Tracked::invalid(InvalidReason::IcmpErrorNoFlow);
        };
        // The quoted packet's source is the reply tuple's destination.
        if self
            .get(id)
            .is_none_or(|f| self.tuple(f, dir).dst != pkt.ip.dst)
        {
            return Tracked::invalid(InvalidReason::IcmpErrorWrongDestination);
        }
        Tracked::of(CtState::Related, None, dir, FlowRef::Existing(id))
    }
}

impl From<TcpOutcome> for Step {
    fn from(outcome: TcpOutcome) -> Step {
        match outcome {
            TcpOutcome::Accept {
                timeout,
                assured,
                kill,
            } => Step::Accept {
                timeout,
                assured,
                kill,
            },
            TcpOutcome::AcceptNoRefresh | TcpOutcome::Ignore => Step::Keep,
            TcpOutcome::Reopen => Step::Reopen,
            TcpOutcome::Invalid(reason) => Step::Invalid { reason, cap: false },
            TcpOutcome::InvalidCapTimeout(reason) => Step::Invalid { reason, cap: true },
        }
    }
}

impl Step {
    fn refresh(timeout: Duration) -> Step {
        Step::Accept {
            timeout,
            assured: false,
            kill: false,
        }
    }
}
