//! Packet parsing: IPv4 with TCP, UDP and ICMP, on smoltcp's packet-level views.
//!
//! [`parse`] never panics and never allocates. On success every field of
//! [`Packet`] was read from bytes that exist (lengths were checked against the
//! buffer and the header length fields) and every checksum that the kernel's
//! conntrack verifies in PREROUTING was verified. It deliberately does not use
//! smoltcp's `*Repr::parse`, which rejects packets a firewall must still
//! classify (illegal TCP flags, odd options).

use core::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

use crate::offload::{self, VnetHeader};
use crate::stats::InvalidReason;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits as they sit in the 14th byte of the header.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Which TUN device a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The LAN device: packets from here travel outbound.
    Lan,
    /// The WAN device: packets from here travel inbound.
    Wan,
}

impl Side {
    /// The other device: where a forwarded packet is written.
    pub fn other(self) -> Side {
        match self {
            Side::Lan => Side::Wan,
            Side::Wan => Side::Lan,
        }
    }

    /// 0 for LAN, 1 for WAN: the slot in per-side counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `lan` or `wan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Lan => "lan",
            Side::Wan => "wan",
        }
    }
}

/// The network-layer facts of a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Time to live (hop limit).
    pub ttl: u8,
    /// IP protocol number of the payload.
    pub protocol: u8,
    /// Length of the IP header in bytes.
    pub header_len: usize,
    /// Total length of the packet in bytes (the IP total length field; trailing
    /// bytes of the buffer beyond it are ignored).
    pub total_len: usize,
}

/// The TCP header fields conntrack needs, and the segment's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful only with ACK set).
    pub ack: u32,
    /// The flag byte (see [`tcp_flags`]).
    pub flags: u8,
    /// The window field, unscaled.
    pub window: u16,
    /// TCP options (between the fixed header and the payload).
    pub options: &'a [u8],
    /// Segment payload.
    pub payload: &'a [u8],
}

impl TcpInfo<'_> {
    /// True when every bit of `mask` is set.
    pub fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }

    /// The sequence number after this segment: seq + payload + SYN + FIN,
    /// as the kernel's `segment_seq_plus_len`.
    pub fn seq_end(&self) -> u32 {
        let mut len = self.payload.len() as u32;
        if self.has(tcp_flags::SYN) {
            len = len.wrapping_add(1);
        }
        if self.has(tcp_flags::FIN) {
            len = len.wrapping_add(1);
        }
        self.seq.wrapping_add(len)
    }
}

/// The UDP header fields conntrack needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpInfo<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Datagram payload (bounded by the UDP length field).
    pub payload: &'a [u8],
}

/// The ICMP header and the bytes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpInfo<'a> {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// The identifier field (bytes 4..6) of query messages (echo, timestamp, ...).
    pub ident: u16,
    /// Everything after the 8-byte ICMP header: for errors, the embedded packet.
    pub body: &'a [u8],
}

/// The transport layer of a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// TCP segment.
    Tcp(TcpInfo<'a>),
    /// UDP datagram.
    Udp(UdpInfo<'a>),
    /// ICMP message.
    Icmp(IcmpInfo<'a>),
    /// Any other IP protocol: tracked by addresses and protocol only.
    Other,
}

/// A packet that passed [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Network layer.
    pub ip: IpInfo,
    /// Transport layer.
    pub transport: Transport<'a>,
}

impl Packet<'_> {
    /// Source and destination ports for TCP/UDP, `None` otherwise.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp(u) => Some((u.src_port, u.dst_port)),
            _ => None,
        }
    }
}

/// Why [`parse`] did not return a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The packet is malformed: INVALID with this reason.
    Invalid(InvalidReason),
    /// An IPv6 packet (forwarding of IPv6 is a config switch).
    Ipv6,
    /// An IPv4 fragment (tunfw does not reassemble).
    Fragment,
}

/// Parse an IP packet as read from a TUN device without packet-info header
/// and without virtio-net header: every checksum is verified.
///
/// Guarantees: never panics on any input; returns `Err(Invalid(_))` for
/// truncated headers, header lengths that contradict the buffer, bad IPv4
/// header checksums, bad TCP/ICMP checksums and bad non-zero UDP checksums.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    parse_with(buf, &offload::PLAIN)
}

/// Parse an IP packet that came with the virtio-net header `vnet` (TUN
/// offloads). As [`parse`], except that a transport checksum the header
/// vouches for ([`VnetHeader::transport_checksum_trusted`]: verified by the
/// kernel, or partial and completed on transmit) is not verified, and a
/// super-packet must be what its GSO type says (`Invalid(VnetBadGso)`
/// otherwise). The IPv4 header checksum is always verified. The payload of a
/// super-packet is all of its segments' payloads.
pub fn parse_with<'a>(buf: &'a [u8], vnet: &VnetHeader) -> Result<Packet<'a>, ParseError> {
    let version = match buf.first() {
        Some(b) => b >> 4,
        None => return Err(ParseError::Invalid(InvalidReason::IpTruncated)),
    };
    match version {
        4 => {}
        6 => return Err(ParseError::Ipv6),
        _ => return Err(ParseError::Invalid(InvalidReason::IpBadHeader)),
    }
    if buf.len() < 20 {
        return Err(ParseError::Invalid(InvalidReason::IpTruncated));
    }
    let header_len = usize::from(buf[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(ParseError::Invalid(InvalidReason::IpBadHeader));
    }
    let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if total_len < header_len {
        return Err(ParseError::Invalid(InvalidReason::IpBadHeader));
    }
    if buf.len() < total_len || buf.len() < header_len {
        return Err(ParseError::Invalid(InvalidReason::IpTruncated));
    }
    let buf = &buf[..total_len];
    let ip = Ipv4Packet::new_checked(buf)
        .map_err(|_| ParseError::Invalid(InvalidReason::IpTruncated))?;
    if !ip.verify_checksum() {
        return Err(ParseError::Invalid(InvalidReason::IpBadChecksum));
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(ParseError::Fragment);
    }
    let src = ip.src_addr();
    let dst = ip.dst_addr();
    let protocol = u8::from(ip.next_header());
    let info = IpInfo {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        ttl: ip.hop_limit(),
        protocol,
        header_len,
        total_len,
    };
    let payload = &buf[header_len..];
    let gso_ok = match vnet.gso() {
        offload::GSO_NONE => true,
        offload::GSO_TCPV4 => protocol == PROTO_TCP && vnet.gso_size > 0,
        offload::GSO_UDP_L4 | offload::GSO_UDP => protocol == PROTO_UDP && vnet.gso_size > 0,
        _ => false,
    };
    if !gso_ok {
        return Err(ParseError::Invalid(InvalidReason::VnetBadGso));
    }
    // Where each protocol's checksum field sits in its header.
    let trusted = |field: usize| vnet.transport_checksum_trusted(header_len, field);
    let transport = match protocol {
        PROTO_TCP => Transport::Tcp(parse_tcp(payload, src, dst, trusted(16))?),
        PROTO_UDP => Transport::Udp(parse_udp(payload, src, dst, trusted(6))?),
        PROTO_ICMP => Transport::Icmp(parse_icmp(payload, trusted(2))?),
        _ => Transport::Other,
    };
    Ok(Packet {
        ip: info,
        transport,
    })
}

fn parse_tcp(
    seg: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    checksum_trusted: bool,
) -> Result<TcpInfo<'_>, ParseError> {
    let tcp = TcpPacket::new_checked(seg)
        .map_err(|_| ParseError::Invalid(InvalidReason::TcpTruncated))?;
    if !checksum_trusted && !tcp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)) {
        return Err(ParseError::Invalid(InvalidReason::TcpBadChecksum));
    }
    let header_len = usize::from(tcp.header_len());
    Ok(TcpInfo {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: seg_u32(seg, 4),
        ack: seg_u32(seg, 8),
        flags: seg[13],
        window: tcp.window_len(),
        options: &seg[20..header_len],
        payload: &seg[header_len..],
    })
}

fn seg_u32(seg: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([seg[at], seg[at + 1], seg[at + 2], seg[at + 3]])
}

fn parse_udp(
    dgram: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    checksum_trusted: bool,
) -> Result<UdpInfo<'_>, ParseError> {
    if dgram.len() < 8 {
        return Err(ParseError::Invalid(InvalidReason::UdpTruncated));
    }
    let len = usize::from(u16::from_be_bytes([dgram[4], dgram[5]]));
    if len < 8 || len > dgram.len() {
        return Err(ParseError::Invalid(InvalidReason::UdpBadLength));
    }
    let dgram = &dgram[..len];
    let udp = UdpPacket::new_checked(dgram)
        .map_err(|_| ParseError::Invalid(InvalidReason::UdpBadLength))?;
    if !checksum_trusted && !udp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)) {
        return Err(ParseError::Invalid(InvalidReason::UdpBadChecksum));
    }
    Ok(UdpInfo {
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: &dgram[8..],
    })
}

fn parse_icmp(msg: &[u8], checksum_trusted: bool) -> Result<IcmpInfo<'_>, ParseError> {
    if msg.len() < 8 {
        return Err(ParseError::Invalid(InvalidReason::IcmpTruncated));
    }
    if !cfg!(fuzzing) && !checksum_trusted && internet_checksum(&[msg]) != 0 {
        return Err(ParseError::Invalid(InvalidReason::IcmpBadChecksum));
    }
    Ok(IcmpInfo {
        icmp_type: msg[0],
        code: msg[1],
        ident: u16::from_be_bytes([msg[4], msg[5]]),
        body: &msg[8..],
    })
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`, each of
/// even length except possibly the last. Returns 0 when the data already
/// carries a correct checksum.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for pair in &mut chunks {
            sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Decrement the IPv4 TTL of a packet in place and patch the header checksum
/// incrementally (RFC 1624). The caller guarantees `buf` holds a parsed IPv4
/// header with TTL >= 1; shorter buffers are left untouched.
pub fn decrement_ttl(buf: &mut [u8]) {
    if buf.len() < 20 || buf[8] == 0 {
        return;
    }
    let old = u16::from_be_bytes([buf[8], buf[9]]);
    buf[8] -= 1;
    let new = u16::from_be_bytes([buf[8], buf[9]]);
    let check = u16::from_be_bytes([buf[10], buf[11]]);
    // HC' = ~(~HC + ~m + m')
    let mut sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let patched = !(sum as u16);
    buf[10..12].copy_from_slice(&patched.to_be_bytes());
}

/// IP protocol number to a short name for logs (`tcp`, `udp`, `icmp`, or the number).
pub fn protocol_name(protocol: u8) -> &'static str {
    match IpProtocol::from(protocol) {
        IpProtocol::Tcp => "tcp",
        IpProtocol::Udp => "udp",
        IpProtocol::Icmp => "icmp",
        IpProtocol::Icmpv6 => "icmpv6",
        _ => "other",
    }
}
