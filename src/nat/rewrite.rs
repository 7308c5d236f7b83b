//! Rewriting an IPv4 packet's addresses and ports in place, every checksum
//! that covers them patched incrementally (RFC 1624), as Linux's
//! `nf_nat_ipv4_manip_pkt` and the per-protocol `*_manip_pkt` functions
//! (net/netfilter/nf_nat_proto.c) do.
//!
//! What is patched: the IPv4 header checksum for an address; the TCP or
//! UDP checksum for an address (the pseudo-header) and a port; the ICMP
//! checksum for a query identifier. A UDP checksum of 0 (none, over IPv4)
//! stays 0, and a patched one that comes out 0 is written 0xffff. With a
//! partial transport checksum (the virtio-net header's `NEEDS_CSUM`: the
//! field holds the pseudo-header's sum, for the device to finish over the
//! data) only an address change is patched into it, not inverted, and a port
//! change not at all: the device sums the ports with the data, as Linux's
//! `inet_proto_csum_replace4` treats `CHECKSUM_PARTIAL`. In an ICMP error's
//! quoted packet a TCP checksum is patched only when the quote holds the
//! whole 20-byte TCP header (Linux: `tcp_manip_pkt`'s `hdrsize`).
//!
//! Every access is bounds-checked: a buffer too short for a field leaves
//! that field alone and the function returns false (the callers only pass
//! packets the parser checked, so that does not happen).

use core::net::{IpAddr, Ipv4Addr};

use crate::conntrack::tuple::Tuple;
use crate::wire::checksum::{fold, internet_checksum};
use crate::wire::{ipv4, tcp, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Offset of the UDP checksum in its header.
const UDP_CHECKSUM: usize = 6;
/// Offset of the ICMP checksum and query identifier in its header.
const ICMP_CHECKSUM: usize = 2;
const ICMP_IDENT: usize = 4;
/// UDP-Lite (RFC 3828) and DCCP (RFC 4340): their checksums cover the
/// pseudo-header.
const PROTO_UDPLITE: u8 = 136;
const PROTO_DCCP: u8 = 33;
/// Bytes of ICMP header before an error's quoted packet.
const ICMP_HEADER: usize = 8;

/// The one's complement change of a checksum's sum when the covered bytes
/// `old` become `new` (an even number of bytes): for each 16-bit word, the
/// old word's complement plus the new word (RFC 1624, eqn. 3), unfolded.
fn delta(old: &[u8], new: &[u8]) -> u64 {
    old.chunks_exact(2)
        .zip(new.chunks_exact(2))
        .map(|(o, n)| {
            u64::from(!u16::from_be_bytes([o[0], o[1]]))
                + u64::from(u16::from_be_bytes([n[0], n[1]]))
        })
        .sum()
}

/// Write `new` over `field` (the same length); the change, for the
/// checksums that cover it (0 when nothing changed).
#[inline(always)]
pub(super) fn set(field: &mut [u8], new: &[u8]) -> u64 {
    if field == new {
        return 0;
    }
    let d = delta(field, new);
    field.copy_from_slice(new);
    d
}

/// A complete checksum `check` after its covered bytes changed by `d`.
#[inline(always)]
pub(super) fn patched(check: u16, d: u64) -> u16 {
    if d == 0 {
        check
    } else {
        !fold(u64::from(!check) + d)
    }
}

/// The 16-bit big-endian field at `at`, if `b` holds it.
fn read16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The 16-bit big-endian field at `at..at + 2` of `b` (in bounds).
#[inline(always)]
pub(super) fn field16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Replace the addresses of the IPv4 header `ip` (at least 20 bytes) with
/// `src` and `dst`, patching its checksum; the change, for a transport
/// checksum over the pseudo-header.
fn set_addresses(ip: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> u64 {
    let d = set(&mut ip[ipv4::SRC..ipv4::SRC + 4], &src.octets())
        + set(&mut ip[ipv4::DST..ipv4::DST + 4], &dst.octets());
    let check = patched(field16(ip, ipv4::CHECKSUM), d);
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    d
}

/// Rewrite the IPv4 packet starting at `l3` in `buf` (its header
/// `header_len` bytes, its transport after it up to the end of `buf`) so
/// that its tuple goes from `from` to `to`: see the module documentation.
/// `partial`: its transport checksum is partial. `quoted`: this is the
/// packet an ICMP error quotes (a TCP checksum only with a whole header).
/// False, with nothing or only the IP header changed, when the buffer is
/// too short for a field or a tuple is not IPv4.
pub fn rewrite_v4(
    buf: &mut [u8],
    l3: usize,
    header_len: usize,
    from: &Tuple,
    to: &Tuple,
    partial: bool,
    quoted: bool,
) -> bool {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (to.src, to.dst) else {
        return false;
    };
    let (Some(ip), l4) = (buf.get_mut(l3..l3 + ipv4::MIN_HEADER_LEN), l3 + header_len) else {
        return false;
    };
    let addresses = set_addresses(ip, src, dst);
    let ports = (u32::from(to.src_id) << 16 | u32::from(to.dst_id)).to_be_bytes();
    let Some(l4) = buf.get_mut(l4..) else {
        return false;
    };
    match from.protocol {
        PROTO_TCP | PROTO_UDP => {
            let at = if from.protocol == PROTO_TCP {
                tcp::CHECKSUM
            } else {
                UDP_CHECKSUM
            };
            if l4.len() < 4 {
                return false;
            }
            let ids = set(&mut l4[..4], &ports);
            // A quote may end before the checksum (TCP's at 16).
            if quoted && l4.len() < at.max(UDP_CHECKSUM) + 2 || l4.len() < at + 2 {
                return quoted;
            }
            let check = field16(l4, at);
            let new = match (partial, from.protocol) {
                // The field holds the pseudo-header's sum: addresses only.
                (true, _) => fold(u64::from(check) + addresses),
                (false, PROTO_UDP) if check == 0 => 0,
                (false, PROTO_UDP) => match patched(check, addresses + ids) {
                    0 => 0xffff,
                    c => c,
                },
                (false, _) => patched(check, addresses + ids),
            };
            l4[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        PROTO_ICMP => {
            if l4.len() < ICMP_IDENT + 2 {
                return false;
            }
            let ids = set(
                &mut l4[ICMP_IDENT..ICMP_IDENT + 2],
                &to.src_id.to_be_bytes(),
            );
            if !partial {
                let check = patched(field16(l4, ICMP_CHECKSUM), ids);
                l4[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
            }
        }
        // UDP-Lite and DCCP: a pseudo-header checksum at offset 6 (their
        // ports are not remapped).
        PROTO_UDPLITE | PROTO_DCCP => {
            if l4.len() < UDP_CHECKSUM + 2 {
                return false;
            }
            let check = patched(field16(l4, UDP_CHECKSUM), addresses);
            l4[UDP_CHECKSUM..UDP_CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
        }
        _ => {}
    }
    true
}

/// Translate an ICMP error in `buf` (an IPv4 header of `header_len` bytes,
/// the ICMP header, the quoted packet) about a translated flow, as Linux's
/// `nf_nat_icmp_reply_translation`: the quoted packet's tuple goes from
/// `quoted_from` to `quoted_to`, the outer source and destination become
/// `outer_src` and `outer_dst` where given, and the ICMP checksum is
/// computed again over the whole message (its quoted checksums changed).
pub fn translate_icmp_error(
    buf: &mut [u8],
    header_len: usize,
    quoted_from: &Tuple,
    quoted_to: &Tuple,
    outer_src: Option<IpAddr>,
    outer_dst: Option<IpAddr>,
) -> bool {
    let inner = header_len + ICMP_HEADER;
    let Some(inner_len) = buf.get(inner).map(|b| usize::from(b & 0x0f) * 4) else {
        return false;
    };
    let ok = rewrite_v4(buf, inner, inner_len, quoted_from, quoted_to, false, true);
    let total = read16(buf, ipv4::TOTAL_LEN).map_or(buf.len(), usize::from);
    if let Some(icmp) = buf.get_mut(header_len..total.min(buf.len())) {
        if icmp.len() >= ICMP_HEADER {
            icmp[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].fill(0);
            let c = internet_checksum(&[icmp]);
            icmp[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
    let Some(ip) = buf.get_mut(..ipv4::MIN_HEADER_LEN) else {
        return false;
    };
    let read = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let (src, dst) = (read(ipv4::SRC), read(ipv4::DST));
    // The ICMP checksum (computed above) does not cover the outer
    // addresses: only the header checksum does.
    let v4 = |a: Option<IpAddr>, or: Ipv4Addr| match a {
        Some(IpAddr::V4(a)) => a,
        _ => or,
    };
    set_addresses(ip, v4(outer_src, src), v4(outer_dst, dst));
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{pseudo_header_v4, sum};
    use core::net::Ipv4Addr;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    /// An IPv4 packet of `protocol` with `transport` after a 20-byte header,
    /// every checksum right.
    fn packet(protocol: u8, src: [u8; 4], dst: [u8; 4], transport: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(transport);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let c = internet_checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        fix_transport(&mut p, 0);
        p
    }

    /// Compute the transport checksum of the packet at `l3` from scratch.
    fn fix_transport(p: &mut [u8], l3: usize) {
        let protocol = p[l3 + 9];
        let total = u16::from_be_bytes([p[l3 + 2], p[l3 + 3]]) as usize;
        let l4 = l3 + 20;
        let end = (l3 + total).min(p.len());
        let field = match protocol {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            _ => 2,
        };
        p[l4 + field..l4 + field + 2].fill(0);
        let c = checksum_of(p, l3, l4, end, protocol);
        p[l4 + field..l4 + field + 2].copy_from_slice(&c.to_be_bytes());
    }

    fn checksum_of(p: &[u8], l3: usize, l4: usize, end: usize, protocol: u8) -> u16 {
        let data = &p[l4..end];
        if protocol == PROTO_ICMP {
            return internet_checksum(&[data]);
        }
        let src: [u8; 4] = p[l3 + 12..l3 + 16].try_into().unwrap();
        let dst: [u8; 4] = p[l3 + 16..l3 + 20].try_into().unwrap();
        let s = pseudo_header_v4(src, dst, protocol, data.len() as u16) + sum(data);
        !crate::wire::checksum::fold(s)
    }

    fn tuple_of(p: &[u8]) -> Tuple {
        let l4 = 20;
        let (src_id, dst_id) = match p[9] {
            PROTO_ICMP => (read16(p, l4 + 4).unwrap(), read16(p, l4).unwrap()),
            _ => (read16(p, l4).unwrap(), read16(p, l4 + 2).unwrap()),
        };
        Tuple {
            src: v4(p[12..16].try_into().unwrap()),
            dst: v4(p[16..20].try_into().unwrap()),
            protocol: p[9],
            src_id,
            dst_id,
        }
    }

    fn all_checksums_right(p: &[u8]) -> bool {
        let l4 = 20;
        let ok_ip = internet_checksum(&[&p[..20]]) == 0;
        let ok_l4 = match p[9] {
            PROTO_UDP if read16(p, l4 + 6) == Some(0) => true,
            protocol => {
                let data = &p[l4..];
                if protocol == PROTO_ICMP {
                    internet_checksum(&[data]) == 0
                } else {
                    let src: [u8; 4] = p[12..16].try_into().unwrap();
                    let dst: [u8; 4] = p[16..20].try_into().unwrap();
                    let s = pseudo_header_v4(src, dst, protocol, data.len() as u16) + sum(data);
                    crate::wire::checksum::fold(s) == 0xffff
                }
            }
        };
        ok_ip && ok_l4
    }

    fn tcp_header() -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0x12;
        t.extend_from_slice(b"some payload, odd length");
        t
    }

    #[test]
    fn rewritten_checksums_equal_recomputed_ones() {
        let udp = {
            let mut u = vec![0x9c, 0x40, 0, 53, 0, 13, 0, 0];
            u.extend_from_slice(b"hello");
            u
        };
        let echo = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3];
        for (protocol, transport) in [
            (PROTO_TCP, tcp_header()),
            (PROTO_UDP, udp),
            (PROTO_ICMP, echo),
        ] {
            let mut p = packet(protocol, [10, 1, 0, 5], [10, 2, 0, 2], &transport);
            assert!(all_checksums_right(&p));
            let from = tuple_of(&p);
            let to = Tuple {
                src: v4([10, 2, 0, 1]),
                src_id: 1025,
                ..from
            };
            assert!(rewrite_v4(&mut p, 0, 20, &from, &to, false, false));
            assert_eq!(tuple_of(&p), to, "{protocol}");
            assert!(all_checksums_right(&p), "{protocol}");
            // And back: the reply direction's rewrite.
            assert!(rewrite_v4(&mut p, 0, 20, &to, &from, false, false));
            assert_eq!(tuple_of(&p), from);
            assert!(all_checksums_right(&p));
        }
    }

    #[test]
    fn a_udp_checksum_of_zero_stays_zero() {
        let mut p = packet(
            PROTO_UDP,
            [10, 1, 0, 5],
            [10, 2, 0, 2],
            &[0x9c, 0x40, 0, 53, 0, 8, 0, 0],
        );
        p[26..28].fill(0);
        let from = tuple_of(&p);
        let to = Tuple {
            src: v4([10, 2, 0, 1]),
            ..from
        };
        assert!(rewrite_v4(&mut p, 0, 20, &from, &to, false, false));
        assert_eq!(read16(&p, 26), Some(0));
        assert!(all_checksums_right(&p));
    }

    #[test]
    fn a_partial_checksum_gets_the_address_change_only() {
        let mut p = packet(PROTO_TCP, [10, 1, 0, 5], [10, 2, 0, 2], &tcp_header());
        // A partial checksum: the folded pseudo-header sum, not inverted.
        let len = (p.len() - 20) as u16;
        let partial = |p: &[u8]| {
            let src: [u8; 4] = p[12..16].try_into().unwrap();
            let dst: [u8; 4] = p[16..20].try_into().unwrap();
            crate::wire::checksum::fold(pseudo_header_v4(src, dst, PROTO_TCP, len))
        };
        let before = partial(&p);
        p[36..38].copy_from_slice(&before.to_be_bytes());
        let from = tuple_of(&p);
        let to = Tuple {
            src: v4([192, 0, 2, 77]),
            src_id: 2000,
            ..from
        };
        assert!(rewrite_v4(&mut p, 0, 20, &from, &to, true, false));
        assert_eq!(
            read16(&p, 36),
            Some(partial(&p)),
            "the new pseudo-header's sum"
        );
        assert_eq!(internet_checksum(&[&p[..20]]), 0);
    }

    #[test]
    fn an_icmp_error_is_translated_inside_and_out() {
        // The server's port unreachable about a masqueraded UDP datagram
        // (10.2.0.1:1025 -> 10.2.0.2:53), back to the client 10.1.0.5:40000.
        let quoted = packet(
            PROTO_UDP,
            [10, 2, 0, 1],
            [10, 2, 0, 2],
            &[0x04, 0x01, 0, 53, 0, 8, 0, 0],
        );
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        let mut p = packet(PROTO_ICMP, [10, 2, 0, 2], [10, 2, 0, 1], &icmp);
        let inner_from = Tuple {
            src: v4([10, 2, 0, 1]),
            dst: v4([10, 2, 0, 2]),
            protocol: PROTO_UDP,
            src_id: 1025,
            dst_id: 53,
        };
        let inner_to = Tuple {
            src: v4([10, 1, 0, 5]),
            src_id: 40000,
            ..inner_from
        };
        assert!(translate_icmp_error(
            &mut p,
            20,
            &inner_from,
            &inner_to,
            None,
            Some(v4([10, 1, 0, 5]))
        ));
        assert_eq!(&p[16..20], &[10, 1, 0, 5]);
        assert!(all_checksums_right(&p), "outer header and ICMP");
        let inner = &p[28..];
        assert_eq!(tuple_of(inner), inner_to);
        assert!(
            all_checksums_right(inner),
            "the quoted header and UDP checksum"
        );
    }
}
