//! TUN offloads on the pure packet path: virtio-net headers, checksum-partial
//! packets, TCP super-packets tracked as the range of segments they stand
//! for, and the segmenter used where a helper must read one segment at a time;
//! in both IP families (TSO4, TSO6, USO over IPv4 and IPv6).

mod common;

use core::net::IpAddr;

use common::*;
use tunfw::conntrack::CtState;
use tunfw::packet::{self, ParseError, Transport};
use tunfw::segment::{
    segment, segment_count, segment_tcp4, segment_tcp6, tcp4_segment_count, tcp6_segment_count,
    SegmentError,
};
use tunfw::side::Side;
use tunfw::stats::InvalidReason;
use tunfw::verdict::Verdict;
use tunfw::wire::vnet::{
    self, VnetHeader, F_DATA_VALID, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4,
};

const MSS: u16 = 1448;

/// The header the kernel puts in front of a TCP super-packet it leaves to be
/// segmented and checksummed: NEEDS_CSUM at the TCP checksum field.
fn tso(gso_size: u16) -> VnetHeader {
    VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 40,
        gso_size,
        csum_start: 20,
        csum_offset: 16,
    }
}

/// Overwrite the TCP checksum with what a checksum-partial packet carries
/// (anything but the complete sum).
fn spoil_tcp_checksum(pkt: &mut [u8]) {
    pkt[20 + 16] ^= 0x5a;
    pkt[20 + 17] ^= 0xa5;
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn vnet_header_round_trips() {
    let h = tso(MSS);
    let mut b = [0u8; 10];
    h.write(&mut b);
    assert_eq!(VnetHeader::read(&b), Some(h));
    assert_eq!(VnetHeader::read(&b[..9]), None);
    assert!(h.is_gso());
    assert!(!vnet::PLAIN.is_gso());
}

#[test]
fn partial_checksum_is_trusted_only_where_the_header_says() {
    let mut pkt = tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 1,
            flags: ACK,
            window: 1000,
            payload: payload(100),
            ..Seg::default()
        },
    );
    spoil_tcp_checksum(&mut pkt);
    let partial = VnetHeader {
        gso_type: 0,
        gso_size: 0,
        ..tso(0)
    };
    assert!(packet::parse_with(&pkt, &partial).is_ok());
    let verified = VnetHeader {
        flags: F_DATA_VALID,
        ..vnet::PLAIN
    };
    assert!(packet::parse_with(&pkt, &verified).is_ok());
    let bad = Err(ParseError::Invalid(InvalidReason::TcpBadChecksum));
    assert_eq!(packet::parse(&pkt), bad);
    // NEEDS_CSUM pointing anywhere but the TCP checksum field vouches for nothing.
    let elsewhere = VnetHeader {
        csum_offset: 6,
        ..partial
    };
    assert_eq!(packet::parse_with(&pkt, &elsewhere), bad);
    // The IPv4 header checksum is always verified.
    let mut broken_ip = pkt.clone();
    broken_ip[10] ^= 1;
    assert_eq!(
        packet::parse_with(&broken_ip, &verified),
        Err(ParseError::Invalid(InvalidReason::IpBadChecksum))
    );
}

#[test]
fn gso_type_must_fit_the_packet() {
    let dgram = udp(CLIENT, SERVER, 5000, 53, b"query");
    assert_eq!(
        packet::parse_with(&dgram, &tso(MSS)),
        Err(ParseError::Invalid(InvalidReason::VnetBadGso))
    );
    let uso = VnetHeader {
        flags: 0,
        gso_type: GSO_UDP_L4,
        gso_size: 2,
        ..vnet::PLAIN
    };
    assert!(packet::parse_with(&dgram, &uso).is_ok());
    let seg = tcp(
        CLIENT,
        SERVER,
        &Seg {
            flags: SYN,
            ..Seg::default()
        },
    );
    assert_eq!(
        packet::parse_with(&seg, &tso(0)),
        Err(ParseError::Invalid(InvalidReason::VnetBadGso))
    );
}

fn super_packet(flags: u8, len: usize) -> Vec<u8> {
    tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 40000,
            dport: 80,
            seq: 0xffff_f000, // the segments' sequence numbers wrap
            ack: 77,
            flags,
            window: 500,
            options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], // NOP NOP timestamp
            payload: payload(len),
        },
    )
}

#[test]
fn segmenter_cuts_what_the_kernel_would_send() {
    let len = 3 * usize::from(MSS) + 100;
    let sp = super_packet(ACK | PSH | FIN | CWR, len);
    assert_eq!(tcp4_segment_count(&sp, MSS), Ok(4));
    let mut joined = Vec::new();
    let mut out = vec![0u8; 2000];
    for i in 0..4 {
        let n = segment_tcp4(&sp, MSS, i, &mut out).expect("segment");
        let seg = &out[..n];
        let p = packet::parse(seg).expect("segment parses with complete checksums");
        let Transport::Tcp(t) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!(
            t.seq.0,
            0xffff_f000u32.wrapping_add(i as u32 * u32::from(MSS))
        );
        assert_eq!(t.ack.0, 77);
        assert_eq!(t.options.len(), 12);
        assert_eq!(u16::from_be_bytes([seg[4], seg[5]]), 0x4242 + i as u16);
        assert_eq!(t.flags & CWR != 0, i == 0, "CWR only on the first");
        assert_eq!(
            t.flags & (FIN | PSH) != 0,
            i == 3,
            "FIN and PSH only on the last"
        );
        assert_eq!(t.flags & ACK, ACK);
        assert_eq!(t.payload.len(), if i < 3 { usize::from(MSS) } else { 100 });
        joined.extend_from_slice(t.payload);
    }
    assert_eq!(joined, payload(len));
    assert_eq!(
        segment_tcp4(&sp, MSS, 0, &mut out[..100]),
        Err(SegmentError::OutTooSmall)
    );
    assert_eq!(tcp4_segment_count(&sp, 0), Err(SegmentError::NoSegmentSize));
    for past in [4, usize::MAX] {
        assert_eq!(
            segment_tcp4(&sp, MSS, past, &mut out),
            Err(SegmentError::NoSuchSegment)
        );
    }
    let dgram = udp(CLIENT, SERVER, 1, 2, b"x");
    assert_eq!(tcp4_segment_count(&dgram, MSS), Err(SegmentError::NotTcp4));
    // Never panics on any truncation.
    for cut in 0..sp.len().min(200) {
        let _ = segment_tcp4(&sp[..cut], MSS, 0, &mut out);
    }
}

/// Open a TCP flow client:40000 -> server:`dport` with window scaling, so a
/// 64 KiB super-packet fits the window as it does on a real connection.
fn handshake(h: &mut Harness, dport: u16) -> (u32, u32) {
    handshake_between(h, CLIENT.into(), SERVER.into(), dport)
}

/// [`handshake`] between `client` and `server`, of either family.
fn handshake_between(h: &mut Harness, client: IpAddr, server: IpAddr, dport: u16) -> (u32, u32) {
    let (c, s) = (1000u32, 5000u32);
    let wscale = vec![1, 3, 3, 7]; // NOP, window scale 7
    let v = h.out(tcp(
        client,
        server,
        &Seg {
            sport: 40000,
            dport,
            seq: c,
            flags: SYN,
            window: 64240,
            options: wscale.clone(),
            ..Seg::default()
        },
    ));
    assert!(v.forwards());
    let v = h.inb(tcp(
        server,
        client,
        &Seg {
            sport: dport,
            dport: 40000,
            seq: s,
            ack: c + 1,
            flags: SYN | ACK,
            window: 65160,
            options: wscale,
            ..Seg::default()
        },
    ));
    assert!(v.forwards());
    let v = h.out(tcp(
        client,
        server,
        &Seg {
            sport: 40000,
            dport,
            seq: c + 1,
            ack: s + 1,
            flags: ACK,
            window: 502,
            ..Seg::default()
        },
    ));
    assert_eq!(v.state, Some(CtState::Established));
    (c + 1, s + 1)
}

/// Client to server data on the flow [`handshake`] opened.
fn client_data(dport: u16, seq: u32, ack: u32, flags: u8, len: usize) -> Vec<u8> {
    client_data_between(CLIENT.into(), SERVER.into(), dport, seq, ack, flags, len)
}

/// [`client_data`] between `client` and `server`, of either family.
fn client_data_between(
    client: IpAddr,
    server: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    len: usize,
) -> Vec<u8> {
    tcp(
        client,
        server,
        &Seg {
            sport: 40000,
            dport,
            seq,
            ack,
            flags,
            window: 502,
            payload: payload(len),
            ..Seg::default()
        },
    )
}

fn send_offloaded(h: &mut Harness, side: Side, vnet: &VnetHeader, mut pkt: Vec<u8>) -> Verdict {
    let mut answer = vec![0u8; 2048];
    h.fw.process_offloaded(side, vnet, &mut pkt, &mut answer, h.now)
}

#[test]
fn super_packet_is_tracked_as_its_whole_range() {
    let mut h = Harness::tracking();
    let (c, s) = handshake(&mut h, 80);
    let len = 45 * usize::from(MSS); // 65,160 bytes: one TSO super-packet
    let mut sp = client_data(80, c, s, ACK | PSH, len);
    spoil_tcp_checksum(&mut sp);
    let v = send_offloaded(&mut h, Side::Lan, &tso(MSS), sp);
    assert!(v.forwards(), "{v:?}");
    assert!(!(v.fate == tunfw::verdict::Fate::Resegment));
    assert_eq!(v.state, Some(CtState::Established));
    assert_eq!(h.fw.stats().gso_in, [1, 0]);
    assert_eq!(h.fw.stats().checksum_offloaded, [1, 0]);
    // The server acknowledges the whole range: data tunfw saw sent, so valid.
    let ack_all = |ack: u32| {
        tcp(
            SERVER,
            CLIENT,
            &Seg {
                sport: 80,
                dport: 40000,
                seq: s,
                ack,
                flags: ACK,
                window: 509,
                ..Seg::default()
            },
        )
    };
    let v = h.inb(ack_all(c + len as u32));
    assert_eq!(v.state, Some(CtState::Established), "{v:?}");
    // Acknowledging beyond it is acknowledging unsent data.
    let v = h.inb(ack_all(c + len as u32 + 70_000));
    assert_eq!(v.invalid, Some(InvalidReason::TcpAckUnsentData));
}

#[test]
fn super_packet_of_a_helper_flow_comes_back_to_be_cut() {
    let mut h = Harness::default_config();
    let (c, s) = handshake(&mut h, 21);
    let before = h.fw.stats().clone();
    let flows = h.fw.conntrack().len();
    let mut sp = client_data(21, c, s, ACK | PSH, 2 * usize::from(MSS));
    spoil_tcp_checksum(&mut sp);
    let v = send_offloaded(&mut h, Side::Lan, &tso(MSS), sp.clone());
    assert!(
        (v.fate == tunfw::verdict::Fate::Resegment) && !v.forwards() && v.drop_reason().is_none(),
        "{v:?}"
    );
    assert_eq!(
        h.fw.stats().packets_in,
        before.packets_in,
        "nothing counted"
    );
    assert_eq!(h.fw.stats().resegmented, 1);
    assert_eq!(h.fw.conntrack().len(), flows);
    // Its segments go through one by one, as plain packets.
    let mut out = vec![0u8; 2000];
    for i in 0..2 {
        let n = segment_tcp4(&sp, MSS, i, &mut out).expect("segment");
        let mut answer = vec![0u8; 2048];
        let v = h.fw.process(Side::Lan, &mut out[..n], &mut answer, h.now);
        assert!(
            v.forwards() && !(v.fate == tunfw::verdict::Fate::Resegment),
            "{v:?}"
        );
    }
    // The same super-packet on another port is tracked whole.
    let mut h = Harness::default_config();
    let (c, s) = handshake(&mut h, 80);
    let sp = client_data(80, c, s, ACK, 2 * usize::from(MSS));
    let v = send_offloaded(&mut h, Side::Lan, &tso(MSS), sp);
    assert!(v.forwards() && !(v.fate == tunfw::verdict::Fate::Resegment));
}

// IPv6: TSO6 (GSO_TCPV6) and USO (GSO_UDP_L4) over IPv6.

/// The payload of a 1500-byte IPv6 TCP segment with timestamps.
const MSS6: u16 = 1428;

/// The header the kernel puts in front of an IPv6 TCP super-packet whose
/// headers (fixed header, `ext` bytes of extension headers, TCP with
/// `tcp_header` bytes) are `hdr_len` long: NEEDS_CSUM at the TCP checksum.
fn tso6(gso_size: u16, ext: u16, tcp_header: u16) -> VnetHeader {
    VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV6,
        hdr_len: 40 + ext + tcp_header,
        gso_size,
        csum_start: 40 + ext,
        csum_offset: 16,
    }
}

/// The IPv6 packet `pkt` (no extension headers) with the extension headers
/// `ext` inserted after its fixed header, the first of them of type
/// `first`; the last of `ext` must name the packet's own next header.
fn with_ext(mut pkt: Vec<u8>, first: u8, ext: &[u8]) -> Vec<u8> {
    let payload_len = u16::from_be_bytes([pkt[4], pkt[5]]) + ext.len() as u16;
    pkt[4..6].copy_from_slice(&payload_len.to_be_bytes());
    pkt[6] = first;
    pkt.splice(40..40, ext.iter().copied());
    pkt
}

const HOP_BY_HOP: u8 = 0;
const DEST_OPTS: u8 = 60;
/// Hop-by-Hop (PadN) then Destination Options (PadN) then TCP: 16 bytes
/// the kernel's GSO copies to every segment.
const EXT: [u8; 16] = [
    DEST_OPTS, 0, 1, 4, 0, 0, 0, 0, // Hop-by-Hop, next: Destination Options
    6, 0, 1, 4, 0, 0, 0, 0, // Destination Options, next: TCP
];

fn super_packet6(flags: u8, len: usize) -> Vec<u8> {
    let pkt = tcp(
        CLIENT6,
        SERVER6,
        &Seg {
            sport: 40000,
            dport: 80,
            seq: 0xffff_f000, // the segments' sequence numbers wrap
            ack: 77,
            flags,
            window: 500,
            options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], // NOP NOP timestamp
            payload: payload(len),
        },
    );
    with_ext(pkt, HOP_BY_HOP, &EXT)
}

#[test]
fn segmenter_cuts_ipv6_as_the_kernel_would() {
    let len = 3 * usize::from(MSS6) + 100;
    let sp = super_packet6(ACK | PSH | FIN | CWR, len);
    assert!(
        packet::parse(&sp).is_ok(),
        "the super-packet itself is sound"
    );
    assert_eq!(tcp6_segment_count(&sp, MSS6), Ok(4));
    assert_eq!(segment_count(&sp, MSS6), Ok(4));
    let mut joined = Vec::new();
    let mut out = vec![0u8; 2000];
    let mut same = vec![0u8; 2000];
    for i in 0..4 {
        let n = segment_tcp6(&sp, MSS6, i, &mut out).expect("segment");
        assert_eq!(
            segment(&sp, MSS6, i, &mut same),
            Ok(n),
            "dispatch by version"
        );
        assert_eq!(out[..n], same[..n]);
        let seg = &out[..n];
        let p = packet::parse(seg).expect("segment parses with complete checksums");
        assert_eq!(p.ip.header_len, 56, "extension headers kept");
        assert_eq!(seg[..4], sp[..4], "version, class, flow label");
        assert_eq!(seg[6..40], sp[6..40], "next header, hop limit, addresses");
        assert_eq!(seg[40..56], EXT, "extension headers copied unchanged");
        assert_eq!(usize::from(u16::from_be_bytes([seg[4], seg[5]])), n - 40);
        let Transport::Tcp(t) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!(
            t.seq.0,
            0xffff_f000u32.wrapping_add(i as u32 * u32::from(MSS6))
        );
        assert_eq!((t.ack.0, t.window), (77, 500));
        assert_eq!(t.options, &sp[56 + 20..56 + 32]);
        assert_eq!(t.flags & CWR != 0, i == 0, "CWR only on the first");
        assert_eq!(
            t.flags & (FIN | PSH) != 0,
            i == 3,
            "FIN and PSH only on the last"
        );
        assert_eq!(t.flags & ACK, ACK);
        assert_eq!(t.payload.len(), if i < 3 { usize::from(MSS6) } else { 100 });
        joined.extend_from_slice(t.payload);
    }
    assert_eq!(joined, payload(len));
    // A super-packet without payload is one segment, itself.
    let bare = super_packet6(ACK, 0);
    assert_eq!(tcp6_segment_count(&bare, MSS6), Ok(1));
    let n = segment_tcp6(&bare, MSS6, 0, &mut out).unwrap();
    assert_eq!(out[..n], bare[..]);
    // Without extension headers too.
    let plain = client_data_between(CLIENT6.into(), SERVER6.into(), 80, 5, 6, ACK, 3000);
    assert_eq!(tcp6_segment_count(&plain, MSS6), Ok(3));
    let n = segment_tcp6(&plain, MSS6, 2, &mut out).unwrap();
    assert_eq!(n, 40 + 20 + 3000 - 2 * usize::from(MSS6));
    assert!(packet::parse(&out[..n]).is_ok());
}

#[test]
fn segmenter_refuses_what_ipv6_gso_refuses() {
    let sp = super_packet6(ACK, 2 * usize::from(MSS6));
    let mut out = vec![0u8; 2000];
    assert_eq!(
        segment_tcp6(&sp, MSS6, 0, &mut out[..100]),
        Err(SegmentError::OutTooSmall)
    );
    assert_eq!(tcp6_segment_count(&sp, 0), Err(SegmentError::NoSegmentSize));
    for past in [2, usize::MAX] {
        assert_eq!(
            segment_tcp6(&sp, MSS6, past, &mut out),
            Err(SegmentError::NoSuchSegment)
        );
    }
    let dgram = udp(CLIENT6, SERVER6, 1, 2, b"x");
    assert_eq!(tcp6_segment_count(&dgram, MSS6), Err(SegmentError::NotTcp6));
    assert_eq!(segment_count(&dgram, MSS6), Err(SegmentError::NotTcp6));
    let v4 = super_packet(ACK, 10);
    assert_eq!(tcp6_segment_count(&v4, MSS6), Err(SegmentError::NotTcp6));
    assert_eq!(tcp4_segment_count(&sp, MSS6), Err(SegmentError::NotTcp4));
    assert_eq!(segment_count(&[], MSS6), Err(SegmentError::NotIp));
    assert_eq!(segment_count(&[0x50; 60], MSS6), Err(SegmentError::NotIp));
    // Linux's ipv6_gso_segment does not cross a Fragment header or AH.
    let plain = client_data_between(CLIENT6.into(), SERVER6.into(), 80, 5, 6, ACK, 3000);
    let atomic_fragment = with_ext(plain.clone(), 44, &[6, 0, 0, 0, 0, 0, 0, 1]);
    // (The packet path gives an atomic fragment to the reassembler, as
    // Linux's defrag queues it; the segmenter still refuses it.)
    assert_eq!(
        packet::parse(&atomic_fragment).err(),
        Some(packet::ParseError::Fragment)
    );
    assert_eq!(
        tcp6_segment_count(&atomic_fragment, MSS6),
        Err(SegmentError::ExtensionHeader)
    );
    let ah = with_ext(plain, 51, &[6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(
        segment_tcp6(&ah, MSS6, 0, &mut out),
        Err(SegmentError::ExtensionHeader)
    );
    // Never panics on any truncation or any value of a header byte.
    for cut in 0..sp.len().min(200) {
        let _ = segment_tcp6(&sp[..cut], MSS6, 0, &mut out);
        let _ = segment(&sp[..cut], MSS6, 1, &mut out);
    }
    for at in 0..100 {
        for value in [0u8, 1, 0x0f, 0x50, 0xff] {
            let mut bad = sp.clone();
            bad[at] = value;
            for index in [0, 1, 2, usize::MAX] {
                let _ = segment_tcp6(&bad, MSS6, index, &mut out);
            }
        }
    }
}

#[test]
fn tso6_super_packet_is_tracked_as_its_whole_range_and_passed_with_its_header() {
    let mut h = Harness::tracking();
    let (c6, s6) = (IpAddr::from(CLIENT6), IpAddr::from(SERVER6));
    let (c, s) = handshake_between(&mut h, c6, s6, 80);
    let len = 45 * usize::from(MSS6); // 64,260 bytes: one TSO6 super-packet
    let mut sp = client_data_between(c6, s6, 80, c, s, ACK | PSH, len);
    sp[40 + 16] ^= 0x5a; // a partial checksum, not the complete one
    let sent = sp.clone();
    let mut answer = vec![0u8; 2048];
    let v =
        h.fw.process_offloaded(Side::Lan, &tso6(MSS6, 0, 20), &mut sp, &mut answer, h.now);
    assert!(v.forwards(), "{v:?}");
    assert!(v.fate != tunfw::verdict::Fate::Resegment);
    assert_eq!(v.state, Some(CtState::Established));
    assert_eq!(h.fw.stats().gso_in, [1, 0]);
    assert_eq!(h.fw.stats().checksum_offloaded, [1, 0]);
    // Forwarded whole (the event loop writes it behind the same virtio-net
    // header): only the hop limit changed.
    assert_eq!(sp[7], sent[7] - 1);
    assert_eq!((&sp[..7], &sp[8..]), (&sent[..7], &sent[8..]));
    let ack_all = |ack: u32| {
        tcp(
            s6,
            c6,
            &Seg {
                sport: 80,
                dport: 40000,
                seq: s,
                ack,
                flags: ACK,
                window: 509,
                ..Seg::default()
            },
        )
    };
    let v = h.inb(ack_all(c + len as u32));
    assert_eq!(v.state, Some(CtState::Established), "{v:?}");
    let v = h.inb(ack_all(c + len as u32 + 70_000));
    assert_eq!(v.invalid, Some(InvalidReason::TcpAckUnsentData));
}

#[test]
fn tso6_super_packet_of_a_helper_flow_comes_back_to_be_cut() {
    let mut h = Harness::default_config();
    let (c6, s6) = (IpAddr::from(CLIENT6), IpAddr::from(SERVER6));
    let (c, s) = handshake_between(&mut h, c6, s6, 21);
    let before = h.fw.stats().clone();
    let flows = h.fw.conntrack().len();
    let len = 3 * usize::from(MSS6) + 7;
    let plain = client_data_between(c6, s6, 21, c, s, ACK | PSH, len);
    let mut sp = with_ext(plain, DEST_OPTS, &EXT[8..]);
    sp[48 + 16] ^= 0x5a; // a partial checksum
    let vnet = tso6(MSS6, 8, 20);
    let mut answer = vec![0u8; 2048];
    let mut buf = sp.clone();
    let v =
        h.fw.process_offloaded(Side::Lan, &vnet, &mut buf, &mut answer, h.now);
    assert!(
        v.fate == tunfw::verdict::Fate::Resegment && !v.forwards() && v.drop_reason().is_none(),
        "{v:?}"
    );
    assert_eq!(buf, sp, "untouched");
    assert_eq!(
        h.fw.stats().packets_in,
        before.packets_in,
        "nothing counted"
    );
    assert_eq!(h.fw.stats().resegmented, 1);
    assert_eq!(h.fw.conntrack().len(), flows);
    // Its segments, cut as the event loop cuts them, each parse with
    // complete checksums, go through one by one as plain packets, and
    // together carry the super-packet's payload.
    let count = segment_count(&sp, vnet.gso_size).expect("count");
    assert_eq!(count, 4);
    let mut joined = Vec::new();
    let mut out = vec![0u8; 2000];
    for i in 0..count {
        let n = segment(&sp, vnet.gso_size, i, &mut out).expect("segment");
        let p = packet::parse(&out[..n]).expect("complete checksums");
        let Transport::Tcp(t) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!(p.ip.header_len, 48);
        joined.extend_from_slice(t.payload);
        let v = h.fw.process(Side::Lan, &mut out[..n], &mut answer, h.now);
        assert!(
            v.forwards() && v.fate != tunfw::verdict::Fate::Resegment,
            "{v:?}"
        );
        assert_eq!(v.state, Some(CtState::Established));
    }
    assert_eq!(joined, payload(len));
    assert_eq!(
        h.fw.stats().packets_forwarded[0],
        before.packets_forwarded[0] + 4
    );
}

#[test]
fn uso_over_ipv6_is_tracked_and_passed() {
    let mut h = Harness::default_config();
    let len = 3 * 1232 + 100;
    let mut dgram = udp(CLIENT6, SERVER6, 5000, 4433, &payload(len));
    dgram[40 + 6] ^= 0x5a; // a partial checksum
    let sent = dgram.clone();
    let uso = VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_UDP_L4,
        hdr_len: 48,
        gso_size: 1232,
        csum_start: 40,
        csum_offset: 6,
    };
    let mut answer = vec![0u8; 2048];
    let v =
        h.fw.process_offloaded(Side::Lan, &uso, &mut dgram, &mut answer, h.now);
    assert!(forwarded(&v, CtState::New), "{v:?}");
    assert_eq!(h.fw.stats().gso_in, [1, 0]);
    assert_eq!(h.fw.stats().checksum_offloaded, [1, 0]);
    assert_eq!(dgram[7], sent[7] - 1, "forwarded whole, hop limit less one");
    assert_eq!(dgram[8..], sent[8..]);
    let t = tuple(17, CLIENT6, 5000, SERVER6, 4433);
    assert!(h.flow(&t).is_some(), "tracked");
    let v = h.inb(udp(SERVER6, CLIENT6, 4433, 5000, b"answer"));
    assert!(forwarded(&v, CtState::Established), "{v:?}");
    // Another super-packet of the same flow: established.
    let mut more = udp(CLIENT6, SERVER6, 5000, 4433, &payload(2 * 1232));
    let v =
        h.fw.process_offloaded(Side::Lan, &uso, &mut more, &mut answer, h.now);
    assert!(forwarded(&v, CtState::Established), "{v:?}");
}

#[test]
fn an_ipv4_gso_type_on_an_ipv6_packet_is_invalid() {
    let mut h = Harness::tracking();
    let (c6, s6) = (IpAddr::from(CLIENT6), IpAddr::from(SERVER6));
    let (c, s) = handshake_between(&mut h, c6, s6, 80);
    let mut sp = client_data_between(c6, s6, 80, c, s, ACK, 2 * usize::from(MSS6));
    let tso4 = VnetHeader {
        csum_start: 40,
        ..tso(MSS6)
    };
    let mut answer = vec![0u8; 2048];
    let v =
        h.fw.process_offloaded(Side::Lan, &tso4, &mut sp, &mut answer, h.now);
    assert_eq!(v.invalid, Some(InvalidReason::VnetBadGso), "{v:?}");
    assert!(!v.forwards());
    assert_eq!(InvalidReason::VnetBadGso.as_str(), "vnet_bad_gso");
    assert_eq!(
        h.fw.stats().invalid[InvalidReason::VnetBadGso.index()],
        1,
        "counted as invalid.vnet_bad_gso"
    );
    // And the other way: a TSO6 header on an IPv4 packet, or on IPv6 UDP.
    let v4 = client_data(80, 1, 1, ACK, 3000);
    assert_eq!(
        packet::parse_with(&v4, &tso6(MSS, 0, 20)),
        Err(ParseError::Invalid(InvalidReason::VnetBadGso))
    );
    let dgram = udp(CLIENT6, SERVER6, 1, 2, &payload(3000));
    assert_eq!(
        packet::parse_with(&dgram, &tso6(MSS6, 0, 8)),
        Err(ParseError::Invalid(InvalidReason::VnetBadGso))
    );
}
