//! Operations through the library: reload that keeps state, counters carried
//! by rule name, recheck, log decisions with their rate limit, events, flow
//! filters, the pcap format, and the iptables import.

mod common;

use common::*;
use tunfw::config::Config;
use tunfw::conntrack::events::EventKind;
use tunfw::conntrack::CtState;
use tunfw::control::{FlowFilter, Request};
use tunfw::side::Side;

fn cfg(text: &str) -> Config {
    Config::parse(text, "test.ron").expect("config parses")
}

const V1: &str = r#"(
    outbound: (policy: Drop, rules: [
        (name: "web", proto: Tcp, dport: 80, state: [New, Established], action: Accept),
        (name: "dns", proto: Udp, dport: 53, state: [New, Established], action: Accept),
        (proto: Icmp, action: Accept),
    ]),
    inbound: (policy: Drop, log: true, rules: [
        (name: "back", state: [Established, Related], action: Accept),
    ]),
)"#;

fn established_web(h: &mut Harness) {
    let syn = Seg {
        sport: 4000,
        dport: 80,
        seq: 1,
        flags: SYN,
        window: 1000,
        ..Seg::default()
    };
    let synack = Seg {
        sport: 80,
        dport: 4000,
        seq: 9,
        ack: 2,
        flags: SYN | ACK,
        window: 1000,
        ..Seg::default()
    };
    let ack = Seg {
        sport: 4000,
        dport: 80,
        seq: 2,
        ack: 10,
        flags: ACK,
        window: 1000,
        ..Seg::default()
    };
    assert!(h.out(tcp(CLIENT, SERVER, &syn)).forwards());
    assert!(h.inb(tcp(SERVER, CLIENT, &synack)).forwards());
    assert!(h.out(tcp(CLIENT, SERVER, &ack)).forwards());
}

#[test]
fn reload_keeps_flows_and_carries_counters_by_name() {
    let mut h = Harness::with_config(V1);
    established_web(&mut h);
    h.out(udp(CLIENT, SERVER, 5000, 53, b"q"));
    let web_before = h.fw.chain(Side::Lan).counters[0];
    assert_eq!(web_before.packets, 2);
    // The new config reorders rules, renames one and adds one.
    let v2 = V1
        .replace("(name: \"dns\"", "(name: \"dns-renamed\"")
        .replace(
        "(proto: Icmp, action: Accept),",
        "(proto: Icmp, action: Accept),\n(name: \"new\", proto: Udp, dport: 123, action: Accept),",
    );
    let summary = h.fw.reload(&cfg(&v2), h.now);
    assert_eq!(summary.flows_kept, 2);
    assert_eq!(summary.flows_removed, 0);
    assert_eq!(
        summary.counters_carried, 2,
        "web and back keep their counters"
    );
    let out = h.fw.chain(Side::Lan);
    assert_eq!(out.counters[0], web_before);
    assert_eq!(
        out.counters[1].packets, 0,
        "a renamed rule starts from zero"
    );
    // The established flow keeps working after the swap.
    let data = Seg {
        sport: 80,
        dport: 4000,
        seq: 10,
        ack: 2,
        flags: ACK | PSH,
        window: 1000,
        payload: b"hello".to_vec(),
        ..Seg::default()
    };
    assert!(forwarded(
        &h.inb(tcp(SERVER, CLIENT, &data)),
        CtState::Established
    ));
}

#[test]
fn reload_with_recheck_drops_flows_the_new_rules_refuse() {
    let mut h = Harness::with_config(V1);
    established_web(&mut h);
    h.out(udp(CLIENT, SERVER, 5000, 53, b"q"));
    h.out(echo(CLIENT, SERVER, 8, 1, 1));
    // Web is no longer allowed; DNS and ICMP are.
    let v2 = V1
        .replace("dport: 80,", "dport: 8080,")
        .replacen("(", "(on_reload: Recheck,", 1);
    let summary = h.fw.reload(&cfg(&v2), h.now);
    assert_eq!((summary.flows_removed, summary.flows_kept), (1, 2));
    let data = Seg {
        sport: 80,
        dport: 4000,
        seq: 10,
        ack: 2,
        flags: ACK,
        window: 1000,
        ..Seg::default()
    };
    assert!(
        !h.inb(tcp(SERVER, CLIENT, &data)).forwards(),
        "the web flow is gone"
    );
    assert!(
        h.inb(udp(SERVER, CLIENT, 53, 5000, b"a")).forwards(),
        "the DNS flow survived"
    );

    // Keep (the default) keeps it.
    let mut h = Harness::with_config(V1);
    established_web(&mut h);
    let summary =
        h.fw.reload(&cfg(&V1.replace("dport: 80,", "dport: 8080,")), h.now);
    assert_eq!(summary.flows_removed, 0);
}

#[test]
fn log_flags_and_rate_limit() {
    let limited = V1.replacen("(", "(logging: (per_second: 1, burst: 2),", 1);
    let mut h = Harness::with_config(&limited);
    // The inbound policy logs: the first two within the burst, then one per second.
    let mut logged = 0;
    for i in 0..10u16 {
        let v = h.inb(udp(SERVER, CLIENT, 53, 6000 + i, b"x"));
        assert!(!v.forwards());
        logged += usize::from(v.logged);
    }
    assert_eq!(logged, 2);
    h.advance_secs(1);
    assert!(h.inb(udp(SERVER, CLIENT, 53, 7000, b"x")).logged);
    // Rules without log, and accepted packets of non-logging rules, are not logged.
    assert!(!h.out(udp(CLIENT, SERVER, 5000, 53, b"q")).logged);
    // INVALID drops are logged (logging.invalid, default on), even where the
    // deciding policy does not log.
    h.advance_secs(10);
    let xmas = tcp(
        CLIENT,
        SERVER,
        &Seg {
            sport: 1,
            dport: 80,
            flags: FIN | SYN | RST | PSH | ACK | URG,
            window: 1,
            ..Seg::default()
        },
    );
    let v = h.out(xmas.clone());
    assert_eq!((v.state, v.forwards()), (Some(CtState::Invalid), false));
    assert!(v.logged);
    let line = tunfw::report::log_line(
        &h.fw,
        tunfw::side::Side::Lan,
        &tunfw::wire::vnet::PLAIN,
        &xmas,
        &v,
    );
    assert!(line.contains("drop reason=policy_outbound rule=policy dir=outbound state=INVALID invalid=tcp_bad_flags tcp 10.0.1.2:1 -> 10.0.2.2:80"), "{line}");
    // Malformed packets are logged with their reason too.
    h.advance_secs(10);
    let mut bad = udp(CLIENT, SERVER, 1, 2, b"x");
    bad[10] ^= 1;
    let v = h.out(bad.clone());
    assert!(v.logged);
    let line = tunfw::report::log_line(
        &h.fw,
        tunfw::side::Side::Lan,
        &tunfw::wire::vnet::PLAIN,
        &bad,
        &v,
    );
    assert!(
        line.contains("drop reason=malformed") && line.contains("invalid=ip_bad_checksum"),
        "{line}"
    );
    // An INVALID packet a rule accepts (no state match, as in iptables) is not logged.
    let v = h.out(echo(CLIENT, SERVER, 0, 99, 1));
    assert_eq!(
        (v.state, v.forwards(), v.logged),
        (Some(CtState::Invalid), true, false)
    );
}

#[test]
fn events_report_new_update_destroy() {
    let mut h = Harness::with_config(V1);
    h.fw.conntrack_mut().events.enable(16);
    established_web(&mut h);
    h.advance_secs(432_001);
    h.fw.tick(h.now);
    let mut kinds = Vec::new();
    h.fw.conntrack_mut()
        .events
        .drain(|e| kinds.push((e.kind, e.tcp_state.map(|s| s.as_str()))));
    assert_eq!(
        kinds,
        vec![
            (EventKind::New, Some("SYN_SENT")),
            (EventKind::Update, Some("SYN_RECV")),
            (EventKind::Update, Some("ESTABLISHED")),
            (EventKind::Destroy, Some("ESTABLISHED")),
        ]
    );
    // A full ring overwrites the oldest and counts them.
    h.fw.conntrack_mut().events.disable();
    h.fw.conntrack_mut().events.enable(2);
    for p in 0..5u16 {
        h.out(udp(CLIENT, SERVER, 100 + p, 53, b"q"));
    }
    let mut n = 0;
    h.fw.conntrack_mut().events.drain(|_| n += 1);
    assert_eq!(n, 2);
    assert_eq!(h.fw.conntrack().events.lost, 3);
}

#[test]
fn control_requests_and_flow_filters() {
    assert_eq!(Request::parse("stats"), Ok(Request::Stats));
    assert_eq!(Request::parse("flush"), Ok(Request::Flush));
    assert!(
        Request::parse("kill").is_err(),
        "kill without a filter is refused"
    );
    assert!(Request::parse("flows colour=red").is_err());
    assert!(Request::parse("stats now").is_err());
    assert!(Request::parse("dance").is_err());
    let Ok(Request::Kill(f)) = Request::parse("kill proto=tcp port=80 state=established") else {
        panic!("kill parses")
    };
    let mut h = Harness::with_config(V1);
    established_web(&mut h);
    h.out(udp(CLIENT, SERVER, 5000, 53, b"q"));
    let flows: Vec<_> = h.fw.conntrack().flows(h.now).copied().collect();
    assert_eq!(flows.iter().filter(|fl| f.matches(fl)).count(), 1);
    let by_addr = FlowFilter::parse(&["addr=10.0.2.2"]).unwrap();
    assert_eq!(flows.iter().filter(|fl| by_addr.matches(fl)).count(), 2);
    let unreplied = FlowFilter::parse(&["state=UNREPLIED"]).unwrap();
    assert_eq!(flows.iter().filter(|fl| unreplied.matches(fl)).count(), 1);
}

#[test]
fn pcap_file_has_the_libpcap_format() {
    let path = std::env::temp_dir().join(format!("tunfw-test-{}.pcap", std::process::id()));
    let mut w = tunfw::pcap::PcapWriter::create(&path).unwrap();
    let p = udp(CLIENT, SERVER, 1, 2, b"captured");
    w.write(&p).unwrap();
    w.flush().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(&bytes[..4], &0xa1b2c3d4u32.to_le_bytes());
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        101,
        "LINKTYPE_RAW"
    );
    assert_eq!(
        u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize,
        p.len()
    );
    assert_eq!(&bytes[40..], &p[..]);
}

#[test]
fn importing_the_seed_iptables_gives_the_default_rules() {
    let seed = include_str!("../netns-tests/seed.iptables");
    let ron = tunfw::import::translate(seed, "seed.iptables").expect("imports");
    let imported = cfg(&ron);
    let default = Config::embedded_default().unwrap();
    // The seed is IPv4 iptables: the default's ICMPv6 twins are not in it.
    let strip = |rules: &[tunfw::rules::Rule]| -> Vec<tunfw::rules::Rule> {
        let mut out: Vec<_> = rules
            .iter()
            .filter(|r| r.proto != Some(tunfw::rules::Proto::Icmpv6))
            .cloned()
            .map(|mut r| {
                r.name = None;
                r
            })
            .collect();
        out.dedup();
        out
    };
    assert_eq!(
        strip(&imported.outbound.rules),
        strip(&default.outbound.rules)
    );
    // The seed repeats the inbound ICMP rule; the copy is adjacent and dropped by dedup.
    assert_eq!(
        imported.inbound.rules.len(),
        strip(&default.inbound.rules).len() + 1
    );
    assert_eq!(
        strip(&imported.inbound.rules),
        strip(&default.inbound.rules)
    );
    assert_eq!(imported.outbound.policy, default.outbound.policy);
    assert_eq!(imported.inbound.policy, default.inbound.policy);
    let ftp = imported.helpers.ftp.expect("helper imported");
    assert!(ftp.ports.contains(21) && !ftp.ports.contains(20));
}

#[test]
fn import_errors_name_the_line() {
    for (text, line, what) in [
        (
            "iptables -P INPUT DROP\niptables -A INPUT -i eth0 -j ACCEPT\n",
            2,
            "interfaces",
        ),
        ("iptables -A INPUT ! -s 10.0.0.1 -j ACCEPT\n", 1, "negation"),
        ("\n\niptables -A INPUT -j LOG\n", 3, "LOG"),
        ("iptables -t nat -A POSTROUTING -j MASQUERADE\n", 1, "nat"),
        (
            "iptables -A INPUT -p tcp -m recent --update -j DROP\n",
            1,
            "recent",
        ),
        ("iptables -A INPUT -p tcp\n", 1, "-j"),
        // No chain: an error, not a panic.
        ("iptables -A\n", 1, "chain"),
        ("*filter\n-I\n", 2, "chain"),
    ] {
        let e = tunfw::import::translate(text, "x").expect_err(text);
        assert_eq!(e.line, line, "{text}");
        assert!(e.message.contains(what), "{text}: {}", e.message);
    }
    // iptables-save form, FORWARD into both directions, multiport, icmp types.
    let save = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A FORWARD -p tcp -m multiport --dports 80,443 -j ACCEPT\n\
        -A INPUT -p icmp --icmp-type echo-request -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n";
    let c = cfg(&tunfw::import::translate(save, "x").unwrap());
    assert_eq!(c.outbound.rules.len(), 1);
    assert_eq!(c.inbound.rules.len(), 2);
    assert_eq!(c.inbound.rules[1].icmp_type, Some(8));
    assert_eq!(format!("{:?}", c.outbound.policy), "Accept");
    assert_eq!(format!("{:?}", c.inbound.policy), "Drop");
}
