//! The `nat` section: source NAT (masquerade, SNAT) for flows leaving by a
//! side and destination NAT (port forwarding) for flows arriving from one,
//! IPv4 only, as `iptables -t nat` writes them. See [`crate::nat`].
//!
//! ```ron
//! nat: (
//!     source: [
//!         (out: Wan, src: "10.0.0.0/8", to: Masquerade),
//!         (out: Wan, proto: Udp, to: Range("192.0.2.10", "192.0.2.20"), ports: (20000, 29999)),
//!     ],
//!     destination: [
//!         (from: Wan, proto: Tcp, dport: "8080", to: "10.0.0.5", to_port: 80),
//!     ],
//! ),
//! ```
//!
//! Checked while reading (the error points at the rule): addresses are
//! IPv4; `sport`, `dport`, `ports` and `to_port` need `proto: Tcp` or
//! `Udp`; ICMPv6 is refused; a range's first address is not after its last;
//! at most [`MAX_NAT_RULES`] rules a list. [`super::Config::parse`] then
//! refuses a masquerade rule for a side without a router address.

use core::net::Ipv4Addr;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::matchers::{CidrList, Family, PortSpec};
use crate::nat::ports::IdRange;
use crate::nat::rules::{DestinationRule, NatMatch, NatRules, SourceRule, SourceTo};
use crate::rules::Proto;
use crate::side::Side;

/// Most rules in `nat.source` or `nat.destination`: a new flow is matched
/// against them one by one.
pub const MAX_NAT_RULES: usize = 1024;

/// A side, as the config names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SideName {
    /// The LAN device.
    Lan,
    /// The WAN device.
    Wan,
}

impl SideName {
    /// The side.
    pub fn side(self) -> Side {
        match self {
            SideName::Lan => Side::Lan,
            SideName::Wan => Side::Wan,
        }
    }
}

/// The new source of a source NAT rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum SourceToConfig {
    /// The `router` address of the side the flow leaves by.
    Masquerade,
    /// This address.
    Address(Ipv4Addr),
    /// One address of this range, first to last.
    Range(Ipv4Addr, Ipv4Addr),
}

/// One source NAT rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceNatConfig {
    /// Optional name, for listings.
    #[serde(default)]
    pub name: Option<String>,
    /// The side the flow leaves by (`-o`).
    pub out: SideName,
    /// IP protocol.
    #[serde(default)]
    pub proto: Option<Proto>,
    /// Source address blocks (IPv4).
    #[serde(default)]
    pub src: Option<CidrList>,
    /// Destination address blocks (IPv4).
    #[serde(default)]
    pub dst: Option<CidrList>,
    /// Source ports (TCP/UDP).
    #[serde(default)]
    pub sport: Option<PortSpec>,
    /// Destination ports (TCP/UDP).
    #[serde(default)]
    pub dport: Option<PortSpec>,
    /// The new source.
    pub to: SourceToConfig,
    /// The new source port's range, first and last (TCP/UDP;
    /// `--to-ports`); without it the original port when free, else one of
    /// its class.
    #[serde(default)]
    pub ports: Option<(u16, u16)>,
}

/// One destination NAT rule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationNatConfig {
    /// Optional name, for listings.
    #[serde(default)]
    pub name: Option<String>,
    /// The side the flow arrives from (`-i`).
    pub from: SideName,
    /// IP protocol.
    #[serde(default)]
    pub proto: Option<Proto>,
    /// Source address blocks (IPv4).
    #[serde(default)]
    pub src: Option<CidrList>,
    /// Destination address blocks (IPv4): the address the flow is sent to.
    #[serde(default)]
    pub dst: Option<CidrList>,
    /// Source ports (TCP/UDP).
    #[serde(default)]
    pub sport: Option<PortSpec>,
    /// Destination ports (TCP/UDP).
    #[serde(default)]
    pub dport: Option<PortSpec>,
    /// The new destination address.
    pub to: Ipv4Addr,
    /// The new destination port (TCP/UDP); without it the port stays.
    #[serde(default)]
    pub to_port: Option<u16>,
}

/// The `nat` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatSection {
    /// Source NAT rules, first match wins.
    #[serde(default, deserialize_with = "source_rules")]
    pub source: Vec<SourceNatConfig>,
    /// Destination NAT rules, first match wins.
    #[serde(default, deserialize_with = "destination_rules")]
    pub destination: Vec<DestinationNatConfig>,
}

/// The checks both kinds of rule share: IPv4 addresses, ports only with
/// TCP or UDP (`ports_given`: the rule's own port fields besides
/// `sport`/`dport`).
fn check_match(
    proto: Option<Proto>,
    lists: [&Option<CidrList>; 2],
    port_fields: bool,
) -> Result<(), String> {
    if matches!(proto, Some(Proto::Icmpv6)) {
        return Err("NAT is IPv4 only: no proto Icmpv6 (tunfw does no NAT66)".into());
    }
    for list in lists.into_iter().flatten() {
        if list.family()? == Some(Family::V6) {
            return Err(
                "NAT is IPv4 only: IPv6 addresses in a NAT rule (tunfw does no NAT66)".into(),
            );
        }
    }
    if port_fields && !matches!(proto, Some(Proto::Tcp) | Some(Proto::Udp)) {
        return Err("sport, dport, ports and to_port need proto: Tcp or proto: Udp".into());
    }
    Ok(())
}

impl SourceNatConfig {
    fn validate(&self) -> Result<(), String> {
        let ports = self.sport.is_some() || self.dport.is_some() || self.ports.is_some();
        check_match(self.proto, [&self.src, &self.dst], ports)?;
        if let SourceToConfig::Range(a, b) = self.to {
            if a > b {
                return Err(format!(
                    "Range({a}, {b}): the first address is after the last"
                ));
            }
        }
        if let Some((a, b)) = self.ports {
            if a > b || a == 0 {
                return Err(format!(
                    "ports: ({a}, {b}) is not a range of ports 1 to 65535"
                ));
            }
        }
        Ok(())
    }
}

impl DestinationNatConfig {
    fn validate(&self) -> Result<(), String> {
        let ports = self.sport.is_some() || self.dport.is_some() || self.to_port.is_some();
        check_match(self.proto, [&self.src, &self.dst], ports)?;
        if self.to_port == Some(0) {
            return Err("to_port: 0 is not a port".into());
        }
        Ok(())
    }
}

macro_rules! checked_list {
    ($fn:ident, $ty:ty) => {
        fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<$ty>, D::Error> {
            struct Checked($ty);
            impl<'de> Deserialize<'de> for Checked {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let rule = <$ty>::deserialize(d)?;
                    rule.validate().map_err(de::Error::custom)?;
                    Ok(Checked(rule))
                }
            }
            let rules = Vec::<Checked>::deserialize(d)?;
            if rules.len() > MAX_NAT_RULES {
                return Err(de::Error::custom(format!(
                    "{} rules: at most {MAX_NAT_RULES}",
                    rules.len()
                )));
            }
            Ok(rules.into_iter().map(|c| c.0).collect())
        }
    };
}

checked_list!(source_rules, SourceNatConfig);
checked_list!(destination_rules, DestinationNatConfig);

impl NatSection {
    /// The rules, with `masquerade` the router addresses (LAN, WAN).
    pub fn to_rules(&self, masquerade: [Option<Ipv4Addr>; 2]) -> NatRules {
        let matches = |proto: Option<Proto>,
                       src: &Option<CidrList>,
                       dst: &Option<CidrList>,
                       sport: &Option<PortSpec>,
                       dport: &Option<PortSpec>| NatMatch {
            protocol: proto.map(Proto::number),
            src: src.clone(),
            dst: dst.clone(),
            sport: sport.clone(),
            dport: dport.clone(),
        };
        NatRules {
            source: self
                .source
                .iter()
                .map(|r| SourceRule {
                    out: r.out.side(),
                    matches: matches(r.proto, &r.src, &r.dst, &r.sport, &r.dport),
                    to: match r.to {
                        SourceToConfig::Masquerade => SourceTo::Masquerade,
                        SourceToConfig::Address(a) => SourceTo::Range(a, a),
                        SourceToConfig::Range(a, b) => SourceTo::Range(a, b),
                    },
                    ports: r.ports.map(|(a, b)| IdRange::new(a, b)),
                })
                .collect(),
            destination: self
                .destination
                .iter()
                .map(|r| DestinationRule {
                    from: r.from.side(),
                    matches: matches(r.proto, &r.src, &r.dst, &r.sport, &r.dport),
                    to: r.to,
                    ports: r.to_port.map(|p| IdRange::new(p, p)),
                })
                .collect(),
            masquerade,
        }
    }

    /// The index of the first masquerade rule leaving by a side that has
    /// no router address in `router` (LAN, WAN), if any.
    pub fn masquerade_without_address(&self, router: [Option<Ipv4Addr>; 2]) -> Option<usize> {
        self.source.iter().position(|r| {
            r.to == SourceToConfig::Masquerade && router[r.out.side().index()].is_none()
        })
    }
}
