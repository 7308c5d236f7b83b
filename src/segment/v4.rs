//! IPv4 TCP super-packets (TSO4): the IPv4 header of each segment.

use super::tcp::{cut, finish_tcp, SegmentError, TcpLengths};
use crate::wire::checksum::{internet_checksum, pseudo_header_v4};
use crate::wire::ipv4::{self, Header};
use crate::wire::PROTO_TCP;

/// The lengths of an IPv4 TCP packet whose headers agree with its buffer.
fn lengths(pkt: &[u8]) -> Result<TcpLengths, SegmentError> {
    let bad = SegmentError::NotTcp4;
    let ip = Header::check_packet(pkt).map_err(|_| bad)?;
    if ip.protocol != PROTO_TCP {
        return Err(bad);
    }
    TcpLengths::new(pkt, ip.header_len, ip.total_len).ok_or(bad)
}

/// How many segments an IPv4 TCP super-packet `pkt` stands for at
/// `segment_size` payload bytes each (at least 1, also without payload).
pub fn tcp4_segment_count(pkt: &[u8], segment_size: u16) -> Result<usize, SegmentError> {
    lengths(pkt)?.segments(segment_size)
}

/// Write segment `index` of the IPv4 TCP super-packet `pkt` into `out`, as
/// the kernel's TCP segmentation would: the headers copied, IP total length
/// and identification (`id + index`) and TCP sequence number adjusted, FIN
/// and PSH only on the last segment, CWR only on the first, and both
/// checksums complete. Returns the segment's length;
/// [`SegmentError::NoSuchSegment`] for an `index` not below
/// [`tcp4_segment_count`].
pub fn segment_tcp4(
    pkt: &[u8],
    segment_size: u16,
    index: usize,
    out: &mut [u8],
) -> Result<usize, SegmentError> {
    let lens = lengths(pkt)?;
    let len = cut(pkt, &lens, segment_size, index, out)?;
    let (ip, seg) = out[..len].split_at_mut(lens.ip_header);
    ip[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&(len as u16).to_be_bytes());
    let id = u16::from_be_bytes([ip[ipv4::IDENT], ip[ipv4::IDENT + 1]]).wrapping_add(index as u16);
    ip[ipv4::IDENT..ipv4::IDENT + 2].copy_from_slice(&id.to_be_bytes());
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].fill(0);
    let ip_sum = internet_checksum(&[ip]);
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&ip_sum.to_be_bytes());

    let addr = |at: usize| [ip[at], ip[at + 1], ip[at + 2], ip[at + 3]];
    let pseudo = pseudo_header_v4(
        addr(ipv4::SRC),
        addr(ipv4::DST),
        PROTO_TCP,
        seg.len() as u16,
    );
    finish_tcp(seg, pseudo);
    Ok(len)
}
