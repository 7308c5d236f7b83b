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

/// One tracked flow.
///
/// The flow keeps the tuple of its first packet, of either family (40
/// bytes); the reply tuple is its inverse ([`Flow::tuple`]). Address
/// translation, where the reply tuple is not the inverse, will keep the
/// translated reply tuple in a pool that only translated flows use (as
/// helper state is kept), so that untranslated flows pay nothing for it;
/// [`Flow::tuple`] and [`Flow::direction_of`] are the only places that
/// know how the reply tuple is found.
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
}

impl Flow {
    /// The tuple of packets in direction `dir`.
    pub fn tuple(&self, dir: Dir) -> Tuple {
        match dir {
            Dir::Original => self.original,
            // A flow is created only for a tuple that has an inverse.
            Dir::Reply => self.original.invert().unwrap_or(self.original),
        }
    }

    /// The direction a packet travels in this flow, given its tuple `t` and
    /// `t`'s inverse; `None` when it does not belong to the flow.
    pub fn direction_of(&self, t: &Tuple, inverse: Option<&Tuple>) -> Option<Dir> {
        if self.original == *t {
            Some(Dir::Original)
        } else if inverse == Some(&self.original) {
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
