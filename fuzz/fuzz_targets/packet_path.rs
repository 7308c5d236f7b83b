//! Fuzz the whole packet path: any bytes from either side, with or without
//! a virtio-net header (TUN offloads), against a table that already holds
//! flows, must never panic; super-packets sent back to be cut are cut and
//! their segments processed, as the event loop does.
#![no_main]

#[path = "small_firewall.rs"]
mod small_firewall;

use libfuzzer_sys::fuzz_target;
use small_firewall::small_firewall;
use tunfw::segment;
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::vnet::{self, VnetHeader};

fuzz_target!(|data: &[u8]| {
    let mut fw = small_firewall();
    let mut answer = vec![0u8; 2048];
    let mut segment = vec![0u8; 65_536];
    // Records separated by 0xfe; the first byte of each picks the side, and
    // whether the next 10 bytes are a virtio-net header.
    for (i, rec) in data.split(|&b| b == 0xfe).enumerate() {
        if rec.is_empty() {
            continue;
        }
        let side = if rec[0] & 1 == 0 {
            Side::Lan
        } else {
            Side::Wan
        };
        let (vnet, body) = match VnetHeader::read(&rec[1..]) {
            Some(h) if rec[0] & 2 != 0 => (h, &rec[11..]),
            _ => (vnet::PLAIN, &rec[1..]),
        };
        // With room to grow, as the event loop reads (an FTP rewrite through NAT).
        let mut pkt = body.to_vec();
        let len = pkt.len();
        pkt.resize(len + 64, 0);
        let now = Instant::from_millis(1000 + 500 * i as u64);
        let v = fw.process_in(side, &vnet, &mut pkt, len, &mut answer, now);
        assert!(v.answer_len <= answer.len());
        assert!(v.resized.is_none_or(|n| n <= pkt.len()));
        pkt.truncate(v.resized.unwrap_or(len));
        if v.fate == tunfw::verdict::Fate::Resegment {
            let n = segment::segment_count(&pkt, vnet.gso_size).unwrap_or(0);
            for k in 0..n {
                if let Ok(len) = segment::segment(&pkt, vnet.gso_size, k, &mut segment) {
                    fw.process(side, &mut segment[..len], &mut answer, now);
                }
            }
        }
        fw.tick(now);
    }
});
