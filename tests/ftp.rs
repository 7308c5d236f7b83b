//! The FTP helper: its parsers (table-driven: valid, edge and hostile input)
//! and the expectation lifecycle through the pure packet path.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use tunfw::conntrack::{CtState, Dir};
use tunfw::helpers::ftp::{announced_address, parse, Command, FtpState, Inspect, Parsed, LINE_MAX};
use tunfw::matchers::Family::{self, V4, V6};
use tunfw::stats::DropReason;
use tunfw::verdict::Verdict;
use tunfw::wire::tcp::SeqNum;

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn announce(command: Command, addr: Option<IpAddr>, port: u16) -> Parsed {
    Parsed::Announce {
        command,
        addr,
        port,
        span: (0, 0),
    }
}

/// `parsed` with its span checked against `input` and then blanked, to
/// compare with [`announce`]'s: the span is what a NAT helper rewrites,
/// as the kernel's `matchoff`/`matchlen` name it (PORT's and 227's six
/// numbers up to the character after them; EPRT's and 229's arguments
/// from the first delimiter to the last).
fn spanless(parsed: Parsed, input: &[u8]) -> Parsed {
    let Parsed::Announce {
        command,
        addr,
        port,
        span: (at, len),
    } = parsed
    else {
        return parsed;
    };
    let text = &input[at..at + len];
    match command {
        Command::Port | Command::Pasv => {
            assert!(text[0].is_ascii_digit(), "{text:?}");
            assert!(
                text.iter().all(|c| c.is_ascii_digit() || *c == b','),
                "{text:?}"
            );
            assert_eq!(text.iter().filter(|c| **c == b',').count(), 5);
            let after = input.get(at + len);
            assert!(after.is_none_or(|c| !c.is_ascii_digit() && *c != b','));
        }
        Command::Eprt | Command::Epsv => {
            assert_eq!(text.first(), text.last(), "{text:?}");
            assert!(text.len() > 3);
        }
    }
    announce(command, addr, port)
}

#[test]
fn parser_table() {
    use Command::*;
    use Dir::{Original as C, Reply as S};
    let long_digits = format!("PORT 10,0,1,2,4,{}\r\n", "1".repeat(5000));
    let cases: Vec<(Dir, &[u8], Parsed)> = vec![
        // Valid.
        (
            C,
            b"PORT 10,0,1,2,4,1\r\n",
            announce(Port, v4(10, 0, 1, 2), 1025),
        ),
        (
            C,
            b"port 10,0,1,2,195,80\r\n",
            announce(Port, v4(10, 0, 1, 2), 50000),
        ),
        (C, b"PORT   10,0,1,2,4,1\r\n", Parsed::Partial(Port)),
        (
            C,
            b"EPRT |1|10.0.1.2|6275|\r\n",
            announce(Eprt, v4(10, 0, 1, 2), 6275),
        ),
        (
            C,
            b"eprt !1!10.0.1.2!6275!\r\n",
            announce(Eprt, v4(10, 0, 1, 2), 6275),
        ),
        (
            S,
            b"227 Entering Passive Mode (10,0,2,2,117,48).\r\n",
            announce(Pasv, v4(10, 0, 2, 2), 30000),
        ),
        (
            S,
            b"227 =10,0,2,2,117,48\r\n",
            announce(Pasv, v4(10, 0, 2, 2), 30000),
        ),
        (
            S,
            b"229 Entering Extended Passive Mode (|||30001|)\r\n",
            announce(Epsv, None, 30001),
        ),
        (S, b"229 (!!!65535!)\r\n", announce(Epsv, None, 65535)),
        // Not commands the helper reads.
        (C, b"USER anonymous\r\n", Parsed::NoMatch),
        (C, b"PASV\r\n", Parsed::NoMatch),
        (C, b"227 (10,0,2,2,117,48)\r\n", Parsed::NoMatch),
        (S, b"PORT 10,0,1,2,4,1\r\n", Parsed::NoMatch),
        (S, b"200 PORT command successful\r\n", Parsed::NoMatch),
        (S, b"", Parsed::NoMatch),
        // Edge: port 0.
        (C, b"PORT 10,0,1,2,0,0\r\n", Parsed::PortZero(Port)),
        (S, b"227 (10,0,2,2,0,0)\r\n", Parsed::PortZero(Pasv)),
        // Incomplete (a split command) or unparsable: Partial.
        (C, b"PO", Parsed::Partial(Port)),
        (C, b"PORT", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1,2,4,1", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1,2,4,1\n", Parsed::Partial(Port)),
        (S, b"227", Parsed::Partial(Pasv)),
        (S, b"227 Entering Passive Mode\r\n", Parsed::Partial(Pasv)),
        (
            S,
            b"229 Entering Extended Passive Mode\r\n",
            Parsed::Partial(Epsv),
        ),
        // Hostile: octets over 255, too few or too many numbers, bad delimiters, huge ports.
        (C, b"PORT 300,0,1,2,4,1\r\n", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1,2,256,1\r\n", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1,2,4\r\n", Parsed::Partial(Port)),
        (C, b"PORT 10,0,1,2,4,1,7\r\n", Parsed::Partial(Port)),
        (C, b"PORT ;rm -rf /\r\n", Parsed::Partial(Port)),
        (C, long_digits.as_bytes(), Parsed::Partial(Port)),
        (C, b"EPRT 1110.0.1.2162751\r\n", Parsed::Partial(Eprt)),
        (C, b"EPRT |3|10.0.1.2|6275|\r\n", Parsed::Partial(Eprt)),
        (C, b"EPRT |1|10.0.1.2|0|\r\n", Parsed::Partial(Eprt)),
        (C, b"EPRT |1|10.0.1.2|70000|\r\n", Parsed::Partial(Eprt)),
        (C, b"EPRT |1|10.0.1|6275|\r\n", Parsed::Partial(Eprt)),
        (
            C,
            b"EPRT \x7f1\x7f10.0.1.2\x7f6275\x7f\r\n",
            Parsed::Partial(Eprt),
        ),
        (S, b"229 (|||99999|)\r\n", Parsed::Partial(Epsv)),
        (S, b"229 (||30001|)\r\n", Parsed::Partial(Epsv)),
    ];
    for (dir, input, want) in cases {
        assert_eq!(
            spanless(parse(dir, V4, input), input),
            want,
            "{dir:?} {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

fn v6(text: &str) -> Option<IpAddr> {
    Some(IpAddr::V6(text.parse::<Ipv6Addr>().unwrap()))
}

/// What the control flow's family changes: EPRT's protocol digit must be
/// the flow's (the kernel's `try_eprt`); PORT and 227 parse on either
/// family (the kernel's search table has no family check), their IPv4
/// address given as written.
#[test]
fn parser_family_table() {
    use Command::*;
    use Dir::{Original as C, Reply as S};
    let cases: Vec<(Family, Dir, &[u8], Parsed)> = vec![
        // EPRT |2| on IPv6: the address in any text form.
        (
            V6,
            C,
            b"EPRT |2|2001:db8::1|6275|\r\n",
            announce(Eprt, v6("2001:db8::1"), 6275),
        ),
        (
            V6,
            C,
            b"eprt !2!FD00:0:1:0:0:0:0:2!50000!\r\n",
            announce(Eprt, v6("fd00:0:1::2"), 50000),
        ),
        (
            V6,
            C,
            b"EPRT |2|::ffff:10.0.1.2|6275|\r\n",
            announce(Eprt, v6("::ffff:10.0.1.2"), 6275),
        ),
        // The kernel's in6_pton (parity harness, ftp6_*): a group of more
        // than four digits whose value fits 16 bits, an embedded IPv4
        // address with zero octets, an embedded IPv4 address ended by a
        // colon (the character after it skipped as the delimiter would be).
        (
            V6,
            C,
            b"EPRT |2|fd00:7f:1::00050|6275|\r\n",
            announce(Eprt, v6("fd00:7f:1::50"), 6275),
        ),
        (
            V6,
            C,
            b"EPRT |2|00000fd00:7f:1::50|6275|\r\n",
            announce(Eprt, v6("fd00:7f:1::50"), 6275),
        ),
        (
            V6,
            C,
            b"EPRT |2|fd00:7f:1::0.0.0.80|6275|\r\n",
            announce(Eprt, v6("fd00:7f:1::50"), 6275),
        ),
        (
            V6,
            C,
            b"EPRT |2|::1.2.3.4:6275|\r\n",
            announce(Eprt, v6("::1.2.3.4"), 6275),
        ),
        (
            V6,
            C,
            b"EPRT |2|fd00:7f:1::10050|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        // The digit of the other family: not an announcement.
        (V6, C, b"EPRT |1|10.0.1.2|6275|\r\n", Parsed::Partial(Eprt)),
        (
            V4,
            C,
            b"EPRT |2|2001:db8::1|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        (
            V4,
            C,
            b"EPRT |1|10.0.1.2|6275|\r\n",
            announce(Eprt, v4(10, 0, 1, 2), 6275),
        ),
        // Bad IPv6 text, zone ids, ports.
        (
            V6,
            C,
            b"EPRT |2|not-an-address|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        (
            V6,
            C,
            b"EPRT |2|fe80::1%eth0|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        (
            V6,
            C,
            b"EPRT |2|2001:db8::1::2|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        (V6, C, b"EPRT |2|2001:db8::1|0|\r\n", Parsed::Partial(Eprt)),
        (
            V6,
            C,
            b"EPRT |2|2001:db8::1|65536|\r\n",
            Parsed::Partial(Eprt),
        ),
        (V6, C, b"EPRT |2||6275|\r\n", Parsed::Partial(Eprt)),
        (V6, C, b"EPRT |2|2001:db8::1", Parsed::Partial(Eprt)),
        (
            V6,
            C,
            b"EPRT |2|\xff\xfe::1|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
        // PORT and 227 parse on IPv6 as on IPv4 (what the address means is
        // announced_address's).
        (
            V6,
            C,
            b"PORT 10,0,1,2,195,80\r\n",
            announce(Port, v4(10, 0, 1, 2), 50000),
        ),
        (
            V6,
            S,
            b"227 Entering Passive Mode (10,0,2,2,117,48).\r\n",
            announce(Pasv, v4(10, 0, 2, 2), 30000),
        ),
        // 229 names no address on either family.
        (
            V6,
            S,
            b"229 Entering Extended Passive Mode (|||30001|)\r\n",
            announce(Epsv, None, 30001),
        ),
    ];
    for (family, dir, input, want) in cases {
        assert_eq!(
            spanless(parse(dir, family, input), input),
            want,
            "{family:?} {dir:?} {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// The kernel's `cmd.u3`: the sender's address, overwritten by the
/// command's; PORT/227's IPv4 address overwrites only 4 bytes of an IPv6 one.
#[test]
fn announced_address_is_the_kernels_overwritten_sender() {
    let s6: IpAddr = CLIENT6.into();
    let s4: IpAddr = CLIENT.into();
    for (addr, sender, want) in [
        (None, s6, s6),
        (None, s4, s4),
        (v4(10, 0, 1, 99), s4, v4(10, 0, 1, 99).unwrap()),
        (v6("fd00:0:1::99"), s6, v6("fd00:0:1::99").unwrap()),
        // fd00:0:1::2 starts fd 00 00 00: PORT 253,0,0,0,... is its own.
        (v4(253, 0, 0, 0), s6, s6),
        (v4(10, 0, 1, 2), s6, v6("a00:102:1::2").unwrap()),
        (v6("fd00:0:1::2"), s4, v6("fd00:0:1::2").unwrap()),
    ] {
        assert_eq!(
            announced_address(addr, sender),
            want,
            "{addr:?} from {sender}"
        );
    }
}

#[test]
fn line_starts_split_commands_and_limits() {
    let mut st = FtpState::default();
    // The first segment of a direction is never parsed (no newline seen yet).
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(100), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Pass
    );
    // The next one starts after a newline: parsed.
    let at = 100 + 19;
    assert!(matches!(
        st.inspect(Dir::Original, V4, SeqNum(at), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Announce { port: 1025, .. }
    ));
    // A segment that does not start a line is not parsed.
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(5), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Pass
    );
    // Split across two segments: kept, then parsed when the continuation comes.
    let at = at + 19;
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(at), b"PORT 10,0,1,2,"),
        Inspect::Incomplete(Command::Port)
    );
    assert!(matches!(
        st.inspect(Dir::Original, V4, SeqNum(at + 14), b"4,2\r\n"),
        Inspect::Announce { port: 1026, .. }
    ));
    // Split in three.
    let at = at + 19;
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(at), b"EP"),
        Inspect::Incomplete(Command::Eprt)
    );
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(at + 2), b"RT |1|10.0"),
        Inspect::Incomplete(Command::Eprt)
    );
    assert!(matches!(
        st.inspect(Dir::Original, V4, SeqNum(at + 12), b".1.2|6275|\r\n"),
        Inspect::Announce { port: 6275, .. }
    ));
    // A complete line that does not parse: malformed, nothing expected.
    let at = at + 24;
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(at), b"PORT 999,0,1,2,4,1\r\n"),
        Inspect::Malformed(Command::Port)
    );
    // A line that outgrows the buffer: overlong.
    let at = at + 20;
    let mut digits = b"PORT 1".to_vec();
    digits.extend(std::iter::repeat_n(b'0', LINE_MAX));
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(at), &digits),
        Inspect::Overlong
    );
    // A segment that starts a line is read whole, as the kernel reads it:
    // PORT skips any number of characters to its space, 227's numbers start
    // at the first digit however far (parity harness, ftpf_port_overlong_skip).
    let mut st = FtpState::default();
    st.inspect(Dir::Original, V4, SeqNum(0), b"USER a\r\n");
    let mut long = b"PORT".to_vec();
    long.extend(std::iter::repeat_n(b'X', LINE_MAX + 44));
    long.extend_from_slice(b" 10,0,1,2,4,3\r\n");
    assert!(matches!(
        st.inspect(Dir::Original, V4, SeqNum(8), &long),
        Inspect::Announce { port: 1027, .. }
    ));
    st.inspect(Dir::Reply, V4, SeqNum(0), b"220 a\r\n");
    let mut long = b"227 ".to_vec();
    long.extend(std::iter::repeat_n(b'y', LINE_MAX));
    long.extend_from_slice(b"(10,0,2,2,4,4)\r\n");
    assert!(matches!(
        st.inspect(Dir::Reply, V4, SeqNum(7), &long),
        Inspect::Announce { port: 1028, .. }
    ));
    let mut st = FtpState::default();
    st.inspect(Dir::Original, V4, SeqNum(0), b"USER a\r\n");
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(8), b"PORT 10,"),
        Inspect::Incomplete(Command::Port)
    );
    let filler = vec![b'0'; LINE_MAX];
    assert_eq!(
        st.inspect(Dir::Original, V4, SeqNum(16), &filler),
        Inspect::Overlong
    );
}

// ---------------------------------------------------------------- lifecycle

const FTP_PORT: u16 = 21;

/// An FTP control connection through the firewall, with sequence numbers kept.
struct Ctl {
    h: Harness,
    client: IpAddr,
    server: IpAddr,
    cport: u16,
    c_next: u32,
    s_next: u32,
}

impl Ctl {
    /// An IPv4 control connection, CLIENT to SERVER.
    fn open(h: Harness, cport: u16) -> Ctl {
        Ctl::open_between(h, CLIENT.into(), SERVER.into(), cport)
    }

    /// An IPv6 control connection, CLIENT6 to SERVER6.
    fn open6(h: Harness, cport: u16) -> Ctl {
        Ctl::open_between(h, CLIENT6.into(), SERVER6.into(), cport)
    }

    fn open_between(h: Harness, client: IpAddr, server: IpAddr, cport: u16) -> Ctl {
        let mut c = Ctl {
            h,
            client,
            server,
            cport,
            c_next: 1000,
            s_next: 9000,
        };
        assert!(c.c(SYN, b"").forwards());
        assert!(c.s(SYN | ACK, b"").forwards());
        assert!(c.c(ACK, b"").forwards());
        assert!(c.s(ACK | PSH, b"220 welcome\r\n").forwards());
        assert!(c.c(ACK | PSH, b"USER anonymous\r\n").forwards());
        assert!(c.s(ACK | PSH, b"230 ok\r\n").forwards());
        c
    }

    fn c(&mut self, flags: u8, data: &[u8]) -> Verdict {
        let seg = Seg {
            sport: self.cport,
            dport: FTP_PORT,
            seq: self.c_next,
            ack: self.s_next,
            flags,
            window: 65000,
            payload: data.to_vec(),
            ..Seg::default()
        };
        self.c_next = self
            .c_next
            .wrapping_add(data.len() as u32 + u32::from(flags & SYN != 0));
        self.h.out(tcp(self.client, self.server, &seg))
    }

    fn s(&mut self, flags: u8, data: &[u8]) -> Verdict {
        let seg = Seg {
            sport: FTP_PORT,
            dport: self.cport,
            seq: self.s_next,
            ack: self.c_next,
            flags,
            window: 65000,
            payload: data.to_vec(),
            ..Seg::default()
        };
        self.s_next = self
            .s_next
            .wrapping_add(data.len() as u32 + u32::from(flags & SYN != 0));
        self.h.inb(tcp(self.server, self.client, &seg))
    }

    fn expectations(&self) -> usize {
        self.h.fw.conntrack().expectations.len()
    }
}

fn data_syn(src: impl Into<IpAddr>, sport: u16, dst: impl Into<IpAddr>, dport: u16) -> Vec<u8> {
    tcp_segment(src, dst, sport, dport, 77, 0, SYN, b"")
}

fn port_cmd(port: u16) -> Vec<u8> {
    format!("PORT 10,0,1,2,{},{}\r\n", port >> 8, port & 255).into_bytes()
}

#[test]
fn active_ftp_data_connection_is_related_once() {
    let mut ctl = Ctl::open(Harness::default_config(), 40000);
    assert!(ctl.c(ACK | PSH, &port_cmd(50000)).forwards());
    assert_eq!(ctl.expectations(), 1);
    // The server's data connection from port 20: RELATED, accepted by the
    // seed's "inbound sport 20 ESTABLISHED,RELATED" rule.
    let v = ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50000));
    assert!(forwarded(&v, CtState::Related), "{v:?}");
    assert_eq!(ctl.expectations(), 0, "one-shot");
    // The client's SYN/ACK makes it ESTABLISHED.
    let synack = tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 50000,
            dport: 20,
            seq: 5,
            ack: 78,
            flags: SYN | ACK,
            window: 65000,
            ..Seg::default()
        },
    );
    assert!(forwarded(&ctl.h.out(synack), CtState::Established));
    // Another connection to the same port is not expected any more.
    let v = ctl.h.inb(data_syn(SERVER, 2020, CLIENT, 50000));
    assert_eq!(v.state, Some(CtState::New));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
    let st = ctl.h.fw.conntrack().expectations.stats;
    assert_eq!((st.created, st.used), (1, 1));
}

#[test]
fn passive_ftp_pasv_and_epsv_are_related() {
    let strict = include_str!("../config/default.ron")
        .lines()
        .filter(|l| !l.contains("name: \"tcp-out\"") && !l.contains("name: \"tcp-in\""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut ctl = Ctl::open(Harness::with_config(&strict), 40001);
    ctl.c(ACK | PSH, b"PASV\r\n");
    assert!(ctl
        .s(
            ACK | PSH,
            b"227 Entering Passive Mode (10,0,2,2,117,48).\r\n"
        )
        .forwards());
    let v = ctl.h.out(data_syn(CLIENT, 45000, SERVER, 30000));
    assert!(forwarded(&v, CtState::Related), "{v:?}");
    // A connection to another server port is NEW: the strict rules drop it.
    let v = ctl.h.out(data_syn(CLIENT, 45001, SERVER, 30002));
    assert_eq!(
        (v.state, v.drop_reason()),
        (Some(CtState::New), Some(DropReason::PolicyOutbound))
    );

    ctl.c(ACK | PSH, b"EPSV\r\n");
    assert!(ctl
        .s(
            ACK | PSH,
            b"229 Entering Extended Passive Mode (|||30001|)\r\n"
        )
        .forwards());
    assert!(forwarded(
        &ctl.h.out(data_syn(CLIENT, 45002, SERVER, 30001)),
        CtState::Related
    ));
}

#[test]
fn a_new_announcement_replaces_the_pending_one() {
    let mut ctl = Ctl::open(Harness::default_config(), 40002);
    ctl.c(ACK | PSH, &port_cmd(50001));
    ctl.c(ACK | PSH, &port_cmd(50002));
    assert_eq!(ctl.expectations(), 1);
    assert_eq!(ctl.h.fw.conntrack().expectations.stats.replaced, 1);
    assert_eq!(
        ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50001)).drop_reason(),
        Some(DropReason::PolicyInbound)
    );
    assert!(forwarded(
        &ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50002)),
        CtState::Related
    ));
}

#[test]
fn expectations_expire_after_300s() {
    let mut ctl = Ctl::open(Harness::default_config(), 40003);
    ctl.c(ACK | PSH, &port_cmd(50003));
    ctl.h.advance_secs(299);
    assert_eq!(ctl.expectations(), 1);
    ctl.h.advance_secs(2);
    let v = ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50003));
    assert_eq!(
        (v.state, v.drop_reason()),
        (Some(CtState::New), Some(DropReason::PolicyInbound))
    );
    assert_eq!(ctl.h.fw.conntrack().expectations.stats.expired, 1);
}

#[test]
fn expectations_die_with_their_control_flow() {
    let mut ctl = Ctl::open(Harness::default_config(), 40004);
    ctl.c(ACK | PSH, &port_cmd(50004));
    assert_eq!(ctl.expectations(), 1);
    assert!(ctl.c(RST | ACK, b"").forwards());
    ctl.h.advance_secs(11);
    ctl.h.fw.tick(ctl.h.now);
    assert_eq!(
        ctl.h.fw.conntrack().len(),
        0,
        "the closed control flow expired"
    );
    assert_eq!(ctl.expectations(), 0);
    assert_eq!(
        ctl.h.fw.conntrack().expectations.stats.removed_with_master,
        1
    );
    assert_eq!(
        ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50004)).drop_reason(),
        Some(DropReason::PolicyInbound)
    );
}

#[test]
fn port_naming_another_address_opens_nothing() {
    let mut ctl = Ctl::open(Harness::default_config(), 40005);
    assert!(
        ctl.c(ACK | PSH, b"PORT 10,0,1,99,195,85\r\n").forwards(),
        "the command itself passes"
    );
    assert_eq!(ctl.expectations(), 0);
    assert_eq!(ctl.h.fw.ftp().stats.refused_address, 1);
    let other = Ipv4Addr::new(10, 0, 1, 99);
    assert!(!ctl.h.inb(data_syn(SERVER, 20, other, 50005)).forwards());
    // 227 naming a third host: refused as well.
    ctl.s(
        ACK | PSH,
        b"227 Entering Passive Mode (10,0,3,1,117,48).\r\n",
    );
    assert_eq!(ctl.expectations(), 0);
    assert_eq!(ctl.h.fw.ftp().stats.refused_address, 2);
}

#[test]
fn split_port_command_is_reassembled() {
    let mut ctl = Ctl::open(Harness::default_config(), 40006);
    assert!(
        ctl.c(ACK | PSH, b"PORT 10,0,1,2,19").forwards(),
        "the first piece is forwarded"
    );
    assert_eq!(ctl.expectations(), 0);
    assert!(ctl.c(ACK | PSH, b"5,86\r\n").forwards());
    assert_eq!(ctl.expectations(), 1);
    assert!(forwarded(
        &ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50006)),
        CtState::Related
    ));
}

#[test]
fn hostile_commands_expect_nothing_and_never_panic() {
    let mut ctl = Ctl::open(Harness::default_config(), 40007);
    for cmd in [
        &b"PORT 300,0,1,2,4,1\r\n"[..],
        b"PORT 10,0,1,2,0,0\r\n",
        b"EPRT |1|10.0.1.2|0|\r\n",
        b"EPRT |9|x|1|\r\n",
        b"PORT \xff\xfe\xfd\r\n",
    ] {
        assert!(ctl.c(ACK | PSH, cmd).forwards());
    }
    assert_eq!(ctl.expectations(), 0);
    let st = ctl.h.fw.ftp().stats;
    assert_eq!((st.malformed, st.refused_port_zero), (4, 1));
}

#[test]
fn helper_is_attached_only_where_configured() {
    let off = include_str!("../config/default.ron").replace(
        "ftp: (ports: \"21\", expectation_timeout: 300, max_control_flows: 4096),",
        "ftp: None,",
    );
    assert!(off.contains("ftp: None"));
    let mut ctl = Ctl::open(Harness::with_config(&off), 40008);
    ctl.c(ACK | PSH, &port_cmd(50008));
    assert_eq!(ctl.expectations(), 0);
    assert_eq!(
        ctl.h.inb(data_syn(SERVER, 20, CLIENT, 50008)).drop_reason(),
        Some(DropReason::PolicyInbound)
    );

    // Helper on 2121 only: a control flow to 21 gets none, one to 2121 does.
    let other = include_str!("../config/default.ron").replace(
        "ports: \"21\", expectation_timeout",
        "ports: \"2121\", expectation_timeout",
    );
    let mut ctl = Ctl::open(Harness::with_config(&other), 40009);
    ctl.c(ACK | PSH, &port_cmd(50009));
    assert_eq!(ctl.expectations(), 0);
}

#[test]
fn expectation_table_cap_drops_the_announcement() {
    let capped = include_str!("../config/default.ron")
        .replace("expectation_max: 1024", "expectation_max: 1");
    let mut a = Ctl::open(Harness::with_config(&capped), 40010);
    a.c(ACK | PSH, &port_cmd(50010));
    assert_eq!(a.expectations(), 1);
    // A second control flow through the same firewall.
    let mut b = Ctl {
        h: a.h,
        client: a.client,
        server: a.server,
        cport: 40011,
        c_next: 1000,
        s_next: 9000,
    };
    b.c(SYN, b"");
    b.s(SYN | ACK, b"");
    b.c(ACK, b"");
    b.s(ACK | PSH, b"220 hi\r\n");
    b.c(ACK | PSH, b"USER x\r\n");
    let v = b.c(ACK | PSH, &port_cmd(50011));
    assert_eq!(v.drop_reason(), Some(DropReason::Helper));
    assert_eq!(b.h.fw.ftp().stats.expectation_table_full, 1);
}

#[test]
fn helper_state_pool_limits_control_flows() {
    let one = include_str!("../config/default.ron")
        .replace("max_control_flows: 4096", "max_control_flows: 1");
    assert_ne!(one, include_str!("../config/default.ron"));
    let a = Ctl::open(Harness::with_config(&one), 40012);
    let mut b = Ctl {
        h: a.h,
        client: a.client,
        server: a.server,
        cport: 40013,
        c_next: 1000,
        s_next: 9000,
    };
    b.c(SYN, b"");
    b.s(SYN | ACK, b"");
    b.c(ACK, b"");
    assert_eq!(b.h.fw.conntrack().stats.helper_no_slot, 1);
    b.s(ACK | PSH, b"220 hi\r\n");
    b.c(ACK | PSH, b"USER x\r\n");
    b.c(ACK | PSH, &port_cmd(50013));
    assert_eq!(b.expectations(), 0, "the second control flow has no helper");
}

// ---------------------------------------------------------------- IPv6

/// Which end sends the announcement.
#[derive(Clone, Copy, Debug)]
enum From {
    Client,
    Server,
}

/// One announcement on a fresh control flow (IPv4 or IPv6) and what the
/// firewall makes of it: the data connection it should open (RELATED), or
/// the one it names that must not be expected, and the helper's counters.
struct Case {
    what: &'static str,
    v6: bool,
    from: From,
    line: String,
    /// Whether the data connection named by `data` is expected.
    related: bool,
    /// The data connection's SYN: (from the server?, source, sport, destination, dport).
    data: (bool, IpAddr, u16, IpAddr, u16),
    refused_address: u64,
    malformed: u64,
}

#[test]
fn ipv6_control_flows_table() {
    let (c4, s4): (IpAddr, IpAddr) = (CLIENT.into(), SERVER.into());
    let (c6, s6): (IpAddr, IpAddr) = (CLIENT6.into(), SERVER6.into());
    let other6: IpAddr = "fd00:0:1::99".parse::<Ipv6Addr>().unwrap().into();
    // Active: the server connects from port 20 to the announced port.
    let active = |client: IpAddr, server: IpAddr, port| (true, server, 20, client, port);
    // Passive: the client connects to the server's announced port.
    let passive = |client: IpAddr, server: IpAddr, port| (false, client, 45000, server, port);
    let case = |what, v6, from, line: &str, related, data, refused_address, malformed| Case {
        what,
        v6,
        from,
        line: format!("{line}\r\n"),
        related,
        data,
        refused_address,
        malformed,
    };
    let cases = [
        case(
            "EPRT |2| with the client's own address",
            true,
            From::Client,
            "EPRT |2|fd00:0:1::2|50000|",
            true,
            active(c6, s6, 50000),
            0,
            0,
        ),
        case(
            "EPRT |2|, the address in its full upper-case form",
            true,
            From::Client,
            "EPRT |2|FD00:0:1:0:0:0:0:2|50001|",
            true,
            active(c6, s6, 50001),
            0,
            0,
        ),
        case(
            "EPRT |1| on IPv6: not an announcement",
            true,
            From::Client,
            "EPRT |1|10.0.1.2|50002|",
            false,
            active(c6, s6, 50002),
            0,
            1,
        ),
        case(
            "EPRT |2| on IPv4: not an announcement",
            false,
            From::Client,
            "EPRT |2|fd00:0:1::2|50003|",
            false,
            active(c4, s4, 50003),
            0,
            1,
        ),
        case(
            "EPRT |1| on IPv4 (unchanged)",
            false,
            From::Client,
            "EPRT |1|10.0.1.2|50004|",
            true,
            active(c4, s4, 50004),
            0,
            0,
        ),
        case(
            "PORT on IPv6 naming the client's IPv4-looking address: a bounce",
            true,
            From::Client,
            "PORT 10,0,1,2,195,85",
            false,
            active(c6, s6, 50005),
            1,
            0,
        ),
        case(
            "PORT on IPv6 naming the client's first four bytes: the kernel expects it",
            true,
            From::Client,
            "PORT 253,0,0,0,195,86",
            true,
            active(c6, s6, 50006),
            0,
            0,
        ),
        case(
            "227 on IPv6 naming an IPv4 address: a bounce",
            true,
            From::Server,
            "227 Entering Passive Mode (10,0,2,2,117,48).",
            false,
            passive(c6, s6, 30000),
            1,
            0,
        ),
        case(
            "227 on IPv6 naming the server's first four bytes: the kernel expects it",
            true,
            From::Server,
            "227 Entering Passive Mode (253,0,0,0,117,49).",
            true,
            passive(c6, s6, 30001),
            0,
            0,
        ),
        case(
            "EPRT |2| naming another LAN host: bounce refused",
            true,
            From::Client,
            "EPRT |2|fd00:0:1::99|50007|",
            false,
            active(other6, s6, 50007),
            1,
            0,
        ),
        case(
            "EPRT |2| naming the server itself: bounce refused",
            true,
            From::Client,
            "EPRT |2|fd00:0:2::2|50008|",
            false,
            (false, c6, 45000, s6, 50008),
            1,
            0,
        ),
        case(
            "229 on IPv6: the server's own address",
            true,
            From::Server,
            "229 Entering Extended Passive Mode (|||30002|)",
            true,
            passive(c6, s6, 30002),
            0,
            0,
        ),
        case(
            "229 on IPv4 (unchanged)",
            false,
            From::Server,
            "229 Entering Extended Passive Mode (|||30003|)",
            true,
            passive(c4, s4, 30003),
            0,
            0,
        ),
    ];
    for (n, c) in cases.iter().enumerate() {
        let cport = 41000 + n as u16;
        let h = Harness::default_config();
        let mut ctl = if c.v6 {
            Ctl::open6(h, cport)
        } else {
            Ctl::open(h, cport)
        };
        let v = match c.from {
            From::Client => ctl.c(ACK | PSH, c.line.as_bytes()),
            From::Server => ctl.s(ACK | PSH, c.line.as_bytes()),
        };
        assert!(v.forwards(), "{}: the command itself passes", c.what);
        assert_eq!(ctl.expectations(), usize::from(c.related), "{}", c.what);
        let st = ctl.h.fw.ftp().stats;
        assert_eq!(
            (st.refused_address, st.malformed),
            (c.refused_address, c.malformed),
            "{}: {st:?}",
            c.what
        );
        let (inbound, src, sport, dst, dport) = c.data;
        let syn = data_syn(src, sport, dst, dport);
        let v = if inbound {
            ctl.h.inb(syn)
        } else {
            ctl.h.out(syn)
        };
        if c.related {
            assert!(forwarded(&v, CtState::Related), "{}: {v:?}", c.what);
            assert_eq!(ctl.expectations(), 0, "{}: one-shot", c.what);
        } else {
            assert_ne!(v.state, Some(CtState::Related), "{}: {v:?}", c.what);
        }
    }
}

#[test]
fn ipv6_split_eprt_is_reassembled_and_replaces_the_pending_one() {
    let mut ctl = Ctl::open6(Harness::default_config(), 40100);
    assert!(ctl
        .c(ACK | PSH, b"EPRT |2|fd00:0:1::2|50100|\r\n")
        .forwards());
    assert!(ctl.c(ACK | PSH, b"EPRT |2|fd00:0:").forwards());
    assert_eq!(ctl.h.fw.ftp().stats.split_commands, 1);
    assert!(ctl.c(ACK | PSH, b"1::2|50101|\r\n").forwards());
    assert_eq!(ctl.expectations(), 1);
    assert_eq!(ctl.h.fw.conntrack().expectations.stats.replaced, 1);
    assert_ne!(
        ctl.h.inb(data_syn(SERVER6, 20, CLIENT6, 50100)).state,
        Some(CtState::Related)
    );
    assert!(forwarded(
        &ctl.h.inb(data_syn(SERVER6, 20, CLIENT6, 50101)),
        CtState::Related
    ));
}
