//! ICMP (v4) message types and their classes (RFC 792), and the packing of
//! a type and code into one tuple id.

/// Echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const DEST_UNREACHABLE: u8 = 3;
/// Redirect.
pub const REDIRECT: u8 = 5;
/// Echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// Destination unreachable code: fragmentation needed and DF set (RFC 1191:
/// the next-hop MTU in the low 16 bits of the rest of the header).
pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;
/// Destination unreachable code: port unreachable (the reject answer for non-TCP).
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Length of the ICMP header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = 8;

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

/// A type and code as one 16-bit id (`type << 8 | code`), as tuples carry them.
pub fn type_code(icmp_type: u8, code: u8) -> u16 {
    u16::from_be_bytes([icmp_type, code])
}

/// The type and code packed by [`type_code`].
pub fn split_type_code(id: u16) -> (u8, u8) {
    let [t, c] = id.to_be_bytes();
    (t, c)
}
