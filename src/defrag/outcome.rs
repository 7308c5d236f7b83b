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
    /// The fragment ends beyond what a datagram can hold. IPv4: the
    /// datagram is discarded; IPv6 (`nf_ct_frag6_queue`'s "offset is too
    /// large"): dropped alone. Also at completion, when the first
    /// fragment's header and the data together exceed the limit (both
    /// families: discarded).
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
    /// The identification its fragments carried (IPv4: the 16-bit field;
    /// IPv6: the fragment header's 32 bits, which the datagram no longer
    /// holds: pass it to [`super::refragment()`]).
    pub ident: u32,
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
