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
/// Both tuples are stored, as the kernel's `tuplehash[2]`: the reply tuple
/// is the inverse of the original unless address translation changes it,
/// and addresses of either family fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The tuple of each direction (index [`Dir::index`]).
    pub tuples: [Tuple; 2],
    /// Protocol state.
    pub proto: ProtoState,
    /// A packet was seen in the reply direction.
    pub seen_reply: bool,
    /// The flow is ASSURED: never evicted early.
    pub assured: bool,
    /// The flow was created as RELATED (expected by a helper).
    pub expected: bool,
    /// When the first packet was seen.
    pub created: Instant,
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
        self.tuples[dir.index()]
    }

    /// The direction a packet with tuple `t` travels in this flow, if it
    /// belongs to it.
    pub fn direction_of(&self, t: &Tuple) -> Option<Dir> {
        if self.tuples[0] == *t {
            Some(Dir::Original)
        } else if self.tuples[1] == *t {
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
