//! Fuzz the whole packet path: any bytes from either side, against a table
//! that already holds flows, must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunfw::config::Config;
use tunfw::filter::Firewall;
use tunfw::packet::Side;
use tunfw::time::Instant;

fuzz_target!(|data: &[u8]| {
    // The default rules with a small table, so that each run is cheap and
    // eviction is exercised.
    let text = tunfw::config::DEFAULT_CONFIG
        .replace("max: 65536", "max: 64")
        .replace("max_control_flows: 4096", "max_control_flows: 8");
    let cfg = Config::parse(&text, "fuzz").expect("default config");
    let mut fw = Firewall::new(&cfg);
    let mut answer = vec![0u8; 2048];
    // Records separated by 0xfe; the first byte of each picks the side.
    for (i, rec) in data.split(|&b| b == 0xfe).enumerate() {
        if rec.is_empty() {
            continue;
        }
        let side = if rec[0] & 1 == 0 { Side::Lan } else { Side::Wan };
        let mut pkt = rec[1..].to_vec();
        let now = Instant::from_millis(1000 + 500 * i as u64);
        let v = fw.process(side, &mut pkt, &mut answer, now);
        assert!(v.answer_len <= answer.len());
        fw.tick(now);
    }
});
