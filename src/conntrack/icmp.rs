//! ICMP tracking: queries (echo, timestamp, info, address mask) by
//! identifier; errors related to the flow their embedded header belongs to
//! (kernel `nf_conntrack_proto_icmp.c`, `nf_conntrack_inet_error`). The
//! message types themselves are wire facts ([`crate::wire::icmp`]).

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use super::tuple::Tuple;
use crate::stats::InvalidReason;
use crate::wire::ipv4::Header;
use crate::wire::{be16, icmp, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Default ICMP timeout (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
    let word = |at: usize| be16(l4, at).unwrap_or(0);
    let (src_id, dst_id) = match ip.protocol {
        PROTO_TCP | PROTO_UDP => (word(0), word(2)),
        PROTO_ICMP => {
            if !(icmp::is_query_request(l4[0]) || icmp::is_query_reply(l4[0])) {
                return Err(bad);
            }
            (word(4), icmp::type_code(l4[0], l4[1]))
        }
        _ => (0, 0),
    };
    Ok(Tuple {
        src: IpAddr::V4(Ipv4Addr::from(ip.src)),
        dst: IpAddr::V4(Ipv4Addr::from(ip.dst)),
        protocol: ip.protocol,
        src_id,
        dst_id,
    })
}
