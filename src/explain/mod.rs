//! `tunfw explain`: which rule decides a packet described on the command
//! line, and why, with no device and no privilege.
//!
//! The described packet ([`describe::Description`]) is built as real bytes
//! ([`build::packet`]) and decided by a [`Firewall`] made from the config,
//! through [`Firewall::process_traced`]: the same packet path as the
//! running firewall (parsing, conntrack, destination NAT, the chain),
//! which records each rule's result.
//!
//! The conntrack state is the one the table gives. `--state established`
//! and `--state reply` make it real first: the flow's first packets go
//! through the same firewall (the handshake for TCP, a query and its
//! answer otherwise), started by the packet's own side (`established`:
//! the packet travels in the original direction) or by the other side
//! (`reply`: the packet is an answer). RELATED and INVALID cannot be
//! primed from a description (they need an ICMP error quoting a flow, or
//! an FTP announcement): `--state related|invalid` evaluates the chain
//! with that state given, without conntrack and NAT, and says so.

pub mod build;
pub mod describe;

use core::fmt::Write as _;

use crate::chain::Decider;
use crate::config::Config;
use crate::conntrack::state::CtState;
use crate::conntrack::tuple::Tuple;
use crate::filter::trace::{TraceRecord, MAX_TRACED_RULES};
use crate::filter::Firewall;
use crate::packet;
use crate::rules::Action;
use crate::side::Side;
use crate::stats::DropReason;
use crate::time::Instant;
use crate::verdict::{Fate, Verdict};
use crate::wire::tcp::flags;
use crate::wire::{icmp, icmpv6, vnet, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};
use build::Extra;
pub use describe::Description;

/// The state asked for with `--state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateWish {
    /// Whatever conntrack says of the packet alone (an empty table): NEW,
    /// or INVALID with its reason.
    Table,
    /// NEW: as [`StateWish::Table`] (the table is empty).
    New,
    /// ESTABLISHED, the packet in its flow's original direction: the flow
    /// is primed from the packet's side first.
    Established,
    /// ESTABLISHED, the packet an answer: the flow is primed from the
    /// other side first.
    Reply,
    /// Given to the chain as it is (not primed).
    Forced(CtState),
}

impl StateWish {
    /// Parse `--state`: new, established, reply, related, invalid, untracked.
    pub fn parse(text: &str) -> Result<StateWish, String> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "new" => StateWish::New,
            "established" => StateWish::Established,
            "reply" => StateWish::Reply,
            "related" => StateWish::Forced(CtState::Related),
            "invalid" => StateWish::Forced(CtState::Invalid),
            "untracked" => StateWish::Forced(CtState::Untracked),
            _ => {
                return Err(format!(
                    "bad --state {text:?}: new, established, reply, related, invalid or untracked"
                ))
            }
        })
    }
}

/// What explaining a packet found.
pub struct Explanation {
    /// The firewall the packet went through (its rules name the deciders).
    pub firewall: Firewall,
    /// The described packet.
    pub description: Description,
    /// The described packet's bytes.
    pub bytes: usize,
    /// What priming did, one line per packet sent before.
    pub primed: Vec<String>,
    /// The state was given to the chain, not found by conntrack.
    pub forced: Option<CtState>,
    /// What the packet path recorded.
    pub record: TraceRecord,
}

const T0: u64 = 1_000_000;

/// Decide the described packet against `config`, in the state `wish`.
pub fn explain(config: &Config, d: &Description, wish: StateWish) -> Explanation {
    let mut fw = Firewall::new(config);
    let mut clock = T0;
    let tuple = d.tuple();
    let x = Extra {
        flags: d.tcp_flags,
        seq: 1001,
        ack: 0,
        ttl: d.ttl,
    };
    let mut primed = Vec::new();
    let mut x = x;
    match wish {
        StateWish::Established => {
            prime(&mut fw, &mut clock, d.side, tuple, &mut primed);
            x.seq = 1001;
            x.ack = if d.tcp_flags & flags::ACK != 0 {
                5001
            } else {
                0
            };
        }
        StateWish::Reply => {
            if let Some(inverse) = inverse_query(&tuple) {
                prime(&mut fw, &mut clock, d.side.other(), inverse, &mut primed);
                let now = Instant::from_millis(clock);
                let ct = fw.conntrack();
                if let (None, Some((flow, _))) = (ct.peek(&tuple, now), ct.peek(&inverse, now)) {
                    primed.push(format!(
                        "the packet is not in the primed flow: its answers travel as {} (address translation)",
                        ct.reply_tuple(flow).describe()
                    ));
                }
            } else {
                primed.push(format!(
                    "cannot prime: {} has no query it answers",
                    tuple.describe()
                ));
            }
            x.seq = 5001;
            x.ack = if d.tcp_flags & flags::ACK != 0 {
                1001
            } else {
                0
            };
        }
        StateWish::Table | StateWish::New | StateWish::Forced(_) => {}
    }
    let bytes = build::packet(&tuple, &x);
    let len = bytes.len();
    let record = match wish {
        StateWish::Forced(state) => forced(&fw, d, &bytes, state),
        _ => send(&mut fw, &mut clock, d.side, bytes).1,
    };
    Explanation {
        firewall: fw,
        description: *d,
        bytes: len,
        primed,
        forced: match wish {
            StateWish::Forced(s) => Some(s),
            _ => None,
        },
        record,
    }
}

/// The query `t` answers, for priming a reply: the inverse tuple, an echo
/// request for an echo reply.
fn inverse_query(t: &Tuple) -> Option<Tuple> {
    match t.protocol {
        PROTO_ICMP | PROTO_ICMPV6 => {
            let (ty, code) = icmp::split_type_code(t.dst_id);
            let request = match (t.protocol, ty) {
                (PROTO_ICMP, icmp::ECHO_REPLY) => icmp::ECHO_REQUEST,
                (PROTO_ICMPV6, icmpv6::ECHO_REPLY) => icmpv6::ECHO_REQUEST,
                _ => return None,
            };
            Some(Tuple {
                src: t.dst,
                dst: t.src,
                dst_id: icmp::type_code(request, code),
                ..*t
            })
        }
        _ => t.invert(),
    }
}

/// Send one packet through `fw`, a millisecond after the last.
fn send(
    fw: &mut Firewall,
    clock: &mut u64,
    side: Side,
    mut bytes: Vec<u8>,
) -> (Verdict, TraceRecord) {
    *clock += 1;
    let len = bytes.len();
    bytes.resize(len + 64, 0);
    let mut answer = vec![0u8; 1500];
    fw.process_traced(
        side,
        &vnet::PLAIN,
        &mut bytes,
        len,
        &mut answer,
        Instant::from_millis(*clock),
    )
}

/// Start the flow of `first` from `side` and answer it (TCP: the
/// three-way handshake), noting each step in `notes`.
fn prime(fw: &mut Firewall, clock: &mut u64, side: Side, first: Tuple, notes: &mut Vec<String>) {
    let tcp = first.protocol == PROTO_TCP;
    let opening = first;
    let x = |flags: u8, seq: u32, ack: u32| Extra {
        flags,
        seq,
        ack,
        ttl: 64,
    };
    let steps: Vec<(Side, bool, Extra)> = if tcp {
        vec![
            (side, false, x(flags::SYN, 1000, 0)),
            (side.other(), true, x(flags::SYN | flags::ACK, 5000, 1001)),
            (side, false, x(flags::ACK, 1001, 5001)),
        ]
    } else {
        vec![(side, false, x(0, 0, 0)), (side.other(), true, x(0, 0, 0))]
    };
    for (n, (from, reply, extra)) in steps.into_iter().enumerate() {
        // A reply travels as the table says: to the translated address.
        let t = if reply {
            let now = Instant::from_millis(*clock);
            let ct = fw.conntrack();
            match ct.peek(&opening, now) {
                Some((flow, _)) => ct.reply_tuple(flow),
                None => {
                    notes.push(format!(
                        "priming stopped: no flow for {} (its first packet was not accepted)",
                        opening.describe()
                    ));
                    return;
                }
            }
        } else {
            opening
        };
        let (v, rec) = send(fw, clock, from, build::packet(&t, &extra));
        let flag_text = if tcp {
            format!(" [{}]", describe::flags_text(extra.flags))
        } else {
            String::new()
        };
        let by = rec
            .decider
            .map(|_| rec.decider_text(fw.chain(from)))
            .unwrap_or_default();
        notes.push(format!(
            "{}. from {} {}{flag_text}: {} {} by {by}",
            n + 1,
            from.as_str(),
            t.describe(),
            rec.state.map_or("untracked", CtState::as_str),
            if v.forwards() { "accepted" } else { "dropped" },
        ));
        if !v.forwards() {
            notes.push("priming stopped: the flow is not what --state asked".to_string());
            return;
        }
    }
}

/// The chain of `d`'s side evaluated with `state` given, on the packet as
/// built (no conntrack, no NAT).
fn forced(fw: &Firewall, d: &Description, bytes: &[u8], state: CtState) -> TraceRecord {
    let mut rec = TraceRecord::new(d.side, bytes.len());
    let Ok(pkt) = packet::parse(bytes) else {
        return rec;
    };
    rec.tuple = Some(Tuple::of_packet(&pkt));
    rec.state = Some(state);
    let chain = fw.chain(d.side);
    // The sets as the config fills them (explain runs no clock: time 0).
    let ctx = crate::rules::MatchContext {
        sets: fw.sets(),
        now: crate::time::Instant::ZERO,
    };
    let (action, decider, evaluated) = chain.trace(&pkt, state, &ctx, &mut rec.misses);
    rec.action = Some(action);
    rec.decider = Some(decider);
    rec.evaluated = evaluated;
    rec.verdict = match action {
        Action::Accept => Verdict::new(Fate::Forward, Some(state)),
        Action::Drop | Action::Reject => Verdict::dropped(
            match (action, decider) {
                (Action::Reject, _) => DropReason::RuleReject,
                (_, Decider::Rule(_)) => DropReason::RuleDrop,
                (_, Decider::Policy) if d.side == Side::Lan => DropReason::PolicyOutbound,
                (_, Decider::Policy) => DropReason::PolicyInbound,
            },
            Some(state),
        ),
    };
    rec
}

impl Description {
    /// The conntrack tuple of the described packet.
    pub fn tuple(&self) -> Tuple {
        let (src_id, dst_id) = match self.protocol {
            PROTO_ICMP | PROTO_ICMPV6 => (
                self.icmp_id,
                icmp::type_code(self.icmp_type, self.icmp_code),
            ),
            _ => (self.sport, self.dport),
        };
        Tuple {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            src_id,
            dst_id,
        }
    }
}

impl Explanation {
    /// Whether the packet is forwarded.
    pub fn accepted(&self) -> bool {
        self.record.verdict.forwards_any()
    }

    /// The exit code of `tunfw explain`: 0 accepted, 1 dropped or rejected.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.accepted())
    }

    /// The explanation as text.
    pub fn render(&self) -> String {
        let d = &self.description;
        let r = &self.record;
        let chain = self.firewall.chain(d.side);
        let mut out = String::new();
        let flags = if d.protocol == PROTO_TCP {
            format!(" [{}]", describe::flags_text(d.tcp_flags))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "packet:    {}{flags} from {} ({} bytes, {} chain)",
            d.tuple().describe(),
            d.side.as_str(),
            self.bytes,
            d.side.direction()
        );
        if !self.primed.is_empty() {
            out.push_str("primed:\n");
            for line in &self.primed {
                let _ = writeln!(out, "  {line}");
            }
        }
        match (self.forced, r.state) {
            (Some(s), _) => {
                let _ = writeln!(
                    out,
                    "conntrack: {} (given with --state: conntrack and NAT not run)",
                    s.as_str()
                );
            }
            (None, Some(s)) => {
                let _ = write!(out, "conntrack: {}", s.as_str());
                if let Some(reason) = r.invalid {
                    let _ = write!(out, " ({reason})");
                }
                out.push_str(match r.before {
                    Some(_) => ", of an existing flow",
                    None => ", no flow before",
                });
                match r.after {
                    Some(v) => {
                        let mut s = String::new();
                        if let Some(t) = v.tcp {
                            s = format!("{} ", t.as_str());
                        }
                        s += if v.seen_reply { "REPLIED" } else { "UNREPLIED" };
                        let _ = writeln!(out, "; flow after: {s}");
                    }
                    None => out.push_str("; no flow kept\n"),
                }
            }
            (None, None) => out.push_str("conntrack: did not run\n"),
        }
        match r.seen {
            Some(seen) => {
                let _ = writeln!(out, "nat:       the rules see {}", seen.describe());
            }
            None if self.forced.is_none() && r.decider.is_some() => {
                out.push_str("nat:       none (the rules see the packet as it is)\n");
            }
            None => {}
        }
        if r.decider.is_some() {
            let _ = write!(out, "rules ({} chain):", d.side.direction());
            let mut rules = String::new();
            r.render_rules(chain, &mut rules);
            out.push_str(&rules);
            out.push('\n');
            if r.evaluated > MAX_TRACED_RULES {
                let _ = writeln!(
                    out,
                    "  (rules past #{MAX_TRACED_RULES} failed matches not recorded)"
                );
            }
            let _ = writeln!(out, "decision:  {}", r.decider_text(chain));
        } else {
            out.push_str("rules:     not run (the packet was decided before the rules)\n");
        }
        let _ = writeln!(out, "verdict:   {}", r.verdict_text());
        out
    }
}
