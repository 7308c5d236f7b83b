//! The FTP helper (Linux `nf_conntrack_ftp.c`): reads PORT/EPRT from the
//! client and 227/229 from the server on an FTP control flow, so that the data
//! connection they announce is RELATED.
//!
//! Parsing follows the kernel's search table, case-insensitively, on segments
//! that start right after a newline seen earlier in the same direction:
//!
//! | direction | prefix | then | numbers |
//! |---|---|---|---|
//! | client | `PORT` | skip to a space | `a,b,c,d,p1,p2` ended by `\r` |
//! | client | `EPRT` | skip to a space | `<d>1<d>a.b.c.d<d>port<d>` on IPv4, `<d>2<d>ipv6<d>port<d>` on IPv6 (`<d>` any printable non-digit) |
//! | server | `227 ` | first digit anywhere after | six numbers separated by `,` ended by any other character |
//! | server | `229 ` | skip to `(` | `<d><d><d>port<d>` |
//!
//! IPv6 control flows use the same table (the kernel registers the helper
//! for `AF_INET` and `AF_INET6` with one `help()`), with two differences
//! that come from the family of the control flow, which [`parse`] is given:
//!
//! - EPRT's protocol digit must be the control flow's family (`try_eprt`:
//!   `1` only on IPv4, `2` only on IPv6). A mismatch is not an
//!   announcement: the kernel's `getnum` fails, which `find_pattern`
//!   reports as a partial match; here a complete such line is
//!   [`Inspect::Malformed`], as every unparsable line is.
//! - PORT and 227 are parsed whatever the family: the kernel's search table
//!   has no family check. But `try_rfc959` writes the four numbers to
//!   `cmd->u3.ip`, the first 4 bytes of the 16-byte address union, which
//!   `help()` had filled with the sender's own address. On an IPv6 flow the
//!   announced address is therefore the sender's IPv6 address with its first
//!   32 bits replaced by `a.b.c.d` ([`announced_address`]), and the bounce
//!   check (`memcmp` with the sender's address) passes only when `a.b.c.d`
//!   are the sender's first four bytes. So PORT and 227 on IPv6 expect
//!   nothing (refused as a bounce) unless they name those four bytes, and
//!   then the data connection is expected to the sender's own IPv6 address.
//!
//! A segment that starts like one of these but ends before its arguments are
//! complete (no newline yet) is a command split across segments: tunfw keeps
//! it in a bounded per-flow line buffer ([`LINE_MAX`] bytes per direction),
//! forwards it, and parses the line once the segment that continues it
//! (in sequence) arrives. Linux instead drops the partial piece and relies on
//! a retransmission carrying the whole line, which does not happen when the
//! receiver SACKs the rest (the sender then retransmits the piece alone).
//! A complete line that does not parse (garbage, octets over 255, ports over
//! 65535), a partial line that outgrows [`LINE_MAX`], or port 0: no
//! expectation, counted. A segment that starts a line is read whole, however
//! long, as the kernel reads it; only a line continued from an earlier
//! segment is bounded by the buffer.
//!
//! The range checks (octets over 255, ports over 65535 refused) are those of
//! net-next's "netfilter: nf_conntrack_ftp: avoid u16 overflows" (May 2026).
//! Linux 6.18, the parity harness's kernel, predates them: its `try_number`
//! keeps any value, `try_rfc959` ORs the shifted numbers together (so
//! `10,202,1,306` is 10.202.1.50 and `4,256` port 1280) and `get_port`
//! wraps at 16 bits (`65537` is port 1). README "Differences from Linux".
//!
//! Everything here is a pure function of the bytes; [`FtpState`] is the
//! per-flow state (where lines start, a partial line, the pending expectation).

mod snapshot;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::pton::in6_pton;
use crate::conntrack::seqadj::SeqAdjust;
use crate::conntrack::table::HelperState;
use crate::conntrack::tuple::Dir;
use crate::matchers::Family;
use crate::wire::tcp::SeqNum;

/// Which announcement a line carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `PORT a,b,c,d,p1,p2` (active, from the client).
    Port,
    /// `EPRT |1|a.b.c.d|port|` or `EPRT |2|ipv6|port|` (active, from the
    /// client; the digit must be the control flow's family).
    Eprt,
    /// `227 ... (a,b,c,d,p1,p2)` (passive, from the server).
    Pasv,
    /// `229 ... (|||port|)` (extended passive, from the server; no address).
    Epsv,
}

impl Command {
    /// The command's name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Port => "PORT",
            Command::Eprt => "EPRT",
            Command::Pasv => "227",
            Command::Epsv => "229",
        }
    }
}

/// What one segment's payload says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a command the helper reads.
    NoMatch,
    /// Starts like a command but its arguments do not parse through their
    /// terminator: a command split across segments, or a malformed one
    /// (Linux's "partial matching"; [`FtpState::inspect`] keeps the piece
    /// and parses the line when the rest arrives).
    Partial(Command),
    /// An announcement: the data connection will go to `addr` (the sender's
    /// own address when the command carries none, as 229) and `port`.
    Announce {
        /// Which command.
        command: Command,
        /// Announced address as written; `None` for 229 (EPSV), which names
        /// only a port. PORT and 227 write an IPv4 address on either family:
        /// [`announced_address`] is what it means on the control flow.
        addr: Option<IpAddr>,
        /// Announced port (1..=65535).
        port: u16,
        /// Where the announcement's arguments are in the parsed bytes:
        /// offset and length of what a NAT helper rewrites (the kernel's
        /// `matchoff`, `matchlen`: PORT's and 227's six numbers, EPRT's
        /// and 229's arguments from the first delimiter to the last).
        span: (usize, usize),
    },
    /// Parsed, but announces port 0: never expected.
    PortZero(Command),
}

struct Pattern {
    prefix: &'static [u8],
    skip: Option<u8>,
    command: Command,
}

const CLIENT_PATTERNS: [Pattern; 2] = [
    Pattern {
        prefix: b"PORT",
        skip: Some(b' '),
        command: Command::Port,
    },
    Pattern {
        prefix: b"EPRT",
        skip: Some(b' '),
        command: Command::Eprt,
    },
];

const SERVER_PATTERNS: [Pattern; 2] = [
    Pattern {
        prefix: b"227 ",
        skip: None,
        command: Command::Pasv,
    },
    Pattern {
        prefix: b"229 ",
        skip: Some(b'('),
        command: Command::Epsv,
    },
];

/// Parse the payload of one control-flow segment sent in `dir` (the original
/// direction is the client's) on a control flow of `family`. Never panics,
/// never allocates. An announced port is never 0 (that is
/// [`Parsed::PortZero`]); an EPRT address is of `family`.
pub fn parse(dir: Dir, family: Family, data: &[u8]) -> Parsed {
    if data.is_empty() {
        return Parsed::NoMatch;
    }
    let patterns = match dir {
        Dir::Original => &CLIENT_PATTERNS,
        Dir::Reply => &SERVER_PATTERNS,
    };
    for p in patterns {
        match find_pattern(data, p, family) {
            Found::No => continue,
            Found::Partial => return Parsed::Partial(p.command),
            Found::Yes(addr, port, span) => {
                if port == 0 {
                    return Parsed::PortZero(p.command);
                }
                return Parsed::Announce {
                    command: p.command,
                    addr,
                    port,
                    span,
                };
            }
        }
    }
    Parsed::NoMatch
}

enum Found {
    No,
    Partial,
    Yes(Option<IpAddr>, u16, (usize, usize)),
}

fn find_pattern(data: &[u8], p: &Pattern, family: Family) -> Found {
    let plen = p.prefix.len();
    if data.len() <= plen {
        // Short segment: a prefix of the pattern may be the start of a split command.
        return if data.eq_ignore_ascii_case(&p.prefix[..data.len()]) {
            Found::Partial
        } else {
            Found::No
        };
    }
    if !data[..plen].eq_ignore_ascii_case(p.prefix) {
        return Found::No;
    }
    let mut i = plen;
    if let Some(skip) = p.skip {
        loop {
            if data[i] == skip {
                break;
            }
            if i == data.len() - 1 {
                return Found::Partial;
            }
            i += 1;
        }
        i += 1;
    }
    if p.command == Command::Pasv {
        // 227: the six numbers start at the first digit after the prefix.
        match data[i..].iter().position(u8::is_ascii_digit) {
            Some(at) => i += at,
            None => return Found::Partial,
        }
    }
    let args = &data[i..];
    let got = match p.command {
        Command::Port => rfc959(args, Some(b'\r')),
        Command::Pasv => rfc959(args, None),
        Command::Eprt => eprt(args, family),
        Command::Epsv => epsv(args),
    };
    match got {
        Some((addr, port, len)) => Found::Yes(addr, port, (i, len)),
        None => Found::Partial,
    }
}

/// An address (if the command has one), a port, and the length of the
/// arguments read.
type Arguments = (Option<IpAddr>, u16, usize);

/// The kernel's `try_number`: `N` numbers separated by `sep`, ended by `term`
/// (or by any non-digit, non-separator when `term` is `None`). Numbers above
/// `max` fail (as since net-next's "avoid u16 overflows"; see the module doc).
fn numbers<const N: usize>(
    data: &[u8],
    sep: u8,
    term: Option<u8>,
    max: u32,
) -> Option<([u32; N], usize)> {
    let mut out = [0u32; N];
    let mut i = 0;
    for (len, &c) in data.iter().enumerate() {
        if c.is_ascii_digit() {
            out[i] = out[i] * 10 + u32::from(c - b'0');
            if out[i] > max {
                return None;
            }
        } else if c == sep {
            i += 1;
            if i == N {
                return None;
            }
        } else {
            let terminated = term.is_none_or(|t| c == t);
            return (terminated && i == N - 1).then_some((out, len));
        }
    }
    None
}

fn rfc959(data: &[u8], term: Option<u8>) -> Option<Arguments> {
    let (n, len) = numbers::<6>(data, b',', term, 255)?;
    let addr = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    let port = ((n[4] << 8) | n[5]) as u16;
    Some((Some(IpAddr::V4(addr)), port, len))
}

fn valid_delimiter(d: u8) -> bool {
    (33..=126).contains(&d) && !d.is_ascii_digit()
}

/// `<d>1<d>a.b.c.d<d>port<d>` on IPv4 or `<d>2<d>ipv6<d>port<d>` on IPv6:
/// as the kernel's `try_eprt`, the protocol digit must be the control
/// flow's family.
fn eprt(data: &[u8], family: Family) -> Option<Arguments> {
    if data.len() <= 3 {
        return None;
    }
    let d = data[0];
    if !valid_delimiter(d) || data[2] != d {
        return None;
    }
    let rest = &data[3..];
    let (addr, used) = match (family, data[1]) {
        (Family::V4, b'1') => {
            let (n, used) = numbers::<4>(rest, b'.', Some(d), 255)?;
            (
                IpAddr::V4(Ipv4Addr::new(
                    n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8,
                )),
                used,
            )
        }
        (Family::V6, b'2') => {
            // As the kernel's get_ipv6_addr: in6_pton, which reads some
            // spellings a textbook parser refuses (see super::pton).
            let (addr, end) = in6_pton(rest, d)?;
            (IpAddr::V6(addr), end)
        }
        _ => return None,
    };
    // The port starts after the character that ended the address (the
    // delimiter, or for in6_pton a NUL or an embedded IPv4's colon).
    let (port, port_len) = port_until(rest.get(used + 1..)?, d)?;
    Some((Some(addr), port, 3 + used + 1 + port_len))
}

/// The address an announcement names on a control flow whose sender (the
/// source of the segment, in its direction) is `sender`, as the kernel's
/// `help()` builds it: `cmd.u3` starts as the sender's address, and the
/// command's address is written over it. An address of the sender's family
/// (EPRT, and PORT/227 on IPv4) replaces it whole; none (229) leaves the
/// sender's; an IPv4 address on an IPv6 flow (PORT, 227) replaces only the
/// first 4 of its 16 bytes, as `try_rfc959` writes `cmd->u3.ip`. The result
/// is the sender's own address exactly when the announcement is not a
/// bounce.
pub fn announced_address(addr: Option<IpAddr>, sender: IpAddr) -> IpAddr {
    match (addr, sender) {
        (None, _) => sender,
        (Some(IpAddr::V4(a)), IpAddr::V6(s)) => {
            let mut bytes = s.octets();
            bytes[..4].copy_from_slice(&a.octets());
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        (Some(a), _) => a,
    }
}

/// `<d><d><d>port<d>` (after the `(` of a 229 reply).
fn epsv(data: &[u8]) -> Option<Arguments> {
    if data.len() <= 3 {
        return None;
    }
    let d = data[0];
    if !valid_delimiter(d) || data[1] != d || data[2] != d {
        return None;
    }
    let (port, len) = port_until(&data[3..], d)?;
    Some((None, port, 3 + len))
}

/// The kernel's `get_port`: digits up to `delim`; 0 means none. The port
/// and the bytes read, the delimiter included.
fn port_until(data: &[u8], delim: u8) -> Option<(u16, usize)> {
    let mut port: u32 = 0;
    for (i, &c) in data.iter().enumerate() {
        if c == delim {
            return (port != 0).then_some((port as u16, i + 1));
        } else if c.is_ascii_digit() {
            port = port * 10 + u32::from(c - b'0');
            if port > 65_535 {
                return None;
            }
        } else {
            return None;
        }
    }
    None
}

/// The longest partial command line kept per direction (commands and the
/// replies the helper reads are under 100 bytes; RFC 959 allows any length).
pub const LINE_MAX: usize = 256;

/// A command line whose start has been seen but not its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PartialLine {
    start_seq: SeqNum,
    len: usize,
    buf: [u8; LINE_MAX],
}

impl Default for PartialLine {
    fn default() -> Self {
        PartialLine {
            start_seq: SeqNum(0),
            len: 0,
            buf: [0; LINE_MAX],
        }
    }
}

impl PartialLine {
    fn next_seq(&self) -> SeqNum {
        self.start_seq + self.len as u32
    }
}

/// Per-flow FTP state, as the kernel's `nf_ct_ftp_master`: the sequence
/// numbers right after the last newlines seen in each direction (a segment is
/// parsed only if it starts at one, or continues a partial line), a partial
/// line per direction, and the flow's pending expectation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FtpState {
    seq_after_newline: [[SeqNum; 2]; 2],
    remembered: [u8; 2],
    partial: [Option<PartialLine>; 2],
    /// The expectation this control flow announced last, if still pending.
    pub expectation: Option<u32>,
    /// How NAT's rewrites of announcements moved each direction's
    /// sequence numbers (all zero on untranslated flows).
    pub seqadj: SeqAdjust,
}

impl HelperState for FtpState {
    fn pending_expectation(&self) -> Option<u32> {
        self.expectation
    }

    fn seq_adjust(&self) -> Option<&SeqAdjust> {
        Some(&self.seqadj)
    }
}

/// What the helper decided about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspect {
    /// Nothing to do (no line start, no command).
    Pass,
    /// The segment starts a command that continues in a later segment; kept.
    Incomplete(Command),
    /// A complete command line that does not parse: nothing expected.
    Malformed(Command),
    /// A command line longer than [`LINE_MAX`]: nothing expected.
    Overlong,
    /// Expect a data connection to `addr` (or the sender, for 229) and `port`.
    Announce {
        /// Which command announced it.
        command: Command,
        /// Announced address as written (`None`: the sender's own); what it
        /// names on the control flow is [`announced_address`].
        addr: Option<IpAddr>,
        /// Announced port.
        port: u16,
        /// Where the arguments are in this segment's payload (see
        /// [`Parsed::Announce`]); `None` when they began in an earlier
        /// segment (a line kept from a split command).
        span: Option<(usize, usize)>,
    },
    /// A command announcing port 0: nothing expected.
    PortZero(Command),
}

impl FtpState {
    fn at_line_start(&self, d: usize, seq: SeqNum) -> bool {
        self.seq_after_newline[d][..usize::from(self.remembered[d])].contains(&seq)
    }

    fn note_newline(&mut self, d: usize, seq: SeqNum) {
        let n = usize::from(self.remembered[d]);
        if self.seq_after_newline[d][..n].contains(&seq) {
            return;
        }
        if n < 2 {
            self.seq_after_newline[d][n] = seq;
            self.remembered[d] += 1;
        } else {
            let s = &mut self.seq_after_newline[d];
            let oldest = if s[0].before(s[1]) { 0 } else { 1 };
            if s[oldest].before(seq) {
                s[oldest] = seq;
            }
        }
    }

    /// Inspect a segment's payload sent in `dir` with sequence number `seq`
    /// on a control flow of `family` (as [`parse`] reads it). Never panics,
    /// never allocates: a partial line is kept in the fixed buffer.
    pub fn inspect(&mut self, dir: Dir, family: Family, seq: SeqNum, payload: &[u8]) -> Inspect {
        let Some(&last) = payload.last() else {
            return Inspect::Pass;
        };
        let d = dir.index();
        let mut joined = [0u8; LINE_MAX];
        let mut line_start = seq;
        // Bytes of the line that came in earlier segments.
        let mut carried = 0;
        let line: &[u8] = match self.partial[d] {
            Some(p) if p.next_seq() == seq => {
                // The segment continues a partial line.
                self.partial[d] = None;
                if p.len + payload.len() > LINE_MAX {
                    self.end_of_segment(d, seq, payload, last);
                    return Inspect::Overlong;
                }
                joined[..p.len].copy_from_slice(&p.buf[..p.len]);
                joined[p.len..p.len + payload.len()].copy_from_slice(payload);
                line_start = p.start_seq;
                carried = p.len;
                &joined[..p.len + payload.len()]
            }
            _ if self.at_line_start(d, seq) => {
                // A new line (or a retransmission of the partial line's
                // start), read whole as the kernel reads a segment: its
                // find_pattern skips any number of characters to PORT's
                // space or 229's '(' and 227's first digit may come late.
                self.partial[d] = None;
                payload
            }
            _ => {
                self.end_of_segment(d, seq, payload, last);
                return Inspect::Pass;
            }
        };
        let result = match parse(dir, family, line) {
            Parsed::NoMatch => Inspect::Pass,
            Parsed::Partial(c) if line.contains(&b'\n') => Inspect::Malformed(c),
            Parsed::Partial(_) if line.len() >= LINE_MAX => Inspect::Overlong,
            Parsed::Partial(c) => {
                let mut buf = [0u8; LINE_MAX];
                buf[..line.len()].copy_from_slice(line);
                self.partial[d] = Some(PartialLine {
                    start_seq: line_start,
                    len: line.len(),
                    buf,
                });
                Inspect::Incomplete(c)
            }
            Parsed::Announce {
                command,
                addr,
                port,
                span: (at, len),
            } => Inspect::Announce {
                command,
                addr,
                port,
                span: at.checked_sub(carried).map(|at| (at, len)),
            },
            Parsed::PortZero(c) => Inspect::PortZero(c),
        };
        self.end_of_segment(d, seq, payload, last);
        result
    }

    /// Drop the partial line kept for direction `dir`, if any (its
    /// segment was dropped).
    pub fn forget_partial(&mut self, dir: Dir) {
        self.partial[dir.index()] = None;
    }

    fn end_of_segment(&mut self, d: usize, seq: SeqNum, payload: &[u8], last: u8) {
        if last == b'\n' {
            self.note_newline(d, seq + payload.len() as u32);
        }
    }
}
