//! The kernel's `in6_pton` and `in4_pton` (net/core/utils.c), which
//! `nf_conntrack_ftp.c`'s `get_ipv6_addr` uses for the address of an
//! `EPRT |2|` line. They differ from a textbook parser (such as
//! `Ipv6Addr::from_str`), and what an EPRT line announces is what they read:
//!
//! - a group may have any number of hex digits as long as its value fits
//!   16 bits (`00050` is `0x50`: the next digit is refused only once the
//!   group's top nibble is set);
//! - the address ends at the delimiter, at a NUL byte, or at the end of the
//!   data; an embedded IPv4 address ends at the delimiter, a NUL or a colon;
//! - an embedded IPv4 octet is decimal, at most 255, leading zeros allowed.
//!
//! Both return the address and the offset where parsing stopped (the
//! character that ended it, which the caller skips), as the kernel's `end`.

use core::net::Ipv6Addr;

const XDIGIT: u32 = 0x0001_0000;
const DIGIT: u32 = 0x0002_0000;
const COLON_MASK: u32 = 0x0070_0000;
const COLON_1: u32 = 0x0010_0000;
const COLON_2: u32 = 0x0020_0000;
const COLON_1_2: u32 = 0x0040_0000;
const DOT: u32 = 0x0080_0000;
const DELIM: u32 = 0x1000_0000;
const NULL: u32 = 0x2000_0000;
const UNKNOWN: u32 = 0x4000_0000;

/// The kernel's `xdigit2bin`: a character's class, and its value for a hex
/// digit (past the end of the data the kernel reads a NUL).
fn class(src: &[u8], at: usize, delim: u8) -> u32 {
    let c = src.get(at).copied().unwrap_or(0);
    if c == delim || c == 0 {
        return DELIM;
    }
    match c {
        b':' => COLON_MASK,
        b'.' => DOT,
        b'0'..=b'9' => u32::from(c - b'0') | XDIGIT | DIGIT,
        b'a'..=b'f' => u32::from(c - b'a' + 10) | XDIGIT,
        b'A'..=b'F' => u32::from(c - b'A' + 10) | XDIGIT,
        _ => UNKNOWN,
    }
}

/// `in4_pton(src + start, ..., delim, &end)`: four decimal octets separated
/// by dots, ended by `delim`, a NUL, a colon or the end of `src`. The
/// octets and the offset (in `src`) of the character that ended them.
fn in4_pton(src: &[u8], start: usize, delim: u8) -> Option<([u8; 4], usize)> {
    let mut out = [0u8; 4];
    let mut s = start;
    let mut i = 0;
    // An int in the kernel: the class bits ride along above bit 16 (so that
    // "0" is not an empty octet); its low 16 bits are the value.
    let mut w: u32 = 0;
    loop {
        let c = class(src, s, delim);
        if c & (DIGIT | DOT | DELIM | COLON_MASK) == 0 {
            return None;
        }
        if c & (DOT | DELIM | COLON_MASK) != 0 {
            if w == 0 {
                return None;
            }
            out[i] = w as u8;
            w = 0;
            i += 1;
            if c & (DELIM | COLON_MASK) != 0 {
                return (i == 4).then_some((out, s));
            }
        } else {
            w = w.wrapping_mul(10).wrapping_add(c);
            if w & 0xFFFF > 255 {
                return None;
            }
        }
        if i >= 4 {
            return None;
        }
        s += 1;
    }
}

/// `in6_pton(src, len, dst, delim, &end)`: the address at the start of
/// `src` and the offset of the character that ended it.
pub fn in6_pton(src: &[u8], delim: u8) -> Option<(Ipv6Addr, usize)> {
    let mut buf = [0u8; 16];
    let mut d = 0usize;
    let mut dc: Option<usize> = None;
    let mut tok: Option<usize> = None;
    let mut state = COLON_1_2 | XDIGIT | NULL;
    let mut w: u32 = 0;
    let mut s = 0usize;
    loop {
        let c = class(src, s, delim);
        if c & state == 0 {
            return None;
        }
        if c & (DELIM | COLON_MASK) != 0 {
            // One 16-bit word done.
            if state & NULL == 0 {
                // The states keep d within the buffer, as in the kernel;
                // refuse rather than panic all the same.
                buf.get_mut(d..d + 2)?
                    .copy_from_slice(&(w as u16).to_be_bytes());
                d += 2;
            }
            w = 0;
            if c & DELIM != 0 {
                break;
            }
            state = match state & COLON_MASK {
                COLON_2 => {
                    dc = Some(d);
                    if d >= 16 {
                        XDIGIT | DELIM | NULL
                    } else {
                        XDIGIT | DELIM
                    }
                }
                m if m == COLON_1 | COLON_1_2 => XDIGIT | COLON_2,
                COLON_1 => XDIGIT,
                COLON_1_2 => COLON_2,
                _ => 0,
            };
            tok = Some(s + 1);
        } else if c & DOT != 0 {
            // DOT is allowed only after a colon (see below), so tok is set.
            let (v4, end) = in4_pton(src, tok.unwrap_or(s), delim)?;
            buf.get_mut(d..d + 4)?.copy_from_slice(&v4);
            d += 4;
            s = end;
            break;
        } else {
            w = (w << 4) | (c & 0xFF);
            state = COLON_1 | DELIM;
            if w & 0xF000 == 0 {
                state |= XDIGIT;
            }
            if dc.is_none() && d + 2 < 16 {
                state |= COLON_1_2;
                state &= !DELIM;
            }
            if d + 2 >= 16 {
                state &= !(COLON_1 | COLON_1_2);
            }
        }
        if (dc.is_some() && d + 4 < 16) || d + 4 == 16 {
            state |= DOT;
        }
        if d >= 16 {
            state &= !(XDIGIT | COLON_MASK);
        }
        s += 1;
    }
    // The words after "::" go to the end, zeros between.
    let mut dst = [0u8; 16];
    match dc {
        Some(dc) => {
            let tail = d - dc;
            dst[16 - tail..].copy_from_slice(&buf[dc..d]);
            dst[..dc].copy_from_slice(&buf[..dc]);
        }
        None => dst = buf,
    }
    Some((Ipv6Addr::from(dst), s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spelling and what in6_pton makes of it (address, end offset).
    type Case = (&'static [u8], Option<(&'static str, usize)>);

    fn ok(text: &[u8], delim: u8) -> Option<(String, usize)> {
        in6_pton(text, delim).map(|(a, end)| (a.to_string(), end))
    }

    #[test]
    fn reads_what_the_kernel_reads() {
        let cases: &[Case] = &[
            (b"fd00:7f:1::50|", Some(("fd00:7f:1::50", 13))),
            (b"FD00:7F:1::50|", Some(("fd00:7f:1::50", 13))),
            (
                b"fd00:007f:0001:0000:0000:0000:0000:0050|",
                Some(("fd00:7f:1::50", 39)),
            ),
            (b"::1|", Some(("::1", 3))),
            (b"::|", Some(("::", 2))),
            (b"fd00::|", Some(("fd00::", 6))),
            // Groups of more than four digits whose value fits 16 bits.
            (b"fd00:7f:1::00050|", Some(("fd00:7f:1::50", 16))),
            (b"00000fd00:7f:1::50|", Some(("fd00:7f:1::50", 18))),
            (b"fd00:7f:1::10050|", None),
            // Embedded IPv4, zero octets and leading zeros included.
            (b"fd00:7f:1::0.0.0.80|", Some(("fd00:7f:1::50", 19))),
            (b"::ffff:10.0.1.2|", Some(("::ffff:10.0.1.2", 15))),
            (b"::ffff:010.000.001.002|", Some(("::ffff:10.0.1.2", 22))),
            (b"::1.2.3.256|", None),
            (b"::1.2.3|", None),
            (b"::1..2.3|", None),
            // An embedded IPv4 address may end at a colon (the caller then
            // skips it as it skips the delimiter).
            (b"::1.2.3.4:99|", Some(("::102:304", 9))),
            // NUL and the end of the data end an address too.
            (b"fd00:7f:1::50\0|", Some(("fd00:7f:1::50", 13))),
            (b"fd00:7f:1::50", Some(("fd00:7f:1::50", 13))),
            // Refused.
            (b"|", None),
            (b"fd00:7f:1:::50|", None),
            (b"fd00::7f::50|", None),
            (b"fd00:7f:1::50:|", None),
            (b":fd00:7f:1::50|", None),
            (b"fd00:7f:1::50%eth0|", None),
            (b"[fd00:7f:1::50]|", None),
            (b"fd00:7f:1:0:0:0:0:0:50|", None),
            (b"fd00:7f:1:0:0:0:0|", None),
            (b"fd00:7f:1::g50|", None),
            (b" fd00:7f:1::50|", None),
            (b"fd00:7f:1::50 |", None),
            (b"1:2:3:4:5:6:7::|", Some(("1:2:3:4:5:6:7:0", 15))),
            (b"::2:3:4:5:6:7:8|", Some(("0:2:3:4:5:6:7:8", 15))),
            (b"1:2:3:4:5:6:7:8|", Some(("1:2:3:4:5:6:7:8", 15))),
            (b"1:2:3:4:5:6:1.2.3.4|", Some(("1:2:3:4:5:6:102:304", 19))),
        ];
        for &(text, want) in cases {
            assert_eq!(
                ok(text, b'|'),
                want.map(|(a, e)| (a.parse::<Ipv6Addr>().unwrap().to_string(), e)),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // The delimiter ends it whatever it is.
        assert_eq!(ok(b"::1!", b'!'), Some(("::1".into(), 3)));
        assert_eq!(ok(b"::1!", b'|'), None);
    }
}
