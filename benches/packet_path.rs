//! Benchmarks of the pure packet path (no TUN devices): an established TCP
//! packet, a new flow's first packet, and an ICMP error lookup, with 1
//! thousand, 100 thousand and 1 million tracked flows, in IPv4 and IPv6
//! (each IPv6 case, named `..._ipv6`, runs right after its IPv4 twin, on a
//! table of as many IPv6 flows). Also prints the memory the table takes per
//! tracked flow, for each family.
//!
//! Run: `cargo bench --bench packet_path` (a filter after `--` selects
//! cases: `-- 'established_tcp_64B(_ipv6)?/1000000'`). Results vary between
//! machines and runs; compare figures from the same run.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, BenchmarkId, Criterion};
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use tunfw::config::Config;
use tunfw::conntrack::CtState;
use tunfw::filter::Firewall;
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::checksum::{fold, internet_checksum, pseudo_header_v6, sum};
use tunfw::wire::vnet::{self, VnetHeader};

/// The IP family of a case: its addresses and header length.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// The server every flow goes to.
    fn server(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 2, 0, 0, 0, 0, 2)),
        }
    }

    /// The client of flow `i`: 50,000 ports per client address, unique
    /// tuples for up to 12.8 M flows.
    fn client(self, i: usize) -> (IpAddr, u16) {
        let port = 1024 + (i % 50_000) as u16;
        let n = (i / 50_000) as u8;
        let addr = match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 1, n, 2)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 1, 0, 0, 0, u16::from(n), 2)),
        };
        (addr, port)
    }

    /// A client that has no flow in a [`populated`] table.
    fn new_client(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 9, 0, 0, 0, 9, 9)),
        }
    }

    /// Length of the IP header (the bytes a forwarded packet's pass changes).
    fn header_len(self) -> usize {
        match self {
            Family::V4 => 20,
            Family::V6 => 40,
        }
    }

    /// The suffix of the case names.
    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "",
            Family::V6 => "_ipv6",
        }
    }

    /// The virtio-net header of a packet whose TCP checksum the kernel left
    /// partial (TUN offloads).
    fn partial(self) -> VnetHeader {
        VnetHeader {
            flags: vnet::F_NEEDS_CSUM,
            csum_start: self.header_len() as u16,
            csum_offset: 16,
            ..vnet::PLAIN
        }
    }
}

/// An IP packet of `src`'s family.
fn ip(src: IpAddr, dst: IpAddr, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s.octets(), d.octets(), proto, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut buf = vec![0u8; 40 + payload.len()];
            let mut ip = Ipv6Packet::new_unchecked(&mut buf);
            ip.set_version(6);
            ip.set_payload_len(payload.len() as u16);
            ip.set_next_header(proto);
            ip.set_hop_limit(64);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            ip.payload_mut().copy_from_slice(payload);
            buf
        }
        _ => panic!("mixed families"),
    }
}

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
    ip(src, dst, IpProtocol::Tcp, &seg)
}

fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    let mut d = vec![0u8; 8 + 32];
    {
        let mut u = UdpPacket::new_unchecked(&mut d);
        u.set_src_port(sport);
        u.set_dst_port(dport);
        u.set_len(40);
        u.fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
    }
    ip(src, dst, IpProtocol::Udp, &d)
}

/// An ICMP error (IPv4: port unreachable; IPv6: ICMPv6 port unreachable)
/// from `from` to `to` quoting the headers of `quoted`.
fn port_unreachable(from: IpAddr, to: IpAddr, quoted: &[u8]) -> Vec<u8> {
    let (ty, keep, proto) = match from {
        IpAddr::V4(_) => (3u8, 28, IpProtocol::Icmp),
        IpAddr::V6(_) => (1u8, 60, IpProtocol::Icmpv6),
    };
    let mut m = vec![ty, if ty == 3 { 3 } else { 4 }, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..keep]);
    let ck = match (from, to) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            !fold(pseudo_header_v6(s.octets(), d.octets(), 58, m.len() as u32) + sum(&m))
        }
        _ => internet_checksum(&[&m]),
    };
    m[2..4].copy_from_slice(&ck.to_be_bytes());
    ip(from, to, proto, &m)
}

/// A firewall with `flows` established TCP flows (client:port -> server:80,
/// see [`Family::client`]), the default rules, and room for more.
fn populated(family: Family, flows: usize) -> Firewall {
    let text =
        tunfw::config::DEFAULT_CONFIG.replace("max: 65536", &format!("max: {}", flows + 1024));
    let cfg = Config::parse(&text, "bench").expect("config");
    let mut fw = Firewall::new(&cfg);
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1000);
    let server = family.server();
    for i in 0..flows {
        let (c, port) = family.client(i);
        for (side, mut p) in [
            (Side::Lan, tcp(c, server, port, 80, 1000, 0, 0x02, 0)),
            (Side::Wan, tcp(server, c, 80, port, 5000, 1001, 0x12, 0)),
            (Side::Lan, tcp(c, server, port, 80, 1001, 5001, 0x10, 0)),
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
    let families = [Family::V4, Family::V6];
    for &flows in &[1_000usize, 100_000, 1_000_000] {
        // One table per family, both alive, so that each IPv6 case runs
        // right after its IPv4 twin under the same conditions.
        let mut fws = families.map(|f| populated(f, flows));
        // An established flow's data packet (client to server). Only the
        // IP header (TTL or hop limit, and the IPv4 checksum) changes in a
        // pass, so only it is restored between iterations.
        for (name, payload, partial) in [
            ("established_tcp_1400B", 1400, false),
            ("established_tcp_64B", 64, false),
            // With TUN offloads the kernel leaves the TCP checksum partial.
            ("established_tcp_1400B_offloaded", 1400, true),
        ] {
            for (family, fw) in families.iter().zip(fws.iter_mut()) {
                let vnet = if partial {
                    family.partial()
                } else {
                    vnet::PLAIN
                };
                let (client, port) = family.client(0);
                let template = tcp(client, family.server(), port, 80, 1001, 5001, 0x18, payload);
                let hdr = family.header_len();
                let mut buf = template.clone();
                let v = fw.process_offloaded(Side::Lan, &vnet, &mut buf, &mut answer, now);
                assert!(
                    v.forwards() && v.state == Some(CtState::Established),
                    "{v:?}"
                );
                let id = BenchmarkId::new(format!("{name}{}", family.suffix()), flows);
                group.bench_with_input(id, &flows, |b, _| {
                    b.iter(|| {
                        buf[..hdr].copy_from_slice(&template[..hdr]);
                        black_box(fw.process_offloaded(
                            Side::Lan,
                            &vnet,
                            &mut buf,
                            &mut answer,
                            now,
                        ))
                    })
                });
            }
        }
        // The same, each packet of another of 65,536 flows spread over the
        // table: the flow and its index entry are rarely in cache.
        for (family, fw) in families.iter().zip(fws.iter_mut()) {
            let spread: Vec<Vec<u8>> = (0..65_536usize)
                .map(|k| {
                    let (client, port) = family.client((k * 7919) % flows);
                    tcp(client, family.server(), port, 80, 1001, 5001, 0x18, 64)
                })
                .collect();
            let hdr = family.header_len();
            let mut bufs = spread.clone();
            let v = fw.process(Side::Lan, &mut bufs[0], &mut answer, now);
            assert!(
                v.forwards() && v.state == Some(CtState::Established),
                "{v:?}"
            );
            let mut k = 0usize;
            let id = BenchmarkId::new(
                format!("established_tcp_64B_random_flow{}", family.suffix()),
                flows,
            );
            group.bench_with_input(id, &flows, |b, _| {
                b.iter(|| {
                    k = (k + 1) & 65_535;
                    bufs[k][..hdr].copy_from_slice(&spread[k][..hdr]);
                    black_box(fw.process(Side::Lan, &mut bufs[k], &mut answer, now))
                })
            });
        }
        // A new flow's first packet: a UDP query, accepted and confirmed.
        // The flow is removed again in the same iteration (the figure
        // includes that removal) so the table keeps its size.
        for (family, fw) in families.iter().zip(fws.iter_mut()) {
            let template = udp(family.new_client(), family.server(), 40000, 53);
            let tuple =
                tunfw::conntrack::Tuple::of_packet(&tunfw::packet::parse(&template).expect("udp"));
            let mut buf = template.clone();
            let v = fw.process(Side::Lan, &mut buf, &mut answer, now);
            assert!(v.forwards() && v.state == Some(CtState::New), "{v:?}");
            let (id, _) = fw.conntrack_mut().lookup(&tuple, now).expect("confirmed");
            fw.conntrack_mut().remove(id);
            let id = BenchmarkId::new(
                format!("new_udp_flow_and_removal{}", family.suffix()),
                flows,
            );
            group.bench_with_input(id, &flows, |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&template);
                    let v = fw.process(Side::Lan, &mut buf, &mut answer, now);
                    if let Some((id, _)) = fw.conntrack_mut().lookup(&tuple, now) {
                        fw.conntrack_mut().remove(id);
                    }
                    black_box(v)
                });
            });
        }
        drop(fws);
        let mut fws = families.map(|f| populated(f, flows));
        // An ICMP error (port unreachable) quoting a tracked flow's packet.
        for (family, fw) in families.iter().zip(fws.iter_mut()) {
            let (client, port) = family.client(0);
            let quoted = tcp(client, family.server(), port, 80, 1001, 5001, 0x10, 0);
            let err = port_unreachable(family.server(), client, &quoted);
            let mut buf = err.clone();
            let v = fw.process(Side::Wan, &mut buf, &mut answer, now);
            assert!(v.forwards() && v.state == Some(CtState::Related), "{v:?}");
            let id = BenchmarkId::new(format!("icmp_error_related{}", family.suffix()), flows);
            group.bench_with_input(id, &flows, |b, _| {
                b.iter(|| {
                    buf.copy_from_slice(&err);
                    black_box(fw.process(Side::Wan, &mut buf, &mut answer, now))
                })
            });
        }
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
/// TCP flows of `family` are tracked, divided by the flow count (the table
/// is allocated up front; pages become resident as flows are written).
fn memory_per_flow(family: Family) {
    let flows = 1_000_000;
    let before = rss_bytes();
    let fw = populated(family, flows);
    let after = rss_bytes();
    let n = fw.conntrack().len();
    println!(
        "memory ({}): {n} flows tracked, RSS +{} MiB, {} bytes per flow (Flow struct {} bytes, its tuple {} bytes, TCP state {} bytes)",
        match family {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        },
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
    let mut fw = populated(Family::V4, flows);
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
    let (client, _) = Family::V4.client(0);
    let pkt = tcp(
        client,
        Family::V4.server(),
        1024,
        80,
        1001,
        5001,
        0x18,
        1400,
    );
    let seg = &pkt[20..];
    let (src, dst) = (
        IpAddress::from(client),
        IpAddress::from(Family::V4.server()),
    );
    c.bench_function("checksum_tcp_1420_bytes", |b| {
        b.iter(|| TcpPacket::new_unchecked(black_box(seg)).verify_checksum(&src, &dst))
    });
    // tunfw's own sum (wire::checksum), over the same segment and its
    // pseudo-header, for comparison: in IPv4 and IPv6.
    let v4 = (
        [10, 1, 0, 2],
        match Family::V4.server() {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => unreachable!(),
        },
    );
    c.bench_function("checksum_tcp_1420_bytes_tunfw_sum", |b| {
        b.iter(|| {
            let seg = black_box(seg);
            let pseudo = tunfw::wire::checksum::pseudo_header_v4(v4.0, v4.1, 6, seg.len() as u16);
            !fold(pseudo + sum(seg)) == 0
        })
    });
    let (c6, s6) = (
        Ipv6Addr::new(0xfd00, 0, 1, 0, 0, 0, 0, 2).octets(),
        Ipv6Addr::new(0xfd00, 0, 2, 0, 0, 0, 0, 2).octets(),
    );
    c.bench_function("checksum_tcp_1420_bytes_tunfw_sum_ipv6", |b| {
        b.iter(|| {
            let seg = black_box(seg);
            !fold(pseudo_header_v6(c6, s6, 6, seg.len() as u32) + sum(seg)) == 0
        })
    });
}

/// A case of the alternating comparison.
#[derive(Clone, Copy)]
enum Case {
    /// An established flow's data packet of this many payload bytes, its
    /// checksum partial (offloads) when true.
    Established(usize, bool),
    /// A new UDP flow's first packet, and the flow's removal.
    NewUdpFlow,
    /// An ICMP (ICMPv6) port unreachable quoting a tracked flow's packet.
    IcmpError,
}

/// `packets` calls of `step`: the loop callgrind counts
/// (`--toggle-collect=*hot_loop*`). Returns the wall time per call in ns.
#[inline(never)]
fn hot_loop(packets: u32, mut step: impl FnMut()) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..packets {
        step();
    }
    t.elapsed().as_nanos() as f64 / f64::from(packets)
}

/// `packets` packets of `case` through `fw` (a [`populated`] table of
/// `family`), as the criterion cases of the same name send them; the time
/// per packet in ns.
fn run_case(fw: &mut Firewall, family: Family, case: Case, packets: u32) -> f64 {
    let mut answer = vec![0u8; 2048];
    let now = Instant::from_secs(1001);
    let (client, port) = family.client(0);
    let server = family.server();
    match case {
        Case::Established(payload, partial) => {
            let vnet = if partial {
                family.partial()
            } else {
                vnet::PLAIN
            };
            let template = tcp(client, server, port, 80, 1001, 5001, 0x18, payload);
            let hdr = family.header_len();
            let mut buf = template.clone();
            hot_loop(packets, || {
                buf[..hdr].copy_from_slice(&template[..hdr]);
                black_box(fw.process_offloaded(Side::Lan, &vnet, &mut buf, &mut answer, now));
            })
        }
        Case::NewUdpFlow => {
            let template = udp(family.new_client(), server, 40000, 53);
            let tuple =
                tunfw::conntrack::Tuple::of_packet(&tunfw::packet::parse(&template).expect("udp"));
            let mut buf = template.clone();
            hot_loop(packets, || {
                buf.copy_from_slice(&template);
                let v = fw.process(Side::Lan, &mut buf, &mut answer, now);
                if let Some((id, _)) = fw.conntrack_mut().lookup(&tuple, now) {
                    fw.conntrack_mut().remove(id);
                }
                black_box(v);
            })
        }
        Case::IcmpError => {
            let quoted = tcp(client, server, port, 80, 1001, 5001, 0x10, 0);
            let err = port_unreachable(server, client, &quoted);
            let mut buf = err.clone();
            hot_loop(packets, || {
                buf.copy_from_slice(&err);
                black_box(fw.process(Side::Wan, &mut buf, &mut answer, now));
            })
        }
    }
}

/// The established packet, the new flow and the ICMP error at `flows`
/// flows in both families, alternating: `rounds` rounds of `packets`
/// packets each, IPv4 then IPv6 or IPv6 then IPv4, both tables alive;
/// prints the median time per packet of each (and of the fastest round)
/// and their ratio, so that the comparison is of one run under one load
/// (on a shared machine figures of separate runs move by 10-50%).
///
/// `only`: run the loop of this family alone (for callgrind);
/// `case_filter`: run only the case of this name.
fn alternating(
    flows: usize,
    rounds: usize,
    packets: u32,
    only: Option<Family>,
    case_filter: Option<&str>,
) {
    let mut fws = [Family::V4, Family::V6].map(|f| populated(f, flows));
    for (case, name) in [
        (Case::Established(64, false), "established_tcp_64B"),
        (
            Case::Established(1400, true),
            "established_tcp_1400B_offloaded",
        ),
        (Case::Established(1400, false), "established_tcp_1400B"),
        (Case::NewUdpFlow, "new_udp_flow_and_removal"),
        (Case::IcmpError, "icmp_error_related"),
    ]
    .into_iter()
    .filter(|(_, name)| case_filter.is_none_or(|c| c == *name))
    {
        let mut times = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            // Each family first in every other round: no order favours one.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let family = [Family::V4, Family::V6][i];
                if only.is_none_or(|f| f == family) {
                    times[i].push(run_case(&mut fws[i], family, case, packets));
                } else {
                    times[i].push(f64::NAN);
                }
            }
        }
        // The median, and the fastest round: the one least disturbed by
        // other work on the machine.
        let median_min = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0])
        };
        let ((v4, v4_min), (v6, v6_min)) = (median_min(&mut times[0]), median_min(&mut times[1]));
        println!(
            "alternating {name} at {flows} flows, {rounds} rounds of {packets}: IPv4 {v4:.1} ns (min {v4_min:.1}), IPv6 {v6:.1} ns (min {v6_min:.1}), IPv6/IPv4 {:.3} (min {:.3})",
            v6 / v4,
            v6_min / v4_min
        );
    }
}

criterion_group!(benches, bench, checksum);

fn main() {
    // TUNFW_BENCH_ALTERNATE=FLOWS: only the alternating comparison at FLOWS
    // flows (small under callgrind: the table's size changes the cache
    // misses, not the instructions), TUNFW_BENCH_ROUNDS rounds (11), with
    // TUNFW_BENCH_FAMILY=4 or 6 one family's loop alone, with
    // TUNFW_BENCH_CASE=NAME one case alone (established_tcp_64B, ...).
    if let Some(flows) = std::env::var("TUNFW_BENCH_ALTERNATE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let rounds = std::env::var("TUNFW_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(11);
        let only = match std::env::var("TUNFW_BENCH_FAMILY").as_deref() {
            Ok("4") => Some(Family::V4),
            Ok("6") => Some(Family::V6),
            _ => None,
        };
        let case = std::env::var("TUNFW_BENCH_CASE").ok();
        alternating(flows, rounds, 200_000, only, case.as_deref());
        return;
    }
    alternating(1_000_000, 11, 200_000, None, None);
    memory_per_flow(Family::V4);
    memory_per_flow(Family::V6);
    expiry_pauses();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
