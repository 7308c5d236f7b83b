//! UDP tracking: unreplied, then "stream" once a reply was seen and two
//! seconds have passed (kernel `nf_conntrack_udp_packet`).

use core::time::Duration;

use crate::time::Instant;

/// UDP timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpTimeouts {
    /// Before a reply, or within two seconds of creation (default 30 s).
    pub unreplied: Duration,
    /// Once replied and older than two seconds: a "stream" (default 120 s).
    pub replied: Duration,
}

impl Default for UdpTimeouts {
    fn default() -> Self {
        UdpTimeouts {
            unreplied: Duration::from_secs(30),
            replied: Duration::from_secs(120),
        }
    }
}

/// Per-flow UDP state: when the flow may become a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConn {
    /// Creation + 2 s.
    pub stream_after: Instant,
}

/// The outcome of one UDP packet: the new timeout and whether the flow
/// becomes ASSURED now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpOutcome {
    /// Timeout from now.
    pub timeout: Duration,
    /// Set ASSURED.
    pub assured: bool,
}

impl UdpConn {
    /// State for a flow created at `now`.
    pub fn new(now: Instant) -> UdpConn {
        UdpConn {
            stream_after: now + Duration::from_secs(2),
        }
    }

    /// Track one packet; `seen_reply` is the flow's status before this packet.
    pub fn packet(&self, seen_reply: bool, now: Instant, t: &UdpTimeouts) -> UdpOutcome {
        if seen_reply && now > self.stream_after {
            UdpOutcome {
                timeout: t.replied,
                assured: true,
            }
        } else {
            UdpOutcome {
                timeout: t.unreplied,
                assured: false,
            }
        }
    }
}
