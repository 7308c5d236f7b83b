//! Limits and facts: time, the fragment cap, oversize datagrams, memory
//! (refusal, eviction, recovery), ECN and DF, and what the reassembled
//! datagram reports about its fragments.

use super::build::*;
use crate::defrag::pool::CHUNK;
use crate::defrag::reassembler::QUEUE_COST;
use crate::defrag::{DefragConfig, FragDrop, Outcome, Reassembler};
use crate::side::Side;
use crate::time::Instant;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn a_queue_missing_its_last_fragment_times_out() {
    let mut r = Reassembler::new(DefragConfig::default());
    let a = datagram4(20, 17, 56, 1, 0, false);
    let c = datagram6(&[], 17, 56, 3);
    assert_eq!(r.next_deadline(t(0)), Instant::NEVER);
    assert_eq!(
        r.push(Side::Lan, &frag4(&a, 0, 24, true), t(1000)),
        Outcome::Queued
    );
    assert_eq!(
        r.push(Side::Lan, &frag6(&c, 40, 6, 0, 24, true, 5), t(2000)),
        Outcome::Queued
    );
    assert_eq!(r.next_deadline(t(5000)), t(31_000));
    assert_eq!(r.next_deadline(t(40_000)), t(40_000), "overdue: now");
    r.tick(t(30_999));
    assert_eq!(r.stats().queues, 2);
    r.tick(t(31_000));
    assert_eq!((r.stats().queues, r.stats().timed_out), (1, 1));
    assert_eq!(r.next_deadline(t(31_000)), t(62_000));
    // A late fragment starts a new queue: the old bytes are gone.
    assert_eq!(
        r.push(Side::Lan, &frag4(&a, 24, 40, false), t(31_001)),
        Outcome::Queued
    );
    // Without a tick, a push expires what is due (the IPv6 queue, and the
    // new IPv4 one due at 61 s) and the fragment starts anew.
    let late = frag6(&c, 40, 6, 24, 40, false, 5);
    assert_eq!(r.push(Side::Lan, &late, t(62_000)), Outcome::Queued);
    assert_eq!((r.stats().timed_out, r.stats().queues), (3, 1));
    // The lifetime is never extended by a fragment.
    let mut r = Reassembler::new(DefragConfig::default());
    r.push(Side::Lan, &frag4(&a, 0, 8, true), t(0));
    r.push(Side::Lan, &frag4(&a, 8, 8, true), t(29_000));
    r.tick(t(30_000));
    assert_eq!(r.stats().timed_out, 1);
}

#[test]
fn sixty_five_fragments_are_too_many() {
    let mut r = Reassembler::new(DefragConfig::default());
    let dg = datagram4(20, 17, 65 * 8, 1, 0, false); // 66 eight-byte pieces
    for i in 0..64 {
        assert_eq!(
            r.push(Side::Lan, &frag4(&dg, i * 8, 8, true), t(0)),
            Outcome::Queued,
            "{i}"
        );
    }
    // A duplicate is still a duplicate; the 65th discards the datagram.
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 0, 8, true), t(0)),
        Outcome::Dropped(FragDrop::Duplicate)
    );
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 512, 16, false), t(0)),
        Outcome::Dropped(FragDrop::TooMany)
    );
    assert_eq!((r.stats().queues, r.stats().memory), (0, 0));
    // A smaller cap by configuration.
    let mut r = Reassembler::new(DefragConfig {
        max_fragments: 2,
        ..DefragConfig::default()
    });
    r.push(Side::Lan, &frag4(&dg, 0, 8, true), t(0));
    r.push(Side::Lan, &frag4(&dg, 8, 8, true), t(0));
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 16, 8, true), t(0)),
        Outcome::Dropped(FragDrop::TooMany)
    );
}

#[test]
fn oversize_datagrams() {
    let mut r = Reassembler::new(DefragConfig::default());
    let dg = datagram4(20, 17, 1472, 1, 0, false);
    // IPv4: a fragment ending past 65,535 is queued (ip_frag_queue has no
    // limit); as the last fragment it sets the datagram's length, so the
    // real last fragment contradicts it and discards the datagram.
    let mut far = frag4(&dg, 0, 64, false);
    far[6..8].copy_from_slice(&(65_512u16 / 8).to_be_bytes());
    crate::defrag::v4::set_checksum(&mut far[..20]);
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 0, 64, true), t(0)),
        Outcome::Queued
    );
    assert_eq!(r.push(Side::Lan, &far, t(0)), Outcome::Queued);
    assert_eq!(r.stats().queues, 1);
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 64, 1416, false), t(0)),
        Outcome::Dropped(FragDrop::Corrupt)
    );
    assert_eq!(r.stats().queues, 0);
    // IPv6: one ending past 65,535 is dropped alone.
    let c = datagram6(&[], 17, 1472, 3);
    let mut far = frag6(&c, 40, 6, 0, 16, false, 7);
    far[42..44].copy_from_slice(&65_528u16.to_be_bytes());
    assert_eq!(
        r.push(Side::Lan, &frag6(&c, 40, 6, 0, 64, true, 7), t(0)),
        Outcome::Queued
    );
    assert_eq!(
        r.push(Side::Lan, &far, t(0)),
        Outcome::Dropped(FragDrop::Oversize)
    );
    assert_eq!(r.stats().queues, 1);
    // IPv4 at completion: a 60-byte first header and 65,500 data bytes.
    let mut r = Reassembler::new(DefragConfig::default());
    let big = datagram4(20, 17, 65_492, 9, 0, false);
    let opts = datagram4(60, 17, 1472, 9, 0, false);
    let mut last = Outcome::Queued;
    for k in 0..45 {
        let start = k * 1480;
        let f = if k == 0 {
            frag4(&opts, 0, 1480, true)
        } else {
            frag4(&big, start, 1480, k < 44)
        };
        last = r.push(Side::Lan, &f, t(0));
    }
    assert_eq!(last, Outcome::Dropped(FragDrop::Oversize));
    assert_eq!(r.stats().queues, 0);
}

/// A configuration whose memory holds one queue and `chunks` chunks.
fn tiny(chunks: usize) -> DefragConfig {
    let high = QUEUE_COST + chunks * CHUNK;
    DefragConfig {
        high_thresh: high,
        low_thresh: high,
        ..DefragConfig::default()
    }
}

#[test]
fn memory_is_refused_then_recovers_after_expiry() {
    let mut r = Reassembler::new(tiny(12));
    let dg = datagram4(20, 17, 8000, 1, 0, false);
    // 1024-byte fragments take 4 chunks each (the first 5, with its header).
    let mut queued = 0;
    let mut refused = 0;
    for k in 0..6 {
        match r.push(Side::Lan, &frag4(&dg, k * 1024, 1024, true), t(0)) {
            Outcome::Queued => queued += 1,
            Outcome::Dropped(FragDrop::NoMemory) => refused += 1,
            o => panic!("{o:?}"),
        }
        assert!(r.stats().memory <= r.config().high_thresh);
    }
    assert_eq!((queued, refused), (2, 4));
    assert_eq!(r.stats().dropped(FragDrop::NoMemory), 4);
    assert_eq!(r.stats().memory_high_water, QUEUE_COST + 9 * CHUNK);
    // Nothing else to evict: its own queue holds the memory until it expires.
    r.tick(t(30_000));
    assert_eq!(r.stats().memory, 0);
    let small = datagram4(20, 17, 100, 2, 0, false);
    assert_eq!(
        r.push(Side::Lan, &frag4(&small, 0, 64, true), t(30_001)),
        Outcome::Queued
    );
    assert!(matches!(
        r.push(Side::Lan, &frag4(&small, 64, 44, false), t(30_001)),
        Outcome::Complete(_)
    ));
}

#[test]
fn the_oldest_queues_are_evicted_for_a_newcomer() {
    // Room for three small queues.
    let high = 3 * (QUEUE_COST + CHUNK);
    let cfg = DefragConfig {
        high_thresh: high,
        low_thresh: QUEUE_COST + CHUNK,
        ..DefragConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    let dgs: Vec<Vec<u8>> = (0..5).map(|i| datagram4(20, 17, 56, i, 0, false)).collect();
    for (i, dg) in dgs.iter().take(3).enumerate() {
        assert_eq!(
            r.push(Side::Lan, &frag4(dg, 0, 24, true), t(i as u64)),
            Outcome::Queued
        );
    }
    // The fourth evicts down to the low threshold: the two oldest go.
    assert_eq!(
        r.push(Side::Lan, &frag4(&dgs[3], 0, 24, true), t(10)),
        Outcome::Queued
    );
    assert_eq!((r.stats().evicted, r.stats().queues), (2, 2));
    // The youngest survivors still complete.
    assert!(matches!(
        r.push(Side::Lan, &frag4(&dgs[2], 24, 40, false), t(11)),
        Outcome::Complete(_)
    ));
    assert!(matches!(
        r.push(Side::Lan, &frag4(&dgs[3], 24, 40, false), t(11)),
        Outcome::Complete(_)
    ));
    // A queue adding to itself is never its own victim.
    let mut r = Reassembler::new(tiny(3));
    let dg = datagram4(20, 17, 2000, 9, 0, false);
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 0, 256, true), t(0)),
        Outcome::Queued
    );
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 256, 256, true), t(0)),
        Outcome::Queued
    );
    assert_eq!(
        r.push(Side::Lan, &frag4(&dg, 512, 256, true), t(0)),
        Outcome::Dropped(FragDrop::NoMemory)
    );
    assert_eq!(r.stats().evicted, 0);
}

#[test]
fn ecn_is_merged_or_refused() {
    let mut r = Reassembler::new(DefragConfig::default());
    let dg = datagram4(20, 17, 56, 1, 0x02, false); // ECT(0)
    let mut ce = frag4(&dg, 24, 40, false);
    set_tos(&mut ce, 0x03); // CE
    r.push(Side::Lan, &frag4(&dg, 0, 24, true), t(0));
    assert!(matches!(r.push(Side::Lan, &ce, t(0)), Outcome::Complete(_)));
    assert_eq!(r.datagram()[1], 0x03, "CE carried over");
    assert!(header_ok(r.datagram()));
    let mut not_ect = frag4(&dg, 24, 40, false);
    set_tos(&mut not_ect, 0x00);
    r.push(Side::Lan, &frag4(&dg, 0, 24, true), t(0));
    assert_eq!(
        r.push(Side::Lan, &not_ect, t(0)),
        Outcome::Dropped(FragDrop::Ecn)
    );
    assert_eq!(r.stats().queues, 0);
    // IPv6: the traffic class's ECN bits.
    let c = datagram6(&[], 17, 56, 3);
    let mut first = frag6(&c, 40, 6, 0, 24, true, 1);
    let mut rest = frag6(&c, 40, 6, 24, 40, false, 1);
    first[1] |= 0x20; // ECT(0)
    rest[1] |= 0x30; // CE
    r.push(Side::Lan, &first, t(0));
    assert!(matches!(
        r.push(Side::Lan, &rest, t(0)),
        Outcome::Complete(_)
    ));
    assert_eq!(r.datagram()[1] & 0x30, 0x30);
}

#[test]
fn df_is_set_when_the_largest_fragment_had_it() {
    let dg = datagram4(20, 17, 1000, 1, 0, true);
    let cases = [
        // (DF on the big first fragment, DF on the small last one, want DF)
        (true, true, true),
        (true, false, true),
        (false, true, false),
        (false, false, false),
    ];
    for (big, small, want) in cases {
        let mut r = Reassembler::new(DefragConfig::default());
        let mut a = frag4(&dg, 0, 800, true);
        let mut b = frag4(&dg, 800, 208, false);
        set_df(&mut a, big);
        set_df(&mut b, small);
        r.push(Side::Lan, &a, t(0));
        let Outcome::Complete(info) = r.push(Side::Lan, &b, t(0)) else {
            panic!("complete");
        };
        let word = u16::from_be_bytes([r.datagram()[6], r.datagram()[7]]);
        assert_eq!(word, if want { 0x4000 } else { 0 }, "{big} {small}");
        assert!(header_ok(r.datagram()));
        assert_eq!(info.max_fragment_size, 820);
    }
}

#[test]
fn the_first_fragment_is_rebuilt_for_icmp_errors() {
    let mut r = Reassembler::new(DefragConfig::default());
    let dg = datagram4(24, 17, 200, 1, 0x02, false);
    let first = frag4(&dg, 0, 96, true);
    r.push(Side::Lan, &frag4(&dg, 96, 112, false), t(0));
    let Outcome::Complete(info) = r.push(Side::Lan, &first, t(0)) else {
        panic!("complete");
    };
    assert_eq!(
        (info.first_len, info.max_fragment_size, info.ident),
        (120, 136, 1)
    );
    let mut out = [0u8; 200];
    assert_eq!(r.first_fragment(&mut out), 120);
    assert_eq!(&out[..120], &first[..]);
    // A prefix for a short quote; the caller's TTL change shows.
    r.datagram_mut()[8] = 63;
    let mut quote = [0u8; 32];
    assert_eq!(r.first_fragment(&mut quote), 32);
    assert_eq!(quote[8], 63);
    assert!(header_ok(&{
        let mut h = first.clone();
        h[..24].copy_from_slice(&quote[..24]);
        h
    }));
    // IPv6, behind a hop-by-hop header.
    let c = datagram6(&[(0, 8)], 17, 100, 4);
    let f1 = frag6(&c, 48, 40, 0, 48, true, 0xdead_beef);
    let f2 = frag6(&c, 48, 40, 48, 60, false, 0xdead_beef);
    r.push(Side::Lan, &f1, t(0));
    let Outcome::Complete(info) = r.push(Side::Lan, &f2, t(0)) else {
        panic!("complete");
    };
    assert_eq!(r.datagram(), &c[..]);
    assert_eq!(
        (info.first_len, info.max_fragment_size, info.ident),
        (104, 116, 0xdead_beef)
    );
    let mut out = [0u8; 200];
    assert_eq!(r.first_fragment(&mut out), 104);
    assert_eq!(&out[..104], &f1[..]);
    // Nothing completed: nothing to rebuild.
    r.push(Side::Lan, &f1, t(0));
    assert_eq!((r.first_fragment(&mut out), r.datagram().len()), (0, 0));
}

#[test]
fn forwarding_sizes_as_linux_decides_them() {
    use crate::defrag::{Boundaries, Family, Reassembled};
    let dg = |family, len, max, df| Reassembled {
        boundaries: Boundaries::NONE,
        family,
        len,
        max_fragment_size: max,
        first_len: max,
        fragments: 3,
        ident: 0,
        dont_fragment: df,
    };
    // IPv4: always cut, at the smaller size; DF forbids cutting smaller.
    assert_eq!(
        dg(Family::V4, 4000, 1500, false).forward_size(9000),
        Ok(1500)
    );
    assert_eq!(
        dg(Family::V4, 4000, 1500, false).forward_size(1400),
        Ok(1400)
    );
    assert_eq!(
        dg(Family::V4, 4000, 1500, true).forward_size(1500),
        Ok(1500)
    );
    assert_eq!(
        dg(Family::V4, 4000, 1500, true).forward_size(1400),
        Err(1400)
    );
    // IPv6: too big is an error; whole when no longer than the largest
    // fragment; else cut at it, never below 1,280.
    assert_eq!(
        dg(Family::V6, 4000, 1500, false).forward_size(1400),
        Err(1400)
    );
    assert_eq!(
        dg(Family::V6, 4000, 1500, false).forward_size(9000),
        Ok(1500)
    );
    assert_eq!(
        dg(Family::V6, 1200, 600, false).forward_size(1500),
        Ok(1280)
    );
    assert_eq!(
        dg(Family::V6, 1200, 1200, false).forward_size(1500),
        Ok(1200)
    );
    // The reassembler reports DF as it set it.
    let mut r = Reassembler::new(DefragConfig::default());
    let d = datagram4(20, 17, 1000, 1, 0, true);
    r.push(Side::Lan, &frag4(&d, 0, 800, true), t(0));
    let Outcome::Complete(info) = r.push(Side::Lan, &frag4(&d, 800, 208, false), t(0)) else {
        panic!("complete");
    };
    assert!(info.dont_fragment);
    assert_eq!(info.forward_size(576), Err(576));
}
