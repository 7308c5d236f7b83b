//! The IPv4 header (RFC 791): the one length check every reader uses, and
//! the in-place TTL decrement.

use super::checksum::update16;

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the total length.
pub const TOTAL_LEN: usize = 2;
/// Offset of the identification.
pub const IDENT: usize = 4;
/// Offset of the flags and fragment offset.
pub const FRAGMENT: usize = 6;
/// Offset of the TTL.
pub const TTL: usize = 8;
/// Offset of the protocol.
pub const PROTOCOL: usize = 9;
/// Offset of the header checksum.
pub const CHECKSUM: usize = 10;
/// Offset of the source address.
pub const SRC: usize = 12;
/// Offset of the destination address.
pub const DST: usize = 16;

/// Why bytes are not an IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not version 4.
    Version,
    /// Fewer bytes than the header (or than its total length, where required).
    Truncated,
    /// Header length below 20, or total length below the header length.
    BadLength,
}

/// A checked IPv4 header at the start of a buffer.
///
/// Guarantees: the version is 4 and `header_len` (20 to 60) bytes exist in
/// the buffer it was checked against. `total_len` is the header's own
/// field; that it is at least `header_len` and that the buffer holds that
/// many bytes is checked by [`Header::check_packet`] only: an ICMP error
/// quotes a header whose packet was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header length in bytes, options included.
    pub header_len: usize,
    /// The total length field.
    pub total_len: usize,
    /// The protocol of the payload.
    pub protocol: u8,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Fragment offset in 8-byte units (the low 13 bits).
    pub fragment_offset: u16,
    /// The more-fragments flag.
    pub more_fragments: bool,
    /// Time to live.
    pub ttl: u8,
}

impl Header {
    /// Check the header at the start of `b`, which may hold fewer than
    /// `total_len` bytes (an ICMP error quotes a packet cut short).
    pub fn check(b: &[u8]) -> Result<Header, HeaderError> {
        Header::read(b, false, true)
    }

    /// [`Header::check`] for the header an ICMP error quotes, whose version
    /// field is not read: Linux conntrack reads a quoted header as IPv4
    /// because the error is ICMP (`ipv4_get_l4proto` in
    /// nf_conntrack_core.c checks no version).
    pub fn check_quoted(b: &[u8]) -> Result<Header, HeaderError> {
        Header::read(b, false, false)
    }

    /// [`Header::check`] for a whole packet: `total_len` is at least the
    /// header length and that many bytes are in `b`.
    pub fn check_packet(b: &[u8]) -> Result<Header, HeaderError> {
        Header::read(b, true, true)
    }

    fn read(b: &[u8], whole: bool, version: bool) -> Result<Header, HeaderError> {
        let first = *b.first().ok_or(HeaderError::Truncated)?;
        if version && first >> 4 != 4 {
            return Err(HeaderError::Version);
        }
        if b.len() < MIN_HEADER_LEN {
            return Err(HeaderError::Truncated);
        }
        let header_len = usize::from(first & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([b[TOTAL_LEN], b[TOTAL_LEN + 1]]));
        if header_len < MIN_HEADER_LEN || (whole && total_len < header_len) {
            return Err(HeaderError::BadLength);
        }
        if b.len() < header_len || (whole && b.len() < total_len) {
            return Err(HeaderError::Truncated);
        }
        let frag = u16::from_be_bytes([b[FRAGMENT], b[FRAGMENT + 1]]);
        Ok(Header {
            header_len,
            total_len,
            protocol: b[PROTOCOL],
            src: [b[SRC], b[SRC + 1], b[SRC + 2], b[SRC + 3]],
            dst: [b[DST], b[DST + 1], b[DST + 2], b[DST + 3]],
            fragment_offset: frag & 0x1fff,
            more_fragments: frag & 0x2000 != 0,
            ttl: b[TTL],
        })
    }

    /// Whether this is a fragment (not the whole datagram).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// Decrement the TTL of the IPv4 packet in `buf` and patch the header
/// checksum incrementally (RFC 1624). Buffers shorter than a header, and a
/// TTL of 0, are left untouched.
pub fn decrement_ttl(buf: &mut [u8]) {
    if buf.len() < MIN_HEADER_LEN || buf[TTL] == 0 {
        return;
    }
    let old = u16::from_be_bytes([buf[TTL], buf[PROTOCOL]]);
    buf[TTL] -= 1;
    let new = u16::from_be_bytes([buf[TTL], buf[PROTOCOL]]);
    let check = u16::from_be_bytes([buf[CHECKSUM], buf[CHECKSUM + 1]]);
    let patched = update16(check, old, new);
    buf[CHECKSUM..CHECKSUM + 2].copy_from_slice(&patched.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ihl_words: u8, total_len: u16) -> [u8; 20] {
        let mut h = [0u8; 20];
        h[0] = 0x40 | ihl_words;
        h[TOTAL_LEN..TOTAL_LEN + 2].copy_from_slice(&total_len.to_be_bytes());
        h[TTL] = 64;
        h[PROTOCOL] = 17;
        h
    }

    #[test]
    fn checks_in_the_order_the_reasons_need() {
        assert_eq!(Header::check(&[]), Err(HeaderError::Truncated));
        assert_eq!(Header::check(&[0x60]), Err(HeaderError::Version));
        assert_eq!(Header::check(&[0x45; 10]), Err(HeaderError::Truncated));
        assert_eq!(Header::check(&header(4, 20)), Err(HeaderError::BadLength));
        // A quoted header may claim more than is there, or less than itself...
        assert!(Header::check(&header(5, 1000)).is_ok());
        assert!(Header::check(&header(5, 0)).is_ok());
        // ...a packet may not.
        assert_eq!(
            Header::check_packet(&header(5, 1000)),
            Err(HeaderError::Truncated)
        );
        assert_eq!(
            Header::check_packet(&header(5, 0)),
            Err(HeaderError::BadLength)
        );
        // Options claimed but absent.
        assert_eq!(Header::check(&header(6, 24)), Err(HeaderError::Truncated));
        let h = Header::check_packet(&header(5, 20)).expect("whole");
        assert_eq!(
            (h.header_len, h.total_len, h.protocol, h.ttl),
            (20, 20, 17, 64)
        );
        assert!(!h.is_fragment());
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_right() {
        let mut h = header(5, 20);
        let c = crate::wire::checksum::internet_checksum(&[&h]);
        h[CHECKSUM..CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        decrement_ttl(&mut h);
        assert_eq!(h[TTL], 63);
        assert_eq!(crate::wire::checksum::internet_checksum(&[&h]), 0);
    }
}
