//! What [`super::Reassembler::push`] says about a packet.

use super::config::MAX_FRAGMENTS;

/// The two address families, as the reassembler keys and counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (RFC 791).
    V4 = 0,
    /// IPv6 (RFC 8200).
    V6 = 1,
}

/// Why a fragment was not queued. Where the datagram's whole queue was
/// discarded with it, the variant says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragDrop {
    /// The fragment lies inside bytes already queued in one run
    /// (`IPFRAG_DUP`): dropped alone, the queue survives.
    Duplicate,
    /// The fragment overlaps queued bytes without being a duplicate
    /// (`IPFRAG_OVERLAP`, RFC 5722): the datagram is discarded.
    Overlap,
    /// The datagram already has `max_fragments` fragments queued: the
    /// datagram is discarded.
    TooMany,
    /// IPv6: the fragment ends past 65,535 (`nf_ct_frag6_queue`'s "offset
    /// is too large"): dropped alone. Both families at completion, when
    /// the first fragment's header and the data together exceed the limit:
    /// the datagram is discarded (IPv4 notices only there, as
    /// `ip_frag_reasm`; a fragment ending past 65,535 is queued).
    Oversize,
    /// No memory: even after evicting other queues the fragment would take
    /// memory above the high threshold. Dropped alone.
    NoMemory,
    /// IPv6: a fragment with M set whose data is not a multiple of 8 bytes
    /// (the datagram is discarded; RFC 8200 says send a Parameter Problem,
    /// code 0, pointing at the payload length), or a fragment header cut
    /// short (dropped alone).
    BadLength,
    /// A fragment with no data (IPv4 with M set: after rounding its end
    /// down to 8). IPv4: the datagram is discarded; IPv6: dropped alone.
    Empty,
    /// IPv6: a first fragment without every header up to and including the
    /// upper-layer header (RFC 8200 4.5, `ipv6frag_thdr_truncated`;
    /// RFC 8200 says send a Parameter Problem, code 3). Dropped alone.
    Incomplete,
    /// The last-fragment consistency checks ("the segment is corrupted"): a
    /// last fragment ending before queued bytes or elsewhere than an
    /// earlier last fragment, or a fragment beyond the last one's end.
    /// IPv4: the datagram is discarded; IPv6 (`nf_ct_frag6_queue`'s
    /// "already received last fragment"): dropped alone.
    Corrupt,
    /// At completion: the fragments' ECN fields mix Not-ECT with ECT or CE
    /// (RFC 3168 5.3, `ip_frag_ecn_table`): the datagram is discarded.
    Ecn,
}

impl FragDrop {
    /// Every reason, in declaration order (the order of the counters).
    pub const ALL: [FragDrop; 10] = [
        FragDrop::Duplicate,
        FragDrop::Overlap,
        FragDrop::TooMany,
        FragDrop::Oversize,
        FragDrop::NoMemory,
        FragDrop::BadLength,
        FragDrop::Empty,
        FragDrop::Incomplete,
        FragDrop::Corrupt,
        FragDrop::Ecn,
    ];

    /// A short name for logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            FragDrop::Duplicate => "duplicate",
            FragDrop::Overlap => "overlap",
            FragDrop::TooMany => "too_many",
            FragDrop::Oversize => "oversize",
            FragDrop::NoMemory => "no_memory",
            FragDrop::BadLength => "bad_length",
            FragDrop::Empty => "empty",
            FragDrop::Incomplete => "incomplete",
            FragDrop::Corrupt => "corrupt",
            FragDrop::Ecn => "ecn",
        }
    }
}

/// Facts about the datagram a fragment completed; the datagram itself is
/// in [`super::Reassembler::datagram_mut`] until the next push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// Its family.
    pub family: Family,
    /// Its length in bytes (IPv4 total length; IPv6 40 + payload length).
    pub len: usize,
    /// The largest fragment's size, IP header included: the size to
    /// refragment to (Linux's `frag_max_size`).
    pub max_fragment_size: usize,
    /// The first fragment's length as queued (header, and for IPv6 the
    /// fragment header, included): an ICMP error about the datagram quotes
    /// [`super::Reassembler::first_fragment`], this many bytes.
    pub first_len: usize,
    /// How many fragments made it.
    pub fragments: usize,
    /// IPv4: the datagram carries DF (the largest fragment had it).
    pub dont_fragment: bool,
    /// The identification its fragments carried (IPv4: the 16-bit field;
    /// IPv6: the fragment header's 32 bits, which the datagram no longer
    /// holds: pass it to [`super::refragment()`]).
    pub ident: u32,
    /// Where its fragments began: to cut it again as it came
    /// ([`Reassembled::boundaries_for`], [`super::refragment_with`]).
    pub boundaries: Boundaries,
}

/// Where a reassembled datagram's fragments began, in offset order: what
/// Linux's fast path of `ip_do_fragment` / `ip6_fragment` cuts a
/// defragmented datagram along. Reassembly for conntrack keeps the
/// fragments as they came as the datagram's `frag_list` (never coalesced:
/// `ip_frag_coalesce_ok` is false for defrag users, `nf_ct_frag6_reasm`
/// passes false), and on output they go as they are when every one fits
/// the size and all but the last hold a multiple of 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boundaries {
    /// The datagram offset where the fragments' data begins (the first
    /// fragment's header length, IPv6 the part before its fragment header).
    data_at: u16,
    /// Each fragment's data offset, ascending; the first is 0.
    starts: [u16; MAX_FRAGMENTS],
    count: u8,
}

impl Boundaries {
    /// No boundaries: cut into even pieces ([`super::refragment()`]).
    pub const NONE: Boundaries = Boundaries {
        data_at: 0,
        starts: [0; MAX_FRAGMENTS],
        count: 0,
    };

    /// The boundaries of fragments whose data begins at datagram offset
    /// `data_at`, each at its data offset in `starts` (any order; at most
    /// [`MAX_FRAGMENTS`] are kept, [`Boundaries::NONE`] when more).
    pub fn new(data_at: usize, starts: &[u16]) -> Boundaries {
        let (Ok(data_at), Ok(count)) = (u16::try_from(data_at), u8::try_from(starts.len())) else {
            return Boundaries::NONE;
        };
        let mut b = Boundaries {
            data_at,
            count,
            ..Boundaries::NONE
        };
        let Some(dst) = b.starts.get_mut(..starts.len()) else {
            return Boundaries::NONE;
        };
        dst.copy_from_slice(starts);
        dst.sort_unstable();
        b
    }

    /// How many fragments (0 for [`Boundaries::NONE`]).
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// The datagram offset where fragment `i`'s data began; `None` past
    /// the last.
    pub fn start(&self, i: usize) -> Option<usize> {
        let s = self.starts.get(..self.count())?.get(i)?;
        Some(usize::from(self.data_at) + usize::from(*s))
    }
}

/// The smallest MTU an IPv6 link has (RFC 8200 5, `IPV6_MIN_MTU`).
pub const IPV6_MIN_MTU: usize = 1280;

impl Reassembled {
    /// How to send the datagram out of a link of `mtu` bytes, as Linux
    /// forwards a defragmented datagram: `Ok(size)` to pass to
    /// [`super::refragment()`], or `Err(mtu)` when it must not be cut
    /// that small and the sender is owed an ICMP error quoting
    /// [`super::Reassembler::first_fragment`] (IPv4 fragmentation needed,
    /// IPv6 packet too big, with `mtu`).
    ///
    /// IPv4 (`ip_forward`'s `ip_exceeds_mtu`, `ip_fragment`,
    /// `ip_do_fragment`): with DF, a largest fragment above `mtu` is an
    /// error; otherwise the datagram is always cut (even when it would fit
    /// whole) at the smaller of `mtu` and the largest fragment's size.
    ///
    /// IPv6 (`ip6_pkt_too_big`, `ip6_finish_output`, `ip6_fragment`): a
    /// largest fragment above `mtu` is an error; a datagram no longer than
    /// it goes whole; a longer one is cut at the largest fragment's size,
    /// but never below 1,280 bytes (Linux's floor; where the datagram
    /// then fits, it leaves as its fragments or one atomic fragment:
    /// [`super::refragment_with`]).
    pub fn forward_size(&self, mtu: usize) -> Result<usize, usize> {
        let max = self.max_fragment_size;
        match self.family {
            Family::V4 if self.dont_fragment && max > mtu => Err(mtu),
            Family::V4 => Ok(max.min(mtu)),
            Family::V6 if max > mtu => Err(mtu),
            Family::V6 if self.len <= max => Ok(self.len),
            Family::V6 => Ok(max.max(IPV6_MIN_MTU).min(mtu)),
        }
    }

    /// The boundaries to cut the datagram along in pieces of `size`
    /// ([`Reassembled::forward_size`]): its fragments', unless it leaves
    /// whole (IPv6 no longer than its largest fragment: Linux's
    /// `__ip6_finish_output` does not call `ip6_fragment` then).
    pub fn boundaries_for(&self, size: usize) -> &Boundaries {
        match self.family {
            Family::V6 if self.len <= size && self.len <= self.max_fragment_size => {
                &Boundaries::NONE
            }
            _ => &self.boundaries,
        }
    }
}

/// What became of a packet given to [`super::Reassembler::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a fragment (or not an IP packet the reassembler could read):
    /// process the packet as it is.
    NotFragment,
    /// Kept in a queue: nothing to forward yet.
    Queued,
    /// This fragment was dropped, and maybe its datagram (see the reason).
    Dropped(FragDrop),
    /// The fragment completed a datagram, now in the reassembler's buffer.
    Complete(Reassembled),
}
