//! IPv6 fragments: finding the fragment header (`find_prev_fhdr`), the
//! RFC 8200 4.5 check on first fragments (`ipv6frag_thdr_truncated`),
//! the rules of `nf_ct_frag6_queue` where they differ from IPv4's, and the
//! reassembled header (`nf_ct_frag6_reasm`).

use super::fragment::{First, Fragment, Incoming, Key, Read};
use super::outcome::{Family, FragDrop};
use super::queue::{Policy, Queue};
use crate::side::Side;
use crate::wire::ipv6::{self, Header};
use crate::wire::{be16, be32, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// The largest reassembled IPv6 datagram: 40 + a 65,535-byte payload.
pub const MAX_LEN: usize = ipv6::HEADER_LEN + 65_535;

/// Length of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// `nf_ct_frag6_queue`: a fragment ending past `IPV6_MAXPLEN` ("offset is
/// too large"), a last fragment that contradicts the queue ("already
/// received last fragment", "last packet already reached") and an empty
/// fragment are dropped alone (`goto err`: the queue survives). Only a
/// fragment with M set not ending on a multiple of 8 kills the queue.
/// (The host's `ip6_frag_queue` in reassembly.c discards the queue for
/// the inconsistencies instead.)
pub const POLICY: Policy = Policy {
    max_end: 65_535,
    corrupt_discards: false,
    empty_discards: false,
};

/// The next-header values Linux's `ipv6_ext_hdr` names.
fn is_extension(next: u8) -> bool {
    matches!(
        next,
        ipv6::NEXT_HOP_BY_HOP
            | ipv6::NEXT_ROUTING
            | ipv6::NEXT_FRAGMENT
            | ipv6::NEXT_AUTH
            | ipv6::NEXT_NONE
            | ipv6::NEXT_DEST_OPTS
    )
}

/// Length of the extension header `next` whose length byte is `len_byte`.
fn ext_len(next: u8, len_byte: u8) -> usize {
    if next == ipv6::NEXT_AUTH {
        (usize::from(len_byte) + 2) * 4
    } else {
        (usize::from(len_byte) + 1) * 8
    }
}

/// `find_prev_fhdr`: walk the extension headers up to the first fragment
/// header. Returns its offset and the offset of the next-header byte that
/// names it; `None` when the chain reaches anything else first, No Next
/// Header, or the end of the packet.
fn find_fragment_header(b: &[u8], first: u8) -> Option<(usize, usize)> {
    let mut next = first;
    let mut at = ipv6::HEADER_LEN;
    let mut prev = ipv6::NEXT_HEADER;
    while next != ipv6::NEXT_FRAGMENT {
        if !is_extension(next) || next == ipv6::NEXT_NONE {
            return None;
        }
        let hdr = b.get(at..at + 2)?;
        let len = ext_len(next, hdr[1]);
        prev = at;
        next = hdr[0];
        at += len;
    }
    (at <= b.len()).then_some((at, prev))
}

/// `ipv6_skip_exthdr` from `start`, where a header of kind `next` begins:
/// the upper-layer protocol, its offset (which may lie past the end when
/// the last extension header claims more than there is, as in the
/// kernel) and the last fragment header's offset field; `None` where the
/// kernel returns -1. (`wire::ipv6::walk` fails on an offset past the end;
/// the RFC 8200 4.5 check needs the kernel's answer there.)
fn skip_extensions(b: &[u8], mut at: usize, mut next: u8) -> Option<(u8, usize, u16)> {
    let mut frag_off = 0;
    while is_extension(next) {
        if next == ipv6::NEXT_NONE {
            return None;
        }
        let hdr = b.get(at..at + 2)?;
        let len = if next == ipv6::NEXT_FRAGMENT {
            frag_off = be16(b, at + 2)?;
            if frag_off & !7 != 0 {
                break;
            }
            FRAGMENT_HEADER_LEN
        } else {
            ext_len(next, hdr[1])
        };
        next = hdr[0];
        at += len;
    }
    Some((next, at, frag_off))
}

/// `ipv6frag_thdr_truncated`: a first fragment whose upper-layer header
/// (TCP 20 bytes, UDP 8, ICMPv6 8, anything else 1) does not fit in it.
fn transport_truncated(b: &[u8], fragment_at: usize) -> bool {
    let Some((proto, at, frag_off)) = skip_extensions(b, fragment_at, ipv6::NEXT_FRAGMENT) else {
        return false;
    };
    if frag_off & !7 != 0 {
        return false;
    }
    let need = match proto {
        PROTO_TCP => 20,
        PROTO_UDP | PROTO_ICMPV6 => 8,
        _ => 1,
    };
    at + need > b.len()
}

/// Read an IPv6 packet as `nf_ct_frag6_gather` does: `Whole` unless its
/// header is sound (payload length not 0: a jumbogram has no fragment
/// header) and a fragment header follows extension headers only; a first
/// fragment without its upper-layer header is dropped (`Incomplete`), and
/// so is one whose fragment header is cut short (`BadLength`). An atomic
/// fragment (offset 0, M clear) is a fragment like any other, as
/// `nf_ct_frag6_gather` has it (not RFC 6946's whole packet, as the host's
/// `ipv6_frag_rcv` does): alone it completes its datagram at once (which
/// then leaves without the fragment header); with the identification of a
/// queue it joins that queue.
pub fn read(side: Side, pkt: &[u8]) -> Read<'_> {
    let Ok(h) = Header::check_packet(pkt) else {
        return Read::Whole;
    };
    let Some(buf) = pkt.get(..h.total_len) else {
        return Read::Whole;
    };
    if h.total_len == ipv6::HEADER_LEN {
        return Read::Whole;
    }
    let Some((at, next_header_at)) = find_fragment_header(buf, h.next_header) else {
        return Read::Whole;
    };
    let (Some(fh), Some(word), Some(ident)) = (
        buf.get(at..at + FRAGMENT_HEADER_LEN),
        be16(buf, at + 2),
        be32(buf, at + 4),
    ) else {
        return Read::Drop(FragDrop::BadLength);
    };
    let start = u32::from(word & !7);
    let more = word & 1 != 0;
    if transport_truncated(buf, at) {
        return Read::Drop(FragDrop::Incomplete);
    }
    let data = &buf[at + FRAGMENT_HEADER_LEN..];
    let mut fragment_header = [0; 8];
    fragment_header.copy_from_slice(fh);
    let mut head = [0; 12];
    head.copy_from_slice(&buf[..12]);
    Read::Fragment(Fragment {
        family: Family::V6,
        key: Key {
            side: side.index() as u8,
            family: 6,
            protocol: 0,
            ident,
            src: h.src,
            dst: h.dst,
        },
        incoming: Incoming {
            start,
            end: start + data.len() as u32,
            more,
        },
        header: &buf[..at],
        data,
        size: h.total_len as u32,
        dont_fragment: false,
        ecn: 1 << ((buf[1] >> 4) & 3),
        first: First {
            header_len: at as u16,
            next_header_at: next_header_at as u16,
            head,
            fragment_header,
            len: h.total_len as u32,
        },
    })
}

/// Finish the reassembled datagram `dg` (exactly its length, the first
/// fragment's unfragmentable part in front) of queue `q`, as
/// `nf_ct_frag6_reasm`: the fragment header is gone, the next-header byte
/// that named it names what it named, the payload length is set and
/// `ecn` is ORed into the traffic class.
pub fn finish(dg: &mut [u8], q: &Queue, ecn: u8) {
    let payload = (dg.len().saturating_sub(ipv6::HEADER_LEN)) as u16;
    if let Some(b) = dg.get_mut(usize::from(q.first.next_header_at)) {
        *b = q.first.fragment_header[0];
    }
    if let Some(p) = dg.get_mut(ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2) {
        p.copy_from_slice(&payload.to_be_bytes());
    }
    if let Some(b) = dg.get_mut(1) {
        *b |= ecn << 4;
    }
}

/// Write the first `out.len()` bytes (at most `first.len`) of the first
/// fragment of the datagram `dg`: its unfragmentable part as the datagram
/// has it now (a hop limit the caller lowered stays lowered) with the
/// first 4 bytes, payload length and next-header byte the fragment came
/// with, its fragment header, then the data. Returns the bytes written.
pub fn first_fragment(dg: &[u8], first: &First, out: &mut [u8]) -> usize {
    let hlen = usize::from(first.header_len);
    let len = first.len as usize;
    let data_len = len.saturating_sub(hlen + FRAGMENT_HEADER_LEN);
    let (Some(unfrag), Some(data)) = (dg.get(..hlen), dg.get(hlen..hlen + data_len)) else {
        return 0;
    };
    let payload = len.saturating_sub(ipv6::HEADER_LEN) as u16;
    let mut written = 0;
    for part in [unfrag, &first.fragment_header[..], data] {
        let n = part.len().min(out.len() - written);
        out[written..written + n].copy_from_slice(&part[..n]);
        written += n;
    }
    let patch = |out: &mut [u8], at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(o) = out.get_mut(at + i) {
                *o = *b;
            }
        }
    };
    patch(out, 0, &first.head[..4]);
    patch(out, ipv6::PAYLOAD_LEN, &payload.to_be_bytes());
    patch(
        out,
        usize::from(first.next_header_at),
        &[ipv6::NEXT_FRAGMENT],
    );
    written
}
