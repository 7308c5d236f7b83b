//! Tracing: what the packet path did with one packet, as a fixed-size
//! record ([`TraceRecord`]), and the live tracer behind `ctl trace`
//! ([`Tracer`]): a few subscribers' filters, a rate limit each, and a
//! bounded ring of records the event loop drains.
//!
//! The packet path fills a record only while tracing (one branch per
//! packet otherwise: [`super::Firewall::process_in`]); the record holds no
//! reference and nothing allocated, so filling it never allocates. The
//! text is made from records later ([`TraceRecord::render`]), outside the
//! packet path.

use core::fmt::Write as _;
use core::net::IpAddr;

use crate::chain::{Chain, Decider};
use crate::conntrack::flow::Flow;
use crate::conntrack::state::CtState;
use crate::conntrack::tcp::states::TcpState;
use crate::conntrack::tuple::{Dir, Tuple};
use crate::ratelimit::TokenBucket;
use crate::rules::{Action, RuleField};
use crate::side::Side;
use crate::stats::InvalidReason;
use crate::time::Instant;
use crate::verdict::{Fate, Verdict};
use crate::wire::{PROTO_TCP, PROTO_UDP};

/// Rules whose failed match a record keeps (the first ones of the chain);
/// rules past it are evaluated all the same and the decider is always
/// known.
pub const MAX_TRACED_RULES: usize = 64;

/// Most `ctl trace` subscribers at once.
pub const MAX_TRACERS: usize = 4;

/// Records shown per second to one subscriber at most (and its burst); the
/// others are counted and reported as "N not shown".
pub const TRACE_PER_SECOND: u64 = 100;

/// Records kept between two drains of the event loop; beyond, they are
/// counted as not shown.
pub const TRACE_RING: usize = 256;

/// A flow's state as a trace shows it, before and after the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowView {
    /// The TCP state, for a TCP flow.
    pub tcp: Option<TcpState>,
    /// A reply was seen.
    pub seen_reply: bool,
    /// The flow is ASSURED.
    pub assured: bool,
    /// The packet's direction in the flow.
    pub dir: Dir,
}

impl FlowView {
    /// The view of `flow`, for a packet travelling in `dir`.
    pub fn of(flow: &Flow, dir: Dir) -> FlowView {
        FlowView {
            tcp: flow.tcp_state(),
            seen_reply: flow.seen_reply,
            assured: flow.assured,
            dir,
        }
    }

    fn describe(&self, out: &mut String) {
        if let Some(t) = self.tcp {
            let _ = write!(out, "{} ", t.as_str());
        }
        out.push_str(if self.assured {
            "ASSURED"
        } else if self.seen_reply {
            "REPLIED"
        } else {
            "UNREPLIED"
        });
    }
}

/// What the packet path did with one packet. Fixed size, no references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// The side the packet came from.
    pub side: Side,
    /// Its length in bytes.
    pub len: usize,
    /// Its tuple as it arrived; `None` when it was not parsed (malformed,
    /// a fragment held, IPv6 dropped or passed by the `ipv6` setting).
    pub tuple: Option<Tuple>,
    /// The tuple the rules saw when address translation changed it
    /// (destination NAT, or a reply to a translated flow).
    pub seen: Option<Tuple>,
    /// Its flow before the packet, if it had one.
    pub before: Option<FlowView>,
    /// Its flow after the packet, if one is kept.
    pub after: Option<FlowView>,
    /// The conntrack state the rules saw, if tracking ran.
    pub state: Option<CtState>,
    /// Why it is INVALID, when it is.
    pub invalid: Option<InvalidReason>,
    /// The rule or policy that decided, if the rules ran.
    pub decider: Option<Decider>,
    /// The decider's action.
    pub action: Option<Action>,
    /// Rules evaluated, the decider included.
    pub evaluated: usize,
    /// For each of the first [`MAX_TRACED_RULES`] rules evaluated before the
    /// decider, the match it failed.
    pub misses: [RuleField; MAX_TRACED_RULES],
    /// The verdict.
    pub verdict: Verdict,
}

impl TraceRecord {
    /// An empty record for a packet of `len` bytes from `side`.
    pub fn new(side: Side, len: usize) -> TraceRecord {
        TraceRecord {
            side,
            len,
            tuple: None,
            seen: None,
            before: None,
            after: None,
            state: None,
            invalid: None,
            decider: None,
            action: None,
            evaluated: 0,
            misses: [RuleField::Proto; MAX_TRACED_RULES],
            verdict: Verdict::new(Fate::Held, None),
        }
    }

    /// The verdict in words: `accept`, `drop (rule_drop)`, ...
    pub fn verdict_text(&self) -> String {
        match self.verdict.fate {
            Fate::Forward | Fate::ForwardFragments(_) => "ACCEPT (forwarded)".to_string(),
            Fate::Held => "HELD (fragment kept for reassembly)".to_string(),
            Fate::Resegment => "RESEGMENT (super-packet cut into segments)".to_string(),
            Fate::Drop(reason) => {
                let answered = if self.verdict.answer_len > 0 {
                    ", answered"
                } else {
                    ""
                };
                let what = match self.action {
                    Some(Action::Reject) => "REJECT",
                    _ => "DROP",
                };
                format!("{what} (drop reason {reason}{answered})")
            }
        }
    }

    /// The rule or policy that decided, named as in `ctl rules`: `NAME
    /// (#N)`, `#N` or `policy`.
    pub fn decider_text(&self, chain: &Chain) -> String {
        match self.decider {
            Some(Decider::Rule(i)) => match chain.rules.get(i).and_then(|r| r.name.as_deref()) {
                Some(name) => format!("rule {name} (#{})", i + 1),
                None => format!("rule #{}", i + 1),
            },
            Some(Decider::Policy) => format!("policy {:?}", chain.policy),
            None => "no rule ran".to_string(),
        }
    }

    /// The record as text: a first line (side, tuple, state, verdict),
    /// then, with `rules`, one line per rule evaluated; `chain` is the
    /// chain of the record's side (for rule names).
    pub fn render(&self, chain: &Chain, rules: bool) -> String {
        let mut out = String::new();
        let tuple = self
            .tuple
            .map_or_else(|| "(not parsed)".to_string(), |t| t.describe());
        let _ = write!(out, "from {} {}B {tuple}", self.side.as_str(), self.len);
        if let Some(seen) = self.seen {
            let _ = write!(out, " (rules see {})", seen.describe());
        }
        out.push_str(": ");
        match self.state {
            Some(s) => out.push_str(s.as_str()),
            None => out.push_str("untracked"),
        }
        if let Some(r) = self.invalid {
            let _ = write!(out, " ({r})");
        }
        if self
            .after
            .or(self.before)
            .is_some_and(|v| v.dir == Dir::Reply)
        {
            out.push_str(" reply");
        }
        out.push_str(", flow ");
        match self.before {
            Some(v) => v.describe(&mut out),
            None => out.push_str("none"),
        }
        out.push_str(" -> ");
        match self.after {
            Some(v) => v.describe(&mut out),
            None => out.push_str("none"),
        }
        let _ = write!(
            out,
            "; {} by {}",
            self.verdict_text(),
            self.decider_text(chain)
        );
        if rules {
            self.render_rules(chain, &mut out);
        }
        out
    }

    /// The record as one JSON line (no newline) for `ctl trace`:
    /// `{"trace": FIRST-LINE, "rules": [ONE PER RULE EVALUATED]}`.
    pub fn json_line(&self, chain: &Chain) -> String {
        let mut rules = String::new();
        self.render_rules(chain, &mut rules);
        let rules: Vec<&str> = rules
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        serde_json::json!({ "trace": self.render(chain, false), "rules": rules }).to_string()
    }

    /// One line per rule evaluated: `  #N NAME: no (FIELD)` or `yes`.
    pub fn render_rules(&self, chain: &Chain, out: &mut String) {
        let matched = match self.decider {
            Some(Decider::Rule(i)) => Some(i),
            _ => None,
        };
        for i in 0..self.evaluated {
            let Some(rule) = chain.rules.get(i) else {
                break;
            };
            let name = rule.name.as_deref().unwrap_or("-");
            let _ = write!(out, "\n  #{} {name}: {}: ", i + 1, rule.describe());
            if matched == Some(i) {
                out.push_str("matched");
            } else if let Some(f) = self.misses.get(i) {
                let _ = write!(out, "no ({} does not match)", f.as_str());
            } else {
                out.push_str("no");
            }
        }
        if self.decider == Some(Decider::Policy) {
            let _ = write!(out, "\n  policy: {:?}", chain.policy);
        }
    }
}

/// Which packets a `ctl trace` subscriber wants. Absent fields match all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// An address on either end, as it arrived or as the rules saw it.
    pub addr: Option<IpAddr>,
    /// A port on either end (TCP and UDP), as it arrived or as the rules
    /// saw it.
    pub port: Option<u16>,
    /// IP version: 4 or 6.
    pub family: Option<u8>,
    /// The conntrack state the rules saw.
    pub state: Option<CtState>,
}

impl TraceFilter {
    /// Whether a packet of tuple `t` may match (everything but the state).
    pub fn wants(&self, t: &Tuple, seen: Option<&Tuple>) -> bool {
        let tuples = [Some(t), seen];
        if self.protocol.is_some_and(|p| p != t.protocol) {
            return false;
        }
        let version = if t.src.is_ipv4() { 4 } else { 6 };
        if self.family.is_some_and(|f| f != version) {
            return false;
        }
        if let Some(a) = self.addr {
            if !tuples.iter().flatten().any(|u| u.src == a || u.dst == a) {
                return false;
            }
        }
        if let Some(p) = self.port {
            let ported = matches!(t.protocol, PROTO_TCP | PROTO_UDP);
            if !ported
                || !tuples
                    .iter()
                    .flatten()
                    .any(|u| u.src_id == p || u.dst_id == p)
            {
                return false;
            }
        }
        true
    }

    /// Whether `rec` matches: a parsed packet of the filter's tuple and state.
    pub fn matches(&self, rec: &TraceRecord) -> bool {
        let Some(t) = &rec.tuple else {
            return false;
        };
        self.wants(t, rec.seen.as_ref()) && self.state.is_none_or(|s| rec.state == Some(s))
    }
}

struct Slot {
    filter: TraceFilter,
    bucket: TokenBucket,
    not_shown: u64,
}

/// The live tracer: subscribers' filters and rate limits, and the records
/// waiting for the event loop. Bounded: [`MAX_TRACERS`] subscribers,
/// [`TRACE_RING`] records (allocated when the first subscriber comes).
#[derive(Default)]
pub struct Tracer {
    slots: [Option<Slot>; MAX_TRACERS],
    /// Records waiting, each with the subscribers (bit per slot) it is for.
    ring: Vec<(u8, TraceRecord)>,
    active: bool,
}

/// What [`Tracer::drain`] hands out.
pub enum TraceOutput<'a> {
    /// A record for subscriber `slot`.
    Record(usize, &'a TraceRecord),
    /// So many records matched subscriber `slot`'s filter and were not
    /// shown (rate limit, full ring) since the last report.
    NotShown(usize, u64),
}

impl Tracer {
    /// Whether any subscriber traces: the packet path then fills records.
    #[inline]
    pub fn active(&self) -> bool {
        self.active
    }

    /// Add a subscriber; its slot, or `None` at [`MAX_TRACERS`].
    pub fn add(&mut self, filter: TraceFilter) -> Option<usize> {
        let free = self.slots.iter().position(Option::is_none)?;
        self.slots[free] = Some(Slot {
            filter,
            bucket: TokenBucket::new(TRACE_PER_SECOND, TRACE_PER_SECOND),
            not_shown: 0,
        });
        if self.ring.capacity() == 0 {
            self.ring.reserve_exact(TRACE_RING);
        }
        self.active = true;
        Some(free)
    }

    /// Remove subscriber `slot` (its records waiting are dropped).
    pub fn remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = None;
        }
        let bit = 1u8 << slot.min(7);
        for (mask, _) in self.ring.iter_mut() {
            *mask &= !bit;
        }
        self.ring.retain(|(mask, _)| *mask != 0);
        self.active = self.slots.iter().any(Option::is_some);
    }

    /// Whether some subscriber may want a packet of tuple `t` (before the
    /// rest of the record is filled).
    pub fn wants(&self, t: &Tuple) -> bool {
        // A translated packet's rules-side tuple is not known yet: a
        // filter on addresses or ports is checked again on the whole record.
        self.slots.iter().flatten().any(|s| {
            let f = TraceFilter {
                addr: None,
                port: None,
                ..s.filter
            };
            f.wants(t, None)
        })
    }

    /// Offer a finished record: kept for the subscribers whose filter it
    /// matches and whose rate limit allows it; counted as not shown for
    /// the others it matches. Never allocates (the ring is sized once).
    pub fn offer(&mut self, rec: &TraceRecord, now: Instant) {
        let mut mask = 0u8;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            if !s.filter.matches(rec) {
                continue;
            }
            if s.bucket.take(now) {
                mask |= 1 << i;
            } else {
                s.not_shown += 1;
            }
        }
        if mask == 0 {
            return;
        }
        if self.ring.len() < TRACE_RING {
            self.ring.push((mask, *rec));
        } else {
            for (i, slot) in self.slots.iter_mut().enumerate() {
                if let (Some(s), true) = (slot, mask & (1 << i) != 0) {
                    s.not_shown += 1;
                }
            }
        }
    }

    /// Hand out the records waiting (each once per subscriber it is for,
    /// after that subscriber's "not shown" count if any), then empty the ring.
    pub fn drain(&mut self, mut out: impl FnMut(TraceOutput<'_>)) {
        for (mask, rec) in &self.ring {
            for (i, slot) in self.slots.iter_mut().enumerate() {
                if mask & (1 << i) == 0 {
                    continue;
                }
                if let Some(s) = slot {
                    if s.not_shown > 0 {
                        out(TraceOutput::NotShown(i, s.not_shown));
                        s.not_shown = 0;
                    }
                    out(TraceOutput::Record(i, rec));
                }
            }
        }
        self.ring.clear();
    }

    /// Report (and reset) the "not shown" counts of subscribers with no
    /// record waiting: the event loop calls it now and then (once a second)
    /// so that a count is told even when nothing else comes.
    pub fn report_not_shown(&mut self, mut out: impl FnMut(usize, u64)) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(s) = slot {
                if s.not_shown > 0 {
                    out(i, s.not_shown);
                    s.not_shown = 0;
                }
            }
        }
    }
}

/// The line telling a `ctl trace` subscriber that `n` packets matched
/// its filter and were not shown.
pub fn not_shown_line(n: u64) -> String {
    format!("{{\"trace\":null,\"not_shown\":{n}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn rec(port: u16) -> TraceRecord {
        let mut r = TraceRecord::new(Side::Lan, 60);
        r.tuple = Some(Tuple {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            protocol: PROTO_TCP,
            src_id: 5555,
            dst_id: port,
        });
        r.state = Some(CtState::New);
        r
    }

    #[test]
    fn filters_rate_limit_and_not_shown_counts() {
        let mut t = Tracer::default();
        assert!(!t.active());
        let a = t
            .add(TraceFilter {
                port: Some(80),
                ..TraceFilter::default()
            })
            .unwrap();
        let b = t
            .add(TraceFilter {
                state: Some(CtState::Established),
                ..TraceFilter::default()
            })
            .unwrap();
        assert!(t.active());
        let now = Instant::ZERO;
        for _ in 0..(TRACE_PER_SECOND + 5) {
            t.offer(&rec(80), now);
            t.offer(&rec(443), now);
        }
        let (mut shown, mut not_shown) = ([0u64; 2], [0u64; 2]);
        t.drain(|o| match o {
            TraceOutput::Record(i, r) => {
                assert_eq!(r.tuple.unwrap().dst_id, 80);
                shown[i] += 1
            }
            TraceOutput::NotShown(i, n) => not_shown[i] += n,
        });
        t.report_not_shown(|i, n| not_shown[i] += n);
        assert_eq!(shown[a], TRACE_PER_SECOND);
        assert_eq!(not_shown[a], 5);
        assert_eq!((shown[b], not_shown[b]), (0, 0));
        t.remove(a);
        t.remove(b);
        assert!(!t.active());
        assert!(t.add(TraceFilter::default()).is_some());
    }
}
