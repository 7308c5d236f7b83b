//! What the kernel parity harness found once it had an IPv6 side
//! (netns-tests/parity, sequences v6_* and random6_*), each pinned as a
//! packet sequence with the verdicts Linux 6.18 gives it under the seed
//! rules (ip6tables/iptables on the nf_tables backend). Where the finding
//! holds for IPv4 as well, both families are checked.

mod common;

use core::net::{IpAddr, Ipv6Addr};

use common::*;
use tunfw::conntrack::CtState;
use tunfw::stats::{DropReason, InvalidReason};

/// A TCP segment with window 29200 and no options.
#[allow(clippy::too_many_arguments)]
fn seg(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    tcp(
        src,
        dst,
        &Seg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 29200,
            ..Seg::default()
        },
    )
}

fn families() -> [(IpAddr, IpAddr); 2] {
    [
        (IpAddr::V4(CLIENT), IpAddr::V4(SERVER)),
        (IpAddr::V6(CLIENT6), IpAddr::V6(SERVER6)),
    ]
}

/// Parity v6_hop_limit_1_fin_then_ack and ttl_1_fin_then_ack: a FIN that
/// expires at the firewall (hop limit / TTL 1) was still seen by conntrack
/// in PREROUTING (ip_forward and ip6_forward drop it later), so the
/// server's FIN/ACK acknowledging it is within the window.
#[test]
fn an_expiring_fin_still_moves_the_flow() {
    for (c, s) in families() {
        let mut h = Harness::default_config();
        assert!(h.out(seg(c, s, 40000, 80, 100, 0, SYN)).forwards());
        assert!(h.inb(seg(s, c, 80, 40000, 5000, 101, SYN | ACK)).forwards());
        assert!(h.out(seg(c, s, 40000, 80, 101, 5001, ACK)).forwards());
        let fin = with_ttl(seg(c, s, 40000, 80, 101, 5001, FIN | ACK), 1);
        let v = h.out(fin);
        assert_eq!(v.drop_reason(), Some(DropReason::TtlExceeded), "{c}");
        assert_eq!(v.state, Some(CtState::Established), "{c}: tracked first");
        let t = tuple(6, c, 40000, s, 80);
        let (flow, _) = h.flow(&t).expect("tracked");
        assert_eq!(format!("{:?}", flow.tcp_state().unwrap()), "FinWait", "{c}");
        // Acknowledges the FIN (102): out of window had the FIN not been seen.
        let v = h.inb(seg(s, c, 80, 40000, 5001, 102, FIN | ACK));
        assert!(forwarded(&v, CtState::Established), "{c}: {v:?}");
    }
}

/// Parity v6_hop_limit_1_rst_before_synack and ttl_1_rst_before_synack:
/// the server's RST expires at the firewall but kills the unanswered flow
/// in conntrack first; the SYN/ACK after it has no flow and is INVALID.
#[test]
fn an_expiring_rst_still_kills_the_flow() {
    for (c, s) in families() {
        let mut h = Harness::default_config();
        assert!(h.out(seg(c, s, 40001, 80, 100, 0, SYN)).forwards());
        let rst = with_ttl(seg(s, c, 80, 40001, 0, 101, RST | ACK), 1);
        assert_eq!(h.inb(rst).drop_reason(), Some(DropReason::TtlExceeded));
        assert!(h.flow(&tuple(6, c, 40001, s, 80)).is_none(), "{c}: killed");
        let v = h.inb(seg(s, c, 80, 40001, 5000, 101, SYN | ACK));
        assert_eq!(v.state, Some(CtState::Invalid), "{c}");
        assert!(!v.forwards(), "{c}");
        // A first packet that expires starts nothing (never confirmed).
        let syn = with_ttl(seg(c, s, 40002, 80, 100, 0, SYN), 1);
        let v = h.out(syn);
        assert_eq!(
            (v.drop_reason(), v.state),
            (Some(DropReason::TtlExceeded), Some(CtState::New))
        );
        assert!(h.flow(&tuple(6, c, 40002, s, 80)).is_none(), "{c}");
    }
}

/// The start of the quoted packet: its IP header and the first `l4` bytes
/// of its transport header.
fn quote(pkt: &[u8], l4: usize) -> Vec<u8> {
    let header = if pkt[0] >> 4 == 6 {
        40
    } else {
        usize::from(pkt[0] & 0x0f) * 4
    };
    pkt[..header + l4].to_vec()
}

/// Parity v6_icmp_error_quote_ports_only and icmp_error_quote_ports_only:
/// conntrack reads 4 bytes of a quoted TCP or UDP header (its ports,
/// nf_ct_get_tuple_ports), so an error quoting no more is RELATED; fewer
/// bytes find nothing.
#[test]
fn an_error_quoting_only_the_ports_is_related() {
    for (c, s) in families() {
        // Port unreachable: ICMP 3/3, ICMPv6 1/4.
        let (ty, code) = if c.is_ipv4() { (3, 3) } else { (1, 4) };
        let mut h = Harness::default_config();
        let sent = udp(c, s, 40003, 9999, b"q");
        assert!(h.out(sent.clone()).forwards());
        let v = h.inb(icmp(s, c, ty, code, [0; 4], &quote(&sent, 4)));
        assert!(forwarded(&v, CtState::Related), "{c}: {v:?}");
        let v = h.inb(icmp(s, c, ty, code, [0; 4], &quote(&sent, 3)));
        assert_eq!(v.invalid, Some(InvalidReason::IcmpErrorBadInner), "{c}");
        // TCP too.
        let syn = seg(c, s, 40004, 80, 100, 0, SYN);
        assert!(h.out(syn.clone()).forwards());
        let v = h.inb(icmp(s, c, ty, code, [0; 4], &quote(&syn, 4)));
        assert!(forwarded(&v, CtState::Related), "{c}: {v:?}");
    }
    // An ICMP query quoted needs its 8-byte header (icmp_pkt_to_tuple).
    let mut h = Harness::default_config();
    let ping = echo(CLIENT6, SERVER6, 128, 7, 1);
    assert!(h.out(ping.clone()).forwards());
    let v = h.inb(icmp(SERVER6, CLIENT6, 1, 0, [0; 4], &quote(&ping, 8)));
    assert!(forwarded(&v, CtState::Related), "{v:?}");
    let v = h.inb(icmp(SERVER6, CLIENT6, 1, 0, [0; 4], &quote(&ping, 7)));
    assert_eq!(v.invalid, Some(InvalidReason::IcmpErrorBadInner));
}

/// An Authentication Header (24 bytes) announcing `next`.
fn ah(next: u8) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0] = next;
    h[1] = 4; // (4 + 2) * 4 = 24 bytes
    h[4..8].copy_from_slice(&0x1000u32.to_be_bytes());
    h
}

/// `pkt` (IPv6, no extension headers) with an AH before its transport.
fn behind_ah(pkt: &[u8]) -> Vec<u8> {
    let (src, dst) = (addr6(&pkt[8..24]), addr6(&pkt[24..40]));
    ipv6(src, dst, 51, &ah(pkt[6]), pkt[7], &pkt[40..])
}

fn addr6(b: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap())
}

/// Parity v6_ext_ah_tcp: behind an AH, conntrack tracks the TCP segment
/// (ipv6_skip_exthdr skips AH) but nftables' `meta l4proto` is AH
/// (ipv6_find_hdr with IP6_FH_F_AUTH), so `-p tcp` rules (meta l4proto tcp)
/// do not match: the SYN is NEW and dropped by the policy; a rule for
/// protocol 51 accepts it and the flow is a TCP flow.
#[test]
fn rules_see_an_ipv6_packet_behind_ah_as_ah() {
    let (c, s) = (IpAddr::V6(CLIENT6), IpAddr::V6(SERVER6));
    let mut h = Harness::default_config();
    let v = h.out(behind_ah(&seg(c, s, 40005, 80, 100, 0, SYN)));
    assert_eq!(
        (v.state, v.drop_reason()),
        (Some(CtState::New), Some(DropReason::PolicyOutbound))
    );
    // An established flow's packets behind AH: tracked, but no tcp rule.
    assert!(h.out(seg(c, s, 40005, 80, 100, 0, SYN)).forwards());
    let v = h.inb(behind_ah(&seg(s, c, 80, 40005, 5000, 101, SYN | ACK)));
    assert_eq!(
        (v.state, v.drop_reason()),
        (Some(CtState::Established), Some(DropReason::PolicyInbound))
    );
    let (flow, _) = h.flow(&tuple(6, c, 40005, s, 80)).expect("tracked");
    assert!(flow.seen_reply, "conntrack saw the SYN/ACK behind the AH");
    // IPv4 has no extension headers: AH there is the protocol itself.

    let cfg = r#"(
        outbound: (policy: Drop, rules: [
            (name: "ah", proto: Number(51), state: [New, Established], action: Accept),
            (name: "ports", proto: Tcp, dport: "80", action: Accept),
        ]),
        inbound: (policy: Drop, rules: [(name: "ports", sport: "80", proto: Tcp, action: Accept)]),
    )"#;
    let mut h = Harness::with_config(cfg);
    let v = h.out(behind_ah(&seg(c, s, 40006, 80, 100, 0, SYN)));
    assert!(forwarded(&v, CtState::New), "{v:?}");
    assert!(h.flow(&tuple(6, c, 40006, s, 80)).is_some(), "a TCP flow");
    // Port matches see no ports behind the AH (tcp sport needs l4proto tcp).
    let v = h.inb(behind_ah(&seg(s, c, 80, 40006, 5000, 101, SYN | ACK)));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
    let v = h.inb(seg(s, c, 80, 40006, 5000, 101, SYN | ACK));
    assert!(forwarded(&v, CtState::Established), "{v:?}");
}

/// `pkt` (IPv6, no extension headers) behind a Hop-by-Hop Options header
/// holding `options` (6 bytes).
fn behind_hbh(pkt: &[u8], options: [u8; 6]) -> Vec<u8> {
    let (src, dst) = (addr6(&pkt[8..24]), addr6(&pkt[24..40]));
    let mut hbh = vec![pkt[6], 0];
    hbh.extend_from_slice(&options);
    ipv6(src, dst, 0, &hbh, pkt[7], &pkt[40..])
}

/// Parity v6_ext_hbh_*: Linux reads the Hop-by-Hop options of every packet
/// it receives before netfilter (ipv6_parse_hopopts, ip6_parse_tlv) and
/// drops it for a bad one, so conntrack never sees it: a RST behind an
/// unknown option whose action is "discard" does not close the flow.
/// Options Linux accepts pass.
#[test]
fn a_bad_hop_by_hop_option_drops_the_packet_before_conntrack() {
    let (c, s) = (IpAddr::V6(CLIENT6), IpAddr::V6(SERVER6));
    let mut h = Harness::default_config();
    assert!(h.out(seg(c, s, 40007, 80, 100, 0, SYN)).forwards());
    assert!(h.inb(seg(s, c, 80, 40007, 5000, 101, SYN | ACK)).forwards());
    assert!(h.out(seg(c, s, 40007, 80, 101, 5001, ACK)).forwards());
    for (options, reason) in [
        ([0x9e, 4, 1, 2, 3, 4], "unknown option, discard and answer"),
        ([0x5e, 4, 1, 2, 3, 4], "unknown option, discard"),
        ([1, 4, 0, 0, 7, 0], "PadN not zero"),
        ([5, 4, 0, 0, 0, 0], "router alert of length 4"),
        ([0xc2, 4, 0, 1, 0, 0], "jumbo payload"),
        ([0x31, 4, 0, 0, 0, 0], "IOAM not 4-byte aligned"),
    ] {
        let v = h.out(behind_hbh(
            &seg(c, s, 40007, 80, 101, 5001, RST | ACK),
            options,
        ));
        assert_eq!(v.drop_reason(), Some(DropReason::Malformed), "{reason}");
        assert_eq!(v.invalid, Some(InvalidReason::Ipv6BadHopByHop), "{reason}");
    }
    let (flow, _) = h.flow(&tuple(6, c, 40007, s, 80)).expect("still tracked");
    assert_eq!(format!("{:?}", flow.tcp_state().unwrap()), "Established");
    for (options, what) in [
        ([0x1e, 4, 1, 2, 3, 4], "unknown option, skip"),
        ([5, 2, 0, 0, 1, 0], "router alert"),
        ([1, 0, 0x31, 0, 1, 0], "IOAM 4-byte aligned, IOAM off"),
    ] {
        let v = h.inb(behind_hbh(&seg(s, c, 80, 40007, 5001, 101, ACK), options));
        assert!(forwarded(&v, CtState::Established), "{what}: {v:?}");
    }
}

/// A UDP datagram `udp` whose IP payload carries `extra` bytes after its
/// UDP length, its checksum computed over the UDP length only (RFC 768) or
/// over the whole payload.
fn udp_with_trailer(udp: &[u8], extra: &[u8], over_payload: bool) -> Vec<u8> {
    let v6 = udp[0] >> 4 == 6;
    let header = if v6 { 40 } else { 20 };
    let mut d = udp[header..].to_vec();
    d.extend_from_slice(extra);
    if over_payload {
        d[6..8].fill(0);
        let len = d.len();
        let pseudo = if v6 {
            tunfw::wire::checksum::pseudo_header_v6(
                udp[8..24].try_into().unwrap(),
                udp[24..40].try_into().unwrap(),
                17,
                len as u32,
            )
        } else {
            tunfw::wire::checksum::pseudo_header_v4(
                udp[12..16].try_into().unwrap(),
                udp[16..20].try_into().unwrap(),
                17,
                len as u16,
            )
        };
        let c = !tunfw::wire::checksum::fold(pseudo + tunfw::wire::checksum::sum(&d));
        d[6..8].copy_from_slice(&c.to_be_bytes());
    }
    if v6 {
        let mut p = udp[..40].to_vec();
        p[4..6].copy_from_slice(&(d.len() as u16).to_be_bytes());
        p.extend_from_slice(&d);
        p
    } else {
        let mut p = udp[..20].to_vec();
        p[2..4].copy_from_slice(&((20 + d.len()) as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = tunfw::wire::checksum::internet_checksum(&[&p]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&d);
        p
    }
}

/// Parity v6_udp_length_short_of_payload and udp_length_short_of_payload:
/// conntrack checks a UDP checksum over the whole IP payload
/// (nf_checksum: skb->len - dataoff bytes, that length in the
/// pseudo-header), so a datagram shorter than its payload whose checksum
/// covers only its UDP length is INVALID; one whose checksum covers the
/// whole payload is NEW.
#[test]
fn a_udp_checksum_covers_the_whole_ip_payload() {
    for (c, s) in families() {
        let mut h = Harness::default_config();
        let rfc = udp_with_trailer(&udp(c, s, 40008, 53, b"q"), b"pad", false);
        let v = h.out(rfc);
        assert_eq!(v.invalid, Some(InvalidReason::UdpBadChecksum), "{c}");
        assert!(!v.forwards());
        let whole = udp_with_trailer(&udp(c, s, 40009, 53, b"q"), b"pad", true);
        let v = h.out(whole);
        assert!(forwarded(&v, CtState::New), "{c}: {v:?}");
        // No checksum at all: nothing to check.
        let mut none = udp_with_trailer(&udp(c, s, 40010, 53, b"q"), b"pad", false);
        let at = if c.is_ipv4() { 26 } else { 46 };
        none[at..at + 2].fill(0);
        assert!(forwarded(&h.out(none), CtState::New), "{c}");
    }
}

/// Parity v6_icmp_error_quote_bad_version and icmp_error_quote_bad_version:
/// conntrack reads the quoted header as the error's family without
/// looking at its version field (ipv4_get_l4proto, ipv6_get_l4proto), so
/// an error quoting a header with a wrong version is still RELATED.
#[test]
fn the_quoted_header_s_version_is_not_read() {
    for (c, s) in families() {
        let (ty, code) = if c.is_ipv4() { (3, 3) } else { (1, 4) };
        let mut h = Harness::default_config();
        let sent = udp(c, s, 40011, 9999, b"q");
        assert!(h.out(sent.clone()).forwards());
        let mut q = quote(&sent, 8);
        q[0] &= 0x0f; // version 0
        let v = h.inb(icmp(s, c, ty, code, [0; 4], &q));
        assert!(forwarded(&v, CtState::Related), "{c}: {v:?}");
    }
}
