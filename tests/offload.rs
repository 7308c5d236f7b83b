//! TUN offloads on the pure packet path: virtio-net headers, checksum-partial
//! packets, TCP super-packets tracked as the range of segments they stand
//! for, and the segmenter used where a helper must read one segment at a time.

mod common;

use common::*;
use tunfw::conntrack::CtState;
use tunfw::packet::{self, ParseError, Transport};
use tunfw::segment::{segment_tcp4, tcp4_segment_count, SegmentError};
use tunfw::side::Side;
use tunfw::stats::InvalidReason;
use tunfw::verdict::Verdict;
use tunfw::wire::vnet::{self, VnetHeader, F_DATA_VALID, F_NEEDS_CSUM, GSO_TCPV4, GSO_UDP_L4};

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
    let (c, s) = (1000u32, 5000u32);
    let wscale = vec![1, 3, 3, 7]; // NOP, window scale 7
    let v = h.out(tcp(
        CLIENT,
        SERVER,
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
        SERVER,
        CLIENT,
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
        CLIENT,
        SERVER,
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
    tcp(
        CLIENT,
        SERVER,
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
