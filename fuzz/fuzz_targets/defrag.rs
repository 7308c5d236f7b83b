//! Fuzz the reassembler with fragment sequences: fragments cut (at any
//! offset and length, aligned or not, with either MF) from eight
//! datagrams of both families, with header bytes mutated, from either
//! side, at advancing times, mixed with arbitrary packets and ticks.
//! Must never panic; memory stays under the cap; a completed datagram
//! has consistent lengths, cut again it reassembles to itself; after
//! everything expires nothing is held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunfw::defrag::{fragment_count, refragment, DefragConfig, FragDrop, Outcome, Reassembler};
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::checksum::internet_checksum;

fn set_checksum(h: &mut [u8]) {
    h[10..12].fill(0);
    let c = internet_checksum(&[h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// A whole datagram: IPv4 with a header of `hlen` bytes, or IPv6 with
/// `ext` 8-byte hop-by-hop / destination options headers; `len` bytes
/// of payload (protocol 17, bytes from `seed`).
fn datagram(v6: bool, hlen: usize, ext: usize, len: usize, seed: u8) -> Vec<u8> {
    let body = (0..len).map(|i| (i as u8).wrapping_mul(13) ^ seed);
    if !v6 {
        let mut p = vec![0u8; hlen];
        p[0] = 0x40 | (hlen / 4) as u8;
        p[1] = seed & 3;
        p[2..4].copy_from_slice(&((hlen + len) as u16).to_be_bytes());
        p[4] = seed;
        p[6] = if seed & 4 != 0 { 0x40 } else { 0 };
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 0, seed & 1]);
        p[16..20].copy_from_slice(&[10, 0, 1, 1]);
        set_checksum(&mut p);
        p.extend(body);
        return p;
    }
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[7] = 64;
    p[8] = 0x20;
    p[23] = seed & 1;
    p[24] = 0x20;
    p[39] = 2;
    let mut next_at = 6;
    for k in 0..ext {
        p[next_at] = if k == 0 { 0 } else { 60 };
        next_at = p.len();
        p.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]);
    }
    p[next_at] = 17;
    p.extend(body);
    let pl = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&pl.to_be_bytes());
    p
}

/// A fragment of `dg` with data `[start, start + len)` (clamped), MF as
/// `more`; IPv6 with the fragment header after the fixed header.
fn fragment(dg: &[u8], start: usize, len: usize, more: bool, id: u32) -> Vec<u8> {
    let v6 = dg[0] >> 4 == 6;
    let hlen = if v6 { 40 } else { usize::from(dg[0] & 15) * 4 };
    let data = &dg[hlen..];
    let s = start.min(data.len());
    let e = (start + len).min(data.len());
    let mut f = dg[..hlen].to_vec();
    if v6 {
        f[6] = 44;
        f.extend_from_slice(&[dg[6], 0]);
        f.extend_from_slice(&((start as u16 & !7) | u16::from(more)).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&data[s..e]);
        let pl = (f.len() - 40) as u16;
        f[4..6].copy_from_slice(&pl.to_be_bytes());
    } else {
        let word = (start / 8) as u16 & 0x1fff
            | u16::from(dg[6] & 0x40) << 8
            | if more { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&word.to_be_bytes());
        f.extend_from_slice(&data[s..e]);
        let tl = f.len() as u16;
        f[2..4].copy_from_slice(&tl.to_be_bytes());
        set_checksum(&mut f[..hlen]);
    }
    f
}

/// Cut `dg` at `size` and reassemble the pieces in reverse: `dg` again.
fn round_trip(dg: &[u8], size: usize, ident: u32) {
    let Ok(n) = fragment_count(dg, size) else {
        return;
    };
    if n > 64 {
        return;
    }
    // Room for one datagram of 64 pieces (a smaller arena keeps runs fast).
    let mut r = Reassembler::new(DefragConfig {
        high_thresh: 192 << 10,
        low_thresh: 192 << 10,
        ..DefragConfig::default()
    });
    let mut out = vec![0u8; 65_600];
    let now = Instant::from_secs(1);
    for i in (0..n).rev() {
        let len = refragment(dg, size, ident, i, &mut out).expect("a counted piece");
        assert!(len <= size.max(dg.len()), "piece {len} > {size}");
        if n == 1 {
            // One piece is the datagram as it is (as Linux forwards a
            // reassembled datagram that fits). When its payload begins with
            // a fragment header of its own (a nested one), it is that
            // fragment: the reassembler may queue, drop or complete it.
            r.push(Side::Lan, &out[..len], now);
            return;
        }
        match r.push(Side::Lan, &out[..len], now) {
            Outcome::Complete(info) => {
                assert_eq!(i, 0);
                assert_eq!(r.datagram(), &dg[..info.len.min(dg.len())]);
            }
            Outcome::Queued => assert!(i > 0),
            Outcome::Dropped(FragDrop::Incomplete) => return, // IPv6: a first piece too small
            o => panic!("piece {i} of {n}: {o:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let cfg = DefragConfig {
        high_thresh: 32 << 10,
        low_thresh: 24 << 10,
        ..DefragConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    let Some((head, mut rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let dgs: Vec<Vec<u8>> = head
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let v6 = i >= 4;
            let len = 8 + usize::from(b) * 37;
            datagram(
                v6,
                20 + 4 * usize::from(b % 11),
                usize::from(b % 3),
                len,
                i as u8,
            )
        })
        .collect();
    let mut now = 0u64;
    while let Some((op, tail)) = rest.split_first_chunk::<8>() {
        rest = tail;
        now += u64::from(op[7] & 0x0f) * if op[7] & 0x10 != 0 { 5000 } else { 3 };
        let t = Instant::from_millis(now);
        let side = if op[0] & 0x40 != 0 {
            Side::Wan
        } else {
            Side::Lan
        };
        let outcome = match op[0] & 7 {
            6 => {
                let n = usize::from(op[1]).min(rest.len());
                let (pkt, tail) = rest.split_at(n);
                rest = tail;
                r.push(side, pkt, t)
            }
            7 => {
                r.tick(t);
                assert!(r.next_deadline(t) >= t);
                continue;
            }
            k => {
                let dg = &dgs[usize::from(op[0] >> 3 & 7)];
                let hlen = if dg[0] >> 4 == 6 {
                    40
                } else {
                    usize::from(dg[0] & 15) * 4
                };
                let data_len = dg.len() - hlen;
                let mut start = usize::from(u16::from_be_bytes([op[1], op[2]])) % (data_len + 16);
                let mut len = usize::from(u16::from_be_bytes([op[3], op[4]])) % (data_len + 16);
                if k < 4 {
                    start &= !7;
                    len = (len & !7).max(8);
                }
                let more = op[5] & 1 != 0 || (k < 3 && start + len < data_len);
                let mut f = fragment(dg, start, len, more, u32::from(op[0] >> 3 & 7));
                if op[5] & 2 != 0 {
                    let at = usize::from(op[6]) % f.len();
                    f[at] ^= op[5] >> 2;
                }
                r.push(side, &f, t)
            }
        };
        let s = r.stats();
        assert!(s.memory <= cfg.high_thresh);
        if let Outcome::Complete(info) = outcome {
            let dg = r.datagram().to_vec();
            assert_eq!(dg.len(), info.len);
            assert!(info.first_len <= info.len + 8 && info.fragments >= 1);
            let mut quote = [0u8; 1280];
            assert!(r.first_fragment(&mut quote) <= info.first_len);
            if dg[0] >> 4 == 4 {
                assert_eq!(usize::from(u16::from_be_bytes([dg[2], dg[3]])), info.len);
                let hlen = usize::from(dg[0] & 15) * 4;
                assert_eq!(internet_checksum(&[&dg[..hlen]]), 0);
            } else {
                assert_eq!(
                    usize::from(u16::from_be_bytes([dg[4], dg[5]])) + 40,
                    info.len
                );
            }
            round_trip(
                &dg,
                info.max_fragment_size.max(68 + usize::from(op[6])),
                info.ident,
            );
        }
    }
    r.tick(Instant::NEVER);
    let s = r.stats();
    assert_eq!((s.queues, s.memory), (0, 0), "{s:?}");
});
