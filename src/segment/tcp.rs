//! What both families' segmenters share: the lengths of a TCP packet, the
//! cut of its payload into segments and the TCP header fix-up of each
//! (Linux's `tcp_gso_segment`), and the error type.

use crate::wire::checksum::{fold, sum};
use crate::wire::tcp::{self, flags};

/// Why a super-packet could not be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Not an IPv4 TCP packet with consistent header lengths.
    NotTcp4,
    /// Not an IPv6 TCP packet with consistent header lengths.
    NotTcp6,
    /// An IPv6 packet whose extension headers the kernel's GSO does not
    /// copy to each segment (a Fragment header or AH before TCP): Linux's
    /// `ipv6_gso_segment` fails on it, and so does this.
    ExtensionHeader,
    /// Neither IPv4 nor IPv6 (the version nibble), or empty.
    NotIp,
    /// `gso_size` is 0.
    NoSegmentSize,
    /// `out` is too small for the segment.
    OutTooSmall,
    /// The segment index is not below the segment count.
    NoSuchSegment,
}

/// The lengths of a TCP packet whose headers agree with its buffer.
///
/// Guarantees (once made by [`TcpLengths::new`]): `ip_header + tcp_header
/// <= total <= ` the length of the packet it was made from, and
/// `tcp_header >= 20`.
#[derive(Clone, Copy, Debug)]
pub(super) struct TcpLengths {
    /// The IP header: IPv4 with options, IPv6 with its extension headers.
    pub(super) ip_header: usize,
    pub(super) tcp_header: usize,
    /// The packet's own length (trailing bytes of the buffer excluded).
    pub(super) total: usize,
}

impl TcpLengths {
    /// The lengths of the TCP packet `pkt` whose IP header is `ip_header`
    /// bytes and whose IP length fields say `total` bytes; `None` when the
    /// TCP header's data offset contradicts them.
    pub(super) fn new(pkt: &[u8], ip_header: usize, total: usize) -> Option<TcpLengths> {
        if total > pkt.len() || ip_header.checked_add(tcp::MIN_HEADER_LEN)? > total {
            return None;
        }
        let tcp_header = usize::from(*pkt.get(ip_header + tcp::DATA_OFFSET)? >> 4) * 4;
        if tcp_header < tcp::MIN_HEADER_LEN || ip_header + tcp_header > total {
            return None;
        }
        Some(TcpLengths {
            ip_header,
            tcp_header,
            total,
        })
    }

    pub(super) fn headers(&self) -> usize {
        self.ip_header + self.tcp_header
    }

    /// Segments of `segment_size` payload bytes the payload makes (at least 1).
    pub(super) fn segments(&self, segment_size: u16) -> Result<usize, SegmentError> {
        if segment_size == 0 {
            return Err(SegmentError::NoSegmentSize);
        }
        let payload = self.total - self.headers();
        Ok(payload.div_ceil(usize::from(segment_size)).max(1))
    }
}

/// Copy the headers and the payload of segment `index` of `pkt` into
/// `out`, and set its TCP sequence number and flags as the kernel's
/// `tcp_gso_segment` does. The IP header and the TCP checksum are left to
/// the caller (see [`finish_tcp`]). Returns the segment's length.
pub(super) fn cut(
    pkt: &[u8],
    lens: &TcpLengths,
    segment_size: u16,
    index: usize,
    out: &mut [u8],
) -> Result<usize, SegmentError> {
    let count = lens.segments(segment_size)?;
    if index >= count {
        return Err(SegmentError::NoSuchSegment);
    }
    let headers = lens.headers();
    let size = usize::from(segment_size);
    // In bounds: TcpLengths guarantees headers <= total <= pkt.len().
    let payload = &pkt[headers..lens.total];
    // index < count = ceil(payload / size) (at least 1): start <= payload.
    let start = (index * size).min(payload.len());
    let chunk = &payload[start..(start + size).min(payload.len())];
    let len = headers + chunk.len();
    let out = out.get_mut(..len).ok_or(SegmentError::OutTooSmall)?;
    out[..headers].copy_from_slice(&pkt[..headers]);
    out[headers..].copy_from_slice(chunk);

    let seg = &mut out[lens.ip_header..];
    let seq = u32::from_be_bytes([
        seg[tcp::SEQ],
        seg[tcp::SEQ + 1],
        seg[tcp::SEQ + 2],
        seg[tcp::SEQ + 3],
    ])
    .wrapping_add(start as u32);
    seg[tcp::SEQ..tcp::SEQ + 4].copy_from_slice(&seq.to_be_bytes());
    if index + 1 < count {
        seg[tcp::FLAGS] &= !(flags::FIN | flags::PSH);
    }
    if index > 0 {
        seg[tcp::FLAGS] &= !flags::CWR;
    }
    Ok(len)
}

/// Write the complete checksum of the TCP segment `seg` (header and
/// payload) whose pseudo-header sums to `pseudo`. `seg` holds at least a
/// TCP header ([`TcpLengths`] guarantees it).
pub(super) fn finish_tcp(seg: &mut [u8], pseudo: u64) {
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].fill(0);
    let tcp_sum = !fold(pseudo + sum(seg));
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].copy_from_slice(&tcp_sum.to_be_bytes());
}
