//! IPv4 fragments: reading one (`ip_check_defrag` / `ip_frag_queue`), the
//! rules where IPv4 differs from IPv6, and the reassembled header
//! (`ip_frag_reasm`).

use super::fragment::{First, Fragment, Incoming, Key, Read};
use super::outcome::Family;
use super::queue::{Policy, Queue};
use crate::side::Side;
use crate::wire::checksum::internet_checksum;
use crate::wire::ipv4::{self, Header};

/// The largest IPv4 datagram.
pub const MAX_LEN: usize = 65_535;

/// The flags-and-offset word's DF bit.
const DF: u16 = 0x4000;

/// `ip_frag_queue` discards the whole queue (`discard_qp`) on every
/// inconsistency. It has no limit on where a fragment ends: one ending
/// past 65,535 is queued like any other (it sets the datagram's length
/// when it is the last, and its bytes count for overlaps), and the
/// datagram is found oversize in `ip_frag_reasm` when it is complete
/// (`out_oversize`), so the fragments that contradict it meanwhile
/// discard it, as any inconsistency does. (The highest end is 65,528 +
/// 65,515.)
pub const POLICY: Policy = Policy {
    max_end: u32::MAX,
    corrupt_discards: true,
    empty_discards: true,
};

/// Read an IPv4 packet: `Whole` unless it is a fragment with a sound header
/// (version, lengths, and the header checksum, which `ip_rcv` checks
/// before any hook sees the packet). The data of a fragment with MF set
/// is cut to a multiple of 8 bytes, as `ip_frag_queue` trims it.
pub fn read(side: Side, pkt: &[u8]) -> Read<'_> {
    let Ok(h) = Header::check_packet(pkt) else {
        return Read::Whole;
    };
    if !h.is_fragment() {
        return Read::Whole;
    }
    let Some(buf) = pkt.get(..h.total_len) else {
        return Read::Whole;
    };
    let Some(header) = buf.get(..h.header_len) else {
        return Read::Whole;
    };
    // Fuzzing builds (as the packet parser) accept any checksum.
    if !cfg!(fuzzing) && internet_checksum(&[header]) != 0 {
        return Read::Whole;
    }
    let start = u32::from(h.fragment_offset) * 8;
    let payload = (h.total_len - h.header_len) as u32;
    let mut end = start + payload;
    if h.more_fragments {
        end &= !7;
    }
    let data_len = (end - start) as usize;
    let Some(data) = buf.get(h.header_len..h.header_len + data_len) else {
        return Read::Whole;
    };
    let word = u16::from_be_bytes([buf[ipv4::FRAGMENT], buf[ipv4::FRAGMENT + 1]]);
    let mut src = [0; 16];
    let mut dst = [0; 16];
    src[..4].copy_from_slice(&h.src);
    dst[..4].copy_from_slice(&h.dst);
    let size = (h.header_len + data_len) as u32;
    let mut head = [0; 12];
    head.copy_from_slice(&buf[..12]);
    Read::Fragment(Fragment {
        family: Family::V4,
        key: Key {
            side: side.index() as u8,
            family: 4,
            protocol: h.protocol,
            ident: u32::from(u16::from_be_bytes([buf[ipv4::IDENT], buf[ipv4::IDENT + 1]])),
            src,
            dst,
        },
        incoming: Incoming {
            start,
            end,
            more: h.more_fragments,
        },
        header,
        data,
        size,
        dont_fragment: word & DF != 0,
        ecn: 1 << (buf[1] & 3),
        first: First {
            header_len: h.header_len as u16,
            next_header_at: 0,
            head,
            fragment_header: [0; 8],
            len: size,
        },
    })
}

/// Finish the reassembled datagram `dg` (exactly its length, the first
/// fragment's header in front) of queue `q`, as `ip_frag_reasm`: total
/// length set, `ecn` ORed into the TOS, the flags and offset cleared but
/// DF set when the largest fragment had it (`max_df_size == max_size`),
/// and the header checksum computed.
pub fn finish(dg: &mut [u8], q: &Queue, ecn: u8) {
    let len = dg.len() as u16;
    let hlen = usize::from(q.first.header_len);
    if dg.len() < hlen || hlen < ipv4::MIN_HEADER_LEN {
        return;
    }
    dg[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&len.to_be_bytes());
    dg[1] |= ecn;
    let word: u16 = if q.max_df_size == q.max_size { DF } else { 0 };
    dg[ipv4::FRAGMENT..ipv4::FRAGMENT + 2].copy_from_slice(&word.to_be_bytes());
    set_checksum(&mut dg[..hlen]);
}

/// Compute the checksum of the IPv4 header `h` (exactly its length).
pub fn set_checksum(h: &mut [u8]) {
    if h.len() < ipv4::MIN_HEADER_LEN {
        return;
    }
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].fill(0);
    let c = internet_checksum(&[h]);
    h[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
}

/// Write the first `out.len()` bytes (at most `first.len`) of the first
/// fragment of the datagram `dg`: its header as the datagram has it now
/// (so a TTL the caller lowered stays lowered), with the TOS, total length
/// and flags-and-offset the fragment came with and the checksum
/// recomputed, then the data. Returns the bytes written.
pub fn first_fragment(dg: &[u8], first: &First, out: &mut [u8]) -> usize {
    let hlen = usize::from(first.header_len);
    let len = (first.len as usize).min(dg.len());
    let (Some(h), Some(rest)) = (dg.get(..hlen), dg.get(hlen..len)) else {
        return 0;
    };
    let mut header = [0u8; 60];
    let Some(header) = header.get_mut(..hlen) else {
        return 0;
    };
    header.copy_from_slice(h);
    header[1] = first.head[1];
    header[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&(len as u16).to_be_bytes());
    header[ipv4::FRAGMENT..ipv4::FRAGMENT + 2]
        .copy_from_slice(&first.head[ipv4::FRAGMENT..ipv4::FRAGMENT + 2]);
    set_checksum(header);
    let n = out.len().min(len);
    let k = n.min(hlen);
    out[..k].copy_from_slice(&header[..k]);
    out[k..n].copy_from_slice(&rest[..n - k]);
    n
}
