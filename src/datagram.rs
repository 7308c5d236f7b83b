//! The reassembled datagram on its way through the firewall: the
//! buffers it is decided in (a copy of the reassembler's datagram, its
//! first fragment rebuilt for ICMP quotes), and its pieces when
//! forwarded, as Linux forwards a defragmented datagram: along the
//! fragments it came in when they fit, else cut to the largest fragment's
//! size ([`Reassembled::forward_size`], [`Reassembled::boundaries_for`]). Allocated once; nothing
//! here allocates afterwards.

use crate::config::DATAGRAM_BUFFER;
use crate::defrag::{fragment_count_with, refragment_with, Boundaries, Reassembled, Reassembler};
use crate::side::Side;

/// What [`DatagramBuffers::piece`] cuts: the datagram forwarded last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentsOut {
    /// Length of the datagram in the buffer.
    pub len: usize,
    /// Size of every piece at most (IP header included).
    pub piece_size: usize,
    /// The IPv6 fragment headers' identification.
    pub ident: u32,
    /// The boundaries of the fragments it came in, to cut along when the
    /// pieces fit ([`Reassembled::boundaries_for`]).
    pub boundaries: Boundaries,
}

/// How a decided datagram leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaving {
    /// In this many pieces ([`DatagramBuffers::piece`]).
    Pieces(usize),
    /// Not at all: larger than a link of this MTU allows (answer with
    /// fragmentation needed or packet too big).
    TooBig(usize),
    /// Not at all: it cannot be cut (a header the cutter cannot read).
    Uncuttable,
}

/// The firewall's buffers for reassembled datagrams.
pub struct DatagramBuffers {
    /// The datagram being decided and forwarded.
    pub datagram: Vec<u8>,
    /// Its first fragment, rebuilt for ICMP quotes.
    pub first: Vec<u8>,
    out: Option<FragmentsOut>,
    /// The MTU of the device on each side.
    mtu: [usize; 2],
}

impl Default for DatagramBuffers {
    fn default() -> Self {
        DatagramBuffers::new()
    }
}

impl DatagramBuffers {
    /// Buffers for the largest datagram; MTUs 65,535 until set.
    pub fn new() -> DatagramBuffers {
        DatagramBuffers {
            datagram: vec![0; DATAGRAM_BUFFER as usize],
            first: vec![0; DATAGRAM_BUFFER as usize],
            out: None,
            mtu: [usize::from(u16::MAX); 2],
        }
    }

    /// The MTU of the device on `side` (at least 68, IPv4's minimum).
    pub fn set_mtu(&mut self, side: Side, mtu: usize) {
        self.mtu[side.index()] = mtu.max(68);
    }

    /// Forget the datagram forwarded last.
    pub fn clear(&mut self) {
        self.out = None;
    }

    /// Copy the datagram the reassembler completed, and its first
    /// fragment, into `datagram` and `first` (taken out of `self` by the
    /// caller so that it can decide them in place); their lengths.
    pub fn load(datagram: &mut [u8], first: &mut [u8], defrag: &Reassembler) -> (usize, usize) {
        let whole = defrag.datagram();
        let len = whole.len().min(datagram.len());
        datagram[..len].copy_from_slice(&whole[..len]);
        let first_len = defrag.first_fragment(first).min(first.len());
        (len, first_len)
    }

    /// How the accepted datagram `done`, now `datagram[..len]` (already
    /// decided: its TTL or hop limit decremented), leaves towards `to`;
    /// with [`Leaving::Pieces`] its pieces are ready for [`DatagramBuffers::piece`]
    /// once `datagram` is back in place.
    pub fn leave(&mut self, done: &Reassembled, datagram: &[u8], to: Side) -> Leaving {
        match done.forward_size(self.mtu[to.index()]) {
            Err(mtu) => Leaving::TooBig(mtu),
            Ok(piece_size) => {
                match fragment_count_with(datagram, piece_size, done.boundaries_for(piece_size)) {
                    Ok(n) => {
                        self.out = Some(FragmentsOut {
                            len: datagram.len(),
                            piece_size,
                            ident: done.ident,
                            boundaries: *done.boundaries_for(piece_size),
                        });
                        Leaving::Pieces(n)
                    }
                    Err(_) => Leaving::Uncuttable,
                }
            }
        }
    }

    /// Piece `index` of the datagram forwarded last, written into `out`;
    /// its length, or `None` past the last piece or when `out` is too small.
    pub fn piece(&self, index: usize, out: &mut [u8]) -> Option<usize> {
        let f = self.out?;
        let dg = self.datagram.get(..f.len)?;
        refragment_with(dg, f.piece_size, &f.boundaries, f.ident, index, out).ok()
    }
}
