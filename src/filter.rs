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
use crate::config::{Config, Ipv6Mode};
use crate::conntrack::{icmp, Conntrack, CtState, FlowRef, HelpVerdict, Tuple};
use crate::packet::{self, ParseError, Side, Transport};
use crate::rules::{Action, Chain, Decider, Direction};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;

/// How many table slots one expiry step looks at (bounds event-loop pauses).
pub const GC_BUDGET: usize = 16_384;

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
}

impl Verdict {
    fn dropped(reason: DropReason, state: Option<CtState>) -> Verdict {
        Verdict {
            forward: false,
            drop: Some(reason),
            answer_len: 0,
            state,
        }
    }
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
}

impl Firewall {
    /// A firewall with an empty table, built from a validated config.
    pub fn new(cfg: &Config) -> Firewall {
        Firewall {
            conntrack: Conntrack::new(
                cfg.conntrack.to_conntrack_config(),
                cfg.helpers.to_helper_config(),
            ),
            outbound: Chain::new(cfg.outbound.rules.clone(), cfg.outbound.policy),
            inbound: Chain::new(cfg.inbound.rules.clone(), cfg.inbound.policy),
            stats: Stats::default(),
            ipv6: cfg.ipv6,
            router: [cfg.router.lan, cfg.router.wan],
            // Linux: icmp_msgs_per_sec 1000, icmp_msgs_burst 50.
            answer_limit: TokenBucket::new(1000, 50),
            log_limit: TokenBucket::new(1, 5),
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
        self.conntrack.collect_expired(now, GC_BUDGET);
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
        self.stats.packets_in[side.index()] += 1;
        self.stats.bytes_in[side.index()] += buf.len() as u64;
        let verdict = self.decide(side, buf, answer, now);
        if let Some(reason) = verdict.drop {
            self.stats.count_drop(reason);
        }
        if verdict.forward {
            self.stats.packets_forwarded[side.index()] += 1;
        }
        verdict
    }

    fn decide(&mut self, side: Side, buf: &mut [u8], answer: &mut [u8], now: Instant) -> Verdict {
        let pkt = match packet::parse(buf) {
            Ok(p) => p,
            Err(ParseError::Invalid(reason)) => {
                self.stats.count_invalid(reason);
                log::debug!("drop {}: malformed ({reason})", side.as_str());
                return Verdict::dropped(DropReason::Malformed, Some(CtState::Invalid));
            }
            Err(ParseError::Fragment) => return Verdict::dropped(DropReason::Fragment, None),
            Err(ParseError::Ipv6) => {
                return match self.ipv6 {
                    Ipv6Mode::Drop => Verdict::dropped(DropReason::Ipv6Disabled, None),
                    Ipv6Mode::Pass => forward_ipv6(buf),
                };
            }
        };

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
            log::debug!(
                "invalid {} {}: {reason}",
                side.as_str(),
                Tuple::of_packet(&pkt).describe()
            );
        }
        let direction = Direction::from_ingress(side);
        let chain = match direction {
            Direction::Outbound => &mut self.outbound,
            Direction::Inbound => &mut self.inbound,
        };
        let (action, decider) = chain.evaluate(&pkt, tracked.state);
        let state = Some(tracked.state);
        match action {
            Action::Accept => {
                match tracked.flow {
                    FlowRef::Pending(flow) if self.conntrack.confirm(flow, now).is_err() => {
                        if self.log_limit.take(now) {
                            log::warn!(
                                "conntrack table full (max {}), dropping packet",
                                self.conntrack.config().max
                            );
                        }
                        return Verdict::dropped(DropReason::TableFull, state);
                    }
                    FlowRef::Existing(id)
                        if tracked.state == CtState::Established
                            && self.conntrack.help(id, tracked.dir, &pkt, now)
                                == HelpVerdict::Drop =>
                    {
                        return Verdict::dropped(DropReason::Helper, state);
                    }
                    _ => {}
                }
                packet::decrement_ttl(buf);
                Verdict {
                    forward: true,
                    drop: None,
                    answer_len: 0,
                    state,
                }
            }
            Action::Drop => {
                let reason = match (decider, direction) {
                    (Decider::Rule(_), _) => DropReason::RuleDrop,
                    (Decider::Policy, Direction::Outbound) => DropReason::PolicyOutbound,
                    (Decider::Policy, Direction::Inbound) => DropReason::PolicyInbound,
                };
                log::debug!(
                    "drop {} {} state {}: {reason}",
                    direction.as_str(),
                    Tuple::of_packet(&pkt).describe(),
                    tracked.state.as_str()
                );
                Verdict::dropped(reason, state)
            }
            Action::Reject => {
                let mut answer_len = 0;
                if self.answer_limit.take(now) {
                    let built = match pkt.transport {
                        Transport::Tcp(seg) => answer::tcp_reset(&pkt, &seg, answer)
                            .inspect(|_| self.stats.sent_tcp_rst += 1),
                        _ => {
                            let src = self.router[side.index()].or(match pkt.ip.dst {
                                core::net::IpAddr::V4(a) => Some(a),
                                core::net::IpAddr::V6(_) => None,
                            });
                            src.and_then(|src| {
                                answer::icmp_error(
                                    &pkt,
                                    buf,
                                    icmp::TYPE_DEST_UNREACHABLE,
                                    CODE_PORT_UNREACHABLE,
                                    src,
                                    answer,
                                )
                            })
                            .inspect(|_| self.stats.sent_icmp += 1)
                        }
                    };
                    answer_len = built.unwrap_or(0);
                } else {
                    self.stats.sent_rate_limited += 1;
                }
                Verdict {
                    answer_len,
                    ..Verdict::dropped(DropReason::RuleReject, state)
                }
            }
        }
    }
}

fn forward_ipv6(buf: &mut [u8]) -> Verdict {
    // Hop limit is byte 7 of the IPv6 header; there is no header checksum.
    if buf.len() >= 40 && buf[7] > 1 {
        buf[7] -= 1;
        Verdict {
            forward: true,
            drop: None,
            answer_len: 0,
            state: None,
        }
    } else {
        Verdict::dropped(DropReason::TtlExceeded, None)
    }
}
