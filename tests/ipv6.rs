//! IPv6 through the pure packet path: parsing (extension-header chains),
//! tracking (TCP, UDP, ICMPv6 queries and errors, ND/MLD untracked), one
//! ruleset for both families, and the router duties (hop limit, answers).
//! Table-driven where the cases share a shape.

mod common;

use core::net::{IpAddr, Ipv6Addr};

use common::*;
use tunfw::config::Config;
use tunfw::conntrack::CtState;
use tunfw::packet::{self, Transport};
use tunfw::stats::{DropReason, InvalidReason};
use tunfw::wire::ipv6 as w6;

const ECHO_REQ: u8 = 128;
const ECHO_REP: u8 = 129;

fn invalid_count(h: &Harness, r: InvalidReason) -> u64 {
    h.fw.stats().invalid[r.index()]
}

fn syn(sport: u16, dport: u16, seq: u32) -> Seg {
    Seg {
        sport,
        dport,
        seq,
        flags: SYN,
        window: 64000,
        ..Seg::default()
    }
}

/// The client's SYN, the server's SYN-ACK and the client's ACK of an IPv6
/// TCP connection 40000 -> 80; returns the next sequence numbers.
fn handshake(h: &mut Harness) -> (u32, u32) {
    assert!(forwarded(
        &h.out(tcp(CLIENT6, SERVER6, &syn(40000, 80, 100))),
        CtState::New
    ));
    let synack = Seg {
        ack: 101,
        flags: SYN | ACK,
        ..syn(80, 40000, 5000)
    };
    assert!(forwarded(
        &h.inb(tcp(SERVER6, CLIENT6, &synack)),
        CtState::Established
    ));
    let ack = tcp_segment(CLIENT6, SERVER6, 40000, 80, 101, 5001, ACK, b"");
    assert!(forwarded(&h.out(ack), CtState::Established));
    (101, 5001)
}

#[test]
fn tcp_over_ipv6_handshake_data_and_teardown() {
    let mut h = Harness::default_config();
    let (c, s) = handshake(&mut h);
    let get = tcp_segment(
        CLIENT6,
        SERVER6,
        40000,
        80,
        c,
        s,
        ACK | PSH,
        b"GET / HTTP/1.1\r\n\r\n",
    );
    assert!(h.out(get).forwards());
    let data = tcp_segment(
        SERVER6,
        CLIENT6,
        80,
        40000,
        s,
        c + 18,
        ACK | PSH,
        &[7; 1000],
    );
    assert!(forwarded(&h.inb(data), CtState::Established));
    // Data far beyond the receiver's window is INVALID, as over IPv4.
    let far = tcp_segment(
        SERVER6,
        CLIENT6,
        80,
        40000,
        s + 5_000_000,
        c + 18,
        ACK,
        b"x",
    );
    let v = h.inb(far);
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(v.invalid, Some(InvalidReason::TcpSeqOverWindow));
    // Server-initiated IPv6 TCP is NEW inbound: the default policy drops it.
    let v = h.inb(tcp(SERVER6, CLIENT6, &syn(5555, 22, 1)));
    assert_eq!(
        (v.state, v.drop_reason()),
        (Some(CtState::New), Some(DropReason::PolicyInbound))
    );
    // FIN both ways, last ACK: the flow ends in TIME_WAIT and stays tracked.
    let fin = tcp_segment(
        CLIENT6,
        SERVER6,
        40000,
        80,
        c + 18,
        s + 1000,
        ACK | FIN,
        b"",
    );
    assert!(h.out(fin).forwards());
    let fin2 = tcp_segment(
        SERVER6,
        CLIENT6,
        80,
        40000,
        s + 1000,
        c + 19,
        ACK | FIN,
        b"",
    );
    assert!(h.inb(fin2).forwards());
    let last = tcp_segment(CLIENT6, SERVER6, 40000, 80, c + 19, s + 1001, ACK, b"");
    assert!(h.out(last).forwards());
    let t = tuple(6, CLIENT6, 40000, SERVER6, 80);
    let (flow, _) = h.flow(&t).expect("tracked");
    assert_eq!(format!("{:?}", flow.tcp_state().unwrap()), "TimeWait");
}

#[test]
fn mid_stream_pickup_over_ipv6() {
    let mut h = Harness::tracking();
    let ack = tcp_segment(CLIENT6, SERVER6, 41000, 443, 7000, 9000, ACK, b"mid");
    assert!(
        forwarded(&h.out(ack), CtState::New),
        "loose pickup of an ACK"
    );
    let back = tcp_segment(SERVER6, CLIENT6, 443, 41000, 9000, 7003, ACK, b"ok");
    assert!(forwarded(&h.inb(back), CtState::Established));
}

#[test]
fn udp_over_ipv6_request_reply_and_server_initiated() {
    let mut h = Harness::default_config();
    assert!(forwarded(
        &h.out(udp(CLIENT6, SERVER6, 5353, 53, b"q")),
        CtState::New
    ));
    assert!(forwarded(
        &h.inb(udp(SERVER6, CLIENT6, 53, 5353, b"a")),
        CtState::Established
    ));
    let v = h.inb(udp(SERVER6, CLIENT6, 53, 9999, b"x"));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
    // A UDP checksum error is INVALID (the pseudo-header is IPv6's).
    let mut bad = udp(CLIENT6, SERVER6, 1, 2, b"hello");
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let v = h.out(bad);
    assert_eq!(v.invalid, Some(InvalidReason::UdpBadChecksum));
}

#[test]
fn icmpv6_queries_by_identifier() {
    let mut h = Harness::default_config();
    // (from client?, type, id, expected state, forwarded)
    let cases: &[(bool, u8, u16, CtState, bool)] = &[
        (true, ECHO_REQ, 7, CtState::New, true),
        (false, ECHO_REP, 7, CtState::Established, true),
        (false, ECHO_REP, 8, CtState::Invalid, false), // unsolicited reply
        (false, ECHO_REQ, 9, CtState::New, false),     // server pings client
        (true, 139, 11, CtState::New, true),           // node information query
        (false, 140, 11, CtState::Established, true),
        (true, 200, 12, CtState::Invalid, false), // unknown informational type
    ];
    for &(out, ty, id, state, fwd) in cases {
        let v = if out {
            h.out(echo(CLIENT6, SERVER6, ty, id, 1))
        } else {
            h.inb(echo(SERVER6, CLIENT6, ty, id, 1))
        };
        assert_eq!(
            (v.state, v.forwards()),
            (Some(state), fwd),
            "type {ty} id {id}"
        );
    }
    assert_eq!(invalid_count(&h, InvalidReason::IcmpUnsolicitedReply), 1);
    assert_eq!(invalid_count(&h, InvalidReason::IcmpUntrackedType), 1);
    // A ping flow lives 30 s (nf_conntrack_icmpv6_timeout).
    let t = tuple(58, CLIENT6, 7, SERVER6, u16::from_be_bytes([ECHO_REQ, 0]));
    let (flow, _) = h.flow(&t).expect("tracked");
    assert_eq!(flow.expires, h.now + core::time::Duration::from_secs(30));
}

#[test]
fn icmpv6_errors_are_related_through_the_quoted_packet() {
    let mut h = Harness::default_config();
    let (c, s) = handshake(&mut h);
    let sent = tcp_segment(CLIENT6, SERVER6, 40000, 80, c, s, ACK, &[1; 1400]);
    assert!(h.out(sent.clone()).forwards());
    let router = Ipv6Addr::new(0xfd00, 0, 9, 0, 0, 0, 0, 1);
    for (ty, code) in [(2, 0), (1, 4), (3, 0), (4, 0)] {
        // Packet too big carries the MTU in the rest-of-header word.
        let rest = if ty == 2 {
            1280u32.to_be_bytes()
        } else {
            [0; 4]
        };
        let e = icmp(router, CLIENT6, ty, code, rest, &sent[..48]);
        let v = h.inb(e);
        assert!(forwarded(&v, CtState::Related), "type {ty}: {v:?}");
    }
    // About no flow: INVALID, dropped.
    let stray = tcp_segment(CLIENT6, SERVER6, 40001, 80, 1, 1, ACK, b"");
    let v = h.inb(icmp_error(router, CLIENT6, 1, 4, &stray));
    assert_eq!(v.invalid, Some(InvalidReason::IcmpErrorNoFlow));
    assert!(!v.forwards());
    // To an address other than the quoted packet's source: INVALID.
    let other = Ipv6Addr::new(0xfd00, 0, 1, 0, 0, 0, 0, 99);
    let v = h.inb(icmp_error(router, other, 1, 4, &sent));
    assert_eq!(v.invalid, Some(InvalidReason::IcmpErrorWrongDestination));
    // Quoting an ICMPv6 error (an error about an error) matches nothing.
    let inner = icmp_error(SERVER6, CLIENT6, 1, 4, &sent);
    let v = h.inb(icmp_error(router, CLIENT6, 1, 4, &inner));
    assert_eq!(v.invalid, Some(InvalidReason::IcmpErrorBadInner));
}

#[test]
fn neighbour_discovery_and_mld_are_untracked() {
    let cfg = r#"(
        outbound: (policy: Drop, rules: [
            (name: "nd", proto: Icmpv6, state: [Untracked], action: Accept),
        ]),
        inbound: (policy: Drop, rules: [(state: [New, Established, Related, Invalid], action: Accept)]),
    )"#;
    let mut h = Harness::with_config(cfg);
    for ty in [130u8, 131, 132, 133, 134, 135, 136, 143] {
        let v = h.out(icmp(CLIENT6, SERVER6, ty, 0, [0; 4], &[0; 16]));
        assert!(forwarded(&v, CtState::Untracked), "type {ty} {v:?}");
        // No state rule but UNTRACKED matches it.
        let v = h.inb(icmp(SERVER6, CLIENT6, ty, 0, [0; 4], &[0; 16]));
        assert_eq!(v.state, Some(CtState::Untracked));
        assert_eq!(
            v.drop_reason(),
            Some(DropReason::PolicyInbound),
            "type {ty}"
        );
    }
    assert_eq!(h.fw.conntrack().len(), 0, "nothing tracked");
    // Redirect (137) is not in Linux's untracked list: INVALID as a first packet.
    let v = h.out(icmp(CLIENT6, SERVER6, 137, 0, [0; 4], &[0; 32]));
    assert_eq!(v.state, Some(CtState::Invalid));
}

/// An IPv6 UDP datagram 1 -> 2 behind the extension headers `ext`, the
/// first of which is `next`.
fn udp_behind(next: u8, ext: &[u8]) -> Vec<u8> {
    let plain = udp(CLIENT6, SERVER6, 1000, 2000, b"ext");
    w6_packet(next, ext, &plain[40..])
}

fn w6_packet(next: u8, ext: &[u8], upper: &[u8]) -> Vec<u8> {
    ipv6(CLIENT6, SERVER6, next, ext, 64, upper)
}

#[test]
fn extension_header_chains() {
    let hbh_to = |n: u8| [n, 0, 1, 4, 0, 0, 0, 0];
    let mut hbh_dst_rt = hbh_to(60).to_vec();
    hbh_dst_rt.extend_from_slice(&[43, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> routing
    hbh_dst_rt.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]); // routing type 0, segments left 0 -> UDP
    let ah = [17u8, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]; // AH: (1 + 2) * 4 = 12 bytes
    let atomic = [17u8, 0, 0, 0, 0, 0, 0, 9];
    let first_frag = [17u8, 0, 0, 1, 0, 0, 0, 9];
    let later_frag = [17u8, 0, 0, 8, 0, 0, 0, 9];
    enum Want {
        Tracked(u8, usize),
        Invalid(InvalidReason),
        Fragment,
        FragmentRefused,
        /// A fragment that completes its datagram alone (an atomic one:
        /// Linux's defrag queues it as any other).
        Reassembled,
    }
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        (
            "hbh, dest opts, routing",
            udp_behind(0, &hbh_dst_rt),
            Want::Tracked(17, 64),
        ),
        ("ah", udp_behind(51, &ah), Want::Tracked(17, 52)),
        (
            "atomic fragment",
            udp_behind(44, &atomic),
            Want::Reassembled,
        ),
        (
            "esp is the transport",
            w6_packet(50, &[], &[0; 24]),
            Want::Tracked(50, 40),
        ),
        (
            // 11 bytes with M set: not a multiple of 8, refused by the reassembler.
            "first fragment",
            udp_behind(44, &first_frag),
            Want::FragmentRefused,
        ),
        (
            "later fragment",
            udp_behind(44, &later_frag),
            Want::Fragment,
        ),
        (
            "no next header",
            w6_packet(60, &[59, 0, 1, 4, 0, 0, 0, 0], &[]),
            Want::Invalid(InvalidReason::Ipv6NoNextHeader),
        ),
        (
            "bare no next header",
            w6_packet(59, &[], &[]),
            Want::Invalid(InvalidReason::Ipv6NoNextHeader),
        ),
        (
            "truncated chain",
            w6_packet(60, &[17, 3, 0, 0, 0, 0, 0, 0], &[0; 8]),
            Want::Invalid(InvalidReason::Ipv6BadExtHeader),
        ),
    ];
    for (name, pkt, want) in cases {
        let parsed = packet::parse(&pkt).map(|p| (p.ip.protocol, p.ip.header_len));
        let mut h = Harness::tracking();
        let v = h.out(pkt.clone());
        match want {
            Want::Tracked(proto, header_len) => {
                let p = parsed.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(p, (proto, header_len), "{name}");
                assert!(forwarded(&v, CtState::New), "{name}: {v:?}");
            }
            Want::Invalid(reason) => {
                assert_eq!(v.invalid, Some(reason), "{name}");
                assert_eq!(v.drop_reason(), Some(DropReason::Malformed), "{name}");
                assert_eq!(invalid_count(&h, reason), 1, "{name}");
            }
            Want::Fragment => assert_eq!(v.fate, tunfw::verdict::Fate::Held, "{name}"),
            Want::Reassembled => {
                assert_eq!(parsed.err(), Some(packet::ParseError::Fragment), "{name}");
                assert!(
                    v.forwards_any() && v.state == Some(CtState::New),
                    "{name}: {v:?}"
                );
            }
            Want::FragmentRefused => {
                assert_eq!(v.drop_reason(), Some(DropReason::Fragment), "{name}")
            }
        }
    }
}

#[test]
fn truncated_and_malformed_ipv6_never_panic() {
    let mut h = Harness::tracking();
    let full = tcp(CLIENT6, SERVER6, &syn(1, 2, 3));
    for cut in 0..full.len() {
        let v = h.out(full[..cut].to_vec());
        assert!(!v.forwards(), "cut at {cut}");
    }
    // Payload length larger than the buffer.
    let mut long = full.clone();
    long[4..6].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(h.out(long).invalid, Some(InvalidReason::IpTruncated));
    // Every bit of the fixed header flipped, and random chains: no panic.
    let mut x: u32 = 0x9e37_79b9;
    for i in 0..4000 {
        let mut p = full.clone();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let at = (x as usize) % p.len();
        p[at] ^= 1 << (i % 8);
        if i % 3 == 0 {
            p[6] = [0, 43, 44, 51, 60, 59, 50][(x as usize >> 8) % 7];
        }
        let _ = h.out(p);
    }
}

#[test]
fn one_ruleset_for_both_families() {
    let cfg = r#"(
        outbound: (policy: Drop, rules: [
            (name: "v6-net", src: "fd00:0:1::/48", proto: Udp, dport: 53, action: Accept),
            (name: "v4-net", src: "10.0.1.0/24", proto: Udp, dport: 54, action: Accept),
            (name: "both", proto: Udp, dport: 55, action: Accept),
            (name: "only-v6", family: Ipv6, proto: Udp, dport: 56, action: Accept),
            (name: "icmp", proto: Icmp, action: Accept),
            (name: "icmpv6-echo", proto: Icmpv6, icmp_type: 128, action: Accept),
        ]),
        inbound: (policy: Drop),
    )"#;
    let mut h = Harness::with_config(cfg);
    let cases: &[(bool, u16, bool)] = &[
        // (IPv6?, dport, forwarded)
        (true, 53, true),
        (false, 53, false),
        (false, 54, true),
        (true, 54, false),
        (true, 55, true),
        (false, 55, true),
        (true, 56, true),
        (false, 56, false),
    ];
    for &(v6, dport, fwd) in cases {
        let p = if v6 {
            udp(CLIENT6, SERVER6, 999, dport, b"x")
        } else {
            udp(CLIENT, SERVER, 999, dport, b"x")
        };
        assert_eq!(h.out(p).forwards(), fwd, "v6 {v6} dport {dport}");
    }
    assert!(
        h.out(echo(CLIENT, SERVER, 8, 1, 1)).forwards(),
        "ICMPv4 echo by proto: Icmp"
    );
    assert!(
        h.out(echo(CLIENT6, SERVER6, ECHO_REQ, 1, 1)).forwards(),
        "ICMPv6 echo by type"
    );
    assert!(
        !h.out(echo(CLIENT6, SERVER6, 139, 1, 1)).forwards(),
        "NI query: no rule"
    );
}

#[test]
fn a_rule_mixing_families_is_a_config_error() {
    for (rule, words) in [
        (
            r#"(src: "10.0.0.0/8", dst: "fd00::/8", action: Accept)"#,
            "src is IPv4 and dst is IPv6",
        ),
        (
            r#"(src: ["10.0.0.0/8", "fd00::/8"], action: Accept)"#,
            "two families",
        ),
        (
            r#"(src: "fd00::/8", proto: Icmp, action: Accept)"#,
            "src is IPv6 and proto is IPv4",
        ),
        (
            r#"(family: Ipv4, proto: Icmpv6, action: Accept)"#,
            "family is IPv4 and proto is IPv6",
        ),
        (
            r#"(dst: "10.0.0.1", proto: Icmpv6, action: Accept)"#,
            "dst is IPv4 and proto is IPv6",
        ),
    ] {
        let text = format!("(\n    outbound: (policy: Drop, rules: [\n        {rule},\n    ]),\n    inbound: (policy: Drop),\n)");
        let e = Config::parse(&text, "mixed.ron").expect_err(rule);
        assert!(e.message.contains(words), "{rule}: {e}");
        assert_eq!((e.file.as_str(), e.line), ("mixed.ron", 3), "{rule}: {e}");
    }
}

#[test]
fn hop_limit_is_decremented_and_expiry_answered_with_icmpv6() {
    let mut h = Harness::tracking();
    let mut p = udp(CLIENT6, SERVER6, 1, 2, b"hop");
    let mut answer = vec![0u8; 1500];
    let v =
        h.fw.process(tunfw::side::Side::Lan, &mut p, &mut answer, h.now);
    assert!(v.forwards());
    assert_eq!(p[w6::HOP_LIMIT], 63);

    let probe = with_ttl(udp(CLIENT6, SERVER6, 33434, 33435, &[0; 1400]), 1);
    let v = h.out(probe.clone());
    assert_eq!(v.drop_reason(), Some(DropReason::TtlExceeded));
    let ans = packet::parse(&h.last_answer).expect("answer parses: ICMPv6 checksum valid");
    assert_eq!(ans.ip.src, IpAddr::V6("fd00:0:1::1".parse().unwrap()));
    assert_eq!(ans.ip.dst, IpAddr::V6(CLIENT6));
    let Transport::Icmpv6(i) = ans.transport else {
        panic!("not ICMPv6: {ans:?}")
    };
    assert_eq!((i.icmp_type, i.code), (3, 0));
    assert_eq!(
        h.last_answer.len(),
        1280,
        "quotes as much as fits in 1280 bytes"
    );
    assert_eq!(&i.body[..40], &probe[..40], "quotes the original header");
    assert_eq!(h.fw.conntrack().len(), 1, "only the first datagram's flow");

    // Without an IPv6 router address: a silent drop.
    let mut h = Harness::default_config();
    let v = h.out(probe);
    assert_eq!(
        (v.drop_reason(), v.answer_len),
        (Some(DropReason::TtlExceeded), 0)
    );
}

#[test]
fn reject_answers_in_ipv6() {
    let cfg = r#"(
        outbound: (policy: Drop, rules: [
            (proto: Tcp, dport: 25, action: Reject),
            (proto: Udp, dport: 5000, action: Reject),
            (proto: Icmpv6, action: Reject),
        ]),
        inbound: (policy: Drop),
    )"#;
    let mut h = Harness::with_config(cfg);
    h.out(tcp(CLIENT6, SERVER6, &syn(1234, 25, 1000)));
    let rst =
        packet::parse(&h.last_answer).expect("RST parses (checksum over the IPv6 pseudo-header)");
    let Transport::Tcp(t) = rst.transport else {
        panic!("not TCP")
    };
    assert_eq!(
        (t.src_port, t.dst_port, t.flags, t.ack.0),
        (25, 1234, RST | ACK, 1001)
    );
    assert_eq!(rst.ip.src, IpAddr::V6(SERVER6));

    let v = h.out(udp(CLIENT6, SERVER6, 4000, 5000, b"q"));
    assert_eq!(v.drop_reason(), Some(DropReason::RuleReject));
    let un = packet::parse(&h.last_answer).expect("ICMPv6 parses");
    let Transport::Icmpv6(i) = un.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!((i.icmp_type, i.code), (1, 4), "port unreachable");
    assert_eq!(
        un.ip.src,
        IpAddr::V6(SERVER6),
        "no router address: the destination's"
    );

    // Never an answer to an ICMPv6 error; an echo request may be answered.
    let err = icmp_error(CLIENT6, SERVER6, 1, 4, &udp(SERVER6, CLIENT6, 1, 2, b"x"));
    let v = h.out(err);
    assert_eq!(
        (v.drop_reason(), v.answer_len),
        (Some(DropReason::RuleReject), 0)
    );
    assert!(h.out(echo(CLIENT6, SERVER6, ECHO_REQ, 1, 1)).answer_len > 0);
}

#[test]
fn addresses_a_router_never_forwards_are_dropped() {
    let mut h = Harness::tracking();
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let mc: Ipv6Addr = "ff02::1".parse().unwrap();
    for (src, dst) in [
        (ll, SERVER6),
        (CLIENT6, ll),
        (CLIENT6, mc),
        (Ipv6Addr::UNSPECIFIED, SERVER6),
    ] {
        let v = h.out(udp(src, dst, 1, 2, b"scope"));
        assert_eq!(
            v.drop_reason(),
            Some(DropReason::Ipv6Scope),
            "{src} -> {dst}"
        );
    }
    assert_eq!(h.fw.stats().dropped[DropReason::Ipv6Scope.index()], 4);
}

#[test]
fn ipv6_drop_still_drops_everything_ipv6() {
    let drop = TRACKING_CONFIG.replace("router:", "ipv6: Drop, router:");
    let mut h = Harness::with_config(&drop);
    let (c, s) = (CLIENT6, SERVER6);
    for p in [
        udp(c, s, 1, 2, b"x"),
        echo(c, s, ECHO_REQ, 1, 1),
        tcp(c, s, &syn(1, 2, 3)),
        vec![0x60],
    ] {
        assert_eq!(h.out(p).drop_reason(), Some(DropReason::Ipv6Disabled));
    }
    assert!(h.out(udp(CLIENT, SERVER, 1, 2, b"v4")).forwards());
}

#[test]
fn one_table_holds_both_families() {
    let mut h = Harness::tracking();
    assert!(h.out(udp(CLIENT, SERVER, 7, 7, b"4")).forwards());
    assert!(h.out(udp(CLIENT6, SERVER6, 7, 7, b"6")).forwards());
    assert_eq!(h.fw.conntrack().len(), 2);
    assert!(forwarded(
        &h.inb(udp(SERVER6, CLIENT6, 7, 7, b"6")),
        CtState::Established
    ));
    assert!(forwarded(
        &h.inb(udp(SERVER, CLIENT, 7, 7, b"4")),
        CtState::Established
    ));
}

#[test]
fn operations_cover_ipv6() {
    use tunfw::control::FlowFilter;
    let mut h = Harness::tracking();
    h.out(udp(CLIENT, SERVER, 5000, 53, b"q4"));
    h.out(udp(CLIENT6, SERVER6, 5000, 53, b"q6"));
    h.out(echo(CLIENT6, SERVER6, ECHO_REQ, 4, 1));
    let flows: Vec<_> = h.fw.conntrack().flows(h.now).copied().collect();
    let count = |words: &[&str]| {
        let f = FlowFilter::parse(words).unwrap();
        flows
            .iter()
            .filter(|fl| f.matches(fl, &fl.tuple(tunfw::conntrack::tuple::Dir::Reply)))
            .count()
    };
    assert_eq!(count(&["family=6"]), 2);
    assert_eq!(count(&["family=4"]), 1);
    assert_eq!(count(&["addr=fd00:0:2::2"]), 2);
    assert_eq!(count(&["proto=icmpv6"]), 1);
    assert_eq!(count(&["family=6", "port=53"]), 1);
    assert!(FlowFilter::parse(&["family=5"]).is_err());
    // Listings and logs name IPv6 endpoints in brackets.
    let views = tunfw::report::flows(&h.fw, h.now, |_, _| true);
    let v6: Vec<_> = views.iter().filter(|v| v.family == "ipv6").collect();
    assert_eq!(v6.len(), 2);
    assert!(v6
        .iter()
        .any(|v| v.original == "udp [fd00:0:1::2]:5000 -> [fd00:0:2::2]:53"));
    assert!(v6
        .iter()
        .any(|v| v.proto == "icmpv6" && v.reply.contains("type 129/0")));
    let mut p = udp(CLIENT6, SERVER6, 1, 2, b"log");
    let mut answer = vec![0u8; 1500];
    let before = p.clone();
    let v =
        h.fw.process(tunfw::side::Side::Lan, &mut p, &mut answer, h.now);
    let vnet = tunfw::wire::vnet::PLAIN;
    let line = tunfw::report::log_line(&h.fw, tunfw::side::Side::Lan, &vnet, &before, &v);
    assert!(
        line.contains("udp [fd00:0:1::2]:1 -> [fd00:0:2::2]:2"),
        "{line}"
    );
    // Counters per family.
    let st = h.fw.stats();
    assert_eq!(st.ipv6_in[0], 3);
    assert_eq!(st.ipv6_forwarded[0], 3);
    assert_eq!(st.packets_in[0], 4);
}
