//! Address translation through the pure packet path: masquerade, port
//! forwarding, ICMP query identifiers, ICMP errors translated inside and
//! out, port exhaustion, checksums (every forwarded packet is parsed again,
//! which verifies its IP and transport checksums), and no allocation.

mod common;
mod counting;

use core::net::{IpAddr, Ipv4Addr};

use common::*;
use tunfw::conntrack::CtState;
use tunfw::packet::{self, Transport};
use tunfw::side::Side;
use tunfw::stats::DropReason;
use tunfw::verdict::Fate;
use tunfw::wire::icmp;

/// The masquerade address: tunfw's WAN router address.
const MASQ: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
const LAN_SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);

/// A home router: the LAN masqueraded behind the WAN address, port 8080 of
/// that address forwarded to a LAN web server, inbound only answers and
/// the forwarded port (the rules see the translated destination: port 80
/// of the LAN server).
const CONFIG: &str = r#"(
    router: (lan: "10.0.1.1", wan: "10.0.2.1"),
    nat: (
        source: [(out: Wan, src: "10.0.1.0/24", to: Masquerade)],
        destination: [(from: Wan, proto: Tcp, dst: "10.0.2.1", dport: "8080", to: "10.0.1.9", to_port: 80)],
    ),
    outbound: (policy: Drop, rules: [(state: [New, Established, Related], action: Accept)]),
    inbound: (policy: Drop, rules: [
        (state: [Established, Related], action: Accept),
        (name: "web", proto: Tcp, dst: "10.0.1.9", dport: "80", state: [New], action: Accept),
    ]),
)"#;

fn addrs(p: &[u8]) -> (IpAddr, IpAddr) {
    let parsed = packet::parse(p).expect("a forwarded packet parses, checksums and all");
    (parsed.ip.src, parsed.ip.dst)
}

fn ports(p: &[u8]) -> (u16, u16) {
    packet::parse(p)
        .expect("parses")
        .ports()
        .expect("has ports")
}

fn syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    tcp_segment(src, dst, sport, dport, 1000, 0, SYN, b"")
}

#[test]
fn masquerade_rewrites_both_ways_with_valid_checksums() {
    let mut h = Harness::with_config(CONFIG);
    let (v, out) = h.pass(Side::Lan, syn(CLIENT, 40000, SERVER, 80));
    assert!(forwarded(&v, CtState::New));
    assert_eq!(addrs(&out), (MASQ.into(), SERVER.into()));
    assert_eq!(ports(&out), (40000, 80), "the original port, free, is kept");
    let synack = tcp_segment(SERVER, MASQ, 80, 40000, 5000, 1001, SYN | ACK, b"");
    let (v, back) = h.pass(Side::Wan, synack);
    assert!(forwarded(&v, CtState::Established));
    assert_eq!(addrs(&back), (SERVER.into(), CLIENT.into()));
    assert_eq!(ports(&back), (80, 40000));
    let (v, data) = h.pass(
        Side::Lan,
        tcp_segment(
            CLIENT,
            SERVER,
            40000,
            80,
            1001,
            5001,
            ACK | PSH,
            b"GET / HTTP/1.0\r\n\r\n",
        ),
    );
    assert!(forwarded(&v, CtState::Established));
    assert_eq!(addrs(&data).0, IpAddr::V4(MASQ));
    // The flow shows both tuples; a filter on the masquerade address finds it.
    let flows = tunfw::report::flows(&h.fw, h.now, |_, reply| reply.dst == IpAddr::V4(MASQ));
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].reply, "tcp 10.0.2.2:80 -> 10.0.2.1:40000");
    assert_eq!(h.fw.nat().stats.mapped, 1);
    assert_eq!(h.fw.nat().stats.translated, 3);
}

#[test]
fn two_clients_with_one_source_port_get_two_mappings() {
    let mut h = Harness::with_config(CONFIG);
    let (_, a) = h.pass(Side::Lan, syn(CLIENT, 40000, SERVER, 80));
    let (v, b) = h.pass(Side::Lan, syn(CLIENT2, 40000, SERVER, 80));
    assert!(forwarded(&v, CtState::New));
    let (pa, pb) = (ports(&a).0, ports(&b).0);
    assert_eq!(pa, 40000);
    assert!(pb >= 1024 && pb != 40000, "second client mapped to {pb}");
    // Each answer reaches its own client.
    for (port, client) in [(pa, CLIENT), (pb, CLIENT2)] {
        let (v, back) = h.pass(
            Side::Wan,
            tcp_segment(SERVER, MASQ, 80, port, 5000, 1001, SYN | ACK, b""),
        );
        assert!(forwarded(&v, CtState::Established), "to {client}");
        assert_eq!(addrs(&back).1, IpAddr::V4(client));
        assert_eq!(ports(&back).1, 40000);
    }
}

#[test]
fn pings_with_one_identifier_from_two_clients_both_come_back() {
    let mut h = Harness::with_config(CONFIG);
    let ident = |p: &[u8]| match packet::parse(p).unwrap().transport {
        Transport::Icmp(i) => i.ident,
        t => panic!("{t:?}"),
    };
    let (_, a) = h.pass(Side::Lan, echo(CLIENT, SERVER, icmp::ECHO_REQUEST, 77, 1));
    let (_, b) = h.pass(Side::Lan, echo(CLIENT2, SERVER, icmp::ECHO_REQUEST, 77, 1));
    assert_eq!((addrs(&a).0, addrs(&b).0), (MASQ.into(), MASQ.into()));
    let (ia, ib) = (ident(&a), ident(&b));
    assert_eq!(ia, 77);
    assert_ne!(ib, 77);
    for (id, client) in [(ia, CLIENT), (ib, CLIENT2)] {
        let (v, back) = h.pass(Side::Wan, echo(SERVER, MASQ, icmp::ECHO_REPLY, id, 1));
        assert!(forwarded(&v, CtState::Established));
        assert_eq!(addrs(&back).1, IpAddr::V4(client));
        assert_eq!(ident(&back), 77);
    }
}

#[test]
fn an_icmp_error_about_a_masqueraded_datagram_reaches_the_client() {
    let mut h = Harness::with_config(CONFIG);
    let (_, out) = h.pass(Side::Lan, udp(CLIENT, SERVER, 41000, 53, b"query"));
    assert_eq!(addrs(&out).0, IpAddr::V4(MASQ));
    // The server answers "port unreachable", quoting the datagram as it got it.
    let unreachable = icmp_error(SERVER, MASQ, icmp::DEST_UNREACHABLE, 3, &out);
    let (v, back) = h.pass(Side::Wan, unreachable);
    assert!(forwarded(&v, CtState::Related));
    assert_eq!(addrs(&back), (SERVER.into(), CLIENT.into()));
    // The quoted datagram is the client's own again, its header checksum right.
    let quoted = &back[28..];
    assert_eq!(&quoted[12..16], &CLIENT.octets());
    assert_eq!(u16::from_be_bytes([quoted[20], quoted[21]]), 41000);
    assert_eq!(
        tunfw::wire::checksum::internet_checksum(&[&quoted[..20]]),
        0
    );
    assert_eq!(h.fw.nat().stats.errors_translated, 1);
}

#[test]
fn a_port_forward_reaches_the_lan_server_and_nothing_else() {
    let mut h = Harness::with_config(CONFIG);
    let wan_client = SERVER;
    let (v, inside) = h.pass(Side::Wan, syn(wan_client, 50000, MASQ, 8080));
    assert!(
        forwarded(&v, CtState::New),
        "the web rule saw port 80 of the LAN server"
    );
    assert_eq!(addrs(&inside), (wan_client.into(), LAN_SERVER.into()));
    assert_eq!(ports(&inside), (50000, 80));
    let (v, answer) = h.pass(
        Side::Lan,
        tcp_segment(
            LAN_SERVER,
            wan_client,
            80,
            50000,
            9000,
            1001,
            SYN | ACK,
            b"",
        ),
    );
    assert!(forwarded(&v, CtState::Established));
    assert_eq!(addrs(&answer), (MASQ.into(), wan_client.into()));
    assert_eq!(ports(&answer), (8080, 50000));
    // Another port of the router, another port of the LAN server, another
    // LAN host: refused (the web rule names port 80 of the LAN server only).
    for probe in [
        syn(wan_client, 50001, MASQ, 22),
        syn(wan_client, 50002, LAN_SERVER, 22),
        syn(wan_client, 50003, CLIENT, 80),
    ] {
        let v = h.inb(probe);
        assert_eq!(v.fate, Fate::Drop(DropReason::PolicyInbound));
    }
}

#[test]
fn a_full_port_range_drops_the_new_flow_and_counts_it() {
    let cfg = CONFIG.replace(
        "source: [(out: Wan, src: \"10.0.1.0/24\", to: Masquerade)]",
        "source: [(out: Wan, proto: Udp, to: Masquerade, ports: (5000, 5001))]",
    );
    let mut h = Harness::with_config(&cfg);
    for client in [CLIENT, CLIENT2] {
        let (v, out) = h.pass(Side::Lan, udp(client, SERVER, 3000, 53, b"q"));
        assert!(v.forwards());
        assert!((5000..=5001).contains(&ports(&out).0));
    }
    let v = h.out(udp(Ipv4Addr::new(10, 0, 1, 4), SERVER, 3000, 53, b"q"));
    assert_eq!(v.fate, Fate::Drop(DropReason::NatExhausted));
    assert_eq!(h.fw.nat().stats.exhausted, 1);
    assert_eq!(
        h.fw.conntrack().len(),
        2,
        "no flow kept for the dropped packet"
    );
}

#[test]
fn an_offloaded_packet_gets_its_partial_checksum_patched() {
    use tunfw::wire::checksum::{fold, pseudo_header_v4};
    use tunfw::wire::vnet::{VnetHeader, F_NEEDS_CSUM};
    let mut h = Harness::with_config(CONFIG);
    // Another client holds port 40000 towards the server: this flow's
    // port moves too, which a partial checksum must not be patched for.
    h.pass(Side::Lan, syn(CLIENT2, 40000, SERVER, 80));
    let mut pkt = tcp_segment(CLIENT, SERVER, 40000, 80, 1000, 0, SYN, b"");
    let partial = |p: &[u8]| {
        let (s, d): ([u8; 4], [u8; 4]) =
            (p[12..16].try_into().unwrap(), p[16..20].try_into().unwrap());
        fold(pseudo_header_v4(s, d, 6, (p.len() - 20) as u16))
    };
    let sum = partial(&pkt);
    pkt[36..38].copy_from_slice(&sum.to_be_bytes());
    let vnet = VnetHeader {
        flags: F_NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 16,
        ..tunfw::wire::vnet::PLAIN
    };
    let mut answer = vec![0u8; 2048];
    let v =
        h.fw.process_offloaded(Side::Lan, &vnet, &mut pkt, &mut answer, h.now);
    assert!(v.forwards());
    assert_eq!(&pkt[12..16], &MASQ.octets());
    assert_ne!(
        u16::from_be_bytes([pkt[20], pkt[21]]),
        40000,
        "the port moved"
    );
    assert_eq!(u16::from_be_bytes([pkt[36], pkt[37]]), partial(&pkt));
}

#[test]
fn nat_configs_are_checked() {
    for (text, wanted) in [
        (
            CONFIG.replace("router: (lan: \"10.0.1.1\", wan: \"10.0.2.1\"),", ""),
            "Masquerade leaving by wan takes router.wan, which is not set",
        ),
        (
            CONFIG.replace("src: \"10.0.1.0/24\"", "src: \"fd00::/8\""),
            "NAT is IPv4 only",
        ),
        (
            CONFIG.replace("to: Masquerade", "to: Masquerade, ports: (1, 2)"),
            "need proto: Tcp or proto: Udp",
        ),
        (
            CONFIG.replace("to: Masquerade", "to: Range(\"10.0.2.9\", \"10.0.2.1\")"),
            "the first address is after the last",
        ),
    ] {
        let e = tunfw::config::Config::parse(&text, "nat.ron").unwrap_err();
        assert!(e.to_string().contains(wanted), "{e}");
        assert!(e.line > 1, "{e}: the error points into the file");
        assert!(
            e.to_string()
                .starts_with(&format!("nat.ron:{}:{}: ", e.line, e.col)),
            "{e}"
        );
    }
}

#[test]
fn translating_established_packets_does_not_allocate() {
    let mut h = Harness::with_config(CONFIG);
    h.pass(Side::Lan, syn(CLIENT, 40000, SERVER, 80));
    h.pass(
        Side::Wan,
        tcp_segment(SERVER, MASQ, 80, 40000, 5000, 1001, SYN | ACK, b""),
    );
    let mut packets: Vec<(Side, Vec<u8>)> = (0..200u32)
        .flat_map(|i| {
            [
                (
                    Side::Lan,
                    tcp_segment(CLIENT, SERVER, 40000, 80, 1001 + i, 5001, ACK, b""),
                ),
                (
                    Side::Wan,
                    tcp_segment(SERVER, MASQ, 80, 40000, 5001 + i, 1001, ACK, b""),
                ),
            ]
        })
        .collect();
    let mut answer = vec![0u8; 2048];
    let now = h.now;
    let (forwarded, allocations) = counting::counted(|| {
        let mut n = 0;
        for (side, p) in packets.iter_mut() {
            n += usize::from(h.fw.process(*side, p, &mut answer, now).forwards());
        }
        n
    });
    assert_eq!(forwarded, 400);
    assert_eq!(allocations, 0);
}

#[test]
fn translated_flows_come_and_go_without_wearing_the_table() {
    // 64 flows (a power of two: the index holds exactly 2 × 64 entries),
    // each masqueraded: removal by flush, by expiry (the sweep) and by
    // early drop must each give back both index entries, round after
    // round, or new flows start failing with table_full.
    let cfg = CONFIG.replace("router:", "conntrack: (max: 64), router:");
    let mut h = Harness::with_config(&cfg);
    let mut port = 1024u16;
    for round in 0..60 {
        for _ in 0..64 {
            port += 1;
            let (v, out) = h.pass(Side::Lan, udp(CLIENT, SERVER, port, 53, b"q"));
            assert!(v.forwards(), "round {round}, port {port}: {v:?}");
            assert_eq!(addrs(&out).0, IpAddr::V4(MASQ));
        }
        match round % 3 {
            0 => h.fw.conntrack_mut().flush(),
            1 => {
                // Expired, then swept in bounded steps.
                h.advance_secs(31);
                let now = h.now;
                while h.fw.next_deadline(now) <= now {
                    h.fw.tick(now);
                }
            }
            // Left in place: the next round's flows evict them early
            // (unreplied UDP flows are not assured).
            _ => {}
        }
    }
    assert_eq!(h.fw.conntrack().stats.table_full, 0);
    assert!(h.fw.conntrack().stats.early_drop >= 64);
}

#[test]
fn a_rst_answering_an_unreplied_syn_goes_back_translated() {
    let mut h = Harness::with_config(CONFIG);
    let (_, out) = h.pass(Side::Lan, syn(CLIENT, 40000, SERVER, 9));
    assert_eq!(ports(&out), (40000, 9));
    let rst = tcp_segment(SERVER, MASQ, 9, 40000, 0, 1001, RST | ACK, b"");
    let (v, back) = h.pass(Side::Wan, rst);
    assert!(v.forwards(), "{v:?}");
    assert_eq!(addrs(&back), (SERVER.into(), CLIENT.into()));
    assert_eq!(ports(&back), (9, 40000));
    // The flow ended with the RST.
    let t = tuple(6, CLIENT, 40000, SERVER, 9);
    assert!(h.flow(&t).is_none());
}

#[test]
fn a_recheck_reload_keeps_a_port_forwarded_flow() {
    let cfg = CONFIG.replace("router:", "on_reload: Recheck, router:");
    let mut h = Harness::with_config(&cfg);
    let (v, _) = h.pass(Side::Wan, syn(SERVER, 50000, MASQ, 8080));
    assert!(v.forwards());
    let parsed = tunfw::config::Config::parse(&cfg, "nat.ron").unwrap();
    let summary = h.fw.reload(&parsed, h.now);
    assert_eq!(
        summary.flows_removed, 0,
        "the rules accept it at its translated destination"
    );
    assert_eq!(summary.flows_kept, 1);
}

#[test]
fn a_redirect_about_a_translated_flow_is_dropped() {
    let mut h = Harness::with_config(CONFIG);
    let (_, out) = h.pass(Side::Lan, udp(CLIENT, SERVER, 41000, 53, b"query"));
    let redirect = icmp(SERVER, MASQ, icmp::REDIRECT, 1, [10, 0, 2, 9], &out[..28]);
    let v = h.inb(redirect);
    assert_eq!(v.fate, Fate::Drop(DropReason::NatRedirect));
}

#[test]
fn an_untranslated_flow_cannot_take_a_translated_flows_reply_tuple() {
    let mut h = Harness::with_config(CONFIG);
    let (_, out) = h.pass(Side::Lan, syn(CLIENT, 40000, SERVER, 80));
    assert_eq!((addrs(&out).0, ports(&out).0), (IpAddr::V4(MASQ), 40000));
    // A LAN packet from the masquerade address itself (outside the
    // masqueraded network: no rule translates it), same port, same server:
    // its reply tuple would be the first flow's. Its port moves instead.
    let (v, other) = h.pass(Side::Lan, syn(MASQ, 40000, SERVER, 80));
    assert!(v.forwards(), "{v:?}");
    assert_eq!(addrs(&other).0, IpAddr::V4(MASQ));
    assert_ne!(ports(&other).0, 40000);
    // The first flow's answer still reaches its client.
    let (_, back) = h.pass(
        Side::Wan,
        tcp_segment(SERVER, MASQ, 80, 40000, 5000, 1001, SYN | ACK, b""),
    );
    assert_eq!(addrs(&back).1, IpAddr::V4(CLIENT));
}

#[test]
fn a_fragmented_datagram_is_translated_once_and_cut_again() {
    use tunfw::wire::checksum::internet_checksum;
    let mut h = Harness::with_config(CONFIG);
    // A 3000-byte UDP datagram from the client, in three fragments; then
    // the server's answer to the masquerade address, also in fragments.
    let send = |h: &mut Harness, side: Side, dg: Vec<u8>| -> Vec<Vec<u8>> {
        let frags = fragments(&dg, 1280, 0x4242);
        assert!(frags.len() > 1);
        let (last, rest) = frags.split_last().unwrap();
        for f in rest {
            assert_eq!(h.send(side, f.clone()).fate, Fate::Held);
        }
        let v = h.send(side, last.clone());
        let Fate::ForwardFragments(n) = v.fate else {
            panic!("{v:?}");
        };
        (0..n)
            .map(|i| {
                let mut out = vec![0u8; 70_000];
                let len = h.fw.fragment_piece(i, &mut out).expect("piece");
                out.truncate(len);
                out
            })
            .collect()
    };
    let payload = vec![7u8; 3000];
    let out = send(&mut h, Side::Lan, udp(CLIENT, SERVER, 41000, 53, &payload));
    for piece in &out {
        assert_eq!(
            &piece[12..16],
            &MASQ.octets(),
            "every piece leaves translated"
        );
        assert_eq!(internet_checksum(&[&piece[..20]]), 0);
    }
    // Put back together as the server's kernel would, the datagram parses:
    // its UDP checksum was patched for the new source address.
    let whole = |pieces: &[Vec<u8>]| -> Vec<u8> {
        let mut dg = pieces[0][..20].to_vec();
        for p in pieces {
            dg.extend_from_slice(&p[20..]);
        }
        let len = dg.len() as u16;
        dg[2..4].copy_from_slice(&len.to_be_bytes());
        dg[6..8].fill(0);
        dg[10..12].fill(0);
        let c = internet_checksum(&[&dg[..20]]);
        dg[10..12].copy_from_slice(&c.to_be_bytes());
        dg
    };
    let dg = whole(&out);
    assert_eq!(addrs(&dg), (MASQ.into(), SERVER.into()));
    assert_eq!(ports(&dg), (41000, 53));
    // The answer to the masquerade address comes back to the client, in
    // pieces, translated the other way.
    let back = send(&mut h, Side::Wan, udp(SERVER, MASQ, 53, 41000, &payload));
    for piece in &back {
        assert_eq!(&piece[16..20], &CLIENT.octets());
        assert_eq!(internet_checksum(&[&piece[..20]]), 0);
    }
    let dg = whole(&back);
    assert_eq!(addrs(&dg), (SERVER.into(), CLIENT.into()));
    assert_eq!(ports(&dg), (53, 41000));
}
