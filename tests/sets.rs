//! Named sets through the pure packet path: rules matching `"@name"`
//! address and port sets, runtime changes (`ctl set`), element timeouts,
//! reloads that keep runtime elements, config errors at the right place,
//! and lookups without allocation at 100,000 elements.

mod common;
mod counting;

use core::net::Ipv4Addr;
use core::time::Duration;

use common::*;
use tunfw::config::Config;
use tunfw::control::dispatch::{dispatch, Dispatch};
use tunfw::control::request::Request;
use tunfw::report::LoopCounters;
use tunfw::side::Side;
use tunfw::stats::DropReason;
use tunfw::verdict::Fate;

/// Inbound: answers, then everything from the blocklist dropped, then new
/// connections to the open ports accepted.
const CONFIG: &str = r#"(
    sets: {
        "blocklist": (kind: Address, max: 200000, elements: ["192.0.2.0/24"]),
        "open": (kind: Port, elements: ["22", "8000:8080"]),
    },
    outbound: (policy: Accept),
    inbound: (policy: Drop, rules: [
        (name: "blocked", src: "@blocklist", action: Drop),
        (state: [Established, Related], action: Accept),
        (name: "open", proto: Tcp, dport: "@open", state: [New], action: Accept),
    ]),
)"#;

fn syn_from(src: Ipv4Addr, dport: u16) -> Vec<u8> {
    tcp_segment(src, CLIENT, 40000, dport, 1, 0, SYN, b"")
}

fn fate(h: &mut Harness, src: Ipv4Addr, dport: u16) -> Fate {
    h.inb(syn_from(src, dport)).fate
}

const BLOCKED: Fate = Fate::Drop(DropReason::RuleDrop);
const POLICY: Fate = Fate::Drop(DropReason::PolicyInbound);

#[test]
fn rules_match_address_and_port_sets() {
    let mut h = Harness::with_config(CONFIG);
    assert_eq!(fate(&mut h, Ipv4Addr::new(192, 0, 2, 9), 22), BLOCKED);
    assert_eq!(fate(&mut h, SERVER, 22), Fate::Forward);
    assert_eq!(fate(&mut h, SERVER, 8080), Fate::Forward);
    assert_eq!(fate(&mut h, SERVER, 8081), POLICY);
    assert_eq!(fate(&mut h, SERVER, 21), POLICY);
}

fn ctl(h: &mut Harness, line: &str) -> serde_json::Value {
    let now = h.now;
    match dispatch(
        &mut h.fw,
        &LoopCounters::default(),
        now,
        Request::parse(line),
    ) {
        Dispatch::Answer(bytes) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ctl_changes_sets_at_runtime_and_timeouts_end_membership() {
    let mut h = Harness::with_config(CONFIG);
    let attacker = Ipv4Addr::new(198, 51, 100, 7);
    assert_eq!(fate(&mut h, attacker, 22), Fate::Forward);
    // A fail2ban-style ban, in one call.
    assert_eq!(
        ctl(&mut h, "set add blocklist 198.51.100.7 timeout 600")["added"],
        1
    );
    assert_eq!(fate(&mut h, attacker, 22), BLOCKED);
    let listed = ctl(&mut h, "set list blocklist");
    let elements = listed["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[1]["element"], "198.51.100.7/32");
    assert_eq!(elements[1]["expires_in"], 600);
    assert_eq!(elements[1]["runtime"], true);
    h.advance_secs(599);
    assert_eq!(fate(&mut h, attacker, 22), BLOCKED);
    h.advance_secs(1);
    assert_eq!(
        fate(&mut h, attacker, 22),
        Fate::Forward,
        "the ban ended with its timeout"
    );
    // Ports too; del and flush.
    assert_eq!(ctl(&mut h, "set add open 21 6000:6010")["added"], 2);
    assert_eq!(fate(&mut h, SERVER, 6005), Fate::Forward);
    assert_eq!(ctl(&mut h, "set del open 6000:6010")["removed"], 1);
    assert_eq!(fate(&mut h, SERVER, 6006), POLICY);
    assert_eq!(ctl(&mut h, "set flush blocklist")["removed"], 1);
    assert_eq!(fate(&mut h, Ipv4Addr::new(192, 0, 2, 9), 22), Fate::Forward);
    // Errors say what is wrong and change nothing after the bad element.
    let e = ctl(&mut h, "set add nosuch 10.0.0.1");
    assert!(e["error"].as_str().unwrap().contains("no set named"), "{e}");
    let e = ctl(&mut h, "set add open 70000");
    assert!(e["error"].as_str().unwrap().contains("70000"), "{e}");
    let e = ctl(&mut h, "set add blocklist 10.0.0.1 timeout 0");
    assert!(e["error"].as_str().unwrap().contains("timeout 0"), "{e}");
    let all = ctl(&mut h, "set list");
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[test]
fn a_reload_keeps_runtime_elements_and_takes_the_new_config_ones() {
    let mut h = Harness::with_config(CONFIG);
    let attacker = Ipv4Addr::new(198, 51, 100, 7);
    ctl(&mut h, "set add blocklist 198.51.100.7 timeout 600");
    h.advance_secs(100);
    let new = CONFIG.replace("192.0.2.0/24", "203.0.113.0/24");
    let cfg = Config::parse(&new, "new.ron").unwrap();
    let now = h.now;
    h.fw.reload(&cfg, now);
    assert_eq!(
        fate(&mut h, attacker, 22),
        BLOCKED,
        "the runtime ban survived"
    );
    assert_eq!(fate(&mut h, Ipv4Addr::new(192, 0, 2, 9), 22), Fate::Forward);
    assert_eq!(fate(&mut h, Ipv4Addr::new(203, 0, 113, 9), 22), BLOCKED);
    let listed = ctl(&mut h, "set list blocklist");
    assert_eq!(
        listed["elements"][1]["expires_in"], 500,
        "with its remaining timeout"
    );
    h.advance_secs(500);
    assert_eq!(fate(&mut h, attacker, 22), Fate::Forward);
}

#[test]
fn config_errors_name_the_place() {
    let cases = [
        (
            CONFIG.replace("src: \"@blocklist\"", "src: \"@nosuch\""),
            "no set named \"nosuch\"",
        ),
        (
            CONFIG.replace("dport: \"@open\"", "dport: \"@blocklist\""),
            "needs a set of kind Port",
        ),
        (
            CONFIG.replace("\"22\", \"8000:8080\"", "\"22\", \"99999\""),
            "99999",
        ),
        (CONFIG.replace("max: 200000", "max: 0"), "out of range"),
        (
            CONFIG.replace(
                "max: 200000, elements: [\"192.0.2.0/24\"]",
                "max: 1, elements: [\"192.0.2.0/24\", \"10.0.0.1\"]",
            ),
            "more than its max",
        ),
        (
            CONFIG.replace("\"blocklist\": (", "\"block list\": ("),
            "set name",
        ),
    ];
    for (text, want) in cases {
        let e = Config::parse(&text, "sets.ron").expect_err(want);
        assert!(e.message.contains(want), "{want}: {e}");
        assert_eq!(e.file, "sets.ron");
        assert!(e.line > 1, "{e}");
    }
    // The reference's error points at the rule's field.
    let text = CONFIG.replace("src: \"@blocklist\"", "src: \"@nosuch\"");
    let e = Config::parse(&text, "sets.ron").unwrap_err();
    let line = text.lines().nth(e.line - 1).unwrap();
    assert!(line.contains("@nosuch"), "{e}: {line}");
}

#[test]
fn lookups_at_100000_elements_do_not_allocate() {
    let mut h = Harness::with_config(CONFIG);
    let set = h.fw.sets_mut().get_mut("blocklist").unwrap();
    for i in 0..100_000u32 {
        let a = Ipv4Addr::from(0x0a00_0000 + i);
        set.add(&a.to_string(), Some(Duration::from_secs(3600)), true, h.now)
            .unwrap();
    }
    let mut packets: Vec<Vec<u8>> = (0..200u32)
        .map(|i| syn_from(Ipv4Addr::from(0x0a00_0000 + i * 499), 22))
        .collect();
    let mut answer = vec![0u8; 2048];
    let now = h.now;
    let (blocked, allocations) = counting::counted(|| {
        let mut n = 0;
        for p in packets.iter_mut() {
            n += usize::from(h.fw.process(Side::Wan, p, &mut answer, now).fate == BLOCKED);
        }
        n
    });
    assert_eq!(blocked, 200);
    assert_eq!(allocations, 0);
}

#[test]
fn sets_count_in_the_memory_budget() {
    let many: Vec<String> = (0..40)
        .map(|i| format!("\"s{i}\": (kind: Address, max: 1000000)"))
        .collect();
    let text = format!(
        "(sets: {{ {} }}, outbound: (policy: Accept), inbound: (policy: Drop))",
        many.join(", ")
    );
    let e = Config::parse(&text, "big.ron").unwrap_err();
    assert!(e.message.contains("sets 9.8 GiB"), "{e}");
    let few = text.replace("max: 1000000", "max: 100000");
    assert!(Config::parse(&few, "ok.ron").is_ok());
}
