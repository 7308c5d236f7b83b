//! FTP through NAT, through the pure packet path: the helper's
//! announcements rewritten to the translated address and port (PORT, 227,
//! EPRT, 229), the data connection expected there and translated as its
//! control flow (`nf_nat_follow_master`), and, when a rewrite changes a
//! line's length, the sequence numbers of the rest of the connection moved
//! both ways (acknowledgements and SACK blocks too), with conntrack's window
//! checks reading acknowledgements in the moved numbering. Every forwarded
//! packet is parsed again, which verifies its checksums.

mod common;
mod counting;

use core::net::{IpAddr, Ipv4Addr};

use common::*;
use tunfw::conntrack::CtState;
use tunfw::packet::{self, Transport};
use tunfw::side::Side;
use tunfw::stats::DropReason;
use tunfw::verdict::{Fate, Verdict};
use tunfw::wire::vnet;

const LAN_SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
const SACK_PERMITTED: [u8; 4] = [4, 2, 1, 1];

/// The LAN translated to `public` (its own address on the WAN side) and
/// port 21 of `public` forwarded to a LAN FTP server; the helper on port 21;
/// inbound: answers, related flows and the forwarded control port.
fn config(public: Ipv4Addr) -> String {
    format!(
        r#"(
    router: (lan: "10.0.1.1", wan: "10.0.2.1"),
    helpers: (ftp: (ports: "21")),
    nat: (
        source: [(out: Wan, src: "10.0.1.0/24", to: Address("{public}"))],
        destination: [(from: Wan, proto: Tcp, dst: "{public}", dport: "21", to: "10.0.1.9", to_port: 21)],
    ),
    outbound: (policy: Drop, rules: [(state: [New, Established, Related], action: Accept)]),
    inbound: (policy: Drop, rules: [
        (state: [Established, Related], action: Accept),
        (name: "ftp-in", proto: Tcp, dst: "10.0.1.9", dport: "21", state: [New], action: Accept),
    ]),
)"#
    )
}

struct View {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn view(p: &[u8]) -> View {
    let parsed = packet::parse(p).expect("a forwarded packet parses, checksums and all");
    let Transport::Tcp(t) = parsed.transport else {
        panic!("not TCP: {:?}", parsed.transport);
    };
    View {
        src: parsed.ip.src,
        dst: parsed.ip.dst,
        sport: t.src_port,
        dport: t.dst_port,
        seq: t.seq.0,
        ack: t.ack.0,
        options: t.options.to_vec(),
        payload: t.payload.to_vec(),
    }
}

#[allow(clippy::too_many_arguments)]
fn seg(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    tcp(
        src,
        dst,
        &Seg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65000,
            options: options.to_vec(),
            payload: payload.to_vec(),
        },
    )
}

/// A SACK option (after two NOPs) with one block.
fn sack(left: u32, right: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 5, 10];
    o.extend_from_slice(&left.to_be_bytes());
    o.extend_from_slice(&right.to_be_bytes());
    o
}

fn sack_block(options: &[u8]) -> Option<(u32, u32)> {
    let at = options.windows(2).position(|w| w == [5, 10])?;
    let b = &options[at + 2..at + 10];
    Some((
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

fn ok(v: &Verdict, state: CtState) {
    assert!(forwarded(v, state), "{v:?}, wanted forwarded {state:?}");
}

/// The client's next sequence number once a control connection is open.
const C0: u32 = 1009;
/// The server's, after its greeting.
const S0: u32 = 5012;

/// Open a control connection `client:cport -> dst:21` from `side`, SACK
/// permitted both ways, a greeting and a command exchanged; the peer
/// answers from `answerer` (the address the SYN arrived at) to `seen` (the
/// address it saw the client at). Next sequence numbers: [`C0`] and [`S0`].
struct Control {
    client: Ipv4Addr,
    cport: u16,
    dst: Ipv4Addr,
    answerer: Ipv4Addr,
    seen: Ipv4Addr,
    seen_port: u16,
}

impl Control {
    fn open(h: &mut Harness, from: Side, client: Ipv4Addr, cport: u16, dst: Ipv4Addr) -> Control {
        let (v, out) = h.pass(
            from,
            seg(client, dst, cport, 21, 1000, 0, SYN, &SACK_PERMITTED, b""),
        );
        ok(&v, CtState::New);
        let o = view(&out);
        let (seen, answerer) = match (o.src, o.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (s, d),
            _ => unreachable!(),
        };
        let c = Control {
            client,
            cport,
            dst,
            answerer,
            seen,
            seen_port: o.sport,
        };
        let synack = seg(
            answerer,
            seen,
            21,
            c.seen_port,
            5000,
            1001,
            SYN | ACK,
            &SACK_PERMITTED,
            b"",
        );
        let (v, _) = h.pass(from.other(), synack);
        ok(&v, CtState::Established);
        let (v, _) = h.pass(from, c.client_says(1001, 5001, ACK, &[], b""));
        ok(&v, CtState::Established);
        // The greeting and a command: the helper reads a segment only
        // where a line starts, after a newline it saw (as Linux).
        let (v, _) = h.pass(
            from.other(),
            c.server_says(5001, 1001, PSH | ACK, &[], b"220 ready\r\n"),
        );
        ok(&v, CtState::Established);
        let (v, _) = h.pass(from, c.client_says(1001, S0, PSH | ACK, &[], b"USER a\r\n"));
        ok(&v, CtState::Established);
        c
    }

    fn client_says(
        &self,
        seq: u32,
        ack: u32,
        flags: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        seg(
            self.client,
            self.dst,
            self.cport,
            21,
            seq,
            ack,
            flags,
            options,
            payload,
        )
    }

    fn server_says(
        &self,
        seq: u32,
        ack: u32,
        flags: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        seg(
            self.answerer,
            self.seen,
            21,
            self.seen_port,
            seq,
            ack,
            flags,
            options,
            payload,
        )
    }
}

/// Active FTP through source NAT to `public`: the PORT line is rewritten
/// to `public` (its length changes with the address's), the server's data
/// connection to the written port reaches the client at the port it
/// announced, and the rest of the control connection has its numbers
/// moved by the change, both ways.
fn active_ftp_through_source_nat(public: Ipv4Addr) {
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    assert_eq!(c.seen, public);
    let line = b"PORT 10,0,1,2,156,65\r\n";
    let (v, out) = h.pass(Side::Lan, c.client_says(C0, S0, PSH | ACK, &[], line));
    ok(&v, CtState::Established);
    let o = view(&out);
    let [a, b, cc, d] = public.octets();
    let want = format!("PORT {a},{b},{cc},{d},156,65\r\n");
    assert_eq!(String::from_utf8_lossy(&o.payload), want);
    assert_eq!(o.seq, C0, "the rewritten segment keeps its number");
    let change = want.len() as i64 - line.len() as i64;
    assert_eq!(v.resized.is_some(), change != 0);
    let moved = |n: u32| (i64::from(n) + change) as u32;
    let line_end = C0 + line.len() as u32;

    // The server acks the line as it got it; conntrack reads the ack in
    // the server's numbering (else it would be past what the client sent,
    // and INVALID), and the client gets it in its own.
    let (v, back) = h.pass(Side::Wan, c.server_says(S0, moved(line_end), ACK, &[], b""));
    ok(&v, CtState::Established);
    assert_eq!(view(&back).ack, line_end);

    // The data connection, to the written port, reaches the client at the
    // port it announced, from the server's port 20.
    let (v, data) = h.pass(
        Side::Wan,
        seg(SERVER, public, 20, 40001, 9000, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    let d = view(&data);
    assert_eq!((d.src, d.sport), (IpAddr::V4(SERVER), 20));
    assert_eq!((d.dst, d.dport), (IpAddr::V4(CLIENT), 40001));
    let (v, synack) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40001, 20, 7000, 9001, SYN | ACK, &[], b""),
    );
    ok(&v, CtState::Established);
    let s = view(&synack);
    assert_eq!((s.src, s.sport), (IpAddr::V4(public), 40001));

    // The next client line moves; the server's ack with a SACK block
    // beyond it comes back moved to the client's numbering.
    let (v, out) = h.pass(
        Side::Lan,
        c.client_says(line_end, S0, PSH | ACK, &[], b"LIST\r\n"),
    );
    ok(&v, CtState::Established);
    assert_eq!(view(&out).seq, moved(line_end));
    let ack = seg(
        c.answerer,
        c.seen,
        21,
        c.seen_port,
        S0,
        moved(line_end),
        ACK,
        &sack(moved(line_end) + 1, moved(line_end) + 6),
        b"",
    );
    let (v, back) = h.pass(Side::Wan, ack);
    ok(&v, CtState::Established);
    let b = view(&back);
    assert_eq!(b.ack, line_end);
    assert_eq!(sack_block(&b.options), Some((line_end + 1, line_end + 6)));
    // The server's own numbers are untouched.
    let (v, back) = h.pass(
        Side::Wan,
        c.server_says(S0, moved(line_end + 6), PSH | ACK, &[], b"150 ok\r\n"),
    );
    ok(&v, CtState::Established);
    let b = view(&back);
    assert_eq!((b.seq, b.ack), (S0, line_end + 6));

    let st = h.fw.nat().stats;
    assert_eq!(st.ftp_rewritten, 1);
    assert_eq!(st.followed, 1);
    assert_eq!(st.seq_adjusted > 0, change != 0);
    assert_eq!(h.fw.ftp().stats.nat_announcements, 1);
}

#[test]
fn active_ftp_through_source_nat_to_a_longer_address() {
    active_ftp_through_source_nat(Ipv4Addr::new(198, 51, 100, 200));
}

#[test]
fn active_ftp_through_source_nat_to_a_shorter_address() {
    active_ftp_through_source_nat(Ipv4Addr::new(1, 2, 3, 4));
}

#[test]
fn active_ftp_through_masquerade_of_the_same_length() {
    active_ftp_through_source_nat(Ipv4Addr::new(10, 0, 2, 1));
}

#[test]
fn without_the_adjustment_a_grown_ack_is_invalid() {
    // The control: the same ack the server sends above, on a flow whose
    // line was not rewritten, is past what the client sent.
    let mut h = Harness::with_config(&config(Ipv4Addr::new(198, 51, 100, 200)));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let line = b"NOOP\r\n";
    let (v, _) = h.pass(Side::Lan, c.client_says(C0, S0, PSH | ACK, &[], line));
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Wan,
        c.server_says(S0, C0 + line.len() as u32 + 6, ACK, &[], b""),
    );
    assert_eq!(v.state, Some(CtState::Invalid));
}

/// Passive FTP to a LAN server through the port forward: the 227 reply
/// names the public address, the client's data connection to it reaches
/// the LAN server, and the server's later numbers move by the change.
#[test]
fn passive_ftp_to_a_forwarded_lan_server() {
    let public = Ipv4Addr::new(198, 51, 100, 200);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Wan, SERVER, 50000, public);
    assert_eq!((c.answerer, c.seen), (LAN_SERVER, SERVER));
    let line = b"227 Entering Passive Mode (10,0,1,9,195,80).\r\n";
    let (v, out) = h.pass(Side::Lan, c.server_says(S0, C0, PSH | ACK, &[], line));
    ok(&v, CtState::Established);
    let o = view(&out);
    assert_eq!(o.src, IpAddr::V4(public));
    let want = "227 Entering Passive Mode (198,51,100,200,195,80).\r\n";
    assert_eq!(String::from_utf8_lossy(&o.payload), want);
    let change = (want.len() - line.len()) as u32;
    let line_end = S0 + line.len() as u32;
    // The client acks in its numbering; the server gets its own.
    let (v, back) = h.pass(
        Side::Wan,
        c.client_says(C0, line_end + change, ACK, &[], b""),
    );
    ok(&v, CtState::Established);
    assert_eq!(view(&back).ack, line_end);
    // The data connection to the public address and the written port
    // reaches the LAN server; nothing else on the LAN is reachable.
    let (v, data) = h.pass(
        Side::Wan,
        seg(SERVER, public, 50001, 50000, 100, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    let d = view(&data);
    assert_eq!((d.dst, d.dport), (IpAddr::V4(LAN_SERVER), 50000));
    let (v, _) = h.pass(
        Side::Wan,
        seg(SERVER, public, 50002, 50001, 100, 0, SYN, &[], b""),
    );
    assert_eq!(v.fate, Fate::Drop(DropReason::PolicyInbound));
    let (v, synack) = h.pass(
        Side::Lan,
        seg(
            LAN_SERVER,
            SERVER,
            50000,
            50001,
            300,
            101,
            SYN | ACK,
            &[],
            b"",
        ),
    );
    ok(&v, CtState::Established);
    let s = view(&synack);
    assert_eq!((s.src, s.sport), (IpAddr::V4(public), 50000));
    // The server's next line moves.
    let (v, out) = h.pass(
        Side::Lan,
        c.server_says(line_end, C0, PSH | ACK, &[], b"150 ok\r\n"),
    );
    ok(&v, CtState::Established);
    assert_eq!(view(&out).seq, line_end + change);
}

/// Passive FTP through masquerade, extended (229): the reply names only a
/// port, which stays; the client's data connection leaves masqueraded.
#[test]
fn extended_passive_ftp_through_masquerade() {
    let public = Ipv4Addr::new(10, 0, 2, 1);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let line = b"229 Entering Extended Passive Mode (|||50123|)\r\n";
    let (v, back) = h.pass(Side::Wan, c.server_says(S0, C0, PSH | ACK, &[], line));
    ok(&v, CtState::Established);
    assert_eq!(view(&back).payload, line.to_vec());
    assert_eq!(v.resized, None);
    let (v, data) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40100, 50123, 100, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    let d = view(&data);
    assert_eq!(
        (d.src, d.dst, d.dport),
        (IpAddr::V4(public), IpAddr::V4(SERVER), 50123)
    );
    assert_eq!(h.fw.nat().stats.followed, 1);
}

/// EPRT through source NAT: rewritten with `|` delimiters as the kernel
/// writes them.
#[test]
fn eprt_through_source_nat() {
    let public = Ipv4Addr::new(198, 51, 100, 200);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let (v, out) = h.pass(
        Side::Lan,
        c.client_says(C0, S0, PSH | ACK, &[], b"EPRT !1!10.0.1.2!40001!\r\n"),
    );
    ok(&v, CtState::Established);
    assert_eq!(
        String::from_utf8_lossy(&view(&out).payload),
        "EPRT |1|198.51.100.200|40001|\r\n"
    );
    let (v, data) = h.pass(
        Side::Wan,
        seg(SERVER, public, 20, 40001, 9000, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    assert_eq!(view(&data).dst, IpAddr::V4(CLIENT));
}

/// Two clients behind one address announcing the same port to one server:
/// the second announcement is written with another port, and each data
/// connection reaches its own client at the port it announced.
#[test]
fn two_clients_announcing_one_port_get_two() {
    let public = Ipv4Addr::new(10, 0, 2, 1);
    let mut h = Harness::with_config(&config(public));
    let mut written = Vec::new();
    for (client, cport) in [(CLIENT, 40000), (CLIENT2, 40000)] {
        let c = Control::open(&mut h, Side::Lan, client, cport, SERVER);
        let [a, b, cc, d] = client.octets();
        let line = format!("PORT {a},{b},{cc},{d},156,65\r\n");
        let (v, out) = h.pass(
            Side::Lan,
            c.client_says(C0, S0, PSH | ACK, &[], line.as_bytes()),
        );
        ok(&v, CtState::Established);
        let text = String::from_utf8(view(&out).payload).unwrap();
        let n: Vec<u16> = text[5..text.len() - 2]
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        written.push(n[4] * 256 + n[5]);
    }
    assert_eq!(written[0], 40001);
    assert!(written[1] > 40001, "second written as {}", written[1]);
    for (port, client) in [(written[0], CLIENT), (written[1], CLIENT2)] {
        let (v, data) = h.pass(
            Side::Wan,
            seg(SERVER, public, 20, port, 9000, 0, SYN, &[], b""),
        );
        ok(&v, CtState::Related);
        let d = view(&data);
        assert_eq!((d.dst, d.dport), (IpAddr::V4(client), 40001));
    }
}

/// A PORT line split across segments on a translated control flow: its
/// first piece is dropped (its address could not be rewritten once
/// forwarded), as Linux drops every partial command; the whole line, sent
/// again, is rewritten.
#[test]
fn a_split_port_line_is_dropped_until_it_comes_whole() {
    let public = Ipv4Addr::new(198, 51, 100, 200);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let (v, _) = h.pass(
        Side::Lan,
        c.client_says(C0, S0, PSH | ACK, &[], b"PORT 10,0,1"),
    );
    assert_eq!(v.fate, Fate::Drop(DropReason::Helper));
    assert_eq!(h.fw.ftp().stats.nat_split_dropped, 1);
    let (v, out) = h.pass(
        Side::Lan,
        c.client_says(C0, S0, PSH | ACK, &[], b"PORT 10,0,1,2,156,65\r\n"),
    );
    ok(&v, CtState::Established);
    assert_eq!(
        String::from_utf8_lossy(&view(&out).payload),
        "PORT 198,51,100,200,156,65\r\n"
    );
}

/// A packet with no room to grow is dropped, and its expectation withdrawn.
#[test]
fn a_line_that_cannot_grow_is_dropped() {
    let public = Ipv4Addr::new(198, 51, 100, 200);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let v = h.send(
        Side::Lan,
        c.client_says(C0, S0, PSH | ACK, &[], b"PORT 10,0,1,2,156,65\r\n"),
    );
    assert_eq!(v.fate, Fate::Drop(DropReason::Helper));
    assert_eq!(h.fw.nat().stats.ftp_unwritable, 1);
    assert_eq!(h.fw.conntrack().expectations.len(), 0);
}

#[test]
fn the_ftp_nat_path_does_not_allocate() {
    let public = Ipv4Addr::new(198, 51, 100, 200);
    let mut h = Harness::with_config(&config(public));
    let c = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let mut packets = [
        (
            Side::Lan,
            c.client_says(C0, S0, PSH | ACK, &[], b"PORT 10,0,1,2,156,65\r\n"),
        ),
        (Side::Wan, c.server_says(S0, C0 + 28, ACK, &[], b"")),
        (
            Side::Wan,
            seg(SERVER, public, 20, 40001, 9000, 0, SYN, &[], b""),
        ),
        (
            Side::Lan,
            seg(CLIENT, SERVER, 40001, 20, 7000, 9001, SYN | ACK, &[], b""),
        ),
        (
            Side::Lan,
            c.client_says(C0 + 22, S0, PSH | ACK, &[], b"LIST\r\n"),
        ),
        (
            Side::Wan,
            c.server_says(S0, C0 + 34, ACK, &sack(C0 + 29, C0 + 34), b""),
        ),
    ];
    for (_, p) in packets.iter_mut() {
        let len = p.len();
        p.resize(len + 64, 0);
    }
    let lens: Vec<usize> = packets.iter().map(|(_, p)| p.len() - 64).collect();
    let mut answer = vec![0u8; 2048];
    let now = h.now;
    let (forwarded, allocations) = counting::counted(|| {
        let mut n = 0;
        for ((side, p), &len) in packets.iter_mut().zip(&lens) {
            let v =
                h.fw.process_in(*side, &vnet::PLAIN, p, len, &mut answer, now);
            n += usize::from(v.forwards());
        }
        n
    });
    assert_eq!(forwarded, packets.len());
    assert_eq!(allocations, 0);
    assert_eq!(h.fw.nat().stats.ftp_rewritten, 1);
}

/// A control flow whose expectation was used announces again after
/// another control flow's expectation took the freed slot: the other
/// flow's expectation stays (the helper replaces only its own).
#[test]
fn a_new_announcement_replaces_only_its_own_expectation() {
    let public = Ipv4Addr::new(10, 0, 2, 1);
    let mut h = Harness::with_config(&config(public));
    let a = Control::open(&mut h, Side::Lan, CLIENT, 40000, SERVER);
    let b = Control::open(&mut h, Side::Lan, CLIENT2, 40000, SERVER);
    let port_line = |c: Ipv4Addr, p: u16| {
        let [w, x, y, z] = c.octets();
        format!("PORT {w},{x},{y},{z},{},{}\r\n", p >> 8, p & 0xff)
    };
    let line = port_line(CLIENT, 40001);
    let (v, _) = h.pass(
        Side::Lan,
        a.client_says(C0, S0, PSH | ACK, &[], line.as_bytes()),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Wan,
        seg(SERVER, public, 20, 40001, 9000, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    // B's expectation takes the slot A's used one left.
    let (v, _) = h.pass(
        Side::Lan,
        b.client_says(C0, S0, PSH | ACK, &[], port_line(CLIENT2, 41001).as_bytes()),
    );
    ok(&v, CtState::Established);
    // A announces again.
    let next = C0 + line.len() as u32;
    let (v, _) = h.pass(
        Side::Lan,
        a.client_says(
            next,
            S0,
            PSH | ACK,
            &[],
            port_line(CLIENT, 40002).as_bytes(),
        ),
    );
    ok(&v, CtState::Established);
    assert_eq!(h.fw.conntrack().expectations.len(), 2, "both pending");
    let (v, data) = h.pass(
        Side::Wan,
        seg(SERVER, public, 20, 41001, 9100, 0, SYN, &[], b""),
    );
    ok(&v, CtState::Related);
    assert_eq!(view(&data).dst, IpAddr::V4(CLIENT2));
}
