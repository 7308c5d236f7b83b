//! The packet path: bytes in, verdict out.
//!
//! [`Firewall::process`] is a pure function of the packet bytes, the side they
//! came from, the injected time and the firewall's state. It does no I/O, reads
//! no clock, never panics and never allocates: the event loop, tests, fuzzers
//! and benchmarks all drive it the same way.
//!
//! Order, as in the kernel: the IPv6 switch, parse (malformed packets are
//! dropped here), IPv6 scope (a router forwards no link-local, loopback,
//! multicast or unspecified address), conntrack (PREROUTING), TTL or
//! hop-limit check (a router may not forward TTL <= 1: `ip_forward`,
//! `ip6_forward`, after conntrack saw the packet), the
//! chain of the side the packet came from (FORWARD), then confirmation of a
//! new flow only if the rules accepted its first packet, and the helper.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::answer;
use crate::chain::Chain;
use crate::config::{Config, Ipv6Mode, OnReload};
use crate::conntrack::config::{ConntrackConfig, HelperConfig};
use crate::conntrack::flow::{Flow, FlowId, ProtoState};
use crate::conntrack::snapshot::{RestoreError, RestoreSummary};
use crate::conntrack::state::CtState;
use crate::conntrack::table::{ConfirmError, Conntrack};
use crate::conntrack::track::{FlowRef, Tracked};
use crate::conntrack::tuple::{Dir, Tuple};
use crate::datagram::{DatagramBuffers, Leaving};
use crate::defrag::{Family, Outcome, Reassembled, Reassembler};
use crate::helpers::ftp::FtpState;
use crate::helpers::glue::{FtpHelper, HelpVerdict};
use crate::limits::SourceLimiter;
use crate::nat::packet_plan::{self, Plan};
use crate::nat::Nat;
use crate::packet::{self, IcmpInfo, IpInfo, Packet, ParseError, TcpInfo, Transport, UdpInfo};
use crate::ratelimit::TokenBucket;
use crate::rules::{Action, MatchContext};
use crate::sets::Sets;
use crate::side::Side;
use crate::stats::{DropReason, InvalidReason, Stats};
use crate::time::Instant;
use crate::verdict::{Fate, Verdict};
use crate::wire::tcp::{flags, SeqNum};
use crate::wire::vnet::{self, VnetHeader};
use crate::wire::{icmp, icmpv6, ipv4, ipv6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use translation::NewFlowError;

mod rule_step;
pub mod trace;
mod translation;

use rule_step::{RuleStep, Rules};
use trace::{FlowView, TraceRecord, Tracer};

/// How many table slots one expiry step looks at at most (bounds event-loop pauses).
pub const GC_SLOTS: usize = 16_384;
/// How many flows one expiry step removes at most: removing one costs a few
/// hundred nanoseconds at a million flows, so a step stays well under 1 ms
/// (`cargo bench` prints the longest step of expiring a full 1M-flow table).
pub const GC_REMOVALS: usize = 256;

/// Debug lines about single packets (`-v`) per second at most, and their burst.
pub const DEBUG_LINES_PER_SECOND: u64 = 100;

/// The conntrack table the firewall keeps: with the FTP helper's state.
pub type Table = Conntrack<FtpState>;

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

/// Everything a config sets in the firewall outside the conntrack table
/// (whose settings the table keeps: [`table_config`]), built by one
/// function at start and on reload.
struct Settings {
    /// The chain of packets from each side (index [`Side::index`]).
    chains: [Chain; 2],
    ipv6: Ipv6Mode,
    /// Source address of the ICMP errors sent to each side.
    router: [Option<Ipv4Addr>; 2],
    /// Source address of the ICMPv6 errors sent to each side.
    router6: [Option<Ipv6Addr>; 2],
    log_limit: TokenBucket,
    log_invalid: bool,
    on_reload: OnReload,
}

/// The conntrack table's settings in `cfg`.
fn table_config(cfg: &Config) -> (ConntrackConfig, HelperConfig) {
    let conntrack = ConntrackConfig {
        nat: !cfg.nat_rules().is_empty(),
        ..cfg.conntrack.to_conntrack_config()
    };
    (conntrack, cfg.helpers.to_helper_config())
}

impl Settings {
    fn of(cfg: &Config) -> Settings {
        let chain = |c: &crate::config::ChainConfig| Chain::new(c.rules.clone(), c.policy, c.log);
        Settings {
            chains: [chain(&cfg.outbound), chain(&cfg.inbound)],
            ipv6: cfg.ipv6,
            router: [cfg.router.lan, cfg.router.wan],
            router6: [cfg.router.lan6, cfg.router.wan6],
            log_limit: TokenBucket::new(cfg.logging.per_second, cfg.logging.burst),
            log_invalid: cfg.logging.invalid,
            on_reload: cfg.on_reload,
        }
    }
}

/// The firewall: reassembler, conntrack table, helper, rules, counters.
pub struct Firewall {
    defrag: Reassembler,
    fragments: DatagramBuffers,
    conntrack: Table,
    ftp: FtpHelper,
    nat: Nat,
    /// Named address and port sets the rules refer to.
    sets: Sets,
    /// The token buckets of rules' per-source rate limits.
    limiter: SourceLimiter,
    settings: Settings,
    stats: Stats,
    answer_limit: TokenBucket,
    table_full_log_limit: TokenBucket,
    /// Debug lines about single packets (`-v`), so that a flood of
    /// INVALID packets cannot turn into a flood of log lines.
    debug_log_limit: TokenBucket,
    /// `ctl trace` subscribers and their records.
    tracer: Tracer,
    /// The record of the packet being traced.
    scratch: TraceRecord,
    /// A restored flow's sequence numbers were moved before the restart
    /// (see [`Firewall::restore`]).
    restored_seq_adjusted: bool,
}

impl Firewall {
    /// A firewall with an empty table, built from a validated config.
    pub fn new(cfg: &Config) -> Firewall {
        let (table, helpers) = table_config(cfg);
        let mut conntrack = Conntrack::new(table, helpers);
        conntrack.count_sources(cfg.counted_sources());
        Firewall {
            defrag: Reassembler::new(cfg.defrag.to_defrag_config()),
            fragments: DatagramBuffers::new(),
            conntrack,
            ftp: FtpHelper::default(),
            nat: Nat::new(cfg.nat_rules()),
            sets: Sets::new(&crate::config::set_definitions(&cfg.sets), Instant::ZERO),
            limiter: SourceLimiter::new(cfg.limiter_sources()),
            settings: Settings::of(cfg),
            stats: Stats::default(),
            // Linux: icmp_msgs_per_sec 1000, icmp_msgs_burst 50.
            answer_limit: TokenBucket::new(1000, 50),
            table_full_log_limit: TokenBucket::new(1, 5),
            debug_log_limit: TokenBucket::new(DEBUG_LINES_PER_SECOND, DEBUG_LINES_PER_SECOND),
            tracer: Tracer::default(),
            scratch: TraceRecord::new(Side::Lan, 0),
            restored_seq_adjusted: false,
        }
    }

    /// Restore a snapshot of the table ([`Conntrack::restore`]: into a
    /// firewall that has tracked nothing yet, all or nothing). Use this
    /// rather than the table's own: restored flows whose sequence numbers a
    /// NAT helper moved go on being moved.
    pub fn restore(
        &mut self,
        r: impl std::io::Read,
        now: Instant,
        wall_ms: u64,
    ) -> Result<RestoreSummary, RestoreError> {
        let summary = self.conntrack.restore(r, now, wall_ms)?;
        let counted = self.conntrack.sources.max();
        self.conntrack.count_sources(counted);
        self.restored_seq_adjusted |= summary.seq_adjusted > 0;
        Ok(summary)
    }

    /// Swap in a new, already validated config between two packets. Flows
    /// and expectations survive; rule counters carry over for rules whose name
    /// is unchanged (and for the policies); with `on_reload: Recheck` (of the
    /// new config) flows the new rules would refuse are removed.
    pub fn reload(&mut self, cfg: &Config, now: Instant) -> ReloadSummary {
        let mut settings = Settings::of(cfg);
        let mut counters_carried = 0;
        for (new, old) in settings.chains.iter_mut().zip(&self.settings.chains) {
            counters_carried += new.inherit_counters(old);
        }
        let (table, helpers) = table_config(cfg);
        self.conntrack.reconfigure(table, helpers);
        self.nat.set_rules(cfg.nat_rules());
        self.sets = Sets::reloaded(&crate::config::set_definitions(&cfg.sets), &self.sets, now);
        // Rule numbers may have changed: the buckets start again (full).
        if cfg.limiter_sources() == self.limiter.max() {
            self.limiter.clear();
        } else {
            self.limiter = SourceLimiter::new(cfg.limiter_sources());
        }
        self.conntrack.count_sources(cfg.counted_sources());
        let defrag = cfg.defrag.to_defrag_config();
        if defrag != *self.defrag.config() {
            // Sized at start: new limits take a new reassembler (the
            // fragments queued so far are lost; their senders resend).
            self.defrag = Reassembler::new(defrag);
        }
        self.settings = settings;
        let mut flows_removed = 0;
        if self.settings.on_reload == OnReload::Recheck {
            let refused: Vec<u32> = self
                .conntrack
                .flow_ids(now)
                .filter(|&id| {
                    self.conntrack
                        .get(id)
                        .is_some_and(|flow| !self.would_accept(flow, now))
                })
                .collect();
            flows_removed = refused.len();
            for id in refused {
                self.conntrack.remove(id);
            }
        }
        ReloadSummary {
            rules: self.settings.chains.iter().map(|c| c.rules.len()).sum(),
            counters_carried,
            flows_kept: self.conntrack.len(),
            flows_removed,
        }
    }

    /// Whether the current rules accept the first packet of `flow` (as NEW,
    /// or RELATED for an expected flow), from the side it came from.
    pub fn would_accept(&self, flow: &Flow, now: Instant) -> bool {
        // As the rules saw its first packet: after destination NAT.
        let original = flow.original;
        let t = match packet_plan::for_packet(
            &original,
            Dir::Original,
            &original,
            &self.conntrack.reply_tuple(flow),
        ) {
            Plan::Rewrite { view, .. } => view,
            _ => original,
        };
        let transport = match (t.protocol, flow.proto) {
            (PROTO_TCP, _) => Transport::Tcp(TcpInfo {
                src_port: t.src_id,
                dst_port: t.dst_id,
                seq: SeqNum(0),
                ack: SeqNum(0),
                flags: flags::SYN,
                window: 0,
                options: &[],
                payload: &[],
            }),
            (PROTO_UDP, _) => Transport::Udp(UdpInfo {
                src_port: t.src_id,
                dst_port: t.dst_id,
                payload: &[],
            }),
            (PROTO_ICMP | PROTO_ICMPV6, ProtoState::Icmp) => {
                let (icmp_type, code) = icmp::split_type_code(t.dst_id);
                let info = IcmpInfo {
                    icmp_type,
                    code,
                    ident: t.src_id,
                    body: &[],
                };
                if t.protocol == PROTO_ICMP {
                    Transport::Icmp(info)
                } else {
                    Transport::Icmpv6(info)
                }
            }
            _ => Transport::Other,
        };
        let pkt = Packet {
            ip: IpInfo {
                src: t.src,
                dst: t.dst,
                ttl: 64,
                protocol: t.protocol,
                rule_protocol: t.protocol,
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
        let ctx = MatchContext {
            sets: &self.sets,
            now,
        };
        self.chain(flow.origin).peek(&pkt, state, &ctx) == Action::Accept
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The conntrack table.
    pub fn conntrack(&self) -> &Table {
        &self.conntrack
    }

    /// The conntrack table, mutably (flush, kill).
    pub fn conntrack_mut(&mut self) -> &mut Table {
        &mut self.conntrack
    }

    /// The FTP helper's counters.
    pub fn ftp(&self) -> &FtpHelper {
        &self.ftp
    }

    /// Address translation: its rules and counters.
    pub fn nat(&self) -> &Nat {
        &self.nat
    }

    /// The named sets.
    pub fn sets(&self) -> &Sets {
        &self.sets
    }

    /// The per-source rate limiter (its counters).
    pub fn limiter(&self) -> &SourceLimiter {
        &self.limiter
    }

    /// The named sets, to change at runtime (`ctl set`).
    pub fn sets_mut(&mut self) -> &mut Sets {
        &mut self.sets
    }

    /// The chain of packets from `side`, with its counters.
    pub fn chain(&self, side: Side) -> &Chain {
        &self.settings.chains[side.index()]
    }

    /// When [`Firewall::tick`] has work next.
    pub fn next_deadline(&self, now: Instant) -> Instant {
        self.conntrack
            .next_deadline(now)
            .min(self.defrag.next_deadline(now))
    }

    /// Expire flows (one bounded step) and reassembly queues.
    pub fn tick(&mut self, now: Instant) {
        self.conntrack.collect_expired(now, GC_SLOTS, GC_REMOVALS);
        self.defrag.tick(now);
        self.sets.tick(now);
    }

    /// The reassembler (its counters and limits).
    pub fn defrag(&self) -> &Reassembler {
        &self.defrag
    }

    /// Decide one packet read from `side`. `buf` holds exactly the packet; it is
    /// modified in place when forwarded (TTL, hop limit). An answer (RST,
    /// ICMP or ICMPv6 error) is written to `answer`, which should hold at
    /// least 1280 bytes.
    pub fn process(
        &mut self,
        side: Side,
        buf: &mut [u8],
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        self.process_offloaded(side, &vnet::PLAIN, buf, answer, now)
    }

    /// [`Firewall::process`] for a packet read with TUN offloads, whose
    /// virtio-net header says `vnet`. A super-packet is tracked as the whole
    /// range of segments it stands for, as Linux conntrack sees a GSO skb; a
    /// transport checksum the header vouches for is not recomputed. A
    /// super-packet of a flow a helper may read comes back as
    /// [`Fate::Resegment`], untouched and uncounted. The forwarded
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
        let len = buf.len();
        self.process_in(side, vnet, buf, len, answer, now)
    }

    /// [`Firewall::process_offloaded`] for the packet `buf[..len]`, with
    /// `buf[len..]` room to grow into: a NAT helper's rewrite may change
    /// a forwarded packet's length, which [`Verdict::resized`] then says
    /// (without room a packet that would grow is dropped, as Linux drops
    /// an skb it cannot enlarge).
    pub fn process_in(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        buf: &mut [u8],
        len: usize,
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        // The only cost of tracing when nobody traces: this branch.
        if self.tracer.active() {
            let (verdict, rec) = self.process_traced(side, vnet, buf, len, answer, now);
            if rec.tuple.is_some() && rec.verdict.fate != Fate::Resegment {
                self.tracer.offer(&rec, now);
            }
            return verdict;
        }
        self.process_with::<false>(side, vnet, buf, len, answer, now)
    }

    /// [`Firewall::process_in`], also saying what the packet path did
    /// with the packet: its [`TraceRecord`] (for `explain` and `ctl
    /// trace`). The packet is decided exactly as by
    /// [`Firewall::process_in`] (state, counters and all); the rules are
    /// evaluated a second time, without counting, to record each one's
    /// result.
    pub fn process_traced(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        buf: &mut [u8],
        len: usize,
        answer: &mut [u8],
        now: Instant,
    ) -> (Verdict, TraceRecord) {
        self.scratch = TraceRecord::new(side, len.min(buf.len()));
        let verdict = self.process_with::<true>(side, vnet, buf, len, answer, now);
        let mut rec = self.scratch;
        rec.verdict = verdict;
        if let Some(t) = rec.tuple {
            rec.after = self
                .conntrack
                .peek(&t, now)
                .map(|(f, dir)| FlowView::of(f, dir));
        }
        (verdict, rec)
    }

    /// The live tracer (`ctl trace`): its subscribers and the records
    /// waiting for them.
    pub fn tracer_mut(&mut self) -> &mut Tracer {
        &mut self.tracer
    }

    /// [`Firewall::process_in`]'s work, filling the trace record with `TRACE`.
    fn process_with<const TRACE: bool>(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        buf: &mut [u8],
        len: usize,
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        let len = len.min(buf.len());
        let verdict = self.decide_packet::<TRACE>(side, vnet, buf, len, None, answer, now);
        let buf = &buf[..len];
        let s = side.index();
        let stats = &mut self.stats;
        match verdict.fate {
            Fate::Resegment => {
                stats.resegmented += 1;
                return verdict;
            }
            Fate::Forward => stats.packets_forwarded[s] += 1,
            Fate::ForwardFragments(n) => {
                stats.packets_forwarded[s] += 1;
                stats.fragments_out[s] += n as u64;
            }
            Fate::Held => stats.fragments_held[s] += 1,
            Fate::Drop(reason) => stats.count_drop(reason),
        }
        if buf.first().is_some_and(|b| b >> 4 == 6) {
            stats.ipv6_in[s] += 1;
            stats.ipv6_forwarded[s] += u64::from(verdict.forwards_any());
        }
        stats.packets_in[s] += 1;
        stats.bytes_in[s] += buf.len() as u64;
        if vnet.is_gso() {
            stats.gso_in[s] += 1;
        }
        if vnet.checksum_offloaded() {
            stats.checksum_offloaded[s] += 1;
        }
        verdict
    }

    /// Decide the packet `room[..len]` (a packet read, or a reassembled
    /// datagram, whose ICMP answers then quote `quote`, its first
    /// fragment); `room[len..]` is where a rewrite may grow it.
    #[allow(clippy::too_many_arguments)]
    fn decide_packet<const TRACE: bool>(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        room: &mut [u8],
        len: usize,
        quote: Option<&[u8]>,
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        let buf = &mut room[..len];
        if buf.first().is_some_and(|b| b >> 4 == 6) {
            match self.settings.ipv6 {
                Ipv6Mode::Track => {}
                Ipv6Mode::Drop => return Verdict::dropped(DropReason::Ipv6Disabled, None),
                Ipv6Mode::Pass => return forward_ipv6(buf),
            }
        }
        let pkt = match packet::parse_with(buf, vnet) {
            Ok(p) => p,
            Err(ParseError::Invalid(reason)) => return self.malformed(reason, side, len, now),
            Err(ParseError::Fragment) => return self.reassemble::<TRACE>(side, buf, answer, now),
        };
        if TRACE {
            self.trace_begin(&pkt, len, now);
        }
        let original: &[u8] = quote.unwrap_or(buf);
        if let (IpAddr::V6(src), IpAddr::V6(dst)) = (pkt.ip.src, pkt.ip.dst) {
            if !ipv6::is_forwardable(src.octets()) || !ipv6::is_forwardable(dst.octets()) {
                return Verdict::dropped(DropReason::Ipv6Scope, None);
            }
        }

        if let (true, Transport::Tcp(seg)) = (vnet.is_gso(), pkt.transport) {
            if self
                .conntrack
                .helpers()
                .may_read(seg.src_port, seg.dst_port)
            {
                return Verdict::new(Fate::Resegment, None);
            }
        }

        let tracked = self.conntrack.track(&pkt, side, now);
        if TRACE {
            self.scratch.state = Some(tracked.state);
            self.scratch.invalid = tracked.invalid;
        }
        if let Some(reason) = tracked.invalid {
            self.count_invalid(reason, side, &pkt, now);
        }
        // The TTL (hop limit) is checked after conntrack, as Linux's
        // ip_forward and ip6_forward run after PREROUTING: the packet has
        // moved its flow's state (a RST closes it, a FIN advances it), and
        // a new flow it would start stays unconfirmed, dropped with it.
        if pkt.ip.ttl <= 1 {
            return Verdict {
                answer_len: self.time_exceeded(&pkt, side, original, answer, now),
                invalid: tracked.invalid,
                ..Verdict::dropped(DropReason::TtlExceeded, Some(tracked.state))
            };
        }
        let plan = translation::plan(&mut self.nat, &self.conntrack, &pkt, side, &tracked, now);
        if plan == Plan::Refuse {
            return Verdict::dropped(DropReason::NatRedirect, Some(tracked.state));
        }
        // What the rules see: the packet itself unless NAT changes their view.
        let translated_view = packet_plan::view(&pkt, &plan);
        let seen = translated_view.as_ref().unwrap_or(&pkt);
        let RuleStep {
            action,
            decider,
            drop_reason,
            wants_log,
        } = self.rule_step::<TRACE>(seen, translated_view.is_some(), side, &tracked, now);
        let state = Some(tracked.state);
        let mut plan = plan;
        let mut ftp_edit = None;
        let mut verdict = match action {
            Action::Accept => self.accept(&pkt, side, &tracked, &mut plan, &mut ftp_edit, now),
            Action::Drop => Verdict::dropped(drop_reason, state),
            Action::Reject => Verdict {
                answer_len: self.reject(&pkt, side, original, answer, now),
                ..Verdict::dropped(DropReason::RuleReject, state)
            },
        };
        verdict.decided_by = Some((side, decider));
        verdict.invalid = tracked.invalid;
        verdict.logged = self.logs(&verdict, wants_log, now);
        if verdict.forwards() {
            let outgoing = Outgoing {
                header_len: pkt.ip.header_len,
                total_len: pkt.ip.total_len,
                v4: pkt.ip.src.is_ipv4(),
                tcp_flow: match (tracked.flow, pkt.transport) {
                    (FlowRef::Existing(id), Transport::Tcp(_)) => Some((id, tracked.dir)),
                    _ => None,
                },
            };
            self.rewrite_outgoing(room, len, vnet, &plan, ftp_edit, outgoing, &mut verdict);
        }
        verdict
    }

    /// A packet that does not parse (`reason`), `len` bytes from `side`:
    /// counted, logged (rate-limited) as `log_invalid` says, dropped.
    fn malformed(
        &mut self,
        reason: InvalidReason,
        side: Side,
        len: usize,
        now: Instant,
    ) -> Verdict {
        self.stats.count_invalid(reason);
        if log::log_enabled!(log::Level::Debug) && self.debug_log_limit.take(now) {
            log::debug!("invalid {}: {reason}: {len} bytes", side.as_str());
        }
        Verdict {
            invalid: Some(reason),
            logged: self.settings.log_invalid && self.settings.log_limit.take(now),
            ..Verdict::dropped(DropReason::Malformed, Some(CtState::Invalid))
        }
    }

    /// Count the reason conntrack found `pkt` INVALID, and with `-v` say so
    /// (rate-limited; the line is formatted only when it is written).
    fn count_invalid(&mut self, reason: InvalidReason, side: Side, pkt: &Packet, now: Instant) {
        self.stats.count_invalid(reason);
        if log::log_enabled!(log::Level::Debug) && self.debug_log_limit.take(now) {
            let tuple = Tuple::of_packet(pkt).describe();
            log::debug!("invalid {}: {reason}: {tuple}", side.as_str());
        }
    }

    /// Start the trace record of `pkt` (`len` bytes): its tuple and its
    /// flow as it was before the packet.
    fn trace_begin(&mut self, pkt: &Packet, len: usize, now: Instant) {
        let t = Tuple::of_packet(pkt);
        self.scratch.len = len;
        self.scratch.tuple = Some(t);
        self.scratch.before = self
            .conntrack
            .peek(&t, now)
            .map(|(f, dir)| FlowView::of(f, dir));
    }

    /// The rule step (see [`Rules::decide`]) on `seen` from `side`.
    fn rule_step<const TRACE: bool>(
        &mut self,
        seen: &Packet,
        translated: bool,
        side: Side,
        tracked: &Tracked,
        now: Instant,
    ) -> RuleStep {
        Rules {
            chain: &mut self.settings.chains[side.index()],
            sets: &mut self.sets,
            limiter: &mut self.limiter,
            conntrack: &self.conntrack,
            log_invalid: self.settings.log_invalid,
        }
        .decide::<TRACE>(seen, translated, side, tracked, now, &mut self.scratch)
    }

    /// Whether the packet of `verdict` is logged: a drop for a full table
    /// through its own rate limit (the README's "conntrack table full"
    /// line), the others when the rules want it, through the log's.
    fn logs(&mut self, verdict: &Verdict, wants_log: bool, now: Instant) -> bool {
        if verdict.fate == Fate::Drop(DropReason::TableFull) {
            self.table_full_log_limit.take(now)
        } else {
            wants_log && self.settings.log_limit.take(now)
        }
    }

    /// Make the forwarded packet `room[..len]` what leaves: its NAT
    /// rewrite, an FTP announcement written in (`verdict` then says the
    /// new length, or becomes a drop when there is no room), its sequence
    /// numbers moved, its TTL or hop limit decremented.
    #[allow(clippy::too_many_arguments)]
    fn rewrite_outgoing(
        &mut self,
        room: &mut [u8],
        len: usize,
        vnet: &VnetHeader,
        plan: &Plan,
        ftp_edit: Option<translation::FtpEdit>,
        out: Outgoing,
        verdict: &mut Verdict,
    ) {
        let header_len = out.header_len;
        translation::rewrite(&mut self.nat, &mut room[..len], header_len, vnet, plan);
        let mut len = len;
        if let (Some(edit), Some(flow)) = (ftp_edit, out.tcp_flow) {
            let nat = &mut self.nat;
            // The rewrite moves the packet's own bytes, not what a frame
            // carries past its IP total length (dropped with the rewrite).
            let ip_len = out.total_len.min(len);
            match translation::write_announcement(
                nat,
                &mut self.conntrack,
                flow,
                room,
                ip_len,
                header_len,
                vnet,
                &edit,
            ) {
                Some(n) if n == len => {}
                Some(n) => {
                    len = n;
                    verdict.resized = Some(n);
                }
                None => {
                    verdict.fate = Fate::Drop(DropReason::Helper);
                    return;
                }
            }
        }
        let buf = &mut room[..len];
        // Only after a rewrite can a flow's numbers have moved.
        let moved = self.nat.stats.ftp_rewritten > 0 || self.restored_seq_adjusted;
        if let (Some(flow), true) = (out.tcp_flow, moved) {
            translation::adjust_sequence(
                &mut self.nat,
                &self.conntrack,
                flow,
                buf,
                header_len,
                vnet,
            );
        }
        if out.v4 {
            ipv4::decrement_ttl(buf);
        } else {
            ipv6::decrement_hop_limit(buf);
        }
    }

    /// Confirm a new flow (with its source NAT, which turns `plan` into the
    /// rewrite of its first packet), or run the helper of an established one.
    fn accept(
        &mut self,
        pkt: &Packet<'_>,
        side: Side,
        tracked: &Tracked,
        plan: &mut Plan,
        ftp_edit: &mut Option<translation::FtpEdit>,
        now: Instant,
    ) -> Verdict {
        let state = Some(tracked.state);
        match tracked.flow {
            FlowRef::Pending(flow) => match translation::confirm(
                &mut self.nat,
                &mut self.conntrack,
                tracked,
                flow,
                side,
                plan,
                now,
            ) {
                Ok(_) => {}
                Err(NewFlowError::Table(ConfirmError::TableFull)) => {
                    return Verdict::dropped(DropReason::TableFull, state)
                }
                Err(NewFlowError::Table(ConfirmError::Clash)) => {
                    return Verdict::dropped(DropReason::Clash, state)
                }
                Err(NewFlowError::Exhausted) => {
                    return Verdict::dropped(DropReason::NatExhausted, state)
                }
            },
            FlowRef::Existing(id) if tracked.state == CtState::Established => {
                match self
                    .ftp
                    .help(&mut self.conntrack, id, tracked.dir, pkt, now)
                {
                    HelpVerdict::Accept => {}
                    HelpVerdict::Drop => return Verdict::dropped(DropReason::Helper, state),
                    HelpVerdict::Rewrite(announced) => {
                        if let Transport::Tcp(seg) = pkt.transport {
                            let payload_at = pkt.ip.header_len + tcp_header_len(&seg);
                            *ftp_edit = Some(translation::FtpEdit {
                                announced,
                                at: payload_at + announced.span.0,
                                seq: seg.seq,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        Verdict::new(Fate::Forward, state)
    }

    /// The router address of `side` in the family of `pkt`, if configured.
    fn router_address(&self, side: Side, pkt: &Packet<'_>) -> Option<IpAddr> {
        match pkt.ip.src {
            IpAddr::V4(_) => self.settings.router[side.index()].map(IpAddr::V4),
            IpAddr::V6(_) => self.settings.router6[side.index()].map(IpAddr::V6),
        }
    }

    /// An ICMP (ICMPv6) time exceeded answering a packet whose TTL (hop
    /// limit) ran out, when a router address of its family is configured
    /// for `side`; its length, or 0.
    fn time_exceeded(
        &mut self,
        pkt: &Packet<'_>,
        side: Side,
        original: &[u8],
        answer: &mut [u8],
        now: Instant,
    ) -> usize {
        let Some(src) = self.router_address(side, pkt) else {
            return 0;
        };
        if !self.answer_allowed(now) {
            return 0;
        }
        let (ty, code) = match src {
            IpAddr::V4(_) => (icmp::TIME_EXCEEDED, 0),
            IpAddr::V6(_) => (icmpv6::TIME_EXCEEDED, icmpv6::CODE_HOP_LIMIT),
        };
        self.icmp_error(pkt, original, ty, code, src, answer)
    }

    /// The answer of a reject rule: a TCP RST, or ICMP (ICMPv6) port
    /// unreachable (from the side's router address of the packet's family,
    /// else the packet's destination); its length, or 0.
    fn reject(
        &mut self,
        pkt: &Packet<'_>,
        side: Side,
        original: &[u8],
        answer: &mut [u8],
        now: Instant,
    ) -> usize {
        if !self.answer_allowed(now) {
            return 0;
        }
        if let Transport::Tcp(seg) = pkt.transport {
            let built = answer::tcp_reset(pkt, &seg, answer);
            self.stats.sent_tcp_rst += u64::from(built.is_some());
            return built.unwrap_or(0);
        }
        let src = self.router_address(side, pkt).unwrap_or(pkt.ip.dst);
        let (ty, code) = match src {
            IpAddr::V4(_) => (icmp::DEST_UNREACHABLE, icmp::CODE_PORT_UNREACHABLE),
            IpAddr::V6(_) => (icmpv6::DEST_UNREACHABLE, icmpv6::CODE_PORT_UNREACHABLE),
        };
        self.icmp_error(pkt, original, ty, code, src, answer)
    }

    /// Tell the firewall the MTU of the device on `side` (the event loop
    /// reads it at start): reassembled datagrams written to that side are
    /// cut to fit it. Without it, 65,535.
    pub fn set_mtu(&mut self, side: Side, mtu: usize) {
        self.fragments.set_mtu(side, mtu);
    }

    /// Piece `index` of the datagram the last [`Fate::ForwardFragments`]
    /// verdict stands for, written into `out`; its length, or `None` past
    /// the last piece (or when `out` is too small).
    pub fn fragment_piece(&self, index: usize, out: &mut [u8]) -> Option<usize> {
        self.fragments.piece(index, out)
    }

    /// A fragment read from `side`, as Linux's `nf_defrag` takes it before
    /// conntrack: kept, dropped, or the last one of a datagram, which is
    /// then decided as a whole (tracked and matched once, ports and all).
    fn reassemble<const TRACE: bool>(
        &mut self,
        side: Side,
        buf: &[u8],
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        self.fragments.clear();
        match self.defrag.push(side, buf, now) {
            Outcome::Queued => Verdict::new(Fate::Held, None),
            // The parser and the reassembler read the same headers: a
            // packet one calls a fragment and the other not is dropped.
            Outcome::NotFragment | Outcome::Dropped(_) => {
                Verdict::dropped(DropReason::Fragment, None)
            }
            Outcome::Complete(done) => self.decide_datagram::<TRACE>(side, done, answer, now),
        }
    }

    /// Decide the datagram the reassembler just completed (its ICMP
    /// answers quote its first fragment) and, when it is accepted, prepare
    /// its pieces.
    fn decide_datagram<const TRACE: bool>(
        &mut self,
        side: Side,
        done: Reassembled,
        answer: &mut [u8],
        now: Instant,
    ) -> Verdict {
        // Taken out for the call (no allocation: an empty Vec takes their
        // place) so that the datagram is decided in place.
        let mut dg = core::mem::take(&mut self.fragments.datagram);
        let mut first = core::mem::take(&mut self.fragments.first);
        let (len, first_len) = DatagramBuffers::load(&mut dg, &mut first, &self.defrag);
        let quote = &first[..first_len];
        let mut v =
            self.decide_packet::<TRACE>(side, &vnet::PLAIN, &mut dg, len, Some(quote), answer, now);
        let len = v.resized.unwrap_or(len);
        if v.forwards() {
            v.fate = match self.fragments.leave(&done, &dg[..len], side.other()) {
                Leaving::Pieces(n) => Fate::ForwardFragments(n),
                Leaving::Uncuttable => Fate::Drop(DropReason::Fragment),
                Leaving::TooBig(mtu) => {
                    v.answer_len =
                        self.too_big(side, done.family, mtu, &dg[..len], quote, answer, now);
                    Fate::Drop(DropReason::TooBig)
                }
            };
        }
        self.fragments.datagram = dg;
        self.fragments.first = first;
        v
    }

    /// ICMP fragmentation needed (IPv4) or packet too big (IPv6) about the
    /// datagram `dg` that may not be cut to `mtu`, quoting its first
    /// fragment `first`, from the side's router address (else the
    /// datagram's destination); its length, or 0.
    #[allow(clippy::too_many_arguments)]
    fn too_big(
        &mut self,
        side: Side,
        family: Family,
        mtu: usize,
        dg: &[u8],
        first: &[u8],
        answer: &mut [u8],
        now: Instant,
    ) -> usize {
        let Ok(mut pkt) = packet::parse(dg) else {
            return 0;
        };
        // The datagram may have been translated already: the answer goes
        // to the first fragment's sender, from its destination.
        if let Some((src, dst)) = header_addresses(first) {
            (pkt.ip.src, pkt.ip.dst) = (src, dst);
        }
        let src = self.router_address(side, &pkt).unwrap_or(pkt.ip.dst);
        if !self.answer_allowed(now) {
            return 0;
        }
        let (ty, code, rest) = match family {
            Family::V4 => (
                icmp::DEST_UNREACHABLE,
                icmp::CODE_FRAGMENTATION_NEEDED,
                (mtu as u32) & 0xffff,
            ),
            Family::V6 => (icmpv6::PACKET_TOO_BIG, 0, mtu as u32),
        };
        let built = answer::icmp_error_with(&pkt, first, ty, code, rest, src, answer);
        self.stats.sent_icmp += u64::from(built.is_some());
        built.unwrap_or(0)
    }

    /// Whether the answer rate limit lets one more answer out (counted when not).
    fn answer_allowed(&mut self, now: Instant) -> bool {
        let allowed = self.answer_limit.take(now);
        self.stats.sent_rate_limited += u64::from(!allowed);
        allowed
    }

    /// Build an ICMP error and count it; its length, or 0.
    fn icmp_error(
        &mut self,
        pkt: &Packet<'_>,
        original: &[u8],
        icmp_type: u8,
        code: u8,
        src: IpAddr,
        answer: &mut [u8],
    ) -> usize {
        let built = answer::icmp_error(pkt, original, icmp_type, code, src, answer);
        self.stats.sent_icmp += u64::from(built.is_some());
        built.unwrap_or(0)
    }
}

/// The source and destination in the IP header at the start of `packet`.
fn header_addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 => {
            let a: [u8; 8] = packet.get(12..20)?.try_into().ok()?;
            let (s, d): ([u8; 4], [u8; 4]) = (a[..4].try_into().ok()?, a[4..].try_into().ok()?);
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        6 => {
            let s: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(s), IpAddr::from(d)))
        }
        _ => None,
    }
}

/// What the last step needs to know of a forwarded packet.
#[derive(Clone, Copy)]
struct Outgoing {
    /// Its IP header's length.
    header_len: usize,
    /// Its IP total length (bytes after it in the frame are not the packet's).
    total_len: usize,
    /// IPv4 (else IPv6).
    v4: bool,
    /// Its TCP flow and direction, for an existing TCP flow.
    tcp_flow: Option<(FlowId, Dir)>,
}

/// The TCP header's length of `seg` (its options included).
fn tcp_header_len(seg: &TcpInfo<'_>) -> usize {
    crate::wire::tcp::MIN_HEADER_LEN + seg.options.len()
}

fn forward_ipv6(buf: &mut [u8]) -> Verdict {
    // Hop limit is byte 7 of the IPv6 header; there is no header checksum.
    if buf.len() >= 40 && buf[7] > 1 {
        buf[7] -= 1;
        Verdict::new(Fate::Forward, None)
    } else {
        Verdict::dropped(DropReason::TtlExceeded, None)
    }
}
