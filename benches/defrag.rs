//! Benchmarks of the reassembler and the refragmenter: a datagram of 3
//! fragments and one of 45 (a 64 KiB UDP datagram at MTU 1500)
//! reassembled, IPv4 and IPv6; and the same datagrams cut again at
//! 1,500 bytes (every piece written once).
//!
//! Run: `cargo bench --bench defrag`. Results vary between machines and
//! runs; compare figures from the same run.

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use tunfw::defrag::{fragment_count, refragment, DefragConfig, Outcome, Reassembler};
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::checksum::internet_checksum;

/// A UDP datagram of `len` bytes in all (checksum 0: not verified here).
fn datagram(v6: bool, len: usize) -> Vec<u8> {
    let hlen = if v6 { 40 } else { 20 };
    let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
    p[..hlen].fill(0);
    if v6 {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8] = 0xfd;
        p[24] = 0xfd;
        p[39] = 1;
    } else {
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 0, 1, 2]);
        p[16..20].copy_from_slice(&[10, 0, 2, 2]);
        let c = internet_checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p[hlen + 4..hlen + 6].copy_from_slice(&((len - hlen) as u16).to_be_bytes());
    p[hlen + 6..hlen + 8].fill(0);
    p
}

fn pieces(dg: &[u8], size: usize) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; 65_536];
    (0..fragment_count(dg, size).expect("count"))
        .map(|i| {
            let n = refragment(dg, size, 7, i, &mut out).expect("piece");
            out[..n].to_vec()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("defrag");
    let now = Instant::from_secs(1);
    let cases = [
        ("v4", false, 4000usize),
        ("v4", false, 65_535),
        ("v6", true, 4000),
        ("v6", true, 65_535),
    ];
    let mut r = Reassembler::new(DefragConfig::default());
    let mut out = vec![0u8; 65_536];
    for (family, v6, len) in cases {
        let dg = datagram(v6, len);
        let frags = pieces(&dg, 1500);
        let n = frags.len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("reassemble_{family}"), format!("{n}_fragments")),
            &n,
            |b, _| {
                b.iter(|| {
                    let mut last = Outcome::Queued;
                    for f in &frags {
                        last = r.push(Side::Lan, black_box(f), now);
                    }
                    assert!(matches!(last, Outcome::Complete(_)));
                    black_box(r.datagram().len())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new(format!("refragment_{family}"), format!("{n}_fragments")),
            &n,
            |b, _| {
                b.iter(|| {
                    let count = fragment_count(black_box(&dg), 1500).unwrap_or(0);
                    let mut total = 0;
                    for i in 0..count {
                        total += refragment(&dg, 1500, 7, i, &mut out).unwrap_or(0);
                    }
                    black_box(total)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
