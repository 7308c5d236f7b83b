//! TCP header facts: field offsets, flag bits, option kinds.

/// Offset of the sequence number.
pub const SEQ: usize = 4;
/// Offset of the acknowledgment number.
pub const ACK_NUMBER: usize = 8;
/// Offset of the data-offset byte (header length in its high nibble).
pub const DATA_OFFSET: usize = 12;
/// Offset of the flag byte.
pub const FLAGS: usize = 13;
/// Offset of the checksum.
pub const CHECKSUM: usize = 16;
/// Length of the header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Flag bits as they sit in the flag byte.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Option kinds (RFC 9293, 7323, 2018).
pub mod option {
    /// End of option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
}

/// TCP options as (kind, data) pairs, stopping at the end-of-list option or
/// at the first malformed option (as the kernel's parsers do). Never
/// allocates, never panics.
pub fn options(options: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 0;
    core::iter::from_fn(move || loop {
        let kind = *options.get(i)?;
        match kind {
            option::END => return None,
            option::NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*options.get(i + 1)?);
        let data = options.get(i + 2..i + len).filter(|_| len >= 2)?;
        i += len;
        return Some((kind, data));
    })
}

/// A TCP sequence (or acknowledgment) number: arithmetic wraps at 2^32 and
/// comparisons are the kernel's `before`/`after` (RFC 9293 3.4: `a` is
/// before `b` when `a - b`, as a signed 32-bit number, is negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self` comes strictly before `other` (mod 2^32).
    pub fn before(self, other: SeqNum) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }

    /// `self` comes strictly after `other` (mod 2^32).
    pub fn after(self, other: SeqNum) -> bool {
        other.before(self)
    }

    /// How far `self` is past `earlier` (mod 2^32).
    pub fn since(self, earlier: SeqNum) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

impl core::ops::Add<u32> for SeqNum {
    type Output = SeqNum;
    /// `n` sequence numbers later (wrapping).
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl core::ops::Sub<u32> for SeqNum {
    type Output = SeqNum;
    /// `n` sequence numbers earlier (wrapping).
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_across_the_wrap() {
        let near_end = SeqNum(u32::MAX - 10);
        let wrapped = near_end + 20;
        assert_eq!(wrapped, SeqNum(9));
        assert!(near_end.before(wrapped) && wrapped.after(near_end));
        assert_eq!(wrapped.since(near_end), 20);
        assert_eq!(wrapped - 20, near_end);
        assert!(!near_end.before(near_end) && !near_end.after(near_end));
        // Half the space away is "before" one way only at exactly 2^31.
        assert!(SeqNum(0).before(SeqNum(0x7fff_ffff)));
        assert!(SeqNum(0).after(SeqNum(0x8000_0001)));
    }

    #[test]
    fn options_stop_at_end_and_at_malformed_lengths() {
        let opts = [
            NOP,
            2,
            4,
            5,
            0xb4,
            option::WINDOW_SCALE,
            3,
            7,
            option::END,
            4,
            2,
        ];
        let got: Vec<_> = options(&opts).collect();
        assert_eq!(
            got,
            vec![(2, &[5u8, 0xb4][..]), (option::WINDOW_SCALE, &[7u8][..])]
        );
        let truncated = [option::WINDOW_SCALE, 3];
        assert_eq!(options(&truncated).count(), 0);
        let zero_len = [option::SACK, 0, 1, 1];
        assert_eq!(options(&zero_len).count(), 0);
    }

    const NOP: u8 = option::NOP;
}
