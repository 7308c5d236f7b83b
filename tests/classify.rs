//! Classification (NEW / ESTABLISHED / RELATED / INVALID) for UDP, ICMP and
//! malformed packets, the router duties (TTL, reject answers), the table limit
//! and the default config's verdicts, through the pure packet path.

mod common;

use common::*;
use tunfw::conntrack::{CtState, Dir, Tuple};
use tunfw::packet::{self, Transport};
use tunfw::stats::{DropReason, InvalidReason};

fn invalid_count(h: &Harness, r: InvalidReason) -> u64 {
    h.fw.stats().invalid[r.index()]
}

// ---------------------------------------------------------------- UDP

#[test]
fn udp_request_new_reply_established_then_unreplied_timeout() {
    let mut h = Harness::tracking();
    assert!(forwarded(
        &h.out(udp(CLIENT, SERVER, 5000, 53, b"q")),
        CtState::New
    ));
    assert!(
        forwarded(&h.out(udp(CLIENT, SERVER, 5000, 53, b"q")), CtState::New),
        "no reply yet: still NEW"
    );
    assert!(forwarded(
        &h.inb(udp(SERVER, CLIENT, 53, 5000, b"a")),
        CtState::Established
    ));
    assert!(forwarded(
        &h.out(udp(CLIENT, SERVER, 5000, 53, b"q")),
        CtState::Established
    ));

    // An unanswered flow expires after 30 s; the late reply is then NEW inbound.
    let mut h = Harness::default_config();
    assert!(h.out(udp(CLIENT, SERVER, 5001, 53, b"q")).forwards());
    h.advance_secs(29);
    assert!(forwarded(
        &h.inb(udp(SERVER, CLIENT, 53, 5001, b"a")),
        CtState::Established
    ));
    let mut h = Harness::default_config();
    assert!(h.out(udp(CLIENT, SERVER, 5001, 53, b"q")).forwards());
    h.advance_secs(31);
    let v = h.inb(udp(SERVER, CLIENT, 53, 5001, b"late"));
    assert_eq!(v.state, Some(CtState::New));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
}

#[test]
fn udp_stream_after_two_seconds_gets_120s_and_assured() {
    let mut h = Harness::tracking();
    let t = tuple(17, CLIENT, 6000, SERVER, 6001);
    h.out(udp(CLIENT, SERVER, 6000, 6001, b"1"));
    h.inb(udp(SERVER, CLIENT, 6001, 6000, b"2"));
    h.out(udp(CLIENT, SERVER, 6000, 6001, b"3"));
    assert!(
        !h.flow(&t).unwrap().0.assured,
        "within 2 s of creation: not a stream yet"
    );
    h.advance_secs(3);
    h.out(udp(CLIENT, SERVER, 6000, 6001, b"4"));
    let (flow, _) = h.flow(&t).unwrap();
    assert!(flow.assured);
    assert_eq!(flow.expires, h.now + core::time::Duration::from_secs(120));
    h.advance_secs(119);
    assert!(h.flow(&t).is_some());
    h.advance_secs(2);
    assert!(h.flow(&t).is_none());
}

#[test]
fn udp_malformed_is_dropped_with_reason() {
    let mut h = Harness::tracking();
    let mut p = udp(CLIENT, SERVER, 1, 2, b"hello");
    let last = p.len() - 1;
    p[last] ^= 0xff; // breaks the UDP checksum
    let v = h.out(p);
    assert_eq!(v.drop_reason(), Some(DropReason::Malformed));
    assert_eq!(invalid_count(&h, InvalidReason::UdpBadChecksum), 1);

    let mut p = udp(CLIENT, SERVER, 1, 2, b"hello");
    p[24..26].copy_from_slice(&100u16.to_be_bytes()); // UDP length beyond the packet
    assert_eq!(h.out(p).drop_reason(), Some(DropReason::Malformed));
    assert_eq!(invalid_count(&h, InvalidReason::UdpBadLength), 1);

    // Checksum 0 means "none" in UDP over IPv4: valid.
    let mut p = udp(CLIENT, SERVER, 1, 2, b"hello");
    p[26..28].copy_from_slice(&[0, 0]);
    assert!(h.out(p).forwards());
}

// ---------------------------------------------------------------- ICMP

#[test]
fn icmp_echo_by_id_and_unsolicited_reply() {
    let mut h = Harness::tracking();
    assert!(forwarded(
        &h.out(echo(CLIENT, SERVER, 8, 77, 1)),
        CtState::New
    ));
    assert!(forwarded(
        &h.inb(echo(SERVER, CLIENT, 0, 77, 1)),
        CtState::Established
    ));
    assert!(forwarded(
        &h.out(echo(CLIENT, SERVER, 8, 77, 2)),
        CtState::Established
    ));
    // A reply with another id matches nothing: INVALID.
    let v = h.inb(echo(SERVER, CLIENT, 0, 78, 1));
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(invalid_count(&h, InvalidReason::IcmpUnsolicitedReply), 1);
    // Types that neither start a flow nor are errors (router advertisement): INVALID.
    let v = h.out(icmp(CLIENT, SERVER, 9, 0, [0; 4], b""));
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(invalid_count(&h, InvalidReason::IcmpUntrackedType), 1);
    // Echo flows time out after 30 s.
    h.advance_secs(31);
    assert_eq!(
        h.inb(echo(SERVER, CLIENT, 0, 77, 2)).state,
        Some(CtState::Invalid)
    );
}

#[test]
fn icmp_errors_are_related_to_the_flow_they_quote() {
    let mut h = Harness::tracking();
    let request = udp(CLIENT, SERVER, 7000, 9999, b"probe");
    assert!(h.out(request.clone()).forwards());

    // Port unreachable from the server, and TTL exceeded from a router on the path.
    for (from, ty, code) in [
        (SERVER, 3, 3),
        (ROUTER, 11, 0),
        (ROUTER, 3, 1),
        (ROUTER, 3, 4),
    ] {
        let v = h.inb(icmp_error(from, CLIENT, ty, code, &request));
        assert!(
            forwarded(&v, CtState::Related),
            "type {ty} code {code} from {from}: {v:?}"
        );
    }
    // RELATED does not refresh the flow's timeout.
    let t = tuple(17, CLIENT, 7000, SERVER, 9999);
    let expires = h.flow(&t).unwrap().0.expires;
    h.advance_secs(10);
    h.inb(icmp_error(SERVER, CLIENT, 3, 3, &request));
    assert_eq!(h.flow(&t).unwrap().0.expires, expires);

    // An error quoting an ICMP echo is related to the echo flow.
    let ping = echo(CLIENT, SERVER, 8, 5, 1);
    h.out(ping.clone());
    assert!(forwarded(
        &h.inb(icmp_error(ROUTER, CLIENT, 11, 0, &ping)),
        CtState::Related
    ));
}

#[test]
fn icmp_error_about_no_flow_or_to_the_wrong_destination_is_invalid() {
    let mut h = Harness::tracking();
    let never = udp(CLIENT, SERVER, 33333, 44444, b"x");
    let v = h.inb(icmp_error(SERVER, CLIENT, 3, 3, &never));
    assert_eq!(v.state, Some(CtState::Invalid));
    assert!(!v.forwards());
    assert_eq!(invalid_count(&h, InvalidReason::IcmpErrorNoFlow), 1);

    // The flow exists, but the error is sent to another address than the
    // quoted packet's source: INVALID (the kernel's outer-destination check).
    let request = udp(CLIENT, SERVER, 7001, 53, b"q");
    h.out(request.clone());
    let other = core::net::Ipv4Addr::new(10, 0, 1, 99);
    let v = h.inb(icmp_error(SERVER, other, 3, 3, &request));
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(
        invalid_count(&h, InvalidReason::IcmpErrorWrongDestination),
        1
    );

    // Quoted header truncated below the ports (IP + 4 bytes, what the
    // kernel's nf_ct_get_tuple_ports reads): INVALID.
    let v = h.inb(icmp(SERVER, CLIENT, 3, 3, [0; 4], &request[..23]));
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(invalid_count(&h, InvalidReason::IcmpErrorBadInner), 1);
}

#[test]
fn icmp_error_about_an_established_tcp_flow_in_reply_direction() {
    // The server's data triggers an error on the client side: the error goes
    // outbound and is RELATED too.
    let mut h = Harness::tracking();
    let syn = Seg {
        sport: 1111,
        dport: 80,
        seq: 10,
        flags: SYN,
        window: 1000,
        ..Seg::default()
    };
    h.out(tcp(CLIENT, SERVER, &syn));
    let synack = Seg {
        sport: 80,
        dport: 1111,
        seq: 500,
        ack: 11,
        flags: SYN | ACK,
        window: 1000,
        ..Seg::default()
    };
    let reply = tcp(SERVER, CLIENT, &synack);
    h.inb(reply.clone());
    let v = h.out(icmp_error(CLIENT, SERVER, 3, 3, &reply));
    assert!(forwarded(&v, CtState::Related));
}

// ---------------------------------------------------------------- malformed

#[test]
fn malformed_packets_never_panic_and_are_counted() {
    let mut h = Harness::tracking();
    let good = udp(CLIENT, SERVER, 1, 2, b"0123456789");
    // Every truncation of a valid packet.
    for len in 0..good.len() {
        let v = h.out(good[..len].to_vec());
        assert!(!v.forwards(), "truncated to {len} bytes was forwarded");
    }
    // Bad IP checksum.
    let mut p = good.clone();
    p[10] ^= 1;
    assert_eq!(h.out(p).drop_reason(), Some(DropReason::Malformed));
    assert!(invalid_count(&h, InvalidReason::IpBadChecksum) >= 1);
    // IHL below 5.
    let mut p = good.clone();
    p[0] = 0x44;
    assert_eq!(h.out(p).drop_reason(), Some(DropReason::Malformed));
    // TCP data offset below 5 and beyond the packet.
    let seg = Seg {
        sport: 1,
        dport: 2,
        flags: SYN,
        window: 1,
        ..Seg::default()
    };
    for doff in [0x40u8, 0xf0] {
        let mut p = tcp(CLIENT, SERVER, &seg);
        p[32] = doff;
        assert_eq!(h.out(p).drop_reason(), Some(DropReason::Malformed));
    }
    // TCP bad checksum.
    let mut p = tcp(CLIENT, SERVER, &seg);
    p[36] ^= 0xff;
    assert_eq!(h.out(p).drop_reason(), Some(DropReason::Malformed));
    assert_eq!(invalid_count(&h, InvalidReason::TcpBadChecksum), 1);
    // ICMP shorter than its header, and bad ICMP checksum.
    let mut e = echo(CLIENT, SERVER, 8, 1, 1);
    e[22] ^= 0xff;
    assert_eq!(h.out(e).drop_reason(), Some(DropReason::Malformed));
    assert_eq!(invalid_count(&h, InvalidReason::IcmpBadChecksum), 1);
    // Garbage of every length up to 100 bytes, several patterns.
    for len in 0..100usize {
        for seed in 0..8u8 {
            let junk: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed * 17) ^ 0x45)
                .collect();
            let _ = h.out(junk);
        }
    }
    assert_eq!(h.fw.conntrack().len(), 0);
}

#[test]
fn fragments_are_held_and_ipv6_switches_drop_or_pass() {
    let mut h = Harness::tracking();
    let mut p = udp(CLIENT, SERVER, 1, 2, b"frag");
    p[6] = 0x20; // more fragments
    let c = tunfw::wire::checksum::internet_checksum(&[&{
        let mut hdr = p[..20].to_vec();
        hdr[10] = 0;
        hdr[11] = 0;
        hdr
    }]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let v = h.out(p);
    assert_eq!(v.fate, tunfw::verdict::Fate::Held, "kept for reassembly");
    assert_eq!(h.fw.defrag().stats().queued, 1);

    let v6 = udp(CLIENT6, SERVER6, 1, 2, b"v6");
    let drop = TRACKING_CONFIG.replace("router:", "ipv6: Drop, router:");
    let mut h = Harness::with_config(&drop);
    assert_eq!(
        h.out(v6.clone()).drop_reason(),
        Some(DropReason::Ipv6Disabled)
    );
    let pass = TRACKING_CONFIG.replace("router:", "ipv6: Pass, router:");
    let mut h = Harness::with_config(&pass);
    let v = h.out(v6);
    assert!(v.forwards());
    assert_eq!(v.state, None, "Pass forwards untracked");
    assert_eq!(h.fw.conntrack().len(), 0);
}

// ---------------------------------------------------------------- router duties

#[test]
fn ttl_is_decremented_with_a_correct_checksum() {
    let mut h = Harness::tracking();
    let mut p = udp(CLIENT, SERVER, 1, 2, b"ttl");
    let mut answer = vec![0u8; 600];
    let v =
        h.fw.process(tunfw::side::Side::Lan, &mut p, &mut answer, h.now);
    assert!(v.forwards());
    assert_eq!(p[8], 63);
    let parsed = packet::parse(&p).expect("still valid after TTL decrement");
    assert_eq!(parsed.ip.ttl, 63);
}

#[test]
fn ttl_expiry_drops_and_answers_time_exceeded_from_the_router_address() {
    let mut h = Harness::tracking();
    let probe = with_ttl(udp(CLIENT, SERVER, 33434, 33435, b"trace"), 1);
    let v = h.out(probe.clone());
    assert_eq!(v.drop_reason(), Some(DropReason::TtlExceeded));
    let ans = packet::parse(&h.last_answer).expect("answer parses");
    assert_eq!(
        ans.ip.src,
        core::net::IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 1, 1))
    );
    assert_eq!(ans.ip.dst, core::net::IpAddr::V4(CLIENT));
    let Transport::Icmp(i) = ans.transport else {
        panic!("not ICMP")
    };
    assert_eq!((i.icmp_type, i.code), (11, 0));
    assert_eq!(&i.body[..20], &probe[..20], "quotes the original header");
    assert_eq!(
        h.fw.conntrack().len(),
        0,
        "an expired packet creates no flow"
    );

    // Without a router address for that side: silent drop.
    let mut h = Harness::default_config();
    let v = h.out(probe);
    assert_eq!(v.drop_reason(), Some(DropReason::TtlExceeded));
    assert_eq!(v.answer_len, 0);
}

const REJECT_CONFIG: &str = r#"(
    outbound: (policy: Drop, rules: [
        (proto: Tcp, dport: 25, action: Reject),
        (proto: Udp, dport: "5000:5010", action: Reject),
        (proto: Icmp, icmp_type: 8, action: Reject),
        (state: [New, Established, Related], action: Accept),
    ]),
    inbound: (policy: Drop, rules: [(proto: Icmp, action: Reject)]),
)"#;

#[test]
fn reject_answers_rst_for_tcp_and_port_unreachable_otherwise() {
    let mut h = Harness::with_config(REJECT_CONFIG);
    let syn = Seg {
        sport: 1234,
        dport: 25,
        seq: 1000,
        flags: SYN,
        window: 1000,
        ..Seg::default()
    };
    let v = h.out(tcp(CLIENT, SERVER, &syn));
    assert_eq!(v.drop_reason(), Some(DropReason::RuleReject));
    let rst = packet::parse(&h.last_answer).expect("RST parses (checksums valid)");
    let Transport::Tcp(t) = rst.transport else {
        panic!("not TCP")
    };
    assert_eq!((t.src_port, t.dst_port), (25, 1234));
    assert_eq!(t.flags, RST | ACK);
    assert_eq!(t.ack.0, 1001, "acks the SYN");
    assert_eq!(rst.ip.src, core::net::IpAddr::V4(SERVER));
    assert_eq!(h.fw.conntrack().len(), 0);

    // A rejected ACK gets a RST with seq = its ack.
    let ack = Seg {
        sport: 1234,
        dport: 25,
        seq: 1,
        ack: 777,
        flags: ACK,
        window: 1000,
        ..Seg::default()
    };
    h.out(tcp(CLIENT, SERVER, &ack));
    let Transport::Tcp(t) = packet::parse(&h.last_answer).unwrap().transport else {
        panic!()
    };
    assert_eq!((t.flags, t.seq.0), (RST, 777));

    // A RST is never answered.
    let r = Seg {
        sport: 1234,
        dport: 25,
        seq: 1,
        flags: RST,
        window: 0,
        ..Seg::default()
    };
    assert_eq!(h.out(tcp(CLIENT, SERVER, &r)).answer_len, 0);

    let v = h.out(udp(CLIENT, SERVER, 4000, 5005, b"dns?"));
    assert_eq!(v.drop_reason(), Some(DropReason::RuleReject));
    let un = packet::parse(&h.last_answer).expect("ICMP parses");
    let Transport::Icmp(i) = un.transport else {
        panic!("not ICMP")
    };
    assert_eq!((i.icmp_type, i.code), (3, 3));

    // Never an ICMP error in answer to an ICMP error.
    let err = icmp_error(SERVER, CLIENT, 3, 3, &udp(CLIENT, SERVER, 1, 2, b"x"));
    let v = h.inb(err);
    assert_eq!(v.drop_reason(), Some(DropReason::RuleReject));
    assert_eq!(v.answer_len, 0);
}

// ---------------------------------------------------------------- table limits

#[test]
fn full_table_evicts_unassured_first_and_keeps_assured_flows() {
    let small = TRACKING_CONFIG.replace("router:", "conntrack: (max: 4), router:");
    let mut h = Harness::with_config(&small);
    // Two assured UDP streams.
    for port in [100u16, 101] {
        h.out(udp(CLIENT, SERVER, port, 53, b"q"));
        h.inb(udp(SERVER, CLIENT, 53, port, b"a"));
    }
    h.advance_secs(3);
    for port in [100u16, 101] {
        h.out(udp(CLIENT, SERVER, port, 53, b"q"));
    }
    // Fill the rest with unreplied flows, then keep opening new ones.
    for port in 200u16..220 {
        assert!(
            h.out(udp(CLIENT, SERVER, port, 53, b"q")).forwards(),
            "unassured flows are evicted for new ones"
        );
    }
    assert_eq!(h.fw.conntrack().len(), 4);
    assert!(h.fw.conntrack().stats.early_drop >= 18);
    for port in [100u16, 101] {
        let v = h.inb(udp(SERVER, CLIENT, 53, port, b"a"));
        assert!(
            forwarded(&v, CtState::Established),
            "assured flow {port} survives"
        );
    }

    // Only assured flows left: a new flow is dropped.
    let mut h =
        Harness::with_config(&TRACKING_CONFIG.replace("router:", "conntrack: (max: 2), router:"));
    for port in [100u16, 101] {
        h.out(udp(CLIENT, SERVER, port, 53, b"q"));
        h.inb(udp(SERVER, CLIENT, 53, port, b"a"));
    }
    h.advance_secs(3);
    for port in [100u16, 101] {
        h.out(udp(CLIENT, SERVER, port, 53, b"q"));
    }
    let v = h.out(udp(CLIENT, SERVER, 300, 53, b"q"));
    assert_eq!(v.drop_reason(), Some(DropReason::TableFull));
    assert_eq!(h.fw.conntrack().stats.table_full, 1);
    assert!(
        h.out(udp(CLIENT, SERVER, 100, 53, b"q")).forwards(),
        "established flows keep working"
    );
}

#[test]
fn expiry_is_incremental_and_deadline_driven() {
    let mut h = Harness::tracking();
    assert_eq!(
        h.fw.next_deadline(h.now),
        tunfw::time::Instant::NEVER,
        "empty table: no wakeups"
    );
    for port in 0..100u16 {
        h.out(udp(CLIENT, SERVER, 1000 + port, 53, b"q"));
    }
    let deadline = h.fw.next_deadline(h.now);
    assert_eq!(deadline, h.now + core::time::Duration::from_secs(30));
    h.advance_secs(31);
    h.fw.tick(h.now);
    assert_eq!(h.fw.conntrack().len(), 0);
    assert_eq!(h.fw.conntrack().stats.expired, 100);
}

// ---------------------------------------------------------------- default config

#[test]
fn default_config_verdicts() {
    let mut h = Harness::default_config();
    // UDP: out NEW ok, in NEW dropped, in ESTABLISHED ok.
    assert!(h.out(udp(CLIENT, SERVER, 5353, 53, b"q")).forwards());
    assert!(h.inb(udp(SERVER, CLIENT, 53, 5353, b"a")).forwards());
    assert_eq!(
        h.inb(udp(SERVER, CLIENT, 53, 9999, b"x")).drop_reason(),
        Some(DropReason::PolicyInbound)
    );
    // ICMP: out ping ok, in ping dropped, errors RELATED ok.
    assert!(h.out(echo(CLIENT, SERVER, 8, 9, 1)).forwards());
    assert!(h.inb(echo(SERVER, CLIENT, 0, 9, 1)).forwards());
    assert_eq!(
        h.inb(echo(SERVER, CLIENT, 8, 10, 1)).drop_reason(),
        Some(DropReason::PolicyInbound)
    );
    let q = udp(CLIENT, SERVER, 5354, 9, b"q");
    h.out(q.clone());
    assert!(forwarded(
        &h.inb(icmp_error(SERVER, CLIENT, 3, 3, &q)),
        CtState::Related
    ));
    // INVALID matches no rule: policy drop.
    assert_eq!(
        h.inb(echo(SERVER, CLIENT, 0, 12345, 1)).drop_reason(),
        Some(DropReason::PolicyInbound)
    );
    // Rule counters moved.
    let chain = h.fw.chain(tunfw::side::Side::Wan);
    let udp_in = chain
        .rules
        .iter()
        .position(|r| r.name.as_deref() == Some("udp-in"))
        .unwrap();
    assert_eq!(chain.counters[udp_in].packets, 1);
    assert_eq!(chain.policy_counter.packets, 3);
}

#[test]
fn rule_matches_addresses_ports_and_icmp_types() {
    let cfg = r#"(
        outbound: (policy: Drop, rules: [
            (name: "dns", proto: Udp, dst: ["10.0.2.0/24", "192.0.2.1"], dport: 53, action: Accept),
            (name: "hi", proto: Tcp, src: "10.0.1.0/25", sport: "1024:", dport: ":1023", action: Accept),
            (name: "list", proto: Tcp, dport: "8080,8443,9000:9010", action: Accept),
            (name: "ping", proto: Icmp, icmp_type: 8, icmp_code: 0, action: Accept),
        ]),
        inbound: (policy: Accept),
    )"#;
    let mut h = Harness::with_config(cfg);
    assert!(h.out(udp(CLIENT, SERVER, 1, 53, b"q")).forwards());
    assert!(!h.out(udp(CLIENT, SERVER, 1, 54, b"q")).forwards());
    assert!(!h.out(udp(CLIENT, ROUTER, 1, 53, b"q")).forwards());
    let seg = |sport, dport| Seg {
        sport,
        dport,
        seq: 1,
        flags: SYN,
        window: 100,
        ..Seg::default()
    };
    assert!(h.out(tcp(CLIENT, SERVER, &seg(2000, 80))).forwards());
    assert!(
        !h.out(tcp(CLIENT, SERVER, &seg(1000, 80))).forwards(),
        "sport 1000 is not in 1024:"
    );
    assert!(
        !h.out(tcp(CLIENT, SERVER, &seg(2001, 2000))).forwards(),
        "dport 2000 is not in :1023"
    );
    let far = core::net::Ipv4Addr::new(10, 0, 1, 200);
    assert!(
        !h.out(tcp(far, SERVER, &seg(2002, 80))).forwards(),
        "10.0.1.200 is outside 10.0.1.0/25"
    );
    assert!(h.out(tcp(far, SERVER, &seg(2003, 9005))).forwards());
    assert!(h.out(tcp(far, SERVER, &seg(2004, 8443))).forwards());
    assert!(h.out(echo(CLIENT, SERVER, 8, 1, 1)).forwards());
    assert!(
        !h.out(icmp(CLIENT, SERVER, 13, 0, [0; 4], &[0; 12]))
            .forwards(),
        "timestamp is not type 8"
    );
}

/// The index keys a flow once for both directions; an ICMP query the other
/// way with the same identifier is another flow, as in Linux (its tuple is
/// neither the first flow's original nor its reply).
#[test]
fn echo_both_ways_with_one_identifier_are_two_flows() {
    let mut h = Harness::tracking();
    assert_eq!(
        h.out(echo(CLIENT, SERVER, 8, 7, 1)).state,
        Some(CtState::New)
    );
    assert_eq!(
        h.inb(echo(SERVER, CLIENT, 8, 7, 1)).state,
        Some(CtState::New)
    );
    assert_eq!(h.fw.conntrack().len(), 2);
    assert_eq!(
        h.inb(echo(SERVER, CLIENT, 0, 7, 1)).state,
        Some(CtState::Established)
    );
    assert_eq!(
        h.out(echo(CLIENT, SERVER, 0, 7, 1)).state,
        Some(CtState::Established)
    );
    let mine = h
        .flow(&Tuple::of_packet(
            &packet::parse(&echo(CLIENT, SERVER, 8, 7, 1)).unwrap(),
        ))
        .expect("client's flow");
    assert_eq!(mine.1, Dir::Original);
    assert_eq!(mine.0.packets, [1, 1]);
    let theirs = h
        .flow(&Tuple::of_packet(
            &packet::parse(&echo(CLIENT, SERVER, 0, 7, 1)).unwrap(),
        ))
        .expect("server's flow, seen from its reply");
    assert_eq!(theirs.1, Dir::Reply);
    assert_eq!(theirs.0.packets, [1, 1]);
    assert_eq!(theirs.0.origin, tunfw::side::Side::Wan);
}
