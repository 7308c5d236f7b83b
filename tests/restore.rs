//! The table across a restart, through the pure library: a table with TCP
//! flows in several states, UDP, ICMP, translated flows and an FTP control
//! flow with an expectation (and a sequence adjustment) is saved, restored
//! into a fresh firewall at another process-relative time, and the next
//! packets of every flow are decided exactly as by the firewall that never
//! stopped (verdicts and rewritten bytes); a firewall started empty drops
//! the same inbound packets. Corrupt, truncated, foreign, other-version
//! and oversized files are refused with the table left empty.

mod common;
mod counting;

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use common::*;
use tunfw::conntrack::snapshot::RestoreError;
use tunfw::conntrack::{CtState, Flow, ProtoState};
use tunfw::packet::{self, Transport};
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::verdict::{Fate, Verdict};

const FTP_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const WALL: u64 = 1_750_000_000_000;
const SACK_PERMITTED: [u8; 4] = [4, 2, 1, 1];

fn config(max: u32, nat: bool) -> String {
    let nat = if nat {
        r#"nat: (source: [(out: Wan, src: "10.0.1.0/24", to: Masquerade)]),"#
    } else {
        ""
    };
    format!(
        r#"(
    router: (lan: "10.0.1.1", wan: "10.0.2.1"),
    conntrack: (max: {max}),
    helpers: (ftp: (ports: "21")),
    {nat}
    outbound: (policy: Drop, rules: [(state: [New, Established, Related], action: Accept)]),
    inbound: (policy: Drop, rules: [(state: [Established, Related], action: Accept)]),
)"#
    )
}

fn firewall(text: &str) -> Harness {
    Harness::with_config(text)
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

fn ok(v: &Verdict, state: CtState) {
    assert!(forwarded(v, state), "{v:?}, wanted forwarded {state:?}");
}

/// The translated source port of a forwarded packet.
fn sport(p: &[u8]) -> u16 {
    match packet::parse(p).expect("parses").transport {
        Transport::Tcp(t) => t.src_port,
        Transport::Udp(u) => u.src_port,
        Transport::Icmp(i) => i.ident,
        other => panic!("{other:?}"),
    }
}

fn payload(p: &[u8]) -> Vec<u8> {
    match packet::parse(p).expect("parses").transport {
        Transport::Tcp(t) => t.payload.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// What the firewall that never stops has set up, and the packets that
/// continue each flow.
struct Scenario {
    /// (side, packet, what the firewall must decide: forwarded in this
    /// state, or `None`: dropped).
    next: Vec<(Side, Vec<u8>, Option<CtState>)>,
}

/// Open every kind of flow through `h` (a masquerading firewall with the
/// FTP helper); the packets that continue them.
fn build(h: &mut Harness) -> Scenario {
    let mut next = Vec::new();
    // 1. TCP, established with data both ways (translated).
    let (v, out) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40000, 80, 100, 0, SYN, &SACK_PERMITTED, b""),
    );
    ok(&v, CtState::New);
    let p1 = sport(&out);
    let (v, _) = h.pass(
        Side::Wan,
        seg(
            SERVER,
            PUBLIC,
            80,
            p1,
            700,
            101,
            SYN | ACK,
            &SACK_PERMITTED,
            b"",
        ),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40000, 80, 101, 701, ACK, &[], b"GET /\r\n"),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Wan,
        seg(SERVER, PUBLIC, 80, p1, 701, 108, ACK, &[], &[7u8; 1000]),
    );
    ok(&v, CtState::Established);
    // The server goes on first after the restart: in window...
    next.push((
        Side::Wan,
        seg(
            SERVER,
            PUBLIC,
            80,
            p1,
            1701,
            108,
            PSH | ACK,
            &[],
            &[8u8; 1000],
        ),
        Some(CtState::Established),
    ));
    // ...and a segment far beyond the window: the window check still applies.
    next.push((
        Side::Wan,
        seg(SERVER, PUBLIC, 80, p1, 701 + 5_000_000, 108, ACK, &[], b"x"),
        None,
    ));
    next.push((
        Side::Lan,
        seg(CLIENT, SERVER, 40000, 80, 108, 2701, ACK, &[], b""),
        Some(CtState::Established),
    ));
    // 2. TCP, the client has sent its FIN (FIN_WAIT).
    let (v, out) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40001, 80, 10, 0, SYN, &[], b""),
    );
    ok(&v, CtState::New);
    let p2 = sport(&out);
    let (v, _) = h.pass(
        Side::Wan,
        seg(SERVER, PUBLIC, 80, p2, 90, 11, SYN | ACK, &[], b""),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40001, 80, 11, 91, ACK, &[], b""),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(
        Side::Lan,
        seg(CLIENT, SERVER, 40001, 80, 11, 91, FIN | ACK, &[], b""),
    );
    ok(&v, CtState::Established);
    next.push((
        Side::Wan,
        seg(SERVER, PUBLIC, 80, p2, 91, 12, FIN | ACK, &[], b""),
        Some(CtState::Established),
    ));
    // 3. UDP, replied; 4. UDP, unreplied (the server answers first after the restart).
    let (v, out) = h.pass(Side::Lan, udp(CLIENT, SERVER, 5000, 53, b"q1"));
    ok(&v, CtState::New);
    let p3 = sport(&out);
    let (v, _) = h.pass(Side::Wan, udp(SERVER, PUBLIC, 53, p3, b"a1"));
    ok(&v, CtState::Established);
    next.push((
        Side::Wan,
        udp(SERVER, PUBLIC, 53, p3, b"a2"),
        Some(CtState::Established),
    ));
    let (v, out) = h.pass(Side::Lan, udp(CLIENT, SERVER, 5001, 53, b"q"));
    ok(&v, CtState::New);
    let p4 = sport(&out);
    next.push((
        Side::Wan,
        udp(SERVER, PUBLIC, 53, p4, b"a"),
        Some(CtState::Established),
    ));
    // 5. ICMP echo, unreplied.
    let (v, out) = h.pass(Side::Lan, echo(CLIENT, SERVER, 8, 7, 1));
    ok(&v, CtState::New);
    let id = sport(&out);
    next.push((
        Side::Wan,
        echo(SERVER, PUBLIC, 0, id, 1),
        Some(CtState::Established),
    ));
    // 6. FTP control, an active PORT from a LAN address two digits longer
    // than the public one: the line is rewritten 2 bytes shorter (a
    // sequence adjustment) and a data connection is expected.
    let (v, out) = h.pass(
        Side::Lan,
        seg(
            FTP_CLIENT,
            SERVER,
            40021,
            21,
            1000,
            0,
            SYN,
            &SACK_PERMITTED,
            b"",
        ),
    );
    ok(&v, CtState::New);
    let pf = sport(&out);
    let s = |seq, ack, flags, data: &[u8]| seg(SERVER, PUBLIC, 21, pf, seq, ack, flags, &[], data);
    let c = |seq, ack, flags, data: &[u8]| {
        seg(FTP_CLIENT, SERVER, 40021, 21, seq, ack, flags, &[], data)
    };
    let (v, _) = h.pass(
        Side::Wan,
        seg(
            SERVER,
            PUBLIC,
            21,
            pf,
            5000,
            1001,
            SYN | ACK,
            &SACK_PERMITTED,
            b"",
        ),
    );
    ok(&v, CtState::Established);
    let (v, _) = h.pass(Side::Lan, c(1001, 5001, ACK, b""));
    ok(&v, CtState::Established);
    let (v, _) = h.pass(Side::Wan, s(5001, 1001, PSH | ACK, b"220 ready\r\n"));
    ok(&v, CtState::Established);
    let (v, _) = h.pass(Side::Lan, c(1001, 5012, PSH | ACK, b"USER a\r\n"));
    ok(&v, CtState::Established);
    let line = b"PORT 10,0,1,200,195,80\r\n";
    let (v, out) = h.pass(Side::Lan, c(1009, 5012, PSH | ACK, line));
    ok(&v, CtState::Established);
    let rewritten = String::from_utf8(payload(&out)).unwrap();
    assert!(rewritten.starts_with("PORT 10,0,2,1,"), "{rewritten}");
    assert_eq!(rewritten.len(), line.len() - 2);
    let numbers: Vec<u16> = rewritten[5..rewritten.len() - 2]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let data_port = numbers[4] << 8 | numbers[5];
    assert_eq!(h.fw.conntrack().expectations.len(), 1);
    // After the restart: the server acks the shorter line (in the moved
    // numbering) and answers; the client's next command is moved too;
    // the server opens the data connection (RELATED, translated back).
    let end = 1009 + rewritten.len() as u32;
    next.push((
        Side::Wan,
        s(5012, end, PSH | ACK, b"200 ok\r\n"),
        Some(CtState::Established),
    ));
    next.push((
        Side::Lan,
        c(1009 + line.len() as u32, 5020, PSH | ACK, b"LIST\r\n"),
        Some(CtState::Established),
    ));
    next.push((
        Side::Wan,
        seg(SERVER, PUBLIC, 20, data_port, 9000, 0, SYN, &[], b""),
        Some(CtState::Related),
    ));
    Scenario { next }
}

/// `flow` in a form that compares across tables and clocks.
fn normal(h: &Harness, f: &Flow) -> String {
    let ct = h.fw.conntrack();
    let proto = match f.proto {
        ProtoState::Udp(u) => format!("udp stream in {:?}", u.stream_after.saturating_since(h.now)),
        p => format!("{p:?}"),
    };
    format!(
        "{:?} reply {:?} {proto} seen_reply={} assured={} expected={} left={:?} packets={:?} bytes={:?} origin={:?} helper={:?}",
        f.original,
        ct.reply_tuple(f),
        f.seen_reply,
        f.assured,
        f.expected,
        f.expires.saturating_since(h.now),
        f.packets,
        f.bytes,
        f.origin,
        ct.helper_state(f).map(|s| (s.seqadj, s.expectation.is_some())),
    )
}

fn table(h: &Harness) -> Vec<String> {
    let mut v: Vec<String> =
        h.fw.conntrack()
            .flows(h.now)
            .map(|f| normal(h, f))
            .collect();
    v.sort();
    v
}

fn save(h: &Harness) -> Vec<u8> {
    let mut bytes = Vec::new();
    let summary =
        h.fw.conntrack()
            .save(&mut bytes, h.now, WALL)
            .expect("saved");
    assert_eq!(summary.bytes, bytes.len() as u64);
    bytes
}

#[test]
fn restored_flows_continue_exactly_as_without_the_restart() {
    let text = config(64, true);
    let mut a = firewall(&text);
    let scenario = build(&mut a);
    let bytes = save(&a);
    // Another process: another clock.
    let mut b = firewall(&text);
    b.now = Instant::from_secs(5);
    let summary = b.fw.restore(&bytes[..], b.now, WALL).expect("restored");
    assert_eq!(
        (summary.flows, summary.expectations, summary.expired),
        (6, 1, 0)
    );
    assert_eq!(summary.seq_adjusted, 1, "the FTP flow's numbers were moved");
    assert_eq!(table(&a), table(&b), "every flow as it was");
    assert_eq!(
        b.fw.conntrack().expectations.iter(b.now).count(),
        1,
        "the expectation too"
    );
    // And a firewall started empty, for the control.
    let mut empty = firewall(&text);
    for (i, (side, pkt, want)) in scenario.next.iter().enumerate() {
        for h in [&mut a, &mut b, &mut empty] {
            h.advance_millis(10);
        }
        let (va, oa) = a.pass(*side, pkt.clone());
        let (vb, ob) = b.pass(*side, pkt.clone());
        let (ve, _) = empty.pass(*side, pkt.clone());
        assert_eq!((va.fate, va.state), (vb.fate, vb.state), "packet {i}");
        match want {
            Some(state) => {
                ok(&vb, *state);
                assert_eq!(
                    oa, ob,
                    "packet {i}: rewritten alike (NAT, sequence adjustment)"
                );
            }
            None => assert!(!vb.forwards(), "packet {i}: {vb:?}"),
        }
        if *side == Side::Wan {
            assert!(
                !ve.forwards(),
                "packet {i}: without the restore it is dropped: {ve:?}"
            );
        }
    }
    assert_eq!(table(&a), table(&b), "and they stay alike");
    let invalid = |h: &Harness| h.fw.stats().total_invalid();
    assert_eq!(invalid(&a), invalid(&b));
}

#[test]
fn time_spent_stopped_counts() {
    let text = config(64, true);
    let mut a = firewall(&text);
    build(&mut a);
    let bytes = save(&a);
    let mut b = firewall(&text);
    // 40 s later: the UDP and ICMP flows (30 s) have run out; TCP has not.
    let summary =
        b.fw.restore(&bytes[..], b.now, WALL + 40_000)
            .expect("restored");
    assert_eq!(summary.age_ms, 40_000);
    assert_eq!(summary.expired, 3, "{summary:?}");
    assert_eq!(b.fw.conntrack().flows(b.now).count(), 3);
    let established =
        b.fw.conntrack()
            .flows(b.now)
            .find(|f| f.original.dst_id == 80 && f.original.src_id == 40000)
            .map(|f| f.expires.saturating_since(b.now))
            .unwrap();
    let before =
        a.fw.conntrack()
            .flows(a.now)
            .find(|f| f.original.dst_id == 80 && f.original.src_id == 40000)
            .map(|f| f.expires.saturating_since(a.now))
            .unwrap();
    assert_eq!(established + Duration::from_secs(40), before);
    // A clock that went backwards counts as no time passed.
    let mut c = firewall(&text);
    let s = c.fw.restore(&bytes[..], c.now, WALL - 5000).unwrap();
    assert_eq!((s.age_ms, s.expired), (0, 0));
}

fn refused(text: &str, bytes: &[u8]) -> RestoreError {
    let mut h = firewall(text);
    let err = h.fw.restore(bytes, h.now, WALL).expect_err("refused");
    assert_eq!(h.fw.conntrack().len(), 0, "{err}: the table is left empty");
    assert!(h.fw.conntrack().expectations.is_empty(), "{err}");
    assert_eq!(
        h.fw.conntrack().stats.inserted,
        0,
        "{err}: counters as before"
    );
    err
}

#[test]
fn corrupt_truncated_foreign_and_other_version_files_are_refused() {
    let text = config(64, true);
    let mut a = firewall(&text);
    build(&mut a);
    let bytes = save(&a);
    // Every single flipped byte is refused (a CRC-32 catches them all,
    // and range checks may catch it first).
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        refused(&text, &bad);
    }
    // A flipped counter byte reads fine and fails the checksum.
    let mut bad = bytes.clone();
    let at = bytes.len() - 200;
    bad[at] ^= 1;
    let _ = refused(&text, &bad);
    // Every truncation.
    for len in 0..bytes.len() {
        let e = refused(&text, &bytes[..len]);
        assert!(
            matches!(
                (len, &e),
                (0..8, RestoreError::Foreign)
                    | (8.., RestoreError::Truncated | RestoreError::Field { .. })
            ),
            "{len}: {e}"
        );
    }
    assert!(refused(&text, &bytes[..bytes.len() - 1])
        .to_string()
        .contains("truncated"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        refused(&text, &longer),
        RestoreError::TrailingBytes
    ));
    let mut v2 = bytes.clone();
    v2[8] = 2;
    let e = refused(&text, &v2);
    assert_eq!(
        e.to_string(),
        "state file format version 2; this tunfw reads version 1"
    );
    let e = refused(
        &text,
        b"(outbound: (policy: Drop), inbound: (policy: Drop))\n and more bytes",
    );
    assert_eq!(e.to_string(), "not a tunfw state file (bad magic)");
    let mut flipped = bytes.clone();
    flipped[100] ^= 0xff;
    let e = refused(&text, &flipped);
    assert!(!e.to_string().is_empty());
    // A wrong checksum, the message naming both.
    let mut crc = bytes.clone();
    let n = crc.len();
    crc[n - 1] ^= 0x80;
    let e = refused(&text, &crc);
    assert!(e.to_string().starts_with("checksum mismatch"), "{e}");
}

#[test]
fn files_that_do_not_fit_the_config_are_refused() {
    let text = config(64, true);
    let mut a = firewall(&text);
    build(&mut a);
    let bytes = save(&a);
    let e = refused(&config(5, true), &bytes);
    assert_eq!(
        e.to_string(),
        "6 flows in the file, over the table's limit of 5"
    );
    let e = refused(&config(64, false), &bytes);
    assert!(
        e.to_string().contains("the config translates nothing"),
        "{e}"
    );
    // Into a table that already holds flows.
    let mut busy = firewall(&text);
    busy.pass(Side::Lan, udp(CLIENT, SERVER, 1, 2, b""));
    let e = busy.fw.restore(&bytes[..], busy.now, WALL).unwrap_err();
    assert!(matches!(e, RestoreError::NotFresh));
    // Helper state of another kind: a table without helpers reads none.
    let mut plain: tunfw::conntrack::Conntrack<()> =
        tunfw::conntrack::Conntrack::new(Default::default(), Default::default());
    let e = plain.restore(&bytes[..], Instant::ZERO, WALL).unwrap_err();
    assert!(
        matches!(e, RestoreError::HelperKind { file: 1, table: 0 }),
        "{e}"
    );
}

#[test]
fn an_empty_table_round_trips() {
    let text = config(64, true);
    let a = firewall(&text);
    let bytes = save(&a);
    assert_eq!(bytes.len(), 36, "header and checksum");
    let mut b = firewall(&text);
    let s = b.fw.restore(&bytes[..], b.now, WALL).unwrap();
    assert_eq!(s.flows, 0);
}

#[test]
fn a_restore_allocates_only_its_read_buffer() {
    let text = config(64, true);
    let mut a = firewall(&text);
    build(&mut a);
    let bytes = save(&a);
    let mut b = firewall(&text);
    let now = b.now;
    let fw = &mut b.fw;
    let (result, allocations) = counting::counted(|| fw.restore(&bytes[..], now, WALL).is_ok());
    assert!(result);
    assert_eq!(allocations, 1, "the 64 KiB read buffer");
}

/// A long ignored test: saves and restores 1,000,000 flows (half TCP
/// SYN_SENT, half UDP, all translated) through a file and prints the
/// times. `cargo test --release --test restore -- --ignored --nocapture`.
#[test]
#[ignore]
fn save_and_restore_a_million_flows() {
    const N: u32 = 1_000_000;
    let text = config(N + 1000, true);
    let mut a = firewall(&text);
    let mut answer = vec![0u8; 2048];
    let started = std::time::Instant::now();
    for i in 0..N / 2 {
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0100 | (i >> 14)));
        let port = 1024 + (i & 0x3fff) as u16;
        // One server per client: the masquerade keeps every source port.
        let server = IpAddr::V4(Ipv4Addr::from(0x0a00_0300 | (i >> 14)));
        let mut p = seg_to(client, server, port, SYN, 1, 0);
        a.fw.process(Side::Lan, &mut p, &mut answer, a.now);
        let mut p = udp(client, server, port, 53, b"q");
        a.fw.process(Side::Lan, &mut p, &mut answer, a.now);
    }
    eprintln!(
        "filled {} flows in {:?}",
        a.fw.conntrack().len(),
        started.elapsed()
    );
    assert_eq!(a.fw.conntrack().len(), N as usize);
    let path = std::env::temp_dir().join(format!("tunfw-restore-{}.state", std::process::id()));
    let t = std::time::Instant::now();
    let summary = tunfw::state_file::save(a.fw.conntrack(), &path, a.now).expect("saved");
    let save = t.elapsed();
    let mut b = firewall(&text);
    let t = std::time::Instant::now();
    let restored = tunfw::state_file::restore(&mut b.fw, &path, b.now).expect("restored");
    let restore = t.elapsed();
    let _ = std::fs::remove_file(&path);
    eprintln!(
        "1M flows: save {save:?} ({} bytes, {} B/flow, fsync included), restore {restore:?} ({} flows)",
        summary.bytes,
        summary.bytes / u64::from(N),
        restored.flows
    );
    assert_eq!(restored.flows, u64::from(N));
}

fn seg_to(client: IpAddr, server: IpAddr, port: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    tcp(
        client,
        server,
        &Seg {
            sport: port,
            dport: 80,
            seq,
            ack,
            flags,
            window: 65000,
            ..Seg::default()
        },
    )
}

#[test]
fn a_wan_answer_first_after_restart_needs_the_restore() {
    // The simplest case, spelled out: an unreplied UDP query, the
    // server's answer arriving first after the restart.
    let text = config(64, true);
    let mut a = firewall(&text);
    let (_, out) = a.pass(Side::Lan, udp(CLIENT, SERVER, 6000, 7000, b"hello"));
    let port = sport(&out);
    let bytes = save(&a);
    let reply = udp(SERVER, PUBLIC, 7000, port, b"answer");
    let mut b = firewall(&text);
    b.fw.restore(&bytes[..], b.now, WALL).unwrap();
    let (v, out) = b.pass(Side::Wan, reply.clone());
    ok(&v, CtState::Established);
    assert_eq!(
        packet::parse(&out).unwrap().ip.dst,
        IpAddr::V4(CLIENT),
        "translated back to the client"
    );
    let mut empty = firewall(&text);
    let (v, _) = empty.pass(Side::Wan, reply);
    assert!(matches!(v.fate, Fate::Drop(_)), "{v:?}");
}

#[test]
fn the_config_names_the_state_file() {
    let text = config(64, true).replace(
        "    router:",
        "    state_file: \"/var/lib/tunfw/state\",\n    router:",
    );
    let cfg = tunfw::config::Config::parse(&text, "t.ron").expect("parses");
    assert_eq!(cfg.state_file.as_deref(), Some("/var/lib/tunfw/state"));
    let text = config(64, true).replace("    router:", "    state_file: \"\",\n    router:");
    let e = tunfw::config::Config::parse(&text, "t.ron").unwrap_err();
    assert_eq!(e.to_string(), "t.ron:2:18: the state file path is empty");
}
