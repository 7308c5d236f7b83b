//! Packets tunfw sends itself: TCP RST and ICMP errors (reject, time exceeded).
//!
//! Builders write into a caller-provided buffer and return the length, so they
//! never allocate. They refuse (return `None`) where a router must stay
//! silent: no RST for a RST, no ICMP error about an ICMP error, nothing to
//! multicast, broadcast or unspecified addresses.

use core::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{IpAddress, TcpPacket};

use crate::packet::{Packet, TcpInfo, Transport};
use crate::wire::checksum::internet_checksum;
use crate::wire::tcp::{self, flags as f, SeqNum};
use crate::wire::{icmp, ipv4, PROTO_ICMP, PROTO_TCP};

/// TTL of generated packets (Linux `ip_default_ttl`).
pub const GENERATED_TTL: u8 = 64;
/// Length of a generated RST: IPv4 and TCP headers without options.
const RST_LEN: usize = ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;
/// Length of the IPv4 and ICMP headers in front of a quoted packet.
const ICMP_ERROR_HEADERS: usize = ipv4::MIN_HEADER_LEN + icmp::HEADER_LEN;
/// Largest ICMP error generated (RFC 1812: 576 bytes).
pub const MAX_ICMP_ERROR: usize = 576;

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_unspecified())
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

fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// A TCP RST answering `seg` of `pkt`, from its destination to its source
/// (as the kernel's `nf_send_reset`). `None` for a RST or non-unicast ends.
pub fn tcp_reset(pkt: &Packet<'_>, seg: &TcpInfo<'_>, out: &mut [u8]) -> Option<usize> {
    if seg.has(f::RST) || out.len() < RST_LEN {
        return None;
    }
    let (src, dst) = (v4(pkt.ip.dst)?, v4(pkt.ip.src)?);
    if !unicast(src) || !unicast(dst) {
        return None;
    }
    write_ipv4_header(out, RST_LEN, PROTO_TCP, src, dst);
    let seg_out = &mut out[ipv4::MIN_HEADER_LEN..RST_LEN];
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
    view.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    Some(RST_LEN)
}

/// An ICMP error of `icmp_type`/`code` about the packet `original` (its raw
/// bytes, parsed as `pkt`), sent from `src` to the packet's source, quoting as
/// much of it as fits in 576 bytes. `None` when the original is itself an
/// ICMP error or either end is not unicast.
pub fn icmp_error(
    pkt: &Packet<'_>,
    original: &[u8],
    icmp_type: u8,
    code: u8,
    src: Ipv4Addr,
    out: &mut [u8],
) -> Option<usize> {
    if let Transport::Icmp(i) = pkt.transport {
        if icmp::is_error(i.icmp_type) {
            return None;
        }
    }
    let dst = v4(pkt.ip.src)?;
    if !unicast(dst) || !unicast(src) || !v4(pkt.ip.dst).is_some_and(unicast) {
        return None;
    }
    let quoted = original
        .len()
        .min(pkt.ip.total_len)
        .min(MAX_ICMP_ERROR - ICMP_ERROR_HEADERS);
    let total = ICMP_ERROR_HEADERS + quoted;
    if out.len() < total {
        return None;
    }
    write_ipv4_header(out, total, PROTO_ICMP, src, dst);
    let msg = &mut out[ipv4::MIN_HEADER_LEN..total];
    msg[0] = icmp_type;
    msg[1] = code;
    msg[2..icmp::HEADER_LEN].fill(0);
    msg[icmp::HEADER_LEN..].copy_from_slice(&original[..quoted]);
    let check = internet_checksum(&[msg]);
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    Some(total)
}
