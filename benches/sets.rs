//! What a named-set lookup costs: an address set of 100,000 host
//! addresses (and, for comparison in the same run, one of 10), hits and
//! misses, IPv4; and the same set with 8 prefix lengths in use (each
//! costs one more hash probe). Alternating rounds, medians printed.
//!
//! Run: `cargo bench --bench sets`. Compare figures from the same run only.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as Clock;

use tunfw::sets::{SetDefinition, SetKind, Sets};
use tunfw::time::Instant;

const LOOKUPS: u32 = 1_000_000;
const ROUNDS: usize = 11;

fn sets_of(n: u32, lengths: u8) -> Sets {
    let def = SetDefinition {
        name: "s".into(),
        kind: SetKind::Address,
        max: n as usize + 16,
        elements: Vec::new(),
    };
    let mut sets = Sets::new(&[def], Instant::ZERO);
    let set = sets.get_mut("s").unwrap();
    for i in 0..n {
        let len = 32 - (i % u32::from(lengths)) as u8;
        let a = Ipv4Addr::from(0x0a00_0000 + i * 256);
        set.add(&format!("{a}/{len}"), None, true, Instant::ZERO)
            .unwrap();
    }
    sets
}

/// Nanoseconds per lookup of `LOOKUPS` addresses, half of them in the set.
fn round(sets: &Sets, n: u32) -> f64 {
    let now = Instant::from_secs(1);
    let start = Clock::now();
    let mut hits = 0u32;
    for i in 0..LOOKUPS {
        let k = i.wrapping_mul(2_654_435_761) % (2 * n);
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k * 256));
        hits += u32::from(sets.has_address(0, black_box(ip), now));
    }
    black_box(hits);
    start.elapsed().as_nanos() as f64 / f64::from(LOOKUPS)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let cases = [(10u32, 1u8), (100_000, 1), (100_000, 8)];
    let built: Vec<Sets> = cases.iter().map(|&(n, l)| sets_of(n, l)).collect();
    let mut times = vec![Vec::new(); cases.len()];
    for r in 0..ROUNDS {
        for k in 0..cases.len() {
            let k = (k + r) % cases.len();
            times[k].push(round(&built[k], cases[k].0));
        }
    }
    for (k, &(n, l)) in cases.iter().enumerate() {
        println!(
            "set lookup, {n} elements, {l} prefix length(s), half hits: {:.1} ns (median of {ROUNDS} rounds of {LOOKUPS})",
            median(times[k].clone())
        );
    }
}
