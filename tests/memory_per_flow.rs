//! What a tracked flow costs, in either family: the record sizes the
//! README's Performance section and `config/memory.rs` state, held here so
//! that a change to them shows. An IPv6 flow takes the same slot as an
//! IPv4 flow (a tuple holds either family in 40 bytes).

mod common;

use core::mem::size_of;

use common::*;
use tunfw::config::TableMemory;
use tunfw::conntrack::{Flow, Tuple};

#[test]
fn a_flow_of_either_family_is_160_bytes_with_a_40_byte_tuple() {
    assert_eq!(size_of::<Tuple>(), 40);
    assert_eq!(size_of::<Flow>(), 160);
    // The pool's slot: the niche of the flow's enums holds the None.
    assert_eq!(size_of::<Option<Flow>>(), 160);
    let v4 = tuple(6, CLIENT, 40000, SERVER, 80);
    let v6 = tuple(6, CLIENT6, 40000, SERVER6, 80);
    assert_eq!(size_of_val(&v4), size_of_val(&v6));
}

#[test]
fn the_table_takes_164_bytes_a_flow_and_8_of_index() {
    // 65,536 flows (the default conntrack.max): a 131,072-entry index.
    let m = TableMemory::for_sizes(65_536, 1, 0);
    assert_eq!(m.flows / 65_536, 164, "slot (160) + free-list entry (4)");
    assert_eq!(
        m.flow_index / 65_536,
        8,
        "4-byte entries, at most half full"
    );
    // 1 million flows: the index rounds up to 2^21 entries.
    let m = TableMemory::for_sizes(1_000_000, 1, 0);
    assert_eq!(m.flows, 164_000_000);
    assert_eq!(m.flow_index, 4 << 21);
}

#[test]
fn an_ipv6_flow_is_tracked_in_the_same_table() {
    let mut h = Harness::tracking();
    let v = h.out(tcp_segment(CLIENT6, SERVER6, 40000, 80, 1, 0, SYN, b""));
    assert!(v.forwards());
    let v = h.out(tcp_segment(CLIENT, SERVER, 40000, 80, 1, 0, SYN, b""));
    assert!(v.forwards());
    assert_eq!(h.fw.conntrack().len(), 2, "one table for both families");
}

#[test]
fn with_nat_rules_a_flow_takes_52_bytes_more() {
    use tunfw::conntrack::translation::Translation;
    // The translation slot: the reply tuple (the None in its niche) and a
    // free-list entry; and a second index entry per flow.
    assert_eq!(size_of::<Option<Translation>>(), 40);
    let m = TableMemory::for_sizes(65_536, 1, 0).with_nat(true, 65_536);
    assert_eq!(m.nat / 65_536, 44 + 8, "translation slot (44) + index (8)");
    let none = TableMemory::for_sizes(65_536, 1, 0).with_nat(false, 65_536);
    assert_eq!(none.nat, 0, "without NAT rules nothing");
}
