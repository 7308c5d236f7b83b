//! The insertion rules, table-driven: each case is a sequence of
//! fragments cut from one datagram (or from a longer twin with the same
//! key) and the outcome each must have.

use super::build::*;
use crate::defrag::{DefragConfig, FragDrop, Outcome, Reassembler};
use crate::side::Side;
use crate::time::Instant;

/// The outcome a step expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum E {
    /// Queued.
    Q,
    /// Completed, and the datagram equals the original.
    C,
    /// Dropped for this reason.
    D(FragDrop),
}
use E::*;

/// A fragment: data `[start, start + len)`, MF, from datagram 0 (the
/// original) or 1 (its longer twin), and what must become of it.
type Step = (usize, usize, bool, usize, E);

const M: bool = true;
const L: bool = false;

fn check(name: &str, family: u8, steps: &[Step], r: &mut Reassembler, dgs: &[Vec<u8>]) {
    let now = Instant::from_secs(100);
    for (i, &(start, len, more, src, want)) in steps.iter().enumerate() {
        let dg = &dgs[src];
        let f = if family == 4 {
            frag4(dg, start, len, more)
        } else {
            frag6(dg, 40, 6, start, len, more, 0x1234_5678)
        };
        let got = r.push(Side::Lan, &f, now);
        let ok = match (want, got) {
            (Q, Outcome::Queued) => true,
            (C, Outcome::Complete(info)) => {
                assert_eq!(r.datagram(), &dgs[0][..], "{name} step {i}: the datagram");
                info.len == dgs[0].len()
            }
            (D(w), Outcome::Dropped(g)) => w == g,
            _ => false,
        };
        assert!(
            ok,
            "{name} (IPv{family}) step {i}: want {want:?}, got {got:?}"
        );
    }
}

/// Cases both families agree on: 64 data bytes (UDP header and 56).
const COMMON: &[(&str, &[Step])] = &[
    (
        "in order",
        &[(0, 24, M, 0, Q), (24, 24, M, 0, Q), (48, 16, L, 0, C)],
    ),
    (
        "reversed",
        &[(48, 16, L, 0, Q), (24, 24, M, 0, Q), (0, 24, M, 0, C)],
    ),
    (
        "last in the middle",
        &[(24, 24, M, 0, Q), (48, 16, L, 0, Q), (0, 24, M, 0, C)],
    ),
    (
        "one fragment of eight",
        &[(0, 8, M, 0, Q), (8, 56, L, 0, C)],
    ),
    (
        "a duplicate is dropped alone",
        &[
            (0, 24, M, 0, Q),
            (0, 24, M, 0, D(FragDrop::Duplicate)),
            (8, 8, M, 0, D(FragDrop::Duplicate)),
            (24, 24, M, 0, Q),
            (48, 16, L, 0, C),
        ],
    ),
    (
        "inside one run of two fragments: a duplicate",
        &[
            (0, 24, M, 0, Q),
            (24, 24, M, 0, Q),
            (16, 16, M, 0, D(FragDrop::Duplicate)),
            (48, 16, L, 0, C),
        ],
    ),
    (
        "the same bytes across two runs: an overlap, the datagram discarded",
        &[
            (24, 24, M, 0, Q),
            (0, 24, M, 0, Q),
            (16, 16, M, 0, D(FragDrop::Overlap)),
            (48, 16, L, 0, Q),
            (0, 24, M, 0, Q),
            (24, 24, M, 0, C),
        ],
    ),
    (
        "overlap at the tail",
        &[
            (0, 24, M, 0, Q),
            (16, 24, M, 0, D(FragDrop::Overlap)),
            (24, 24, M, 0, Q),
            (48, 16, L, 0, Q),
            (0, 24, M, 0, C),
        ],
    ),
    (
        "overlap in front",
        &[
            (24, 40, L, 0, Q),
            (16, 16, M, 0, D(FragDrop::Overlap)),
            (0, 24, M, 0, Q),
            (24, 40, L, 0, C),
        ],
    ),
];

/// IPv4 (`ip_frag_queue`): MF ends rounded down; inconsistencies and
/// empty fragments discard the datagram.
const V4: &[(&str, &[Step])] = &[
    (
        "an MF end rounded down to 8",
        &[(0, 20, M, 0, Q), (16, 48, L, 0, C)],
    ),
    (
        "an empty fragment discards",
        &[
            (0, 24, M, 0, Q),
            (24, 0, M, 0, D(FragDrop::Empty)),
            (24, 24, M, 0, Q),
            (48, 16, L, 0, Q),
            (0, 24, M, 0, C),
        ],
    ),
    (
        "7 bytes with MF round to nothing",
        &[(8, 7, M, 0, D(FragDrop::Empty))],
    ),
    (
        "a last fragment before queued bytes discards",
        &[
            (24, 24, M, 0, Q),
            (8, 8, L, 0, D(FragDrop::Corrupt)),
            (0, 24, M, 0, Q),
            (48, 16, L, 0, Q),
            (24, 24, M, 0, C),
        ],
    ),
    (
        "a second last fragment elsewhere discards",
        &[
            (48, 16, L, 0, Q),
            (40, 8, L, 0, D(FragDrop::Corrupt)),
            (0, 48, M, 0, Q),
            (48, 16, L, 0, C),
        ],
    ),
    (
        "bytes beyond the last fragment discard",
        &[
            (48, 16, L, 0, Q),
            (64, 16, M, 1, D(FragDrop::Corrupt)),
            (0, 48, M, 0, Q),
            (48, 16, L, 0, C),
        ],
    ),
];

/// IPv6 (`nf_ct_frag6_queue`): an M fragment not a multiple of 8
/// discards; inconsistencies and empty fragments are dropped alone.
const V6: &[(&str, &[Step])] = &[
    (
        "not a multiple of 8 discards",
        &[
            (0, 24, M, 0, Q),
            (24, 20, M, 0, D(FragDrop::BadLength)),
            (24, 24, M, 0, Q),
            (48, 16, L, 0, Q),
            (0, 24, M, 0, C),
        ],
    ),
    (
        "an empty fragment is dropped alone",
        &[
            (0, 24, M, 0, Q),
            (24, 0, M, 0, D(FragDrop::Empty)),
            (24, 24, M, 0, Q),
            (48, 16, L, 0, C),
        ],
    ),
    (
        "a last fragment before queued bytes is dropped alone",
        &[
            (24, 24, M, 0, Q),
            (8, 8, L, 0, D(FragDrop::Corrupt)),
            (0, 24, M, 0, Q),
            (48, 16, L, 0, C),
        ],
    ),
    (
        "a second last fragment elsewhere is dropped alone",
        &[
            (48, 16, L, 0, Q),
            (40, 8, L, 0, D(FragDrop::Corrupt)),
            (0, 48, M, 0, C),
        ],
    ),
    (
        "bytes beyond the last fragment are dropped alone",
        &[
            (48, 16, L, 0, Q),
            (64, 16, M, 1, D(FragDrop::Corrupt)),
            (0, 48, M, 0, C),
        ],
    ),
];

#[test]
fn ipv4_rules() {
    let dgs = [
        datagram4(20, 17, 56, 7, 0, false),
        datagram4(20, 17, 72, 7, 0, false),
    ];
    for (name, steps) in COMMON.iter().chain(V4) {
        let mut r = Reassembler::new(DefragConfig::default());
        check(name, 4, steps, &mut r, &dgs);
    }
}

#[test]
fn ipv6_rules() {
    let dgs = [datagram6(&[], 17, 56, 7), datagram6(&[], 17, 72, 7)];
    for (name, steps) in COMMON.iter().chain(V6) {
        let mut r = Reassembler::new(DefragConfig::default());
        check(name, 6, steps, &mut r, &dgs);
    }
}

#[test]
fn whole_packets_are_not_fragments() {
    let mut r = Reassembler::new(DefragConfig::default());
    let now = Instant::from_secs(1);
    let whole4 = datagram4(20, 17, 56, 7, 0, true);
    let whole6 = datagram6(&[], 17, 56, 7);
    let mut bad_sum = frag4(&whole4, 0, 24, true);
    bad_sum[10] ^= 1;
    let (empty, short, v7) = ([], [0x45u8; 10], [0x70u8; 60]);
    for p in [
        &whole4[..],
        &whole6[..],
        &bad_sum[..],
        &empty[..],
        &short[..],
        &v7[..],
    ] {
        assert_eq!(r.push(Side::Lan, p, now), Outcome::NotFragment, "{p:?}");
    }
    assert_eq!(r.stats().queues, 0);
}

#[test]
fn ipv6_first_fragments_must_hold_the_upper_layer_header() {
    let mut r = Reassembler::new(DefragConfig::default());
    let now = Instant::from_secs(1);
    // TCP needs 20 bytes in the first fragment, UDP 8.
    let tcp = datagram6(&[], 6, 40, 1);
    let first = frag6(&tcp, 40, 6, 0, 16, true, 1);
    assert_eq!(
        r.push(Side::Lan, &first, now),
        Outcome::Dropped(FragDrop::Incomplete)
    );
    let udp = datagram6(&[], 17, 40, 1);
    let first = frag6(&udp, 40, 6, 0, 8, true, 2);
    assert_eq!(r.push(Side::Lan, &first, now), Outcome::Queued);
    // Later fragments are not checked; behind a destination options
    // header the check finds the transport after it.
    let later = frag6(&tcp, 40, 6, 16, 8, true, 1);
    assert_eq!(r.push(Side::Lan, &later, now), Outcome::Queued);
    let opts = datagram6(&[(60, 16)], 6, 40, 1);
    // The fragment header before the destination options: 16 + 16 bytes.
    let cut = frag6(&opts, 40, 6, 0, 24, true, 3);
    assert_eq!(
        r.push(Side::Lan, &cut, now),
        Outcome::Dropped(FragDrop::Incomplete)
    );
    let whole = frag6(&opts, 40, 6, 0, 40, true, 3);
    assert_eq!(r.push(Side::Lan, &whole, now), Outcome::Queued);
    // A fragment header cut short is dropped.
    let mut short = frag6(&udp, 40, 6, 8, 8, true, 4);
    short.truncate(44);
    short[4..6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        r.push(Side::Lan, &short, now),
        Outcome::Dropped(FragDrop::BadLength)
    );
    assert_eq!(r.stats().dropped(FragDrop::Incomplete), 2);
}

#[test]
fn a_tiny_first_fragment_splitting_the_tcp_header_reassembles() {
    let mut r = Reassembler::new(DefragConfig::default());
    let now = Instant::from_secs(1);
    let dg = datagram4(20, 6, 100, 3, 0, false);
    assert_eq!(
        r.push(Side::Wan, &frag4(&dg, 0, 8, true), now),
        Outcome::Queued
    );
    let Outcome::Complete(info) = r.push(Side::Wan, &frag4(&dg, 8, 112, false), now) else {
        panic!("complete");
    };
    assert_eq!((info.len, info.first_len, info.fragments), (140, 28, 2));
    assert_eq!(r.datagram(), &dg[..]);
    let p = crate::packet::parse(r.datagram()).expect("the whole TCP header is there");
    assert_eq!(p.ports(), Some((4000, 80)));
}

#[test]
fn interleaved_datagrams_and_keys() {
    let mut r = Reassembler::new(DefragConfig::default());
    let now = Instant::from_secs(1);
    let a = datagram4(20, 17, 56, 1, 0, false);
    let b = datagram4(20, 17, 56, 2, 0, false);
    let c = datagram6(&[], 17, 56, 3);
    let mut tcp_twin = frag4(&a, 0, 24, true);
    tcp_twin[9] = 6; // same id, another protocol: another datagram
    crate::defrag::v4::set_checksum(&mut tcp_twin[..20]);
    let pushes: [(Side, Vec<u8>); 9] = [
        (Side::Lan, frag4(&a, 0, 24, true)),
        (Side::Lan, frag4(&b, 24, 40, false)),
        (Side::Lan, frag6(&c, 40, 6, 0, 32, true, 3)),
        (Side::Wan, frag4(&a, 24, 40, false)), // the other side: another queue
        (Side::Lan, tcp_twin),
        (Side::Lan, frag4(&b, 0, 24, true)),
        (Side::Lan, frag6(&c, 40, 6, 32, 32, false, 3)),
        (Side::Lan, frag4(&a, 24, 40, false)),
        (Side::Wan, frag4(&a, 0, 24, true)),
    ];
    let mut done = vec![];
    for (side, p) in &pushes {
        if let Outcome::Complete(_) = r.push(*side, p, now) {
            done.push(r.datagram().to_vec());
        }
    }
    assert_eq!(done, vec![b.clone(), c.clone(), a.clone(), a.clone()]);
    assert_eq!(r.stats().queues, 1, "the TCP twin waits");
}
