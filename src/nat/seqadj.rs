//! Moving a TCP segment's sequence numbers after a NAT helper changed a
//! line's length (Linux's `nf_ct_seq_adjust` and `nf_ct_sack_adjust`):
//! the sequence number by its own direction's offset, the acknowledgement
//! and every SACK block edge back by the other direction's, the TCP
//! checksum patched for each (RFC 1624; not with a partial checksum, which
//! the device computes over these fields itself). The arithmetic is
//! conntrack's ([`crate::conntrack::seqadj`]).

use super::rewrite::{field16, patched, set};
use crate::conntrack::seqadj::SeqAdjust;
use crate::conntrack::tuple::Dir;
use crate::wire::tcp::{self, flags, SeqNum};

/// Adjust the TCP segment at `l4..` of `buf` (its header whole in `buf`),
/// sent in `dir` of a flow adjusted as `adj` says. `partial`: its
/// checksum is partial. False when `buf` does not hold the header; true
/// otherwise (whether or not a number changed).
pub fn adjust_segment(buf: &mut [u8], l4: usize, dir: Dir, adj: &SeqAdjust, partial: bool) -> bool {
    let Some(seg) = buf.get_mut(l4..) else {
        return false;
    };
    let header_len = match seg.get(tcp::DATA_OFFSET) {
        Some(b) => usize::from(b >> 4) * 4,
        None => return false,
    };
    if header_len < tcp::MIN_HEADER_LEN || seg.len() < header_len {
        return false;
    }
    let (this, other) = (adj.way(dir), adj.way(dir.other()));
    let seq = SeqNum(read32(seg, tcp::SEQ));
    let mut d = move32(seg, tcp::SEQ, seq.0.wrapping_add(this.offset(seq)));
    if seg[tcp::FLAGS] & flags::ACK != 0 {
        let ack = SeqNum(read32(seg, tcp::ACK_NUMBER));
        d += move32(
            seg,
            tcp::ACK_NUMBER,
            ack.0.wrapping_sub(other.offset_of_ack(ack)),
        );
        d += adjust_sack_blocks(&mut seg[tcp::MIN_HEADER_LEN..header_len], |edge| {
            edge.0.wrapping_sub(other.offset_of_ack(edge))
        });
    }
    if !partial {
        let check = patched(field16(seg, tcp::CHECKSUM), d);
        seg[tcp::CHECKSUM..tcp::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    }
    true
}

fn read32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Write `new` at `at`; the checksum change.
fn move32(b: &mut [u8], at: usize, new: u32) -> u64 {
    set(&mut b[at..at + 4], &new.to_be_bytes())
}

/// Move every edge of the SACK option in `options` (the TCP options) by
/// `moved`; the checksum change. Options are walked as the kernel's
/// `nf_ct_sack_adjust` walks them: END stops, NOP is one byte, a length
/// under 2 or past the end stops.
fn adjust_sack_blocks(options: &mut [u8], moved: impl Fn(SeqNum) -> u32) -> u64 {
    let mut d = 0;
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            tcp::option::END => break,
            tcp::option::NOP => i += 1,
            kind => {
                let Some(&len) = options.get(i + 1) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || i + len > options.len() {
                    break;
                }
                if kind == tcp::option::SACK && (len - 2) % 8 == 0 {
                    let mut at = i + 2;
                    while at + 8 <= i + len {
                        for edge in [at, at + 4] {
                            let e = SeqNum(read32(options, edge));
                            d += move32(options, edge, moved(e));
                        }
                        at += 8;
                    }
                }
                i += len;
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::{internet_checksum, pseudo_header_v4, sum};

    /// A TCP segment (no IP header) with a SACK option, checksum right
    /// over a pseudo-header of fixed addresses.
    fn segment(seq: u32, ack: u32, sack: (u32, u32)) -> Vec<u8> {
        let mut s = vec![0u8; 20];
        s[0..4].copy_from_slice(&[0x9c, 0x40, 0, 21]);
        s[4..8].copy_from_slice(&seq.to_be_bytes());
        s[8..12].copy_from_slice(&ack.to_be_bytes());
        s[12] = 8 << 4; // 32-byte header
        s[13] = flags::ACK;
        s.extend_from_slice(&[1, 1, 5, 10]);
        s.extend_from_slice(&sack.0.to_be_bytes());
        s.extend_from_slice(&sack.1.to_be_bytes());
        s.extend_from_slice(b"data");
        let c = checksum(&s);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }

    fn checksum(s: &[u8]) -> u16 {
        let mut z = s.to_vec();
        z[16..18].fill(0);
        let ph = pseudo_header_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, s.len() as u16);
        !crate::wire::checksum::fold(ph + sum(&z))
    }

    #[test]
    fn seq_ack_and_sack_move_and_the_checksum_follows() {
        let mut adj = SeqAdjust::default();
        // The client's line at 1000 grew by 3; the server's at 5000 shrank by 2.
        adj.set(Dir::Original, SeqNum(1000), 3);
        adj.set(Dir::Reply, SeqNum(5000), -2);
        // A later client segment acking server data past its rewrite.
        let mut s = segment(1100, 5100, (5200, 5300));
        assert!(adjust_segment(&mut s, 0, Dir::Original, &adj, false));
        assert_eq!(read32(&s, 4), 1103);
        assert_eq!(
            read32(&s, 8),
            5102,
            "acks come back in the server's numbering"
        );
        assert_eq!(read32(&s, 24), 5202);
        assert_eq!(read32(&s, 28), 5302);
        assert_eq!(field16(&s, 16), checksum(&s));
        // The rewritten segment itself keeps its number.
        let mut s = segment(1000, 5000, (5000, 5000));
        assert!(adjust_segment(&mut s, 0, Dir::Original, &adj, false));
        assert_eq!(read32(&s, 4), 1000);
        assert_eq!(field16(&s, 16), checksum(&s));
        // A server segment moves by its own offset, its ack of the grown
        // line back into the client's numbering (3 bytes shorter).
        let mut s = segment(5100, 1103, (1103, 1103));
        assert!(adjust_segment(&mut s, 0, Dir::Reply, &adj, false));
        assert_eq!(read32(&s, 4), 5098);
        assert_eq!(read32(&s, 8), 1100);
        assert_eq!(field16(&s, 16), checksum(&s));
    }

    #[test]
    fn partial_checksums_are_left_to_the_device() {
        let mut adj = SeqAdjust::default();
        adj.set(Dir::Original, SeqNum(1000), 3);
        let mut s = segment(1100, 7, (7, 7));
        let before = field16(&s, 16);
        assert!(adjust_segment(&mut s, 0, Dir::Original, &adj, true));
        assert_eq!(read32(&s, 4), 1103);
        assert_eq!(field16(&s, 16), before);
    }

    #[test]
    fn short_or_broken_headers_change_nothing_and_never_panic() {
        let adj = SeqAdjust::default();
        assert!(!adjust_segment(
            &mut [0u8; 10],
            0,
            Dir::Original,
            &adj,
            false
        ));
        let mut s = segment(1, 2, (3, 4));
        s[12] = 15 << 4; // claims 60 bytes
        assert!(!adjust_segment(&mut s[..30], 0, Dir::Original, &adj, false));
        // An option whose length runs past the header stops the walk.
        let mut s = segment(1, 2, (3, 4));
        s[22] = 5;
        s[23] = 40;
        assert!(adjust_segment(&mut s, 0, Dir::Original, &adj, false));
        let _ = internet_checksum(&[&s]);
    }
}
