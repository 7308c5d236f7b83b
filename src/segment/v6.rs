//! IPv6 TCP super-packets (TSO6): the fixed header and the extension
//! headers of each segment.
//!
//! Linux's `ipv6_gso_segment` walks over the extension headers whose
//! offload is marked `INET6_PROTO_GSO_EXTHDR` (Hop-by-Hop, Routing,
//! Destination Options), copies them unchanged to every segment with the
//! fixed header, and sets each segment's payload length; a Fragment header
//! or AH before TCP stops the walk and the segmentation fails. The TCP
//! checksum covers the pseudo-header of the fixed header's addresses (as
//! `tcp6_gso_segment` computes it; a Routing header's final destination is
//! not looked up).

use super::tcp::{cut, finish_tcp, SegmentError, TcpLengths};
use crate::wire::checksum::pseudo_header_v6;
use crate::wire::ipv6::{
    self, Header, NEXT_AUTH, NEXT_DEST_OPTS, NEXT_FRAGMENT, NEXT_HOP_BY_HOP, NEXT_ROUTING,
    PAYLOAD_LEN,
};
use crate::wire::PROTO_TCP;

/// The offset of the TCP header after the extension headers segmentation
/// copies: [`SegmentError::ExtensionHeader`] for a Fragment header or AH
/// (the kernel's GSO does not cross them), [`SegmentError::NotTcp6`] for a
/// chain that runs past `total` or ends in anything but TCP.
fn tcp_offset(pkt: &[u8], first: u8, total: usize) -> Result<usize, SegmentError> {
    let mut next = first;
    let mut at = ipv6::HEADER_LEN;
    // Each step moves at least 8 bytes within `total`: bounded.
    while matches!(next, NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS) {
        let hdr = pkt.get(at..at + 2).ok_or(SegmentError::NotTcp6)?;
        next = hdr[0];
        at += (usize::from(hdr[1]) + 1) * 8;
        if at > total {
            return Err(SegmentError::NotTcp6);
        }
    }
    match next {
        PROTO_TCP => Ok(at),
        NEXT_FRAGMENT | NEXT_AUTH => Err(SegmentError::ExtensionHeader),
        _ => Err(SegmentError::NotTcp6),
    }
}

/// The lengths of an IPv6 TCP packet whose headers agree with its buffer.
fn lengths(pkt: &[u8]) -> Result<TcpLengths, SegmentError> {
    let bad = SegmentError::NotTcp6;
    let ip = Header::check_packet(pkt).map_err(|_| bad)?;
    let offset = tcp_offset(pkt, ip.next_header, ip.total_len)?;
    TcpLengths::new(pkt, offset, ip.total_len).ok_or(bad)
}

/// How many segments an IPv6 TCP super-packet `pkt` stands for at
/// `segment_size` payload bytes each (at least 1, also without payload).
/// Fails as [`segment_tcp6`] does.
pub fn tcp6_segment_count(pkt: &[u8], segment_size: u16) -> Result<usize, SegmentError> {
    lengths(pkt)?.segments(segment_size)
}

/// Write segment `index` of the IPv6 TCP super-packet `pkt` into `out`, as
/// the kernel's GSO would: the fixed header and the Hop-by-Hop, Routing and
/// Destination Options headers copied, the payload length set to the
/// segment's, the TCP sequence number advanced, FIN and PSH only on the
/// last segment, CWR only on the first, and the TCP checksum complete over
/// the IPv6 pseudo-header. Returns the segment's length;
/// [`SegmentError::NoSuchSegment`] for an `index` not below
/// [`tcp6_segment_count`].
///
/// Fails with [`SegmentError::ExtensionHeader`] for a Fragment header or
/// AH before TCP (Linux does not segment those either), with
/// [`SegmentError::NotTcp6`] for anything that is not a whole IPv6 TCP
/// packet.
pub fn segment_tcp6(
    pkt: &[u8],
    segment_size: u16,
    index: usize,
    out: &mut [u8],
) -> Result<usize, SegmentError> {
    let lens = lengths(pkt)?;
    let len = cut(pkt, &lens, segment_size, index, out)?;
    let (ip, seg) = out[..len].split_at_mut(lens.ip_header);
    // At most 40 + 65,535: the super-packet's own payload length bounds it.
    let payload_len = (len - ipv6::HEADER_LEN) as u16;
    ip[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&payload_len.to_be_bytes());
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[ipv6::SRC..ipv6::SRC + 16]);
    dst.copy_from_slice(&ip[ipv6::DST..ipv6::DST + 16]);
    let pseudo = pseudo_header_v6(src, dst, PROTO_TCP, seg.len() as u32);
    finish_tcp(seg, pseudo);
    Ok(len)
}
