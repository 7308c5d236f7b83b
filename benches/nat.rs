//! What address translation costs on the packet path: an established TCP
//! packet (64 bytes of payload) of a masqueraded flow against the same
//! packet of an untranslated flow, at 1 million tracked flows (100,000
//! with `TUNFW_BENCH_FLOWS=100000`), both directions, in alternating rounds
//! of the same run (each side first in every other round), medians and the
//! ratio printed. The masqueraded table is the same flows behind one
//! address: flow `i` is client `10.1.n.2:port` to server `10.2.n.2:80`, so
//! every mapping keeps its port.
//!
//! Run: `cargo bench --bench nat`. Compare figures from the same run only.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as Clock;

use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket};
use tunfw::config::Config;
use tunfw::filter::Firewall;
use tunfw::side::Side;
use tunfw::time::Instant;

const MASQ: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);

fn client(i: usize) -> (IpAddr, u16, IpAddr) {
    let n = (i / 50_000) as u8;
    (
        IpAddr::V4(Ipv4Addr::new(10, 1, n, 2)),
        1024 + (i % 50_000) as u16,
        IpAddr::V4(Ipv4Addr::new(10, 2, n, 2)),
    )
}

// A fixture builder: each argument is a header field.
#[allow(clippy::too_many_arguments)]
fn tcp(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
) -> Vec<u8> {
    let mut seg = vec![0u8; 20 + payload];
    {
        let mut t = TcpPacket::new_unchecked(&mut seg);
        t.set_src_port(sport);
        t.set_dst_port(dport);
        t.set_seq_number(smoltcp::wire::TcpSeqNumber(seq as i32));
        t.set_ack_number(smoltcp::wire::TcpSeqNumber(ack as i32));
        t.set_header_len(20);
        t.set_window_len(65535);
    }
    seg[13] = flags;
    TcpPacket::new_unchecked(&mut seg).fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        unreachable!("IPv4 only")
    };
    let mut buf = vec![0u8; 20 + seg.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + seg.len()) as u16);
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Tcp);
    ip.set_src_addr(s);
    ip.set_dst_addr(d);
    ip.payload_mut().copy_from_slice(&seg);
    ip.fill_checksum();
    buf
}

/// A firewall with `flows` established flows, masqueraded or not.
fn populated(flows: usize, nat: bool) -> Firewall {
    let mut text = tunfw::config::DEFAULT_CONFIG
        .replace("max: 65536", &format!("max: {}", flows + 1024))
        .replace(
            "router: (lan: None, wan: None, lan6: None, wan6: None)",
            "router: (wan: \"10.0.2.1\")",
        );
    if nat {
        text = text.replacen(
            "    outbound: (",
            "    nat: (source: [(out: Wan, to: Masquerade)]),\n    outbound: (",
            1,
        );
    }
    let cfg = Config::parse(&text, "bench").expect("config");
    let mut fw = Firewall::new(&cfg);
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1000);
    for i in 0..flows {
        let (c, port, server) = client(i);
        let back_to = if nat { IpAddr::V4(MASQ) } else { c };
        for (side, mut p) in [
            (Side::Lan, tcp(c, server, port, 80, 1000, 0, 0x02, 0)),
            (
                Side::Wan,
                tcp(server, back_to, 80, port, 5000, 1001, 0x12, 0),
            ),
            (Side::Lan, tcp(c, server, port, 80, 1001, 5001, 0x10, 0)),
        ] {
            fw.process(side, &mut p, &mut answer, now);
        }
    }
    assert!(fw.conntrack().len() >= flows * 99 / 100, "table populated");
    if nat {
        assert!(
            fw.nat().stats.mapped as usize >= flows * 99 / 100,
            "flows translated"
        );
    }
    fw
}

/// Nanoseconds per packet of `packets` passes of the packet from `side`.
fn run(fw: &mut Firewall, side: Side, template: &[u8], packets: u32) -> f64 {
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1001);
    let mut buf = template.to_vec();
    let start = Clock::now();
    for _ in 0..packets {
        // A pass changes the IP and TCP headers (TTL, addresses, ports,
        // checksums): restore them.
        buf[..40].copy_from_slice(&template[..40]);
        let v = fw.process(side, &mut buf, &mut answer, now);
        assert!(v.forwards());
        black_box(&buf);
    }
    start.elapsed().as_nanos() as f64 / f64::from(packets)
}

fn main() {
    let flows: usize = std::env::var("TUNFW_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds = 11;
    // TUNFW_BENCH_PACKETS: passes a round (200,000; fewer under callgrind).
    let packets = std::env::var("TUNFW_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut fws = [populated(flows, false), populated(flows, true)];
    let (c, port, server) = client(flows / 2);
    let cases = [
        (
            "original direction",
            Side::Lan,
            [
                tcp(c, server, port, 80, 1001, 5001, 0x18, 64),
                tcp(c, server, port, 80, 1001, 5001, 0x18, 64),
            ],
        ),
        (
            "reply direction",
            Side::Wan,
            [
                tcp(server, c, 80, port, 5001, 1001, 0x10, 64),
                tcp(server, IpAddr::V4(MASQ), 80, port, 5001, 1001, 0x10, 64),
            ],
        ),
    ];
    // TUNFW_BENCH_CASE=original or reply: that direction alone.
    let only = std::env::var("TUNFW_BENCH_CASE").ok();
    for (name, side, templates) in cases
        .iter()
        .filter(|(name, _, _)| only.as_ref().is_none_or(|o| name.starts_with(o.as_str())))
    {
        let mut times = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                times[i].push(run(&mut fws[i], *side, &templates[i], packets));
            }
        }
        // The median, and the fastest round: the one least disturbed by
        // other work on the machine.
        let median_min = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0])
        };
        let ((plain, plain_min), (nat, nat_min)) =
            (median_min(&mut times[0]), median_min(&mut times[1]));
        println!(
            "established_tcp_64B {name} at {flows} flows, {rounds} rounds of {packets}: untranslated {plain:.1} ns (min {plain_min:.1}), masqueraded {nat:.1} ns (min {nat_min:.1}), ratio {:.3} (min {:.3})",
            nat / plain,
            nat_min / plain_min
        );
    }
}
