//! Rules: ordered match lists per direction, first match wins, with a default
//! policy, and packet/byte counters per rule.
//!
//! Matching is allocation-free: every list a rule needs was built when the
//! configuration was loaded.

use core::fmt;
use core::net::IpAddr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::conntrack::CtState;
use crate::packet::{Packet, Side, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Direction of travel through the firewall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the LAN device to the WAN device (the seed's OUTPUT chain).
    Outbound,
    /// From the WAN device to the LAN device (the seed's INPUT chain).
    Inbound,
}

impl Direction {
    /// The direction of a packet read from `side`.
    pub fn from_ingress(side: Side) -> Direction {
        match side {
            Side::Lan => Direction::Outbound,
            Side::Wan => Direction::Inbound,
        }
    }

    /// `outbound` or `inbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
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
    /// ICMP (1).
    Icmp,
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
            Proto::Number(n) => n,
        }
    }
}

/// An address block: address and prefix length; host bits are masked off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parse `a.b.c.d`, `a.b.c.d/n`, or the IPv6 forms.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim()
            .parse()
            .map_err(|_| format!("bad CIDR {text:?}: {addr_text:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("bad CIDR {text:?}: prefix must be 0 to {max}"))?,
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies inside this block (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// One CIDR or a list of them, from a RON string or list of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl CidrList {
    fn matches(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

impl<'de> Deserialize<'de> for CidrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CidrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CIDR string like \"10.0.0.0/8\" or a list of them")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CidrList, E> {
                Ok(CidrList(vec![Cidr::parse(s).map_err(E::custom)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CidrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(Cidr::parse(&s).map_err(de::Error::custom)?);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("empty address list"));
                }
                Ok(CidrList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A set of ports: single ports and inclusive ranges, iptables style:
/// `"21"`, `"1024:"` (1024 to 65535), `":1023"`, `"6000:6010"`, lists
/// separated by commas (`"20,21,1024:"`), or a bare number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSpec(pub Vec<(u16, u16)>);

impl PortSpec {
    /// Parse the text form.
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!("bad port spec {text:?}: empty element"));
            }
            let port = |s: &str, default: u16| -> Result<u16, String> {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(default);
                }
                s.parse::<u16>()
                    .map_err(|_| format!("bad port spec {text:?}: {s:?} is not a port (0-65535)"))
            };
            let range = match part.split_once(':') {
                Some((lo, hi)) => (port(lo, 0)?, port(hi, u16::MAX)?),
                None => {
                    let p = port(part, 0)?;
                    (p, p)
                }
            };
            if range.0 > range.1 {
                return Err(format!(
                    "bad port spec {text:?}: range {}:{} is upside down",
                    range.0, range.1
                ));
            }
            ranges.push(range);
        }
        Ok(PortSpec(ranges))
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a port spec string like \"1024:\" or \"20,21\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                let p = u16::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range (0-65535)")))?;
                Ok(PortSpec(vec![(p, p)]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range (0-65535)")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortSpec, E> {
                PortSpec::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
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

    /// The states in the set, in the order NEW, ESTABLISHED, RELATED, INVALID.
    pub fn states(self) -> impl Iterator<Item = CtState> {
        [
            CtState::New,
            CtState::Established,
            CtState::Related,
            CtState::Invalid,
        ]
        .into_iter()
        .filter(move |s| self.contains(*s))
    }
}

impl<'de> Deserialize<'de> for StateSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let states = Vec::<CtState>::deserialize(d)?;
        if states.is_empty() {
            return Err(de::Error::custom(
                "empty state set: name at least one of New, Established, Related, Invalid",
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
    /// IP protocol.
    #[serde(default)]
    pub proto: Option<Proto>,
    /// Source address blocks.
    #[serde(default)]
    pub src: Option<CidrList>,
    /// Destination address blocks.
    #[serde(default)]
    pub dst: Option<CidrList>,
    /// Source ports (TCP/UDP only).
    #[serde(default)]
    pub sport: Option<PortSpec>,
    /// Destination ports (TCP/UDP only).
    #[serde(default)]
    pub dport: Option<PortSpec>,
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
        if (self.icmp_type.is_some() || self.icmp_code.is_some()) && proto != Some(PROTO_ICMP) {
            return Err("icmp_type/icmp_code need proto: Icmp".into());
        }
        if self.icmp_code.is_some() && self.icmp_type.is_none() {
            return Err("icmp_code needs icmp_type".into());
        }
        Ok(())
    }

    /// Whether the packet, in conntrack state `state`, matches this rule.
    pub fn matches(&self, pkt: &Packet<'_>, state: CtState) -> bool {
        if let Some(p) = self.proto {
            if p.number() != pkt.ip.protocol {
                return false;
            }
        }
        if let Some(s) = self.state {
            if !s.contains(state) {
                return false;
            }
        }
        if let Some(c) = &self.src {
            if !c.matches(pkt.ip.src) {
                return false;
            }
        }
        if let Some(c) = &self.dst {
            if !c.matches(pkt.ip.dst) {
                return false;
            }
        }
        if self.sport.is_some() || self.dport.is_some() {
            let Some((sp, dp)) = pkt.ports() else {
                return false;
            };
            if self.sport.as_ref().is_some_and(|s| !s.contains(sp))
                || self.dport.as_ref().is_some_and(|s| !s.contains(dp))
            {
                return false;
            }
        }
        if let Some(t) = self.icmp_type {
            let Transport::Icmp(i) = pkt.transport else {
                return false;
            };
            if i.icmp_type != t || self.icmp_code.is_some_and(|c| c != i.code) {
                return false;
            }
        }
        true
    }

    /// A one-line iptables-like description, for listings.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(p) = self.proto {
            out += &match p {
                Proto::Tcp => "-p tcp".to_string(),
                Proto::Udp => "-p udp".to_string(),
                Proto::Icmp => "-p icmp".to_string(),
                Proto::Number(n) => format!("-p {n}"),
            };
        }
        let cidrs = |l: &CidrList| {
            l.0.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let ports = |p: &PortSpec| {
            p.0.iter()
                .map(|&(lo, hi)| match (lo, hi) {
                    (l, h) if l == h => l.to_string(),
                    (l, 65535) => format!("{l}:"),
                    (l, h) => format!("{l}:{h}"),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Some(c) = &self.src {
            out += &format!(" -s {}", cidrs(c));
        }
        if let Some(c) = &self.dst {
            out += &format!(" -d {}", cidrs(c));
        }
        if let Some(p) = &self.sport {
            out += &format!(" --sport {}", ports(p));
        }
        if let Some(p) = &self.dport {
            out += &format!(" --dport {}", ports(p));
        }
        if let Some(t) = self.icmp_type {
            match self.icmp_code {
                Some(c) => out += &format!(" --icmp-type {t}/{c}"),
                None => out += &format!(" --icmp-type {t}"),
            }
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
        let log = if self.log { " (log)" } else { "" };
        format!("{} -j {target}{log}", out.trim_start())
    }
}

/// Packet and byte counters of one rule or policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

impl Counter {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// The rules of one direction and their counters.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// The default policy when no rule matches (accept or drop).
    pub policy: Action,
    /// Log packets that fall through to the policy.
    pub log_policy: bool,
    /// One counter per rule.
    pub counters: Vec<Counter>,
    /// Packets that fell through to the policy.
    pub policy_counter: Counter,
}

/// Which rule decided, for counters and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decider {
    /// Rule number (0-based) in the chain.
    Rule(usize),
    /// The chain's default policy.
    Policy,
}

impl Chain {
    /// A chain with zeroed counters.
    pub fn new(rules: Vec<Rule>, policy: Action, log_policy: bool) -> Chain {
        let counters = vec![Counter::default(); rules.len()];
        Chain {
            rules,
            policy,
            log_policy,
            counters,
            policy_counter: Counter::default(),
        }
    }

    /// Take over the counters of `old` for rules with the same name (and the
    /// policy counter); returns how many rule counters were carried over.
    pub fn inherit_counters(&mut self, old: &Chain) -> usize {
        let mut carried = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(name) = rule.name.as_deref() else {
                continue;
            };
            if let Some(j) = old
                .rules
                .iter()
                .position(|r| r.name.as_deref() == Some(name))
            {
                self.counters[i] = old.counters[j];
                carried += 1;
            }
        }
        self.policy_counter = old.policy_counter;
        carried
    }

    /// Whether the decider of a packet asked for logging.
    pub fn wants_log(&self, decider: Decider) -> bool {
        match decider {
            Decider::Rule(i) => self.rules.get(i).is_some_and(|r| r.log),
            Decider::Policy => self.log_policy,
        }
    }

    /// The name of the decider, for logs: the rule's name, `#N`, or `policy`.
    pub fn decider_name(&self, decider: Decider) -> String {
        match decider {
            Decider::Rule(i) => self
                .rules
                .get(i)
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| format!("#{}", i + 1)),
            Decider::Policy => "policy".to_string(),
        }
    }

    /// First matching rule's action (or the policy), without counting.
    pub fn peek(&self, pkt: &Packet<'_>, state: CtState) -> Action {
        self.rules
            .iter()
            .find(|r| r.matches(pkt, state))
            .map_or(self.policy, |r| r.action)
    }

    /// First matching rule's action (or the policy), counting the packet.
    pub fn evaluate(&mut self, pkt: &Packet<'_>, state: CtState) -> (Action, Decider) {
        let len = pkt.ip.total_len;
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(pkt, state) {
                self.counters[i].add(len);
                return (rule.action, Decider::Rule(i));
            }
        }
        self.policy_counter.add(len);
        (self.policy, Decider::Policy)
    }
}
