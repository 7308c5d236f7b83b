//! Which TUN device a packet came from. The side also names the packet's
//! direction through the firewall and so the chain of rules it meets:
//! packets from the LAN travel outbound, packets from the WAN inbound.

use serde::Serialize;

/// Which TUN device a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The LAN device: packets from here travel outbound.
    Lan = 0,
    /// The WAN device: packets from here travel inbound.
    Wan = 1,
}

impl Side {
    /// Both sides, LAN first (the order of per-side counter arrays).
    pub const BOTH: [Side; 2] = [Side::Lan, Side::Wan];

    /// The other device: where a forwarded packet is written.
    pub fn other(self) -> Side {
        match self {
            Side::Lan => Side::Wan,
            Side::Wan => Side::Lan,
        }
    }

    /// 0 for LAN, 1 for WAN: the slot in per-side arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `lan` or `wan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Lan => "lan",
            Side::Wan => "wan",
        }
    }

    /// The direction of travel of a packet from this side, which names its
    /// chain: `outbound` (from the LAN, the seed's OUTPUT chain) or
    /// `inbound` (from the WAN, the seed's INPUT chain).
    pub fn direction(self) -> &'static str {
        match self {
            Side::Lan => "outbound",
            Side::Wan => "inbound",
        }
    }
}
