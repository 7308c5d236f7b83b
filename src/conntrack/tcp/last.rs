//! The last segment a TCP tracker accepted or ignored.

use super::super::tuple::Dir;
use super::states::Class;
use super::window::Segment;
use crate::wire::tcp::SeqNum;

/// The last segment the tracker accepted or ignored, as the kernel's
/// `last_*` fields: what later packets are judged against (retransmission
/// counting, out-of-sync resync, RST and challenge-ACK checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LastSegment {
    /// Its class.
    pub class: Class,
    /// Its direction.
    pub dir: Dir,
    /// Its sequence number.
    pub seq: SeqNum,
    /// Its acknowledgment number.
    pub ack: SeqNum,
    /// seq + payload + SYN + FIN.
    pub end: SeqNum,
    /// The window, truncated to 16 bits as the kernel keeps it.
    pub win: u16,
    /// The window scale of an ignored SYN, for a resync.
    pub wscale: u8,
    /// An ignored SYN carried the window scale option.
    pub window_scale: bool,
    /// An ignored SYN carried SACK-permitted.
    pub sack_permitted: bool,
}

impl LastSegment {
    /// Count identical ACK-class segments in a row in `retrans` (the
    /// kernel's `retrans`, which shortens the timeout after `max_retrans`),
    /// remembering `seg` when it is not a repeat.
    #[inline]
    pub fn count_retransmission(
        &mut self,
        retrans: &mut u8,
        dir: Dir,
        seg: &Segment,
        scaled_win: u32,
    ) {
        // The kernel keeps last_win in 16 bits and truncates the scaled window.
        let win16 = scaled_win as u16;
        if self.dir == dir
            && self.seq == seg.seq
            && self.ack == seg.ack
            && self.end == seg.end
            && self.win == win16
        {
            *retrans = retrans.saturating_add(1);
        } else {
            self.dir = dir;
            self.seq = seg.seq;
            self.ack = seg.ack;
            self.end = seg.end;
            self.win = win16;
            *retrans = 0;
        }
    }
}
