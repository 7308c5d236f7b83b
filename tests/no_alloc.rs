//! The packet path never allocates: established flows, new flows (the table
//! was allocated up front), ICMP errors, drops, rejects and expiry, counted by
//! a global allocator that counts allocations made on this test's thread.

mod common;
mod counting;

use common::*;
use counting::counted;

#[test]
fn packet_path_does_not_allocate() {
    let cfg = TRACKING_CONFIG.replace("router:", "conntrack: (max: 512), router:");
    let mut h = Harness::with_config(&cfg);
    // Packets are built before counting starts; processing happens in place.
    let syn = tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 999,
            dport: 80,
            seq: 1,
            flags: SYN,
            window: 64000,
            ..Seg::default()
        },
    );
    let synack = tcp(
        SERVER,
        CLIENT,
        &Seg {
            sport: 80,
            dport: 999,
            seq: 100,
            ack: 2,
            flags: SYN | ACK,
            window: 64000,
            ..Seg::default()
        },
    );
    let ack = tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 999,
            dport: 80,
            seq: 2,
            ack: 101,
            flags: ACK,
            window: 64000,
            ..Seg::default()
        },
    );
    let mut established: Vec<Vec<u8>> = Vec::new();
    for i in 0..1000u32 {
        established.push(tcp(
            CLIENT,
            SERVER,
            &Seg {
                sport: 999,
                dport: 80,
                seq: 2 + i * 100,
                ack: 101,
                flags: ACK | PSH,
                window: 64000,
                payload: vec![7; 100],
                ..Seg::default()
            },
        ));
    }
    let new_flows: Vec<Vec<u8>> = (0..2000u16)
        .map(|p| udp(CLIENT, SERVER, 10_000 + p, 53, b"q"))
        .collect();
    let probe = udp(CLIENT, SERVER, 1, 9, b"x");
    let related = icmp_error(SERVER, CLIENT, 3, 3, &probe);
    let garbage = vec![0x45u8; 30];
    let ttl1 = with_ttl(udp(CLIENT, SERVER, 2, 9, b"x"), 1);
    let pings: Vec<Vec<u8>> = (0..100u16).map(|s| echo(CLIENT, SERVER, 8, 3, s)).collect();

    let mut bufs: Vec<Vec<u8>> = Vec::new();
    bufs.push(syn);
    bufs.push(synack);
    bufs.push(ack);
    bufs.extend(established);
    bufs.push(probe);
    bufs.push(related);
    bufs.extend(new_flows);
    bufs.push(garbage);
    bufs.push(ttl1);
    bufs.extend(pings);
    let sides: Vec<tunfw::side::Side> = bufs
        .iter()
        .map(|b| {
            if b[12..16] == SERVER.octets() {
                tunfw::side::Side::Wan
            } else {
                tunfw::side::Side::Lan
            }
        })
        .collect();
    let mut answer = vec![0u8; 2048];

    let (forwarded, allocations) = counted(|| {
        let mut fwd = 0;
        for (buf, side) in bufs.iter_mut().zip(&sides) {
            let v = h.fw.process(*side, buf, &mut answer, h.now);
            fwd += usize::from(v.forwards());
            h.now = tunfw::time::Instant::from_millis(h.now.total_millis() + 1);
        }
        // Let everything expire and collect it, in bounded steps as the
        // event loop does (a step while the deadline is not in the future).
        h.now = h.now + core::time::Duration::from_secs(1_000_000);
        while h.fw.next_deadline(h.now) <= h.now {
            h.fw.tick(h.now);
        }
        fwd
    });
    assert_eq!(allocations, 0, "the packet path allocated");
    assert!(
        forwarded > 3000,
        "the workload really ran ({forwarded} forwarded)"
    );
    assert!(
        h.fw.conntrack().stats.early_drop > 0,
        "the table filled and evicted"
    );
    assert_eq!(h.fw.conntrack().len(), 0);
}

#[test]
fn ipv6_packet_path_does_not_allocate() {
    let cfg = TRACKING_CONFIG.replace("router:", "conntrack: (max: 256), router:");
    let mut h = Harness::with_config(&cfg);
    let seg = |sport, dport, seq, ack, flags, payload: &[u8]| Seg {
        sport,
        dport,
        seq,
        ack,
        flags,
        window: 64000,
        payload: payload.to_vec(),
        ..Seg::default()
    };
    let mut bufs: Vec<(tunfw::side::Side, Vec<u8>)> = Vec::new();
    let (lan, wan) = (tunfw::side::Side::Lan, tunfw::side::Side::Wan);
    bufs.push((lan, tcp(CLIENT6, SERVER6, &seg(999, 80, 1, 0, SYN, b""))));
    bufs.push((
        wan,
        tcp(SERVER6, CLIENT6, &seg(80, 999, 100, 2, SYN | ACK, b"")),
    ));
    for i in 0..500u32 {
        let s = seg(999, 80, 2 + i * 100, 101, ACK | PSH, &[7; 100]);
        bufs.push((lan, tcp(CLIENT6, SERVER6, &s)));
    }
    let probe = udp(CLIENT6, SERVER6, 1, 9, b"x");
    bufs.push((lan, probe.clone()));
    bufs.push((wan, icmp_error(SERVER6, CLIENT6, 1, 4, &probe)));
    for p in 0..1000u16 {
        bufs.push((lan, udp(CLIENT6, SERVER6, 10_000 + p, 53, b"q")));
    }
    for s in 0..100u16 {
        bufs.push((lan, echo(CLIENT6, SERVER6, 128, 3, s)));
    }
    bufs.push((lan, icmp(CLIENT6, SERVER6, 135, 0, [0; 4], &[0; 16])));
    bufs.push((lan, with_ttl(udp(CLIENT6, SERVER6, 2, 9, b"x"), 1)));
    let mut ext = vec![0x60u8; 48];
    ext[6] = 0; // hop-by-hop whose length runs past the end
    ext[4..6].copy_from_slice(&8u16.to_be_bytes());
    ext[41] = 200;
    bufs.push((lan, ext));
    let mut answer = vec![0u8; 2048];

    let (forwarded, allocations) = counted(|| {
        let mut fwd = 0;
        for (side, buf) in bufs.iter_mut() {
            let v = h.fw.process(*side, buf, &mut answer, h.now);
            fwd += usize::from(v.forwards());
            h.now = tunfw::time::Instant::from_millis(h.now.total_millis() + 1);
        }
        h.now = h.now + core::time::Duration::from_secs(1_000_000);
        while h.fw.next_deadline(h.now) <= h.now {
            h.fw.tick(h.now);
        }
        fwd
    });
    assert_eq!(allocations, 0, "the IPv6 packet path allocated");
    assert!(
        forwarded > 1500,
        "the workload really ran ({forwarded} forwarded)"
    );
    assert!(
        h.fw.conntrack().stats.early_drop > 0,
        "the table filled and evicted"
    );
    assert!(
        h.fw.stats().sent_icmp > 0,
        "an ICMPv6 time exceeded was built"
    );
}

#[test]
fn fragment_path_does_not_allocate() {
    let mut h = Harness::tracking();
    let cut = |pkt: Vec<u8>, size: usize| fragments(&pkt, size, 9);
    let mut bufs: Vec<(tunfw::side::Side, Vec<u8>)> = Vec::new();
    let (lan, wan) = (tunfw::side::Side::Lan, tunfw::side::Side::Wan);
    for i in 0..20u16 {
        for f in cut(udp(CLIENT, SERVER, 100 + i, 53, &[1; 4000]), 1500) {
            bufs.push((lan, f));
        }
        for f in cut(udp(SERVER6, CLIENT6, 53, 100 + i, &[2; 4000]), 1280) {
            bufs.push((wan, f));
        }
        // An incomplete datagram and an overlap.
        let part = cut(udp(CLIENT6, SERVER6, 200 + i, 53, &[3; 3000]), 1280);
        bufs.push((lan, part[0].clone()));
        bufs.push((lan, part[0].clone()));
    }
    let mut answer = vec![0u8; 2048];
    let mut piece = vec![0u8; 2048];
    let (pieces, allocations) = counted(|| {
        let mut pieces = 0;
        for (side, buf) in bufs.iter_mut() {
            let v = h.fw.process(*side, buf, &mut answer, h.now);
            if let tunfw::verdict::Fate::ForwardFragments(n) = v.fate {
                for i in 0..n {
                    pieces += usize::from(h.fw.fragment_piece(i, &mut piece).is_some());
                }
            }
        }
        h.now = h.now + core::time::Duration::from_secs(120);
        h.fw.tick(h.now);
        pieces
    });
    assert_eq!(allocations, 0, "the fragment path allocated");
    assert!(
        pieces >= 20 * 3,
        "datagrams were reassembled and cut ({pieces} pieces)"
    );
    assert_eq!(h.fw.defrag().stats().queues, 0, "incomplete queues expired");
}

#[test]
fn ftp_helper_path_does_not_allocate() {
    let mut h = Harness::default_config();
    let seg = tcp_segment;
    let mut pkts = vec![
        (true, seg(CLIENT, SERVER, 40000, 21, 100, 0, SYN, b"")),
        (
            false,
            seg(SERVER, CLIENT, 21, 40000, 900, 101, SYN | ACK, b""),
        ),
        (true, seg(CLIENT, SERVER, 40000, 21, 101, 901, ACK, b"")),
        (
            false,
            seg(
                SERVER,
                CLIENT,
                21,
                40000,
                901,
                101,
                ACK | PSH,
                b"220 hi\r\n",
            ),
        ),
        (
            true,
            seg(
                CLIENT,
                SERVER,
                40000,
                21,
                101,
                909,
                ACK | PSH,
                b"USER a\r\n",
            ),
        ),
        (
            true,
            seg(
                CLIENT,
                SERVER,
                40000,
                21,
                109,
                909,
                ACK | PSH,
                b"PORT 10,0,1,2,1",
            ),
        ),
        (
            true,
            seg(CLIENT, SERVER, 40000, 21, 124, 909, ACK | PSH, b"95,80\r\n"),
        ),
        (false, seg(SERVER, CLIENT, 20, 50000, 5000, 0, SYN, b"")),
        (
            false,
            seg(
                SERVER,
                CLIENT,
                21,
                40000,
                909,
                131,
                ACK | PSH,
                b"227 Entering Passive Mode (10,0,2,2,117,48).\r\n",
            ),
        ),
        (true, seg(CLIENT, SERVER, 45000, 30000, 7000, 0, SYN, b"")),
    ];
    let mut answer = vec![0u8; 2048];
    let (verdicts, allocations) = counted(|| {
        let mut related = 0;
        for (from_client, buf) in pkts.iter_mut() {
            let side = if *from_client {
                tunfw::side::Side::Lan
            } else {
                tunfw::side::Side::Wan
            };
            let v = h.fw.process(side, buf, &mut answer, h.now);
            related +=
                usize::from(v.state == Some(tunfw::conntrack::CtState::Related) && v.forwards());
        }
        related
    });
    assert_eq!(allocations, 0, "the FTP helper path allocated");
    assert_eq!(verdicts, 2, "both data connections were RELATED");
    assert_eq!(h.fw.conntrack().expectations.stats.used, 2);
}

/// The FTP helper over IPv6: EPRT |2| split across two segments (the IPv6
/// address parsed from the line buffer), a refused bounce, EPRT |1| on IPv6,
/// and 229, with both data connections RELATED.
#[test]
fn ftp_helper_path_over_ipv6_does_not_allocate() {
    let mut h = Harness::default_config();
    let (c, s) = (CLIENT6, SERVER6);
    let seg = tcp_segment;
    let lines: [&[u8]; 4] = [
        b"EPRT |2|fd00:0:1::2|50000|\r\n",
        b"EPRT |2|fd00:0:1::99|50001|\r\n",
        b"EPRT |1|10.0.1.2|50002|\r\n",
        b"USER a\r\n",
    ];
    let mut pkts = vec![
        (true, seg(c, s, 40000, 21, 100, 0, SYN, b"")),
        (false, seg(s, c, 21, 40000, 900, 101, SYN | ACK, b"")),
        (true, seg(c, s, 40000, 21, 101, 901, ACK, b"")),
        (
            false,
            seg(s, c, 21, 40000, 901, 101, ACK | PSH, b"220 hi\r\n"),
        ),
        (true, seg(c, s, 40000, 21, 101, 909, ACK | PSH, lines[3])),
    ];
    // The bounce and the family mismatch, then the split EPRT.
    let mut at = 109;
    for line in [lines[1], lines[2]] {
        pkts.push((true, seg(c, s, 40000, 21, at, 909, ACK | PSH, line)));
        at += line.len() as u32;
    }
    let (first, rest) = lines[0].split_at(12);
    pkts.push((true, seg(c, s, 40000, 21, at, 909, ACK | PSH, first)));
    at += first.len() as u32;
    pkts.push((true, seg(c, s, 40000, 21, at, 909, ACK | PSH, rest)));
    at += rest.len() as u32;
    pkts.push((false, seg(s, c, 20, 50000, 5000, 0, SYN, b"")));
    pkts.push((
        false,
        seg(
            s,
            c,
            21,
            40000,
            909,
            at,
            ACK | PSH,
            b"229 Entering Extended Passive Mode (|||30001|)\r\n",
        ),
    ));
    pkts.push((true, seg(c, s, 45000, 30001, 7000, 0, SYN, b"")));
    let mut answer = vec![0u8; 2048];
    let (related, allocations) = counted(|| {
        let mut related = 0;
        for (from_client, buf) in pkts.iter_mut() {
            let side = if *from_client {
                tunfw::side::Side::Lan
            } else {
                tunfw::side::Side::Wan
            };
            let v = h.fw.process(side, buf, &mut answer, h.now);
            assert!(v.forwards(), "{v:?}");
            related +=
                usize::from(v.state == Some(tunfw::conntrack::CtState::Related) && v.forwards());
        }
        related
    });
    assert_eq!(allocations, 0, "the FTP helper path over IPv6 allocated");
    assert_eq!(related, 2, "both data connections were RELATED");
    let st = h.fw.ftp().stats;
    assert_eq!(
        (st.refused_address, st.malformed, st.split_commands),
        (1, 1, 1)
    );
    assert_eq!(h.fw.conntrack().expectations.stats.used, 2);
}

#[test]
fn offloaded_path_does_not_allocate() {
    use tunfw::segment;
    use tunfw::wire::vnet::{self, VnetHeader, F_NEEDS_CSUM, GSO_TCPV4};
    let mut h = Harness::default_config();
    let seg = |src, dst, sport, dport, seq, ack, flags, len: usize| {
        tcp_segment(src, dst, sport, dport, seq, ack, flags, &vec![b'a'; len])
    };
    let mut bufs = Vec::new();
    for dport in [80u16, 21] {
        bufs.push((vnet::PLAIN, seg(CLIENT, SERVER, 999, dport, 1, 0, SYN, 0)));
        bufs.push((
            vnet::PLAIN,
            seg(SERVER, CLIENT, dport, 999, 100, 2, SYN | ACK, 0),
        ));
        bufs.push((vnet::PLAIN, seg(CLIENT, SERVER, 999, dport, 2, 101, ACK, 0)));
        let tso = VnetHeader {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 16,
        };
        for i in 0..10u32 {
            let mut p = seg(CLIENT, SERVER, 999, dport, 2 + i * 4000, 101, ACK, 4000);
            p[36] ^= 0xff; // a partial checksum, not the complete one
            bufs.push((tso, p));
        }
    }
    let mut answer = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let (counts, allocations) = counted(|| {
        let (mut forwarded, mut cut) = (0, 0);
        for (vnet, buf) in bufs.iter_mut() {
            let side = if buf[12..16] == SERVER.octets() {
                tunfw::side::Side::Wan
            } else {
                tunfw::side::Side::Lan
            };
            let v = h.fw.process_offloaded(side, vnet, buf, &mut answer, h.now);
            forwarded += usize::from(v.forwards());
            if v.fate == tunfw::verdict::Fate::Resegment {
                let n = segment::tcp4_segment_count(buf, vnet.gso_size).unwrap_or(0);
                for i in 0..n {
                    if let Ok(len) = segment::segment_tcp4(buf, vnet.gso_size, i, &mut out) {
                        let v = h.fw.process(side, &mut out[..len], &mut answer, h.now);
                        cut += usize::from(v.forwards());
                    }
                }
            }
        }
        (forwarded, cut)
    });
    assert_eq!(allocations, 0, "the offloaded packet path allocated");
    assert_eq!(
        counts,
        (16, 40),
        "super-packets forwarded whole (port 80) and cut (port 21)"
    );
}

#[test]
fn offloaded_ipv6_path_does_not_allocate() {
    use tunfw::segment;
    use tunfw::wire::vnet::{self, VnetHeader, F_NEEDS_CSUM, GSO_TCPV6, GSO_UDP_L4};
    let mut h = Harness::default_config();
    let seg = |src, dst, sport, dport, seq, ack, flags, len: usize| {
        tcp_segment(src, dst, sport, dport, seq, ack, flags, &vec![b'a'; len])
    };
    // A Destination Options header (PadN) in front of TCP: copied to each segment.
    let with_dest_opts = |mut p: Vec<u8>| {
        let len = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p[6] = 60;
        p.splice(40..40, [6u8, 0, 1, 4, 0, 0, 0, 0]);
        p
    };
    let mut bufs = Vec::new();
    for dport in [80u16, 21] {
        bufs.push((vnet::PLAIN, seg(CLIENT6, SERVER6, 999, dport, 1, 0, SYN, 0)));
        bufs.push((
            vnet::PLAIN,
            seg(SERVER6, CLIENT6, dport, 999, 100, 2, SYN | ACK, 0),
        ));
        bufs.push((
            vnet::PLAIN,
            seg(CLIENT6, SERVER6, 999, dport, 2, 101, ACK, 0),
        ));
        for i in 0..10u32 {
            let mut p = seg(CLIENT6, SERVER6, 999, dport, 2 + i * 4000, 101, ACK, 4000);
            let ext = if i % 2 == 1 {
                p = with_dest_opts(p);
                8
            } else {
                0
            };
            p[40 + ext + 16] ^= 0xff; // a partial checksum, not the complete one
            let tso6 = VnetHeader {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV6,
                hdr_len: 60 + ext as u16,
                gso_size: 1000,
                csum_start: 40 + ext as u16,
                csum_offset: 16,
            };
            bufs.push((tso6, p));
        }
    }
    let uso = VnetHeader {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_UDP_L4,
        hdr_len: 48,
        gso_size: 1000,
        csum_start: 40,
        csum_offset: 6,
    };
    for i in 0..10u16 {
        let mut d = udp(CLIENT6, SERVER6, 5000 + i % 2, 4433, &[b'u'; 3500]);
        d[46] ^= 0xff;
        bufs.push((uso, d));
    }
    let mut answer = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let (counts, allocations) = counted(|| {
        let (mut forwarded, mut cut) = (0, 0);
        for (vnet, buf) in bufs.iter_mut() {
            let side = if buf[8..24] == SERVER6.octets() {
                tunfw::side::Side::Wan
            } else {
                tunfw::side::Side::Lan
            };
            let v = h.fw.process_offloaded(side, vnet, buf, &mut answer, h.now);
            forwarded += usize::from(v.forwards());
            if v.fate == tunfw::verdict::Fate::Resegment {
                let n = segment::segment_count(buf, vnet.gso_size).unwrap_or(0);
                for i in 0..n {
                    if let Ok(len) = segment::segment(buf, vnet.gso_size, i, &mut out) {
                        let v = h.fw.process(side, &mut out[..len], &mut answer, h.now);
                        cut += usize::from(v.forwards());
                    }
                }
            }
        }
        (forwarded, cut)
    });
    assert_eq!(allocations, 0, "the offloaded IPv6 packet path allocated");
    assert_eq!(
        counts,
        (26, 40),
        "TSO6 super-packets forwarded whole (port 80) and cut (port 21), USO6 forwarded"
    );
}
