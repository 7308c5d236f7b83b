//! Read-only views of a running firewall: counters, flows and rules, as
//! serializable values. The control socket serves them as JSON and the exit
//! summary prints the counters; `tunfw ctl` renders them for people.

use serde::{Deserialize, Serialize};

use crate::conntrack::events::Event;
use crate::conntrack::flow::{Flow, ProtoState};
use crate::conntrack::state::CtState;
use crate::conntrack::tuple::{Dir, Tuple};
use crate::control::counters::ControlCounters;
use crate::device::steering::{FRAGMENT_QUEUE, QUEUES};
use crate::filter::Firewall;
use crate::packet;
use crate::side::Side;
use crate::stats::{DropReason, InvalidReason};
use crate::time::Instant;
use crate::verdict::{Fate, Verdict};
use crate::wire::protocol_name;
use crate::wire::vnet::VnetHeader;

/// Counters of the event loop around the packet path: frames it could not
/// hand to the firewall, and writes that failed. Indexed by [`Side::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopCounters {
    /// Writes to the device that failed.
    pub tx_errors: [u64; 2],
    /// Frames read with offloads on that were too short to hold a
    /// virtio-net header and a packet.
    pub short_frames: [u64; 2],
    /// Super-packets sent back to be cut that could not be segmented (all
    /// of it, or the rest of it from the segment that failed, dropped).
    pub unsegmentable: [u64; 2],
    /// Packets read from each of the device's queues (see
    /// [`crate::device::steering`]: the packet queues, then the fragment
    /// queue; a device with fewer queues leaves the rest at 0, so
    /// `loop.fragment_queue_read` is the fragment queue's entry).
    pub queue_reads: [[u64; QUEUES]; 2],
    /// The control server's counters, as of its last request.
    pub control: ControlCounters,
}

/// Named counters in a fixed order: `in.lan`, `forwarded.wan`, `drop.REASON`,
/// `invalid.REASON`, `conntrack.*`, `sent.*`, `tx_error.*`, `loop.*`,
/// `nat.*`, `control.*`.
/// Counters that are zero are included, so a name's presence never depends
/// on traffic.
pub fn counters(fw: &Firewall, shell: &LoopCounters) -> Vec<(String, u64)> {
    let s = fw.stats();
    let ct = fw.conntrack();
    let t = &ct.stats;
    let ftp = &fw.ftp().stats;
    let mut out = vec![
        ("in.lan".to_string(), s.packets_in[0]),
        ("in.wan".to_string(), s.packets_in[1]),
        ("in_bytes.lan".to_string(), s.bytes_in[0]),
        ("in_bytes.wan".to_string(), s.bytes_in[1]),
        ("forwarded.lan".to_string(), s.packets_forwarded[0]),
        ("forwarded.wan".to_string(), s.packets_forwarded[1]),
        ("ipv6.in.lan".to_string(), s.ipv6_in[0]),
        ("ipv6.in.wan".to_string(), s.ipv6_in[1]),
        ("ipv6.forwarded.lan".to_string(), s.ipv6_forwarded[0]),
        ("ipv6.forwarded.wan".to_string(), s.ipv6_forwarded[1]),
        ("drop.total".to_string(), s.total_dropped()),
        ("offload.gso_in.lan".to_string(), s.gso_in[0]),
        ("offload.gso_in.wan".to_string(), s.gso_in[1]),
        (
            "offload.checksum_offloaded.lan".to_string(),
            s.checksum_offloaded[0],
        ),
        (
            "offload.checksum_offloaded.wan".to_string(),
            s.checksum_offloaded[1],
        ),
        ("offload.resegmented".to_string(), s.resegmented),
    ];
    for r in DropReason::ALL {
        out.push((format!("drop.{r}"), s.dropped[r.index()]));
    }
    push_defrag(fw, &mut out);
    out.push(("invalid.total".to_string(), s.total_invalid()));
    for r in InvalidReason::ALL {
        out.push((format!("invalid.{r}"), s.invalid[r.index()]));
    }
    out.extend([
        ("conntrack.count".to_string(), ct.len() as u64),
        ("conntrack.max".to_string(), ct.config().max as u64),
        ("conntrack.searched".to_string(), t.searched),
        ("conntrack.inserted".to_string(), t.inserted),
        ("conntrack.deleted".to_string(), t.deleted),
        ("conntrack.expired".to_string(), t.expired),
        ("conntrack.early_drop".to_string(), t.early_drop),
        ("conntrack.table_full".to_string(), t.table_full),
        ("conntrack.clash".to_string(), t.clash),
        ("conntrack.reopened".to_string(), t.reopened),
        ("expect.count".to_string(), ct.expectations.len() as u64),
        ("expect.created".to_string(), ct.expectations.stats.created),
        ("expect.used".to_string(), ct.expectations.stats.used),
        ("expect.expired".to_string(), ct.expectations.stats.expired),
        (
            "expect.replaced".to_string(),
            ct.expectations.stats.replaced,
        ),
        (
            "expect.removed_with_master".to_string(),
            ct.expectations.stats.removed_with_master,
        ),
        (
            "expect.table_full".to_string(),
            ct.expectations.stats.table_full,
        ),
        ("ftp.announcements".to_string(), ftp.announcements),
        ("ftp.refused_address".to_string(), ftp.refused_address),
        ("ftp.refused_port_zero".to_string(), ftp.refused_port_zero),
        ("ftp.split_commands".to_string(), ftp.split_commands),
        ("ftp.malformed".to_string(), ftp.malformed),
        ("ftp.overlong".to_string(), ftp.overlong),
        ("ftp.no_state_slot".to_string(), t.helper_no_slot),
        (
            "ftp.expectation_table_full".to_string(),
            ftp.expectation_table_full,
        ),
        ("sent.tcp_rst".to_string(), s.sent_tcp_rst),
        ("sent.icmp".to_string(), s.sent_icmp),
        ("sent.rate_limited".to_string(), s.sent_rate_limited),
    ]);
    for (name, per_side) in [
        ("tx_error", shell.tx_errors),
        ("loop.short_frame", shell.short_frames),
        ("loop.unsegmentable", shell.unsegmentable),
        (
            "loop.fragment_queue_read",
            shell
                .queue_reads
                .map(|reads| reads[FRAGMENT_QUEUE as usize]),
        ),
    ] {
        for side in Side::BOTH {
            out.push((format!("{name}.{}", side.as_str()), per_side[side.index()]));
        }
    }
    for side in Side::BOTH {
        for (queue, n) in shell.queue_reads[side.index()].iter().enumerate() {
            out.push((format!("loop.queue_read.{}{queue}", side.as_str()), *n));
        }
    }
    let nat = &fw.nat().stats;
    for (name, value) in [
        ("mapped", nat.mapped),
        ("exhausted", nat.exhausted),
        ("translated", nat.translated),
        ("errors_translated", nat.errors_translated),
        ("followed", nat.followed),
        ("ftp_rewritten", nat.ftp_rewritten),
        ("ftp_unwritable", nat.ftp_unwritable),
        ("seq_adjusted", nat.seq_adjusted),
    ] {
        out.push((format!("nat.{name}"), value));
    }
    for (name, value) in [
        ("nat_announcements", ftp.nat_announcements),
        ("nat_split_dropped", ftp.nat_split_dropped),
        ("nat_ports_exhausted", ftp.nat_ports_exhausted),
    ] {
        out.push((format!("ftp.{name}"), value));
    }
    let limiter = &fw.limiter().stats;
    for (name, value) in [
        ("evicted", limiter.evicted),
        ("overloaded", limiter.overloaded),
        ("overload_failed", limiter.overload_failed),
    ] {
        out.push((format!("limits.{name}"), value));
    }
    push_control(&shell.control, &mut out);
    out
}

/// The reassembler's counters, `defrag.*`.
fn push_defrag(fw: &Firewall, out: &mut Vec<(String, u64)>) {
    let d = fw.defrag().stats();
    let s = fw.stats();
    for (name, value) in [
        ("queued", d.queued),
        ("reassembled", d.reassembled),
        ("timed_out", d.timed_out),
        ("evicted", d.evicted),
        ("queues", d.queues as u64),
        ("memory", d.memory as u64),
        ("memory_high_water", d.memory_high_water as u64),
        ("memory_max", fw.defrag().config().high_thresh as u64),
    ] {
        out.push((format!("defrag.{name}"), value));
    }
    for r in crate::defrag::FragDrop::ALL {
        out.push((format!("defrag.dropped.{}", r.as_str()), d.dropped(r)));
    }
    for side in Side::BOTH {
        let i = side.index();
        out.push((
            format!("defrag.held.{}", side.as_str()),
            s.fragments_held[i],
        ));
        out.push((
            format!("defrag.fragments_out.{}", side.as_str()),
            s.fragments_out[i],
        ));
    }
}

/// The control server's counters, `control.*`.
fn push_control(c: &ControlCounters, out: &mut Vec<(String, u64)>) {
    for (name, value) in [
        ("accepted", c.accepted),
        ("closed_idle", c.closed_idle),
        ("evicted", c.evicted),
        ("events_lost", c.events_lost),
        ("closed_slow", c.closed_slow),
        ("refused", c.refused),
        ("clients", c.clients),
    ] {
        out.push((format!("control.{name}"), value));
    }
}

/// One flow as `conntrack -L` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowView {
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or `other`.
    pub proto: String,
    /// TCP state name; empty for other protocols.
    pub state: String,
    /// Seconds until expiry.
    pub timeout: u64,
    /// Original tuple.
    pub original: String,
    /// Reply tuple.
    pub reply: String,
    /// ASSURED flag.
    pub assured: bool,
    /// No reply seen yet.
    pub unreplied: bool,
    /// Packets original, reply.
    pub packets: [u64; 2],
    /// Bytes original, reply.
    pub bytes: [u64; 2],
}

impl FlowView {
    /// The view of `flow` (whose reply tuple is `reply`) at `now`.
    pub fn of(flow: &Flow, reply: &Tuple, now: Instant) -> FlowView {
        let family = if flow.original.src.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        };
        FlowView {
            family: family.to_string(),
            proto: protocol_name(flow.tuple(Dir::Original).protocol).to_string(),
            state: match flow.proto {
                ProtoState::Tcp(c) => c.state.as_str().to_string(),
                _ => String::new(),
            },
            timeout: flow.expires.saturating_since(now).as_secs(),
            original: flow.tuple(Dir::Original).describe(),
            reply: reply.describe(),
            assured: flow.assured,
            unreplied: !flow.seen_reply,
            packets: flow.packets,
            bytes: flow.bytes,
        }
    }
}

/// Every live flow that `keep` selects (given the flow and its reply tuple).
pub fn flows(fw: &Firewall, now: Instant, keep: impl Fn(&Flow, &Tuple) -> bool) -> Vec<FlowView> {
    let ct = fw.conntrack();
    ct.flows(now)
        .map(|f| (f, ct.reply_tuple(f)))
        .filter(|(f, reply)| keep(f, reply))
        .map(|(f, reply)| FlowView::of(f, &reply, now))
        .collect()
}

/// One event as a JSON line, as `conntrack -E -o json` would print it.
pub fn event_json(e: &Event, started: std::time::Instant) -> String {
    let at = started + std::time::Duration::from_millis(e.at.total_millis());
    let wall = std::time::SystemTime::now()
        .checked_sub(at.elapsed())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    serde_json::json!({
        "time": wall.as_secs_f64(),
        "event": e.kind,
        "family": if e.tuple.src.is_ipv4() { "ipv4" } else { "ipv6" },
        "proto": protocol_name(e.tuple.protocol),
        "state": e.tcp_state.map(|s| s.as_str()).unwrap_or(""),
        "flow": e.tuple.describe(),
        "replied": e.replied,
        "assured": e.assured,
    })
    .to_string()
}

/// One pending expectation, as `conntrack -L expect`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExpectationView {
    /// Seconds until it expires.
    pub timeout: u64,
    /// `tcp SRC:* -> DST:PORT`.
    pub expected: String,
    /// The control flow that announced it.
    pub master: String,
}

/// Every pending expectation.
pub fn expectations(fw: &Firewall, now: Instant) -> Vec<ExpectationView> {
    let ct = fw.conntrack();
    ct.expectations
        .iter(now)
        .map(|e| ExpectationView {
            timeout: e.expires.saturating_since(now).as_secs(),
            expected: format!("tcp {}:* -> {}:{}", e.key.src, e.key.dst, e.key.dport),
            master: ct
                .get(e.master)
                .map(|f| f.tuple(Dir::Original).describe())
                .unwrap_or_default(),
        })
        .collect()
}

/// One rule (or a policy) with its counters, as `iptables -L -v`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleView {
    /// `outbound` or `inbound`.
    pub direction: String,
    /// 1-based position; 0 for the policy.
    pub number: usize,
    /// The rule's name, if it has one (`policy` for the policy).
    pub name: String,
    /// iptables-like description.
    pub rule: String,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

/// Every rule and policy with counters.
pub fn rules(fw: &Firewall) -> Vec<RuleView> {
    let mut out = Vec::new();
    for side in Side::BOTH {
        let chain = fw.chain(side);
        for (i, rule) in chain.rules.iter().enumerate() {
            out.push(RuleView {
                direction: side.direction().to_string(),
                number: i + 1,
                name: rule.name.clone().unwrap_or_default(),
                rule: rule.describe(),
                packets: chain.counters[i].packets,
                bytes: chain.counters[i].bytes,
            });
        }
        out.push(RuleView {
            direction: side.direction().to_string(),
            number: 0,
            name: "policy".to_string(),
            rule: format!("-P {:?}", chain.policy).to_uppercase(),
            packets: chain.policy_counter.packets,
            bytes: chain.policy_counter.bytes,
        });
    }
    out
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
    let rule = match v.decided_by {
        Some((chain, decider)) => fw.chain(chain).decider_name(decider),
        None => "-".to_string(),
    };
    let tuple = packet::parse_with(packet_bytes, vnet)
        .map(|p| Tuple::of_packet(&p).describe())
        .unwrap_or_else(|_| format!("{} bytes unparsable", packet_bytes.len()));
    if v.fate == Fate::Drop(DropReason::TableFull) {
        let max = fw.conntrack().config().max;
        return format!("tunfw: conntrack table full (max {max}), dropping packet: {tuple}");
    }
    let outcome = match v.fate {
        Fate::Drop(r) => format!("drop reason={r}"),
        Fate::Forward | Fate::Resegment | Fate::ForwardFragments(_) => "accept".to_string(),
        Fate::Held => "held for reassembly".to_string(),
    };
    let state = v.state.map_or("-", CtState::as_str);
    let invalid = v.invalid.map_or(String::new(), |r| format!(" invalid={r}"));
    format!(
        "tunfw: {outcome} rule={rule} dir={} state={state}{invalid} {tuple}",
        side.direction()
    )
}
