//! Refragmentation: cut, check every piece, reassemble in a random
//! order, compare with the original.

use super::build::*;
use crate::defrag::{fragment_count, refragment, DefragConfig, Outcome, Reassembler, RefragError};
use crate::side::Side;
use crate::time::Instant;
use crate::wire::ipv4::Header;

/// Router Alert (copied) and Record Route (not copied) in a header of at
/// least 32 bytes; the rest End of Options.
fn with_options(dg: &mut [u8]) {
    let hlen = usize::from(dg[0] & 15) * 4;
    if hlen >= 32 {
        dg[20..24].copy_from_slice(&[0x94, 4, 0, 0]);
        dg[24..31].copy_from_slice(&[7, 7, 4, 0, 0, 0, 0]);
        dg[31] = 1;
        crate::defrag::v4::set_checksum(&mut dg[..hlen]);
    }
}

fn reassemble(pieces: &mut [Vec<u8>], rng: &mut Rng) -> Option<Vec<u8>> {
    for i in (1..pieces.len()).rev() {
        pieces.swap(i, rng.below(i + 1));
    }
    let mut r = Reassembler::new(DefragConfig::default());
    let now = Instant::from_secs(1);
    for (k, p) in pieces.iter().enumerate() {
        match r.push(Side::Lan, p, now) {
            Outcome::Complete(_) if k + 1 == pieces.len() => return Some(r.datagram().to_vec()),
            Outcome::NotFragment if pieces.len() == 1 => return Some(p.clone()),
            Outcome::Queued if k + 1 < pieces.len() => {}
            o => panic!("piece {k} of {}: {o:?}", pieces.len()),
        }
    }
    None
}

#[test]
fn ipv4_cut_then_reassembled_is_the_original() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = vec![0u8; 65_536];
    for case in 0..300u16 {
        let hlen = 20 + 4 * rng.below(11);
        let payload = rng.below(if case % 4 == 0 {
            65_535 - hlen - 8
        } else {
            6000
        });
        let df = rng.below(2) == 0;
        let mut dg = datagram4(hlen, 17, payload, case, 0, df);
        with_options(&mut dg);
        let max_size = hlen + 8 + rng.below(9000);
        let n = fragment_count(&dg, max_size).expect("count");
        let mut pieces = vec![];
        let mut next_offset = 0;
        for i in 0..n {
            let len = refragment(&dg, max_size, 0, i, &mut out).expect("piece");
            let p = out[..len].to_vec();
            assert!(
                len <= max_size || (n == 1 && len == dg.len()),
                "case {case}: {len} > {max_size}"
            );
            assert!(header_ok(&p), "case {case} piece {i}: header");
            let h = Header::check_packet(&p).expect("header");
            assert_eq!(h.header_len, hlen);
            assert_eq!(
                usize::from(h.fragment_offset) * 8,
                next_offset,
                "case {case} piece {i}"
            );
            assert_eq!(h.more_fragments, i + 1 < n);
            assert_eq!(p[6] & 0x40 != 0, df, "DF as the datagram has it");
            assert_eq!(p[4..6], dg[4..6], "the same id");
            if i + 1 < n {
                assert_eq!((len - hlen) % 8, 0);
            }
            if i > 0 && hlen >= 32 {
                assert_eq!(
                    &p[20..32],
                    &[0x94, 4, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
                    "RR gone"
                );
            }
            next_offset += len - hlen;
            pieces.push(p);
        }
        assert_eq!(next_offset, dg.len() - hlen);
        assert_eq!(
            refragment(&dg, max_size, 0, n, &mut out),
            Err(RefragError::NoSuchPiece)
        );
        if n <= 64 {
            assert_eq!(
                reassemble(&mut pieces, &mut rng).as_deref(),
                Some(&dg[..]),
                "case {case}"
            );
        }
    }
}

/// Extension-header chains, each with the length of its unfragmentable
/// part as `ip6_find_1stfragopt` finds it.
const CHAINS: &[(&[(u8, usize)], usize)] = &[
    (&[], 40),
    (&[(0, 8)], 48),
    (&[(0, 8), (43, 24)], 72),
    (&[(60, 16)], 56),
    (&[(0, 8), (60, 8), (43, 16), (60, 16)], 72),
    (&[(43, 8), (60, 8)], 48),
];

#[test]
fn ipv6_cut_then_reassembled_is_the_original() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut out = vec![0u8; 65_536];
    for case in 0..300usize {
        let (chain, unfrag) = CHAINS[case % CHAINS.len()];
        let ext: usize = chain.iter().map(|c| c.1).sum();
        let payload = rng.below(if case % 4 == 0 {
            65_535 - ext - 8
        } else {
            6000
        });
        let dg = datagram6(chain, 17, payload, case as u8);
        let max_size = unfrag + 8 + 64 + rng.below(9000);
        let ident = rng.next() as u32;
        let n = fragment_count(&dg, max_size).expect("count");
        let mut pieces = vec![];
        let mut next_offset = 0;
        for i in 0..n {
            let len = refragment(&dg, max_size, ident, i, &mut out).expect("piece");
            let p = out[..len].to_vec();
            if n == 1 && dg.len() <= max_size {
                assert_eq!(p, dg, "a datagram that fits is one piece, unchanged");
                pieces.push(p);
                continue;
            }
            assert!(len <= max_size, "case {case}");
            assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), len - 40);
            let fh = &p[unfrag..unfrag + 8];
            let word = u16::from_be_bytes([fh[2], fh[3]]);
            assert_eq!(usize::from(word & !7), next_offset, "case {case} piece {i}");
            assert_eq!(word & 1 == 1, i + 1 < n);
            assert_eq!(u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]), ident);
            next_offset += len - unfrag - 8;
            pieces.push(p);
        }
        assert!(n == 1 || next_offset == dg.len() - unfrag);
        if n <= 64 {
            assert_eq!(
                reassemble(&mut pieces, &mut rng).as_deref(),
                Some(&dg[..]),
                "case {case}"
            );
        }
    }
}

#[test]
fn pieces_as_linux_cuts_them() {
    let mut out = vec![0u8; 9000];
    let dg = datagram4(20, 17, 3972, 1, 0, false); // 3980 data bytes
    let lens = |max: usize, out: &mut [u8]| -> Vec<usize> {
        let n = fragment_count(&dg, max).unwrap();
        (0..n)
            .map(|i| refragment(&dg, max, 0, i, out).unwrap())
            .collect()
    };
    assert_eq!(lens(1500, &mut out), vec![1500, 1500, 1040]);
    // The last piece may take up to the whole room, not rounded.
    let dg2 = datagram4(20, 17, 2953, 1, 0, false); // 2961 data bytes
    let n = fragment_count(&dg2, 1501).unwrap();
    let l: Vec<usize> = (0..n)
        .map(|i| refragment(&dg2, 1501, 0, i, &mut out).unwrap())
        .collect();
    assert_eq!(l, vec![1500, 1501]);
    // A datagram that fits is one piece equal to it (DF kept).
    let df = datagram4(20, 17, 100, 1, 0, true);
    assert_eq!(fragment_count(&df, 1500), Ok(1));
    let len = refragment(&df, 1500, 0, 0, &mut out).unwrap();
    assert_eq!(&out[..len], &df[..]);
    // Errors.
    assert_eq!(fragment_count(&dg, 27), Err(RefragError::TooSmall));
    assert_eq!(fragment_count(&dg, 28), Ok(498));
    assert_eq!(fragment_count(&[0x45, 0], 1500), Err(RefragError::NotIp));
    assert_eq!(
        refragment(&dg, 1500, 0, 0, &mut out[..100]),
        Err(RefragError::OutTooSmall)
    );
    let v6 = datagram6(&[], 17, 3000, 1);
    // 40 + 8 + 8 data bytes at least.
    assert_eq!(fragment_count(&v6, 55), Err(RefragError::TooSmall));
    assert_eq!(fragment_count(&v6, 56), Ok(376));
    assert_eq!(fragment_count(&v6, 64), Ok(188));
    assert_eq!(fragment_count(&v6, 1280), Ok(3));
}
