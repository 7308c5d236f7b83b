//! NAT rules: which new flows are translated, and to what. Source NAT
//! rules are Linux's `-t nat POSTROUTING -o SIDE ... -j SNAT/MASQUERADE`,
//! destination NAT rules its `PREROUTING -i SIDE ... -j DNAT`; in each list
//! the first rule that matches decides, and a flow no rule matches is not
//! translated that way.
//!
//! A rule matches a flow's tuple (as the hook sees it: destination NAT the
//! tuple as it arrived, source NAT the tuple after destination NAT), IPv4
//! only: tunfw does no NAT66 (README, "NAT").

use core::net::{IpAddr, Ipv4Addr};

use super::ports::IdRange;
use crate::conntrack::tuple::Tuple;
use crate::matchers::{CidrList, PortSpec};
use crate::side::Side;
use crate::wire::{PROTO_TCP, PROTO_UDP};

/// What a NAT rule matches: every field present must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatMatch {
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// Source address blocks.
    pub src: Option<CidrList>,
    /// Destination address blocks.
    pub dst: Option<CidrList>,
    /// Source ports (with TCP or UDP).
    pub sport: Option<PortSpec>,
    /// Destination ports (with TCP or UDP).
    pub dport: Option<PortSpec>,
}

impl NatMatch {
    /// Whether the IPv4 tuple `t` matches.
    pub fn matches(&self, t: &Tuple) -> bool {
        if !t.src.is_ipv4() || self.protocol.is_some_and(|p| p != t.protocol) {
            return false;
        }
        if self.src.as_ref().is_some_and(|c| !c.matches(t.src))
            || self.dst.as_ref().is_some_and(|c| !c.matches(t.dst))
        {
            return false;
        }
        let has_ports = matches!(t.protocol, PROTO_TCP | PROTO_UDP);
        for (spec, port) in [(&self.sport, t.src_id), (&self.dport, t.dst_id)] {
            if let Some(spec) = spec {
                if !has_ports || !spec.contains(port) {
                    return false;
                }
            }
        }
        true
    }
}

/// The new source of a source NAT rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceTo {
    /// The router address of the side the flow leaves by (`MASQUERADE`).
    Masquerade,
    /// One address of this inclusive range (`SNAT --to-source A-B`).
    Range(Ipv4Addr, Ipv4Addr),
}

/// A source NAT rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRule {
    /// The side the flow leaves by (`-o`).
    pub out: Side,
    /// What it matches.
    pub matches: NatMatch,
    /// The new source address.
    pub to: SourceTo,
    /// The new source port's range (`--to-ports`, TCP and UDP); `None`: the
    /// original port if free, else one of its class.
    pub ports: Option<IdRange>,
}

/// A destination NAT rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationRule {
    /// The side the flow arrives from (`-i`).
    pub from: Side,
    /// What it matches.
    pub matches: NatMatch,
    /// The new destination address.
    pub to: Ipv4Addr,
    /// The new destination port's range (TCP and UDP); `None`: unchanged.
    pub ports: Option<IdRange>,
}

/// Every NAT rule of a config, and the addresses masquerade uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatRules {
    /// Source NAT, first match wins.
    pub source: Vec<SourceRule>,
    /// Destination NAT, first match wins.
    pub destination: Vec<DestinationRule>,
    /// The router address of each side (index [`Side::index`]): a
    /// masquerading flow leaving by that side takes it.
    pub masquerade: [Option<Ipv4Addr>; 2],
}

/// Where a source NAT rule translates a flow to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceTarget {
    /// The first address of the range.
    pub first: Ipv4Addr,
    /// The last.
    pub last: Ipv4Addr,
    /// The port range, if any.
    pub ports: Option<IdRange>,
}

/// Where a destination NAT rule translates a flow to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestinationTarget {
    /// The new destination address.
    pub to: Ipv4Addr,
    /// The port range, if any.
    pub ports: Option<IdRange>,
}

impl NatRules {
    /// True when no rule translates anything.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty() && self.destination.is_empty()
    }

    /// The destination NAT for a new flow arriving from `from` with tuple `t`.
    pub fn destination_for(&self, from: Side, t: &Tuple) -> Option<DestinationTarget> {
        self.destination
            .iter()
            .find(|r| r.from == from && r.matches.matches(t))
            .map(|r| DestinationTarget {
                to: r.to,
                ports: r.ports,
            })
    }

    /// The source NAT for a new flow leaving by `out` with tuple `t` (after
    /// destination NAT). A masquerade rule of a side without a router
    /// address does not match (the config refuses such a rule).
    pub fn source_for(&self, out: Side, t: &Tuple) -> Option<SourceTarget> {
        self.source
            .iter()
            .filter(|r| r.out == out && r.matches.matches(t))
            .find_map(|r| {
                let (first, last) = match r.to {
                    SourceTo::Masquerade => {
                        let a = self.masquerade[out.index()]?;
                        (a, a)
                    }
                    SourceTo::Range(a, b) => (a.min(b), a.max(b)),
                };
                Some(SourceTarget {
                    first,
                    last,
                    ports: r.ports,
                })
            })
    }
}

impl SourceTarget {
    /// Whether `a` is one of the target's addresses.
    pub fn contains(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => (self.first..=self.last).contains(&a),
            IpAddr::V6(_) => false,
        }
    }

    /// How many addresses it has.
    pub fn count(&self) -> u64 {
        u64::from(u32::from(self.last)) - u64::from(u32::from(self.first)) + 1
    }
}
