//! TCP timeouts: the per-state values and the kernel's choice among them
//! and its caps after each accepted packet.

use core::time::Duration;

use super::states::TcpState;

/// TCP timeouts, per state, plus the kernel's caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTimeouts {
    /// SYN_SENT (default 120 s).
    pub syn_sent: Duration,
    /// SYN_RECV (default 60 s).
    pub syn_recv: Duration,
    /// ESTABLISHED (default 5 days).
    pub established: Duration,
    /// FIN_WAIT (default 120 s).
    pub fin_wait: Duration,
    /// CLOSE_WAIT (default 60 s).
    pub close_wait: Duration,
    /// LAST_ACK (default 30 s).
    pub last_ack: Duration,
    /// TIME_WAIT (default 120 s).
    pub time_wait: Duration,
    /// CLOSE, and any RST (default 10 s).
    pub close: Duration,
    /// SYN_SENT2 (default 120 s).
    pub syn_sent2: Duration,
    /// Cap after `max_retrans` identical retransmissions, or a zero window (default 300 s).
    pub max_retrans: Duration,
    /// Cap while data is unacknowledged, and for picked-up flows without reply (default 300 s).
    pub unacknowledged: Duration,
}

impl Default for TcpTimeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        TcpTimeouts {
            syn_sent: s(120),
            syn_recv: s(60),
            established: s(432_000),
            fin_wait: s(120),
            close_wait: s(60),
            last_ack: s(30),
            time_wait: s(120),
            close: s(10),
            syn_sent2: s(120),
            max_retrans: s(300),
            unacknowledged: s(300),
        }
    }
}

impl TcpTimeouts {
    /// The timeout of a state.
    #[inline]
    pub fn of(&self, state: TcpState) -> Duration {
        match state {
            TcpState::None => self.close,
            TcpState::SynSent => self.syn_sent,
            TcpState::SynRecv => self.syn_recv,
            TcpState::Established => self.established,
            TcpState::FinWait => self.fin_wait,
            TcpState::CloseWait => self.close_wait,
            TcpState::LastAck => self.last_ack,
            TcpState::TimeWait => self.time_wait,
            TcpState::Close => self.close,
            TcpState::SynSent2 => self.syn_sent2,
        }
    }
}

/// What the timeout choice depends on, after a packet was accepted.
pub(super) struct TimeoutFacts {
    /// The state the flow is now in.
    pub state: TcpState,
    /// Identical retransmissions reached `max_retrans`.
    pub retransmitting: bool,
    /// The packet was a RST.
    pub rst: bool,
    /// Either side has data in flight that was not acknowledged.
    pub unacknowledged: bool,
    /// The last window seen (ACK class) was zero.
    pub zero_window: bool,
}

impl TcpTimeouts {
    /// The kernel's choice in `tcp_packet`: the state's timeout, capped by
    /// `max_retrans` while retransmitting or on a zero window and by
    /// `unacknowledged` while data is in flight; a RST gives `close`.
    #[inline]
    pub(super) fn choose(&self, facts: &TimeoutFacts) -> Duration {
        let state_timeout = self.of(facts.state);
        if facts.retransmitting && state_timeout > self.max_retrans {
            self.max_retrans
        } else if facts.rst {
            self.close
        } else if facts.unacknowledged && state_timeout > self.unacknowledged {
            self.unacknowledged
        } else if facts.zero_window && state_timeout > self.max_retrans {
            self.max_retrans
        } else {
            state_timeout
        }
    }
}
