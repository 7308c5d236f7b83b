//! Test fixtures: packets built with smoltcp's packet-level setters, and a
//! harness that drives the pure packet path with an injected clock.
#![allow(dead_code, unused_imports)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
use tunfw::config::Config;
use tunfw::conntrack::{CtState, Dir, Flow, Tuple};
use tunfw::filter::Firewall;
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::verdict::Verdict;
use tunfw::wire::checksum::internet_checksum;
use tunfw::wire::vnet;

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 1);
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 1, 0, 0, 0, 0, 2);
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 2, 0, 0, 0, 0, 2);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 3, 0, 0, 0, 0, 1);

pub use tunfw::wire::tcp::flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};

/// An IP packet of `src`'s family (IPv6: no extension headers).
fn ip_packet(src: IpAddr, dst: IpAddr, proto: IpProtocol, ttl: u8, payload: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, proto, ttl, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, u8::from(proto), &[], ttl, payload),
        _ => panic!("mixed families"),
    }
}

/// An IPv6 packet whose fixed header's next header is `next`, followed by
/// the raw extension headers `ext` and `payload`.
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    ext: &[u8],
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 40];
    buf[0] = 0x60;
    let len = (ext.len() + payload.len()) as u16;
    buf[4..6].copy_from_slice(&len.to_be_bytes());
    buf[6] = next;
    buf[7] = hop;
    buf[8..24].copy_from_slice(&src.octets());
    buf[24..40].copy_from_slice(&dst.octets());
    buf.extend_from_slice(ext);
    buf.extend_from_slice(payload);
    buf
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + payload.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + payload.len()) as u16);
    ip.set_ident(0x4242);
    ip.set_dont_frag(true);
    ip.set_hop_limit(ttl);
    ip.set_next_header(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.payload_mut().copy_from_slice(payload);
    ip.fill_checksum();
    buf
}

/// A TCP segment description.
#[derive(Clone, Debug, Default)]
pub struct Seg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

pub fn tcp(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, s: &Seg) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let mut opts = s.options.clone();
    while opts.len() % 4 != 0 {
        opts.push(0);
    }
    let hlen = 20 + opts.len();
    let mut seg = vec![0u8; hlen + s.payload.len()];
    {
        let mut t = TcpPacket::new_unchecked(&mut seg);
        t.set_src_port(s.sport);
        t.set_dst_port(s.dport);
        t.set_seq_number(smoltcp::wire::TcpSeqNumber(s.seq as i32));
        t.set_ack_number(smoltcp::wire::TcpSeqNumber(s.ack as i32));
        t.set_header_len(hlen as u8);
        t.set_window_len(s.window);
        t.options_mut().copy_from_slice(&opts);
        t.payload_mut().copy_from_slice(&s.payload);
    }
    seg[13] = s.flags;
    let mut t = TcpPacket::new_unchecked(&mut seg);
    t.fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
    ip_packet(src, dst, IpProtocol::Tcp, 64, &seg)
}

/// A TCP segment without options, window 65000.
#[allow(clippy::too_many_arguments)]
pub fn tcp_segment(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    tcp(
        src,
        dst,
        &Seg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65000,
            payload: payload.to_vec(),
            ..Seg::default()
        },
    )
}

pub fn udp(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let mut d = vec![0u8; 8 + payload.len()];
    {
        let mut u = UdpPacket::new_unchecked(&mut d);
        u.set_src_port(sport);
        u.set_dst_port(dport);
        u.set_len((8 + payload.len()) as u16);
        u.payload_mut().copy_from_slice(payload);
        u.fill_checksum(&IpAddress::from(src), &IpAddress::from(dst));
    }
    ip_packet(src, dst, IpProtocol::Udp, 64, &d)
}

/// An ICMP message, or an ICMPv6 message between IPv6 addresses (its
/// checksum over the pseudo-header).
pub fn icmp(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let (src, dst) = (src.into(), dst.into());
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = icmp_checksum(src, dst, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let proto = if src.is_ipv4() {
        IpProtocol::Icmp
    } else {
        IpProtocol::Icmpv6
    };
    ip_packet(src, dst, proto, 64, &m)
}

/// The checksum of ICMP message `m` (ICMPv6: with the pseudo-header).
pub fn icmp_checksum(src: IpAddr, dst: IpAddr, m: &[u8]) -> u16 {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = m.len() as u32;
            let pseudo = tunfw::wire::checksum::pseudo_header_v6(s.octets(), d.octets(), 58, len);
            !tunfw::wire::checksum::fold(pseudo + tunfw::wire::checksum::sum(m))
        }
        _ => internet_checksum(&[m]),
    }
}

pub fn echo(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    icmp_type: u8,
    id: u16,
    seq: u16,
) -> Vec<u8> {
    let [a, b] = id.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    icmp(src, dst, icmp_type, 0, [a, b, c, d], b"ping-payload")
}

/// An ICMP error from `from` to `to` quoting the first 28 bytes of `quoted`
/// (ICMPv6: the first 48).
pub fn icmp_error(
    from: impl Into<IpAddr>,
    to: impl Into<IpAddr>,
    icmp_type: u8,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let from = from.into();
    let keep = if from.is_ipv4() { 28 } else { 48 };
    icmp(
        from,
        to,
        icmp_type,
        code,
        [0; 4],
        &quoted[..quoted.len().min(keep)],
    )
}

/// The datagram `dg` cut into fragments of at most `size` bytes each by
/// the library's own cutter (`defrag::refragment`; IPv6 fragment headers
/// carry `ident`); one piece when it fits.
pub fn fragments(dg: &[u8], size: usize, ident: u32) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; 70_000];
    (0..tunfw::defrag::fragment_count(dg, size).expect("cuttable"))
        .map(|i| {
            let n = tunfw::defrag::refragment(dg, size, ident, i, &mut out).expect("piece");
            out[..n].to_vec()
        })
        .collect()
}

pub fn with_ttl(mut pkt: Vec<u8>, ttl: u8) -> Vec<u8> {
    if pkt[0] >> 4 == 6 {
        pkt[7] = ttl;
        return pkt;
    }
    let mut ip = Ipv4Packet::new_unchecked(&mut pkt);
    ip.set_hop_limit(ttl);
    ip.fill_checksum();
    pkt
}

/// A permissive test policy: everything NEW/ESTABLISHED/RELATED passes both
/// ways, INVALID is dropped by the policy. Tests of the tracker use it so that
/// the verdict shows the conntrack state directly.
pub const TRACKING_CONFIG: &str = r#"(
    router: (lan: "10.0.1.1", wan: "10.0.2.1", lan6: "fd00:0:1::1", wan6: "fd00:0:2::1"),
    outbound: (policy: Drop, rules: [(state: [New, Established, Related], action: Accept)]),
    inbound: (policy: Drop, rules: [(state: [New, Established, Related], action: Accept)]),
)"#;

pub struct Harness {
    pub fw: Firewall,
    pub now: Instant,
    pub answer: Vec<u8>,
    pub last_answer: Vec<u8>,
}

impl Harness {
    pub fn with_config(text: &str) -> Harness {
        let cfg = Config::parse(text, "test.ron").expect("test config parses");
        Harness {
            fw: Firewall::new(&cfg),
            now: Instant::from_secs(1000),
            answer: vec![0u8; 2048],
            last_answer: Vec::new(),
        }
    }

    pub fn tracking() -> Harness {
        Harness::with_config(TRACKING_CONFIG)
    }

    pub fn default_config() -> Harness {
        let cfg = Config::embedded_default().expect("default parses");
        Harness {
            fw: Firewall::new(&cfg),
            now: Instant::from_secs(1000),
            answer: vec![0u8; 2048],
            last_answer: Vec::new(),
        }
    }

    pub fn send(&mut self, side: Side, mut pkt: Vec<u8>) -> Verdict {
        let v = self.fw.process(side, &mut pkt, &mut self.answer, self.now);
        self.last_answer = self.answer[..v.answer_len].to_vec();
        v
    }

    /// Send `pkt` from `side`; the verdict and the packet as it leaves
    /// (rewritten in place: TTL, address translation).
    /// The packet gets room to grow (a NAT helper's rewrite), as the event
    /// loop gives it.
    pub fn pass(&mut self, side: Side, mut pkt: Vec<u8>) -> (Verdict, Vec<u8>) {
        let len = pkt.len();
        pkt.resize(len + 256, 0);
        let v = self.fw.process_in(
            side,
            &vnet::PLAIN,
            &mut pkt,
            len,
            &mut self.answer,
            self.now,
        );
        pkt.truncate(v.resized.unwrap_or(len));
        self.last_answer = self.answer[..v.answer_len].to_vec();
        (v, pkt)
    }

    /// From the client (LAN side).
    pub fn out(&mut self, pkt: Vec<u8>) -> Verdict {
        self.send(Side::Lan, pkt)
    }

    /// From the server (WAN side).
    pub fn inb(&mut self, pkt: Vec<u8>) -> Verdict {
        self.send(Side::Wan, pkt)
    }

    pub fn advance_secs(&mut self, secs: u64) {
        self.now = self.now + core::time::Duration::from_secs(secs);
    }

    pub fn advance_millis(&mut self, ms: u64) {
        self.now = Instant::from_millis(self.now.total_millis() + ms);
    }

    pub fn flow(&self, tuple: &Tuple) -> Option<(Flow, Dir)> {
        self.fw
            .conntrack()
            .peek(tuple, self.now)
            .map(|(f, d)| (*f, d))
    }
}

pub fn tuple(
    proto: u8,
    src: impl Into<IpAddr>,
    sport: u16,
    dst: impl Into<IpAddr>,
    dport: u16,
) -> Tuple {
    Tuple {
        src: src.into(),
        dst: dst.into(),
        protocol: proto,
        src_id: sport,
        dst_id: dport,
    }
}

pub fn forwarded(v: &Verdict, state: CtState) -> bool {
    v.forwards() && v.state == Some(state)
}
