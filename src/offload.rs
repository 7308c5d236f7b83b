//! TUN offloads: the virtio-net header in front of each packet, and the
//! TCP segmenter for the rare super-packet that must be handled one segment
//! at a time.
//!
//! With offloads on (see [`crate::device`]) the kernel hands tunfw
//! super-packets (one IPv4 header, one TCP header, up to 64 KiB of payload
//! that stands for `gso_size`-byte segments) and packets whose transport
//! checksum is only "partial" (the pseudo-header sum, to be completed by
//! whoever segments or transmits). The firewall tracks a super-packet as
//! the whole range of sequence numbers it covers, the way Linux conntrack
//! sees a GSO/GRO skb, and passes the header on unchanged when it forwards.
//!
//! Where a packet must be inspected one segment at a time (a helper reads a
//! control connection line by line), [`segment_tcp4`] cuts the super-packet
//! into the segments the kernel would have sent, with complete checksums.
//! Nothing here allocates or panics.

use crate::packet::internet_checksum;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset`
/// holds only the pseudo-header sum.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel already verified the checksums.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO, no longer produced).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: or-ed into the GSO type.
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (10 bytes, the host's byte order, as TUN uses it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly or-ed with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers (IP + transport) of a super-packet.
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-packet.
    pub gso_size: u16,
    /// Offset from the IP header to where checksumming starts.
    pub csum_start: u16,
    /// Offset from `csum_start` to the checksum field.
    pub csum_offset: u16,
}

/// The header of a plain packet: no offload, complete checksums.
pub const PLAIN: VnetHeader = VnetHeader {
    flags: 0,
    gso_type: GSO_NONE,
    hdr_len: 0,
    gso_size: 0,
    csum_start: 0,
    csum_offset: 0,
};

impl VnetHeader {
    /// Read the header from the first 10 bytes of `b`; `None` when shorter.
    pub fn read(b: &[u8]) -> Option<VnetHeader> {
        let b: &[u8; 10] = b.get(..10)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Write the header into the first 10 bytes of `b` (no-op when shorter).
    pub fn write(&self, b: &mut [u8]) {
        let Some(b) = b.get_mut(..10) else {
            return;
        };
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    /// The GSO type without the ECN bit.
    pub fn gso(&self) -> u8 {
        self.gso_type & !GSO_ECN
    }

    /// A super-packet: more than one segment's worth of payload may follow.
    pub fn is_gso(&self) -> bool {
        self.gso() != GSO_NONE
    }

    /// Whether the transport checksum of a packet whose IP header is
    /// `ip_header_len` bytes and whose checksum field sits `field` bytes into
    /// the transport header may be left unverified: the kernel verified it
    /// (`DATA_VALID`), or it is a partial checksum at exactly that field
    /// (`NEEDS_CSUM`), which the device that transmits the packet completes,
    /// as Linux treats `CHECKSUM_PARTIAL` and `CHECKSUM_UNNECESSARY` skbs.
    pub fn transport_checksum_trusted(&self, ip_header_len: usize, field: usize) -> bool {
        if self.flags & F_DATA_VALID != 0 {
            return true;
        }
        self.flags & F_NEEDS_CSUM != 0
            && usize::from(self.csum_start) == ip_header_len
            && usize::from(self.csum_offset) == field
    }
}

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

/// How many segments an IPv4 TCP super-packet `pkt` stands for at
/// `segment_size` payload bytes each (at least 1, also without payload).
pub fn tcp4_segment_count(pkt: &[u8], segment_size: u16) -> Result<usize, SegmentError> {
    let (hl, thl, total) = tcp4_lengths(pkt)?;
    segments_for(total - hl - thl, segment_size)
}

/// Segments of `segment_size` payload bytes that `payload` bytes make (at least 1).
fn segments_for(payload: usize, segment_size: u16) -> Result<usize, SegmentError> {
    if segment_size == 0 {
        return Err(SegmentError::NoSegmentSize);
    }
    Ok(payload.div_ceil(usize::from(segment_size)).max(1))
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
    let (hl, thl, total) = tcp4_lengths(pkt)?;
    let count = segments_for(total - hl - thl, segment_size)?;
    let size = usize::from(segment_size);
    let payload = &pkt[hl + thl..total];
    let start = (index * size).min(payload.len());
    let chunk = &payload[start..(start + size).min(payload.len())];
    let len = hl + thl + chunk.len();
    let out = out.get_mut(..len).ok_or(SegmentError::OutTooSmall)?;
    out[..hl + thl].copy_from_slice(&pkt[..hl + thl]);
    out[hl + thl..].copy_from_slice(chunk);

    let (ip, tcp) = out.split_at_mut(hl);
    ip[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    let id = u16::from_be_bytes([ip[4], ip[5]]).wrapping_add(index as u16);
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[10..12].fill(0);
    let ip_sum = internet_checksum(&[ip]);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());

    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]).wrapping_add(start as u32);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    use crate::packet::tcp_flags::{CWR, FIN, PSH};
    if index + 1 < count {
        tcp[13] &= !(FIN | PSH);
    }
    if index > 0 {
        tcp[13] &= !CWR;
    }
    tcp[16..18].fill(0);
    let tcp_len = (tcp.len() as u16).to_be_bytes();
    let pseudo = [
        ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19], 0, 6, tcp_len[0],
        tcp_len[1],
    ];
    let tcp_sum = internet_checksum(&[&pseudo, tcp]);
    tcp[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
    Ok(len)
}

/// (IP header length, TCP header length, IP total length) of an IPv4 TCP
/// packet whose lengths agree with the buffer.
fn tcp4_lengths(pkt: &[u8]) -> Result<(usize, usize, usize), SegmentError> {
    let bad = SegmentError::NotTcp4;
    let first = *pkt.first().ok_or(bad)?;
    if first >> 4 != 4 || pkt.len() < 20 || pkt[9] != 6 {
        return Err(bad);
    }
    let hl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if hl < 20 || total > pkt.len() || total < hl + 20 {
        return Err(bad);
    }
    let thl = usize::from(pkt[hl + 12] >> 4) * 4;
    if thl < 20 || hl + thl > total {
        return Err(bad);
    }
    Ok((hl, thl, total))
}
