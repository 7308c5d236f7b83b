//! Real packet bytes for a described packet: an IPv4 or IPv6 header and a
//! TCP, UDP, ICMP or ICMPv6 header with correct checksums (other protocols:
//! the IP header alone).

use core::net::IpAddr;

use crate::conntrack::tuple::Tuple;
use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v4, pseudo_header_v6, sum};
use crate::wire::icmp;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// What goes into one packet besides its tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extra {
    /// TCP flags.
    pub flags: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgment number.
    pub ack: u32,
    /// TTL or hop limit.
    pub ttl: u8,
}

/// The bytes of a packet of tuple `t` (for ICMP, `t.src_id` is the
/// identifier and `t.dst_id` the type and code, as in conntrack tuples).
pub fn packet(t: &Tuple, x: &Extra) -> Vec<u8> {
    let mut l4 = match t.protocol {
        PROTO_TCP => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&t.src_id.to_be_bytes());
            h[2..4].copy_from_slice(&t.dst_id.to_be_bytes());
            h[4..8].copy_from_slice(&x.seq.to_be_bytes());
            h[8..12].copy_from_slice(&x.ack.to_be_bytes());
            h[12] = 5 << 4;
            h[13] = x.flags;
            h[14..16].copy_from_slice(&65535u16.to_be_bytes());
            h
        }
        PROTO_UDP => {
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&t.src_id.to_be_bytes());
            h[2..4].copy_from_slice(&t.dst_id.to_be_bytes());
            h[4..6].copy_from_slice(&8u16.to_be_bytes());
            h
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let (ty, code) = icmp::split_type_code(t.dst_id);
            let mut h = vec![0u8; 8];
            h[0] = ty;
            h[1] = code;
            h[4..6].copy_from_slice(&t.src_id.to_be_bytes());
            h[6..8].copy_from_slice(&1u16.to_be_bytes());
            h
        }
        _ => Vec::new(),
    };
    let check_at = match t.protocol {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        PROTO_ICMP | PROTO_ICMPV6 => Some(2),
        _ => None,
    };
    let pseudo = match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo_header_v4(s.octets(), d.octets(), t.protocol, l4.len() as u16)
        }
        (s, d) => pseudo_header_v6(v6(s), v6(d), t.protocol, l4.len() as u32),
    };
    if let Some(at) = check_at {
        // ICMP (IPv4) has no pseudo-header.
        let c = if t.protocol == PROTO_ICMP {
            internet_checksum(&[&l4])
        } else {
            !fold(pseudo + sum(&l4))
        };
        let c = if t.protocol == PROTO_UDP && c == 0 {
            0xffff
        } else {
            c
        };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut out = match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            h[8] = x.ttl;
            h[9] = t.protocol;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = internet_checksum(&[&h]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h
        }
        (s, d) => {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            h[6] = t.protocol;
            h[7] = x.ttl;
            h[8..24].copy_from_slice(&v6(s));
            h[24..40].copy_from_slice(&v6(d));
            h
        }
    };
    out.extend_from_slice(&l4);
    out
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{parse, Transport};

    #[test]
    fn built_packets_parse_with_their_checksums() {
        let x = Extra {
            flags: 0x12,
            seq: 7,
            ack: 9,
            ttl: 64,
        };
        for (src, dst, proto, sid, did) in [
            ("10.0.0.2", "192.0.2.1", PROTO_TCP, 5555, 80),
            ("10.0.0.2", "192.0.2.1", PROTO_UDP, 5555, 53),
            (
                "10.0.0.2",
                "192.0.2.1",
                PROTO_ICMP,
                7,
                icmp::type_code(8, 0),
            ),
            ("fd00::2", "fd00:1::1", PROTO_TCP, 5555, 80),
            ("fd00::2", "fd00:1::1", PROTO_UDP, 5555, 53),
            (
                "fd00::2",
                "fd00:1::1",
                PROTO_ICMPV6,
                7,
                icmp::type_code(128, 0),
            ),
        ] {
            let t = Tuple {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                protocol: proto,
                src_id: sid,
                dst_id: did,
            };
            let bytes = packet(&t, &x);
            let pkt = parse(&bytes).unwrap_or_else(|e| panic!("{t:?}: {e:?}"));
            assert_eq!(Tuple::of_packet(&pkt), t);
            if let Transport::Tcp(seg) = pkt.transport {
                assert_eq!(seg.flags, 0x12);
            }
        }
    }
}
