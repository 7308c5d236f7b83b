//! The state of a packet as rules see it (`-m state --state`).

use serde::Serialize;

/// The state of a packet as rules see it (`-m state --state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum CtState {
    /// Starts a new flow.
    New,
    /// Belongs to a flow that has seen traffic both ways (any reply-direction packet).
    Established,
    /// Starts a flow related to another (ICMP error, expected FTP data).
    Related,
    /// Could not be tracked.
    Invalid,
    /// Never tracked, by design: IPv6 neighbour discovery and multicast
    /// listener messages (`--state UNTRACKED`).
    Untracked,
}

impl CtState {
    /// Every state, in the order above.
    pub const ALL: [CtState; 5] = [
        CtState::New,
        CtState::Established,
        CtState::Related,
        CtState::Invalid,
        CtState::Untracked,
    ];

    /// A bit for state sets: NEW=1, ESTABLISHED=2, RELATED=4, INVALID=8, UNTRACKED=16.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The iptables name.
    pub fn as_str(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
        }
    }
}
