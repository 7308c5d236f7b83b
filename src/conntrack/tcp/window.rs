//! TCP window tracking (the kernel's `tcp_in_window`): what each direction
//! has sent and may send, the four window checks as one pure predicate,
//! and the bookkeeping of an accepted segment.

use super::super::tuple::Dir;
use super::states::TcpState;
use crate::packet::TcpInfo;
use crate::stats::InvalidReason;
use crate::wire::tcp::{self as wire_tcp, flags as f, SeqNum};

/// The largest window scale (RFC 7323); larger options are clamped.
const MAX_WINDOW_SCALE: u8 = 14;
/// The kernel's floor of check IV's ack window (`MAXACKWINDOW`).
const MIN_ACK_WINDOW: u32 = 66_000;

/// What one direction of the flow has sent (the kernel's `ip_ct_tcp_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerWindow {
    /// Highest seq + len sent.
    pub td_end: SeqNum,
    /// Highest ack + window seen from the peer (what we may send up to).
    pub td_maxend: SeqNum,
    /// Largest window advertised (scaled).
    pub td_maxwin: u32,
    /// Highest ack sent.
    pub td_maxack: SeqNum,
    /// Window scale from the SYN option (0..=14).
    pub td_scale: u8,
    /// The kernel's `IP_CT_TCP_FLAG_*` bits of this direction; read and set
    /// through the named methods below.
    flags: u8,
}

/// Bits of [`PeerWindow`]'s flags (the kernel's `IP_CT_TCP_FLAG_*`).
mod bit {
    pub const WINDOW_SCALE: u8 = 0x01;
    pub const SACK_PERMITTED: u8 = 0x02;
    pub const CLOSE_INITIATED: u8 = 0x04;
    pub const BE_LIBERAL: u8 = 0x08;
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    pub const MAXACK_SET: u8 = 0x20;
}

/// A getter and a setter for one flag bit.
macro_rules! flag {
    ($get:ident, $set:ident, $bit:expr, $doc:literal) => {
        #[doc = $doc]
        pub fn $get(&self) -> bool {
            self.flags & $bit != 0
        }

        #[doc = concat!("Set or clear: ", $doc)]
        pub fn $set(&mut self, on: bool) {
            if on {
                self.flags |= $bit;
            } else {
                self.flags &= !$bit;
            }
        }
    };
}

impl PeerWindow {
    flag!(
        window_scale,
        set_window_scale,
        bit::WINDOW_SCALE,
        "The SYN carried a window scale option."
    );
    flag!(
        sack_permitted,
        set_sack_permitted,
        bit::SACK_PERMITTED,
        "The SYN carried SACK-permitted (or the flow was picked up)."
    );
    flag!(
        close_initiated,
        set_close_initiated,
        bit::CLOSE_INITIATED,
        "This direction sent the first FIN."
    );
    flag!(
        be_liberal,
        set_be_liberal,
        bit::BE_LIBERAL,
        "Window checks never fail for this direction (picked-up flows)."
    );
    flag!(
        data_unacknowledged,
        set_data_unacknowledged,
        bit::DATA_UNACKNOWLEDGED,
        "This direction has sent data the other has not acknowledged."
    );
    flag!(
        maxack_set,
        set_maxack_set,
        bit::MAXACK_SET,
        "`td_maxack` holds an ack this direction sent."
    );

    /// Read a SYN's window scale and SACK-permitted options (kernel
    /// `tcp_options`).
    pub fn read_syn_options(&mut self, options: &[u8]) {
        self.td_scale = 0;
        self.set_window_scale(false);
        self.set_sack_permitted(false);
        for (kind, data) in wire_tcp::options(options) {
            match (kind, data) {
                (wire_tcp::option::SACK_PERMITTED, []) => self.set_sack_permitted(true),
                (wire_tcp::option::WINDOW_SCALE, &[scale]) => {
                    self.set_window_scale(true);
                    self.td_scale = scale.min(MAX_WINDOW_SCALE);
                }
                _ => {}
            }
        }
    }
}

/// The highest SACK right edge after `ack` (kernel `tcp_sack`).
fn sack_edge(options: &[u8], ack: SeqNum) -> SeqNum {
    let mut sack = ack;
    for (kind, data) in wire_tcp::options(options) {
        if kind == wire_tcp::option::SACK && data.len() >= 8 && data.len() % 8 == 0 {
            for block in data.chunks_exact(8) {
                let right = SeqNum(u32::from_be_bytes([block[4], block[5], block[6], block[7]]));
                if right.after(sack) {
                    sack = right;
                }
            }
            return sack;
        }
    }
    sack
}

/// The facts of a segment that the window checks read, with the ack the
/// kernel substitutes where the segment has none (or a broken zero one).
#[derive(Clone, Copy, Debug)]
pub(super) struct Segment {
    /// First sequence number.
    pub seq: SeqNum,
    /// seq + payload + SYN + FIN.
    pub end: SeqNum,
    /// The acknowledgment number (or the receiver's `td_end`).
    pub ack: SeqNum,
    /// The highest acknowledged edge, SACK blocks included.
    pub sack: SeqNum,
    /// ACK is set.
    pub has_ack: bool,
}

/// The segment's acknowledged edge, its SACK blocks included when the
/// receiver permitted SACK (the kernel reads this before initialising a
/// sender).
/// `seg.ack` is already in the receiver's numbering; its SACK blocks are
/// `ack_offset` ahead of it (a NAT helper's sequence adjustment).
#[inline]
pub(super) fn raw_sack(seg: &TcpInfo<'_>, receiver: &PeerWindow, ack_offset: u32) -> SeqNum {
    if receiver.sack_permitted() {
        let adjusted = SeqNum(seg.ack.0.wrapping_add(ack_offset));
        SeqNum(sack_edge(seg.options, adjusted).0.wrapping_sub(ack_offset))
    } else {
        seg.ack
    }
}

impl Segment {
    /// The facts of `seg` with acked edge `sack` ([`raw_sack`]), sent to
    /// `receiver`: a segment without ACK (or a broken stack's RST with ACK
    /// and a zero ack) acks what the receiver has sent.
    #[inline]
    pub(super) fn of(seg: &TcpInfo<'_>, sack: SeqNum, receiver: &PeerWindow) -> Segment {
        let has_ack = seg.has(f::ACK);
        let (ack, sack) = if !has_ack || (seg.has(f::RST | f::ACK) && seg.ack.0 == 0) {
            (receiver.td_end, receiver.td_end)
        } else {
            (seg.ack, sack)
        };
        Segment {
            seq: seg.seq,
            end: seg.seq_end(),
            ack,
            sack,
            has_ack,
        }
    }
}

/// What the window checks decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WindowCheck {
    /// All four checks pass: accept and record the segment.
    InWindow,
    /// Check I failed by at most the receiver's largest window, with a valid
    /// ack: accept as "ignore" but remember the data sent, so that its ACK
    /// passes check III later.
    Overshoot,
    /// Check II or IV failed: an old retransmit or an old ack; accept
    /// without a state change.
    Old,
    /// Check I or III failed: INVALID.
    Invalid(InvalidReason),
}

/// The kernel's four window checks of `seg` from `sender` to `receiver`,
/// a pure predicate:
///
/// | check | holds when | if not |
/// |---|---|---|
/// | I   | `seq <= sender.td_maxend` | INVALID, or [`WindowCheck::Overshoot`] when the segment ends at most `receiver.td_maxwin` beyond and II, IV and III hold |
/// | III | `sack <= receiver.td_end` | INVALID |
/// | II  | `end > sender.td_end - receiver.td_maxwin` (only once the receiver has a window) | [`WindowCheck::Old`] |
/// | IV  | `sack > receiver.td_end - max(sender.td_maxwin, 66000)` | [`WindowCheck::Old`] |
///
/// Checked in the order I, III, II, IV, as the kernel does.
#[inline]
pub(super) fn check(sender: &PeerWindow, receiver: &PeerWindow, seg: &Segment) -> WindowCheck {
    let max_ack_window = sender.td_maxwin.max(MIN_ACK_WINDOW);
    // II: the segment ends above the lowest sequence the receiver may still accept.
    let above_lower_bound = seg.end.after(sender.td_end - receiver.td_maxwin - 1);
    // IV: the ack is not too old.
    let ack_not_too_old = seg.sack.after(receiver.td_end - max_ack_window - 1);
    // III: no ack of data not yet sent.
    let acks_sent_data = seg.sack.before(receiver.td_end + 1);
    // I: the sequence is within what the receiver allowed.
    if !seg.seq.before(sender.td_maxend + 1) {
        let overshot = seg.end.since(sender.td_maxend).wrapping_add(1);
        if receiver.td_maxwin != 0
            && above_lower_bound
            && ack_not_too_old
            && overshot <= receiver.td_maxwin
            && acks_sent_data
        {
            return WindowCheck::Overshoot;
        }
        return WindowCheck::Invalid(InvalidReason::TcpSeqOverWindow);
    }
    if !acks_sent_data {
        return WindowCheck::Invalid(InvalidReason::TcpAckUnsentData);
    }
    // No window seen from the receiver yet means no lower bound.
    if receiver.td_maxwin != 0 && !above_lower_bound {
        return WindowCheck::Old;
    }
    if !ack_not_too_old {
        return WindowCheck::Old;
    }
    WindowCheck::InWindow
}

/// The bookkeeping after an in-window segment (the end of `tcp_in_window`):
/// the sender's largest window, highest sequence and highest ack; the
/// receiver's window edge; whether data is in flight.
#[inline]
pub(super) fn record(sender: &mut PeerWindow, receiver: &mut PeerWindow, seg: &Segment, win: u32) {
    let swin = win.wrapping_add(seg.sack.since(seg.ack));
    sender.td_maxwin = sender.td_maxwin.max(swin);
    if seg.end.after(sender.td_end) {
        sender.td_end = seg.end;
        sender.set_data_unacknowledged(true);
    }
    if seg.has_ack {
        if !sender.maxack_set() {
            sender.td_maxack = seg.ack;
            sender.set_maxack_set(true);
        } else if seg.ack.after(sender.td_maxack) {
            sender.td_maxack = seg.ack;
        }
    }
    if receiver.td_maxwin != 0 && seg.end.after(sender.td_maxend) {
        receiver.td_maxwin = receiver
            .td_maxwin
            .wrapping_add(seg.end.since(sender.td_maxend));
    }
    if (seg.sack + win).after(receiver.td_maxend - 1) {
        receiver.td_maxend = seg.sack + win;
        if win == 0 {
            receiver.td_maxend = receiver.td_maxend + 1;
        }
    }
    if seg.ack == receiver.td_end {
        receiver.set_data_unacknowledged(false);
    }
}

/// The kernel's `tcp_init_sender`: a SYN (or SYN/ACK) sets what its
/// sender has sent and may send; window scaling needs both SYNs' option.
fn init_sender(seen: &mut [PeerWindow; 2], d: usize, end: SeqNum, win: u32, options: &[u8]) {
    let (sender, receiver) = pair_mut(seen, d);
    sender.td_end = end;
    sender.td_maxend = end;
    sender.td_maxwin = win.max(1);
    sender.read_syn_options(options);
    if !(sender.window_scale() && receiver.window_scale()) {
        sender.td_scale = 0;
        receiver.td_scale = 0;
    }
}

/// The start of `tcp_in_window`: initialise the sender of `seg` (in
/// direction `dir`, whose acked edge is `sack`) when it is seen for the
/// first time, or re-initialised by a newer SYN while the flow is in
/// `state`. Returns true when the packet is accepted right there (a SYN
/// of a simultaneous open).
#[inline]
pub(super) fn init_direction(
    seen: &mut [PeerWindow; 2],
    state: TcpState,
    dir: Dir,
    seg: &TcpInfo<'_>,
    sack: SeqNum,
) -> bool {
    let d = dir.index();
    let end = seg.seq_end();
    let win = u32::from(seg.window);
    let (syn, has_ack) = (seg.has(f::SYN), seg.has(f::ACK));
    if seen[d].td_maxwin == 0 {
        if syn {
            init_sender(seen, d, end, win, seg.options);
            // Without ACK: simultaneous open.
            return !has_ack;
        }
        let (sender, receiver) = pair_mut(seen, d);
        sender.td_end = end;
        sender.td_maxwin = (win << sender.td_scale).max(1);
        sender.td_maxend = end + sender.td_maxwin;
        if receiver.td_maxwin == 0 {
            receiver.td_end = sack;
            receiver.td_maxend = sack;
        } else if sack == receiver.td_end + 1 {
            // Likely the answer to a keepalive.
            receiver.td_end = receiver.td_end + 1;
        }
    } else if syn
        && end.after(seen[d].td_end)
        && matches!(state, TcpState::SynSent | TcpState::SynRecv)
    {
        // RFC 793: a reinitialised TCP uses higher sequence numbers; re-init.
        init_sender(seen, d, end, win, seg.options);
        return dir == Dir::Reply && !has_ack;
    }
    false
}

/// The sender's and the receiver's windows, mutably.
#[inline]
pub(super) fn pair_mut(
    seen: &mut [PeerWindow; 2],
    sender: usize,
) -> (&mut PeerWindow, &mut PeerWindow) {
    let (a, b) = seen.split_at_mut(1);
    if sender == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}
