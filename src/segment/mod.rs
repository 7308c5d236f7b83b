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

mod tcp;
mod v4;
mod v6;

pub use tcp::SegmentError;
pub use v4::{segment_tcp4, tcp4_segment_count};
pub use v6::{segment_tcp6, tcp6_segment_count};

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
