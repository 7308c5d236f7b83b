//! Fuzz the control protocol without sockets: the bytes a client sent,
//! one request per line, each read as the server reads it
//! ([`request_line`]), parsed ([`Request::parse`]) and answered
//! ([`dispatch`], what the event loop calls) against a firewall holding
//! flows of both families. Must never panic; a line is within the request
//! bound; a request parses the same with its words re-spaced; every answer
//! is one JSON document (an error for what did not parse); listings change
//! nothing and list exactly the matching flows; `kill` removes exactly the
//! live flows its filter matches, `flush` every flow.
#![no_main]

#[path = "small_firewall.rs"]
mod small_firewall;

use libfuzzer_sys::fuzz_target;
use small_firewall::small_firewall;
use tunfw::control::{dispatch, request_line, Dispatch, FlowFilter, Request, MAX_REQUEST};
use tunfw::filter::Firewall;
use tunfw::report::LoopCounters;
use tunfw::side::Side;
use tunfw::time::Instant;
use tunfw::wire::checksum::{fold, pseudo_header_v4, pseudo_header_v6, sum};

/// An IPv4 (4-byte addresses) or IPv6 packet carrying `l4` of `proto`,
/// whose checksum (at `check_at` in `l4`) is filled in.
fn packet(src: &[u8], dst: &[u8], proto: u8, mut l4: Vec<u8>, check_at: usize) -> Vec<u8> {
    let len = l4.len();
    let pseudo = match (<[u8; 4]>::try_from(src), <[u8; 4]>::try_from(dst)) {
        (Ok(s), Ok(d)) => pseudo_header_v4(s, d, proto, len as u16),
        _ => {
            let s = <[u8; 16]>::try_from(src).unwrap_or_default();
            let d = <[u8; 16]>::try_from(dst).unwrap_or_default();
            pseudo_header_v6(s, d, proto, len as u32)
        }
    };
    // ICMP (over IPv4) has no pseudo-header.
    let pseudo = if proto == 1 { 0 } else { pseudo };
    let c = !fold(pseudo + sum(&l4));
    l4[check_at..check_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut p = if src.len() == 4 {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        h.extend_from_slice(src);
        h.extend_from_slice(dst);
        let c = !fold(sum(&h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    } else {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
        h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(src);
        h.extend_from_slice(dst);
        h
    };
    p.extend_from_slice(&l4);
    p
}

fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    let mut u = vec![0u8; 12];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&12u16.to_be_bytes());
    packet(src, dst, 17, u, 6)
}

fn tcp_syn(src: &[u8], dst: &[u8], sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&65000u16.to_be_bytes());
    packet(src, dst, 6, t, 16)
}

fn echo(src: &[u8], dst: &[u8], id: u16) -> Vec<u8> {
    let v6 = src.len() == 16;
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0, 0, 1];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    packet(src, dst, if v6 { 58 } else { 1 }, m, 2)
}

const C4: [u8; 4] = [10, 0, 1, 2];
const S4: [u8; 4] = [10, 0, 2, 2];
const C6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const S6: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// The live flows `filter` matches.
fn matching(fw: &Firewall, filter: &FlowFilter, now: Instant) -> usize {
    let ct = fw.conntrack();
    ct.flow_ids(now)
        .filter(|&id| ct.get(id).is_some_and(|f| filter.matches(f, &ct.reply_tuple(f))))
        .count()
}

fuzz_target!(|data: &[u8]| {
    // Everything a client sends is at most MAX_REQUEST + 1 bytes; the line
    // the server takes from it is within the bound.
    let head = &data[..data.len().min(MAX_REQUEST + 1)];
    if let Ok(line) = request_line(head) {
        assert!(line.chars().count() <= MAX_REQUEST);
    }

    let mut fw = small_firewall();
    let mut answer = [0u8; 1500];
    let t0 = Instant::from_secs(1);
    for pkt in [
        udp(&C4, &S4, 1000, 53),
        tcp_syn(&C4, &S4, 40000, 80),
        tcp_syn(&C4, &S4, 40001, 21),
        echo(&C4, &S4, 7),
        udp(&C6, &S6, 1001, 53),
        tcp_syn(&C6, &S6, 40002, 443),
        echo(&C6, &S6, 8),
    ] {
        fw.process(Side::Lan, &mut pkt.clone(), &mut answer, t0);
    }
    // An answer: the first UDP flow is ESTABLISHED (and not UNREPLIED).
    fw.process(Side::Wan, &mut udp(&S4, &C4, 53, 1000), &mut answer, t0);
    assert_eq!(fw.conntrack().len(), 7);

    let shell = LoopCounters::default();
    for (i, piece) in data.split(|&b| b == b'\n').enumerate().take(64) {
        // Time moves 4 s a line: flows start to expire after a few lines.
        let now = Instant::from_secs(1 + 4 * i as u64);
        let line = request_line(piece);
        let request = line.clone().and_then(|l| Request::parse(&l));
        if let Ok(l) = &line {
            let respaced = l.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(Request::parse(&respaced), request, "{l:?}");
        }
        let before = fw.conntrack().len();
        let expected = match &request {
            Ok(Request::Flows(f) | Request::Kill(f)) => Some(matching(&fw, f, now)),
            _ => None,
        };
        let reply = dispatch(&mut fw, &shell, now, request.clone());
        let bytes = match (&request, reply) {
            (Ok(Request::Reload(_)), Dispatch::Reload(_)) => continue,
            (Ok(Request::Events), Dispatch::Subscribe) => continue,
            (Ok(Request::Trace(_)), Dispatch::Trace(_)) => continue,
            (Ok(Request::Save(_)), Dispatch::Save(_)) => continue,
            (_, Dispatch::Answer(bytes)) => bytes,
            (Ok(Request::Flows(_)), Dispatch::Listing(listing)) => listing.complete(&fw, now),
            (r, d) => panic!("{r:?} came to {d:?}"),
        };
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON answer");
        let after = fw.conntrack().len();
        match request {
            Err(_) => assert!(json.get("error").is_some(), "{json}"),
            Ok(Request::Flush) => {
                assert_eq!(json["removed"], before as u64);
                assert_eq!(after, 0);
            }
            Ok(Request::Kill(f)) => {
                assert_eq!(json["removed"], expected.unwrap_or_default() as u64);
                assert_eq!(after, before - expected.unwrap_or_default());
                assert_eq!(matching(&fw, &f, now), 0);
            }
            Ok(Request::Flows(_)) => {
                assert_eq!(json.as_array().map(Vec::len), expected);
                assert_eq!(after, before);
            }
            Ok(Request::Stats) => {
                assert!(json
                    .as_object()
                    .is_some_and(|m| m.values().all(|v| v.is_u64())));
                assert_eq!(after, before);
            }
            Ok(Request::Rules | Request::Expectations) => {
                assert!(json.is_array());
                assert_eq!(after, before);
            }
            Ok(Request::Metrics) => {
                assert!(json["metrics"]
                    .as_str()
                    .is_some_and(|t| t.contains("tunfw_packets_total")));
                assert_eq!(after, before);
            }
            Ok(r) => panic!("{r:?} answered {json}"),
        }
        fw.tick(now);
    }
});
