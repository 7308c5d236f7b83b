//! The FTP helper: its parsers (table-driven: valid, edge and hostile input)
//! and the expectation lifecycle through the pure packet path.

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use tunfw::conntrack::{CtState, Dir};
use tunfw::helpers::ftp::{parse, Command, FtpState, Inspect, Parsed, LINE_MAX};
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
    }
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
            C,
            b"EPRT |2|2001:db8::1|6275|\r\n",
            announce(
                Eprt,
                Some(IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap())),
                6275,
            ),
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
            b"EPRT |2|not-an-address|6275|\r\n",
            Parsed::Partial(Eprt),
        ),
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
            parse(dir, input),
            want,
            "{dir:?} {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn line_starts_split_commands_and_limits() {
    let mut st = FtpState::default();
    // The first segment of a direction is never parsed (no newline seen yet).
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(100), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Pass
    );
    // The next one starts after a newline: parsed.
    let at = 100 + 19;
    assert!(matches!(
        st.inspect(Dir::Original, SeqNum(at), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Announce { port: 1025, .. }
    ));
    // A segment that does not start a line is not parsed.
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(5), b"PORT 10,0,1,2,4,1\r\n"),
        Inspect::Pass
    );
    // Split across two segments: kept, then parsed when the continuation comes.
    let at = at + 19;
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(at), b"PORT 10,0,1,2,"),
        Inspect::Incomplete(Command::Port)
    );
    assert!(matches!(
        st.inspect(Dir::Original, SeqNum(at + 14), b"4,2\r\n"),
        Inspect::Announce { port: 1026, .. }
    ));
    // Split in three.
    let at = at + 19;
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(at), b"EP"),
        Inspect::Incomplete(Command::Eprt)
    );
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(at + 2), b"RT |1|10.0"),
        Inspect::Incomplete(Command::Eprt)
    );
    assert!(matches!(
        st.inspect(Dir::Original, SeqNum(at + 12), b".1.2|6275|\r\n"),
        Inspect::Announce { port: 6275, .. }
    ));
    // A complete line that does not parse: malformed, nothing expected.
    let at = at + 24;
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(at), b"PORT 999,0,1,2,4,1\r\n"),
        Inspect::Malformed(Command::Port)
    );
    // A line that outgrows the buffer: overlong.
    let at = at + 20;
    let mut digits = b"PORT 1".to_vec();
    digits.extend(std::iter::repeat_n(b'0', LINE_MAX));
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(at), &digits),
        Inspect::Overlong
    );
    let mut st = FtpState::default();
    st.inspect(Dir::Original, SeqNum(0), b"USER a\r\n");
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(8), b"PORT 10,"),
        Inspect::Incomplete(Command::Port)
    );
    let filler = vec![b'0'; LINE_MAX];
    assert_eq!(
        st.inspect(Dir::Original, SeqNum(16), &filler),
        Inspect::Overlong
    );
}

// ---------------------------------------------------------------- lifecycle

const FTP_PORT: u16 = 21;

/// An FTP control connection through the firewall, with sequence numbers kept.
struct Ctl {
    h: Harness,
    cport: u16,
    c_next: u32,
    s_next: u32,
}

impl Ctl {
    fn open(h: Harness, cport: u16) -> Ctl {
        let mut c = Ctl {
            h,
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
        self.h.out(tcp(CLIENT, SERVER, &seg))
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
        self.h.inb(tcp(SERVER, CLIENT, &seg))
    }

    fn expectations(&self) -> usize {
        self.h.fw.conntrack().expectations.len()
    }
}

fn data_syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
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
