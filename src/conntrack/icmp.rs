//! ICMP and ICMPv6 tracking: queries (echo, timestamp, info, address
//! mask; ICMPv6 echo and node information) by identifier; errors related to
//! the flow their embedded header belongs to (kernel
//! `nf_conntrack_proto_icmp.c`, `nf_conntrack_proto_icmpv6.c`,
//! `nf_conntrack_inet_error`). The message types themselves are wire facts
//! ([`crate::wire::icmp`], [`crate::wire::icmpv6`]).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use super::tuple::Tuple;
use crate::stats::InvalidReason;
use crate::wire::ipv4::Header;
use crate::wire::{be16, icmp, icmpv6, ipv6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Default ICMP timeout (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default ICMPv6 timeout (30 s, `nf_conntrack_icmpv6_timeout`).
pub const DEFAULT_V6_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of a quoted transport header of `protocol` that conntrack reads
/// to find the flow: the two ports of TCP and UDP (the kernel's
/// `nf_ct_get_tuple_ports`, 4 bytes), the whole ICMP or ICMPv6 header of a
/// query (`icmp_pkt_to_tuple`, `icmpv6_pkt_to_tuple`, 8 bytes), nothing of
/// other protocols (tracked by addresses alone).
fn quoted_transport_len(protocol: u8) -> usize {
    match protocol {
        PROTO_TCP | PROTO_UDP => 4,
        PROTO_ICMP | PROTO_ICMPV6 => 8,
        _ => 0,
    }
}

/// The quoted transport header at `offset` of `body`, when it carries the
/// bytes `quoted_transport_len` asks for `protocol`.
fn quoted_transport(body: &[u8], offset: usize, protocol: u8) -> Option<&[u8]> {
    body.get(offset..)
        .filter(|l4| l4.len() >= quoted_transport_len(protocol))
}

/// The tuple of the packet embedded in an ICMP error, exactly as that packet
/// was sent (not inverted).
///
/// Requires the embedded IPv4 header (its version field is not read) and,
/// after it, what conntrack reads of the transport header
/// (`quoted_transport_len`: the ports of TCP and UDP, 8 bytes of ICMP);
/// the embedded packet must not be a non-first fragment,
/// and an embedded ICMP message must be a query (an error about an error
/// matches nothing).
pub fn embedded_tuple(body: &[u8]) -> Result<Tuple, InvalidReason> {
    let bad = InvalidReason::IcmpErrorBadInner;
    let ip = Header::check_quoted(body).map_err(|_| bad)?;
    let l4 = quoted_transport(body, ip.header_len, ip.protocol).ok_or(bad)?;
    if ip.fragment_offset != 0 {
        return Err(bad);
    }
    let (src_id, dst_id) = quoted_ids(ip.protocol, l4)?;
    Ok(Tuple {
        src: IpAddr::V4(Ipv4Addr::from(ip.src)),
        dst: IpAddr::V4(Ipv4Addr::from(ip.dst)),
        protocol: ip.protocol,
        src_id,
        dst_id,
    })
}

/// [`embedded_tuple`] for an ICMPv6 error: the quoted IPv6 header (its
/// version field not read), its extension headers walked as Linux's
/// `ipv6_skip_exthdr` (within the quoted bytes), and what conntrack reads
/// of the transport header after them (`quoted_transport_len`); a quoted
/// non-first fragment or an ICMPv6 message that is not a query matches
/// nothing.
pub fn embedded_tuple_v6(body: &[u8]) -> Result<Tuple, InvalidReason> {
    let bad = InvalidReason::IcmpErrorBadInner;
    let ip = ipv6::Header::check_quoted(body).map_err(|_| bad)?;
    let chain = ipv6::walk(body, ip.next_header).map_err(|_| bad)?;
    if chain.fragment.is_some_and(|(offset, _)| offset != 0) {
        return Err(bad);
    }
    let l4 = quoted_transport(body, chain.offset, chain.protocol).ok_or(bad)?;
    let (src_id, dst_id) = quoted_ids(chain.protocol, l4)?;
    Ok(Tuple {
        src: IpAddr::V6(Ipv6Addr::from(ip.src)),
        dst: IpAddr::V6(Ipv6Addr::from(ip.dst)),
        protocol: chain.protocol,
        src_id,
        dst_id,
    })
}

/// The tuple ids of a quoted transport header `l4` of `protocol`, at least
/// `quoted_transport_len` bytes.
fn quoted_ids(protocol: u8, l4: &[u8]) -> Result<(u16, u16), InvalidReason> {
    let word = |at: usize| be16(l4, at).unwrap_or(0);
    let query = match protocol {
        PROTO_TCP | PROTO_UDP => return Ok((word(0), word(2))),
        PROTO_ICMP => icmp::is_query_request(l4[0]) || icmp::is_query_reply(l4[0]),
        PROTO_ICMPV6 => icmpv6::is_query_request(l4[0]) || icmpv6::is_query_reply(l4[0]),
        _ => return Ok((0, 0)),
    };
    if !query {
        return Err(InvalidReason::IcmpErrorBadInner);
    }
    Ok((word(4), icmp::type_code(l4[0], l4[1])))
}
