//! The verdict: what happens to one packet, and why.

use crate::chain::Decider;
use crate::conntrack::state::CtState;
use crate::side::Side;
use crate::stats::{DropReason, InvalidReason};

/// What happens to the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Write the (possibly modified, e.g. TTL) packet to the other side.
    Forward,
    /// Drop it, for this reason.
    Drop(DropReason),
    /// A super-packet (TUN offloads) that must be handled one segment at a
    /// time: nothing was decided or counted; cut it with
    /// [`crate::segment::segment`] (either family) and process each segment.
    Resegment,
    /// A fragment the reassembler keeps until its datagram is complete:
    /// nothing to write, nothing dropped.
    Held,
    /// This fragment completed a datagram the rules accepted: write the
    /// datagram's pieces `0..n` ([`crate::filter::Firewall::fragment_piece`])
    /// to the other side, cut again as it arrived (Linux's "always
    /// refragment a defragmented datagram").
    ForwardFragments(usize),
}

/// What to do with one packet: its [`Fate`], and beside it what the
/// pipeline learned on the way (for answers, counters, logs and tracing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Forward, drop or cut.
    pub fate: Fate,
    /// When non-zero, write `answer[..answer_len]` back to the side the
    /// packet came from (a RST or an ICMP error; only with a drop).
    pub answer_len: usize,
    /// The conntrack state the rules saw, if tracking ran.
    pub state: Option<CtState>,
    /// The chain (named by the side the packet came from) and the rule or
    /// policy that decided, if the rules ran.
    pub decided_by: Option<(Side, Decider)>,
    /// The packet is to be logged (a `log` rule or policy, or a dropped
    /// INVALID or table-full packet), within the log rate limit.
    pub logged: bool,
    /// Why the packet was INVALID, when it was.
    pub invalid: Option<InvalidReason>,
    /// The forwarded packet's new length, when a NAT helper's rewrite
    /// changed it (see [`crate::filter::Firewall::process_in`]).
    pub resized: Option<usize>,
}

impl Verdict {
    /// A verdict of `fate` with nothing learned yet.
    pub fn new(fate: Fate, state: Option<CtState>) -> Verdict {
        Verdict {
            fate,
            answer_len: 0,
            state,
            decided_by: None,
            logged: false,
            invalid: None,
            resized: None,
        }
    }

    /// A drop for `reason`.
    pub fn dropped(reason: DropReason, state: Option<CtState>) -> Verdict {
        Verdict::new(Fate::Drop(reason), state)
    }

    /// Whether the packet is forwarded as it is.
    pub fn forwards(&self) -> bool {
        self.fate == Fate::Forward
    }

    /// Whether the packet, or the datagram it completed, is forwarded.
    pub fn forwards_any(&self) -> bool {
        matches!(self.fate, Fate::Forward | Fate::ForwardFragments(_))
    }

    /// Why the packet is dropped, when it is.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self.fate {
            Fate::Drop(r) => Some(r),
            Fate::Forward | Fate::Resegment | Fate::Held | Fate::ForwardFragments(_) => None,
        }
    }
}
