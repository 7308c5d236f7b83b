//! A TCP tracker as bytes, for the table's snapshot
//! ([`crate::conntrack::snapshot`]): every field the tracker judges the
//! next packet by, so a restored flow continues exactly.
//!
//! Layout (little-endian, [`TcpConn::SNAPSHOT_LEN`] bytes): state `u8`;
//! per direction `td_end`, `td_maxend`, `td_maxwin`, `td_maxack` (`u32`
//! each), `td_scale` `u8`, flag bits `u8` (window scale, SACK permitted,
//! close initiated, be liberal, data unacknowledged, maxack set); the last
//! segment: class `u8`, direction `u8`, seq, ack, end (`u32`), window
//! `u16`, window scale `u8`, bits `u8` (window scale, SACK permitted);
//! the retransmission count `u8`; bits `u8` (challenge ACK expected,
//! simultaneous open).

use super::super::tuple::Dir;
use super::last::LastSegment;
use super::states::{Class, TcpState};
use super::window::PeerWindow;
use super::TcpConn;
use crate::wire::tcp::SeqNum;

const WINDOW_LEN: usize = 18;
const MAX_SCALE: u8 = 14;

impl TcpConn {
    /// Bytes of [`TcpConn::encode`].
    pub const SNAPSHOT_LEN: usize = 1 + 2 * WINDOW_LEN + 18 + 2;

    /// The tracker as bytes (see the module documentation).
    pub fn encode(&self) -> [u8; TcpConn::SNAPSHOT_LEN] {
        let mut b = [0u8; TcpConn::SNAPSHOT_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&[self.state as u8]);
        for p in &self.seen {
            for v in [p.td_end.0, p.td_maxend.0, p.td_maxwin, p.td_maxack.0] {
                put(&v.to_le_bytes());
            }
            let flags = [
                p.window_scale(),
                p.sack_permitted(),
                p.close_initiated(),
                p.be_liberal(),
                p.data_unacknowledged(),
                p.maxack_set(),
            ];
            put(&[p.td_scale, bits(&flags)]);
        }
        let l = &self.last;
        put(&[l.class as u8, l.dir.index() as u8]);
        for v in [l.seq.0, l.ack.0, l.end.0] {
            put(&v.to_le_bytes());
        }
        put(&l.win.to_le_bytes());
        put(&[l.wscale, bits(&[l.window_scale, l.sack_permitted])]);
        put(&[
            self.retrans,
            bits(&[self.challenge_ack_expected, self.simultaneous_open]),
        ]);
        b
    }

    /// The tracker [`TcpConn::encode`] wrote; `None` when a field is out of
    /// range (a state, class or direction that does not exist, a window
    /// scale over 14, unknown flag bits).
    pub fn decode(b: &[u8; TcpConn::SNAPSHOT_LEN]) -> Option<TcpConn> {
        let mut at = 0;
        let mut take = |n: usize| {
            let s = &b[at..at + n];
            at += n;
            s
        };
        let u32_at = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        let state = state_of(take(1)[0])?;
        let mut seen = [PeerWindow::default(); 2];
        for p in &mut seen {
            let w = take(WINDOW_LEN);
            p.td_end = SeqNum(u32_at(w, 0));
            p.td_maxend = SeqNum(u32_at(w, 4));
            p.td_maxwin = u32_at(w, 8);
            p.td_maxack = SeqNum(u32_at(w, 12));
            p.td_scale = w[16];
            let f = unbits(w[17], 6)?;
            if p.td_scale > MAX_SCALE {
                return None;
            }
            p.set_window_scale(f[0]);
            p.set_sack_permitted(f[1]);
            p.set_close_initiated(f[2]);
            p.set_be_liberal(f[3]);
            p.set_data_unacknowledged(f[4]);
            p.set_maxack_set(f[5]);
        }
        let l = take(18);
        let last_bits = unbits(l[17], 2)?;
        let last = LastSegment {
            class: class_of(l[0])?,
            dir: match l[1] {
                0 => Dir::Original,
                1 => Dir::Reply,
                _ => return None,
            },
            seq: SeqNum(u32_at(l, 2)),
            ack: SeqNum(u32_at(l, 6)),
            end: SeqNum(u32_at(l, 10)),
            win: u16::from_le_bytes([l[14], l[15]]),
            wscale: l[16],
            window_scale: last_bits[0],
            sack_permitted: last_bits[1],
        };
        if last.wscale > MAX_SCALE {
            return None;
        }
        let tail = take(2);
        let conn_bits = unbits(tail[1], 2)?;
        Some(TcpConn {
            state,
            seen,
            last,
            retrans: tail[0],
            challenge_ack_expected: conn_bits[0],
            simultaneous_open: conn_bits[1],
        })
    }
}

/// Flags as bits, the first the lowest.
fn bits(flags: &[bool]) -> u8 {
    flags
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &on)| acc | (u8::from(on) << i))
}

/// The `n` low bits of `b` as flags; `None` when a higher bit is set.
fn unbits(b: u8, n: usize) -> Option<[bool; 8]> {
    if b >> n != 0 {
        return None;
    }
    let mut f = [false; 8];
    for (i, v) in f.iter_mut().enumerate() {
        *v = b & (1 << i) != 0;
    }
    Some(f)
}

fn state_of(b: u8) -> Option<TcpState> {
    use TcpState::*;
    [
        None,
        SynSent,
        SynRecv,
        Established,
        FinWait,
        CloseWait,
        LastAck,
        TimeWait,
        Close,
        SynSent2,
    ]
    .into_iter()
    .find(|s| *s as u8 == b)
}

fn class_of(b: u8) -> Option<Class> {
    [
        Class::Syn,
        Class::SynAck,
        Class::Fin,
        Class::Ack,
        Class::Rst,
        Class::None,
    ]
    .into_iter()
    .find(|c| *c as u8 == b)
}
