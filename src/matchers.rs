//! Values rules match against: address blocks (CIDRs, either family) and
//! port sets, parsed from the config's text forms. A leaf module: matching
//! is a pure, allocation-free test on values built when the config was
//! loaded.

use core::fmt;
use core::net::IpAddr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// An IP family: what a rule's addresses (or its ICMP protocol, or its
/// `family` field: `Ipv4`, `Ipv6`) tie it to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum Family {
    /// IPv4.
    #[serde(rename = "Ipv4")]
    V4,
    /// IPv6.
    #[serde(rename = "Ipv6")]
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// `IPv4` or `IPv6`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
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

    /// The block's address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The block's prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The block's family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
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

/// Most address blocks in one [`CidrList`] (a rule's `src` or `dst`).
///
/// A packet is tested against the blocks one by one (a mask and a compare
/// each), so a list's length is time spent on every packet the rule sees:
/// an address in none of 256 blocks takes about 270 ns to refuse (measured
/// on the project's machine), under a microsecond per rule; a longer list
/// belongs in a shorter set of wider prefixes. iptables has no such list:
/// `-s a,b,c` becomes one rule per address.
pub const MAX_CIDRS: usize = 256;

/// One CIDR or a list of them, from a RON string or list of strings; a
/// list has 1 to [`MAX_CIDRS`] blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrList(pub Vec<Cidr>);

impl CidrList {
    /// The family of the blocks when they all have one, `Err` naming both
    /// when the list mixes them.
    pub fn family(&self) -> Result<Option<Family>, String> {
        let mut found = None;
        for c in &self.0 {
            match found {
                Some((f, first)) if f != c.family() => {
                    return Err(format!(
                        "{first} and {c} are of two families: a rule matches IPv4 or IPv6, write two rules"
                    ))
                }
                Some(_) => {}
                None => found = Some((c.family(), c)),
            }
        }
        Ok(found.map(|(f, _)| f))
    }

    /// Whether `ip` is in any of the blocks.
    pub fn matches(&self, ip: IpAddr) -> bool {
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
                while out.len() < MAX_CIDRS {
                    let Some(s) = seq.next_element::<String>()? else {
                        break;
                    };
                    out.push(Cidr::parse(&s).map_err(de::Error::custom)?);
                }
                // An element beyond the bound is refused where it starts.
                if out.len() == MAX_CIDRS {
                    seq.next_element::<OneTooMany>()?;
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

/// Most elements (single ports or ranges) in one [`PortSpec`].
///
/// A packet's port is tested against the elements one by one, so the
/// length of a spec is time spent on every packet its rule sees: a port in
/// none of 64 elements (256 bytes of ranges, a few cache lines) takes about
/// 30 ns to refuse (measured on the project's machine), and ranges say any
/// set of ports in fewer elements.
/// It is more than iptables' multiport allows (15 ports, a range counting
/// as two: see [`MULTIPORT_MAX_PORTS`]), so every imported rule fits.
pub const MAX_PORT_ELEMENTS: usize = 64;

/// Most ports in an iptables `-m multiport` list, a range counting as two
/// (`XT_MULTI_PORTS` in the kernel's `xt_multiport.h`): the limit
/// `tunfw import-iptables` keeps.
pub const MULTIPORT_MAX_PORTS: usize = 15;

/// An address beyond [`MAX_CIDRS`]: reading one is an error, raised at it.
enum OneTooMany {}

impl<'de> Deserialize<'de> for OneTooMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OneTooMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX_CIDRS} addresses in one list")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<OneTooMany, E> {
                Err(E::custom(format!(
                    "more than {MAX_CIDRS} addresses in one list"
                )))
            }
        }
        d.deserialize_str(V)
    }
}

/// A set of ports: single ports and inclusive ranges, iptables style:
/// `"21"`, `"1024:"` (1024 to 65535), `":1023"`, `"6000:6010"`, lists
/// separated by commas (`"20,21,1024:"`), or a bare number; 1 to
/// [`MAX_PORT_ELEMENTS`] elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSpec(pub Vec<(u16, u16)>);

impl PortSpec {
    /// Parse the text form: at most [`MAX_PORT_ELEMENTS`] elements, each a
    /// port or a range that is not upside down.
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            if ranges.len() == MAX_PORT_ELEMENTS {
                return Err(format!(
                    "more than {MAX_PORT_ELEMENTS} ports or ranges in one port spec"
                ));
            }
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

impl fmt::Display for CidrList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PortSpec {
    /// iptables' form: `21`, `1024:`, `6000:6010`, joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match (lo, hi) {
                (l, h) if l == h => write!(f, "{l}")?,
                (l, 65535) => write!(f, "{l}:")?,
                (l, h) => write!(f, "{l}:{h}")?,
            }
        }
        Ok(())
    }
}

/// A reference to a named set (`"@name"` in a rule), resolved to the set's
/// index when the config is read ([`SetRef::index`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRef {
    /// The set's name, without the `@`.
    pub name: String,
    /// Its index among the config's sets (`usize::MAX` until resolved).
    pub index: usize,
}

impl SetRef {
    fn parse(text: &str) -> Option<Result<SetRef, String>> {
        let name = text.trim().strip_prefix('@')?;
        if name.is_empty() {
            return Some(Err("a set reference is @ and a set name".into()));
        }
        Some(Ok(SetRef {
            name: name.to_string(),
            index: usize::MAX,
        }))
    }
}

/// What a rule's `src` or `dst` matches: address blocks, or a named set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrMatch {
    /// Blocks written in the rule.
    Blocks(CidrList),
    /// A named address set (`"@name"`).
    Set(SetRef),
}

impl AddrMatch {
    /// The family of the blocks (a set may hold either: `None`).
    pub fn family(&self) -> Result<Option<Family>, String> {
        match self {
            AddrMatch::Blocks(b) => b.family(),
            AddrMatch::Set(_) => Ok(None),
        }
    }

    /// The set it refers to, if any.
    pub fn set(&self) -> Option<&SetRef> {
        match self {
            AddrMatch::Set(r) => Some(r),
            AddrMatch::Blocks(_) => None,
        }
    }

    /// The set it refers to, to resolve.
    pub fn set_mut(&mut self) -> Option<&mut SetRef> {
        match self {
            AddrMatch::Set(r) => Some(r),
            AddrMatch::Blocks(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for AddrMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AddrMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address, a CIDR, a list of them, or \"@set\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AddrMatch, E> {
                match SetRef::parse(s) {
                    Some(r) => r.map(AddrMatch::Set).map_err(E::custom),
                    None => CidrList::deserialize(de::value::StrDeserializer::<E>::new(s))
                        .map(AddrMatch::Blocks),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<AddrMatch, A::Error> {
                CidrList::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(AddrMatch::Blocks)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a rule's `sport` or `dport` matches: ports, or a named set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortMatch {
    /// Ports written in the rule.
    Ports(PortSpec),
    /// A named port set (`"@name"`).
    Set(SetRef),
}

impl PortMatch {
    /// The set it refers to, if any.
    pub fn set(&self) -> Option<&SetRef> {
        match self {
            PortMatch::Set(r) => Some(r),
            PortMatch::Ports(_) => None,
        }
    }

    /// The set it refers to, to resolve.
    pub fn set_mut(&mut self) -> Option<&mut SetRef> {
        match self {
            PortMatch::Set(r) => Some(r),
            PortMatch::Ports(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for PortMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a port spec string like \"1024:\", or \"@set\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortMatch, E> {
                PortSpec::deserialize(de::value::U64Deserializer::<E>::new(v)).map(PortMatch::Ports)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortMatch, E> {
                PortSpec::deserialize(de::value::I64Deserializer::<E>::new(v)).map(PortMatch::Ports)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortMatch, E> {
                match SetRef::parse(s) {
                    Some(r) => r.map(PortMatch::Set).map_err(E::custom),
                    None => PortSpec::parse(s).map(PortMatch::Ports).map_err(E::custom),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::Blocks(b) => b.fmt(f),
            AddrMatch::Set(r) => write!(f, "@{}", r.name),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Ports(p) => p.fmt(f),
            PortMatch::Set(r) => write!(f, "@{}", r.name),
        }
    }
}
