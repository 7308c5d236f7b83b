//! Packet parsing: IPv4 and IPv6 with TCP, UDP, ICMP and ICMPv6, on the
//! checked headers of [`crate::wire::ipv4`] and [`crate::wire::ipv6`] and
//! smoltcp's transport views.
//!
//! [`parse`] never panics and never allocates. On success every field of
//! [`Packet`] was read from bytes that exist (lengths were checked against the
//! buffer and the header length fields) and every checksum that the kernel's
//! conntrack verifies in PREROUTING was verified. It deliberately does not use
//! smoltcp's `*Repr::parse`, which rejects packets a firewall must still
//! classify (illegal TCP flags, odd options).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, TcpPacket, UdpPacket};

use crate::stats::InvalidReason;
use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v4, pseudo_header_v6, sum};
use crate::wire::ipv4::{Header, HeaderError};
use crate::wire::tcp::{self as tcp_wire, flags, SeqNum};
use crate::wire::vnet::{self, VnetHeader};
use crate::wire::{be16, icmp, ipv6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// The network-layer facts of a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Time to live (hop limit).
    pub ttl: u8,
    /// IP protocol number of the payload (for IPv6, of the upper layer
    /// after the extension headers, as conntrack finds it).
    pub protocol: u8,
    /// The protocol rules match: nftables' `meta l4proto`. The same as
    /// `protocol`, except for IPv6 behind an Authentication Header: 51 (AH)
    /// to the rules, which then see no ports (see [`ipv6::Chain::auth`]).
    pub rule_protocol: u8,
    /// Length of the IP header in bytes: for IPv6, the fixed header and the
    /// extension headers before the upper-layer header.
    pub header_len: usize,
    /// Total length of the packet in bytes (the IPv4 total length field, or
    /// 40 + the IPv6 payload length; trailing bytes of the buffer beyond it
    /// are ignored).
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
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful only with ACK set).
    pub ack: SeqNum,
    /// The flag byte (see [`crate::wire::tcp::flags`]).
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
    pub fn seq_end(&self) -> SeqNum {
        let syn = u32::from(self.has(flags::SYN));
        let fin = u32::from(self.has(flags::FIN));
        self.seq + self.payload.len() as u32 + syn + fin
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
    /// ICMP (v4) message.
    Icmp(IcmpInfo<'a>),
    /// ICMPv6 message.
    Icmpv6(IcmpInfo<'a>),
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
    /// Whether rules see the transport header conntrack reads (not the case
    /// behind an IPv6 AH, see [`IpInfo::rule_protocol`]).
    pub fn rules_see_transport(&self) -> bool {
        self.ip.rule_protocol == self.ip.protocol
    }

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
    /// A fragment of an IPv4 or IPv6 datagram: for the reassembler
    /// ([`crate::defrag`]) before tracking.
    Fragment,
}

/// Parse an IP packet (either family) as read from a TUN device without
/// packet-info header and without virtio-net header: every checksum is
/// verified.
///
/// Guarantees: never panics on any input; returns `Err(Invalid(_))` for
/// truncated headers, header lengths that contradict the buffer, bad IPv4
/// header checksums, IPv6 extension-header chains that are truncated or end
/// in No Next Header (Linux's `ipv6_skip_exthdr` fails on both), a
/// Hop-by-Hop Options header Linux drops ([`ipv6::check_hop_by_hop`]), bad
/// TCP/ICMP/ICMPv6 checksums and bad non-zero UDP checksums. An IPv6
/// packet's protocol and header length are those of the upper layer found
/// after the extension headers.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    parse_with(buf, &vnet::PLAIN)
}

/// Parse an IP packet that came with the virtio-net header `vnet` (TUN
/// offloads). As [`parse`], except that a transport checksum the header
/// vouches for ([`VnetHeader::transport_checksum_trusted`]: verified by the
/// kernel, or partial and completed on transmit) is not verified, and a
/// super-packet must be what its GSO type says (`Invalid(VnetBadGso)`
/// otherwise). The IPv4 header checksum is always verified. The payload of a
/// super-packet is all of its segments' payloads.
pub fn parse_with<'a>(buf: &'a [u8], vnet: &VnetHeader) -> Result<Packet<'a>, ParseError> {
    if buf.first().is_some_and(|b| b >> 4 == 6) {
        parse_v6(buf, vnet)
    } else {
        parse_v4(buf, vnet)
    }
}

fn parse_v4<'a>(buf: &'a [u8], vnet: &VnetHeader) -> Result<Packet<'a>, ParseError> {
    let invalid = |r| Err(ParseError::Invalid(r));
    let ip = match Header::check_packet(buf) {
        Ok(h) => h,
        Err(HeaderError::Version) | Err(HeaderError::BadLength) => {
            return invalid(InvalidReason::IpBadHeader)
        }
        Err(HeaderError::Truncated) => return invalid(InvalidReason::IpTruncated),
    };
    let buf = &buf[..ip.total_len];
    // Fuzzing builds (as smoltcp's checksum checks) accept any checksum,
    // so that fuzzed input reaches conntrack.
    if !cfg!(fuzzing) && internet_checksum(&[&buf[..ip.header_len]]) != 0 {
        return invalid(InvalidReason::IpBadChecksum);
    }
    if ip.is_fragment() {
        return Err(ParseError::Fragment);
    }
    let info = IpInfo {
        src: IpAddr::V4(Ipv4Addr::from(ip.src)),
        dst: IpAddr::V4(Ipv4Addr::from(ip.dst)),
        ttl: ip.ttl,
        protocol: ip.protocol,
        rule_protocol: ip.protocol,
        header_len: ip.header_len,
        total_len: ip.total_len,
    };
    let gso_ok = match vnet.gso() {
        vnet::GSO_NONE => true,
        vnet::GSO_TCPV4 => ip.protocol == PROTO_TCP && vnet.gso_size > 0,
        vnet::GSO_UDP_L4 | vnet::GSO_UDP => ip.protocol == PROTO_UDP && vnet.gso_size > 0,
        _ => false,
    };
    transport(info, buf, vnet, gso_ok)
}

fn parse_v6<'a>(buf: &'a [u8], vnet: &VnetHeader) -> Result<Packet<'a>, ParseError> {
    let invalid = |r| Err(ParseError::Invalid(r));
    let ip = match ipv6::Header::check_packet(buf) {
        Ok(h) => h,
        Err(ipv6::HeaderError::Truncated) => return invalid(InvalidReason::IpTruncated),
        Err(_) => return invalid(InvalidReason::IpBadHeader),
    };
    let buf = &buf[..ip.total_len];
    if ip.next_header == ipv6::NEXT_HOP_BY_HOP {
        match ipv6::check_hop_by_hop(buf) {
            Ok(()) => {}
            Err(ipv6::HeaderError::BadHopByHop) => return invalid(InvalidReason::Ipv6BadHopByHop),
            Err(_) => return invalid(InvalidReason::Ipv6BadExtHeader),
        }
    }
    let chain = match ipv6::walk(buf, ip.next_header) {
        Ok(c) => c,
        Err(ipv6::HeaderError::NoNextHeader) => return invalid(InvalidReason::Ipv6NoNextHeader),
        Err(_) => return invalid(InvalidReason::Ipv6BadExtHeader),
    };
    // Any fragment header, an atomic fragment's too: `nf_ct_frag6_gather`
    // queues every packet that has one.
    if chain.fragment.is_some() {
        return Err(ParseError::Fragment);
    }
    let info = IpInfo {
        src: IpAddr::V6(Ipv6Addr::from(ip.src)),
        dst: IpAddr::V6(Ipv6Addr::from(ip.dst)),
        ttl: ip.hop_limit,
        protocol: chain.protocol,
        rule_protocol: chain.rule_protocol(),
        header_len: chain.offset,
        total_len: ip.total_len,
    };
    let gso_ok = match vnet.gso() {
        vnet::GSO_NONE => true,
        vnet::GSO_TCPV6 => chain.protocol == PROTO_TCP && vnet.gso_size > 0,
        vnet::GSO_UDP_L4 => chain.protocol == PROTO_UDP && vnet.gso_size > 0,
        _ => false,
    };
    transport(info, buf, vnet, gso_ok)
}

/// The transport layer of the packet `buf` (cut to its total length) whose
/// network layer is `ip`.
fn transport<'a>(
    ip: IpInfo,
    buf: &'a [u8],
    vnet: &VnetHeader,
    gso_ok: bool,
) -> Result<Packet<'a>, ParseError> {
    if !gso_ok {
        return Err(ParseError::Invalid(InvalidReason::VnetBadGso));
    }
    let payload = &buf[ip.header_len..];
    // Where each protocol's checksum field sits in its header.
    let trusted = |field: usize| vnet.transport_checksum_trusted(ip.header_len, field);
    let (src, dst) = (IpAddress::from(ip.src), IpAddress::from(ip.dst));
    let transport = match (ip.protocol, ip.src) {
        (PROTO_TCP, _) => {
            Transport::Tcp(parse_tcp(payload, src, dst, trusted(tcp_wire::CHECKSUM))?)
        }
        (PROTO_UDP, _) => {
            Transport::Udp(parse_udp(payload, ip.src, ip.dst, trusted(UDP_CHECKSUM))?)
        }
        (PROTO_ICMP, IpAddr::V4(_)) => {
            Transport::Icmp(parse_icmp(payload, 0, trusted(ICMP_CHECKSUM))?)
        }
        (PROTO_ICMPV6, IpAddr::V6(s)) => {
            let IpAddr::V6(d) = ip.dst else {
                return Err(ParseError::Invalid(InvalidReason::IpBadHeader));
            };
            let len = payload.len() as u32;
            let pseudo = pseudo_header_v6(s.octets(), d.octets(), PROTO_ICMPV6, len);
            Transport::Icmpv6(parse_icmp(payload, pseudo, trusted(ICMP_CHECKSUM))?)
        }
        _ => Transport::Other,
    };
    Ok(Packet { ip, transport })
}

/// Length of the UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Offset of the UDP checksum.
const UDP_CHECKSUM: usize = 6;
/// Offset of the ICMP checksum.
const ICMP_CHECKSUM: usize = 2;

fn parse_tcp(
    seg: &[u8],
    src: IpAddress,
    dst: IpAddress,
    checksum_trusted: bool,
) -> Result<TcpInfo<'_>, ParseError> {
    let tcp = TcpPacket::new_checked(seg)
        .map_err(|_| ParseError::Invalid(InvalidReason::TcpTruncated))?;
    if !checksum_trusted && !tcp.verify_checksum(&src, &dst) {
        return Err(ParseError::Invalid(InvalidReason::TcpBadChecksum));
    }
    let header_len = usize::from(tcp.header_len());
    Ok(TcpInfo {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: SeqNum(tcp.seq_number().0 as u32),
        ack: SeqNum(tcp.ack_number().0 as u32),
        flags: seg[tcp_wire::FLAGS],
        window: tcp.window_len(),
        options: &seg[tcp_wire::MIN_HEADER_LEN..header_len],
        payload: &seg[header_len..],
    })
}

/// `payload`: the whole IP payload from the UDP header on.
fn parse_udp(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    checksum_trusted: bool,
) -> Result<UdpInfo<'_>, ParseError> {
    let (Some(len), true) = (
        be16(payload, 4).map(usize::from),
        payload.len() >= UDP_HEADER_LEN,
    ) else {
        return Err(ParseError::Invalid(InvalidReason::UdpTruncated));
    };
    if len < UDP_HEADER_LEN || len > payload.len() {
        return Err(ParseError::Invalid(InvalidReason::UdpBadLength));
    }
    if !checksum_trusted && !udp_checksum_holds(payload, src, dst) {
        return Err(ParseError::Invalid(InvalidReason::UdpBadChecksum));
    }
    let dgram = &payload[..len];
    let udp = UdpPacket::new_checked(dgram)
        .map_err(|_| ParseError::Invalid(InvalidReason::UdpBadLength))?;
    Ok(UdpInfo {
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: &dgram[UDP_HEADER_LEN..],
    })
}

/// Whether the UDP checksum of `payload` (the IP payload from the UDP
/// header on) holds the way Linux conntrack checks it (`udp_error` in
/// nf_conntrack_proto_udp.c, through `nf_checksum` in net/netfilter/utils.c):
/// over the whole IP payload, its length in the pseudo-header, not only the
/// UDP length's bytes (a datagram shorter than its IP payload is checked
/// with the bytes after it). A checksum of 0 means none was sent.
fn udp_checksum_holds(payload: &[u8], src: IpAddr, dst: IpAddr) -> bool {
    if cfg!(fuzzing) || be16(payload, UDP_CHECKSUM) == Some(0) {
        return true;
    }
    let pseudo = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo_header_v4(s.octets(), d.octets(), PROTO_UDP, payload.len() as u16)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo_header_v6(s.octets(), d.octets(), PROTO_UDP, payload.len() as u32)
        }
        _ => return false,
    };
    fold(pseudo + sum(payload)) == 0xffff
}

/// An ICMP or ICMPv6 message; `pseudo` is the sum of the pseudo-header its
/// checksum covers (0 for ICMPv4, which has none).
fn parse_icmp(msg: &[u8], pseudo: u64, checksum_trusted: bool) -> Result<IcmpInfo<'_>, ParseError> {
    let (Some(body), Some(ident)) = (msg.get(icmp::HEADER_LEN..), be16(msg, 4)) else {
        return Err(ParseError::Invalid(InvalidReason::IcmpTruncated));
    };
    if !cfg!(fuzzing) && !checksum_trusted && !fold(pseudo + sum(msg)) != 0 {
        return Err(ParseError::Invalid(InvalidReason::IcmpBadChecksum));
    }
    Ok(IcmpInfo {
        icmp_type: msg[0],
        code: msg[1],
        ident,
        body,
    })
}
