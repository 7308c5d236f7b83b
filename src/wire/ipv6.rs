//! The IPv6 header (RFC 8200): the fixed header's one length check, the
//! extension-header walk as Linux's `ipv6_skip_exthdr`, and the in-place
//! hop-limit decrement. There is no header checksum.

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Offset of the payload length.
pub const PAYLOAD_LEN: usize = 4;
/// Offset of the next-header field.
pub const NEXT_HEADER: usize = 6;
/// Offset of the hop limit.
pub const HOP_LIMIT: usize = 7;
/// Offset of the source address.
pub const SRC: usize = 8;
/// Offset of the destination address.
pub const DST: usize = 24;

/// Next header: Hop-by-Hop Options.
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Next header: Routing.
pub const NEXT_ROUTING: u8 = 43;
/// Next header: Fragment.
pub const NEXT_FRAGMENT: u8 = 44;
/// Next header: Encapsulating Security Payload (a transport, as Linux sees it).
pub const NEXT_ESP: u8 = 50;
/// Next header: Authentication Header.
pub const NEXT_AUTH: u8 = 51;
/// Next header: No Next Header.
pub const NEXT_NONE: u8 = 59;
/// Next header: Destination Options.
pub const NEXT_DEST_OPTS: u8 = 60;

/// Why bytes are not an IPv6 header, or its extension-header chain cannot
/// be walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not version 6.
    Version,
    /// Fewer bytes than the fixed header, or than its payload length says.
    Truncated,
    /// Payload length 0 (a jumbogram, RFC 2675: not supported, as Linux
    /// does not forward them either).
    BadLength,
    /// An extension header runs past the end of the packet.
    ExtTruncated,
    /// The chain ends in No Next Header: Linux's walk fails, so conntrack
    /// cannot find a transport (INVALID).
    NoNextHeader,
    /// The Hop-by-Hop Options header holds an option Linux drops the
    /// packet for (see [`check_hop_by_hop`]).
    BadHopByHop,
}

/// A checked IPv6 fixed header at the start of a buffer.
///
/// Guarantees: the version is 6 and 40 bytes exist in the buffer it was
/// checked against; [`Header::check_packet`] also guarantees that the
/// buffer holds `total_len` = 40 + payload length bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 40 + the payload length field.
    pub total_len: usize,
    /// The next-header field of the fixed header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

/// Where the extension-header chain ends, as `ipv6_skip_exthdr` finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, ESP, ...).
    pub protocol: u8,
    /// Offset of its header from the start of the IPv6 header.
    pub offset: usize,
    /// A fragment header was crossed or met: its offset (in 8-byte units)
    /// and more-fragments flag. An atomic fragment (0, false) holds a whole
    /// datagram (the packet parser still hands it to the reassembler, as
    /// Linux's defrag queues it).
    pub fragment: Option<(u16, bool)>,
    /// An Authentication Header was crossed. Conntrack skips it (as here),
    /// but nftables' `meta l4proto` stops there (`ipv6_find_hdr` with
    /// `IP6_FH_F_AUTH`, in `nf_tables_ipv6.h`): to rules, the packet is AH.
    pub auth: bool,
}

impl Chain {
    /// The protocol rules match, as nftables' `meta l4proto`: AH when the
    /// walk crossed one, else the upper layer.
    pub fn rule_protocol(&self) -> u8 {
        if self.auth {
            NEXT_AUTH
        } else {
            self.protocol
        }
    }
}

impl Chain {
    /// True when the packet is part of a datagram of several fragments (not
    /// atomic).
    pub fn is_fragment(&self) -> bool {
        matches!(self.fragment, Some((off, more)) if off != 0 || more)
    }
}

impl Header {
    /// Check the fixed header at the start of `b`, which may hold fewer
    /// than `total_len` bytes (an ICMPv6 error quotes a packet cut short).
    pub fn check(b: &[u8]) -> Result<Header, HeaderError> {
        let first = *b.first().ok_or(HeaderError::Truncated)?;
        if first >> 4 != 6 {
            return Err(HeaderError::Version);
        }
        Header::check_quoted(b)
    }

    /// [`Header::check`] for the header an ICMPv6 error quotes, whose
    /// version field is not read: Linux conntrack reads a quoted header as
    /// IPv6 because the error is ICMPv6 (`ipv6_get_l4proto` in
    /// nf_conntrack_core.c checks no version).
    pub fn check_quoted(b: &[u8]) -> Result<Header, HeaderError> {
        let h = b.get(..HEADER_LEN).ok_or(HeaderError::Truncated)?;
        let payload = usize::from(u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]));
        let mut src = [0; 16];
        let mut dst = [0; 16];
        src.copy_from_slice(&h[SRC..SRC + 16]);
        dst.copy_from_slice(&h[DST..DST + 16]);
        Ok(Header {
            total_len: HEADER_LEN + payload,
            next_header: h[NEXT_HEADER],
            hop_limit: h[HOP_LIMIT],
            src,
            dst,
        })
    }

    /// [`Header::check`] for a whole packet: the buffer holds `total_len`
    /// bytes and the payload length is not 0.
    pub fn check_packet(b: &[u8]) -> Result<Header, HeaderError> {
        let h = Header::check(b)?;
        if h.total_len == HEADER_LEN && h.next_header == NEXT_HOP_BY_HOP {
            return Err(HeaderError::BadLength);
        }
        if b.len() < h.total_len {
            return Err(HeaderError::Truncated);
        }
        Ok(h)
    }
}

/// True for the next-header values `ipv6_skip_exthdr` walks over (and No
/// Next Header, where it stops with an error).
fn is_extension(next: u8) -> bool {
    matches!(
        next,
        NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_FRAGMENT | NEXT_AUTH | NEXT_NONE | NEXT_DEST_OPTS
    )
}

/// Walk the extension headers of the packet `b` (starting with its fixed
/// header, `first` being the fixed header's next-header field), as Linux's
/// `ipv6_skip_exthdr`: Hop-by-Hop, Routing and Destination Options are
/// `(len + 1) * 8` bytes, AH `(len + 2) * 4`, a Fragment header 8; a
/// fragment header with a non-zero offset stops the walk (what follows is
/// not a header); No Next Header fails.
///
/// Guarantees: never panics; the returned offset is at most `b.len()`
/// (the transport header itself is not checked); the walk does at most
/// `b.len() / 8` steps.
pub fn walk(b: &[u8], first: u8) -> Result<Chain, HeaderError> {
    let mut next = first;
    let mut at = HEADER_LEN;
    let mut fragment = None;
    let mut auth = false;
    while is_extension(next) {
        if next == NEXT_NONE {
            return Err(HeaderError::NoNextHeader);
        }
        let hdr = b.get(at..at + 2).ok_or(HeaderError::ExtTruncated)?;
        let len = if next == NEXT_FRAGMENT {
            let word = b.get(at + 2..at + 4).ok_or(HeaderError::ExtTruncated)?;
            let field = u16::from_be_bytes([word[0], word[1]]);
            let offset = field >> 3;
            fragment = Some((offset, field & 1 == 1));
            if offset != 0 {
                next = hdr[0];
                break;
            }
            8
        } else if next == NEXT_AUTH {
            auth = true;
            (usize::from(hdr[1]) + 2) * 4
        } else {
            (usize::from(hdr[1]) + 1) * 8
        };
        next = hdr[0];
        at += len;
        if at > b.len() {
            return Err(HeaderError::ExtTruncated);
        }
    }
    Ok(Chain {
        protocol: next,
        offset: at,
        fragment,
        auth,
    })
}

/// Option types of the Hop-by-Hop Options header that Linux knows
/// (`ip6_parse_tlv`, net/ipv6/exthdrs.c).
const OPT_PAD1: u8 = 0;
const OPT_PADN: u8 = 1;
const OPT_ROUTER_ALERT: u8 = 5;
const OPT_CALIPSO: u8 = 7;
const OPT_IOAM: u8 = 0x31;
const OPT_JUMBO: u8 = 0xc2;
/// At most this many options other than padding in a Hop-by-Hop header
/// (`net.ipv6.max_hbh_opts_number`, default `IP6_DEFAULT_MAX_HBH_OPTS_CNT`).
pub const MAX_HOP_BY_HOP_OPTIONS: usize = 8;

/// Check the Hop-by-Hop Options header right after the fixed header of the
/// packet `b`, as Linux does to every packet it receives, forwarded or not,
/// before netfilter sees it (`ipv6_parse_hopopts` from `ip6_rcv_core`, the
/// options read by `ip6_parse_tlv`): padding (Pad1, PadN) at most 7 bytes
/// in a row and PadN zero-filled; at most [`MAX_HOP_BY_HOP_OPTIONS`] other
/// options, each within the header; Router Alert of length 2; an IOAM
/// option 4-byte aligned (its data is not read while IOAM is off, the
/// default); Jumbo Payload never (it needs a payload length of 0 and more
/// than 65535 bytes, a packet tunfw cannot carry); CALIPSO never (no
/// CALIPSO domain is configured, so `calipso_validate` fails); an unknown
/// option only when its action bits are 00 (skip; 01, 10 and 11 discard).
/// Destination Options are not checked: a router does not read them.
///
/// Guarantees: never panics; `Err(ExtTruncated)` when the header does not
/// fit in `b`, `Err(BadHopByHop)` for a bad option.
pub fn check_hop_by_hop(b: &[u8]) -> Result<(), HeaderError> {
    let hdr = b
        .get(HEADER_LEN..HEADER_LEN + 2)
        .ok_or(HeaderError::ExtTruncated)?;
    let end = HEADER_LEN + (usize::from(hdr[1]) + 1) * 8;
    let opts = b
        .get(HEADER_LEN + 2..end)
        .ok_or(HeaderError::ExtTruncated)?;
    let bad = Err(HeaderError::BadHopByHop);
    let (mut off, mut padding, mut options) = (0, 0, 0);
    while let Some(&ty) = opts.get(off) {
        if ty == OPT_PAD1 {
            padding += 1;
            if padding > 7 {
                return bad;
            }
            off += 1;
            continue;
        }
        let Some(&len) = opts.get(off + 1) else {
            return bad;
        };
        let Some(data) = opts.get(off + 2..off + 2 + usize::from(len)) else {
            return bad;
        };
        if ty == OPT_PADN {
            padding += 2 + data.len();
            if padding > 7 || data.iter().any(|&x| x != 0) {
                return bad;
            }
        } else {
            options += 1;
            // Offset of the option from the start of the IPv6 header.
            let at = HEADER_LEN + 2 + off;
            let ok = match ty {
                OPT_ROUTER_ALERT => len == 2,
                OPT_IOAM => at % 4 == 0,
                OPT_JUMBO | OPT_CALIPSO => false,
                _ => ty >> 6 == 0,
            };
            if options > MAX_HOP_BY_HOP_OPTIONS || !ok {
                return bad;
            }
            padding = 0;
        }
        off += 2 + data.len();
    }
    Ok(())
}

/// Decrement the hop limit of the IPv6 packet in `buf` (no checksum to
/// patch). Does nothing to a buffer shorter than the fixed header or a
/// hop limit of 0.
pub fn decrement_hop_limit(buf: &mut [u8]) {
    if let Some(h) = buf.get_mut(HOP_LIMIT) {
        *h = h.saturating_sub(1);
    }
}

/// True for a unicast address a router may forward from or to: not
/// unspecified, loopback, multicast or link-local (Linux `ip6_forward`
/// refuses those sources; link-local destinations never route).
pub fn is_forwardable(a: [u8; 16]) -> bool {
    let bits = u128::from_be_bytes(a);
    let link_local = bits >> 118 == 0x3fa; // fe80::/10
    bits > 1 && a[0] != 0xff && !link_local
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, ext: &[u8], rest: usize) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = 0x60;
        let payload = (ext.len() + rest) as u16;
        p[PAYLOAD_LEN..PAYLOAD_LEN + 2].copy_from_slice(&payload.to_be_bytes());
        p[NEXT_HEADER] = next;
        p[HOP_LIMIT] = 64;
        p.extend_from_slice(ext);
        p.resize(HEADER_LEN + usize::from(payload), 0);
        p
    }

    #[test]
    fn the_walk_skips_options_routing_and_auth() {
        // Hop-by-hop (8) -> routing (16) -> AH (12 + 4 = 16) -> TCP.
        let mut ext = vec![NEXT_ROUTING, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[NEXT_AUTH, 1]);
        ext.resize(8 + 16, 0);
        ext.extend_from_slice(&[6, 2]);
        ext.resize(8 + 16 + 16, 0);
        let p = packet(NEXT_HOP_BY_HOP, &ext, 20);
        let h = Header::check_packet(&p).unwrap();
        let c = walk(&p, h.next_header).unwrap();
        assert_eq!((c.protocol, c.offset, c.fragment), (6, 80, None));
        assert_eq!(c.rule_protocol(), NEXT_AUTH, "rules see the AH");
        let p = packet(NEXT_HOP_BY_HOP, &[6, 0, 0, 0, 0, 0, 0, 0], 20);
        let c = walk(&p, NEXT_HOP_BY_HOP).unwrap();
        assert_eq!((c.protocol, c.rule_protocol()), (6, 6));
    }

    #[test]
    fn esp_is_a_transport_and_none_fails() {
        let p = packet(NEXT_ESP, &[], 8);
        assert_eq!(walk(&p, NEXT_ESP).unwrap().protocol, NEXT_ESP);
        let p = packet(NEXT_DEST_OPTS, &[NEXT_NONE, 0, 0, 0, 0, 0, 0, 0], 0);
        assert_eq!(walk(&p, NEXT_DEST_OPTS), Err(HeaderError::NoNextHeader));
    }

    #[test]
    fn a_truncated_chain_fails() {
        let p = packet(NEXT_DEST_OPTS, &[17, 1, 0, 0, 0, 0, 0, 0], 0);
        assert_eq!(walk(&p, NEXT_DEST_OPTS), Err(HeaderError::ExtTruncated));
        let p = packet(NEXT_ROUTING, &[], 1);
        assert_eq!(walk(&p, NEXT_ROUTING), Err(HeaderError::ExtTruncated));
    }

    #[test]
    fn fragments_first_later_and_atomic() {
        let frag = |field: u16| {
            let f = field.to_be_bytes();
            packet(NEXT_FRAGMENT, &[17, 0, f[0], f[1], 0, 0, 0, 1], 8)
        };
        let atomic = walk(&frag(0), NEXT_FRAGMENT).unwrap();
        assert_eq!((atomic.protocol, atomic.offset), (17, 48));
        assert!(!atomic.is_fragment());
        let first = walk(&frag(1), NEXT_FRAGMENT).unwrap();
        assert!(first.is_fragment());
        let later = walk(&frag(185 << 3), NEXT_FRAGMENT).unwrap();
        assert_eq!(later.fragment, Some((185, false)));
        assert!(later.is_fragment());
    }

    #[test]
    fn hop_by_hop_options_as_linux_reads_them() {
        let hbh = |opts: &[u8]| {
            let mut ext = vec![17, (opts.len() as u8 + 2) / 8 - 1];
            ext.extend_from_slice(opts);
            packet(NEXT_HOP_BY_HOP, &ext, 8)
        };
        let ok: &[&[u8]] = &[
            &[1, 4, 0, 0, 0, 0],    // PadN
            &[0, 0, 0, 0, 0, 0],    // Pad1 x 6
            &[0x1e, 4, 1, 2, 3, 4], // unknown, action 00: skipped
            &[5, 2, 0, 0, 1, 0],    // router alert
            &[1, 0, 0x31, 0, 1, 0], // IOAM at offset 44
            &[
                0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 1, 4, 0, 0,
                0, 0,
            ],
        ];
        for opts in ok {
            assert_eq!(check_hop_by_hop(&hbh(opts)), Ok(()), "{opts:x?}");
        }
        let bad: &[&[u8]] = &[
            &[0; 14],                                     // 14 bytes of Pad1
            &[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // one PadN of 14
            &[1, 4, 0, 0, 7, 0],                          // PadN not zero
            &[0x5e, 4, 1, 2, 3, 4],                       // action 01
            &[0x9e, 4, 1, 2, 3, 4],                       // action 10
            &[0xde, 4, 1, 2, 3, 4],                       // action 11
            &[5, 4, 0, 0, 0, 0],                          // router alert of length 4
            &[0xc2, 4, 0, 1, 0, 0],                       // jumbo payload
            &[7, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], // CALIPSO
            &[0x31, 4, 0, 0, 0, 0],                       // IOAM at offset 42
            &[0x1e, 9, 1, 2, 3, 4],                       // runs past the header
            &[
                0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 0x1e, 0, 1,
                2, 0, 0,
            ],
        ];
        for opts in bad {
            assert_eq!(
                check_hop_by_hop(&hbh(opts)),
                Err(HeaderError::BadHopByHop),
                "{opts:x?}"
            );
        }
        let p = packet(NEXT_HOP_BY_HOP, &[17, 1, 1, 4, 0, 0, 0, 0], 0);
        assert_eq!(check_hop_by_hop(&p), Err(HeaderError::ExtTruncated));
        assert_eq!(check_hop_by_hop(&p[..41]), Err(HeaderError::ExtTruncated));
    }

    #[test]
    fn lengths_are_checked() {
        let p = packet(17, &[], 8);
        assert!(Header::check_packet(&p[..47]).is_err());
        assert_eq!(Header::check(&p[..40]).unwrap().total_len, 48);
        assert_eq!(Header::check_packet(&[0x45; 40]), Err(HeaderError::Version));
    }

    #[test]
    fn scope_of_forwardable_addresses() {
        let a = |s: &str| s.parse::<core::net::Ipv6Addr>().unwrap().octets();
        assert!(is_forwardable(a("fd00::1")));
        assert!(is_forwardable(a("2001:db8::1")));
        for bad in ["::", "::1", "fe80::1", "febf::1", "ff02::1", "ff0e::1"] {
            assert!(!is_forwardable(a(bad)), "{bad}");
        }
        assert!(is_forwardable(a("fec0::1")));
    }
}
