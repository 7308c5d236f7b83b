//! Mapping choices, table-driven: which tuple a new flow leaves with.

use core::cell::RefCell;
use core::net::{IpAddr, Ipv4Addr};

use super::ports::IdRange;
use super::rules::{DestinationRule, NatMatch, NatRules, SourceRule, SourceTo};
use super::*;
use crate::matchers::{Cidr, CidrList, PortSpec};
use crate::wire::{icmp, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

const MASQ: Ipv4Addr = Ipv4Addr::new(10, 9, 2, 1);

fn a(x: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(x))
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Tuple {
    Tuple {
        src: a(src),
        dst: a(dst),
        protocol: PROTO_TCP,
        src_id: sport,
        dst_id: dport,
    }
}

fn masquerade() -> NatRules {
    NatRules {
        source: vec![SourceRule {
            out: Side::Wan,
            matches: NatMatch {
                src: Some(CidrList(vec![Cidr::parse("10.9.1.0/24").unwrap()])),
                ..NatMatch::default()
            },
            to: SourceTo::Masquerade,
            ports: None,
        }],
        destination: vec![],
        masquerade: [None, Some(MASQ)],
    }
}

/// Reply tuples already taken, as the table would answer.
struct Taken(RefCell<Vec<Tuple>>);

impl Taken {
    fn new() -> Taken {
        Taken(RefCell::new(Vec::new()))
    }
    fn has(&self, t: &Tuple) -> bool {
        self.0.borrow().contains(t)
    }
    /// Record a flow leaving with `leaving`: its reply tuple is taken.
    fn add(&self, leaving: &Tuple) {
        self.0.borrow_mut().push(leaving.invert().unwrap());
    }
}

#[test]
fn masquerade_keeps_the_port_while_free_then_moves_it_within_its_class() {
    let mut nat = Nat::new(masquerade());
    let taken = Taken::new();
    let c1 = tcp([10, 9, 1, 2], 40000, [10, 9, 2, 2], 80);
    let out1 = nat.source(Side::Wan, &c1, |t| taken.has(t)).unwrap();
    assert_eq!(out1, tcp([10, 9, 2, 1], 40000, [10, 9, 2, 2], 80));
    taken.add(&out1);
    // A second client, same source port, same server: a new port.
    let c2 = tcp([10, 9, 1, 3], 40000, [10, 9, 2, 2], 80);
    let out2 = nat.source(Side::Wan, &c2, |t| taken.has(t)).unwrap();
    assert_eq!(out2.src, a([10, 9, 2, 1]));
    assert!(
        out2.src_id >= 1024 && out2.src_id != 40000,
        "{}",
        out2.src_id
    );
    // The same port to another server is free again.
    let c3 = tcp([10, 9, 1, 3], 40000, [10, 9, 2, 3], 80);
    assert_eq!(
        nat.source(Side::Wan, &c3, |t| taken.has(t)).unwrap().src_id,
        40000
    );
    // Not leaving by the WAN, or from another network: untouched.
    assert_eq!(nat.source(Side::Lan, &c1, |t| taken.has(t)).unwrap(), c1);
    let other = tcp([10, 9, 7, 2], 40000, [10, 9, 2, 2], 80);
    assert_eq!(
        nat.source(Side::Wan, &other, |t| taken.has(t)).unwrap(),
        other
    );
}

#[test]
fn a_privileged_port_stays_privileged() {
    let mut nat = Nat::new(masquerade());
    let taken = Taken::new();
    let c1 = tcp([10, 9, 1, 2], 700, [10, 9, 2, 2], 22);
    taken.add(&nat.source(Side::Wan, &c1, |t| taken.has(t)).unwrap());
    let c2 = tcp([10, 9, 1, 3], 700, [10, 9, 2, 2], 22);
    let out = nat.source(Side::Wan, &c2, |t| taken.has(t)).unwrap();
    assert!((600..=1023).contains(&out.src_id) && out.src_id != 700);
}

#[test]
fn two_pings_with_one_identifier_get_two() {
    let mut nat = Nat::new(masquerade());
    let taken = Taken::new();
    let echo = icmp::type_code(icmp::ECHO_REQUEST, 0);
    let ping = |src| Tuple {
        src: a(src),
        dst: a([10, 9, 2, 2]),
        protocol: PROTO_ICMP,
        src_id: 77,
        dst_id: echo,
    };
    let out1 = nat
        .source(Side::Wan, &ping([10, 9, 1, 2]), |t| taken.has(t))
        .unwrap();
    assert_eq!(out1.src_id, 77);
    taken.add(&out1);
    let out2 = nat
        .source(Side::Wan, &ping([10, 9, 1, 3]), |t| taken.has(t))
        .unwrap();
    assert_ne!(out2.src_id, 77);
    assert_eq!((out2.src, out2.dst_id), (a([10, 9, 2, 1]), echo));
}

#[test]
fn a_full_port_range_is_exhausted() {
    let mut rules = masquerade();
    rules.source[0].ports = Some(IdRange::new(5000, 5003));
    rules.source[0].matches.protocol = Some(PROTO_UDP);
    let mut nat = Nat::new(rules);
    let taken = Taken::new();
    for i in 0..4u8 {
        let c = Tuple {
            protocol: PROTO_UDP,
            ..tcp([10, 9, 1, 10 + i], 3000, [10, 9, 2, 2], 53)
        };
        let out = nat.source(Side::Wan, &c, |t| taken.has(t)).unwrap();
        assert!((5000..=5003).contains(&out.src_id));
        taken.add(&out);
    }
    let c = Tuple {
        protocol: PROTO_UDP,
        ..tcp([10, 9, 1, 20], 3000, [10, 9, 2, 2], 53)
    };
    assert_eq!(nat.source(Side::Wan, &c, |t| taken.has(t)), Err(Exhausted));
}

#[test]
fn port_forwarding_translates_the_destination_before_the_rules() {
    let rules = NatRules {
        destination: vec![DestinationRule {
            from: Side::Wan,
            matches: NatMatch {
                protocol: Some(PROTO_TCP),
                dport: Some(PortSpec::parse("8080").unwrap()),
                ..NatMatch::default()
            },
            to: Ipv4Addr::new(10, 9, 1, 2),
            ports: Some(IdRange::new(80, 80)),
        }],
        ..NatRules::default()
    };
    let mut nat = Nat::new(rules);
    let wan_client = tcp([10, 9, 2, 2], 50000, [10, 9, 2, 1], 8080);
    let middle = nat.destination(Side::Wan, &wan_client, |_| false);
    assert_eq!(middle, tcp([10, 9, 2, 2], 50000, [10, 9, 1, 2], 80));
    // No source rule: the source stays.
    assert_eq!(nat.source(Side::Lan, &middle, |_| false).unwrap(), middle);
    // Other ports and the other side are not forwarded.
    let other = tcp([10, 9, 2, 2], 50000, [10, 9, 2, 1], 22);
    assert_eq!(nat.destination(Side::Wan, &other, |_| false), other);
    assert_eq!(
        nat.destination(Side::Lan, &wan_client, |_| false),
        wan_client
    );
}

#[test]
fn a_forwarded_flow_whose_reply_clashes_moves_its_source_port() {
    let mut nat = Nat::new(NatRules::default());
    let middle = tcp([10, 9, 2, 2], 50000, [10, 9, 1, 2], 80);
    let clash = middle.invert().unwrap();
    let out = nat.source(Side::Lan, &middle, |t| *t == clash).unwrap();
    assert_eq!((out.src, out.dst, out.dst_id), (middle.src, middle.dst, 80));
    assert_ne!(out.src_id, 50000);
}
