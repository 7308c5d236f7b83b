//! Choosing the port (or ICMP query identifier) of a translated tuple, as
//! Linux's `nf_nat_l4proto_unique_tuple` (net/netfilter/nf_nat_core.c).
//!
//! [`unique_id`] changes the one identifier a translation touches (the
//! source port for source NAT, the destination port for destination NAT,
//! the query identifier of ICMP either way) until `used` says the tuple is
//! free: from a random offset into the range, at most [`MAX_ATTEMPTS`]
//! tries, then half as many from a new random offset, and so on while at
//! least 16 tries remain. Without a configured range a source port stays in
//! its class (1-511, 600-1023, 1024-65535) and a destination port is not
//! changed at all; ICMP identifiers range over 0-65535. The work is bounded
//! by 2 × [`MAX_ATTEMPTS`] calls of `used`, whatever the table holds.

use super::manip::{id_of, set_id, Manip};
use crate::conntrack::tuple::Tuple;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Tries from one random offset (Linux's `NF_NAT_MAX_ATTEMPTS`).
pub const MAX_ATTEMPTS: u32 = 128;

/// An inclusive range of ports or identifiers, `min <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// The first.
    pub min: u16,
    /// The last.
    pub max: u16,
}

impl IdRange {
    /// The range from `a` to `b`, in either order.
    pub fn new(a: u16, b: u16) -> IdRange {
        IdRange {
            min: a.min(b),
            max: a.max(b),
        }
    }

    /// Whether `id` is in the range.
    pub fn contains(self, id: u16) -> bool {
        (self.min..=self.max).contains(&id)
    }

    /// How many ids it holds (1 to 65,536).
    pub fn size(self) -> u32 {
        u32::from(self.max) - u32::from(self.min) + 1
    }
}

/// The range a source port is moved within when none is configured: its
/// class (Linux: below 512, 600-1023, 1024 and up).
pub fn port_class(port: u16) -> IdRange {
    match port {
        0..=511 => IdRange::new(1, 511),
        512..=1023 => IdRange::new(600, 1023),
        _ => IdRange::new(1024, 65535),
    }
}

/// Change the identifier `manip` touches in `tuple` so that `used(tuple)`
/// is false, within `range` (`None`: as the module documentation says);
/// `random` gives the offsets. Returns false, with `tuple` as last tried,
/// when every try was used or the protocol has no identifier to change.
pub fn unique_id(
    tuple: &mut Tuple,
    range: Option<IdRange>,
    manip: Manip,
    random: &mut impl FnMut() -> u16,
    used: impl Fn(&Tuple) -> bool,
) -> bool {
    let icmp = matches!(tuple.protocol, PROTO_ICMP | PROTO_ICMPV6);
    if !icmp && !matches!(tuple.protocol, PROTO_TCP | PROTO_UDP) {
        return false;
    }
    let range = match (range, icmp, manip) {
        (Some(r), _, _) => r,
        (None, true, _) => IdRange::new(0, 65535),
        // A destination port is changed only within a configured range.
        (None, false, Manip::Dst) => return false,
        (None, false, Manip::Src) => port_class(id_of(tuple, manip)),
    };
    // Linux starts destination ports at the range's start, everything else
    // at a random offset.
    let mut off = if icmp || manip == Manip::Src {
        u32::from(random())
    } else {
        0
    };
    let size = range.size();
    let mut attempts = size.min(MAX_ATTEMPTS);
    loop {
        for _ in 0..attempts {
            // `size` is at least 1 and the sum at most 65,535.
            let id = u32::from(range.min) + off % size;
            set_id(tuple, manip, id as u16);
            if !used(tuple) {
                return true;
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < 16 {
            return false;
        }
        attempts /= 2;
        off = u32::from(random());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use core::net::{IpAddr, Ipv4Addr};

    fn udp(sport: u16, dport: u16) -> Tuple {
        Tuple {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: PROTO_UDP,
            src_id: sport,
            dst_id: dport,
        }
    }

    fn counter() -> impl FnMut() -> u16 {
        let mut x = 7u16;
        move || {
            x = x.wrapping_mul(31).wrapping_add(17);
            x
        }
    }

    #[test]
    fn a_source_port_stays_in_its_class() {
        for (port, class) in [
            (53, IdRange::new(1, 511)),
            (700, IdRange::new(600, 1023)),
            (40000, IdRange::new(1024, 65535)),
        ] {
            let mut t = udp(port, 9);
            let mut rng = counter();
            assert!(unique_id(&mut t, None, Manip::Src, &mut rng, |c| c.src_id == port));
            assert!(
                class.contains(t.src_id) && t.src_id != port,
                "{port} -> {}",
                t.src_id
            );
        }
    }

    #[test]
    fn a_destination_port_changes_only_within_a_range() {
        let mut t = udp(40000, 80);
        assert!(!unique_id(&mut t, None, Manip::Dst, &mut counter(), |_| {
            true
        }));
        assert_eq!(t.dst_id, 80);
        let r = IdRange::new(8000, 8003);
        // Destination ports are tried from the range's start.
        assert!(unique_id(
            &mut t,
            Some(r),
            Manip::Dst,
            &mut counter(),
            |c| c.dst_id < 8002
        ));
        assert_eq!(t.dst_id, 8002);
    }

    #[test]
    fn tries_are_bounded_and_halve() {
        let calls = Cell::new(0u32);
        let mut t = udp(40000, 9);
        let found = unique_id(&mut t, None, Manip::Src, &mut counter(), |_| {
            calls.set(calls.get() + 1);
            true
        });
        assert!(!found);
        // 128 + 64 + 32 + 16 + 8: the window halves while at least 16 remain.
        assert_eq!(calls.get(), 248);
        let small = IdRange::new(5000, 5009);
        calls.set(0);
        assert!(!unique_id(
            &mut t,
            Some(small),
            Manip::Src,
            &mut counter(),
            |_| {
                calls.set(calls.get() + 1);
                true
            }
        ));
        assert_eq!(calls.get(), 10, "a small range is tried once, whole");
    }

    #[test]
    fn icmp_identifiers_range_over_everything() {
        let mut t = Tuple {
            protocol: PROTO_ICMP,
            ..udp(7, 0x0800)
        };
        assert!(unique_id(&mut t, None, Manip::Dst, &mut counter(), |c| c
            .src_id
            == 7));
        assert_ne!(t.src_id, 7);
        assert_eq!(t.dst_id, 0x0800, "the type and code stay");
    }

    #[test]
    fn other_protocols_have_nothing_to_change() {
        let mut t = Tuple {
            protocol: 47,
            ..udp(0, 0)
        };
        assert!(!unique_id(&mut t, None, Manip::Src, &mut counter(), |_| {
            true
        }));
    }
}
