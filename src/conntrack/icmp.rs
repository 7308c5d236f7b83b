//! ICMP tracking: queries (echo, timestamp, info, address mask) by identifier;
//! errors related to the flow their embedded header belongs to
//! (kernel `nf_conntrack_proto_icmp.c`, `nf_conntrack_inet_error`).

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use super::Tuple;
use crate::packet::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::stats::InvalidReason;

/// Default ICMP timeout (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// ICMP destination unreachable.
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
/// ICMP time exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// ICMP echo request.
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// ICMP echo reply.
pub const TYPE_ECHO_REPLY: u8 = 0;

/// True for the request types that may start a flow: echo, timestamp, info, address mask.
pub fn is_query_request(icmp_type: u8) -> bool {
    matches!(icmp_type, 8 | 13 | 15 | 17)
}

/// True for the reply types of the queries above.
pub fn is_query_reply(icmp_type: u8) -> bool {
    matches!(icmp_type, 0 | 14 | 16 | 18)
}

/// True for the error types whose embedded header is looked up:
/// unreachable, source quench, redirect, time exceeded, parameter problem.
pub fn is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// The type a query's answer carries (and back): 8<->0, 13<->14, 15<->16, 17<->18.
pub fn inverse_type(icmp_type: u8) -> Option<u8> {
    match icmp_type {
        8 => Some(0),
        0 => Some(8),
        13 => Some(14),
        14 => Some(13),
        15 => Some(16),
        16 => Some(15),
        17 => Some(18),
        18 => Some(17),
        _ => None,
    }
}

/// The tuple of the packet embedded in an ICMP error, exactly as that packet
/// was sent (not inverted).
///
/// Requires the embedded IPv4 header and at least 8 bytes after it; the
/// embedded packet must not be a non-first fragment, and an embedded ICMP
/// message must be a query (an error about an error matches nothing).
pub fn embedded_tuple(body: &[u8]) -> Result<Tuple, InvalidReason> {
    let bad = InvalidReason::IcmpErrorBadInner;
    if body.len() < 20 || body[0] >> 4 != 4 {
        return Err(bad);
    }
    let ihl = usize::from(body[0] & 0x0f) * 4;
    if ihl < 20 || body.len() < ihl + 8 {
        return Err(bad);
    }
    let frag_offset = u16::from_be_bytes([body[6], body[7]]) & 0x1fff;
    if frag_offset != 0 {
        return Err(bad);
    }
    let protocol = body[9];
    let src = IpAddr::V4(Ipv4Addr::new(body[12], body[13], body[14], body[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(body[16], body[17], body[18], body[19]));
    let l4 = &body[ihl..];
    let (src_id, dst_id) = match protocol {
        PROTO_TCP | PROTO_UDP => (
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ),
        PROTO_ICMP => {
            if !(is_query_request(l4[0]) || is_query_reply(l4[0])) {
                return Err(bad);
            }
            (
                u16::from_be_bytes([l4[4], l4[5]]),
                u16::from_be_bytes([l4[0], l4[1]]),
            )
        }
        _ => (0, 0),
    };
    Ok(Tuple {
        src,
        dst,
        protocol,
        src_id,
        dst_id,
    })
}
