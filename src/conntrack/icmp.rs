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

/// Bytes of the quoted packet's transport header an error must carry.
const QUOTED_TRANSPORT: usize = 8;

/// The tuple of the packet embedded in an ICMP error, exactly as that packet
/// was sent (not inverted).
///
/// Requires the embedded IPv4 header and at least 8 bytes after it; the
/// embedded packet must not be a non-first fragment, and an embedded ICMP
/// message must be a query (an error about an error matches nothing).
pub fn embedded_tuple(body: &[u8]) -> Result<Tuple, InvalidReason> {
    let bad = InvalidReason::IcmpErrorBadInner;
    let ip = Header::check(body).map_err(|_| bad)?;
    let l4 = body
        .get(ip.header_len..ip.header_len + QUOTED_TRANSPORT)
        .ok_or(bad)?;
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

/// [`embedded_tuple`] for an ICMPv6 error: the quoted IPv6 header, its
/// extension headers walked as Linux's `ipv6_skip_exthdr` (within the
/// quoted bytes), and at least 8 bytes of the transport header after them;
/// a quoted non-first fragment or an ICMPv6 message that is not a query
/// matches nothing.
pub fn embedded_tuple_v6(body: &[u8]) -> Result<Tuple, InvalidReason> {
    let bad = InvalidReason::IcmpErrorBadInner;
    let ip = ipv6::Header::check(body).map_err(|_| bad)?;
    let chain = ipv6::walk(body, ip.next_header).map_err(|_| bad)?;
    if chain.fragment.is_some_and(|(offset, _)| offset != 0) {
        return Err(bad);
    }
    let l4 = body
        .get(chain.offset..chain.offset + QUOTED_TRANSPORT)
        .ok_or(bad)?;
    let (src_id, dst_id) = quoted_ids(chain.protocol, l4)?;
    Ok(Tuple {
        src: IpAddr::V6(Ipv6Addr::from(ip.src)),
        dst: IpAddr::V6(Ipv6Addr::from(ip.dst)),
        protocol: chain.protocol,
        src_id,
        dst_id,
    })
}

/// The tuple ids of a quoted transport header `l4` (8 bytes) of `protocol`.
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
