//! Random fragment streams: the memory cap holds, whatever completes is
//! the datagram its fragments were cut from, and once everything expires
//! nothing is left held (no chunk or queue leaks).

use super::build::*;
use crate::defrag::{DefragConfig, Outcome, Reassembler};
use crate::side::Side;
use crate::time::Instant;

#[test]
fn random_streams_keep_the_invariants() {
    let mut rng = Rng(42);
    let cfg = DefragConfig {
        high_thresh: 64 << 10,
        low_thresh: 48 << 10,
        ..DefragConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    // 16 datagrams per family, fixed per key so that every accepted byte
    // is the original's.
    let v4: Vec<Vec<u8>> = (0..16)
        .map(|i| datagram4(20 + 4 * (i % 3), 17, 100 + 397 * i, i as u16, 0, i % 2 == 0))
        .collect();
    let v6: Vec<Vec<u8>> = (0..16)
        .map(|i| datagram6(&[], 17, 100 + 397 * i, i as u8))
        .collect();
    let mut completed = 0;
    let mut now = 0u64;
    for step in 0..200_000 {
        now += if rng.below(20_000) == 0 {
            45_000
        } else {
            rng.below(3) as u64
        };
        let family = rng.below(2);
        let k = rng.below(16);
        let dg = if family == 0 { &v4[k] } else { &v6[k] };
        let hlen = if family == 0 {
            usize::from(dg[0] & 15) * 4
        } else {
            40
        };
        let data = dg.len() - hlen;
        // Mostly the datagram's own cut (pieces of 8 * (k + 2) bytes, one
        // picked at random: repeats are duplicates), sometimes any cut.
        let (start, len) = if rng.below(10) == 0 {
            (8 * rng.below(data / 8 + 1), rng.below(data + 1))
        } else {
            let piece = 8 * (k + 2) * 8;
            (piece * rng.below(data.div_ceil(piece)), piece)
        };
        let more = start + len < data;
        let f = if family == 0 {
            frag4(dg, start, len, more)
        } else {
            frag6(dg, 40, 6, start, len, more, k as u32)
        };
        let side = if rng.below(8) == 0 {
            Side::Wan
        } else {
            Side::Lan
        };
        match r.push(side, &f, Instant::from_millis(now)) {
            Outcome::Complete(info) => {
                assert_eq!(r.datagram(), &dg[..], "step {step}");
                assert_eq!(info.len, dg.len());
                completed += 1;
            }
            Outcome::NotFragment => assert!(start == 0 && !more, "step {step}"),
            _ => {}
        }
        let s = r.stats();
        assert!(
            s.memory <= cfg.high_thresh,
            "step {step}: {} bytes",
            s.memory
        );
        if rng.below(1000) == 0 {
            r.tick(Instant::from_millis(now));
        }
    }
    let s = r.stats();
    // Memory-bound: 64 KiB hold about 46 queue records (1,144 bytes each)
    // with a chunk each, so evictions cut many datagrams short.
    assert!(completed > 900, "{completed} completed");
    assert!(s.evicted > 0 && s.timed_out > 0, "{s:?}");
    r.tick(Instant::from_secs(1 << 30));
    let s = r.stats();
    assert_eq!((s.queues, s.memory), (0, 0), "nothing left held: {s:?}");
}
