//! What [`super::Reassembler::push`] says about a packet.

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
    /// then fits, Linux sends it as one atomic fragment, here it goes
    /// whole).
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
}

/// What became of a packet given to [`super::Reassembler::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a fragment (or not an IP packet the reassembler could read):
    /// process the packet as it is. An IPv6 atomic fragment (offset 0, M
    /// clear) is a whole packet (RFC 6946).
    NotFragment,
    /// Kept in a queue: nothing to forward yet.
    Queued,
    /// This fragment was dropped, and maybe its datagram (see the reason).
    Dropped(FragDrop),
    /// The fragment completed a datagram, now in the reassembler's buffer.
    Complete(Reassembled),
}
