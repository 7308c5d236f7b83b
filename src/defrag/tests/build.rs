//! Packet builders for the tests: whole datagrams and fragments cut from
//! them by hand, with valid checksums.

use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v4, pseudo_header_v6, sum};
use crate::wire::{ipv4, ipv6};

pub const A4: [u8; 4] = [10, 0, 1, 2];
pub const B4: [u8; 4] = [192, 0, 2, 9];
pub const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const B6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// An IPv4 header of `hlen` bytes (options filled with `options`, then
/// End of Options) for `payload` bytes of `proto`.
pub fn header4(hlen: usize, payload: usize, proto: u8, id: u16, tos: u8, df: bool) -> Vec<u8> {
    let mut h = vec![0u8; hlen];
    h[0] = 0x40 | (hlen / 4) as u8;
    h[1] = tos;
    h[2..4].copy_from_slice(&((hlen + payload) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&A4);
    h[16..20].copy_from_slice(&B4);
    h
}

/// Fill in the transport checksum of `seg` (TCP at 16, UDP at 6) over the
/// IPv4 or IPv6 pseudo-header `pseudo`.
fn transport_checksum(seg: &mut [u8], at: usize, pseudo: u64) {
    seg[at..at + 2].fill(0);
    let c = !fold(pseudo + sum(seg));
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn udp(payload: usize, seed: u8) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&4000u16.to_be_bytes());
    u[2..4].copy_from_slice(&53u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    u.extend(pattern(payload, seed));
    u
}

fn tcp(payload: usize, seed: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&4000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x18;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    t.extend(pattern(payload, seed));
    t
}

/// A whole IPv4 datagram: `hlen`-byte header, UDP (17) or TCP (6) with
/// `payload` data bytes.
pub fn datagram4(hlen: usize, proto: u8, payload: usize, id: u16, tos: u8, df: bool) -> Vec<u8> {
    let mut seg = if proto == 6 {
        tcp(payload, id as u8)
    } else {
        udp(payload, id as u8)
    };
    let pseudo = pseudo_header_v4(A4, B4, proto, seg.len() as u16);
    transport_checksum(&mut seg, if proto == 6 { 16 } else { 6 }, pseudo);
    let mut h = header4(hlen, seg.len(), proto, id, tos, df);
    crate::defrag::v4::set_checksum(&mut h);
    h.extend(seg);
    h
}

/// The IPv4 fragment of `dg` with its data bytes `[start, start + len)`,
/// MF as `more`, DF as the datagram has it.
pub fn frag4(dg: &[u8], start: usize, len: usize, more: bool) -> Vec<u8> {
    let hlen = usize::from(dg[0] & 15) * 4;
    let mut f = dg[..hlen].to_vec();
    let data = &dg[hlen..];
    let end = (start + len).min(data.len());
    f.extend_from_slice(&data[start.min(end)..end]);
    let df = u16::from_be_bytes([dg[6], dg[7]]) & 0x4000;
    let word = (start / 8) as u16 | df | if more { 0x2000 } else { 0 };
    f[6..8].copy_from_slice(&word.to_be_bytes());
    f[2..4].copy_from_slice(&((hlen + end - start.min(end)) as u16).to_be_bytes());
    crate::defrag::v4::set_checksum(&mut f[..hlen]);
    f
}

/// Set the TOS (and fix the checksum) of the IPv4 packet `p`.
pub fn set_tos(p: &mut [u8], tos: u8) {
    p[1] = tos;
    let hlen = usize::from(p[0] & 15) * 4;
    crate::defrag::v4::set_checksum(&mut p[..hlen]);
}

/// Set or clear DF (and fix the checksum) of the IPv4 packet `p`.
pub fn set_df(p: &mut [u8], df: bool) {
    let w = u16::from_be_bytes([p[6], p[7]]) & !0x4000 | if df { 0x4000 } else { 0 };
    p[6..8].copy_from_slice(&w.to_be_bytes());
    let hlen = usize::from(p[0] & 15) * 4;
    crate::defrag::v4::set_checksum(&mut p[..hlen]);
}

/// A whole IPv6 datagram: the fixed header, the extension headers `ext`
/// (each `(kind, total length)`, filled with padding), then UDP (17) or
/// TCP (6) with `payload` data bytes.
pub fn datagram6(ext: &[(u8, usize)], proto: u8, payload: usize, seed: u8) -> Vec<u8> {
    let mut seg = if proto == 6 {
        tcp(payload, seed)
    } else {
        udp(payload, seed)
    };
    let pseudo = pseudo_header_v6(A6, B6, proto, seg.len() as u32);
    transport_checksum(&mut seg, if proto == 6 { 16 } else { 6 }, pseudo);
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[7] = 64;
    p[8..24].copy_from_slice(&A6);
    p[24..40].copy_from_slice(&B6);
    let mut next_at = ipv6::NEXT_HEADER;
    for &(kind, len) in ext {
        p[next_at] = kind;
        next_at = p.len();
        let mut h = vec![0u8; len];
        h[1] = (len / 8 - 1) as u8;
        if len > 2 {
            h[2] = 1; // PadN
            h[3] = (len - 4) as u8;
        }
        p.extend(h);
    }
    p[next_at] = proto;
    p.extend(seg);
    let payload_len = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&payload_len.to_be_bytes());
    p
}

/// The IPv6 fragment of `dg` (unfragmentable part `unfrag` bytes, the
/// byte at `next_at` naming what follows it) with data `[start, start +
/// len)`, M as `more`.
pub fn frag6(
    dg: &[u8],
    unfrag: usize,
    next_at: usize,
    start: usize,
    len: usize,
    more: bool,
    id: u32,
) -> Vec<u8> {
    let mut f = dg[..unfrag].to_vec();
    f[next_at] = ipv6::NEXT_FRAGMENT;
    let word = start as u16 | u16::from(more);
    f.extend_from_slice(&[dg[next_at], 0]);
    f.extend_from_slice(&word.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    let data = &dg[unfrag..];
    let end = (start + len).min(data.len());
    f.extend_from_slice(&data[start.min(end)..end]);
    let payload = (f.len() - 40) as u16;
    f[4..6].copy_from_slice(&payload.to_be_bytes());
    f
}

/// The IPv4 header checksum of `p` is valid.
pub fn header_ok(p: &[u8]) -> bool {
    ipv4::Header::check_packet(p).is_ok_and(|h| internet_checksum(&[&p[..h.header_len]]) == 0)
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
