//! ICMPv6 message types and their classes (RFC 4443, RFC 4861, RFC 3810),
//! as Linux conntrack sorts them (`nf_conntrack_proto_icmpv6.c`).

/// Destination unreachable.
pub const DEST_UNREACHABLE: u8 = 1;
/// Packet too big.
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem.
pub const PARAMETER_PROBLEM: u8 = 4;
/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;
/// Node information query (RFC 4620).
pub const NI_QUERY: u8 = 139;
/// Node information reply.
pub const NI_REPLY: u8 = 140;
/// Destination unreachable code: port unreachable (the reject answer for non-TCP).
pub const CODE_PORT_UNREACHABLE: u8 = 4;
/// Time exceeded code: hop limit exceeded in transit.
pub const CODE_HOP_LIMIT: u8 = 0;
/// Length of the ICMPv6 header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = 8;
/// Largest ICMPv6 error generated: the IPv6 minimum MTU (RFC 4443 2.4 (c)).
pub const MAX_ERROR_LEN: usize = 1280;

/// True for error messages (types below 128): matched through the packet they quote.
pub fn is_error(icmp_type: u8) -> bool {
    icmp_type < 128
}

/// True for the requests that may start a flow: echo and node information query.
pub fn is_query_request(icmp_type: u8) -> bool {
    matches!(icmp_type, ECHO_REQUEST | NI_QUERY)
}

/// True for the replies of the requests above.
pub fn is_query_reply(icmp_type: u8) -> bool {
    matches!(icmp_type, ECHO_REPLY | NI_REPLY)
}

/// True for neighbour discovery and multicast listener messages, which
/// Linux never tracks (UNTRACKED): MLD query/report/done (130-132), router
/// and neighbour solicitation and advertisement (133-136), MLDv2 report (143).
pub fn is_untracked(icmp_type: u8) -> bool {
    matches!(icmp_type, 130..=136 | 143)
}

/// The type a query's answer carries (and back): 128<->129, 139<->140.
pub fn inverse_type(icmp_type: u8) -> Option<u8> {
    match icmp_type {
        ECHO_REQUEST => Some(ECHO_REPLY),
        ECHO_REPLY => Some(ECHO_REQUEST),
        NI_QUERY => Some(NI_REPLY),
        NI_REPLY => Some(NI_QUERY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_do_not_overlap() {
        for t in 0..=255u8 {
            let classes = [
                is_error(t),
                is_query_request(t),
                is_query_reply(t),
                is_untracked(t),
            ];
            assert!(classes.iter().filter(|&&c| c).count() <= 1, "type {t}");
            assert_eq!(
                inverse_type(t).is_some(),
                is_query_request(t) || is_query_reply(t)
            );
        }
        assert!(
            !is_untracked(137),
            "redirect is not in Linux's untracked list"
        );
    }
}
