//! One rule: the matches a packet must pass (protocol, addresses, ports,
//! conntrack state, ICMP or ICMPv6 type) and its target. One ruleset serves
//! both families, as nftables' `inet` family: a rule's addresses (and an
//! ICMP or ICMPv6 protocol) tie it to one family, a rule without them
//! matches both. Chains of rules are in
//! [`crate::chain`].
//!
//! Matching is allocation-free: every list a rule needs was built when the
//! configuration was loaded.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::conntrack::state::CtState;
use crate::limits::Limit;
use crate::matchers::{AddrMatch, Family, PortMatch, SetRef};
use crate::packet::{Packet, Transport};
use crate::sets::Sets;
use crate::time::Instant;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// What a rule's named sets are looked up in: the sets and the time
/// (elements with a timeout match until it passes).
#[derive(Clone, Copy)]
pub struct MatchContext<'a> {
    /// The named sets.
    pub sets: &'a Sets,
    /// Now.
    pub now: Instant,
}

impl MatchContext<'_> {
    /// Whether `ip` is matched by `m`.
    #[inline]
    pub fn address_in(&self, m: &AddrMatch, ip: core::net::IpAddr) -> bool {
        match m {
            AddrMatch::Blocks(b) => b.matches(ip),
            AddrMatch::Set(r) => self.sets.has_address(r.index, ip, self.now),
        }
    }

    /// Whether `port` is matched by `m`.
    #[inline]
    pub fn port_in(&self, m: &PortMatch, port: u16) -> bool {
        match m {
            PortMatch::Ports(p) => p.contains(port),
            PortMatch::Set(r) => self.sets.has_port(r.index, port, self.now),
        }
    }
}

/// What to do with a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Forward it.
    Accept,
    /// Drop it silently.
    Drop,
    /// Drop it and answer: TCP RST for TCP, ICMP port unreachable otherwise
    /// (never in answer to an ICMP error).
    Reject,
}

/// A protocol to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1), over IPv4 only.
    Icmp,
    /// ICMPv6 (58), over IPv6 only.
    Icmpv6,
    /// Any IP protocol by number.
    Number(u8),
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => PROTO_TCP,
            Proto::Udp => PROTO_UDP,
            Proto::Icmp => PROTO_ICMP,
            Proto::Icmpv6 => PROTO_ICMPV6,
            Proto::Number(n) => n,
        }
    }

    /// The family the protocol ties a rule to: ICMP is IPv4's, ICMPv6 is
    /// IPv6's; `None` for the others (both families).
    pub fn family(self) -> Option<Family> {
        match self {
            Proto::Icmp => Some(Family::V4),
            Proto::Icmpv6 => Some(Family::V6),
            _ => None,
        }
    }

    /// Whether a packet of `pkt`'s protocol and family is this protocol
    /// (the protocol rules see, [`crate::packet::IpInfo::rule_protocol`]).
    pub fn matches(self, pkt: &Packet<'_>) -> bool {
        self.number() == pkt.ip.rule_protocol
            && self.family().is_none_or(|f| f == Family::of(pkt.ip.src))
    }
}

/// The match of a rule a packet failed ([`Rule::mismatch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleField {
    /// `family`: the packet is of the other IP family.
    Family,
    /// `proto`: another protocol (or family, for ICMP and ICMPv6).
    Proto,
    /// `state`: the packet's conntrack state is not in the set.
    State,
    /// `src`: the source address is in none of the blocks.
    Src,
    /// `dst`: the destination address is in none of the blocks.
    Dst,
    /// `sport`/`dport`: the packet has no ports the rules may read (not
    /// TCP or UDP, or a later fragment).
    NoPorts,
    /// `sport`: the source port is not in the set.
    Sport,
    /// `dport`: the destination port is not in the set.
    Dport,
    /// `icmp_type`: the packet is not ICMP (or ICMPv6) the rules may read.
    NoIcmp,
    /// `icmp_type`: another ICMP type.
    IcmpType,
    /// `icmp_code`: another ICMP code.
    IcmpCode,
}

impl RuleField {
    /// The config field's name (`proto`, `dport`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::Family => "family",
            RuleField::Proto => "proto",
            RuleField::State => "state",
            RuleField::Src => "src",
            RuleField::Dst => "dst",
            RuleField::NoPorts => "sport/dport (no ports)",
            RuleField::Sport => "sport",
            RuleField::Dport => "dport",
            RuleField::NoIcmp => "icmp_type (not ICMP)",
            RuleField::IcmpType => "icmp_type",
            RuleField::IcmpCode => "icmp_code",
        }
    }
}

/// A non-empty set of conntrack states, as `-m state --state NEW,ESTABLISHED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSet(u8);

impl StateSet {
    /// A set of the given states.
    pub fn of(states: &[CtState]) -> StateSet {
        StateSet(states.iter().fold(0, |acc, s| acc | s.bit()))
    }

    /// Whether `state` is in the set.
    pub fn contains(self, state: CtState) -> bool {
        self.0 & state.bit() != 0
    }

    /// The states in the set, in the order NEW, ESTABLISHED, RELATED,
    /// INVALID, UNTRACKED.
    pub fn states(self) -> impl Iterator<Item = CtState> {
        CtState::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl<'de> Deserialize<'de> for StateSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let states = Vec::<CtState>::deserialize(d)?;
        if states.is_empty() {
            return Err(de::Error::custom(
                "empty state set: name at least one of New, Established, Related, Invalid, Untracked",
            ));
        }
        Ok(StateSet::of(&states))
    }
}

/// One rule. Every match that is present must hold; absent ones match anything.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Optional name, shown with the rule's counters.
    #[serde(default)]
    pub name: Option<String>,
    /// IP family (`Ipv4` or `Ipv6`, as nftables' `meta nfproto`): a rule
    /// without addresses matches both unless this ties it to one. Must
    /// agree with the addresses and the protocol.
    #[serde(default)]
    pub family: Option<Family>,
    /// IP protocol.
    #[serde(default)]
    pub proto: Option<Proto>,
    /// Source address blocks, or `"@set"`.
    #[serde(default)]
    pub src: Option<AddrMatch>,
    /// Destination address blocks, or `"@set"`.
    #[serde(default)]
    pub dst: Option<AddrMatch>,
    /// Source ports (TCP/UDP only), or `"@set"`.
    #[serde(default)]
    pub sport: Option<PortMatch>,
    /// Destination ports (TCP/UDP only), or `"@set"`.
    #[serde(default)]
    pub dport: Option<PortMatch>,
    /// Conntrack states.
    #[serde(default)]
    pub state: Option<StateSet>,
    /// ICMP type (ICMP only).
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// ICMP code (ICMP only, with `icmp_type`).
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// Log packets that match (rate-limited, see the `logging` section).
    #[serde(default)]
    pub log: bool,
    /// Per-source limits on the new flows the rule accepts (`Accept`
    /// rules only; see [`crate::limits`]).
    #[serde(default)]
    pub limit: Option<Limit>,
    /// Target.
    pub action: Action,
}

impl Rule {
    /// Cross-field checks that serde cannot express; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let proto = self.proto.map(Proto::number);
        if (self.sport.is_some() || self.dport.is_some())
            && !matches!(proto, Some(PROTO_TCP) | Some(PROTO_UDP))
        {
            return Err("sport/dport need proto: Tcp or proto: Udp".into());
        }
        if (self.icmp_type.is_some() || self.icmp_code.is_some())
            && !matches!(self.proto, Some(Proto::Icmp) | Some(Proto::Icmpv6))
        {
            return Err("icmp_type/icmp_code need proto: Icmp or proto: Icmpv6".into());
        }
        self.family()?;
        if self.icmp_code.is_some() && self.icmp_type.is_none() {
            return Err("icmp_code needs icmp_type".into());
        }
        if let Some(l) = &self.limit {
            if self.action != Action::Accept {
                return Err(
                    "limit needs action: Accept (it limits the flows a rule accepts)".into(),
                );
            }
            l.validate()?;
        }
        Ok(())
    }

    /// The family the rule matches: that of its addresses and of its
    /// protocol (ICMP, ICMPv6), `None` for both families (as a rule of
    /// nftables' `inet` family without addresses); `Err` when they disagree.
    pub fn family(&self) -> Result<Option<Family>, String> {
        let mut found: Option<(Family, &str)> = None;
        let lists = [("src", &self.src), ("dst", &self.dst)];
        let from_lists = lists.into_iter().filter_map(|(what, list)| {
            let list = list.as_ref()?;
            Some(list.family().map(|f| f.map(|f| (f, what))))
        });
        let from_proto = self
            .proto
            .and_then(Proto::family)
            .map(|f| Ok(Some((f, "proto"))));
        let from_field = self.family.map(|f| Ok(Some((f, "family"))));
        for next in from_field.into_iter().chain(from_lists).chain(from_proto) {
            let Some((f, what)) = next? else { continue };
            match found {
                Some((g, first)) if g != f => {
                    return Err(format!(
                        "the rule mixes families: {first} is {} and {what} is {}",
                        g.as_str(),
                        f.as_str()
                    ))
                }
                Some(_) => {}
                None => found = Some((f, what)),
            }
        }
        Ok(found.map(|(f, _)| f))
    }

    /// The named sets the rule refers to, to resolve: (field, reference);
    /// the field `limit` is its overload set.
    pub fn set_refs_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut SetRef)> {
        let addrs = [("src", self.src.as_mut()), ("dst", self.dst.as_mut())]
            .into_iter()
            .filter_map(|(f, m)| Some((f, m?.set_mut()?)));
        let ports = [
            ("sport", self.sport.as_mut()),
            ("dport", self.dport.as_mut()),
        ]
        .into_iter()
        .filter_map(|(f, m)| Some((f, m?.set_mut()?)));
        let overload = self
            .limit
            .as_mut()
            .and_then(|l| l.overload.as_mut())
            .map(|r| ("limit", r));
        addrs.chain(ports).chain(overload)
    }

    /// Whether the packet, in conntrack state `state`, matches this rule;
    /// named sets are looked up in `ctx`.
    pub fn matches(&self, pkt: &Packet<'_>, state: CtState, ctx: &MatchContext<'_>) -> bool {
        if self.family.is_some_and(|f| f != Family::of(pkt.ip.src)) {
            return false;
        }
        if let Some(p) = self.proto {
            if !p.matches(pkt) {
                return false;
            }
        }
        if let Some(s) = self.state {
            if !s.contains(state) {
                return false;
            }
        }
        if let Some(c) = &self.src {
            if !ctx.address_in(c, pkt.ip.src) {
                return false;
            }
        }
        if let Some(c) = &self.dst {
            if !ctx.address_in(c, pkt.ip.dst) {
                return false;
            }
        }
        if self.sport.is_some() || self.dport.is_some() {
            let Some((sp, dp)) = pkt.ports().filter(|_| pkt.rules_see_transport()) else {
                return false;
            };
            if self.sport.as_ref().is_some_and(|s| !ctx.port_in(s, sp))
                || self.dport.as_ref().is_some_and(|s| !ctx.port_in(s, dp))
            {
                return false;
            }
        }
        if let Some(t) = self.icmp_type {
            let (Transport::Icmp(i) | Transport::Icmpv6(i), true) =
                (pkt.transport, pkt.rules_see_transport())
            else {
                return false;
            };
            if i.icmp_type != t || self.icmp_code.is_some_and(|c| c != i.code) {
                return false;
            }
        }
        true
    }

    /// The first of the rule's matches that the packet, in state `state`,
    /// fails, in the order [`Rule::matches`] tests them; `None` exactly
    /// when [`Rule::matches`] is true. For explaining and tracing only: the
    /// packet path calls [`Rule::matches`], which this leaves untouched.
    pub fn mismatch(
        &self,
        pkt: &Packet<'_>,
        state: CtState,
        ctx: &MatchContext<'_>,
    ) -> Option<RuleField> {
        if self.family.is_some_and(|f| f != Family::of(pkt.ip.src)) {
            return Some(RuleField::Family);
        }
        if self.proto.is_some_and(|p| !p.matches(pkt)) {
            return Some(RuleField::Proto);
        }
        if self.state.is_some_and(|s| !s.contains(state)) {
            return Some(RuleField::State);
        }
        if self
            .src
            .as_ref()
            .is_some_and(|c| !ctx.address_in(c, pkt.ip.src))
        {
            return Some(RuleField::Src);
        }
        if self
            .dst
            .as_ref()
            .is_some_and(|c| !ctx.address_in(c, pkt.ip.dst))
        {
            return Some(RuleField::Dst);
        }
        if self.sport.is_some() || self.dport.is_some() {
            let Some((sp, dp)) = pkt.ports().filter(|_| pkt.rules_see_transport()) else {
                return Some(RuleField::NoPorts);
            };
            if self.sport.as_ref().is_some_and(|s| !ctx.port_in(s, sp)) {
                return Some(RuleField::Sport);
            }
            if self.dport.as_ref().is_some_and(|s| !ctx.port_in(s, dp)) {
                return Some(RuleField::Dport);
            }
        }
        if let Some(t) = self.icmp_type {
            let (Transport::Icmp(i) | Transport::Icmpv6(i), true) =
                (pkt.transport, pkt.rules_see_transport())
            else {
                return Some(RuleField::NoIcmp);
            };
            if i.icmp_type != t {
                return Some(RuleField::IcmpType);
            }
            if self.icmp_code.is_some_and(|c| c != i.code) {
                return Some(RuleField::IcmpCode);
            }
        }
        None
    }

    /// A one-line iptables-like description, for listings.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        match self.family {
            Some(Family::V4) => out += " -4",
            Some(Family::V6) => out += " -6",
            None => {}
        }
        match self.proto {
            Some(Proto::Tcp) => out += " -p tcp",
            Some(Proto::Udp) => out += " -p udp",
            Some(Proto::Icmp) => out += " -p icmp",
            Some(Proto::Icmpv6) => out += " -p icmpv6",
            Some(Proto::Number(n)) => out += &format!(" -p {n}"),
            None => {}
        }
        if let Some(c) = &self.src {
            out += &format!(" -s {c}");
        }
        if let Some(c) = &self.dst {
            out += &format!(" -d {c}");
        }
        if let Some(p) = &self.sport {
            out += &format!(" --sport {p}");
        }
        if let Some(p) = &self.dport {
            out += &format!(" --dport {p}");
        }
        let icmp_type = match self.proto {
            Some(Proto::Icmpv6) => "--icmpv6-type",
            _ => "--icmp-type",
        };
        match (self.icmp_type, self.icmp_code) {
            (Some(t), Some(c)) => out += &format!(" {icmp_type} {t}/{c}"),
            (Some(t), None) => out += &format!(" {icmp_type} {t}"),
            _ => {}
        }
        if let Some(s) = self.state {
            let names: Vec<_> = s.states().map(CtState::as_str).collect();
            out += &format!(" --state {}", names.join(","));
        }
        let target = match self.action {
            Action::Accept => "ACCEPT",
            Action::Drop => "DROP",
            Action::Reject => "REJECT",
        };
        if let Some(l) = &self.limit {
            out += " ";
            out += &l.describe();
        }
        let log = if self.log { " (log)" } else { "" };
        format!("{} -j {target}{log}", out.trim_start())
    }
}
