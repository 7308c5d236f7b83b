//! Packets tunfw sends itself: TCP RST and ICMP or ICMPv6 errors (reject,
//! time exceeded), in the family of the packet they answer.
//!
//! Builders write into a caller-provided buffer and return the length, so they
//! never allocate. They refuse (return `None`) where a router must stay
//! silent: no RST for a RST, no ICMP error about an ICMP error, nothing to
//! multicast, broadcast or unspecified addresses.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, TcpPacket};

use crate::packet::{Packet, TcpInfo, Transport};
use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v6, sum};
use crate::wire::tcp::{self, flags as f, SeqNum};
use crate::wire::{icmp, icmpv6, ipv4, ipv6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP};

/// TTL of generated packets (Linux `ip_default_ttl`).
pub const GENERATED_TTL: u8 = 64;
/// Largest ICMPv4 error generated (RFC 1812: 576 bytes); ICMPv6 errors go
/// to [`icmpv6::MAX_ERROR_LEN`].
pub const MAX_ICMP_ERROR: usize = 576;

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_unspecified())
}

/// A unicast address tunfw may answer from or to, of either family.
fn answerable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => unicast(a),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified() || a.is_loopback()),
    }
}

fn write_ipv4_header(out: &mut [u8], total_len: usize, protocol: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    let h = &mut out[..ipv4::MIN_HEADER_LEN];
    h.fill(0);
    h[0] = 0x45;
    h[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&(total_len as u16).to_be_bytes());
    h[ipv4::FRAGMENT] = 0x40; // DF
    h[ipv4::TTL] = GENERATED_TTL;
    h[ipv4::PROTOCOL] = protocol;
    h[ipv4::SRC..ipv4::SRC + 4].copy_from_slice(&src.octets());
    h[ipv4::DST..ipv4::DST + 4].copy_from_slice(&dst.octets());
    let check = internet_checksum(&[h]);
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
}

fn write_ipv6_header(out: &mut [u8], payload_len: usize, next: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    let h = &mut out[..ipv6::HEADER_LEN];
    h.fill(0);
    h[0] = 0x60;
    h[ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2]
        .copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[ipv6::NEXT_HEADER] = next;
    h[ipv6::HOP_LIMIT] = GENERATED_TTL;
    h[ipv6::SRC..ipv6::SRC + 16].copy_from_slice(&src.octets());
    h[ipv6::DST..ipv6::DST + 16].copy_from_slice(&dst.octets());
}

/// Write the IP header of either family for a packet from `src` to `dst`
/// carrying `payload_len` bytes of `protocol`; the header's length, or
/// `None` when the families differ.
fn write_ip_header(
    out: &mut [u8],
    payload_len: usize,
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len = ipv4::MIN_HEADER_LEN;
            write_ipv4_header(out, len + payload_len, protocol, s, d);
            Some(len)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            write_ipv6_header(out, payload_len, protocol, s, d);
            Some(ipv6::HEADER_LEN)
        }
        _ => None,
    }
}

/// The IP header length of generated packets of `addr`'s family.
fn ip_header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    }
}

/// A TCP RST answering `seg` of `pkt`, from its destination to its source
/// (as the kernel's `nf_send_reset` and `nf_send_reset6`), in the packet's
/// family. `None` for a RST or non-unicast ends.
pub fn tcp_reset(pkt: &Packet<'_>, seg: &TcpInfo<'_>, out: &mut [u8]) -> Option<usize> {
    let (src, dst) = (pkt.ip.dst, pkt.ip.src);
    let ip_len = ip_header_len(src);
    let total = ip_len + tcp::MIN_HEADER_LEN;
    if seg.has(f::RST) || out.len() < total || !answerable(src) || !answerable(dst) {
        return None;
    }
    write_ip_header(out, tcp::MIN_HEADER_LEN, PROTO_TCP, src, dst)?;
    let seg_out = &mut out[ip_len..total];
    seg_out.fill(0);
    seg_out[0..2].copy_from_slice(&seg.dst_port.to_be_bytes());
    seg_out[2..4].copy_from_slice(&seg.src_port.to_be_bytes());
    let (seq, ack, flags) = if seg.has(f::ACK) {
        (seg.ack, SeqNum(0), f::RST)
    } else {
        (SeqNum(0), seg.seq_end(), f::RST | f::ACK)
    };
    seg_out[tcp::SEQ..tcp::SEQ + 4].copy_from_slice(&seq.0.to_be_bytes());
    seg_out[tcp::ACK_NUMBER..tcp::ACK_NUMBER + 4].copy_from_slice(&ack.0.to_be_bytes());
    seg_out[tcp::DATA_OFFSET] = ((tcp::MIN_HEADER_LEN / 4) as u8) << 4;
    seg_out[tcp::FLAGS] = flags;
    let mut view = TcpPacket::new_unchecked(seg_out);
    view.fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
    Some(total)
}

/// An ICMP error (ICMPv6 for an IPv6 packet) of `icmp_type`/`code` about
/// the packet `original` (its raw bytes, parsed as `pkt`), sent from `src`
/// to the packet's source, quoting as much of it as fits in 576 bytes (IPv4,
/// RFC 1812) or 1280 bytes (IPv6, RFC 4443). `None` when the original is
/// itself an ICMP or ICMPv6 error, `src` is not of the packet's family, or
/// an end is not unicast.
pub fn icmp_error(
    pkt: &Packet<'_>,
    original: &[u8],
    icmp_type: u8,
    code: u8,
    src: IpAddr,
    out: &mut [u8],
) -> Option<usize> {
    icmp_error_with(pkt, original, icmp_type, code, 0, src, out)
}

/// [`icmp_error`] with `rest` in the 4 bytes after the checksum (the
/// next-hop MTU of fragmentation needed, the MTU of packet too big).
pub fn icmp_error_with(
    pkt: &Packet<'_>,
    original: &[u8],
    icmp_type: u8,
    code: u8,
    rest: u32,
    src: IpAddr,
    out: &mut [u8],
) -> Option<usize> {
    let about_error = match pkt.transport {
        Transport::Icmp(i) => icmp::is_error(i.icmp_type),
        Transport::Icmpv6(i) => icmpv6::is_error(i.icmp_type),
        _ => false,
    };
    let dst = pkt.ip.src;
    if about_error || !answerable(dst) || !answerable(src) || !answerable(pkt.ip.dst) {
        return None;
    }
    let (ip_len, max, protocol) = match dst {
        IpAddr::V4(_) => (ipv4::MIN_HEADER_LEN, MAX_ICMP_ERROR, PROTO_ICMP),
        IpAddr::V6(_) => (ipv6::HEADER_LEN, icmpv6::MAX_ERROR_LEN, PROTO_ICMPV6),
    };
    let quoted = original
        .len()
        .min(pkt.ip.total_len)
        .min(max - ip_len - icmp::HEADER_LEN);
    let msg_len = icmp::HEADER_LEN + quoted;
    let total = ip_len + msg_len;
    if out.len() < total {
        return None;
    }
    write_ip_header(out, msg_len, protocol, src, dst)?;
    let msg = &mut out[ip_len..total];
    msg[0] = icmp_type;
    msg[1] = code;
    msg[2..4].fill(0);
    msg[4..icmp::HEADER_LEN].copy_from_slice(&rest.to_be_bytes());
    msg[icmp::HEADER_LEN..].copy_from_slice(&original[..quoted]);
    let pseudo = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo_header_v6(s.octets(), d.octets(), PROTO_ICMPV6, msg_len as u32)
        }
        _ => 0,
    };
    let check = !fold(pseudo + sum(msg));
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    Some(total)
}
