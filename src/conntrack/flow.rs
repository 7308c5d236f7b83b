//! The flow record: both tuples, the protocol's state, status, timers and
//! counters of one tracked connection.

use super::tcp::{TcpConn, TcpState};
use super::tuple::{Dir, Tuple};
use super::udp::UdpConn;
use crate::side::Side;
use crate::time::Instant;

/// Index of a flow in the table.
pub type FlowId = u32;

/// Protocol-specific state of a flow: each protocol's data lives in its variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoState {
    /// TCP state machine and windows.
    Tcp(TcpConn),
    /// UDP stream detection.
    Udp(UdpConn),
    /// ICMP query flow.
    Icmp,
    /// Any other protocol.
    Generic,
}

/// A flow's helper: its state lives in a pool the table allocates at start
/// (see [`super::table::HelperState`]), so flows without a helper carry only
/// this tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelperSlot {
    /// No helper.
    #[default]
    None,
    /// The config attaches a helper to this flow; its state is allocated
    /// when the flow is confirmed.
    Wanted,
    /// The helper's state is at this pool index.
    Attached(u32),
}

/// Where a translated flow's reply tuple is kept: a slot of the table's
/// translation pool (see [`super::table::Conntrack::reply_tuple`]), or none
/// for a flow whose reply tuple is the inverse of its original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatSlot(u32);

impl NatSlot {
    /// An untranslated flow.
    pub const NONE: NatSlot = NatSlot(u32::MAX);

    /// The slot at pool index `index`.
    pub fn at(index: u32) -> NatSlot {
        NatSlot(index)
    }

    /// The pool index, for a translated flow.
    pub fn index(self) -> Option<u32> {
        (self != NatSlot::NONE).then_some(self.0)
    }
}

/// One tracked flow.
///
/// The flow keeps the tuple of its first packet, of either family (40
/// bytes). Its reply tuple is the inverse of that ([`Flow::tuple`]) unless
/// address translation made it something else; a translated flow keeps its
/// reply tuple in a pool that only translated flows use (as helper state is
/// kept, [`Flow::nat`]), so that untranslated flows pay 4 bytes for it. The
/// table's [`super::table::Conntrack::tuple`] knows both cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The tuple of the first packet.
    pub original: Tuple,
    /// Protocol state.
    pub proto: ProtoState,
    /// A packet was seen in the reply direction.
    pub seen_reply: bool,
    /// The flow is ASSURED: never evicted early.
    pub assured: bool,
    /// The flow was created as RELATED (expected by a helper).
    pub expected: bool,
    /// When the flow expires unless refreshed.
    pub expires: Instant,
    /// Packets seen per direction.
    pub packets: [u64; 2],
    /// Bytes seen per direction.
    pub bytes: [u64; 2],
    /// The helper attached to this flow, if any.
    pub helper: HelperSlot,
    /// The device the flow's first packet came from.
    pub origin: Side,
    /// The translated reply tuple's slot, if the flow is translated.
    pub nat: NatSlot,
}

impl Flow {
    /// The tuple of packets in direction `dir` of an untranslated flow (a
    /// translated flow's reply tuple is in the table:
    /// [`super::table::Conntrack::tuple`]).
    pub fn tuple(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::Original => self.original,
            // A flow is created only for a tuple that has an inverse.
            Dir::Reply => self.original.invert().unwrap_or(self.original),
        }
    }

    /// The direction a packet travels in this flow, given its tuple `t`,
    /// `t`'s inverse and the flow's translated reply tuple (`None`:
    /// untranslated); `None` when it does not belong to the flow.
    pub fn direction_of(
        &self,
        t: &Tuple,
        inverse: Option<&Tuple>,
        reply: Option<&Tuple>,
    ) -> Option<Dir> {
        if self.original == *t {
            Some(Dir::Original)
        } else if reply.map_or(inverse == Some(&self.original), |r| r == t) {
            Some(Dir::Reply)
        } else {
            None
        }
    }

    /// The TCP state, if this is a TCP flow.
    pub fn tcp_state(&self) -> Option<TcpState> {
        match self.proto {
            ProtoState::Tcp(c) => Some(c.state),
            _ => None,
        }
    }

    /// Count one packet of `len` bytes in direction `dir`.
    pub fn account(&mut self, dir: Dir, len: usize) {
        let d = dir.index();
        self.packets[d] += 1;
        self.bytes[d] += len as u64;
    }
}
