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

/// `dg` cut where its data (after `hl` bytes: the IPv4 header, the IPv6
/// fixed header) reaches each of `starts` (IPv6: identification 77).
fn cut_at(dg: &[u8], hl: usize, starts: &[u16]) -> Vec<Vec<u8>> {
    let b = tunfw::defrag::Boundaries::new(hl, starts);
    let mut out = vec![0u8; 70_000];
    (0..tunfw::defrag::fragment_count_with(dg, 65_535, &b).unwrap())
        .map(|i| {
            let n = tunfw::defrag::refragment_with(dg, 65_535, &b, 77, i, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect()
}

fn lengths(pieces: &[Vec<u8>]) -> Vec<usize> {
    pieces.iter().map(Vec::len).collect()
}

/// The parity harness's `frag_udp_uneven_cuts`, `v6_frag_udp_in_order` and
/// `v6_frag_udp_small_fragments`: Linux keeps a datagram reassembled for
/// conntrack as the fragments it came in (its `frag_list`), and
/// `ip_do_fragment` / `ip6_fragment` send them so again when each fits
/// (their fast path): the sender's cuts, uneven or below IPv6's 1,280
/// bytes, come out as they went in. A fragment too big for the outgoing
/// link sends the datagram through the even cuts of the slow path.
#[test]
fn fragments_leave_as_they_came_when_they_fit() {
    let cases: [(core::net::IpAddr, core::net::IpAddr, usize, usize, &[u16]); 4] = [
        (
            CLIENT.into(),
            SERVER.into(),
            20,
            3000,
            &[0, 512, 1480, 2000],
        ),
        (CLIENT6.into(), SERVER6.into(), 40, 3000, &[0, 1200, 2400]),
        (CLIENT6.into(), SERVER6.into(), 40, 1000, &[0, 400, 800]),
        (
            CLIENT6.into(),
            SERVER6.into(),
            40,
            3000,
            &[0, 512, 1440, 2000],
        ),
    ];
    for (c, s, hl, size, starts) in cases {
        let mut h = Harness::default_config();
        h.fw.set_mtu(Side::Wan, 1500);
        let mut dg = udp(c, s, 5000, 53, &vec![0x33; size]);
        if hl == 20 {
            // Without DF, so that it may be cut smaller below.
            dg[6] = 0;
            dg[10..12].fill(0);
            let sum = tunfw::wire::checksum::internet_checksum(&[&dg[..20]]);
            dg[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let frags = cut_at(&dg, hl, starts);
        assert_eq!(frags.len(), starts.len());
        let mut sent = frags.clone();
        sent.reverse();
        let (v, pieces) = send_all(&mut h, Side::Lan, &sent);
        assert!(v.forwards_any(), "{v:?}");
        assert_eq!(lengths(&pieces), lengths(&frags), "{hl} {starts:?}");
        assert_eq!(payload_of(&pieces).0, dg[hl..]);
        // Out of a link smaller than the largest fragment: even cuts.
        let mut h = Harness::default_config();
        let largest = frags.iter().map(Vec::len).max().unwrap();
        h.fw.set_mtu(Side::Wan, largest - 8);
        let (v, pieces) = send_all(&mut h, Side::Lan, &frags);
        if hl == 20 {
            assert!(v.forwards_any(), "{v:?}");
            assert!(pieces.iter().all(|p| p.len() <= largest - 8));
            assert_eq!(payload_of(&pieces).0, dg[hl..]);
        } else {
            assert_eq!(
                v.drop_reason(),
                Some(DropReason::TooBig),
                "IPv6 is never cut smaller"
            );
        }
    }
}

/// The parity harness's `frag_tcp_first_fragment_8_bytes` and
/// `v6_frag_udp_first_fragment_dst_opts_and_udp`: where Linux 6.18 cuts a
/// datagram evenly although its fragments would fit. An IPv4 TCP
/// datagram whose first fragment held less than the 20-byte TCP header
/// (early demux pulls the header into that fragment's buffer); an IPv6
/// one whose fragmentable part began with Destination Options (part of
/// the unfragmentable part once reassembled).
#[test]
fn some_fragments_leave_in_even_cuts() {
    let mut h = Harness::default_config();
    let syn = tcp_segment(CLIENT, SERVER, 4000, 80, 1, 0, 0x02, &[0x61; 100]);
    let frags = cut_at(&syn, 20, &[0, 8]);
    let (v, pieces) = send_all(&mut h, Side::Lan, &frags);
    assert!(v.forwards_any(), "{v:?}");
    assert_eq!(
        lengths(&pieces),
        [132, 28],
        "even cuts at the largest fragment"
    );
    let mut h = Harness::default_config();
    let frags = cut_at(&syn, 20, &[0, 24]);
    let (_, pieces) = send_all(&mut h, Side::Lan, &frags);
    assert_eq!(
        lengths(&pieces),
        lengths(&frags),
        "the whole header came first"
    );
    // IPv6 with Destination Options (8 bytes) before UDP: the fixed
    // header, then the options announcing UDP (17), then the datagram.
    let dg = with_dst_opts(&udp(CLIENT6, SERVER6, 5000, 53, &[0x44; 3000]));
    // The fragments begin after the fixed header (the options go with the
    // first); boundaries as the harness cuts them.
    let frags: Vec<Vec<u8>> = [(0, 16), (16, 1200), (1200, 2400), (2400, dg.len() - 40)]
        .iter()
        .map(|&(a, b)| frag6_of(&dg, a, b, b < dg.len() - 40))
        .collect();
    let mut h = Harness::default_config();
    h.fw.set_mtu(Side::Wan, 1500);
    let (v, pieces) = send_all(&mut h, Side::Lan, &frags);
    assert!(v.forwards_any(), "{v:?}");
    assert_eq!(lengths(&pieces), [1280, 1280, 616], "even cuts at 1,280");
    // One that fits in 1,280 bytes leaves as one atomic fragment (the slow
    // path of ip6_fragment, which Linux calls for a datagram longer than
    // its largest fragment), not whole.
    let small = with_dst_opts(&udp(CLIENT6, SERVER6, 5000, 53, &[0x44; 300]));
    let frags = [
        frag6_of(&small, 0, 16, true),
        frag6_of(&small, 16, 316, false),
    ];
    let mut h = Harness::tracking();
    let (v, pieces) = send_all(&mut h, Side::Lan, &frags);
    assert!(v.forwards_any(), "{v:?}");
    assert_eq!(lengths(&pieces), [small.len() + 8]);
    // The options stay in front (ip6_find_1stfragopt), then a fragment
    // header naming UDP, offset 0, M clear.
    assert_eq!(&pieces[0][40..52], &[44, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 0]);
}

/// The IPv6 packet `inner` (no extension headers) with an 8-byte
/// Destination Options header before its upper layer.
fn with_dst_opts(inner: &[u8]) -> Vec<u8> {
    let mut dg = inner[..40].to_vec();
    dg[6] = 60;
    dg.extend_from_slice(&[inner[6], 0, 1, 4, 0, 0, 0, 0]);
    dg.extend_from_slice(&inner[40..]);
    let payload = (dg.len() - 40) as u16;
    dg[4..6].copy_from_slice(&payload.to_be_bytes());
    dg
}

/// The IPv6 fragment of `dg` (no extension headers before the fragment
/// header) holding bytes `[a, b)` of what follows its fixed header.
fn frag6_of(dg: &[u8], a: usize, b: usize, more: bool) -> Vec<u8> {
    let mut f = dg[..40].to_vec();
    f[6] = 44;
    let word = a as u16 | u16::from(more);
    f.extend_from_slice(&[dg[6], 0]);
    f.extend_from_slice(&word.to_be_bytes());
    f.extend_from_slice(&77u32.to_be_bytes());
    f.extend_from_slice(&dg[40 + a..40 + b]);
    let payload = (f.len() - 40) as u16;
    f[4..6].copy_from_slice(&payload.to_be_bytes());
    f
}
