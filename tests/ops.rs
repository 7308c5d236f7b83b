//! Operations through the library: reload that keeps state, counters carried
//! by rule name, recheck, log decisions with their rate limit, events, flow
//! filters, the pcap format, and the iptables import.

mod common;

use core::net::IpAddr;

use common::*;
use tunfw::config::Config;
use tunfw::conntrack::events::EventKind;
use tunfw::conntrack::CtState;
use tunfw::control::{FlowFilter, Request};
use tunfw::import::Input;
use tunfw::matchers::Family;
use tunfw::rules::{Proto, Rule, StateSet};
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
    assert_eq!(
        flows
            .iter()
            .filter(|fl| f.matches(fl, &fl.tuple(tunfw::conntrack::tuple::Dir::Reply)))
            .count(),
        1
    );
    let by_addr = FlowFilter::parse(&["addr=10.0.2.2"]).unwrap();
    assert_eq!(
        flows
            .iter()
            .filter(|fl| by_addr.matches(fl, &fl.tuple(tunfw::conntrack::tuple::Dir::Reply)))
            .count(),
        2
    );
    let unreplied = FlowFilter::parse(&["state=UNREPLIED"]).unwrap();
    assert_eq!(
        flows
            .iter()
            .filter(|fl| unreplied.matches(fl, &fl.tuple(tunfw::conntrack::tuple::Dir::Reply)))
            .count(),
        1
    );
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

const SEED4: &str = include_str!("../netns-tests/seed.iptables");
const SEED6: &str = include_str!("../netns-tests/seed.ip6tables");

fn input<'a>(text: &'a str, name: &'a str, family: Family) -> Input<'a> {
    Input { text, name, family }
}

/// The rules of `rules` that apply to `family`, in order, without names.
fn for_family(rules: &[Rule], family: Family) -> Vec<Rule> {
    rules
        .iter()
        .filter(|r| r.family().unwrap().is_none_or(|f| f == family))
        .cloned()
        .map(|mut r| {
            r.name = None;
            r
        })
        .collect()
}

#[test]
fn importing_the_seed_iptables_gives_the_default_rules() {
    let ron = tunfw::import::translate_inputs(&[
        input(SEED4, "seed.iptables", Family::V4),
        input(SEED6, "seed.ip6tables", Family::V6),
    ])
    .expect("imports");
    let imported = cfg(&ron);
    let default = Config::embedded_default().unwrap();
    for family in [Family::V4, Family::V6] {
        assert_eq!(
            for_family(&imported.outbound.rules, family),
            for_family(&default.outbound.rules, family),
            "outbound, {family:?}"
        );
        // The seed repeats the inbound ICMP rule (and seed.ip6tables its
        // ICMPv6 twin): the default writes it once. The copy is adjacent
        // and could never match; it is the only difference.
        let mut inbound = for_family(&imported.inbound.rules, family);
        let before = inbound.len();
        inbound.dedup();
        assert_eq!(before, inbound.len() + 1, "inbound, {family:?}");
        assert_eq!(
            inbound,
            for_family(&default.inbound.rules, family),
            "inbound, {family:?}"
        );
    }
    // Merged, the rules both families share are written once: the whole
    // lists are the default's.
    let unnamed = |rules: &[Rule]| -> Vec<Rule> {
        let mut out: Vec<Rule> = rules
            .iter()
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
        unnamed(&imported.outbound.rules),
        unnamed(&default.outbound.rules)
    );
    assert_eq!(
        unnamed(&imported.inbound.rules),
        unnamed(&default.inbound.rules)
    );
    assert_eq!(imported.outbound.policy, default.outbound.policy);
    assert_eq!(imported.inbound.policy, default.inbound.policy);
    let ftp = imported.helpers.ftp.expect("helper imported");
    assert!(ftp.ports.contains(21) && !ftp.ports.contains(20));

    // One file of commands may hold both: its ip6tables lines are IPv6.
    let both = format!("{SEED4}{SEED6}");
    let one = cfg(&tunfw::import::translate(&both, "both").unwrap());
    assert_eq!(one.outbound.rules, imported.outbound.rules);
    assert_eq!(one.inbound.rules, imported.inbound.rules);

    // The iptables seed alone: every rule is IPv4's, IPv6 meets the policy.
    let v4 = cfg(&tunfw::import::translate(SEED4, "seed.iptables").unwrap());
    for rules in [&v4.outbound.rules, &v4.inbound.rules] {
        assert!(for_family(rules, Family::V6).is_empty(), "{rules:?}");
        assert_eq!(for_family(rules, Family::V4).len(), rules.len());
    }
}

/// Each family meets, in order, exactly the rules its own lines give:
/// checked against each family imported alone, for inputs whose rules the
/// merge pairs in various ways.
#[test]
fn merged_import_keeps_each_familys_order() {
    let cases: &[(&str, &str, usize)] = &[
        // (iptables lines, ip6tables lines, rules written once)
        (
            "-p tcp -j ACCEPT\n-p udp -j DROP",
            "-p tcp -j ACCEPT\n-p udp -j DROP",
            2,
        ),
        // The same rules, another order: one pair only.
        (
            "-p tcp -j ACCEPT\n-p udp -j DROP",
            "-p udp -j DROP\n-p tcp -j ACCEPT",
            1,
        ),
        // An extra IPv6 rule first: the others still pair up.
        (
            "-p tcp --dport 22 -j ACCEPT\n-p udp -j DROP",
            "-p ipv6-icmp -j ACCEPT\n-p tcp --dport 22 -j ACCEPT\n-p udp -j DROP",
            2,
        ),
        // ICMP and ICMPv6 never pair; addresses never do.
        (
            "-p icmp -j ACCEPT\n-s 10.0.0.0/8 -j DROP\n-j ACCEPT",
            "-p icmpv6 -j ACCEPT\n-s fd00::/8 -j DROP\n-j ACCEPT",
            1,
        ),
        // Same rules, other actions: not identical.
        ("-p tcp -j ACCEPT", "-p tcp -j DROP", 0),
        // Port forms and state orders as iptables-save prints them pair with
        // the commands' forms.
        (
            "-p tcp --sport 1024: -m state --state ESTABLISHED,RELATED -j ACCEPT",
            "-p tcp -m tcp --sport 1024:65535 -m state --state RELATED,ESTABLISHED -j ACCEPT",
            1,
        ),
        ("", "-p tcp -j ACCEPT", 0),
    ];
    let lines = |program: &str, text: &str| -> String {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| format!("{program} -A INPUT {l}\n"))
            .collect()
    };
    let strip = |rules: Vec<Rule>| -> Vec<Rule> {
        rules
            .into_iter()
            .map(|mut r| {
                r.family = None;
                r
            })
            .collect()
    };
    for &(four, six, shared) in cases {
        let (l4, l6) = (lines("iptables", four), lines("ip6tables", six));
        let merged = cfg(&tunfw::import::translate(&format!("{l4}{l6}"), "x").unwrap());
        let rules = &merged.inbound.rules;
        for (family, alone) in [(Family::V4, &l4), (Family::V6, &l6)] {
            let own = cfg(&tunfw::import::translate(alone, "x").unwrap());
            assert_eq!(
                strip(for_family(rules, family)),
                strip(for_family(&own.inbound.rules, family)),
                "{family:?}: {four:?} / {six:?}"
            );
        }
        let count = |t: &str| t.lines().filter(|l| !l.is_empty()).count();
        assert_eq!(
            rules.len(),
            count(four) + count(six) - shared,
            "{four:?} / {six:?}: {rules:?}"
        );
        let once = rules
            .iter()
            .filter(|r| r.family().unwrap().is_none())
            .count();
        assert_eq!(once, shared, "{four:?} / {six:?}: {rules:?}");
    }
}

/// Chains too long for the longest-common-subsequence table pair rules at
/// the same position only, and still keep each family's order.
#[test]
fn long_chains_pair_by_position() {
    let n = 4100;
    assert!((n + 1) * (n + 1) > tunfw::import::LCS_MAX_CELLS);
    let lines = |program: &str, extra: &str| -> String {
        let mut out = String::from(extra);
        for p in 1..=n {
            out += &format!("{program} -A INPUT -p tcp --dport {p} -j ACCEPT\n");
        }
        out
    };
    let (l4, l6) = (lines("iptables", ""), lines("ip6tables", ""));
    let c = cfg(&tunfw::import::translate(&format!("{l4}{l6}"), "x").unwrap());
    assert_eq!(
        c.inbound.rules.len(),
        n,
        "every rule paired at its position"
    );
    assert!(c.inbound.rules.iter().all(|r| r.family.is_none()));
    // One extra IPv6 rule first: nothing is at the same position any more.
    let l6 = lines("ip6tables", "ip6tables -A INPUT -p udp -j DROP\n");
    let c = cfg(&tunfw::import::translate(&format!("{l4}{l6}"), "x").unwrap());
    assert_eq!(c.inbound.rules.len(), 2 * n + 1);
    for (family, first) in [(Family::V4, Proto::Tcp), (Family::V6, Proto::Udp)] {
        let own = for_family(&c.inbound.rules, family);
        assert_eq!(own[0].proto, Some(first), "{family:?}");
        let ports: Vec<_> = own
            .iter()
            .filter_map(|r| match r.dport.as_ref() {
                Some(tunfw::matchers::PortMatch::Ports(d)) => Some(d.0[0].0),
                _ => None,
            })
            .collect();
        assert_eq!(ports, (1..=n as u16).collect::<Vec<_>>(), "{family:?}");
    }
}

/// Policies per family through the packet path: tunfw's one policy per
/// chain is IPv4's, and a last rule gives IPv6 its own.
#[test]
fn differing_policies_are_emulated_for_ipv6() {
    let text = "iptables -P INPUT DROP\n\
                ip6tables -P INPUT ACCEPT\n\
                iptables -P OUTPUT ACCEPT\n\
                ip6tables -P OUTPUT ACCEPT\n\
                iptables -A INPUT -p udp --dport 53 -j ACCEPT\n\
                ip6tables -A INPUT -p udp --dport 53 -j DROP\n";
    let ron = tunfw::import::translate(text, "x").unwrap();
    let c = cfg(&ron);
    assert_eq!(format!("{:?}", c.inbound.policy), "Drop");
    let last = c.inbound.rules.last().unwrap();
    assert_eq!(
        (last.family, last.proto, last.action),
        (Some(Family::V6), None, tunfw::rules::Action::Accept)
    );
    assert_eq!(c.outbound.rules.len(), 0, "same policy: no extra rule");
    let mut h = Harness::with_config(&ron);
    let inb = |h: &mut Harness, src: IpAddr, dst: IpAddr, port| {
        h.inb(udp(src, dst, 4000, port, b"q")).forwards()
    };
    let (s4, c4): (IpAddr, IpAddr) = (SERVER.into(), CLIENT.into());
    let (s6, c6): (IpAddr, IpAddr) = (SERVER6.into(), CLIENT6.into());
    assert!(inb(&mut h, s4, c4, 53), "IPv4: the rule accepts");
    assert!(!inb(&mut h, s4, c4, 54), "IPv4: the policy drops");
    assert!(!inb(&mut h, s6, c6, 53), "IPv6: its rule drops");
    assert!(inb(&mut h, s6, c6, 54), "IPv6: its policy accepts");
}

/// `ip6tables-save` output as ip6tables 1.8.9 prints it (numbers for ICMPv6
/// types, `-p ipv6-icmp -m icmp6`, `1024:65535`, `RELATED,ESTABLISHED`).
#[test]
fn ip6tables_save_output_imports() {
    let save = "# Generated by ip6tables-save v1.8.9 (nf_tables)\n\
        *raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp\nCOMMIT\n\
        *filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A INPUT -p ipv6-icmp -m state --state RELATED,ESTABLISHED -j ACCEPT\n\
        -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT\n\
        -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT\n\
        -A INPUT -s 2001:db8::/32 -d fd00::1/128 -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW,UNTRACKED -j REJECT --reject-with tcp-reset\n\
        -A INPUT -p udp -m state --state UNTRACKED -j REJECT --reject-with icmp6-port-unreachable\n\
        -A INPUT -p icmp -j ACCEPT\n\
        -A OUTPUT -p tcp -m tcp --sport 1024:65535 --dport 1024:65535 -j ACCEPT\n\
        -A OUTPUT -p tcp -m multiport --dports 80,443,1000:2000 -j ACCEPT\n\
        COMMIT\n";
    let c = cfg(&tunfw::import::translate_inputs(&[input(save, "rules.v6", Family::V6)]).unwrap());
    assert_eq!(format!("{:?}", c.inbound.policy), "Drop");
    assert_eq!(format!("{:?}", c.outbound.policy), "Accept");
    assert!(c.helpers.ftp.expect("helper").ports.contains(21));
    let r = &c.inbound.rules;
    assert_eq!(r.len(), 6);
    assert_eq!(r[0].proto, Some(Proto::Icmpv6));
    assert_eq!(
        r[0].state,
        Some(StateSet::of(&[CtState::Established, CtState::Related]))
    );
    assert_eq!((r[1].icmp_type, r[1].icmp_code), (Some(128), None));
    assert_eq!((r[2].icmp_type, r[2].icmp_code), (Some(1), Some(4)));
    assert_eq!(r[3].family().unwrap(), Some(Family::V6));
    assert_eq!(r[3].family, None, "the addresses say it");
    assert_eq!(
        r[3].state,
        Some(StateSet::of(&[CtState::New, CtState::Untracked]))
    );
    assert_eq!(r[3].action, tunfw::rules::Action::Reject);
    assert_eq!(r[4].state, Some(StateSet::of(&[CtState::Untracked])));
    assert_eq!(r[4].family, Some(Family::V6));
    // ip6tables' -p icmp is protocol 1 over IPv6.
    assert_eq!(
        (r[5].proto, r[5].family),
        (Some(Proto::Number(1)), Some(Family::V6))
    );
    let o = &c.outbound.rules;
    assert_eq!(o[0].sport.as_ref().unwrap().to_string(), "1024:");
    assert_eq!(o[1].family, Some(Family::V6));
}

/// Every ICMPv6 type name ip6tables 1.8.9 knows (`ip6tables -p icmpv6 -h`),
/// with the type and code `ip6tables-save` printed for it.
#[test]
fn icmpv6_type_names_are_ip6tables() {
    let names: &[(&str, u8, Option<u8>)] = &[
        ("destination-unreachable", 1, None),
        ("no-route", 1, Some(0)),
        ("communication-prohibited", 1, Some(1)),
        ("beyond-scope", 1, Some(2)),
        ("address-unreachable", 1, Some(3)),
        ("port-unreachable", 1, Some(4)),
        ("failed-policy", 1, Some(5)),
        ("reject-route", 1, Some(6)),
        ("packet-too-big", 2, None),
        ("time-exceeded", 3, None),
        ("ttl-exceeded", 3, None),
        ("ttl-zero-during-transit", 3, Some(0)),
        ("ttl-zero-during-reassembly", 3, Some(1)),
        ("parameter-problem", 4, None),
        ("bad-header", 4, Some(0)),
        ("unknown-header-type", 4, Some(1)),
        ("unknown-option", 4, Some(2)),
        ("echo-request", 128, None),
        ("ping", 128, None),
        ("echo-reply", 129, None),
        ("pong", 129, None),
        ("router-solicitation", 133, None),
        ("router-advertisement", 134, None),
        ("neighbour-solicitation", 135, None),
        ("neighbor-solicitation", 135, None),
        ("neighbour-advertisement", 136, None),
        ("neighbor-advertisement", 136, None),
        ("redirect", 137, None),
        // The numeric forms.
        ("128", 128, None),
        ("1/4", 1, Some(4)),
        ("1/255", 1, Some(255)),
        ("255", 255, None),
    ];
    assert_eq!(tunfw::import::ICMPV6_NAMES.len(), 28);
    for &(name, t, code) in names {
        let line = format!("ip6tables -A INPUT -p icmpv6 --icmpv6-type {name} -j ACCEPT\n");
        let c =
            cfg(&tunfw::import::translate(&line, "x").unwrap_or_else(|e| panic!("{name}: {e:?}")));
        let r = &c.inbound.rules[0];
        assert_eq!(
            (r.proto, r.icmp_type, r.icmp_code),
            (Some(Proto::Icmpv6), Some(t), code),
            "{name}"
        );
    }
    for bad in [
        "mld-listener-query",
        "destination-unreachable/port-unreachable",
        "1/300",
        "256",
        "echo-request/0",
    ] {
        let line = format!("ip6tables -A INPUT -p icmpv6 --icmpv6-type {bad} -j ACCEPT\n");
        let e = tunfw::import::translate(&line, "x").expect_err(bad);
        assert!(e.message.contains("icmpv6 type"), "{bad}: {}", e.message);
    }
}

/// What iptables or ip6tables themselves refuse, and what tunfw cannot
/// express across the families: an error at the file and line.
#[test]
fn import_family_errors_name_the_file_and_line() {
    let (v4, v6) = ("rules.v4", "rules.v6");
    let cases: &[(&str, &str, &str, &str)] = &[
        // (iptables input, ip6tables input, what the message says, the file it names)
        (
            "iptables -A INPUT -s 2001:db8::1 -j ACCEPT",
            "",
            "an IPv6 address in an iptables rule",
            v4,
        ),
        (
            "",
            "-A INPUT -d 10.0.0.1 -j ACCEPT",
            "an IPv4 address in an ip6tables rule",
            v6,
        ),
        (
            "ip6tables -A INPUT -s fd00::/8,10.0.0.0/8 -j DROP",
            "",
            "an IPv4 address in an ip6tables rule",
            v4,
        ),
        (
            "iptables -A INPUT -p icmpv6 --icmpv6-type 128 -j ACCEPT",
            "",
            "not an option of iptables",
            v4,
        ),
        (
            "",
            "-A INPUT -p icmp --icmp-type 8 -j ACCEPT",
            "not an option of ip6tables",
            v6,
        ),
        (
            "iptables -A INPUT -p icmp -m icmp6 -j ACCEPT",
            "",
            "not iptables'",
            v4,
        ),
        (
            "",
            "-A INPUT -p ipv6-icmp -m icmp -j ACCEPT",
            "not ip6tables'",
            v6,
        ),
        (
            "",
            "-A INPUT -p tcp --icmpv6-type 1 -j ACCEPT",
            "--icmpv6-type needs -p icmpv6",
            v6,
        ),
        (
            "iptables -A INPUT -p udp -j REJECT --reject-with icmp6-port-unreachable",
            "",
            "(iptables)",
            v4,
        ),
        (
            "",
            "-A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable",
            "(ip6tables)",
            v6,
        ),
        (
            "",
            "-A INPUT -p udp -j REJECT --reject-with icmp6-adm-prohibited",
            "icmp6-port-unreachable otherwise",
            v6,
        ),
        (
            "",
            "-A INPUT -p udp -j REJECT --reject-with tcp-reset",
            "tcp-reset needs -p tcp",
            v6,
        ),
        (
            "",
            "-A INPUT -m state --state SNAT -j ACCEPT",
            "state \"SNAT\"",
            v6,
        ),
        (
            "iptables -t raw -A PREROUTING -p tcp --dport 21 -j CT --helper ftp",
            "-A INPUT -p tcp -j ACCEPT",
            "port 21 for IPv4 only",
            v4,
        ),
        (
            "iptables -t raw -A PREROUTING -p tcp --dport 21 -j CT --helper ftp",
            "-t raw -A PREROUTING -p tcp --dport 2121 -j CT --helper ftp",
            "port 21 for IPv4 only",
            v4,
        ),
        (
            "iptables -A INPUT -j ACCEPT",
            "-t raw -A PREROUTING -p tcp --dport 2121 -j CT --helper ftp",
            "port 2121 for IPv6 only",
            v6,
        ),
    ];
    for &(four, six, what, file) in cases {
        let mut inputs = vec![input(four, v4, Family::V4)];
        if !six.is_empty() {
            inputs.push(input(six, v6, Family::V6));
        }
        let e = tunfw::import::translate_inputs(&inputs).expect_err(what);
        assert!(
            e.message.contains(what),
            "{four:?} / {six:?}: {}",
            e.message
        );
        assert_eq!(
            (e.file.as_str(), e.line),
            (file, 1),
            "{four:?} / {six:?}: {e:?}"
        );
    }
    // Helper ports that cover the same set are the same attachment.
    let same = tunfw::import::translate_inputs(&[
        input(
            "iptables -t raw -A PREROUTING -p tcp --dport 21 -j CT --helper ftp\n",
            "a",
            Family::V4,
        ),
        input(
            "-t raw -A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp\n",
            "b",
            Family::V6,
        ),
    ]);
    assert!(cfg(&same.unwrap()).helpers.ftp.is_some());
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
        // Ports need the tcp or udp match (found by the import_iptables fuzz
        // target: the translation did not validate).
        (
            "iptables -P OUTPUT DROP\niptables -A OUTPUT -p icmp --sport 21 -j ACCEPT\n",
            2,
            "--sport needs -p tcp or -p udp",
        ),
        ("-A INPUT --dport 80 -j ACCEPT\n", 1, "--dport needs -p tcp"),
        (
            "-A INPUT -p all -m multiport --dports 80,443 -j DROP\n",
            1,
            "--dports needs -p tcp",
        ),
        (
            "ip6tables -A INPUT -p icmpv6 --dport 1 -j DROP\n",
            1,
            "--dport needs",
        ),
        // One of each field (found by the fuzz target: a duplicate field).
        (
            "-A INPUT -p tcp -m state -p tcp -m state --state NEW -j ACCEPT\n",
            1,
            "proto is given twice",
        ),
        (
            "-A INPUT -s 10.0.0.1 -s 10.0.0.2 -j DROP\n",
            1,
            "src is given twice",
        ),
        (
            "-A INPUT -p udp --dport 1 --destination-port 2 -j DROP\n",
            1,
            "dport is given twice",
        ),
        (
            "-A INPUT -m state --state NEW -m conntrack --ctstate NEW -j DROP\n",
            1,
            "state is given twice",
        ),
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
    // A protocol number of TCP or UDP loads the match, as its name does.
    let numbered = "-A INPUT -p 6 --dport 80 -j ACCEPT\n-A INPUT -p 17 --sport 53 -j ACCEPT\n";
    assert_eq!(
        cfg(&tunfw::import::translate(numbered, "x").unwrap())
            .inbound
            .rules
            .len(),
        2
    );
    assert_eq!(c.outbound.rules.len(), 1);
    assert_eq!(c.inbound.rules.len(), 2);
    assert_eq!(c.inbound.rules[1].icmp_type, Some(8));
    assert_eq!(format!("{:?}", c.outbound.policy), "Accept");
    assert_eq!(format!("{:?}", c.inbound.policy), "Drop");
}
