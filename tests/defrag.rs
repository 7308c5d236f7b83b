//! The reassembler through the crate's public API: fragments the packet
//! parser turns away are reassembled into a datagram it accepts, cut
//! again to the largest fragment's size they are the sender's fragments,
//! and none of it allocates (counted by a global allocator that counts
//! allocations made on this test's thread).

mod common;
mod counting;

use common::*;
use counting::counted;
use tunfw::defrag::{fragment_count, refragment, DefragConfig, FragDrop, Outcome, Reassembler};
use tunfw::packet::{parse, ParseError};
use tunfw::side::Side;
use tunfw::time::Instant;

#[test]
fn fragments_become_a_datagram_the_parser_accepts() {
    let payload: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    for (dg, ident) in [
        (udp(CLIENT, SERVER, 5000, 53, &payload), 0),
        (udp(CLIENT6, SERVER6, 5000, 53, &payload), 0x0bad_cafe),
    ] {
        let pieces = fragments(&dg, 1500, ident);
        assert_eq!(pieces.len(), 3);
        let mut r = Reassembler::new(DefragConfig::default());
        let now = Instant::from_secs(1);
        let mut info = None;
        for p in pieces.iter().rev() {
            assert_eq!(parse(p).err(), Some(ParseError::Fragment));
            if let Outcome::Complete(i) = r.push(Side::Lan, p, now) {
                info = Some(i);
            }
        }
        let info = info.expect("complete");
        assert_eq!(r.datagram(), &dg[..]);
        let pkt = parse(r.datagram()).expect("a whole datagram");
        assert_eq!(pkt.ports(), Some((5000, 53)));
        // Forwarding: cut to the largest fragment's size, the sender's
        // fragments come out again.
        assert_eq!(info.max_fragment_size, pieces[0].len());
        assert_eq!(
            fragments(r.datagram(), info.max_fragment_size, info.ident),
            pieces
        );
        // An ICMP error quotes the first fragment.
        let mut quote = vec![0u8; info.first_len];
        assert_eq!(r.first_fragment(&mut quote), info.first_len);
        assert_eq!(quote, pieces[0]);
    }
}

#[test]
fn reassembly_does_not_allocate() {
    let payload: Vec<u8> = (0..6000u32).map(|i| (i * 7) as u8).collect();
    let v4 = udp(CLIENT, SERVER, 5000, 53, &payload);
    let v6 = udp(CLIENT6, SERVER6, 5000, 53, &payload);
    let p4 = fragments(&v4, 1500, 0);
    let p6 = fragments(&v6, 1280, 77);
    let mut overlap = p4[1].clone();
    overlap[7] -= 1; // one 8-byte unit earlier: into the first fragment
    let sum = tunfw::wire::checksum::internet_checksum(&[&{
        let mut h = overlap[..20].to_vec();
        h[10..12].fill(0);
        h
    }]);
    overlap[10..12].copy_from_slice(&sum.to_be_bytes());
    // A small memory so that eviction and refusal happen too.
    let mut small = Reassembler::new(DefragConfig {
        high_thresh: 8 << 10,
        low_thresh: 4 << 10,
        ..DefragConfig::default()
    });
    let mut r = Reassembler::new(DefragConfig::default());
    let mut out = vec![0u8; 65_536];
    let mut quote = [0u8; 576];
    let (done, allocations) = counted(|| {
        let now = Instant::from_secs(1);
        let mut done = 0;
        for round in 0..50 {
            for p in p4.iter().rev().chain(p6.iter()) {
                if let Outcome::Complete(info) = r.push(Side::Lan, p, now) {
                    done += 1;
                    r.datagram_mut()[8] -= 1;
                    r.first_fragment(&mut quote);
                    for i in 0..fragment_count(r.datagram(), info.max_fragment_size).unwrap_or(0) {
                        let _ = refragment(
                            r.datagram(),
                            info.max_fragment_size,
                            info.ident,
                            i,
                            &mut out,
                        );
                    }
                }
            }
            // A duplicate, an overlap, and queues left to expire or be evicted.
            r.push(Side::Wan, &p4[0], now);
            assert_eq!(
                r.push(Side::Wan, &p4[0], now),
                Outcome::Dropped(FragDrop::Duplicate)
            );
            assert_eq!(
                r.push(Side::Wan, &overlap, now),
                Outcome::Dropped(FragDrop::Overlap)
            );
            // Incomplete datagrams, each evicting the one before.
            let side = if round % 2 == 0 { Side::Lan } else { Side::Wan };
            for p in p4[..p4.len() - 1].iter().chain(&p6[..p6.len() - 1]) {
                small.push(side, p, now);
            }
            r.push(Side::Wan, &p6[1], now);
            r.tick(Instant::from_secs(100 + round));
            let _ = r.next_deadline(now);
            let _ = r.stats();
        }
        done
    });
    assert_eq!(done, 100);
    assert!(small.stats().evicted > 0, "{:?}", small.stats());
    assert_eq!(allocations, 0, "the reassembler allocated");
}

/// `pkt`, an IPv4 fragment, moved to byte `offset` with MF as `more`
/// (total length and header checksum fixed).
fn moved4(pkt: &[u8], offset: u16, more: bool) -> Vec<u8> {
    let mut p = pkt.to_vec();
    let word = (offset / 8) | if more { 0x2000 } else { 0 };
    p[6..8].copy_from_slice(&word.to_be_bytes());
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[10..12].fill(0);
    let sum = tunfw::wire::checksum::internet_checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The parity harness's `frag_udp_oversize_last_first`: Linux's
/// `ip_frag_queue` queues an IPv4 fragment ending past 65,535 like any
/// other (`ip_frag_reasm` finds the datagram oversize only when it is
/// complete). As the last fragment it fixes the datagram's length, so the
/// datagram's real last fragment contradicts it and discards the queue;
/// the fragments sent again then make the datagram. (IPv6 drops such a
/// fragment alone: `nf_ct_frag6_queue`'s "offset is too large".)
#[test]
fn an_ipv4_fragment_past_65535_is_queued_until_the_datagram_contradicts_it() {
    let payload: Vec<u8> = (0..2900u32).map(|i| i as u8).collect();
    let pieces = fragments(&udp(CLIENT, SERVER, 5000, 53, &payload), 1220, 0);
    assert_eq!(pieces.len(), 3);
    let now = Instant::from_secs(1);
    for more in [false, true] {
        let mut r = Reassembler::new(DefragConfig::default());
        let oversize = moved4(&pieces[1][..620], 65_000, more);
        assert_eq!(r.push(Side::Lan, &oversize, now), Outcome::Queued);
        assert_eq!(r.push(Side::Lan, &pieces[0], now), Outcome::Queued);
        assert_eq!(r.push(Side::Lan, &pieces[1], now), Outcome::Queued);
        // The last fragment ends before the length the oversize one set.
        assert_eq!(
            r.push(Side::Lan, &pieces[2], now),
            Outcome::Dropped(FragDrop::Corrupt)
        );
        assert_eq!(r.stats().queues, 0);
        for p in &pieces[..2] {
            assert_eq!(r.push(Side::Lan, p, now), Outcome::Queued);
        }
        assert!(matches!(
            r.push(Side::Lan, &pieces[2], now),
            Outcome::Complete(_)
        ));
    }
}

/// `dg`, an IPv6 packet without extension headers, as one fragment: data
/// bytes `[start, end)` after a fragment header (identification 9).
fn frag6(dg: &[u8], start: usize, end: usize, more: bool) -> Vec<u8> {
    let mut f = dg[..40].to_vec();
    f[6] = 44;
    f.extend_from_slice(&[dg[6], 0]);
    f.extend_from_slice(&((start as u16) | u16::from(more)).to_be_bytes());
    f.extend_from_slice(&9u32.to_be_bytes());
    f.extend_from_slice(&dg[40 + start..40 + end]);
    let payload = (f.len() - 40) as u16;
    f[4..6].copy_from_slice(&payload.to_be_bytes());
    f
}

/// The parity harness's `v6_frag_udp_atomic` and `randfrag6_777_427`:
/// `nf_ct_frag6_gather` queues an atomic fragment (offset 0, M clear)
/// like any other. Alone, it completes a datagram at once, which leaves
/// without the fragment header; with the identification of a queue that
/// holds other bytes, it overlaps them and the datagram is discarded.
#[test]
fn an_ipv6_atomic_fragment_is_queued_as_linux_queues_it() {
    let now = Instant::from_secs(1);
    let syn = tcp_segment(CLIENT6, SERVER6, 4000, 80, 1, 0, 0x02, &[]);
    let atomic = frag6(&syn, 0, 20, false);
    let mut r = Reassembler::new(DefragConfig::default());
    let Outcome::Complete(info) = r.push(Side::Lan, &atomic, now) else {
        panic!("an atomic fragment completes its datagram");
    };
    assert_eq!(r.datagram(), &syn[..], "the fragment header is gone");
    assert_eq!(info.forward_size(1500), Ok(syn.len()), "it leaves whole");
    // After the first 16 bytes were refused (RFC 8200 4.5: the TCP header
    // is cut) and the last 4 queued, the atomic fragment overlaps them.
    let mut r = Reassembler::new(DefragConfig::default());
    assert_eq!(
        r.push(Side::Lan, &frag6(&syn, 0, 16, true), now),
        Outcome::Dropped(FragDrop::Incomplete)
    );
    assert_eq!(
        r.push(Side::Lan, &frag6(&syn, 16, 20, false), now),
        Outcome::Queued
    );
    assert_eq!(
        r.push(Side::Lan, &atomic, now),
        Outcome::Dropped(FragDrop::Overlap)
    );
    assert_eq!(r.stats().queues, 0);
}
