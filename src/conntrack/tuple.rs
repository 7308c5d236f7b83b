//! The address/port tuple of a packet, in either IP family, its inverse,
//! and the direction-independent key the flow index files a flow under.

use core::hash::{BuildHasher, Hash, Hasher};
use core::net::IpAddr;
use std::collections::hash_map::RandomState;

use serde::Serialize;

use crate::packet::{Packet, Transport};
use crate::wire::{icmp, icmpv6, protocol_name, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Direction of a packet relative to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Dir {
    /// Same direction as the flow's first packet.
    Original = 0,
    /// The answering direction.
    Reply = 1,
}

impl Dir {
    /// The opposite direction.
    pub fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }

    /// 0 for the original direction, 1 for the reply: the slot in per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A flow key in one direction, as the kernel's `nf_conntrack_tuple`, for
/// either IP family (40 bytes).
///
/// For TCP and UDP the ids are the ports; for ICMP and ICMPv6 queries
/// `src_id` is the identifier and `dst_id` is the type and code
/// ([`icmp::type_code`]); for other protocols both are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port, or ICMP identifier.
    pub src_id: u16,
    /// Destination port, or ICMP type and code.
    pub dst_id: u16,
}

impl Tuple {
    /// The tuple of a parsed packet.
    pub fn of_packet(pkt: &Packet<'_>) -> Tuple {
        let (src_id, dst_id) = match pkt.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp(u) => (u.src_port, u.dst_port),
            Transport::Icmp(i) | Transport::Icmpv6(i) => {
                (i.ident, icmp::type_code(i.icmp_type, i.code))
            }
            Transport::Other => (0, 0),
        };
        Tuple {
            src: pkt.ip.src,
            dst: pkt.ip.dst,
            protocol: pkt.ip.protocol,
            src_id,
            dst_id,
        }
    }

    /// The tuple of the answering direction; `None` for ICMP types that
    /// have no answer (only a query can have a flow).
    pub fn invert(&self) -> Option<Tuple> {
        let (src_id, dst_id) = match self.protocol {
            PROTO_TCP | PROTO_UDP => (self.dst_id, self.src_id),
            PROTO_ICMP | PROTO_ICMPV6 => {
                let (ty, code) = icmp::split_type_code(self.dst_id);
                let answer = query_inverse(self.protocol, ty)?;
                (self.src_id, icmp::type_code(answer, code))
            }
            _ => (0, 0),
        };
        Some(Tuple {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            src_id,
            dst_id,
        })
    }

    /// `proto src:port -> dst:port` (ICMP: `id N type T/C`), for logs and listings.
    pub fn describe(&self) -> String {
        match self.protocol {
            PROTO_TCP | PROTO_UDP => format!(
                "{} {} -> {}",
                protocol_name(self.protocol),
                Endpoint(self.src, self.src_id),
                Endpoint(self.dst, self.dst_id)
            ),
            PROTO_ICMP | PROTO_ICMPV6 => {
                let (ty, code) = icmp::split_type_code(self.dst_id);
                format!(
                    "{} {} -> {} id {} type {ty}/{code}",
                    protocol_name(self.protocol),
                    self.src,
                    self.dst,
                    self.src_id
                )
            }
            p => format!("proto {p} {} -> {}", self.src, self.dst),
        }
    }
}

/// The type answering query type `ty` of the ICMP-like `protocol` (ICMP or
/// ICMPv6), and back; `None` for other types and protocols.
fn query_inverse(protocol: u8, ty: u8) -> Option<u8> {
    match protocol {
        PROTO_ICMP => icmp::inverse_type(ty),
        PROTO_ICMPV6 => icmpv6::inverse_type(ty),
        _ => None,
    }
}

/// Whether `ty` is a query reply of the ICMP-like `protocol`.
fn is_query_reply(protocol: u8, ty: u8) -> bool {
    match protocol {
        PROTO_ICMP => icmp::is_query_reply(ty),
        PROTO_ICMPV6 => icmpv6::is_query_reply(ty),
        _ => false,
    }
}

/// `a.b.c.d:port`, or `[v6]:port`.
struct Endpoint(IpAddr, u16);

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// The index key of a flow: a tuple and its inverse give the same key, so
/// one index entry finds a flow from either direction. TCP and UDP: the
/// two endpoints in a fixed order; ICMP queries: the requester first and
/// the request type, whichever way the packet goes (so A->B and B->A echo
/// requests with one id stay two flows, as in Linux); other protocols: the
/// two addresses in a fixed order. A flow whose reply tuple is not the
/// inverse of its original (NAT) would be filed under each tuple's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowKey {
    /// The first endpoint's address, as bits (IPv4 in the low 32).
    a: u128,
    /// The second endpoint's address.
    b: u128,
    a_id: u16,
    b_id: u16,
    protocol: u8,
    /// Both addresses are IPv4: the key is 13 bytes, hashed in one write.
    v4: bool,
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // SipHash pays per call: one write of the significant bytes, 13
        // for IPv4 (in 16), 37 for IPv6 (the addresses, the ids and the
        // protocol: every bit of the key, so the encoding stays injective).
        let ids = u32::from(self.a_id) << 16 | u32::from(self.b_id);
        if self.v4 {
            state.write_u128(
                self.a << 96 | self.b << 64 | u128::from(ids) << 32 | u128::from(self.protocol),
            );
        } else {
            let mut bytes = [0u8; 37];
            bytes[..16].copy_from_slice(&self.a.to_ne_bytes());
            bytes[16..32].copy_from_slice(&self.b.to_ne_bytes());
            bytes[32..36].copy_from_slice(&ids.to_ne_bytes());
            bytes[36] = self.protocol;
            state.write(&bytes);
        }
    }
}

/// An address as the key's bits.
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl FlowKey {
    /// The key of `t`'s flow.
    pub(crate) fn of(t: &Tuple) -> FlowKey {
        let v4 = t.src.is_ipv4() && t.dst.is_ipv4();
        let (src, dst) = (bits(t.src), bits(t.dst));
        if matches!(t.protocol, PROTO_ICMP | PROTO_ICMPV6) {
            let (ty, code) = icmp::split_type_code(t.dst_id);
            let (requester, responder, ty) = match query_inverse(t.protocol, ty) {
                Some(request) if is_query_reply(t.protocol, ty) => (dst, src, request),
                _ => (src, dst, ty),
            };
            return FlowKey {
                a: requester,
                b: responder,
                a_id: t.src_id,
                b_id: icmp::type_code(ty, code),
                protocol: t.protocol,
                v4,
            };
        }
        let (lo, hi) = if (src, t.src_id) <= (dst, t.dst_id) {
            ((src, t.src_id), (dst, t.dst_id))
        } else {
            ((dst, t.dst_id), (src, t.src_id))
        };
        FlowKey {
            a: lo.0,
            b: hi.0,
            a_id: lo.1,
            b_id: hi.1,
            protocol: t.protocol,
            v4,
        }
    }
}

/// The keyed hash the index files `t`'s flow under: of its [`FlowKey`], so
/// a tuple and its inverse give the same hash.
pub(crate) fn key_hash(hasher: &RandomState, t: &Tuple) -> u64 {
    hasher.hash_one(FlowKey::of(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn t(src: IpAddr, dst: IpAddr, protocol: u8, src_id: u16, dst_id: u16) -> Tuple {
        Tuple {
            src,
            dst,
            protocol,
            src_id,
            dst_id,
        }
    }

    #[test]
    fn a_tuple_and_its_inverse_share_a_key_in_both_families() {
        let v4 = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let v6 = (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        );
        for (a, b) in [v4, v6] {
            for (proto, sid, did) in [
                (PROTO_TCP, 40000, 80),
                (PROTO_UDP, 53, 53),
                (PROTO_ICMP, 7, icmp::type_code(icmp::ECHO_REQUEST, 0)),
                (PROTO_ICMPV6, 7, icmp::type_code(icmpv6::ECHO_REQUEST, 0)),
                (PROTO_ICMPV6, 9, icmp::type_code(icmpv6::NI_QUERY, 1)),
                (47, 0, 0),
            ] {
                let orig = t(a, b, proto, sid, did);
                let reply = orig.invert().expect("invertible");
                assert_eq!(FlowKey::of(&orig), FlowKey::of(&reply), "{orig:?}");
                assert_eq!(reply.invert(), Some(orig));
            }
        }
    }

    #[test]
    fn echo_requests_each_way_are_two_flows() {
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        );
        let echo = icmp::type_code(icmp::ECHO_REQUEST, 0);
        let ab = FlowKey::of(&t(a, b, PROTO_ICMP, 7, echo));
        let ba = FlowKey::of(&t(b, a, PROTO_ICMP, 7, echo));
        assert_ne!(ab, ba, "the requester comes first");
        // An ICMP type without an answer has no inverse (no flow).
        let unreach = t(
            a,
            b,
            PROTO_ICMP,
            0,
            icmp::type_code(icmp::DEST_UNREACHABLE, 3),
        );
        assert_eq!(unreach.invert(), None);
    }

    #[test]
    fn an_ipv4_key_differs_from_the_ipv6_key_of_the_same_bits() {
        let v4 = t(
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 2)),
            PROTO_UDP,
            1,
            2,
        );
        let v6 = t(
            IpAddr::V6(Ipv6Addr::from(1u128)),
            IpAddr::V6(Ipv6Addr::from(2u128)),
            PROTO_UDP,
            1,
            2,
        );
        assert_ne!(FlowKey::of(&v4), FlowKey::of(&v6));
    }

    #[test]
    fn every_field_of_an_ipv6_key_reaches_the_hash() {
        let hasher = RandomState::new();
        let a = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        let b = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
        let base = t(a, b, PROTO_TCP, 40000, 443);
        let high = IpAddr::V6(Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1));
        for other in [
            t(high, b, PROTO_TCP, 40000, 443),
            t(
                a,
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3)),
                PROTO_TCP,
                40000,
                443,
            ),
            t(a, b, PROTO_UDP, 40000, 443),
            t(a, b, PROTO_TCP, 40001, 443),
            t(a, b, PROTO_TCP, 40000, 444),
        ] {
            assert_ne!(
                key_hash(&hasher, &base),
                key_hash(&hasher, &other),
                "{other:?}"
            );
        }
        let reply = base.invert().unwrap();
        assert_eq!(key_hash(&hasher, &base), key_hash(&hasher, &reply));
    }

    #[test]
    fn describe_brackets_ipv6_endpoints() {
        let v6 = t(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            PROTO_TCP,
            40000,
            443,
        );
        assert_eq!(v6.describe(), "tcp [fd00::1]:40000 -> [fd00::2]:443");
    }
}
