//! The Linux selftests' packetdrill conntrack cases
//! (tools/testing/selftests/net/netfilter/packetdrill/conntrack_*.pkt) and
//! the rules the parity harness found, rewritten as tables: each step is a
//! packet through the pure packet path, with the expected verdict and TCP
//! state after it.

mod common;

use common::*;
use tunfw::conntrack::tcp::TcpState;
use tunfw::conntrack::CtState;

#[derive(Clone, Copy, Debug)]
enum Sender {
    C,
    S,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Forwarded, state as the rules saw it, TCP state after.
    Pass(CtState, TcpState),
    /// Dropped as INVALID, TCP state after (unchanged).
    Invalid(TcpState),
    /// Forwarded and the flow is gone.
    PassGone,
}

use Sender::{C, S};
use Then::{Invalid, Pass, PassGone};
const NEW: CtState = CtState::New;
const EST: CtState = CtState::Established;

struct Step {
    from: Sender,
    flags: u8,
    seq: u32,
    ack: u32,
    len: usize,
    win: u16,
    then: Then,
}

fn st(from: Sender, flags: u8, seq: u32, ack: u32, len: usize, then: Then) -> Step {
    Step {
        from,
        flags,
        seq,
        ack,
        len,
        win: 65000,
        then,
    }
}

fn run(name: &str, steps: &[Step]) {
    let mut h = Harness::tracking();
    let t = tuple(6, CLIENT, 40000, SERVER, 80);
    for (i, s) in steps.iter().enumerate() {
        let (src, dst, sp, dp) = match s.from {
            C => (CLIENT, SERVER, 40000, 80),
            S => (SERVER, CLIENT, 80, 40000),
        };
        let seg = Seg {
            sport: sp,
            dport: dp,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.win,
            payload: vec![0x61; s.len],
            ..Seg::default()
        };
        let v = match s.from {
            C => h.out(tcp(src, dst, &seg)),
            S => h.inb(tcp(src, dst, &seg)),
        };
        let after = h.flow(&t).and_then(|(f, _)| f.tcp_state());
        let got = match (v.forwards(), v.state, after) {
            (true, _, None) => PassGone,
            (true, Some(state), Some(a)) => Pass(state, a),
            (false, Some(CtState::Invalid), Some(a)) => Invalid(a),
            other => panic!("{name} step {}: unexpected {other:?} ({v:?})", i + 1),
        };
        assert_eq!(got, s.then, "{name} step {}", i + 1);
    }
}

/// Client ISN 1000, server ISN 5000, window 65000 both ways.
fn handshake() -> Vec<Step> {
    vec![
        st(C, SYN, 1000, 0, 0, Pass(NEW, TcpState::SynSent)),
        st(S, SYN | ACK, 5000, 1001, 0, Pass(EST, TcpState::SynRecv)),
        st(C, ACK, 1001, 5001, 0, Pass(EST, TcpState::Established)),
    ]
}

fn with(mut a: Vec<Step>, b: Vec<Step>) -> Vec<Step> {
    a.extend(b);
    a
}

#[test]
fn conntrack_rst_invalid() {
    // RST below what the peer acknowledged, and far beyond the window: INVALID;
    // the exact one closes.
    run(
        "rst_invalid",
        &with(
            handshake(),
            vec![
                st(
                    C,
                    ACK | PSH,
                    1001,
                    5001,
                    100,
                    Pass(EST, TcpState::Established),
                ),
                st(S, ACK, 5001, 1101, 0, Pass(EST, TcpState::Established)),
                st(C, RST, 1000, 0, 0, Invalid(TcpState::Established)),
                st(
                    C,
                    RST,
                    1101 + 10_000_000,
                    0,
                    0,
                    Invalid(TcpState::Established),
                ),
                st(C, RST, 1101, 0, 0, Pass(EST, TcpState::Close)),
            ],
        ),
    );
}

#[test]
fn conntrack_inexact_rst() {
    // An in-window RST that is not exact keeps ESTABLISHED (a challenge ACK
    // follows); the exact RST after it closes.
    run(
        "inexact_rst",
        &with(
            handshake(),
            vec![
                st(
                    S,
                    ACK | PSH,
                    5001,
                    1001,
                    100,
                    Pass(EST, TcpState::Established),
                ),
                st(C, ACK, 1001, 5101, 0, Pass(EST, TcpState::Established)),
                st(C, RST, 1001 + 3000, 0, 0, Pass(EST, TcpState::Established)),
                st(S, ACK, 5101, 1001, 0, Pass(EST, TcpState::Established)),
                st(C, RST, 1001, 0, 0, Pass(EST, TcpState::Close)),
            ],
        ),
    );
}

#[test]
fn conntrack_synack_old() {
    // A stale SYN/ACK (acking something old) is ignored; the real one follows.
    run(
        "synack_old",
        &[
            st(C, SYN, 1000, 0, 0, Pass(NEW, TcpState::SynSent)),
            st(
                S,
                SYN | ACK,
                4000,
                1001u32.wrapping_sub(100_000),
                0,
                Pass(EST, TcpState::SynSent),
            ),
            st(S, SYN | ACK, 5000, 1001, 0, Pass(EST, TcpState::SynRecv)),
            st(C, ACK, 1001, 5001, 0, Pass(EST, TcpState::Established)),
        ],
    );
}

#[test]
fn conntrack_synack_reuse() {
    // A new SYN on an established tuple is ignored; the SYN/ACK answering it
    // resynchronises the tracker (SYN_RECV), and the handshake completes.
    run(
        "synack_reuse",
        &with(
            handshake(),
            vec![
                st(C, SYN, 90_000, 0, 0, Pass(EST, TcpState::Established)),
                st(
                    S,
                    SYN | ACK,
                    70_000,
                    90_001,
                    0,
                    Pass(EST, TcpState::SynRecv),
                ),
                st(C, ACK, 90_001, 70_001, 0, Pass(EST, TcpState::Established)),
            ],
        ),
    );
}

#[test]
fn conntrack_syn_challenge_ack() {
    // In LAST_ACK, a SYN is ignored and the peer may answer with an RFC 5961
    // challenge ACK: it must not be taken for the last ACK (no TIME_WAIT).
    run(
        "syn_challenge_ack",
        &with(
            handshake(),
            vec![
                st(C, FIN | ACK, 1001, 5001, 0, Pass(EST, TcpState::FinWait)),
                st(S, ACK, 5001, 1002, 0, Pass(EST, TcpState::CloseWait)),
                st(S, FIN | ACK, 5001, 1002, 0, Pass(EST, TcpState::LastAck)),
                st(C, SYN, 77_000, 0, 0, Pass(EST, TcpState::LastAck)),
                st(S, ACK, 5002, 1002, 0, Pass(EST, TcpState::LastAck)),
                st(C, ACK, 1002, 5002, 0, Pass(EST, TcpState::TimeWait)),
            ],
        ),
    );
}

#[test]
fn conntrack_ack_loss_stall() {
    // The receiver's ACK was lost after the firewall saw it: the sender
    // retransmits data the firewall knows was acked. It must pass (ignored),
    // not be INVALID, or the connection stalls.
    run(
        "ack_loss_stall",
        &with(
            handshake(),
            vec![
                st(
                    C,
                    ACK | PSH,
                    1001,
                    5001,
                    1000,
                    Pass(EST, TcpState::Established),
                ),
                st(
                    C,
                    ACK | PSH,
                    2001,
                    5001,
                    1000,
                    Pass(EST, TcpState::Established),
                ),
                st(S, ACK, 5001, 3001, 0, Pass(EST, TcpState::Established)),
                st(
                    C,
                    ACK | PSH,
                    1001,
                    5001,
                    1000,
                    Pass(EST, TcpState::Established),
                ),
                st(
                    C,
                    ACK | PSH,
                    2001,
                    5001,
                    1000,
                    Pass(EST, TcpState::Established),
                ),
            ],
        ),
    );
}

#[test]
fn bare_ack_beyond_the_window_is_invalid() {
    // Found by the parity harness: a segment without data is checked like
    // any other (current kernels dropped the old "no data, check the ack
    // only" shortcut). Windows are 65000 here, so the far ACK is more than a
    // window beyond (within a window it is an overshoot, ignored, and passes).
    run(
        "bare_ack_far",
        &with(
            handshake(),
            vec![
                st(
                    S,
                    ACK,
                    5001 + 200_000,
                    1001,
                    0,
                    Invalid(TcpState::Established),
                ),
                st(
                    S,
                    ACK,
                    5001 + 100,
                    1001,
                    0,
                    Pass(EST, TcpState::Established),
                ),
            ],
        ),
    );
    run(
        "bare_ack_far_syn_recv",
        &[
            st(C, SYN, 1000, 0, 0, Pass(NEW, TcpState::SynSent)),
            st(S, SYN | ACK, 5000, 1001, 0, Pass(EST, TcpState::SynRecv)),
            st(S, ACK, 5001 + 70_000, 1001, 0, Invalid(TcpState::SynRecv)),
        ],
    );
}

#[test]
fn out_of_window_rst_on_an_assured_flow_is_remembered() {
    // nf_tcp_handle_invalid: the server's out-of-window RST becomes the last
    // packet, so the client's following RST (which would otherwise close as
    // the end of a train) keeps ESTABLISHED, and a later far RST is INVALID.
    run(
        "handle_invalid",
        &with(
            handshake(),
            vec![
                st(
                    C,
                    ACK | PSH,
                    1001,
                    5001,
                    1,
                    Pass(EST, TcpState::Established),
                ),
                st(S, ACK, 5001, 1002, 0, Pass(EST, TcpState::Established)),
                st(S, RST, 5001 + 200_000, 0, 0, Invalid(TcpState::Established)),
                st(C, RST, 1002 + 5, 0, 0, Pass(EST, TcpState::Established)),
                st(S, RST, 5001 + 200_000, 0, 0, Invalid(TcpState::Established)),
            ],
        ),
    );
}

#[test]
fn rst_answering_an_ignored_syn_must_come_from_the_other_side() {
    // A SYN ignored on an established flow; the RST that answers it (from
    // the other side, acking the SYN) skips the window checks and closes.
    run(
        "rst_answers_syn",
        &with(
            handshake(),
            vec![
                st(C, SYN, 90_000, 0, 0, Pass(EST, TcpState::Established)),
                st(
                    S,
                    RST | ACK,
                    5001 + 900_000,
                    90_001,
                    0,
                    Pass(EST, TcpState::Close),
                ),
            ],
        ),
    );
    // The same RST from the SYN's own side goes to the window checks.
    run(
        "rst_same_side",
        &[
            st(C, SYN, 0, 0, 0, Pass(NEW, TcpState::SynSent)),
            st(S, SYN, 5000, 0, 0, Pass(EST, TcpState::SynSent2)),
            st(S, RST, 5000 + 100_000, 0, 0, Invalid(TcpState::SynSent2)),
        ],
    );
}

#[test]
fn simultaneous_open_reaches_established() {
    run(
        "simultaneous_open",
        &[
            st(C, SYN, 1000, 0, 0, Pass(NEW, TcpState::SynSent)),
            st(S, SYN, 5000, 0, 0, Pass(EST, TcpState::SynSent2)),
            st(C, SYN | ACK, 1000, 5001, 0, Pass(EST, TcpState::SynRecv)),
            st(S, ACK, 5001, 1001, 0, Pass(EST, TcpState::Established)),
        ],
    );
}

#[test]
fn rst_before_any_reply_deletes_the_flow() {
    run(
        "rst_no_reply",
        &[
            st(C, SYN, 1000, 0, 0, Pass(NEW, TcpState::SynSent)),
            st(C, RST, 1001, 0, 0, PassGone),
        ],
    );
}
