//! The TCP segmenter, for the rare TUN super-packet that must be handled one
//! segment at a time.
//!
//! With TUN offloads (see [`crate::device`] and [`crate::wire::vnet`]) the
//! kernel hands tunfw super-packets: one IP header (IPv4, or IPv6 with its
//! extension headers), one TCP header and up to 64 KiB of payload that
//! stands for `gso_size`-byte segments. The firewall tracks a super-packet
//! as the whole range of sequence numbers it covers, the way Linux conntrack
//! sees a GSO/GRO skb. Where a packet must be inspected one segment at a
//! time (a helper reads a control connection line by line), [`segment`]
//! cuts it into the segments the kernel's GSO would have sent, with
//! complete checksums: [`segment_tcp4`] for IPv4 (TSO4), [`segment_tcp6`]
//! for IPv6 (TSO6). Nothing here allocates or panics.
//!
//! The TCP part is the same in both families (Linux's `tcp_gso_segment`):
//! the headers are copied, the sequence number advances by the
//! payload before the segment, FIN and PSH stay only on the last segment,
//! CWR only on the first, and the checksum is computed over the family's
//! pseudo-header. Each family fixes its own IP header: IPv4 its total
//! length, identification and header checksum (`v4.rs`), IPv6 its payload
//! length (`v6.rs`, which also keeps the extension headers the kernel's
//! `ipv6_gso_segment` copies to every segment).

mod v4;
mod v6;

pub use v4::{segment_tcp4, tcp4_segment_count};
pub use v6::{segment_tcp6, tcp6_segment_count};

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
struct TcpLengths {
    /// The IP header: IPv4 with options, IPv6 with its extension headers.
    ip_header: usize,
    tcp_header: usize,
    /// The packet's own length (trailing bytes of the buffer excluded).
    total: usize,
}

impl TcpLengths {
    /// The lengths of the TCP packet `pkt` whose IP header is `ip_header`
    /// bytes and whose IP length fields say `total` bytes; `None` when the
    /// TCP header's data offset contradicts them.
    fn new(pkt: &[u8], ip_header: usize, total: usize) -> Option<TcpLengths> {
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

    fn headers(&self) -> usize {
        self.ip_header + self.tcp_header
    }

    /// Segments of `segment_size` payload bytes the payload makes (at least 1).
    fn segments(&self, segment_size: u16) -> Result<usize, SegmentError> {
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
fn cut(
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
fn finish_tcp(seg: &mut [u8], pseudo: u64) {
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].fill(0);
    let tcp_sum = !fold(pseudo + sum(seg));
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].copy_from_slice(&tcp_sum.to_be_bytes());
}

/// How many segments the TCP super-packet `pkt` of either family stands
/// for at `segment_size` payload bytes each (at least 1, also without
/// payload): [`tcp4_segment_count`] or [`tcp6_segment_count`] by the
/// version nibble.
pub fn segment_count(pkt: &[u8], segment_size: u16) -> Result<usize, SegmentError> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => tcp4_segment_count(pkt, segment_size),
        Some(6) => tcp6_segment_count(pkt, segment_size),
        _ => Err(SegmentError::NotIp),
    }
}

/// Write segment `index` of the TCP super-packet `pkt` of either family
/// into `out`: [`segment_tcp4`] or [`segment_tcp6`] by the version nibble.
/// Returns the segment's length; its checksums are complete. `index`
/// must be below [`segment_count`] ([`SegmentError::NoSuchSegment`]).
pub fn segment(
    pkt: &[u8],
    segment_size: u16,
    index: usize,
    out: &mut [u8],
) -> Result<usize, SegmentError> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => segment_tcp4(pkt, segment_size, index, out),
        Some(6) => segment_tcp6(pkt, segment_size, index, out),
        _ => Err(SegmentError::NotIp),
    }
}
