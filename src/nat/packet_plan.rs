//! What NAT does to one packet of a tracked flow, decided before the rules
//! and carried out after them: the tuple the rules see (Linux's FORWARD
//! chain sees a packet after PREROUTING's destination NAT and before
//! POSTROUTING's source NAT), and the rewrite the packet gets when it is
//! forwarded.
//!
//! For a flow whose tuples are `original` and `reply` (as they arrive) and
//! whose original-direction packets leave as `L` (the inverse of `reply`),
//! a packet of the original direction is seen by the rules with its
//! destination as `L`'s and leaves as `L`; a packet of the reply direction
//! is seen with its destination as `original`'s source and leaves as the
//! inverse of `original`.
//!
//! An ICMP error about a translated flow, travelling in direction `d`, is
//! translated as `nf_nat_icmp_reply_translation` does: its quoted packet
//! (sent in the other direction, translated) becomes that direction's
//! tuple as it arrived; its outer destination becomes the other
//! direction's source where the flow's translation changed it (source NAT
//! for an error in the reply direction, destination NAT in the original),
//! and its outer source the other direction's destination where the other
//! kind did, as Linux does even when a router on the way sent the error.

use core::net::IpAddr;

use crate::conntrack::tuple::{Dir, Tuple};
use crate::packet::{Packet, Transport};
use crate::wire::{PROTO_TCP, PROTO_UDP};

/// Which halves of a flow its translation changed (Linux's
/// `IPS_SRC_NAT` and `IPS_DST_NAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// The source (address or port / ICMP identifier).
    pub src: bool,
    /// The destination (address or port).
    pub dst: bool,
}

impl Changed {
    /// What changed between `original` and `leaving`, the tuple
    /// original-direction packets leave with.
    pub fn of(original: &Tuple, leaving: &Tuple) -> Changed {
        let ports = matches!(original.protocol, PROTO_TCP | PROTO_UDP);
        Changed {
            src: original.src != leaving.src || original.src_id != leaving.src_id,
            dst: original.dst != leaving.dst || (ports && original.dst_id != leaving.dst_id),
        }
    }
}

/// What NAT does to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing.
    Keep,
    /// Drop it: an ICMP redirect about a translated flow (Linux's
    /// `nf_nat_icmp_reply_translation` drops those).
    Refuse,
    /// Rewrite the packet from tuple `from` to `to` when it is forwarded;
    /// the rules see `view`.
    Rewrite {
        /// The packet's tuple.
        from: Tuple,
        /// The tuple it leaves with.
        to: Tuple,
        /// The tuple the rules see.
        view: Tuple,
    },
    /// Translate an ICMP error about a translated flow.
    Error {
        /// The quoted packet's tuple as quoted.
        quoted_from: Tuple,
        /// What the quoted packet becomes.
        quoted_to: Tuple,
        /// The new outer source, if it changes.
        outer_src: Option<IpAddr>,
        /// The new outer destination, if it changes (the rules see it).
        outer_dst: Option<IpAddr>,
    },
}

/// The plan for a packet with tuple `t` travelling in direction `dir` of a
/// flow whose tuples are `original` and `reply`.
pub fn for_packet(t: &Tuple, dir: Dir, original: &Tuple, reply: &Tuple) -> Plan {
    // The other direction's tuple, turned around: what this packet leaves
    // as. Its ids: TCP and UDP swap ports; an ICMP query keeps its own
    // type and code and takes the identifier (the same both ways); other
    // protocols have none. (The inverse, without `Tuple::invert`'s
    // per-protocol lookups: the packet path's cost per translated packet.)
    let other = match dir {
        Dir::Original => reply,
        Dir::Reply => original,
    };
    let ports = matches!(t.protocol, PROTO_TCP | PROTO_UDP);
    let to = Tuple {
        src: other.dst,
        dst: other.src,
        protocol: t.protocol,
        src_id: if ports { other.dst_id } else { other.src_id },
        dst_id: if ports { other.src_id } else { t.dst_id },
    };
    if to == *t {
        return Plan::Keep;
    }
    // The rules see the destination as it leaves in the original
    // direction, and as the original source in the reply direction.
    let (view_dst, view_dst_id) = match dir {
        Dir::Original => (to.dst, to.dst_id),
        Dir::Reply => (original.src, original.src_id),
    };
    let view = Tuple {
        dst: view_dst,
        dst_id: if ports { view_dst_id } else { t.dst_id },
        ..*t
    };
    Plan::Rewrite { from: *t, to, view }
}

/// The plan for an ICMP error travelling in direction `dir` of a flow
/// whose tuples are `original` and `reply`, quoting a packet with tuple
/// `quoted` (as the bytes show it).
pub fn for_error(quoted: &Tuple, dir: Dir, original: &Tuple, reply: &Tuple) -> Plan {
    let Some(leaving) = reply.invert() else {
        return Plan::Keep;
    };
    let changed = Changed::of(original, &leaving);
    if changed == Changed::default() {
        return Plan::Keep;
    }
    // The quoted packet travelled the other way.
    let other = match dir {
        Dir::Original => reply,
        Dir::Reply => original,
    };
    let (dst_changes, src_changes) = match dir {
        Dir::Original => (changed.dst, changed.src),
        Dir::Reply => (changed.src, changed.dst),
    };
    Plan::Error {
        quoted_from: *quoted,
        quoted_to: Tuple {
            src: other.src,
            dst: other.dst,
            src_id: other.src_id,
            dst_id: if matches!(quoted.protocol, PROTO_TCP | PROTO_UDP) {
                other.dst_id
            } else {
                quoted.dst_id
            },
            protocol: quoted.protocol,
        },
        outer_src: src_changes.then_some(other.dst),
        outer_dst: dst_changes.then_some(other.src),
    }
}

/// `pkt` as the rules see it under `plan` (addresses and ports of the
/// plan's view; an ICMP error: the new outer destination), or `None` when
/// they see it as it is.
pub fn view<'a>(pkt: &Packet<'a>, plan: &Plan) -> Option<Packet<'a>> {
    let mut p = *pkt;
    match *plan {
        Plan::Keep | Plan::Refuse => return None,
        Plan::Rewrite { from, view, .. } if from == view => return None,
        Plan::Rewrite { view, .. } => {
            p.ip.src = view.src;
            p.ip.dst = view.dst;
            match &mut p.transport {
                Transport::Tcp(s) => (s.src_port, s.dst_port) = (view.src_id, view.dst_id),
                Transport::Udp(u) => (u.src_port, u.dst_port) = (view.src_id, view.dst_id),
                Transport::Icmp(i) | Transport::Icmpv6(i) => i.ident = view.src_id,
                Transport::Other => {}
            }
        }
        Plan::Error { outer_dst, .. } => p.ip.dst = outer_dst?,
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
        Tuple {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            protocol: PROTO_TCP,
            src_id: sport,
            dst_id: dport,
        }
    }

    /// A masqueraded flow 10.9.1.2:40000 -> 10.9.2.2:80 leaving as
    /// 10.9.2.1:1025.
    fn masqueraded() -> (Tuple, Tuple) {
        let original = tcp([10, 9, 1, 2], 40000, [10, 9, 2, 2], 80);
        let reply = tcp([10, 9, 2, 2], 80, [10, 9, 2, 1], 1025);
        (original, reply)
    }

    #[test]
    fn masquerade_rewrites_both_directions_and_the_rules_see_the_lan_host() {
        let (o, r) = masqueraded();
        let Plan::Rewrite { to, view, .. } = for_packet(&o, Dir::Original, &o, &r) else {
            panic!("original direction not rewritten");
        };
        assert_eq!(to, tcp([10, 9, 2, 1], 1025, [10, 9, 2, 2], 80));
        assert_eq!(view, o, "FORWARD sees the original source");
        let Plan::Rewrite { to, view, .. } = for_packet(&r, Dir::Reply, &o, &r) else {
            panic!("reply direction not rewritten");
        };
        assert_eq!(to, o.invert().unwrap());
        assert_eq!(
            view,
            o.invert().unwrap(),
            "FORWARD sees the reply to the LAN host"
        );
    }

    #[test]
    fn an_untranslated_flow_is_kept() {
        let o = tcp([10, 9, 1, 2], 40000, [10, 9, 2, 2], 80);
        let r = o.invert().unwrap();
        assert_eq!(for_packet(&o, Dir::Original, &o, &r), Plan::Keep);
        assert_eq!(for_packet(&r, Dir::Reply, &o, &r), Plan::Keep);
        assert_eq!(for_error(&o, Dir::Reply, &o, &r), Plan::Keep);
    }

    #[test]
    fn a_port_forward_is_seen_at_its_lan_server() {
        let o = tcp([10, 9, 2, 2], 50000, [10, 9, 2, 1], 8080);
        let r = tcp([10, 9, 1, 2], 80, [10, 9, 2, 2], 50000);
        let Plan::Rewrite { to, view, .. } = for_packet(&o, Dir::Original, &o, &r) else {
            panic!()
        };
        assert_eq!(to, tcp([10, 9, 2, 2], 50000, [10, 9, 1, 2], 80));
        assert_eq!(view, to, "FORWARD sees the translated destination");
        let Plan::Rewrite { to, .. } = for_packet(&r, Dir::Reply, &o, &r) else {
            panic!()
        };
        assert_eq!(to, tcp([10, 9, 2, 1], 8080, [10, 9, 2, 2], 50000));
    }

    #[test]
    fn an_error_from_the_wan_about_a_masqueraded_flow_goes_back_to_the_lan_host() {
        let (o, r) = masqueraded();
        // The server quotes the segment as it left tunfw.
        let quoted = r.invert().unwrap();
        let plan = for_error(&quoted, Dir::Reply, &o, &r);
        assert_eq!(
            plan,
            Plan::Error {
                quoted_from: quoted,
                quoted_to: o,
                outer_src: None,
                outer_dst: Some(o.src),
            }
        );
        // An error from the LAN host about the reply direction leaves with
        // the masquerade address as its source.
        let quoted = o.invert().unwrap();
        let Plan::Error {
            outer_src,
            outer_dst,
            quoted_to,
            ..
        } = for_error(&quoted, Dir::Original, &o, &r)
        else {
            panic!()
        };
        assert_eq!((outer_src, outer_dst, quoted_to), (Some(r.dst), None, r));
    }
}
