//! TCP connection tracking: Linux's state table, flag validation, window
//! tracking (`tcp_in_window`), RST/FIN teardown and TIME_WAIT reuse.
//!
//! The transition table, the checks and their order follow
//! `net/netfilter/nf_conntrack_proto_tcp.c` (Linux 6.18); the README's
//! "Differences from Linux" lists what is not modelled. One packet goes
//! through [`TcpConn::packet`] in these steps, each in its own place:
//! the transition lookup and its special cases ([`states`]), the checks of
//! a closing RST (`rst`), the window checks and their bookkeeping
//! ([`window`]), and the choice of timeout ([`timeout`]).

mod last;
mod rst;
mod snapshot;
pub mod states;
pub mod timeout;
pub mod window;

use core::time::Duration;

use super::tuple::Dir;
use crate::packet::TcpInfo;
use crate::stats::InvalidReason;
use crate::wire::tcp::{flags as f, SeqNum};
use last::LastSegment;
use rst::RstCheck;
use states::{transition, Class, Next};
use window::{PeerWindow, Segment, WindowCheck};

pub use states::{flags_valid, TcpState};
pub use timeout::TcpTimeouts;

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

/// The tracker of one TCP flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConn {
    /// Current state.
    pub state: TcpState,
    /// Window data per direction (index [`Dir::index`]).
    pub seen: [PeerWindow; 2],
    last: LastSegment,
    /// Identical ACK-class segments in a row.
    retrans: u8,
    /// A SYN was ignored in LAST_ACK: the next ACK from the other side may
    /// be an RFC 5961 challenge ACK, not the ACK of the last FIN (the
    /// kernel's `IP_CT_EXP_CHALLENGE_ACK`).
    challenge_ack_expected: bool,
    /// Both sides sent a SYN: SYN_SENT2 was reached (`IP_CT_TCP_SIMULTANEOUS_OPEN`).
    simultaneous_open: bool,
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

/// What the window step decided.
enum WindowVerdict {
    Accept,
    Ignore,
    Invalid(InvalidReason),
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
            last: LastSegment {
                class: Class::None,
                dir: Dir::Original,
                seq: SeqNum(0),
                ack: SeqNum(0),
                end: SeqNum(0),
                win: 0,
                wscale: 0,
                window_scale: false,
                sack_permitted: false,
            },
            retrans: 0,
            challenge_ack_expected: false,
            simultaneous_open: false,
        };
        let sender = &mut conn.seen[0];
        match transition(Dir::Original, Class::of(seg), TcpState::None) {
            Next::To(TcpState::SynSent) => {
                sender.td_end = seg.seq_end();
                sender.td_maxwin = u32::from(seg.window).max(1);
                sender.td_maxend = sender.td_end;
                sender.read_syn_options(seg.options);
            }
            Next::To(_) if cfg.loose => {
                sender.td_end = seg.seq_end();
                sender.td_maxwin = u32::from(seg.window).max(1);
                sender.td_maxend = sender.td_end + sender.td_maxwin;
                for peer in &mut conn.seen {
                    peer.set_sack_permitted(true);
                    peer.set_be_liberal(true);
                }
            }
            _ => return Err(InvalidReason::TcpInvalidNew),
        }
        Ok(conn)
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
        self.packet_adjusted(dir, seg, 0, (seen_reply, assured), cfg)
    }

    /// [`TcpConn::packet`] for a segment whose acknowledgement (and SACK
    /// edge) is `ack_offset` ahead of the other direction's sender's
    /// numbering, because a NAT helper moved that direction's sequence
    /// numbers ([`crate::conntrack::seqadj`]): the window checks subtract
    /// it first, as the kernel's `tcp_in_window` subtracts its
    /// `receiver_offset`. `status` is the flow's (seen reply, assured).
    pub fn packet_adjusted(
        &mut self,
        dir: Dir,
        seg: &TcpInfo<'_>,
        ack_offset: u32,
        status: (bool, bool),
        cfg: &TcpConfig,
    ) -> TcpOutcome {
        let (seen_reply, assured) = status;
        if !flags_valid(seg.flags) {
            return TcpOutcome::Invalid(InvalidReason::TcpBadFlags);
        }
        let class = Class::of(seg);
        let (old, new, skip_window) = match self.resolve(dir, class, seg, seen_reply, assured) {
            Ok(step) => step,
            Err(outcome) => return outcome,
        };
        if !skip_window {
            match self.in_window(dir, class, seg, ack_offset, cfg) {
                WindowVerdict::Accept => {}
                WindowVerdict::Ignore => return TcpOutcome::Ignore,
                WindowVerdict::Invalid(r) => return self.handle_invalid(dir, class, assured, r),
            }
        }
        self.commit(dir, class, seg, old, new, seen_reply, assured, cfg)
    }

    /// The state table's answer for this packet, with the kernel's special
    /// cases: a SYN reopening a closed flow, the resync from an ignored SYN,
    /// the challenge ACK in LAST_ACK, simultaneous open, and the RST checks.
    /// `Ok((old, new, skip_window))` to go on; `Err` is the final outcome.
    fn resolve(
        &mut self,
        dir: Dir,
        class: Class,
        seg: &TcpInfo<'_>,
        seen_reply: bool,
        assured: bool,
    ) -> Result<(TcpState, TcpState, bool), TcpOutcome> {
        let mut old = self.state;
        let mut next = transition(dir, class, old);
        let mut skip_window = false;
        if next == Next::To(TcpState::SynSent) && old >= TcpState::TimeWait {
            // A SYN on a closed or aborted tuple: if either side initiated the
            // close, or the last packet this way was a RST, start afresh.
            let closing = self.seen.iter().any(|p| p.close_initiated());
            if closing || (self.last.dir == dir && self.last.class == Class::Rst) {
                return Err(TcpOutcome::Reopen);
            }
            next = Next::Ig;
        }
        match next {
            Next::Ig => {
                if !self.resync_from_ignored_syn(dir, class, seg) {
                    self.remember_ignored(dir, class, seg, old);
                    return Err(TcpOutcome::Ignore);
                }
                old = TcpState::SynSent;
                next = Next::To(TcpState::SynRecv);
            }
            Next::Iv => return Err(TcpOutcome::Invalid(InvalidReason::TcpInvalidState)),
            Next::To(TcpState::TimeWait)
                if old == TcpState::LastAck
                    && class == Class::Ack
                    && self.last.dir != dir
                    && self.last.class == Class::Syn
                    && self.challenge_ack_expected =>
            {
                // The challenge ACK answering a SYN ignored in LAST_ACK.
                self.challenge_ack_expected = false;
                return Err(TcpOutcome::AcceptNoRefresh);
            }
            Next::To(TcpState::SynSent2) => self.simultaneous_open = true,
            Next::To(TcpState::SynRecv)
                if dir == Dir::Reply && class == Class::Ack && self.simultaneous_open =>
            {
                next = Next::To(TcpState::Established);
            }
            Next::To(TcpState::Close) if class == Class::Rst => {
                match rst::check(
                    self.state,
                    &self.last,
                    &self.seen[dir.other().index()],
                    dir,
                    seg,
                    seen_reply,
                    assured,
                    old,
                ) {
                    RstCheck::Invalid => {
                        return Err(TcpOutcome::Invalid(InvalidReason::TcpInvalidRst))
                    }
                    RstCheck::SkipWindow => skip_window = true,
                    RstCheck::KeepState => next = Next::To(old),
                    RstCheck::Window => {}
                }
            }
            Next::To(_) => {}
        }
        match next {
            Next::To(new) => Ok((old, new, skip_window)),
            Next::Iv | Next::Ig => Err(TcpOutcome::Invalid(InvalidReason::TcpInvalidState)),
        }
    }

    /// A SYN/ACK that acknowledges a SYN we ignored: both ends are in sync
    /// and we are not; restore the sender from the remembered SYN. Returns
    /// whether it was one.
    fn resync_from_ignored_syn(&mut self, dir: Dir, class: Class, seg: &TcpInfo<'_>) -> bool {
        let last = self.last;
        if !(class == Class::SynAck
            && last.class == Class::Syn
            && last.dir != dir
            && seg.ack == last.end)
        {
            return false;
        }
        let mut sender = PeerWindow::default();
        sender.td_end = last.end;
        sender.td_maxend = last.end;
        sender.td_maxwin = u32::from(last.win).max(1);
        sender.td_scale = last.wscale;
        sender.set_window_scale(last.window_scale);
        sender.set_sack_permitted(last.sack_permitted);
        self.seen[last.dir.index()] = sender;
        self.seen[dir.index()] = PeerWindow::default();
        true
    }

    /// Remember an ignored packet, so that a later SYN/ACK acking it, a
    /// challenge ACK or a RST answering it is recognised.
    fn remember_ignored(&mut self, dir: Dir, class: Class, seg: &TcpInfo<'_>, old: TcpState) {
        let last = &mut self.last;
        last.class = class;
        last.dir = dir;
        last.seq = seg.seq;
        last.end = seg.seq_end();
        last.win = seg.window;
        if class == Class::Syn && dir == Dir::Original {
            let mut opts = PeerWindow::default();
            opts.read_syn_options(seg.options);
            last.window_scale = opts.window_scale();
            last.sack_permitted = opts.sack_permitted();
            last.wscale = opts.td_scale;
            // RFC 5961: the peer may answer with a challenge ACK, which in
            // LAST_ACK must not be taken for the last ACK.
            if old == TcpState::LastAck {
                self.challenge_ack_expected = true;
            }
        }
        // A possible challenge ACK answering the SYN.
        if old == TcpState::SynSent && class == Class::Ack && dir == Dir::Reply {
            self.last.ack = seg.ack;
        }
    }

    /// Move to `new` after the packet passed, and say what the flow's
    /// timeout and status become.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        dir: Dir,
        class: Class,
        seg: &TcpInfo<'_>,
        old: TcpState,
        new: TcpState,
        seen_reply: bool,
        assured: bool,
        cfg: &TcpConfig,
    ) -> TcpOutcome {
        self.last.class = class;
        self.last.dir = dir;
        self.state = new;
        if old != new && new == TcpState::FinWait {
            self.seen[dir.index()].set_close_initiated(true);
        }
        let t = &cfg.timeouts;
        let mut timeout = t.choose(&timeout::TimeoutFacts {
            state: new,
            retransmitting: self.retrans >= cfg.max_retrans,
            rst: class == Class::Rst,
            unacknowledged: self.seen.iter().any(|p| p.data_unacknowledged()),
            zero_window: self.last.win == 0,
        });
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
        if self.last.dir != dir && matches!(self.last.class, Class::Fin | Class::Rst) {
            return TcpOutcome::InvalidCapTimeout(r);
        }
        self.last.class = class;
        self.last.dir = dir;
        TcpOutcome::Invalid(r)
    }

    /// The window step of `tcp_in_window`: set up a sender seen for the
    /// first time (or re-initialised by a newer SYN), run the four checks
    /// ([`window::check`]), and record an accepted segment.
    fn in_window(
        &mut self,
        dir: Dir,
        class: Class,
        seg: &TcpInfo<'_>,
        ack_offset: u32,
        cfg: &TcpConfig,
    ) -> WindowVerdict {
        let (d, r) = (dir.index(), dir.other().index());
        let mut seg = *seg;
        seg.ack = SeqNum(seg.ack.0.wrapping_sub(ack_offset));
        let sack = window::raw_sack(&seg, &self.seen[r], ack_offset);
        let seg = &seg;
        let end = seg.seq_end();
        let win = u32::from(seg.window);
        let syn = seg.has(f::SYN);
        if window::init_direction(&mut self.seen, self.state, dir, seg, sack) {
            return WindowVerdict::Accept;
        }
        // Older kernels skipped the sequence checks for segments without data
        // ("seq = end = sender->td_end"); the kernels tunfw is measured
        // against check them like any other segment (netns-tests/parity:
        // a bare ACK far beyond the window is INVALID there).
        let facts = Segment::of(seg, sack, &self.seen[r]);
        let liberal = cfg.be_liberal || self.seen[d].be_liberal();
        // The kernel's `nf_tcp_log_invalid`: with liberal tracking a failed
        // check accepts the packet (without the bookkeeping).
        let lenient = |verdict| {
            if liberal {
                WindowVerdict::Accept
            } else {
                verdict
            }
        };
        match window::check(&self.seen[d], &self.seen[r], &facts) {
            WindowCheck::InWindow => {}
            WindowCheck::Overshoot => {
                let sender = &mut self.seen[d];
                sender.td_end = end;
                sender.set_data_unacknowledged(true);
                return lenient(WindowVerdict::Ignore);
            }
            WindowCheck::Old => return lenient(WindowVerdict::Ignore),
            WindowCheck::Invalid(reason) => return lenient(WindowVerdict::Invalid(reason)),
        }
        let scaled = if syn {
            win
        } else {
            win << self.seen[d].td_scale
        };
        let (sender, receiver) = window::pair_mut(&mut self.seen, d);
        window::record(sender, receiver, &facts, scaled);
        if class == Class::Ack {
            self.last
                .count_retransmission(&mut self.retrans, dir, &facts, scaled);
        }
        WindowVerdict::Accept
    }
}
