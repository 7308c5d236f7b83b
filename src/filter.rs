//! The packet path: bytes in, verdict out.
//!
//! [`Firewall::process`] is a pure function of the packet bytes, the side they
//! came from, the injected time and the firewall's state. It does no I/O, reads
//! no clock, never panics and never allocates: the event loop, tests, fuzzers
//! and benchmarks all drive it the same way.
//!
//! Order, as in the kernel: parse (malformed packets are dropped here), TTL
//! check (a router may not forward TTL <= 1), conntrack (PREROUTING), rules of
//! the packet's direction (FORWARD), then confirmation of a new flow only if
//! the rules accepted its first packet.

use core::net::Ipv4Addr;

use crate::answer::{self, TokenBucket};
use crate::config::{Config, Ipv6Mode, OnReload};
use crate::conntrack::{icmp, Conntrack, CtState, Flow, FlowRef, HelpVerdict, ProtoState, Tuple};
use crate::offload::{self, VnetHeader};
use crate::packet::{
    self, IcmpInfo, IpInfo, Packet, ParseError, Side, TcpInfo, Transport, UdpInfo, PROTO_ICMP,
    PROTO_TCP, PROTO_UDP,
};
use crate::rules::{Action, Chain, Decider, Direction};
use crate::stats::{DropReason, InvalidReason, Stats};
use crate::time::Instant;

/// How many table slots one expiry step looks at at most (bounds event-loop pauses).
pub const GC_SLOTS: usize = 16_384;
/// How many flows one expiry step removes at most: removing one costs a few
/// hundred nanoseconds at a million flows, so a step stays well under 1 ms
/// (`cargo bench` prints the longest step of expiring a full 1M-flow table).
pub const GC_REMOVALS: usize = 256;

/// ICMP port unreachable (the reject answer for non-TCP).
const CODE_PORT_UNREACHABLE: u8 = 3;

/// What to do with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Write the (possibly modified, e.g. TTL) packet to the other side.
    pub forward: bool,
    /// Why it was dropped, when it was.
    pub drop: Option<DropReason>,
    /// When non-zero, write `answer[..answer_len]` back to the side the packet came from.
    pub answer_len: usize,
    /// The conntrack state the rules saw, if tracking ran.
    pub state: Option<CtState>,
    /// The rule (or policy) that decided, if the rules ran.
    pub decided_by: Option<(Direction, Decider)>,
    /// The packet is to be logged (a `log` rule or policy, or a dropped
    /// INVALID or table-full packet), within the log rate limit.
    pub logged: bool,
    /// Why the packet was INVALID, when it was.
    pub invalid: Option<InvalidReason>,
    /// A super-packet (TUN offloads) that must be handled one segment at a
    /// time: nothing was decided or counted; cut it with
    /// [`crate::offload::segment_tcp4`] and process each segment.
    pub resegment: bool,
}

impl Verdict {
    fn dropped(reason: DropReason, state: Option<CtState>) -> Verdict {
        Verdict {
            forward: false,
            drop: Some(reason),
            answer_len: 0,
            state,
            decided_by: None,
            logged: false,
            invalid: None,
            resegment: false,
        }
    }

    fn forwarded(state: Option<CtState>) -> Verdict {
        Verdict {
            forward: true,
            drop: None,
            answer_len: 0,
            state,
            decided_by: None,
            logged: false,
            invalid: None,
            resegment: false,
        }
    }
}

/// What a reload changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    /// Rules in the new config (both directions).
    pub rules: usize,
    /// Rules whose counters were carried over (same name).
    pub counters_carried: usize,
    /// Flows in the table after the reload.
    pub flows_kept: usize,
    /// Flows removed because the new rules would refuse them (`on_reload: Recheck`).
    pub flows_removed: usize,
}

/// The firewall: conntrack table, rules, counters.
pub struct Firewall {
    conntrack: Conntrack,
    outbound: Chain,
    inbound: Chain,
    stats: Stats,
    ipv6: Ipv6Mode,
    router: [Option<Ipv4Addr>; 2],
    answer_limit: TokenBucket,
    log_limit: TokenBucket,
    table_full_log_limit: TokenBucket,
    log_invalid: bool,
    on_reload: OnReload,
}

impl Firewall {
    /// A firewall with an empty table, built from a validated config.
    pub fn new(cfg: &Config) -> Firewall {
        Firewall {
            conntrack: Conntrack::new(
                cfg.conntrack.to_conntrack_config(),
                cfg.helpers.to_helper_config(),
            ),
            outbound: Chain::new(
                cfg.outbound.rules.clone(),
                cfg.outbound.policy,
                cfg.outbound.log,
            ),
            inbound: Chain::new(
                cfg.inbound.rules.clone(),
                cfg.inbound.policy,
                cfg.inbound.log,
            ),
            stats: Stats::default(),
            ipv6: cfg.ipv6,
            router: [cfg.router.lan, cfg.router.wan],
            // Linux: icmp_msgs_per_sec 1000, icmp_msgs_burst 50.
            answer_limit: TokenBucket::new(1000, 50),
            log_limit: TokenBucket::new(cfg.logging.per_second, cfg.logging.burst),
            table_full_log_limit: TokenBucket::new(1, 5),
            log_invalid: cfg.logging.invalid,
            on_reload: cfg.on_reload,
        }
    }

    /// Swap in a new, already validated config between two packets. Flows
    /// and expectations survive; rule counters carry over for rules whose name
    /// is unchanged (and for the policies); with `on_reload: Recheck` (of the
    /// new config) flows the new rules would refuse are removed.
    pub fn reload(&mut self, cfg: &Config, now: Instant) -> ReloadSummary {
        let mut outbound = Chain::new(
            cfg.outbound.rules.clone(),
            cfg.outbound.policy,
            cfg.outbound.log,
        );
        let mut inbound = Chain::new(
            cfg.inbound.rules.clone(),
            cfg.inbound.policy,
            cfg.inbound.log,
        );
        let counters_carried =
            outbound.inherit_counters(&self.outbound) + inbound.inherit_counters(&self.inbound);
        self.outbound = outbound;
        self.inbound = inbound;
        self.conntrack.reconfigure(
            cfg.conntrack.to_conntrack_config(),
            cfg.helpers.to_helper_config(),
        );
        self.ipv6 = cfg.ipv6;
        self.router = [cfg.router.lan, cfg.router.wan];
        self.log_limit = TokenBucket::new(cfg.logging.per_second, cfg.logging.burst);
        self.log_invalid = cfg.logging.invalid;
        self.on_reload = cfg.on_reload;
        let mut flows_removed = 0;
        if self.on_reload == OnReload::Recheck {
            let refused: Vec<u32> = self
                .conntrack
                .flow_ids(now)
                .filter(|&id| {
                    self.conntrack
                        .get(id)
                        .is_some_and(|flow| !self.would_accept(flow))
                })
                .collect();
            flows_removed = refused.len();
            for id in refused {
                self.conntrack.remove(id);
            }
        }
        ReloadSummary {
            rules: self.outbound.rules.len() + self.inbound.rules.len(),
            counters_carried,
            flows_kept: self.conntrack.len(),
            flows_removed,
        }
    }

    /// Whether the current rules accept the first packet of `flow` (as NEW,
    /// or RELATED for an expected flow), from the side it came from.
    pub fn would_accept(&self, flow: &Flow) -> bool {
        let t = flow.tuple(crate::conntrack::Dir::Original);
        let transport = match (t.protocol, flow.proto) {
            (PROTO_TCP, _) => Transport::Tcp(TcpInfo {
                src_port: t.src_id,
                dst_port: t.dst_id,
                seq: 0,
                ack: 0,
                flags: packet::tcp_flags::SYN,
                window: 0,
                options: &[],
                payload: &[],
            }),
            (PROTO_UDP, _) => Transport::Udp(UdpInfo {
                src_port: t.src_id,
                dst_port: t.dst_id,
                payload: &[],
            }),
            (PROTO_ICMP, ProtoState::Icmp) => {
                let [icmp_type, code] = t.dst_id.to_be_bytes();
                Transport::Icmp(IcmpInfo {
                    icmp_type,
                    code,
                    ident: t.src_id,
                    body: &[],
                })
            }
            _ => Transport::Other,
        };
        let pkt = Packet {
            ip: IpInfo {
                src: t.src,
                dst: t.dst,
                ttl: 64,
                protocol: t.protocol,
                header_len: 20,
                total_len: 20,
            },
            transport,
        };
        let state = if flow.expected {
            CtState::Related
        } else {
            CtState::New
        };
        self.chain(Direction::from_ingress(flow.origin))
            .peek(&pkt, state)
            == Action::Accept
    }

    fn chain_mut(&mut self, dir: Direction) -> &mut Chain {
        match dir {
            Direction::Outbound => &mut self.outbound,
            Direction::Inbound => &mut self.inbound,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The conntrack table.
    pub fn conntrack(&self) -> &Conntrack {
        &self.conntrack
    }

    /// The conntrack table, mutably (flush, kill).
    pub fn conntrack_mut(&mut self) -> &mut Conntrack {
        &mut self.conntrack
    }

    /// The rules of a direction with their counters.
    pub fn chain(&self, dir: Direction) -> &Chain {
        match dir {
            Direction::Outbound => &self.outbound,
            Direction::Inbound => &self.inbound,
        }
    }

    /// When [`Firewall::tick`] has work next.
    pub fn next_deadline(&self, now: Instant) -> Instant {
        self.conntrack.next_deadline(now)
    }

    /// Expire flows, one bounded step.
    pub fn tick(&mut self, now: Instant) {
        self.conntrack.collect_expired(now, GC_SLOTS, GC_REMOVALS);
    }

    /// Decide one packet read from `side`. `buf` holds exactly the packet; it is
    /// modified in place when forwarded (TTL). An answer (RST, ICMP error) is
    /// written to `answer`, which should hold at least 576 bytes.
    pub fn process(
        &mut self,
        side: Side,
        buf: &mut [u8],
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        self.process_offloaded(side, &offload::PLAIN, buf, answer, now)
    }

    /// [`Firewall::process`] for a packet read with TUN offloads, whose
    /// virtio-net header says `vnet`. A super-packet is tracked as the whole
    /// range of segments it stands for, as Linux conntrack sees a GSO skb; a
    /// transport checksum the header vouches for is not recomputed. A
    /// super-packet of a flow a helper may read comes back with
    /// [`Verdict::resegment`] set, untouched and uncounted. The forwarded
    /// packet keeps `vnet` (the caller writes it in front); answers are
    /// plain packets with complete checksums.
    pub fn process_offloaded(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        buf: &mut [u8],
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        let verdict = self.decide(side, vnet, buf, answer, now);
        if verdict.resegment {
            self.stats.resegmented += 1;
            return verdict;
        }
        self.stats.packets_in[side.index()] += 1;
        self.stats.bytes_in[side.index()] += buf.len() as u64;
        if vnet.is_gso() {
            self.stats.gso_in[side.index()] += 1;
        }
        if vnet.flags & (offload::F_NEEDS_CSUM | offload::F_DATA_VALID) != 0 {
            self.stats.checksum_offloaded[side.index()] += 1;
        }
        if let Some(reason) = verdict.drop {
            self.stats.count_drop(reason);
        }
        if verdict.forward {
            self.stats.packets_forwarded[side.index()] += 1;
        }
        verdict
    }

    fn decide(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        buf: &mut [u8],
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        let pkt = match packet::parse_with(buf, vnet) {
            Ok(p) => p,
            Err(ParseError::Invalid(reason)) => {
                self.stats.count_invalid(reason);
                log::debug!("invalid {}: {reason}: {} bytes", side.as_str(), buf.len());
                return Verdict {
                    invalid: Some(reason),
                    logged: self.log_invalid && self.log_limit.take(now),
                    ..Verdict::dropped(DropReason::Malformed, Some(CtState::Invalid))
                };
            }
            Err(ParseError::Fragment) => return Verdict::dropped(DropReason::Fragment, None),
            Err(ParseError::Ipv6) => {
                return match self.ipv6 {
                    Ipv6Mode::Drop => Verdict::dropped(DropReason::Ipv6Disabled, None),
                    Ipv6Mode::Pass => forward_ipv6(buf),
                };
            }
        };

        if let (true, Transport::Tcp(seg)) = (vnet.is_gso(), pkt.transport) {
            if self.conntrack.helper_may_read(seg.src_port, seg.dst_port) {
                return Verdict {
                    forward: false,
                    resegment: true,
                    ..Verdict::forwarded(None)
                };
            }
        }

        if pkt.ip.ttl <= 1 {
            let mut answer_len = 0;
            if let Some(src) = self.router[side.index()] {
                if self.answer_limit.take(now) {
                    answer_len =
                        answer::icmp_error(&pkt, buf, icmp::TYPE_TIME_EXCEEDED, 0, src, answer)
                            .unwrap_or(0);
                    if answer_len > 0 {
                        self.stats.sent_icmp += 1;
                    }
                } else {
                    self.stats.sent_rate_limited += 1;
                }
            }
            return Verdict {
                answer_len,
                ..Verdict::dropped(DropReason::TtlExceeded, None)
            };
        }

        let tracked = self.conntrack.track(&pkt, now);
        if let Some(reason) = tracked.invalid {
            self.stats.count_invalid(reason);
            if log::log_enabled!(log::Level::Debug) {
                log::debug!(
                    "invalid {}: {reason}: {}",
                    side.as_str(),
                    Tuple::of_packet(&pkt).describe()
                );
            }
        }
        let direction = Direction::from_ingress(side);
        let (action, decider) = self.chain_mut(direction).evaluate(&pkt, tracked.state);
        let state = Some(tracked.state);
        let chain = self.chain(direction);
        let wants_log = chain.wants_log(decider)
            || (self.log_invalid && tracked.invalid.is_some() && action != Action::Accept);
        let mut verdict = match action {
            Action::Accept => self.accept(&pkt, side, &tracked, now),
            Action::Drop => {
                let reason = match (decider, direction) {
                    (Decider::Rule(_), _) => DropReason::RuleDrop,
                    (Decider::Policy, Direction::Outbound) => DropReason::PolicyOutbound,
                    (Decider::Policy, Direction::Inbound) => DropReason::PolicyInbound,
                };
                Verdict::dropped(reason, state)
            }
            Action::Reject => Verdict {
                answer_len: self.reject(&pkt, side, buf, answer, now),
                ..Verdict::dropped(DropReason::RuleReject, state)
            },
        };
        verdict.decided_by = Some((direction, decider));
        verdict.invalid = tracked.invalid;
        let table_full = verdict.drop == Some(DropReason::TableFull);
        verdict.logged = if table_full {
            self.table_full_log_limit.take(now)
        } else {
            wants_log && self.log_limit.take(now)
        };
        if verdict.forward {
            packet::decrement_ttl(buf);
        }
        verdict
    }

    fn accept(
        &mut self,
        pkt: &Packet<'_>,
        side: Side,
        tracked: &crate::conntrack::Tracked,
        now: Instant,
    ) -> Verdict {
        let state = Some(tracked.state);
        match tracked.flow {
            FlowRef::Pending(mut flow) => {
                flow.origin = side;
                if self.conntrack.confirm(flow, now).is_err() {
                    return Verdict::dropped(DropReason::TableFull, state);
                }
            }
            FlowRef::Existing(id)
                if tracked.state == CtState::Established
                    && self.conntrack.help(id, tracked.dir, pkt, now) == HelpVerdict::Drop =>
            {
                return Verdict::dropped(DropReason::Helper, state);
            }
            _ => {}
        }
        Verdict::forwarded(state)
    }

    fn reject(
        &mut self,
        pkt: &Packet<'_>,
        side: Side,
        original: &[u8],
        answer: &mut [u8],
        now: Instant,
    ) -> usize {
        if !self.answer_limit.take(now) {
            self.stats.sent_rate_limited += 1;
            return 0;
        }
        let built = match pkt.transport {
            Transport::Tcp(seg) => {
                answer::tcp_reset(pkt, &seg, answer).inspect(|_| self.stats.sent_tcp_rst += 1)
            }
            _ => {
                let src = self.router[side.index()].or(match pkt.ip.dst {
                    core::net::IpAddr::V4(a) => Some(a),
                    core::net::IpAddr::V6(_) => None,
                });
                src.and_then(|src| {
                    answer::icmp_error(
                        pkt,
                        original,
                        icmp::TYPE_DEST_UNREACHABLE,
                        CODE_PORT_UNREACHABLE,
                        src,
                        answer,
                    )
                })
                .inspect(|_| self.stats.sent_icmp += 1)
            }
        };
        built.unwrap_or(0)
    }
}

/// One log line for a logged packet: what decided, why, direction, state and
/// tuple. The event loop prints it; building it allocates, which only happens
/// for packets the rate limit let through.
pub fn log_line(
    fw: &Firewall,
    side: Side,
    vnet: &VnetHeader,
    packet_bytes: &[u8],
    v: &Verdict,
) -> String {
    let (direction, rule) = match v.decided_by {
        Some((d, decider)) => (d, fw.chain(d).decider_name(decider)),
        None => (Direction::from_ingress(side), "-".to_string()),
    };
    let tuple = packet::parse_with(packet_bytes, vnet)
        .map(|p| Tuple::of_packet(&p).describe())
        .unwrap_or_else(|_| format!("{} bytes unparsable", packet_bytes.len()));
    let outcome = match v.drop {
        None => "accept".to_string(),
        Some(r) => format!("drop reason={r}"),
    };
    let state = v.state.map_or("-", CtState::as_str);
    let invalid = v.invalid.map_or(String::new(), |r| format!(" invalid={r}"));
    format!(
        "tunfw: {outcome} rule={rule} dir={} state={state}{invalid} {tuple}",
        direction.as_str()
    )
}

fn forward_ipv6(buf: &mut [u8]) -> Verdict {
    // Hop limit is byte 7 of the IPv6 header; there is no header checksum.
    if buf.len() >= 40 && buf[7] > 1 {
        buf[7] -= 1;
        Verdict::forwarded(None)
    } else {
        Verdict::dropped(DropReason::TtlExceeded, None)
    }
}
