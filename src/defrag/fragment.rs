//! A fragment as the family readers ([`super::v4`], [`super::v6`]) hand
//! it to the reassembler: its key, its place, and the header facts a queue
//! keeps.

use super::outcome::Family;

/// What identifies a datagram's queue: IPv4 (side, source, destination,
/// protocol, id), IPv6 (side, source, destination, id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    /// The side it arrived on (the kernel keys by incoming interface).
    pub side: u8,
    /// 4 or 6.
    pub family: u8,
    /// IPv4 protocol; 0 for IPv6.
    pub protocol: u8,
    /// The identification (IPv4: 16 bits).
    pub ident: u32,
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

/// A fragment's place in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Offset of its first data byte.
    pub start: u32,
    /// Offset after its last data byte (IPv4 with M set: rounded down to 8).
    pub end: u32,
    /// The more-fragments flag.
    pub more: bool,
}

/// What the first fragment's header said: enough to build the datagram's
/// header and to rebuild the first fragment for an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct First {
    /// Header bytes stored before the data: IPv4 the header; IPv6 the
    /// unfragmentable part (fixed and extension headers before the
    /// fragment header).
    pub header_len: u16,
    /// IPv6: offset of the next-header byte that names the fragment header.
    pub next_header_at: u16,
    /// The first 12 bytes of its header as they came.
    pub head: [u8; 12],
    /// IPv6: its fragment header.
    pub fragment_header: [u8; 8],
    /// Its length as queued (IPv4 with M set: data rounded down to 8).
    pub len: u32,
}

impl First {
    /// Nothing known yet.
    pub const NONE: First = First {
        header_len: 0,
        next_header_at: 0,
        head: [0; 12],
        fragment_header: [0; 8],
        len: 0,
    };
}

/// A fragment read from a packet.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// Its family.
    pub family: Family,
    /// Its datagram's key.
    pub key: Key,
    /// Its place.
    pub incoming: Incoming,
    /// The header bytes a first fragment stores before its data.
    pub header: &'a [u8],
    /// Its data: exactly `incoming.end - incoming.start` bytes.
    pub data: &'a [u8],
    /// Its size, header included (what `frag_max_size` is the largest of).
    pub size: u32,
    /// IPv4: DF was set.
    pub dont_fragment: bool,
    /// `1 << ECN` of its traffic class.
    pub ecn: u8,
    /// Its header facts, kept if it is the first fragment.
    pub first: First,
}

/// What a family reader made of a packet.
#[derive(Clone, Copy, Debug)]
pub enum Read<'a> {
    /// Not a fragment (or not readable as one): the packet goes on as is.
    Whole,
    /// A fragment dropped before any queue is looked at.
    Drop(super::outcome::FragDrop),
    /// A fragment to queue.
    Fragment(Fragment<'a>),
}
