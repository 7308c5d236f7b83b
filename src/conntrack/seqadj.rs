//! Sequence adjustment (Linux `nf_conntrack_seqadj.c`): when a NAT helper
//! rewrites a line of a TCP control flow to a different length, every
//! later sequence number of that direction moves by the difference, and
//! the other direction's acknowledgements (and SACK blocks) move back.
//!
//! This module keeps the arithmetic, one [`SeqAdjustWay`] per direction:
//! a correction position and the offsets before and after it, as the
//! kernel's `struct nf_ct_seqadj`. Conntrack reads it to check windows
//! (an acknowledgement arrives in the receiver's, adjusted, numbering:
//! [`SeqAdjust::ack_offset`]); the rewrite of a packet's header is NAT's
//! (`crate::nat::seqadj`).

use super::tuple::Dir;
use crate::wire::tcp::SeqNum;

/// One direction's adjustment: segments starting after `correction_pos`
/// move by `offset_after`, those at or before it by `offset_before`
/// (offsets wrap, as sequence numbers do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdjustWay {
    /// Sequence number (as the sender numbers it) of the last rewritten segment.
    pub correction_pos: SeqNum,
    /// Offset of segments up to and including `correction_pos`.
    pub offset_before: u32,
    /// Offset of segments after it.
    pub offset_after: u32,
}

impl SeqAdjustWay {
    /// The offset of a sequence number `seq` of this direction, in the
    /// sender's numbering (the kernel's `nf_ct_seq_offset`).
    pub fn offset(&self, seq: SeqNum) -> u32 {
        if seq.after(self.correction_pos) {
            self.offset_after
        } else {
            self.offset_before
        }
    }

    /// The offset of an acknowledgement (or SACK edge) `ack` of this
    /// direction's data, in the receiver's (adjusted) numbering: the
    /// kernel's `nf_ct_seq_adjust` and `nf_ct_sack_block_adjust` compare
    /// `ack - offset_before` with the correction position.
    pub fn offset_of_ack(&self, ack: SeqNum) -> u32 {
        if SeqNum(ack.0.wrapping_sub(self.offset_before)).after(self.correction_pos) {
            self.offset_after
        } else {
            self.offset_before
        }
    }
}

/// Both directions' adjustments of one flow; all zero until a helper
/// changes a line's length. Guarantees: [`SeqAdjust::set`] never moves
/// the correction position backwards, so a retransmission of an already
/// rewritten segment changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdjust {
    ways: [SeqAdjustWay; 2],
}

impl SeqAdjust {
    /// The adjustment whose directions are `ways` (index [`Dir::index`]),
    /// as [`SeqAdjust::way`] reads them back.
    pub fn from_ways(ways: [SeqAdjustWay; 2]) -> SeqAdjust {
        SeqAdjust { ways }
    }

    /// Whether any direction's numbering moved.
    pub fn is_active(&self) -> bool {
        self.ways
            .iter()
            .any(|w| w.offset_before != 0 || w.offset_after != 0)
    }

    /// The adjustment of direction `dir`.
    pub fn way(&self, dir: Dir) -> &SeqAdjustWay {
        &self.ways[dir.index()]
    }

    /// A segment of `dir` starting at `seq` (as its sender numbered it)
    /// was rewritten `change` bytes longer (negative: shorter): the
    /// kernel's `nf_ct_seqadj_set`. Recorded only for the first rewrite
    /// or a segment after the last correction position.
    pub fn set(&mut self, dir: Dir, seq: SeqNum, change: i32) {
        if change == 0 {
            return;
        }
        let way = &mut self.ways[dir.index()];
        if way.offset_before == way.offset_after || way.correction_pos.before(seq) {
            way.correction_pos = seq;
            way.offset_before = way.offset_after;
            way.offset_after = way.offset_after.wrapping_add(change as u32);
        }
    }

    /// What to subtract from the acknowledgement `ack` of a packet sent
    /// in `dir` to have it in the numbering of the other direction's
    /// sender, as conntrack's window check does (`tcp_in_window`'s
    /// `receiver_offset`, read at `ack - 1`).
    pub fn ack_offset(&self, dir: Dir, ack: SeqNum) -> u32 {
        self.ways[dir.other().index()].offset(SeqNum(ack.0.wrapping_sub(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_moves_later_segments_only() {
        let mut s = SeqAdjust::default();
        assert!(!s.is_active());
        s.set(Dir::Original, SeqNum(1000), 5);
        let w = *s.way(Dir::Original);
        assert_eq!(
            w.offset(SeqNum(1000)),
            0,
            "the rewritten segment keeps its number"
        );
        assert_eq!(w.offset(SeqNum(1030)), 5);
        assert_eq!(w.offset(SeqNum(999)), 0);
        // A retransmission of the rewritten segment changes nothing.
        s.set(Dir::Original, SeqNum(1000), 5);
        assert_eq!(*s.way(Dir::Original), w);
        // A second, shorter rewrite later on adds up.
        s.set(Dir::Original, SeqNum(2000), -3);
        let w = s.way(Dir::Original);
        assert_eq!(w.offset(SeqNum(1500)), 5);
        assert_eq!(w.offset(SeqNum(2001)), 2);
        assert!(s.is_active());
        assert_eq!(*s.way(Dir::Reply), SeqAdjustWay::default());
    }

    #[test]
    fn acks_map_back_through_the_correction() {
        let mut s = SeqAdjust::default();
        // The client's segment at 1000 grew by 4 bytes.
        s.set(Dir::Original, SeqNum(1000), 4);
        let w = s.way(Dir::Original);
        // The server acks in adjusted numbering: an ack of the rewritten
        // segment's end (1000 + 20 + 4) maps to 1020.
        assert_eq!(w.offset_of_ack(SeqNum(1024)), 4);
        assert_eq!(w.offset_of_ack(SeqNum(1000)), 0);
        assert_eq!(s.ack_offset(Dir::Reply, SeqNum(1024)), 4);
        assert_eq!(s.ack_offset(Dir::Reply, SeqNum(1000)), 0);
        assert_eq!(s.ack_offset(Dir::Original, SeqNum(1024)), 0);
    }

    #[test]
    fn offsets_wrap_with_sequence_numbers() {
        let mut s = SeqAdjust::default();
        s.set(Dir::Reply, SeqNum(u32::MAX - 2), -7);
        let w = s.way(Dir::Reply);
        assert_eq!(SeqNum(5).0.wrapping_add(w.offset(SeqNum(5))), u32::MAX - 1);
        assert_eq!(w.offset(SeqNum(u32::MAX - 3)), 0);
    }
}
