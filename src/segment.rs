//! The TCP segmenter, for the rare TUN super-packet that must be handled one
//! segment at a time.
//!
//! With TUN offloads (see [`crate::device`] and [`crate::wire::vnet`]) the
//! kernel hands tunfw super-packets: one IPv4 header, one TCP header and up
//! to 64 KiB of payload that stands for `gso_size`-byte segments. The
//! firewall tracks a super-packet as the whole range of sequence numbers it
//! covers, the way Linux conntrack sees a GSO/GRO skb. Where a packet must be
//! inspected one segment at a time (a helper reads a control connection line
//! by line), [`segment_tcp4`] cuts it into the segments the kernel would
//! have sent, with complete checksums. Nothing here allocates or panics.

use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v4, sum};
use crate::wire::ipv4::{self, Header};
use crate::wire::tcp::{self, flags};
use crate::wire::PROTO_TCP;

/// Why a super-packet could not be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Not an IPv4 TCP packet with consistent header lengths.
    NotTcp4,
    /// `gso_size` is 0.
    NoSegmentSize,
    /// `out` is too small for the segment.
    OutTooSmall,
}

/// The lengths of an IPv4 TCP packet whose headers agree with its buffer.
#[derive(Clone, Copy, Debug)]
struct Tcp4Lengths {
    ip_header: usize,
    tcp_header: usize,
    total: usize,
}

impl Tcp4Lengths {
    fn of(pkt: &[u8]) -> Result<Tcp4Lengths, SegmentError> {
        let bad = SegmentError::NotTcp4;
        let ip = Header::check_packet(pkt).map_err(|_| bad)?;
        if ip.protocol != PROTO_TCP || ip.total_len < ip.header_len + tcp::MIN_HEADER_LEN {
            return Err(bad);
        }
        let tcp_header = usize::from(pkt[ip.header_len + tcp::DATA_OFFSET] >> 4) * 4;
        if tcp_header < tcp::MIN_HEADER_LEN || ip.header_len + tcp_header > ip.total_len {
            return Err(bad);
        }
        Ok(Tcp4Lengths {
            ip_header: ip.header_len,
            tcp_header,
            total: ip.total_len,
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

/// How many segments an IPv4 TCP super-packet `pkt` stands for at
/// `segment_size` payload bytes each (at least 1, also without payload).
pub fn tcp4_segment_count(pkt: &[u8], segment_size: u16) -> Result<usize, SegmentError> {
    Tcp4Lengths::of(pkt)?.segments(segment_size)
}

/// Write segment `index` of the IPv4 TCP super-packet `pkt` into `out`, as
/// the kernel's TCP segmentation would: the headers copied, IP total length
/// and identification (`id + index`) and TCP sequence number adjusted, FIN
/// and PSH only on the last segment, CWR only on the first, and both
/// checksums complete. Returns the segment's length.
pub fn segment_tcp4(
    pkt: &[u8],
    segment_size: u16,
    index: usize,
    out: &mut [u8],
) -> Result<usize, SegmentError> {
    let lens = Tcp4Lengths::of(pkt)?;
    let count = lens.segments(segment_size)?;
    let headers = lens.headers();
    let size = usize::from(segment_size);
    let payload = &pkt[headers..lens.total];
    let start = index.saturating_mul(size).min(payload.len());
    let chunk = &payload[start..(start + size).min(payload.len())];
    let len = headers + chunk.len();
    let out = out.get_mut(..len).ok_or(SegmentError::OutTooSmall)?;
    out[..headers].copy_from_slice(&pkt[..headers]);
    out[headers..].copy_from_slice(chunk);

    let (ip, seg) = out.split_at_mut(lens.ip_header);
    ip[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&(len as u16).to_be_bytes());
    let id = u16::from_be_bytes([ip[ipv4::IDENT], ip[ipv4::IDENT + 1]]).wrapping_add(index as u16);
    ip[ipv4::IDENT..ipv4::IDENT + 2].copy_from_slice(&id.to_be_bytes());
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].fill(0);
    let ip_sum = internet_checksum(&[ip]);
    ip[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&ip_sum.to_be_bytes());

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
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].fill(0);
    let src = [
        ip[ipv4::SRC],
        ip[ipv4::SRC + 1],
        ip[ipv4::SRC + 2],
        ip[ipv4::SRC + 3],
    ];
    let dst = [
        ip[ipv4::DST],
        ip[ipv4::DST + 1],
        ip[ipv4::DST + 2],
        ip[ipv4::DST + 3],
    ];
    let pseudo = pseudo_header_v4(src, dst, PROTO_TCP, seg.len() as u16);
    let tcp_sum = !fold(pseudo + sum(seg));
    seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].copy_from_slice(&tcp_sum.to_be_bytes());
    Ok(len)
}
