//! Fragments through the pure packet path: reassembled before tracking,
//! the datagram tracked and matched once (ports and all), answered about
//! with its first fragment quoted, and forwarded cut again to the largest
//! fragment's size. Fragments are made with the library's own cutter
//! (`defrag::refragment`), whose round trip `tests/defrag.rs` checks.

mod common;

use common::*;
use tunfw::conntrack::CtState;
use tunfw::defrag::FragDrop;
use tunfw::packet::{self, Transport};
use tunfw::side::Side;
use tunfw::stats::DropReason;
use tunfw::verdict::{Fate, Verdict};

/// `pkt` cut into fragments of at most `size` bytes (IPv6: identification 77).
fn cut(pkt: &[u8], size: usize) -> Vec<Vec<u8>> {
    let pieces = fragments(pkt, size, 77);
    assert!(pieces.len() > 1, "the fixture must fragment");
    pieces
}

/// Send `frags` from `side`; every one but the last is held; returns the
/// last verdict and the pieces written for it.
fn send_all(h: &mut Harness, side: Side, frags: &[Vec<u8>]) -> (Verdict, Vec<Vec<u8>>) {
    let (last, rest) = frags.split_last().unwrap();
    for f in rest {
        let v = h.send(side, f.clone());
        assert_eq!(v.fate, Fate::Held, "{v:?}");
    }
    let v = h.send(side, last.clone());
    let mut pieces = Vec::new();
    if let Fate::ForwardFragments(n) = v.fate {
        for i in 0..n {
            let mut out = vec![0u8; 70_000];
            let len = h.fw.fragment_piece(i, &mut out).expect("piece");
            out.truncate(len);
            pieces.push(out);
        }
        assert!(h.fw.fragment_piece(n, &mut [0u8; 2000]).is_none());
    }
    (v, pieces)
}

/// The upper-layer payload the pieces carry, put back together by
/// offset, and the TTL / hop limit they carry.
fn payload_of(pieces: &[Vec<u8>]) -> (Vec<u8>, u8) {
    let mut data = vec![0u8; 70_000];
    let mut end = 0;
    let mut ttl = 0;
    for p in pieces {
        let (off, body, hop) = if p[0] >> 4 == 4 {
            let hl = usize::from(p[0] & 15) * 4;
            let word = u16::from_be_bytes([p[6], p[7]]);
            assert!(
                tunfw::wire::checksum::internet_checksum(&[&p[..hl]]) == 0,
                "header checksum"
            );
            (usize::from(word & 0x1fff) * 8, &p[hl..], p[8])
        } else {
            assert_eq!(p[6], 44, "a fragment header follows the fixed header");
            let word = u16::from_be_bytes([p[42], p[43]]);
            (usize::from(word & !7), &p[48..], p[7])
        };
        data[off..off + body.len()].copy_from_slice(body);
        end = end.max(off + body.len());
        ttl = hop;
    }
    data.truncate(end);
    (data, ttl)
}

#[test]
fn a_fragmented_udp_query_and_answer_pass_in_both_families() {
    for v6 in [false, true] {
        let mut h = Harness::default_config();
        let (c, s): (core::net::IpAddr, core::net::IpAddr) = if v6 {
            (CLIENT6.into(), SERVER6.into())
        } else {
            (CLIENT.into(), SERVER.into())
        };
        let query = udp(c, s, 5000, 53, &[0x51; 4000]);
        let (v, pieces) = send_all(&mut h, Side::Lan, &cut(&query, 1500));
        assert!(
            matches!(v.fate, Fate::ForwardFragments(3)),
            "v6 {v6}: {v:?}"
        );
        assert_eq!(v.state, Some(CtState::New));
        assert!(pieces.iter().all(|p| p.len() <= 1500));
        let (data, ttl) = payload_of(&pieces);
        let hl = if v6 { 40 } else { 20 };
        assert_eq!(data, query[hl..], "the UDP header and payload arrive whole");
        assert_eq!(ttl, 63, "TTL / hop limit decremented once");
        assert_eq!(h.fw.conntrack().len(), 1, "tracked once");
        let answer = udp(s, c, 53, 5000, &[0x52; 9000]);
        let (v, pieces) = send_all(&mut h, Side::Wan, &cut(&answer, 1280));
        assert_eq!(v.state, Some(CtState::Established), "v6 {v6}");
        assert!(pieces.len() >= 8 && pieces.iter().all(|p| p.len() <= 1280));
        let st = h.fw.stats();
        assert_eq!(st.packets_forwarded, [1, 1], "one datagram each way");
        assert_eq!(st.fragments_held, [2, pieces.len() as u64 - 1]);
        assert_eq!(h.fw.defrag().stats().reassembled, 2);
    }
}

#[test]
fn rules_see_the_ports_of_a_fragmented_datagram() {
    let mut h = Harness::default_config();
    // Server-initiated: NEW inbound, dropped by the policy, counted once.
    let probe = udp(SERVER, CLIENT, 53, 7000, &[1; 3000]);
    let (v, pieces) = send_all(&mut h, Side::Wan, &cut(&probe, 576));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
    assert_eq!(v.state, Some(CtState::New));
    assert!(pieces.is_empty());
    assert_eq!(h.fw.stats().dropped[DropReason::PolicyInbound.index()], 1);
    // A rule on ports decides a fragmented datagram as a whole one.
    let cfg = r#"(
        outbound: (policy: Drop, rules: [(proto: Udp, dport: 53, action: Accept)]),
        inbound: (policy: Drop),
    )"#;
    let mut h = Harness::with_config(cfg);
    let ok = udp(CLIENT6, SERVER6, 9, 53, &[2; 3000]);
    assert!(send_all(&mut h, Side::Lan, &cut(&ok, 1280))
        .0
        .forwards_any());
    let refused = udp(CLIENT6, SERVER6, 9, 54, &[2; 3000]);
    let (v, _) = send_all(&mut h, Side::Lan, &cut(&refused, 1280));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyOutbound));
}

#[test]
fn a_big_ping_passes_in_both_families() {
    let mut h = Harness::default_config();
    for (req, rep) in [
        (
            echo_big(CLIENT.into(), SERVER.into(), 8),
            echo_big(SERVER.into(), CLIENT.into(), 0),
        ),
        (
            echo_big(CLIENT6.into(), SERVER6.into(), 128),
            echo_big(SERVER6.into(), CLIENT6.into(), 129),
        ),
    ] {
        let (v, _) = send_all(&mut h, Side::Lan, &cut(&req, 1500));
        assert!(v.forwards_any() && v.state == Some(CtState::New), "{v:?}");
        let (v, _) = send_all(&mut h, Side::Wan, &cut(&rep, 1500));
        assert!(
            v.forwards_any() && v.state == Some(CtState::Established),
            "{v:?}"
        );
    }
}

fn echo_big(src: core::net::IpAddr, dst: core::net::IpAddr, ty: u8) -> Vec<u8> {
    icmp(src, dst, ty, 0, [0, 9, 0, 1], &[0xab; 3000])
}

#[test]
fn answers_about_a_datagram_quote_its_first_fragment() {
    let cfg = TRACKING_CONFIG.replace(
        "outbound: (policy: Drop, rules: [",
        "outbound: (policy: Drop, rules: [(proto: Udp, dport: 99, action: Reject), ",
    );
    let mut h = Harness::with_config(&cfg);
    for (c, s) in [
        (
            core::net::IpAddr::from(CLIENT),
            core::net::IpAddr::from(SERVER),
        ),
        (CLIENT6.into(), SERVER6.into()),
    ] {
        let frags = cut(&udp(c, s, 1, 99, &[3; 2000]), 1000);
        let (v, _) = send_all(&mut h, Side::Lan, &frags);
        assert_eq!(v.drop_reason(), Some(DropReason::RuleReject));
        let ans = packet::parse(&h.last_answer).expect("answer parses");
        let (Transport::Icmp(i) | Transport::Icmpv6(i)) = ans.transport else {
            panic!("not ICMP: {ans:?}")
        };
        let first = &frags[0];
        let hl = if c.is_ipv4() { 28 } else { 48 };
        assert_eq!(
            &i.body[..hl],
            &first[..hl],
            "quotes the first fragment (MF set)"
        );
        // TTL 1: time exceeded, again quoting the first fragment.
        let frags = cut(&with_ttl(udp(c, s, 2, 7, &[4; 2000]), 1), 1000);
        let frags: Vec<_> = frags.into_iter().map(|f| with_ttl(f, 1)).collect();
        let (v, _) = send_all(&mut h, Side::Lan, &frags);
        assert_eq!(v.drop_reason(), Some(DropReason::TtlExceeded));
        let ans = packet::parse(&h.last_answer).expect("time exceeded parses");
        let (Transport::Icmp(i) | Transport::Icmpv6(i)) = ans.transport else {
            panic!()
        };
        assert_eq!(&i.body[..hl], &frags[0][..hl]);
    }
}

#[test]
fn overlaps_discard_and_duplicates_drop_alone() {
    let mut h = Harness::tracking();
    let frags = cut(&udp(CLIENT, SERVER, 1, 2, &[5; 3000]), 1500);
    assert_eq!(h.out(frags[0].clone()).fate, Fate::Held);
    let v = h.out(frags[0].clone());
    assert_eq!(
        v.drop_reason(),
        Some(DropReason::Fragment),
        "exact duplicate"
    );
    // An overlapping fragment discards the datagram: the rest never completes it.
    let mut overlap = frags[1].clone();
    overlap[7] -= 1; // offset 8 bytes earlier
    overlap[10] = 0;
    overlap[11] = 0;
    let c = tunfw::wire::checksum::internet_checksum(&[&overlap[..20]]);
    overlap[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(h.out(overlap).drop_reason(), Some(DropReason::Fragment));
    let d = h.fw.defrag().stats();
    assert_eq!(
        (d.dropped(FragDrop::Duplicate), d.dropped(FragDrop::Overlap)),
        (1, 1)
    );
    for f in &frags[1..] {
        assert!(
            !h.out(f.clone()).forwards_any(),
            "the discarded datagram never completes"
        );
    }
    assert_eq!(h.fw.conntrack().len(), 0);
}

#[test]
fn incomplete_datagrams_expire_and_their_memory_returns() {
    let mut h = Harness::tracking();
    let frags = cut(&udp(CLIENT6, SERVER6, 1, 2, &[6; 3000]), 1280);
    assert_eq!(h.out(frags[0].clone()).fate, Fate::Held);
    assert!(h.fw.defrag().stats().memory > 0);
    h.advance_secs(61);
    h.fw.tick(h.now);
    let d = h.fw.defrag().stats();
    assert_eq!((d.timed_out, d.queues, d.memory), (1, 0, 0));
    // The late rest starts a new queue that never completes.
    assert_eq!(h.out(frags[1].clone()).fate, Fate::Held);
}

#[test]
fn a_datagram_too_big_for_the_outgoing_mtu_is_answered() {
    let mut h = Harness::tracking();
    h.fw.set_mtu(Side::Wan, 1280);
    // IPv6 fragments of 1500 bytes may not go out of a 1280-byte link: packet too big.
    let frags = cut(&udp(CLIENT6, SERVER6, 1, 2, &[7; 3000]), 1500);
    let (v, _) = send_all(&mut h, Side::Lan, &frags);
    assert_eq!(v.drop_reason(), Some(DropReason::TooBig));
    let ans = packet::parse(&h.last_answer).expect("packet too big parses");
    let Transport::Icmpv6(i) = ans.transport else {
        panic!("{ans:?}")
    };
    assert_eq!((i.icmp_type, i.code), (2, 0));
    assert_eq!(&h.last_answer[44..48], &1280u32.to_be_bytes(), "the MTU");
    // IPv4 without DF is cut to the MTU.
    let mut p = udp(CLIENT, SERVER, 1, 2, &[7; 3000]);
    p[6] = 0;
    let c = tunfw::wire::checksum::internet_checksum(&[&{
        let mut x = p[..20].to_vec();
        x[10] = 0;
        x[11] = 0;
        x
    }]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let (v, pieces) = send_all(&mut h, Side::Lan, &cut(&p, 1500));
    assert!(v.forwards_any());
    assert!(pieces.iter().all(|p| p.len() <= 1280), "cut to the MTU");
}
