//! The FTP helper's NAT half (Linux `nf_nat_ftp.c` and
//! `nf_nat_mangle_tcp_packet` of `nf_nat_helper.c`): write the address and
//! port a translated announcement must name into the segment, in place,
//! with the IPv4 total length and the checksums made right for the new
//! length. The conntrack half (which port, the expectation) is the
//! helper's ([`crate::helpers::glue`]); the sequence numbers that the
//! length change moves are [`super::seqadj`]'s.

use core::fmt::Write;
use core::net::IpAddr;

use crate::helpers::ftp::Command;
use crate::wire::checksum::{fold, internet_checksum, pseudo_header_v4, sum};
use crate::wire::{ipv4, tcp};

/// The longest arguments [`format_arguments`] writes (`|2|` and a full
/// IPv6 address, a port and the delimiters, with room to spare).
pub const ARGUMENTS_MAX: usize = 64;

/// A fixed buffer `core::fmt` writes into (no allocation).
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Write the arguments of `command` announcing `addr` and `port` into
/// `out`, as the kernel's `nf_nat_ftp_fmt_cmd`: `a,b,c,d,p1,p2` for PORT
/// and 227, `|1|a.b.c.d|port|` (`|2|ipv6|port|`) for EPRT, `|||port|` for
/// 229 (`|` whatever delimiter the original used, as the kernel writes
/// it); their length.
pub fn format_arguments(
    command: Command,
    addr: IpAddr,
    port: u16,
    out: &mut [u8; ARGUMENTS_MAX],
) -> usize {
    let mut c = Cursor { buf: out, len: 0 };
    let written = match (command, addr) {
        (Command::Port | Command::Pasv, IpAddr::V4(a)) => {
            let [a, b, cc, d] = a.octets();
            write!(c, "{a},{b},{cc},{d},{},{}", port >> 8, port & 0xff)
        }
        // PORT and 227 on IPv6 announce nothing (the helper refuses them).
        (Command::Port | Command::Pasv, IpAddr::V6(_)) => Err(core::fmt::Error),
        (Command::Eprt, IpAddr::V4(a)) => write!(c, "|1|{a}|{port}|"),
        (Command::Eprt, IpAddr::V6(a)) => write!(c, "|2|{a}|{port}|"),
        (Command::Epsv, _) => write!(c, "|||{port}|"),
    };
    if written.is_ok() {
        c.len
    } else {
        0
    }
}

/// Replace `old_len` bytes at offset `at` of the IPv4 TCP packet
/// `buf[..len]` (its IP header `header_len` bytes) with `text`, moving the
/// rest of the packet; `buf[len..]` is room to grow into. The IPv4 total
/// length and header checksum are set for the new length, and the TCP
/// checksum computed again (with `partial`, only its pseudo-header sum,
/// which the device completes). The new length, or `None` with nothing
/// changed when the span is not inside the payload or there is no room.
pub fn mangle(
    buf: &mut [u8],
    len: usize,
    header_len: usize,
    (at, old_len): (usize, usize),
    text: &[u8],
    partial: bool,
) -> Option<usize> {
    let end = at.checked_add(old_len)?;
    if end > len {
        return None;
    }
    let new_len = (len - old_len).checked_add(text.len())?;
    if len > buf.len()
        || at < header_len + tcp::MIN_HEADER_LEN
        || new_len > buf.len()
        || new_len > usize::from(u16::MAX)
        || header_len < ipv4::MIN_HEADER_LEN
    {
        return None;
    }
    buf.copy_within(end..len, at + text.len());
    buf[at..at + text.len()].copy_from_slice(text);
    buf[ipv4::TOTAL_LEN..ipv4::TOTAL_LEN + 2].copy_from_slice(&(new_len as u16).to_be_bytes());
    buf[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].fill(0);
    let check = internet_checksum(&[&buf[..header_len]]);
    buf[ipv4::CHECKSUM..ipv4::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    let address = |at: usize| -> [u8; 4] { [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]] };
    let (src, dst) = (address(ipv4::SRC), address(ipv4::DST));
    let segment_len = new_len - header_len;
    let pseudo = pseudo_header_v4(src, dst, crate::wire::PROTO_TCP, segment_len as u16);
    let field = header_len + tcp::CHECKSUM;
    buf[field..field + 2].fill(0);
    let check = if partial {
        fold(pseudo)
    } else {
        !fold(pseudo + sum(&buf[header_len..new_len]))
    };
    buf[field..field + 2].copy_from_slice(&check.to_be_bytes());
    Some(new_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn text(command: Command, addr: IpAddr, port: u16) -> String {
        let mut out = [0u8; ARGUMENTS_MAX];
        let n = format_arguments(command, addr, port, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn arguments_are_written_as_the_kernel_writes_them() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 201, 2, 1));
        assert_eq!(text(Command::Port, a, 40001), "10,201,2,1,156,65");
        assert_eq!(text(Command::Pasv, a, 21), "10,201,2,1,0,21");
        assert_eq!(text(Command::Eprt, a, 5), "|1|10.201.2.1|5|");
        assert_eq!(text(Command::Epsv, a, 65535), "|||65535|");
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        assert_eq!(text(Command::Eprt, v6, 7), "|2|fd00::1|7|");
        assert_eq!(text(Command::Port, v6, 7), "");
        let widest = IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        ));
        assert_eq!(text(Command::Eprt, widest, 65535).len(), 49);
    }

    /// An IPv4 TCP packet carrying `payload`, checksums right.
    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let mut t = vec![0u8; 20];
        t[0..4].copy_from_slice(&[0x9c, 0x40, 0, 21]);
        t[12] = 5 << 4;
        t[13] = 0x18;
        p.extend_from_slice(&t);
        p.extend_from_slice(payload);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let c = internet_checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let ph = pseudo_header_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, len - 20);
        let c = !fold(ph + sum(&p[20..]));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn mangle_grows_and_shrinks_with_every_checksum_right() {
        let line = b"PORT 10,0,0,1,4,1\r\n";
        let new = b"198,51,100,200,156,65";
        let mut want = b"PORT ".to_vec();
        want.extend_from_slice(new);
        want.extend_from_slice(b"\r\n");
        let p = packet(line);
        let mut buf = p.clone();
        buf.resize(p.len() + 64, 0xee);
        let n = mangle(&mut buf, p.len(), 20, (40 + 5, 12), new, false).unwrap();
        assert_eq!(
            buf[..n],
            packet(&want)[..],
            "the same bytes as a packet built with the new line"
        );
        // And back: shorter.
        let m = mangle(&mut buf, n, 20, (45, new.len()), b"10,0,0,1,4,1", false).unwrap();
        assert_eq!(buf[..m], p[..]);
        // Partial: the pseudo-header sum only.
        let mut buf = p.clone();
        buf.resize(p.len() + 64, 0);
        let n = mangle(&mut buf, p.len(), 20, (45, 12), new, true).unwrap();
        let ph = fold(pseudo_header_v4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            6,
            (n - 20) as u16,
        ));
        assert_eq!(u16::from_be_bytes([buf[36], buf[37]]), ph);
    }

    #[test]
    fn no_room_or_a_span_outside_the_payload_changes_nothing() {
        let p = packet(b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n");
        let mut buf = p.clone();
        assert_eq!(
            mangle(
                &mut buf,
                p.len(),
                20,
                (67, 12),
                b"198,51,100,200,4,1",
                false
            ),
            None
        );
        assert_eq!(buf, p);
        buf.resize(p.len() + 64, 0);
        assert_eq!(
            mangle(&mut buf, p.len(), 20, (30, 2), b"xx", false),
            None,
            "inside the TCP header"
        );
        assert_eq!(
            mangle(&mut buf, p.len(), 20, (p.len() - 1, 2), b"x", false),
            None,
            "past the end"
        );
        assert_eq!(buf[..p.len()], p[..]);
    }
}
