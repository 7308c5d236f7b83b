//! Benchmarks of the pure packet path (no TUN devices): an established TCP
//! packet, a new flow's first packet, and an ICMP error lookup, with 1
//! thousand, 100 thousand and 1 million tracked flows. Also prints the memory
//! the table takes per tracked flow.
//!
//! Run: `cargo bench --bench packet_path`. Results vary between machines and
//! runs; compare figures from the same run.

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion};
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
use tunfw::config::Config;
use tunfw::filter::Firewall;
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::checksum::internet_checksum;
use tunfw::wire::vnet::{self, VnetHeader};

const SERVER: [u8; 4] = [10, 0, 2, 2];

/// The virtio-net header of a packet whose TCP checksum the kernel left
/// partial (TUN offloads).
const PARTIAL: VnetHeader = VnetHeader {
    flags: vnet::F_NEEDS_CSUM,
    csum_start: 20,
    csum_offset: 16,
    ..vnet::PLAIN
};

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + payload.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + payload.len()) as u16);
    ip.set_hop_limit(64);
    ip.set_next_header(proto);
    ip.set_src_addr(src.into());
    ip.set_dst_addr(dst.into());
    ip.payload_mut().copy_from_slice(payload);
    ip.fill_checksum();
    buf
}

// A fixture builder: each argument is a header field.
#[allow(clippy::too_many_arguments)]
fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
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
    TcpPacket::new_unchecked(&mut seg)
        .fill_checksum(&IpAddress::Ipv4(src.into()), &IpAddress::Ipv4(dst.into()));
    ipv4(src, dst, IpProtocol::Tcp, &seg)
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut d = vec![0u8; 8 + 32];
    {
        let mut u = UdpPacket::new_unchecked(&mut d);
        u.set_src_port(sport);
        u.set_dst_port(dport);
        u.set_len(40);
        u.fill_checksum(&IpAddress::Ipv4(src.into()), &IpAddress::Ipv4(dst.into()));
    }
    ipv4(src, dst, IpProtocol::Udp, &d)
}

/// A firewall with `flows` established TCP flows (client 10.0.1.x:port ->
/// server:80), the default rules, and room for more.
fn populated(flows: usize) -> Firewall {
    let text =
        tunfw::config::DEFAULT_CONFIG.replace("max: 65536", &format!("max: {}", flows + 1024));
    let cfg = Config::parse(&text, "bench").expect("config");
    let mut fw = Firewall::new(&cfg);
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1000);
    for i in 0..flows {
        // 50,000 ports per client address: unique tuples for up to 12.8 M flows.
        let c = [10, 1, (i / 50_000) as u8, 2];
        let port = 1024 + (i % 50_000) as u16;
        for (side, mut p) in [
            (Side::Lan, tcp(c, SERVER, port, 80, 1000, 0, 0x02, 0)),
            (Side::Wan, tcp(SERVER, c, 80, port, 5000, 1001, 0x12, 0)),
            (Side::Lan, tcp(c, SERVER, port, 80, 1001, 5001, 0x10, 0)),
        ] {
            fw.process(side, &mut p, &mut answer, now);
        }
    }
    assert!(fw.conntrack().len() >= flows * 99 / 100, "table populated");
    fw
}

fn bench(c: &mut Criterion) {
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1001);
    let mut group = c.benchmark_group("packet_path");
    for &flows in &[1_000usize, 100_000, 1_000_000] {
        let mut fw = populated(flows);
        // An established flow's data packet (client to server). Only the
        // IP header (TTL and its checksum) changes in a pass, so only it is
        // restored between iterations.
        for (name, payload, vnet) in [
            ("established_tcp_1400B", 1400, vnet::PLAIN),
            ("established_tcp_64B", 64, vnet::PLAIN),
            // With TUN offloads the kernel leaves the TCP checksum partial.
            ("established_tcp_1400B_offloaded", 1400, PARTIAL),
        ] {
            let template = tcp([10, 1, 0, 2], SERVER, 1024, 80, 1001, 5001, 0x18, payload);
            let mut buf = template.clone();
            group.bench_with_input(BenchmarkId::new(name, flows), &flows, |b, _| {
                b.iter(|| {
                    buf[..20].copy_from_slice(&template[..20]);
                    black_box(fw.process_offloaded(Side::Lan, &vnet, &mut buf, &mut answer, now))
                })
            });
        }
        // The same, each packet of another of 65,536 flows spread over the
        // table: the flow and its index entry are rarely in cache.
        let spread: Vec<Vec<u8>> = (0..65_536usize)
            .map(|k| {
                let i = (k * 7919) % flows;
                let c = [10, 1, (i / 50_000) as u8, 2];
                let port = 1024 + (i % 50_000) as u16;
                tcp(c, SERVER, port, 80, 1001, 5001, 0x18, 64)
            })
            .collect();
        let mut bufs = spread.clone();
        let mut k = 0usize;
        group.bench_with_input(
            BenchmarkId::new("established_tcp_64B_random_flow", flows),
            &flows,
            |b, _| {
                b.iter(|| {
                    k = (k + 1) & 65_535;
                    bufs[k][..20].copy_from_slice(&spread[k][..20]);
                    black_box(fw.process(Side::Lan, &mut bufs[k], &mut answer, now))
                })
            },
        );
        // A new flow's first packet: a UDP query, accepted and confirmed.
        // The flow is removed again in the same iteration (the figure
        // includes that removal) so the table keeps its size.
        let template = udp([10, 9, 9, 9], SERVER, 40000, 53);
        let tuple =
            tunfw::conntrack::Tuple::of_packet(&tunfw::packet::parse(&template).expect("udp"));
        let mut buf = template.clone();
        group.bench_with_input(
            BenchmarkId::new("new_udp_flow_and_removal", flows),
            &flows,
            |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&template);
                    let v = fw.process(Side::Lan, &mut buf, &mut answer, now);
                    if let Some((id, _)) = fw.conntrack_mut().lookup(&tuple, now) {
                        fw.conntrack_mut().remove(id);
                    }
                    black_box(v)
                });
            },
        );
        let mut fw = populated(flows);
        // An ICMP error (port unreachable) quoting a tracked flow's packet.
        let quoted = tcp([10, 1, 0, 2], SERVER, 1024, 80, 1001, 5001, 0x10, 0);
        let mut m = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&quoted[..28]);
        let ck = internet_checksum(&[&m]);
        m[2..4].copy_from_slice(&ck.to_be_bytes());
        let err = ipv4(SERVER, [10, 1, 0, 2], IpProtocol::Icmp, &m);
        let mut buf = err.clone();
        group.bench_with_input(
            BenchmarkId::new("icmp_error_related", flows),
            &flows,
            |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&err);
                    black_box(fw.process(Side::Wan, &mut buf, &mut answer, now))
                })
            },
        );
    }
    group.finish();
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory per tracked flow: RSS growth while 1 million established
/// TCP flows are tracked, divided by the flow count (the table is allocated
/// up front; pages become resident as flows are written).
fn memory_per_flow() {
    let flows = 1_000_000;
    let before = rss_bytes();
    let fw = populated(flows);
    let after = rss_bytes();
    let n = fw.conntrack().len();
    println!(
        "memory: {n} flows tracked, RSS +{} MiB, {} bytes per flow (Flow struct {} bytes, its tuple {} bytes, TCP state {} bytes)",
        (after - before) >> 20,
        (after - before) / n.max(1),
        std::mem::size_of::<tunfw::conntrack::Flow>(),
        std::mem::size_of::<tunfw::conntrack::Tuple>(),
        std::mem::size_of::<tunfw::conntrack::tcp::TcpConn>(),
    );
    drop(fw);
}

/// Expiry of a full 1-million-flow table: every flow times out at once and
/// the event loop's expiry steps ([`Firewall::tick`], a bounded number of
/// slots each) remove them. Prints the longest step: the longest pause the
/// event loop takes for expiry.
fn expiry_pauses() {
    let flows = 1_000_000;
    let mut fw = populated(flows);
    let mut now = Instant::from_secs(1000 + 500_000); // past every timeout
    let (mut steps, mut longest, mut total) = (0u32, 0u128, 0u128);
    let mut times = Vec::new();
    while !fw.conntrack().is_empty() && steps < 100_000 {
        let t = std::time::Instant::now();
        fw.tick(now);
        let ns = t.elapsed().as_nanos();
        times.push(ns);
        longest = longest.max(ns);
        total += ns;
        steps += 1;
        now = Instant::from_millis(now.total_millis() + 1);
    }
    times.sort_unstable();
    println!(
        "expiry: {flows} flows expired in {steps} steps (at most {} slots, {} removals each), {:.1} ms in all; step median {:.0} us, longest {:.0} us",
        tunfw::filter::GC_SLOTS,
        tunfw::filter::GC_REMOVALS,
        total as f64 / 1e6,
        times[times.len() / 2] as f64 / 1e3,
        longest as f64 / 1e3
    );
}

/// The TCP checksum verification of a 1420-byte segment alone (smoltcp's,
/// which the packet path uses), to know what share of a packet's cost it is.
fn checksum(c: &mut Criterion) {
    let pkt = tcp([10, 1, 0, 2], SERVER, 1024, 80, 1001, 5001, 0x18, 1400);
    let seg = &pkt[20..];
    let (src, dst) = (
        IpAddress::Ipv4(std::net::Ipv4Addr::new(10, 1, 0, 2)),
        IpAddress::Ipv4(std::net::Ipv4Addr::from(SERVER)),
    );
    c.bench_function("checksum_tcp_1420_bytes", |b| {
        b.iter(|| TcpPacket::new_unchecked(black_box(seg)).verify_checksum(&src, &dst))
    });
}

criterion_group!(benches, bench, checksum);

fn main() {
    memory_per_flow();
    expiry_pauses();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
