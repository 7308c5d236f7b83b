//! The TCP state machine's table (`tcp_conntracks` in the kernel's
//! `nf_conntrack_proto_tcp.c`): the packet class that picks a row, the
//! states that are its columns, and the flag combinations that are legal at
//! all.

use serde::Serialize;

use super::super::tuple::Dir;
use crate::packet::TcpInfo;
use crate::wire::tcp::flags as f;

/// The TCP conntrack states, in the kernel's order (the table's columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    /// No state yet (only before the first packet).
    None = 0,
    /// SYN seen in the original direction.
    SynSent,
    /// SYN/ACK seen in reply.
    SynRecv,
    /// Three-way handshake complete (or flow picked up mid-stream).
    Established,
    /// FIN seen.
    FinWait,
    /// FIN seen in one direction, ACKed.
    CloseWait,
    /// FIN seen in both directions, last ACK pending.
    LastAck,
    /// Both FINs ACKed.
    TimeWait,
    /// Closed by RST.
    Close,
    /// Simultaneous open: SYN seen in both directions.
    SynSent2,
}

impl TcpState {
    /// The conntrack-tools name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }

    /// A state in which a RST closes the flow without sequence checks
    /// (the kernel's `tcp_can_early_drop` states).
    pub fn closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Close
                | TcpState::CloseWait
        )
    }
}

/// Packet class, the table's row: checked in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Syn = 0,
    SynAck,
    Fin,
    Ack,
    Rst,
    None,
}

impl Class {
    /// The class of a segment: RST, then SYN (with ACK: SYN/ACK), FIN, ACK.
    #[inline]
    pub(super) fn of(seg: &TcpInfo<'_>) -> Class {
        if seg.has(f::RST) {
            Class::Rst
        } else if seg.has(f::SYN) {
            if seg.has(f::ACK) {
                Class::SynAck
            } else {
                Class::Syn
            }
        } else if seg.has(f::FIN) {
            Class::Fin
        } else if seg.has(f::ACK) {
            Class::Ack
        } else {
            Class::None
        }
    }
}

/// A table cell: the next state, or invalid, or ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Move to this state.
    To(TcpState),
    /// The packet is INVALID in this state.
    Iv,
    /// Accept the packet without a state change (out of sync).
    Ig,
}

use Next::{Ig as IG, Iv as IV};
use TcpState as S;
const SS: Next = Next::To(S::SynSent);
const SR: Next = Next::To(S::SynRecv);
const ES: Next = Next::To(S::Established);
const FW: Next = Next::To(S::FinWait);
const CW: Next = Next::To(S::CloseWait);
const LA: Next = Next::To(S::LastAck);
const TW: Next = Next::To(S::TimeWait);
const CL: Next = Next::To(S::Close);
const S2: Next = Next::To(S::SynSent2);

/// `tcp_conntracks[dir][class][old state]`; columns NO SS SR ES FW CW LA TW CL S2.
const TABLE: [[[Next; 10]; 6]; 2] = [
    [
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV; 10],
    ],
    [
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV; 10],
    ],
];

/// The table's cell for a packet of `class` in direction `dir` in state `old`.
#[inline]
pub(super) fn transition(dir: Dir, class: Class, old: TcpState) -> Next {
    TABLE[dir.index()][class as usize][old as usize]
}

/// Flag validity as `tcp_error` checks it: after masking ECE, CWR and PSH only
/// SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK, ACK|URG are legal.
#[inline]
pub fn flags_valid(flags: u8) -> bool {
    let m = flags & !(f::ECE | f::CWR | f::PSH);
    [
        f::SYN,
        f::SYN | f::URG,
        f::SYN | f::ACK,
        f::RST,
        f::RST | f::ACK,
        f::FIN | f::ACK,
        f::FIN | f::ACK | f::URG,
        f::ACK,
        f::ACK | f::URG,
    ]
    .contains(&m)
}
