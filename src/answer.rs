//! Packets tunfw sends itself: TCP RST and ICMP errors (reject, time exceeded).
//!
//! Builders write into a caller-provided buffer and return the length, so they
//! never allocate. They refuse (return `None`) where a router must stay
//! silent: no RST for a RST, no ICMP error about an ICMP error, nothing to
//! multicast, broadcast or unspecified addresses.

use core::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{IpAddress, TcpPacket};

use crate::conntrack::icmp;
use crate::packet::{
    internet_checksum, tcp_flags as f, Packet, TcpInfo, Transport, PROTO_ICMP, PROTO_TCP,
};
use crate::time::Instant;

/// TTL of generated packets (Linux `ip_default_ttl`).
pub const GENERATED_TTL: u8 = 64;
/// Largest ICMP error generated (RFC 1812: 576 bytes).
pub const MAX_ICMP_ERROR: usize = 576;

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_multicast() || a.is_broadcast() || a.is_unspecified())
}

fn write_ipv4_header(out: &mut [u8], total_len: usize, protocol: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    out[0] = 0x45;
    out[1] = 0;
    out[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    out[4..6].copy_from_slice(&[0, 0]);
    out[6..8].copy_from_slice(&[0x40, 0]); // DF
    out[8] = GENERATED_TTL;
    out[9] = protocol;
    out[10..12].copy_from_slice(&[0, 0]);
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    let check = internet_checksum(&[&out[..20]]);
    out[10..12].copy_from_slice(&check.to_be_bytes());
}

fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// A TCP RST answering `seg` of `pkt`, from its destination to its source
/// (as the kernel's `nf_send_reset`). `None` for a RST or non-unicast ends.
pub fn tcp_reset(pkt: &Packet<'_>, seg: &TcpInfo<'_>, out: &mut [u8]) -> Option<usize> {
    if seg.has(f::RST) || out.len() < 40 {
        return None;
    }
    let (src, dst) = (v4(pkt.ip.dst)?, v4(pkt.ip.src)?);
    if !unicast(src) || !unicast(dst) {
        return None;
    }
    write_ipv4_header(out, 40, PROTO_TCP, src, dst);
    let tcp = &mut out[20..40];
    tcp.fill(0);
    tcp[0..2].copy_from_slice(&seg.dst_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&seg.src_port.to_be_bytes());
    let (seq, ack, flags) = if seg.has(f::ACK) {
        (seg.ack, 0, f::RST)
    } else {
        (0, seg.seq_end(), f::RST | f::ACK)
    };
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    let mut view = TcpPacket::new_unchecked(&mut out[20..40]);
    view.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    Some(40)
}

/// An ICMP error of `icmp_type`/`code` about the packet `original` (its raw
/// bytes, parsed as `pkt`), sent from `src` to the packet's source, quoting as
/// much of it as fits in 576 bytes. `None` when the original is itself an
/// ICMP error or either end is not unicast.
pub fn icmp_error(
    pkt: &Packet<'_>,
    original: &[u8],
    icmp_type: u8,
    code: u8,
    src: Ipv4Addr,
    out: &mut [u8],
) -> Option<usize> {
    if let Transport::Icmp(i) = pkt.transport {
        if icmp::is_error(i.icmp_type) {
            return None;
        }
    }
    let dst = v4(pkt.ip.src)?;
    if !unicast(dst) || !unicast(src) || !v4(pkt.ip.dst).is_some_and(unicast) {
        return None;
    }
    let quoted = original
        .len()
        .min(pkt.ip.total_len)
        .min(MAX_ICMP_ERROR - 28);
    let total = 28 + quoted;
    if out.len() < total {
        return None;
    }
    write_ipv4_header(out, total, PROTO_ICMP, src, dst);
    let msg = &mut out[20..total];
    msg[0] = icmp_type;
    msg[1] = code;
    msg[2..8].fill(0);
    msg[8..].copy_from_slice(&original[..quoted]);
    let check = internet_checksum(&[msg]);
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    Some(total)
}

/// A token bucket: `rate` tokens per second up to `burst`, refilled from the
/// injected clock. A `burst` of 0 never gives a token. The arithmetic
/// saturates, so any `u64` rate and burst are safe (tokens are counted in
/// thousandths, so a burst above `u64::MAX / 1000` acts as that).
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate_per_sec: u64,
    burst: u64,
    tokens_milli: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            rate_per_sec,
            burst,
            tokens_milli: burst.saturating_mul(1000),
            last: Instant::ZERO,
        }
    }

    /// Take a token if one is available at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.total_millis().saturating_sub(self.last.total_millis());
        self.last = self.last.max(now);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(self.rate_per_sec))
            .min(self.burst.saturating_mul(1000));
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(2, 3);
        let t0 = Instant::from_secs(100);
        assert_eq!((0..5).filter(|_| b.take(t0)).count(), 3);
        // Half a second at 2/s is one token.
        assert!(b.take(Instant::from_millis(100_500)));
        assert!(!b.take(Instant::from_millis(100_500)));
        // A long pause refills up to the burst only.
        let later = Instant::from_secs(10_000);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
        // A zero burst never gives a token; a zero rate never refills.
        let mut off = TokenBucket::new(1000, 0);
        assert!(!off.take(Instant::ZERO) && !off.take(Instant::NEVER));
        let mut once = TokenBucket::new(0, 1);
        assert!(once.take(Instant::ZERO));
        assert!(!once.take(Instant::NEVER));
    }

    #[test]
    fn token_bucket_arithmetic_cannot_overflow() {
        // burst * 1000 would wrap to 384 thousandths: no token at all.
        let mut b = TokenBucket::new(0, 18_446_744_073_709_552);
        assert!((0..1000).all(|_| b.take(Instant::ZERO)));
        for (rate, burst) in [
            (u64::MAX, u64::MAX),
            (u64::MAX, 1),
            (1, u64::MAX),
            (u64::MAX, 0),
            (0, u64::MAX),
        ] {
            let mut b = TokenBucket::new(rate, burst);
            for now in [
                Instant::ZERO,
                Instant::from_millis(1),
                Instant::from_millis(u64::MAX / 2),
                Instant::NEVER,
            ] {
                assert_eq!(b.take(now), burst > 0, "rate {rate} burst {burst}");
            }
            // The clock going back refills nothing (and does not underflow).
            let left = b.tokens_milli;
            b.take(Instant::ZERO);
            assert!(b.tokens_milli <= left);
        }
    }
}
