//! Which half of a tuple a translation changes, and the identifier it
//! changes there (Linux's `enum nf_nat_manip_type` and the `keyptr` of
//! `nf_nat_l4proto_unique_tuple`).

use crate::conntrack::tuple::Tuple;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6};

/// The half of a tuple a translation changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manip {
    /// Source NAT (masquerade): the source address and port.
    Src,
    /// Destination NAT (port forwarding): the destination address and port.
    Dst,
}

/// The identifier `manip` changes in `t`: an ICMP query's identifier
/// (`src_id`, the same in both directions) whichever the manip, else the
/// source or destination port.
pub fn id_of(t: &Tuple, manip: Manip) -> u16 {
    match (is_icmp(t), manip) {
        (true, _) | (false, Manip::Src) => t.src_id,
        (false, Manip::Dst) => t.dst_id,
    }
}

/// Set the identifier [`id_of`] reads.
pub fn set_id(t: &mut Tuple, manip: Manip, id: u16) {
    match (is_icmp(t), manip) {
        (true, _) | (false, Manip::Src) => t.src_id = id,
        (false, Manip::Dst) => t.dst_id = id,
    }
}

fn is_icmp(t: &Tuple) -> bool {
    matches!(t.protocol, PROTO_ICMP | PROTO_ICMPV6)
}
