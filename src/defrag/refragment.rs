//! Refragmentation: cutting a (reassembled) datagram into fragments of at
//! most a given size, as Linux's `ip_do_fragment` and `ip6_fragment` cut
//! a datagram on output: along the fragments it came in when each fits
//! (their fast path, [`refragment_with`]), else in fixed-size pieces (their
//! slow path, [`refragment`]).
//!
//! Pure functions in the style of [`crate::segment`]: [`fragment_count`]
//! says how many pieces, [`refragment`] writes piece `index` into a
//! caller's buffer. Every piece but the last carries a multiple of 8 data
//! bytes, as many as fit. [`fragment_count_with`] and [`refragment_with`]
//! take the datagram's [`Boundaries`]: when the pieces between them (the
//! first from the end of the unfragmentable part as the datagram has it
//! now) each fit `max_size` and all but the last hold a multiple of 8 data
//! bytes, those are the pieces, as Linux's fast path sends the `frag_list`
//! of a datagram reassembled for conntrack; otherwise the fixed-size
//! pieces. (Linux also leaves the fast path when a fragment's buffer lacks
//! headroom for the headers, which depends on the driver; not modelled.)
//!
//! IPv4: each piece has the datagram's header (same identification, DF
//! as the datagram has it: reassembly set it exactly when Linux sets
//! `IPSKB_FRAG_PMTU`, which makes `ip_do_fragment` put DF on every piece),
//! total length and offset of its own, MF on all but the last (and on the
//! last when the datagram was itself a non-last fragment), and a fresh
//! header checksum. Pieces after the first keep the header's length but
//! have every option without the copied bit overwritten with No
//! Operation, as `ip_options_fragment` does. A datagram that fits is one
//! piece equal to it.
//!
//! IPv6: each piece is the unfragmentable part (the fixed header, then
//! Hop-by-Hop, Routing and Destination Options headers up to the first
//! Destination Options header after a Routing header, or the first other
//! header: `ip6_find_1stfragopt`), a fragment header, and a piece of the
//! rest; the byte that named what followed the unfragmentable part names
//! the fragment header, the payload length is the piece's. The
//! identification is the caller's ([`super::Reassembled::ident`]: the
//! one the fragments came with); Linux picks a new random one
//! (`ipv6_select_ident`). A datagram that fits is one piece equal to it
//! (Linux only calls `ip6_fragment` for a datagram longer than
//! `frag_max_size` or the MTU).
//!
//! Guarantees: never panics or allocates; every piece is at most
//! `max_size` bytes; the pieces reassemble to the datagram.

use super::outcome::Boundaries;
use super::v4;
use super::v6::FRAGMENT_HEADER_LEN;
use crate::wire::ipv4::{self, Header};
use crate::wire::ipv6;

/// Why a datagram could not be cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefragError {
    /// Not an IPv4 or IPv6 packet with consistent lengths (or an IPv6
    /// extension-header chain that cannot be walked).
    NotIp,
    /// `max_size` leaves no room for 8 data bytes after the headers
    /// (Linux's `fail_toobig`).
    TooSmall,
    /// `index` is not below [`fragment_count`].
    NoSuchPiece,
    /// `out` is too small for the piece.
    OutTooSmall,
}

/// How a datagram's data (after its first `base` bytes) is cut.
#[derive(Clone, Copy, Debug)]
enum Cut<'a> {
    /// Every piece but the last `per` bytes, the last at most `mtu`
    /// (Linux's slow path: `len = min(left, mtu)`, rounded down to 8
    /// unless it is the rest).
    Even {
        payload: usize,
        mtu: usize,
        per: usize,
    },
    /// Along the fragments' boundaries (Linux's fast path): piece `i` from
    /// where fragment `i` began (the first from `base`) to where the next
    /// began (the last to `total`).
    Along {
        b: &'a Boundaries,
        base: usize,
        total: usize,
    },
}

impl<'a> Cut<'a> {
    fn even(payload: usize, mtu: usize) -> Result<Cut<'a>, RefragError> {
        let per = mtu & !7;
        if payload > mtu && per == 0 {
            return Err(RefragError::TooSmall);
        }
        Ok(Cut::Even { payload, mtu, per })
    }

    /// Along `b`, when every piece of the data between `base` and `total`
    /// holds at most `mtu` bytes and all but the last a multiple of 8 (the
    /// fast path's geometry check), and the fragments' data began at
    /// `base`; else the even cut. (An IPv6 datagram whose fragmentable
    /// part began with a Destination Options header has a longer
    /// unfragmentable part once reassembled, `ip6_find_1stfragopt`; Linux
    /// 6.18 was seen to cut it evenly, and so is it here.)
    fn along_or_even(
        b: &'a Boundaries,
        base: usize,
        total: usize,
        mtu: usize,
    ) -> Result<Cut<'a>, RefragError> {
        let along = Cut::Along { b, base, total };
        let fits = b.start(0) == Some(base)
            && (0..b.count()).all(|i| {
                along
                    .piece(i)
                    .is_some_and(|(_, len)| len <= mtu && (i + 1 == b.count() || len % 8 == 0))
            });
        if fits {
            Ok(along)
        } else {
            Cut::even(total.saturating_sub(base), mtu)
        }
    }

    fn count(&self) -> usize {
        match *self {
            Cut::Even { payload, mtu, .. } if payload <= mtu => 1,
            Cut::Even { payload, mtu, per } => 1 + (payload - mtu).div_ceil(per),
            Cut::Along { b, .. } => b.count(),
        }
    }

    /// Offset (from `base`) and length of piece `i`'s data.
    fn piece(&self, i: usize) -> Option<(usize, usize)> {
        match *self {
            Cut::Even { payload, per, .. } => {
                let last = self.count() - 1;
                match i.cmp(&last) {
                    core::cmp::Ordering::Less => Some((i * per, per)),
                    core::cmp::Ordering::Equal => Some((i * per, payload - i * per)),
                    core::cmp::Ordering::Greater => None,
                }
            }
            Cut::Along { b, base, total } => {
                let start = if i == 0 { base } else { b.start(i)? };
                let end = if i + 1 < b.count() {
                    b.start(i + 1)?
                } else {
                    total
                };
                let len = end.checked_sub(start)?;
                Some((start.checked_sub(base)?, len))
            }
        }
    }
}

/// A datagram, read for cutting.
#[derive(Clone, Copy, Debug)]
enum Plan<'a> {
    /// IPv4 with a header of `hlen` bytes.
    V4 { hlen: usize, cut: Cut<'a> },
    /// IPv6 that fits: one piece, the datagram itself.
    V6Whole,
    /// IPv6 with an unfragmentable part of `hlen` bytes whose byte at
    /// `next_at` names what follows it.
    V6 {
        hlen: usize,
        next_at: usize,
        cut: Cut<'a>,
    },
}

fn plan<'a>(
    dg: &[u8],
    max_size: usize,
    b: &'a Boundaries,
) -> Result<(Plan<'a>, usize), RefragError> {
    match dg.first().map(|b| b >> 4) {
        Some(4) => {
            let h = Header::check_packet(dg).map_err(|_| RefragError::NotIp)?;
            let hlen = h.header_len;
            let payload = h.total_len - hlen;
            let mtu = if h.total_len <= max_size {
                payload
            } else {
                max_size.checked_sub(hlen).ok_or(RefragError::TooSmall)?
            };
            Ok((
                Plan::V4 {
                    hlen,
                    cut: Cut::along_or_even(b, hlen, h.total_len, mtu)?,
                },
                h.total_len,
            ))
        }
        Some(6) => {
            let h = ipv6::Header::check_packet(dg).map_err(|_| RefragError::NotIp)?;
            if h.total_len <= max_size && b.count() == 0 {
                return Ok((Plan::V6Whole, h.total_len));
            }
            let dg = dg.get(..h.total_len).ok_or(RefragError::NotIp)?;
            let (hlen, next_at) = first_fragmentable(dg).ok_or(RefragError::NotIp)?;
            let mtu = max_size
                .checked_sub(hlen + FRAGMENT_HEADER_LEN)
                .filter(|m| *m >= 8)
                .ok_or(RefragError::TooSmall)?;
            // With boundaries, Linux is in `ip6_fragment`: a datagram that
            // fits leaves as one atomic fragment when the fast path fails.
            let cut = Cut::along_or_even(b, hlen, h.total_len, mtu)?;
            Ok((Plan::V6 { hlen, next_at, cut }, h.total_len))
        }
        _ => Err(RefragError::NotIp),
    }
}

/// `ip6_find_1stfragopt`: the length of the unfragmentable part of `dg`
/// and the offset of the next-header byte that names what follows it.
/// (Linux also keeps a Destination Options header holding a Home Address
/// option in front, with Mobile IPv6 built in; not done here.)
fn first_fragmentable(dg: &[u8]) -> Option<(usize, usize)> {
    let mut at = ipv6::HEADER_LEN;
    let mut next_at = ipv6::NEXT_HEADER;
    let mut routing = false;
    while at <= dg.len() {
        match *dg.get(next_at)? {
            ipv6::NEXT_HOP_BY_HOP => {}
            ipv6::NEXT_ROUTING => routing = true,
            ipv6::NEXT_DEST_OPTS if !routing => {}
            _ => return Some((at, next_at)),
        }
        let len = (usize::from(*dg.get(at + 1)?) + 1) * 8;
        next_at = at;
        at += len;
        if at > 65_535 {
            return None;
        }
    }
    None
}

/// How many pieces [`refragment`] cuts `datagram` into at `max_size`
/// bytes each (1 when it fits).
pub fn fragment_count(datagram: &[u8], max_size: usize) -> Result<usize, RefragError> {
    fragment_count_with(datagram, max_size, &Boundaries::NONE)
}

/// Write piece `index` of `datagram` cut at `max_size` bytes into `out`;
/// `ident` is the IPv6 fragment headers' identification (IPv4 keeps the
/// header's). Returns the piece's length.
pub fn refragment(
    datagram: &[u8],
    max_size: usize,
    ident: u32,
    index: usize,
    out: &mut [u8],
) -> Result<usize, RefragError> {
    refragment_with(datagram, max_size, &Boundaries::NONE, ident, index, out)
}

/// How many pieces [`refragment_with`] cuts `datagram` into.
pub fn fragment_count_with(
    datagram: &[u8],
    max_size: usize,
    b: &Boundaries,
) -> Result<usize, RefragError> {
    Ok(match plan(datagram, max_size, b)?.0 {
        Plan::V4 { cut, .. } | Plan::V6 { cut, .. } => cut.count(),
        Plan::V6Whole => 1,
    })
}

/// [`refragment`], along the boundaries `b` of the fragments the datagram
/// came in when the pieces between them fit (see the module
/// documentation); an IPv6 datagram is then cut even when it would fit
/// whole, as Linux calls `ip6_fragment` for a datagram longer than its
/// largest fragment ([`super::Reassembled::boundaries_for`] gives none
/// when it is not), and one that fits but not along `b` is one atomic
/// fragment, as `ip6_fragment`'s slow path sends it.
pub fn refragment_with(
    datagram: &[u8],
    max_size: usize,
    b: &Boundaries,
    ident: u32,
    index: usize,
    out: &mut [u8],
) -> Result<usize, RefragError> {
    let (plan, total) = plan(datagram, max_size, b)?;
    let dg = datagram.get(..total).ok_or(RefragError::NotIp)?;
    match plan {
        Plan::V4 { hlen, cut } => {
            let (off, len) = cut.piece(index).ok_or(RefragError::NoSuchPiece)?;
            let out = out.get_mut(..hlen + len).ok_or(RefragError::OutTooSmall)?;
            out[..hlen].copy_from_slice(&dg[..hlen]);
            out[hlen..].copy_from_slice(&dg[hlen + off..hlen + off + len]);
            let word = u16::from_be_bytes([dg[ipv4::FRAGMENT], dg[ipv4::FRAGMENT + 1]]);
            let base = usize::from(word & 0x1fff) * 8;
            let more = index + 1 < cut.count() || word & 0x2000 != 0;
            let new = ((base + off) >> 3) as u16 & 0x1fff
                | (word & 0x4000)
                | if more { 0x2000 } else { 0 };
            out[ipv4::FRAGMENT..ipv4::FRAGMENT + 2].copy_from_slice(&new.to_be_bytes());
            out[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2]
                .copy_from_slice(&((hlen + len) as u16).to_be_bytes());
            if index > 0 {
                options_fragment(&mut out[ipv4::MIN_HEADER_LEN..hlen]);
            }
            v4::set_checksum(&mut out[..hlen]);
            Ok(hlen + len)
        }
        Plan::V6Whole => {
            if index > 0 {
                return Err(RefragError::NoSuchPiece);
            }
            let out = out.get_mut(..total).ok_or(RefragError::OutTooSmall)?;
            out.copy_from_slice(dg);
            Ok(total)
        }
        Plan::V6 { hlen, next_at, cut } => {
            let (off, len) = cut.piece(index).ok_or(RefragError::NoSuchPiece)?;
            let size = hlen + FRAGMENT_HEADER_LEN + len;
            let out = out.get_mut(..size).ok_or(RefragError::OutTooSmall)?;
            out[..hlen].copy_from_slice(&dg[..hlen]);
            out[next_at] = ipv6::NEXT_FRAGMENT;
            let more = index + 1 < cut.count();
            let word = off as u16 | u16::from(more);
            let fh = &mut out[hlen..hlen + FRAGMENT_HEADER_LEN];
            fh[0] = dg[next_at];
            fh[1] = 0;
            fh[2..4].copy_from_slice(&word.to_be_bytes());
            fh[4..8].copy_from_slice(&ident.to_be_bytes());
            let data = &dg[hlen + off..hlen + off + len];
            out[hlen + FRAGMENT_HEADER_LEN..].copy_from_slice(data);
            let payload = (size - ipv6::HEADER_LEN) as u16;
            out[ipv6::PAYLOAD_LEN..ipv6::PAYLOAD_LEN + 2].copy_from_slice(&payload.to_be_bytes());
            Ok(size)
        }
    }
}

/// `ip_options_fragment` on an IPv4 header's options: every option whose
/// copied bit (0x80) is clear becomes No Operation bytes; End of Options
/// List, or a length that does not fit, ends the walk.
fn options_fragment(opts: &mut [u8]) {
    const END: u8 = 0;
    const NOOP: u8 = 1;
    let mut at = 0;
    while let Some(&kind) = opts.get(at) {
        match kind {
            END => return,
            NOOP => at += 1,
            _ => {
                let Some(&len) = opts.get(at + 1) else {
                    return;
                };
                let len = usize::from(len);
                if len < 2 || at + len > opts.len() {
                    return;
                }
                if kind & 0x80 == 0 {
                    opts[at..at + len].fill(NOOP);
                }
                at += len;
            }
        }
    }
}
