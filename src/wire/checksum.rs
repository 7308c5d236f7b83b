//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// Fold a 32-or-more-bit one's complement sum into 16 bits (not inverted).
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The one's complement sum of `data` as 16-bit big-endian words, an odd
/// last byte padded with zero; not folded.
pub fn sum(data: &[u8]) -> u64 {
    let mut total: u64 = 0;
    let mut words = data.chunks_exact(2);
    for pair in &mut words {
        total += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = words.remainder() {
        total += u64::from(u16::from_be_bytes([*last, 0]));
    }
    total
}

/// The Internet checksum over the concatenation of `parts`, each of even
/// length except possibly the last. Returns 0 when the data already carries
/// a correct checksum.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    !fold(parts.iter().map(|p| sum(p)).sum())
}

/// The checksum `check` after one 16-bit word it covers changed from `old`
/// to `new` (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// The sum of the IPv4 pseudo-header (RFC 793) for a transport segment of
/// `len` bytes of `protocol` between `src` and `dst`; not folded.
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u64 {
    sum(&src) + sum(&dst) + u64::from(protocol) + u64::from(len)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1) for an upper-layer
/// packet of `len` bytes of `protocol` between `src` and `dst`; not folded.
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], protocol: u8, len: u32) -> u64 {
    sum(&src) + sum(&dst) + u64::from(protocol) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_update_equals_recomputation() {
        let mut hdr = [
            0x45u8, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = internet_checksum(&[&hdr]);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&[&hdr]), 0);
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let patched = update16(c, old, new);
        hdr[10..12].copy_from_slice(&patched.to_be_bytes());
        assert_eq!(internet_checksum(&[&hdr]), 0);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(internet_checksum(&[&[0x01]]), !0x0100);
        assert_eq!(internet_checksum(&[&[0x01, 0x02], &[0x03]]), !0x0402);
    }
}
