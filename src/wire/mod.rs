//! Facts about bytes on the wire, with no state: protocol numbers, header
//! offsets, TCP flags, ICMP and ICMPv6 types, checksums, the checked IPv4
//! and IPv6 header views and the virtio-net header. Every other module reads packets through
//! these; nothing here imports from the rest of the crate.

pub mod checksum;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod vnet;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// IP protocol number to a short name for logs and listings: `tcp`, `udp`,
/// `icmp`, `icmpv6`, or `other`.
pub fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_ICMP => "icmp",
        PROTO_ICMPV6 => "icmpv6",
        _ => "other",
    }
}

/// A big-endian `u16` at `at`; `None` past the end of `b`.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// A big-endian `u32` at `at`; `None` past the end of `b`.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}
