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

use core::net::IpAddr;

use crate::conntrack::tuple::Tuple;
use crate::wire::checksum::{internet_checksum, update16};
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

/// How a transport checksum field is patched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// A complete checksum (inverted sum).
    Full,
    /// A UDP checksum: 0 means none and stays; a result of 0 is sent 0xffff.
    Udp,
    /// A partial sum (not inverted) of the pseudo-header: addresses only.
    Partial,
}

fn read16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

fn write16(buf: &mut [u8], at: usize, v: u16) -> bool {
    match buf.get_mut(at..at + 2) {
        Some(b) => {
            b.copy_from_slice(&v.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Patch the checksum at `at` for a covered word that went from `old` to
/// `new`.
fn patch(buf: &mut [u8], at: usize, field: Field, old: u16, new: u16) -> bool {
    let Some(check) = read16(buf, at) else {
        return false;
    };
    let patched = match field {
        Field::Full => update16(check, old, new),
        Field::Udp if check == 0 => return true,
        Field::Udp => match update16(check, old, new) {
            0 => 0xffff,
            c => c,
        },
        Field::Partial => !update16(!check, old, new),
    };
    write16(buf, at, patched)
}

/// Replace the 16-bit word at `at` with `new`, patching the checksums in
/// `checks` (offset, kind) for it; false when something is out of bounds.
fn replace16(buf: &mut [u8], at: usize, new: u16, checks: &[(usize, Field)]) -> bool {
    let Some(old) = read16(buf, at) else {
        return false;
    };
    if old == new {
        return true;
    }
    let mut ok = write16(buf, at, new);
    for &(c, field) in checks {
        ok &= patch(buf, c, field, old, new);
    }
    ok
}

fn v4_words(a: IpAddr) -> Option<[u16; 2]> {
    match a {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some([
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            ])
        }
        IpAddr::V6(_) => None,
    }
}

/// Rewrite the IPv4 packet starting at `l3` in `buf` (its header
/// `header_len` bytes, its transport after it up to the end of `buf`) so
/// that its tuple goes from `from` to `to`: see the module documentation.
/// `partial`: its transport checksum is partial. `quoted`: this is the
/// packet an ICMP error quotes (a TCP checksum only with a whole header).
pub fn rewrite_v4(
    buf: &mut [u8],
    l3: usize,
    header_len: usize,
    from: &Tuple,
    to: &Tuple,
    partial: bool,
    quoted: bool,
) -> bool {
    let l4 = l3 + header_len;
    let available = buf.len().saturating_sub(l4);
    // The transport checksum (offset, kind), when it covers what changes.
    let (l4_check, covers_addresses) = match from.protocol {
        PROTO_TCP if quoted && available < tcp::MIN_HEADER_LEN => (None, false),
        PROTO_TCP if partial => (Some((l4 + tcp::CHECKSUM, Field::Partial)), true),
        PROTO_TCP => (Some((l4 + tcp::CHECKSUM, Field::Full)), true),
        PROTO_UDP if partial => (Some((l4 + UDP_CHECKSUM, Field::Partial)), true),
        PROTO_UDP => (Some((l4 + UDP_CHECKSUM, Field::Udp)), true),
        // UDP-Lite and DCCP: a pseudo-header checksum at offset 6 (their
        // ports are not remapped).
        PROTO_UDPLITE | PROTO_DCCP => (Some((l4 + UDP_CHECKSUM, Field::Full)), true),
        PROTO_ICMP if partial => (None, false),
        PROTO_ICMP => (Some((l4 + ICMP_CHECKSUM, Field::Full)), false),
        _ => (None, false),
    };
    let l4_address_check = l4_check.filter(|_| covers_addresses);
    let mut ok = rewrite_addresses(
        buf,
        l3,
        (from.src, from.dst),
        (to.src, to.dst),
        l4_address_check,
    );
    // Ports, or the ICMP query identifier; a partial checksum leaves
    // them to the device.
    let id_checks: &[(usize, Field)] = match l4_check {
        Some((_, Field::Partial)) | None => &[],
        Some(ref c) => core::slice::from_ref(c),
    };
    match from.protocol {
        PROTO_TCP | PROTO_UDP => {
            ok &= replace16(buf, l4, to.src_id, id_checks);
            ok &= replace16(buf, l4 + 2, to.dst_id, id_checks);
        }
        PROTO_ICMP => ok &= replace16(buf, l4 + ICMP_IDENT, to.src_id, id_checks),
        _ => {}
    }
    ok
}

/// Replace the source and destination addresses of the IPv4 header at
/// `l3` (`from` to `to`, each a (source, destination) pair), patching its
/// checksum and `l4_check`, a transport checksum over the pseudo-header.
fn rewrite_addresses(
    buf: &mut [u8],
    l3: usize,
    from: (IpAddr, IpAddr),
    to: (IpAddr, IpAddr),
    l4_check: Option<(usize, Field)>,
) -> bool {
    let ip_check = (l3 + ipv4::CHECKSUM, Field::Full);
    let mut ok = true;
    for (at, old, new) in [(ipv4::SRC, from.0, to.0), (ipv4::DST, from.1, to.1)] {
        let (Some(old_words), Some(new_words)) = (v4_words(old), v4_words(new)) else {
            return false;
        };
        for k in 0..2 {
            if old_words[k] == new_words[k] {
                continue;
            }
            let checks: &[(usize, Field)] = match l4_check {
                Some(c) => &[ip_check, c],
                None => &[ip_check],
            };
            ok &= replace16(buf, l3 + at + 2 * k, new_words[k], checks);
        }
    }
    ok
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
    let mut ok = rewrite_v4(buf, inner, inner_len, quoted_from, quoted_to, false, true);
    let total = read16(buf, ipv4::TOTAL_LEN).map_or(buf.len(), usize::from);
    if let Some(icmp) = buf.get_mut(header_len..total.min(buf.len())) {
        if icmp.len() >= ICMP_HEADER {
            icmp[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].fill(0);
            let c = internet_checksum(&[icmp]);
            icmp[ICMP_CHECKSUM..ICMP_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
    let outer = |a: &[u8]| -> Option<IpAddr> {
        let o: [u8; 4] = a.try_into().ok()?;
        Some(IpAddr::from(o))
    };
    let (Some(src), Some(dst)) = (
        buf.get(ipv4::SRC..ipv4::SRC + 4).and_then(outer),
        buf.get(ipv4::DST..ipv4::DST + 4).and_then(outer),
    ) else {
        return false;
    };
    // The ICMP checksum (computed above) does not cover the outer
    // addresses: only the header checksum does.
    let to = (outer_src.unwrap_or(src), outer_dst.unwrap_or(dst));
    ok &= rewrite_addresses(buf, 0, (src, dst), to, None);
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
