//! TCP connection tracking: Linux's state table, flag validation, window
//! tracking (`tcp_in_window`), RST/FIN teardown and TIME_WAIT reuse.
//!
//! The transition table, the checks and their order follow
//! `net/netfilter/nf_conntrack_proto_tcp.c`; see `shared/reference` and the
//! README's "differences from Linux" for what is not (yet) modelled.

use core::time::Duration;

use serde::Serialize;

use super::Dir;
use crate::packet::{tcp_flags as f, TcpInfo};
use crate::stats::InvalidReason;

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
}

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

/// TCP tracking switches, as the kernel's sysctls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// `nf_conntrack_tcp_loose`: pick up flows from a mid-stream ACK.
    pub loose: bool,
    /// `nf_conntrack_tcp_be_liberal`: never mark out-of-window packets INVALID.
    pub be_liberal: bool,
    /// `nf_conntrack_tcp_max_retrans` (default 3).
    pub max_retrans: u8,
    /// Per-state timeouts.
    pub timeouts: TcpTimeouts,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            loose: true,
            be_liberal: false,
            max_retrans: 3,
            timeouts: TcpTimeouts::default(),
        }
    }
}

/// Packet class, the table's row: checked in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Syn = 0,
    SynAck,
    Fin,
    Ack,
    Rst,
    None,
}

impl Class {
    fn of(seg: &TcpInfo<'_>) -> Class {
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
enum Next {
    To(TcpState),
    Iv,
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

/// Per-direction window flags (the kernel's `IP_CT_TCP_FLAG_*`).
mod wflag {
    pub const WINDOW_SCALE: u8 = 0x01;
    pub const SACK_PERM: u8 = 0x02;
    pub const CLOSE_INIT: u8 = 0x04;
    pub const BE_LIBERAL: u8 = 0x08;
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    pub const MAXACK_SET: u8 = 0x20;
}

/// What one direction of the flow has sent (the kernel's `ip_ct_tcp_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerWindow {
    /// Highest seq + len sent.
    pub td_end: u32,
    /// Highest ack + window seen from the peer (what we may send up to).
    pub td_maxend: u32,
    /// Largest window advertised (scaled).
    pub td_maxwin: u32,
    /// Highest ack sent.
    pub td_maxack: u32,
    /// Window scale from the SYN option (0..=14).
    pub td_scale: u8,
    flags: u8,
}

/// The tracker of one TCP flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConn {
    /// Current state.
    pub state: TcpState,
    /// Window data per direction (index = [`Dir`]).
    pub seen: [PeerWindow; 2],
    last_class: Class,
    last_dir: Dir,
    retrans: u8,
    last_seq: u32,
    last_ack: u32,
    last_end: u32,
    last_win: u16,
    last_wscale: u8,
    last_flags: u8,
    /// Kernel `IP_CT_EXP_CHALLENGE_ACK` and `IP_CT_TCP_SIMULTANEOUS_OPEN`.
    marks: u8,
}

/// Bits of [`TcpConn::marks`].
mod mark {
    /// A SYN was ignored in LAST_ACK: the next ACK from the other side may be
    /// an RFC 5961 challenge ACK, not the ACK of the last FIN.
    pub const CHALLENGE_ACK: u8 = 0x01;
    /// Both sides sent a SYN (SYN_SENT2 was reached).
    pub const SIMULTANEOUS_OPEN: u8 = 0x02;
}

/// What the tracker decided about one packet of an existing flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOutcome {
    /// In window: accept, refresh the flow with this timeout.
    Accept {
        /// New timeout from now.
        timeout: Duration,
        /// The flow just became ASSURED.
        assured: bool,
        /// Delete the flow now (RST before any reply).
        kill: bool,
    },
    /// Accept without touching the timeout (SYN retransmit before any reply).
    AcceptNoRefresh,
    /// Accept without a state change (out of sync, or ignorable out-of-window).
    Ignore,
    /// A SYN reopening a closed or aborted flow: delete it and track the packet as new.
    Reopen,
    /// The packet is INVALID.
    Invalid(InvalidReason),
    /// The packet is INVALID, and the flow's remaining timeout, when it is
    /// 120 s or more, is capped at the `unacknowledged` timeout (a RST or FIN
    /// out of window answering the other side's RST or FIN: a dead flow).
    InvalidCapTimeout(InvalidReason),
}

/// Kernel sequence comparison (mod 2^32): `a` comes before `b`.
pub(crate) fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Kernel sequence comparison (mod 2^32): `a` comes after `b`.
pub(crate) fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// Flag validity as `tcp_error` checks it: after masking ECE, CWR and PSH only
/// SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK, ACK|URG are legal.
pub fn flags_valid(flags: u8) -> bool {
    let m = flags & !(f::ECE | f::CWR | f::PSH);
    matches!(
        m,
        x if x == f::SYN
            || x == f::SYN | f::URG
            || x == f::SYN | f::ACK
            || x == f::RST
            || x == f::RST | f::ACK
            || x == f::FIN | f::ACK
            || x == f::FIN | f::ACK | f::URG
            || x == f::ACK
            || x == f::ACK | f::URG
    )
}

/// TCP options as (kind, data) pairs, stopping at the end-of-list option or
/// at the first malformed option (as the kernel's parsers do). Never allocates.
fn tcp_options(options: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 0;
    core::iter::from_fn(move || loop {
        let kind = *options.get(i)?;
        match kind {
            0 => return None,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*options.get(i + 1)?);
        if len < 2 || i + len > options.len() {
            return None;
        }
        let data = &options[i + 2..i + len];
        i += len;
        return Some((kind, data));
    })
}

/// Window scale and SACK-permitted from a SYN's options (kernel `tcp_options`).
fn parse_syn_options(options: &[u8], peer: &mut PeerWindow) {
    peer.td_scale = 0;
    peer.flags &= !(wflag::WINDOW_SCALE | wflag::SACK_PERM);
    for (kind, data) in tcp_options(options) {
        match (kind, data) {
            (4, []) => peer.flags |= wflag::SACK_PERM,
            (3, &[scale]) => {
                peer.flags |= wflag::WINDOW_SCALE;
                peer.td_scale = scale.min(14);
            }
            _ => {}
        }
    }
}

/// The highest SACK right edge after `ack` (kernel `tcp_sack`).
fn sack_edge(options: &[u8], ack: u32) -> u32 {
    let mut sack = ack;
    for (kind, data) in tcp_options(options) {
        if kind == 5 && data.len() >= 8 && data.len() % 8 == 0 {
            for block in data.chunks_exact(8) {
                let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                if after(right, sack) {
                    sack = right;
                }
            }
            return sack;
        }
    }
    sack
}

enum WindowVerdict {
    Accept,
    Ignore,
    Invalid(InvalidReason),
}

/// The kernel's `nf_tcp_log_invalid`: with liberal tracking a failed check
/// accepts the packet; otherwise it gets `verdict`.
fn lenient(liberal: bool, verdict: WindowVerdict) -> WindowVerdict {
    if liberal {
        WindowVerdict::Accept
    } else {
        verdict
    }
}

impl TcpConn {
    /// Start tracking from the first packet of a flow (kernel `tcp_new`).
    ///
    /// Returns INVALID when the first packet cannot start a flow: only a SYN,
    /// or with `loose` an ACK (picked up mid-stream, then tracked liberally).
    pub fn new(seg: &TcpInfo<'_>, cfg: &TcpConfig) -> Result<TcpConn, InvalidReason> {
        if !flags_valid(seg.flags) {
            return Err(InvalidReason::TcpBadFlags);
        }
        let mut conn = TcpConn {
            state: TcpState::None,
            seen: [PeerWindow::default(); 2],
            last_class: Class::None,
            last_dir: Dir::Original,
            retrans: 0,
            last_seq: 0,
            last_ack: 0,
            last_end: 0,
            last_win: 0,
            last_wscale: 0,
            last_flags: 0,
            marks: 0,
        };
        let class = Class::of(seg);
        let sender = &mut conn.seen[0];
        match TABLE[0][class as usize][TcpState::None as usize] {
            Next::To(TcpState::SynSent) => {
                sender.td_end = seg.seq_end();
                sender.td_maxwin = u32::from(seg.window).max(1);
                sender.td_maxend = sender.td_end;
                parse_syn_options(seg.options, sender);
            }
            Next::To(_) if cfg.loose => {
                sender.td_end = seg.seq_end();
                sender.td_maxwin = u32::from(seg.window).max(1);
                sender.td_maxend = sender.td_end.wrapping_add(sender.td_maxwin);
                let liberal = wflag::SACK_PERM | wflag::BE_LIBERAL;
                conn.seen[0].flags = liberal;
                conn.seen[1].flags = liberal;
            }
            _ => return Err(InvalidReason::TcpInvalidNew),
        }
        Ok(conn)
    }

    /// Whether the flow is in a state where a RST needs no sequence checks.
    fn can_early_drop(&self) -> bool {
        matches!(
            self.state,
            TcpState::FinWait
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Close
                | TcpState::CloseWait
        )
    }

    /// Whether the flow is fully established and assured.
    fn established_assured(&self, assured: bool) -> bool {
        self.state == TcpState::Established && assured
    }

    /// Track one packet of the flow (kernel `tcp_packet`).
    ///
    /// `seen_reply` and `assured` are the flow's status before this packet.
    pub fn packet(
        &mut self,
        dir: Dir,
        seg: &TcpInfo<'_>,
        seen_reply: bool,
        assured: bool,
        cfg: &TcpConfig,
    ) -> TcpOutcome {
        if !flags_valid(seg.flags) {
            return TcpOutcome::Invalid(InvalidReason::TcpBadFlags);
        }
        let mut old = self.state;
        let class = Class::of(seg);
        let d = dir as usize;
        let mut next = TABLE[d][class as usize][old as usize];
        let mut skip_window = false;

        if next == SS && old >= TcpState::TimeWait {
            // A SYN on a closed or aborted tuple: if either side initiated the
            // close, or the last packet this way was a RST, start afresh.
            let closing = (self.seen[0].flags | self.seen[1].flags) & wflag::CLOSE_INIT != 0;
            if closing || (self.last_dir == dir && self.last_class == Class::Rst) {
                return TcpOutcome::Reopen;
            }
            next = IG;
        }
        match next {
            Next::Ig => {
                if class == Class::SynAck
                    && self.last_class == Class::Syn
                    && self.last_dir != dir
                    && seg.ack == self.last_end
                {
                    // The SYN/ACK acknowledges a SYN we ignored: both ends are in
                    // sync and we are not; resync from the remembered SYN.
                    old = TcpState::SynSent;
                    next = SR;
                    let ld = self.last_dir as usize;
                    self.seen[ld] = PeerWindow {
                        td_end: self.last_end,
                        td_maxend: self.last_end,
                        td_maxwin: u32::from(self.last_win).max(1),
                        td_maxack: 0,
                        td_scale: self.last_wscale,
                        flags: self.last_flags,
                    };
                    self.seen[d] = PeerWindow::default();
                } else {
                    self.last_class = class;
                    self.last_dir = dir;
                    self.last_seq = seg.seq;
                    self.last_end = seg.seq_end();
                    self.last_win = seg.window;
                    if class == Class::Syn && dir == Dir::Original {
                        let mut opts = PeerWindow::default();
                        parse_syn_options(seg.options, &mut opts);
                        self.last_flags = opts.flags & (wflag::WINDOW_SCALE | wflag::SACK_PERM);
                        self.last_wscale = opts.td_scale;
                        // RFC 5961: the peer may answer with a challenge ACK,
                        // which in LAST_ACK must not be taken for the last ACK.
                        if old == TcpState::LastAck {
                            self.marks |= mark::CHALLENGE_ACK;
                        }
                    }
                    // A possible challenge ACK answering the SYN.
                    if old == TcpState::SynSent && class == Class::Ack && dir == Dir::Reply {
                        self.last_ack = seg.ack;
                    }
                    return TcpOutcome::Ignore;
                }
            }
            Next::Iv => return TcpOutcome::Invalid(InvalidReason::TcpInvalidState),
            Next::To(TcpState::TimeWait)
                if old == TcpState::LastAck
                    && class == Class::Ack
                    && self.last_dir != dir
                    && self.last_class == Class::Syn
                    && self.marks & mark::CHALLENGE_ACK != 0 =>
            {
                // The challenge ACK answering a SYN ignored in LAST_ACK.
                self.marks &= !mark::CHALLENGE_ACK;
                return TcpOutcome::AcceptNoRefresh;
            }
            Next::To(TcpState::SynSent2) => self.marks |= mark::SIMULTANEOUS_OPEN,
            Next::To(TcpState::SynRecv)
                if dir == Dir::Reply
                    && class == Class::Ack
                    && self.marks & mark::SIMULTANEOUS_OPEN != 0 =>
            {
                next = ES;
            }
            Next::To(TcpState::Close) if class == Class::Rst => {
                match self.check_rst(dir, seg, seen_reply, assured, old) {
                    RstCheck::Invalid => {
                        return TcpOutcome::Invalid(InvalidReason::TcpInvalidRst);
                    }
                    RstCheck::SkipWindow => skip_window = true,
                    RstCheck::KeepState => next = Next::To(old),
                    RstCheck::Window => {}
                }
            }
            Next::To(_) => {}
        }
        let Next::To(new) = next else {
            return TcpOutcome::Invalid(InvalidReason::TcpInvalidState);
        };

        if !skip_window {
            match self.in_window(dir, class, seg, cfg) {
                WindowVerdict::Accept => {}
                WindowVerdict::Ignore => return TcpOutcome::Ignore,
                WindowVerdict::Invalid(r) => return self.handle_invalid(dir, class, assured, r),
            }
        }

        self.last_class = class;
        self.last_dir = dir;
        self.state = new;
        if old != new && new == TcpState::FinWait {
            self.seen[d].flags |= wflag::CLOSE_INIT;
        }

        let t = &cfg.timeouts;
        let state_timeout = t.of(new);
        let unacked = (self.seen[0].flags | self.seen[1].flags) & wflag::DATA_UNACKNOWLEDGED != 0;
        let mut timeout = if self.retrans >= cfg.max_retrans && state_timeout > t.max_retrans {
            t.max_retrans
        } else if class == Class::Rst {
            t.close
        } else if unacked && state_timeout > t.unacknowledged {
            t.unacknowledged
        } else if self.last_win == 0 && state_timeout > t.max_retrans {
            t.max_retrans
        } else {
            state_timeout
        };

        if !seen_reply {
            if seg.has(f::RST) {
                return TcpOutcome::Accept {
                    timeout,
                    assured: false,
                    kill: true,
                };
            }
            if class == Class::Syn && old == TcpState::SynSent {
                return TcpOutcome::AcceptNoRefresh;
            }
            if new == TcpState::Established && timeout > t.unacknowledged {
                timeout = t.unacknowledged;
            }
            return TcpOutcome::Accept {
                timeout,
                assured: false,
                kill: false,
            };
        }
        let becomes_assured = !assured
            && (old == TcpState::SynRecv || old == TcpState::Established)
            && new == TcpState::Established;
        TcpOutcome::Accept {
            timeout,
            assured: becomes_assured,
            kill: false,
        }
    }

    /// The kernel's `nf_tcp_handle_invalid`: an out-of-window RST or FIN on
    /// an ASSURED flow is remembered as the last packet (so that what follows
    /// is judged against it), or, when it answers the other side's RST or
    /// FIN, shortens the flow's life.
    fn handle_invalid(
        &mut self,
        dir: Dir,
        class: Class,
        assured: bool,
        r: InvalidReason,
    ) -> TcpOutcome {
        if !assured || !matches!(class, Class::Rst | Class::Fin) {
            return TcpOutcome::Invalid(r);
        }
        if self.last_dir != dir && matches!(self.last_class, Class::Fin | Class::Rst) {
            return TcpOutcome::InvalidCapTimeout(r);
        }
        self.last_class = class;
        self.last_dir = dir;
        TcpOutcome::Invalid(r)
    }

    fn check_rst(
        &self,
        dir: Dir,
        seg: &TcpInfo<'_>,
        seen_reply: bool,
        assured: bool,
        old: TcpState,
    ) -> RstCheck {
        if self.can_early_drop() {
            return RstCheck::SkipWindow;
        }
        let peer = &self.seen[dir.other() as usize];
        if peer.flags & wflag::MAXACK_SET != 0 && self.last_class != Class::Syn {
            let seq = seg.seq;
            let established = self.established_assured(assured);
            if seq == 0 && !established {
                return RstCheck::Window;
            }
            if before(seq, peer.td_maxack) {
                return RstCheck::Invalid;
            }
            if !established || seq == peer.td_maxack {
                return RstCheck::Window;
            }
            if self.last_class == Class::Ack && self.last_dir == dir && seq == self.last_end {
                return RstCheck::Window;
            }
            // In window but not exact: keep the state so that a challenge ACK
            // can follow (RFC 5961).
            return RstCheck::KeepState;
        }
        if ((seen_reply && self.last_class == Class::Syn)
            || (!assured && self.last_class == Class::Ack))
            && self.last_dir != dir
            && seg.ack == self.last_end
        {
            // RST answering (from the other side) a SYN or ACK we let through
            // while out of sync. Linux 6.18 requires the RST to come from the
            // other direction than that packet: the parity harness shows a
            // same-direction RST with a matching ack going to the window
            // checks there (netns-tests/parity, random seed 20261125).
            return RstCheck::SkipWindow;
        }
        if old == TcpState::SynSent
            && self.last_class == Class::Ack
            && self.last_dir == Dir::Reply
            && seg.seq == self.last_ack
        {
            // RST answering a challenge ACK we let through.
            return RstCheck::SkipWindow;
        }
        RstCheck::Window
    }

    /// The kernel's `tcp_init_sender`: a SYN (or SYN/ACK) sets what its
    /// sender has sent and may send; window scaling needs both SYNs' option.
    fn init_sender(&mut self, d: usize, end: u32, win: u32, options: &[u8]) {
        let (sender, receiver) = pair_mut(&mut self.seen, d);
        sender.td_end = end;
        sender.td_maxend = end;
        sender.td_maxwin = win.max(1);
        parse_syn_options(options, sender);
        if !(sender.flags & wflag::WINDOW_SCALE != 0 && receiver.flags & wflag::WINDOW_SCALE != 0) {
            sender.td_scale = 0;
            receiver.td_scale = 0;
        }
    }

    /// The kernel's `tcp_in_window`: checks I to IV and the window bookkeeping.
    fn in_window(
        &mut self,
        dir: Dir,
        class: Class,
        seg: &TcpInfo<'_>,
        cfg: &TcpConfig,
    ) -> WindowVerdict {
        let d = dir as usize;
        let r = 1 - d;
        let seq = seg.seq;
        let mut ack = seg.ack;
        let mut sack = ack;
        let mut win = u32::from(seg.window);
        let end = seg.seq_end();
        let syn = seg.has(f::SYN);
        let has_ack = seg.has(f::ACK);

        if self.seen[r].flags & wflag::SACK_PERM != 0 {
            sack = sack_edge(seg.options, ack);
        }

        if self.seen[d].td_maxwin == 0 {
            // First packet in this direction: initialise the sender.
            if syn {
                self.init_sender(d, end, win, seg.options);
                if !has_ack {
                    // Simultaneous open.
                    return WindowVerdict::Accept;
                }
            } else {
                let (sender, receiver) = pair_mut(&mut self.seen, d);
                sender.td_end = end;
                let swin = win << sender.td_scale;
                sender.td_maxwin = swin.max(1);
                sender.td_maxend = end.wrapping_add(sender.td_maxwin);
                if receiver.td_maxwin == 0 {
                    receiver.td_end = sack;
                    receiver.td_maxend = sack;
                } else if sack == receiver.td_end.wrapping_add(1) {
                    // Likely the answer to a keepalive.
                    receiver.td_end = receiver.td_end.wrapping_add(1);
                }
            }
        } else if syn
            && after(end, self.seen[d].td_end)
            && matches!(self.state, TcpState::SynSent | TcpState::SynRecv)
        {
            // RFC 793: a reinitialised TCP uses higher sequence numbers; re-init.
            self.init_sender(d, end, win, seg.options);
            if dir == Dir::Reply && !has_ack {
                return WindowVerdict::Accept;
            }
        }

        if !has_ack {
            ack = self.seen[r].td_end;
            sack = ack;
        } else if seg.has(f::RST | f::ACK) && ack == 0 {
            // Broken stacks that set ACK on RST with a zero ack.
            ack = self.seen[r].td_end;
            sack = ack;
        }

        // Older kernels skipped the sequence checks for segments without data
        // ("seq = end = sender->td_end"); the kernels tunfw is measured
        // against check them like any other segment (netns-tests/parity:
        // a bare ACK far beyond the window is INVALID there).

        let liberal = cfg.be_liberal || self.seen[d].flags & wflag::BE_LIBERAL != 0;
        let sender = self.seen[d];
        let receiver = self.seen[r];
        let max_ack_window = sender.td_maxwin.max(66_000);

        // Whether the segment ends above the lowest sequence the receiver may
        // still accept (the lower bound of check II).
        let above_lower_bound = after(
            end,
            sender
                .td_end
                .wrapping_sub(receiver.td_maxwin)
                .wrapping_sub(1),
        );
        let ack_not_too_old = after(
            sack,
            receiver.td_end.wrapping_sub(max_ack_window).wrapping_sub(1),
        );

        // Check I: the sequence is within what the receiver allowed.
        if !before(seq, sender.td_maxend.wrapping_add(1)) {
            let overshot = end.wrapping_sub(sender.td_maxend).wrapping_add(1);
            if receiver.td_maxwin != 0
                && above_lower_bound
                && ack_not_too_old
                && overshot <= receiver.td_maxwin
                && before(sack, receiver.td_end.wrapping_add(1))
            {
                // More bytes than the window allowed: accept as "ignore", but
                // remember the data so that its ACK passes check III later.
                self.seen[d].td_end = end;
                self.seen[d].flags |= wflag::DATA_UNACKNOWLEDGED;
                return lenient(liberal, WindowVerdict::Ignore);
            }
            return lenient(
                liberal,
                WindowVerdict::Invalid(InvalidReason::TcpSeqOverWindow),
            );
        }
        // Check III: no ACK of data not yet sent.
        if !before(sack, receiver.td_end.wrapping_add(1)) {
            return lenient(
                liberal,
                WindowVerdict::Invalid(InvalidReason::TcpAckUnsentData),
            );
        }
        // Check II: the segment ends inside the receive window (old
        // retransmits are ignored); no window seen yet means no bound.
        if receiver.td_maxwin != 0 && !above_lower_bound {
            return lenient(liberal, WindowVerdict::Ignore);
        }
        // Check IV: the ACK is not too old.
        if !ack_not_too_old {
            return lenient(liberal, WindowVerdict::Ignore);
        }

        if !syn {
            win <<= sender.td_scale;
        }
        let (sender, receiver) = pair_mut(&mut self.seen, d);
        let swin = win.wrapping_add(sack.wrapping_sub(ack));
        if sender.td_maxwin < swin {
            sender.td_maxwin = swin;
        }
        if after(end, sender.td_end) {
            sender.td_end = end;
            sender.flags |= wflag::DATA_UNACKNOWLEDGED;
        }
        if has_ack {
            if sender.flags & wflag::MAXACK_SET == 0 {
                sender.td_maxack = ack;
                sender.flags |= wflag::MAXACK_SET;
            } else if after(ack, sender.td_maxack) {
                sender.td_maxack = ack;
            }
        }
        if receiver.td_maxwin != 0 && after(end, sender.td_maxend) {
            receiver.td_maxwin = receiver
                .td_maxwin
                .wrapping_add(end.wrapping_sub(sender.td_maxend));
        }
        if after(sack.wrapping_add(win), receiver.td_maxend.wrapping_sub(1)) {
            receiver.td_maxend = sack.wrapping_add(win);
            if win == 0 {
                receiver.td_maxend = receiver.td_maxend.wrapping_add(1);
            }
        }
        if ack == receiver.td_end {
            receiver.flags &= !wflag::DATA_UNACKNOWLEDGED;
        }

        // Retransmission counting (identical ACK-class segments in a row).
        if class == Class::Ack {
            // The kernel keeps last_win in 16 bits and truncates the scaled window.
            let win16 = win as u16;
            if self.last_dir == dir
                && self.last_seq == seq
                && self.last_ack == ack
                && self.last_end == end
                && self.last_win == win16
            {
                self.retrans = self.retrans.saturating_add(1);
            } else {
                self.last_dir = dir;
                self.last_seq = seq;
                self.last_ack = ack;
                self.last_end = end;
                self.last_win = win16;
                self.retrans = 0;
            }
        }
        WindowVerdict::Accept
    }
}

enum RstCheck {
    Invalid,
    SkipWindow,
    KeepState,
    Window,
}

fn pair_mut(seen: &mut [PeerWindow; 2], sender: usize) -> (&mut PeerWindow, &mut PeerWindow) {
    let (a, b) = seen.split_at_mut(1);
    if sender == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}
