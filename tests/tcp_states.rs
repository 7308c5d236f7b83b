//! Every cell of the TCP conntrack transition table, driven through the pure
//! packet path with real packets, plus whole connections, window checks and
//! timeouts on the injected clock.

mod common;

use common::*;
use tunfw::conntrack::tcp::TcpState;
use tunfw::conntrack::CtState;
use tunfw::stats::{DropReason, InvalidReason};
use tunfw::verdict::Verdict;

const C_ISN: u32 = 1_000;
const S_ISN: u32 = 500_000;
const CPORT: u16 = 40_000;
const SPORT: u16 = 80;

/// A TCP conversation between CLIENT (LAN) and SERVER (WAN) that keeps each
/// side's next sequence number, as real stacks would.
struct Conv {
    h: Harness,
    c_next: u32,
    s_next: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Client,
    Server,
}

impl Conv {
    fn new() -> Conv {
        Conv {
            h: Harness::tracking(),
            c_next: C_ISN,
            s_next: S_ISN,
        }
    }

    fn send(&mut self, who: Who, flags: u8, payload: usize) -> Verdict {
        let (seq, ack) = match who {
            Who::Client => (self.c_next, self.s_next),
            Who::Server => (self.s_next, self.c_next),
        };
        let seg = Seg {
            sport: if who == Who::Client { CPORT } else { SPORT },
            dport: if who == Who::Client { SPORT } else { CPORT },
            seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            flags,
            window: 64_000,
            payload: vec![b'x'; payload],
            ..Seg::default()
        };
        let mut adv = payload as u32;
        if flags & SYN != 0 {
            adv += 1;
        }
        if flags & FIN != 0 {
            adv += 1;
        }
        match who {
            Who::Client => {
                self.c_next = self.c_next.wrapping_add(adv);
                self.h.out(tcp(CLIENT, SERVER, &seg))
            }
            Who::Server => {
                self.s_next = self.s_next.wrapping_add(adv);
                self.h.inb(tcp(SERVER, CLIENT, &seg))
            }
        }
    }

    fn c(&mut self, flags: u8) -> Verdict {
        self.send(Who::Client, flags, 0)
    }

    fn s(&mut self, flags: u8) -> Verdict {
        self.send(Who::Server, flags, 0)
    }

    fn state(&self) -> Option<TcpState> {
        let t = tuple(6, CLIENT, CPORT, SERVER, SPORT);
        self.h.flow(&t).and_then(|(f, _)| f.tcp_state())
    }

    fn flow_assured(&self) -> bool {
        let t = tuple(6, CLIENT, CPORT, SERVER, SPORT);
        self.h.flow(&t).is_some_and(|(f, _)| f.assured)
    }
}

/// Drive a fresh conversation into `state` (column of the table).
fn drive_to(state: &str) -> Conv {
    let mut cv = Conv::new();
    let steps: &[(Who, u8)] = match state {
        "NO" => &[],
        "SS" => &[(Who::Client, SYN)],
        "SR" => &[(Who::Client, SYN), (Who::Server, SYN | ACK)],
        "ES" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
        ],
        "FW" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
            (Who::Client, FIN | ACK),
        ],
        "CW" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
            (Who::Client, FIN | ACK),
            (Who::Server, ACK),
        ],
        "LA" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
            (Who::Client, FIN | ACK),
            (Who::Server, ACK),
            (Who::Server, FIN | ACK),
        ],
        "TW" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
            (Who::Client, FIN | ACK),
            (Who::Server, ACK),
            (Who::Server, FIN | ACK),
            (Who::Client, ACK),
        ],
        "CL" => &[
            (Who::Client, SYN),
            (Who::Server, SYN | ACK),
            (Who::Client, ACK),
            (Who::Client, RST | ACK),
        ],
        "S2" => &[(Who::Client, SYN), (Who::Server, SYN)],
        other => panic!("unknown state {other}"),
    };
    for &(who, flags) in steps {
        let v = cv.send(who, flags, 0);
        assert!(
            v.forwards(),
            "setup step {who:?} {flags:#x} for {state} was not forwarded: {v:?}"
        );
    }
    let want = parse_state(state);
    assert_eq!(cv.state(), want, "setup did not reach {state}");
    cv
}

fn parse_state(s: &str) -> Option<TcpState> {
    Some(match s {
        "NO" => return None,
        "SS" => TcpState::SynSent,
        "SR" => TcpState::SynRecv,
        "ES" => TcpState::Established,
        "FW" => TcpState::FinWait,
        "CW" => TcpState::CloseWait,
        "LA" => TcpState::LastAck,
        "TW" => TcpState::TimeWait,
        "CL" => TcpState::Close,
        "S2" => TcpState::SynSent2,
        other => panic!("unknown state {other}"),
    })
}

const COLUMNS: [&str; 10] = ["NO", "SS", "SR", "ES", "FW", "CW", "LA", "TW", "CL", "S2"];

/// The kernel's table (`tcp_conntracks` in Linux's
/// net/netfilter/nf_conntrack_proto_tcp.c), as the tracker must reproduce it. `--` marks a
/// cell where the flow is deleted: a RST while no reply was ever seen.
/// REPLY/NO cannot occur (a packet without a flow is always ORIGINAL).
const TABLE: &[(Who, &str, u8, &str)] = &[
    (Who::Client, "syn", SYN, "SS SS IG IG IG IG IG SS SS S2"),
    (
        Who::Client,
        "synack",
        SYN | ACK,
        "IV IV SR IV IV IV IV IV IV SR",
    ),
    (
        Who::Client,
        "fin",
        FIN | ACK,
        "IV IV FW FW LA LA LA TW CL IV",
    ),
    (Who::Client, "ack", ACK, "ES IV ES ES CW CW TW TW CL IV"),
    // A client aborting a connect sends a bare RST (a RST|ACK acking the
    // server's unsent ISN would fail check III, in Linux too).
    (Who::Client, "rst", RST, "IV -- CL CL CL CL CL CL CL CL"),
    (Who::Client, "none", 0, "IV IV IV IV IV IV IV IV IV IV"),
    (Who::Server, "syn", SYN, "xx S2 IV IV IV IV IV SS IV S2"),
    (
        Who::Server,
        "synack",
        SYN | ACK,
        "xx SR IG IG IG IG IG IG IG SR",
    ),
    (
        Who::Server,
        "fin",
        FIN | ACK,
        "xx IV FW FW LA LA LA TW CL IV",
    ),
    (Who::Server, "ack", ACK, "xx IG SR ES CW CW TW TW CL IG"),
    (
        Who::Server,
        "rst",
        RST | ACK,
        "xx -- CL CL CL CL CL CL CL CL",
    ),
    (Who::Server, "none", 0, "xx IV IV IV IV IV IV IV IV IV"),
];

#[test]
fn every_cell_of_the_transition_table() {
    let mut failures = Vec::new();
    let mut cells = 0;
    for &(who, class, flags, row) in TABLE {
        for (col, expect) in COLUMNS.iter().zip(row.split_whitespace()) {
            if expect == "xx" {
                continue;
            }
            cells += 1;
            let mut cv = drive_to(col);
            let before = cv.state();
            let v = cv.send(who, flags, 0);
            let after = cv.state();
            let ok = match expect {
                "IV" => v.state == Some(CtState::Invalid) && !v.forwards() && after == before,
                "IG" => v.forwards() && v.state != Some(CtState::Invalid) && after == before,
                "--" => v.forwards() && after.is_none(),
                s => v.forwards() && after == parse_state(s),
            };
            if !ok {
                failures.push(format!(
                    "{who:?} {class} in {col}: expected {expect}, got verdict {:?}/{:?}, state {before:?} -> {after:?}",
                    v.state, v.drop_reason()
                ));
            }
        }
    }
    assert_eq!(cells, 114);
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn whole_connection_handshake_data_fin_time_wait_reuse() {
    let mut cv = Conv::new();
    assert!(forwarded(&cv.c(SYN), CtState::New));
    assert_eq!(cv.state(), Some(TcpState::SynSent));
    assert!(forwarded(&cv.s(SYN | ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::SynRecv));
    assert!(!cv.flow_assured());
    assert!(forwarded(&cv.c(ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::Established));
    assert!(
        cv.flow_assured(),
        "SYN_RECV -> ESTABLISHED with a reply seen is ASSURED"
    );
    for _ in 0..5 {
        assert!(forwarded(
            &cv.send(Who::Client, ACK | PSH, 100),
            CtState::Established
        ));
        assert!(forwarded(
            &cv.send(Who::Server, ACK | PSH, 1400),
            CtState::Established
        ));
    }
    assert!(forwarded(&cv.s(FIN | ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::FinWait));
    assert!(forwarded(&cv.c(ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::CloseWait));
    assert!(forwarded(&cv.c(FIN | ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::LastAck));
    assert!(forwarded(&cv.s(ACK), CtState::Established));
    assert_eq!(cv.state(), Some(TcpState::TimeWait));

    // The client reuses the tuple: the old flow is replaced by a NEW one.
    cv.c_next = cv.c_next.wrapping_add(100_000);
    let v = cv.c(SYN);
    assert!(
        forwarded(&v, CtState::New),
        "SYN on a TIME_WAIT tuple starts a new flow: {v:?}"
    );
    assert_eq!(cv.state(), Some(TcpState::SynSent));
    assert!(!cv.flow_assured());
    assert_eq!(cv.h.fw.conntrack().stats.reopened, 1);
}

#[test]
fn time_wait_expires_after_120s_and_syn_sent_after_120s() {
    let mut cv = drive_to("TW");
    cv.h.advance_secs(119);
    assert_eq!(cv.state(), Some(TcpState::TimeWait));
    cv.h.advance_secs(2);
    assert_eq!(cv.state(), None);

    let mut cv = drive_to("SS");
    cv.h.advance_secs(121);
    assert_eq!(
        cv.state(),
        None,
        "unreplied SYN expires by the SYN_SENT timeout"
    );
    // The late SYN/ACK is now the first packet of a flow: INVALID.
    let v = cv.s(SYN | ACK);
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(
        cv.h.fw.stats().invalid[InvalidReason::TcpInvalidNew.index()],
        1
    );
}

#[test]
fn established_timeout_is_five_days_and_rst_gives_ten_seconds() {
    let mut cv = drive_to("ES");
    cv.h.advance_secs(431_999);
    assert_eq!(cv.state(), Some(TcpState::Established));
    assert!(forwarded(&cv.c(ACK), CtState::Established));
    cv.h.advance_secs(431_999);
    assert_eq!(
        cv.state(),
        Some(TcpState::Established),
        "a packet refreshes the timeout"
    );
    assert!(cv.c(RST | ACK).forwards());
    assert_eq!(cv.state(), Some(TcpState::Close));
    cv.h.advance_secs(11);
    assert_eq!(cv.state(), None);
}

#[test]
fn syn_retransmit_before_reply_does_not_refresh_timeout() {
    let mut cv = drive_to("SS");
    cv.h.advance_secs(100);
    cv.c_next = C_ISN;
    assert!(cv.c(SYN).forwards());
    cv.h.advance_secs(21);
    assert_eq!(cv.state(), None, "expiry still counts from the first SYN");
}

#[test]
fn illegal_flag_combinations_are_invalid() {
    for (name, flags) in [
        ("NULL", 0),
        ("XMAS", FIN | SYN | RST | PSH | ACK | URG),
        ("SYN+FIN", SYN | FIN),
        ("bare FIN", FIN),
        ("SYN+RST", SYN | RST),
        ("FIN+RST", FIN | RST),
        ("PSH only", PSH),
    ] {
        let mut h = Harness::tracking();
        let seg = Seg {
            sport: 1234,
            dport: 80,
            seq: 1,
            flags,
            window: 1000,
            ..Seg::default()
        };
        let v = h.out(tcp(CLIENT, SERVER, &seg));
        assert_eq!(v.state, Some(CtState::Invalid), "{name}");
        assert!(!v.forwards(), "{name}");
        assert_eq!(
            h.fw.stats().invalid[InvalidReason::TcpBadFlags.index()],
            1,
            "{name}"
        );
    }
    // ECE, CWR and PSH are masked: SYN|ECE|CWR is a legal SYN.
    let mut h = Harness::tracking();
    let seg = Seg {
        sport: 1234,
        dport: 80,
        seq: 1,
        flags: SYN | ECE | CWR,
        window: 1000,
        ..Seg::default()
    };
    assert!(forwarded(&h.out(tcp(CLIENT, SERVER, &seg)), CtState::New));
}

#[test]
fn loose_pickup_of_a_mid_stream_ack_is_new_and_then_established() {
    let mut h = Harness::tracking();
    let seg = Seg {
        sport: 5555,
        dport: 22,
        seq: 7000,
        ack: 9000,
        flags: ACK,
        window: 1000,
        ..Seg::default()
    };
    assert!(forwarded(&h.out(tcp(CLIENT, SERVER, &seg)), CtState::New));
    let back = Seg {
        sport: 22,
        dport: 5555,
        seq: 9000,
        ack: 7000,
        flags: ACK,
        window: 1000,
        ..Seg::default()
    };
    assert!(forwarded(
        &h.inb(tcp(SERVER, CLIENT, &back)),
        CtState::Established
    ));
    let t = tuple(6, CLIENT, 5555, SERVER, 22);
    let (flow, _) = h.flow(&t).expect("picked-up flow");
    assert_eq!(flow.tcp_state(), Some(TcpState::Established));
    // The kernel sets SEEN_REPLY after the TCP handler ran, so the first reply
    // itself does not make the flow ASSURED; the next packet does.
    assert!(!flow.assured);
    let next = Seg {
        seq: 7000,
        ack: 9000,
        ..seg.clone()
    };
    assert!(forwarded(
        &h.out(tcp(CLIENT, SERVER, &next)),
        CtState::Established
    ));
    assert!(
        h.flow(&t).expect("flow").0.assured,
        "a valid answer for a picked-up flow makes it ASSURED"
    );

    let strict = TRACKING_CONFIG.replace("router:", "conntrack: (tcp_loose: false), router:");
    let mut h = Harness::with_config(&strict);
    assert_eq!(
        h.out(tcp(CLIENT, SERVER, &seg)).state,
        Some(CtState::Invalid)
    );
}

#[test]
fn window_checks() {
    // Data far beyond the receiver's window: INVALID (check I).
    let mut cv = drive_to("ES");
    cv.c_next = cv.c_next.wrapping_add(1_000_000);
    let v = cv.send(Who::Client, ACK | PSH, 100);
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(
        cv.h.fw.stats().invalid[InvalidReason::TcpSeqOverWindow.index()],
        1
    );

    // ACK of data never sent: INVALID (check III).
    let mut cv = drive_to("ES");
    cv.s_next = cv.s_next.wrapping_add(50_000);
    let v = cv.c(ACK);
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(
        cv.h.fw.stats().invalid[InvalidReason::TcpAckUnsentData.index()],
        1
    );

    // Retransmission of acked data: accepted without a state change (check II ignore).
    let mut cv = drive_to("ES");
    let start = cv.c_next;
    for _ in 0..3 {
        assert!(cv.send(Who::Client, ACK | PSH, 1000).forwards());
        assert!(cv.s(ACK).forwards());
    }
    cv.c_next = start;
    let v = cv.send(Who::Client, ACK | PSH, 1000);
    assert!(
        forwarded(&v, CtState::Established),
        "old retransmit passes: {v:?}"
    );

    // With tcp_be_liberal nothing in window tracking is INVALID.
    let liberal = TRACKING_CONFIG.replace("router:", "conntrack: (tcp_be_liberal: true), router:");
    let mut cv = drive_to("ES");
    cv.h = Harness::with_config(&liberal);
    cv.c_next = C_ISN;
    cv.s_next = S_ISN;
    for (who, flags) in [
        (Who::Client, SYN),
        (Who::Server, SYN | ACK),
        (Who::Client, ACK),
    ] {
        assert!(cv.send(who, flags, 0).forwards());
    }
    cv.c_next = cv.c_next.wrapping_add(1_000_000);
    assert!(cv.send(Who::Client, ACK | PSH, 100).forwards());
}

#[test]
fn rst_sequence_rules() {
    // RST below what the peer already acknowledged: INVALID.
    let mut cv = drive_to("ES");
    cv.send(Who::Client, ACK | PSH, 500);
    cv.s(ACK);
    cv.c_next = cv.c_next.wrapping_sub(400);
    let v = cv.c(RST | ACK);
    assert_eq!(v.state, Some(CtState::Invalid));
    assert_eq!(
        cv.h.fw.stats().invalid[InvalidReason::TcpInvalidRst.index()],
        1
    );
    assert_eq!(cv.state(), Some(TcpState::Established));

    // In window but not exact: accepted, state kept (a challenge ACK may follow).
    let mut cv = drive_to("ES");
    cv.send(Who::Client, ACK | PSH, 10);
    cv.s(ACK);
    cv.send(Who::Server, ACK | PSH, 10);
    cv.c(ACK);
    cv.c_next = cv.c_next.wrapping_add(5_000);
    let v = cv.c(RST);
    assert!(v.forwards(), "in-window inexact RST passes: {v:?}");
    assert_eq!(cv.state(), Some(TcpState::Established));

    // Exact RST: CLOSE.
    let mut cv = drive_to("ES");
    assert!(cv.c(RST | ACK).forwards());
    assert_eq!(cv.state(), Some(TcpState::Close));
}

#[test]
fn rst_answering_syn_deletes_flow_and_passes_as_established() {
    let mut cv = drive_to("SS");
    let v = cv.s(RST | ACK);
    assert!(forwarded(&v, CtState::Established));
    assert_eq!(cv.state(), None);
}

#[test]
fn default_config_blocks_server_initiated_tcp_and_keeps_no_entry() {
    let mut h = Harness::default_config();
    let syn = Seg {
        sport: 4444,
        dport: 7000,
        seq: 1,
        flags: SYN,
        window: 1000,
        ..Seg::default()
    };
    let v = h.inb(tcp(SERVER, CLIENT, &syn));
    assert_eq!(v.drop_reason(), Some(DropReason::PolicyInbound));
    assert_eq!(v.state, Some(CtState::New));
    assert_eq!(
        h.fw.conntrack().len(),
        0,
        "a flow whose first packet was dropped is not kept"
    );
}
