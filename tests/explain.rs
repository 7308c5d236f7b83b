//! `tunfw explain` through the library: the described packet is built,
//! decided by a Firewall made from the config, and the deciding rule, the
//! state (and why, for INVALID), the destination the rules see after NAT
//! and each rule's failed match come back.

use tunfw::chain::Decider;
use tunfw::config::Config;
use tunfw::conntrack::CtState;
use tunfw::explain::{explain, Description, Explanation, StateWish};
use tunfw::rules::RuleField;
use tunfw::stats::{DropReason, InvalidReason};
use tunfw::verdict::Fate;

const CONFIG: &str = r#"(
    router: (lan: "192.168.1.1", wan: "198.51.100.7"),
    nat: (
        source: [(out: Wan, src: "192.168.1.0/24", to: Masquerade)],
        destination: [
            (from: Wan, proto: Tcp, dst: "198.51.100.7", dport: "8080", to: "192.168.1.20", to_port: 80),
        ],
    ),
    outbound: (policy: Drop, rules: [
        (name: "dns-out", proto: Udp, dport: "53", action: Accept),
        (name: "web-out", proto: Tcp, dport: "80,443", state: [New, Established], action: Accept),
        (name: "ping-out", proto: Icmp, icmp_type: 8, action: Accept),
        (name: "no-telnet", proto: Tcp, dport: "23", action: Reject),
    ]),
    inbound: (policy: Drop, rules: [
        (name: "replies", state: [Established, Related], action: Accept),
        (name: "web", proto: Tcp, dst: "192.168.1.20", dport: "80", state: [New], action: Accept),
    ]),
)"#;

fn run(packet: &str, state: Option<&str>) -> Result<Explanation, String> {
    let cfg = Config::parse(CONFIG, "test.ron").expect("config");
    let words: Vec<&str> = packet.split_whitespace().collect();
    let d = Description::parse(&words)?;
    let wish = state
        .map(StateWish::parse)
        .transpose()?
        .unwrap_or(StateWish::Table);
    Ok(explain(&cfg, &d, wish))
}

struct Case {
    packet: &'static str,
    state: Option<&'static str>,
    /// The deciding rule's index, or None for the policy.
    decider: Option<usize>,
    ct: CtState,
    fate: Fate,
    invalid: Option<InvalidReason>,
    /// Destination address the rules saw, when NAT changed it.
    seen_dst: Option<&'static str>,
    /// The failed match of rule #1, when it was evaluated and failed.
    first_miss: Option<RuleField>,
}

#[test]
fn explain_cases() {
    let cases = [
        Case {
            packet: "tcp 192.168.1.5:5555 -> 192.0.2.1:80 syn from lan",
            state: None,
            decider: Some(1),
            ct: CtState::New,
            fate: Fate::Forward,
            invalid: None,
            seen_dst: None,
            first_miss: Some(RuleField::Proto),
        },
        Case {
            packet: "udp 192.168.1.5:5555 -> 192.0.2.1:123 from lan",
            state: None,
            decider: None,
            ct: CtState::New,
            fate: Fate::Drop(DropReason::PolicyOutbound),
            invalid: None,
            seen_dst: None,
            first_miss: Some(RuleField::Dport),
        },
        Case {
            packet: "tcp 192.168.1.5:5555 -> 192.0.2.1:23 syn from lan",
            state: None,
            decider: Some(3),
            ct: CtState::New,
            fate: Fate::Drop(DropReason::RuleReject),
            invalid: None,
            seen_dst: None,
            first_miss: Some(RuleField::Proto),
        },
        Case {
            packet: "tcp 192.168.1.5:5555 -> 192.0.2.1:80 syn,fin from lan",
            state: None,
            decider: None,
            ct: CtState::Invalid,
            fate: Fate::Drop(DropReason::PolicyOutbound),
            invalid: Some(InvalidReason::TcpBadFlags),
            seen_dst: None,
            first_miss: Some(RuleField::Proto),
        },
        Case {
            packet: "icmp 192.0.2.1 -> 198.51.100.7 echo-reply from wan",
            state: None,
            decider: None,
            ct: CtState::Invalid,
            fate: Fate::Drop(DropReason::PolicyInbound),
            invalid: Some(InvalidReason::IcmpUnsolicitedReply),
            seen_dst: None,
            first_miss: Some(RuleField::State),
        },
        // Port forwarding: the rules see the LAN server's port 80.
        Case {
            packet: "tcp 203.0.113.9:40000 -> 198.51.100.7:8080 syn from wan",
            state: None,
            decider: Some(1),
            ct: CtState::New,
            fate: Fate::Forward,
            invalid: None,
            seen_dst: Some("192.168.1.20"),
            first_miss: Some(RuleField::State),
        },
        // The answer to a flow, primed for real (not masqueraded).
        Case {
            packet: "tcp 192.0.2.1:80 -> 10.9.0.5:5555 ack from wan",
            state: Some("reply"),
            decider: Some(0),
            ct: CtState::Established,
            fate: Fate::Forward,
            invalid: None,
            seen_dst: None,
            first_miss: None,
        },
        Case {
            packet: "tcp 192.168.1.5:5555 -> 192.0.2.1:443 ack from lan",
            state: Some("established"),
            decider: Some(1),
            ct: CtState::Established,
            fate: Fate::Forward,
            invalid: None,
            seen_dst: None,
            first_miss: Some(RuleField::Proto),
        },
        Case {
            packet: "icmp 192.0.2.1 -> 192.168.1.5 type 3 code 3 from wan",
            state: Some("related"),
            decider: Some(0),
            ct: CtState::Related,
            fate: Fate::Forward,
            invalid: None,
            seen_dst: None,
            first_miss: None,
        },
    ];
    for c in cases {
        let e = run(c.packet, c.state).unwrap_or_else(|err| panic!("{}: {err}", c.packet));
        let r = &e.record;
        let want = match c.decider {
            Some(i) => Decider::Rule(i),
            None => Decider::Policy,
        };
        assert_eq!(r.decider, Some(want), "{}:\n{}", c.packet, e.render());
        assert_eq!(r.state, Some(c.ct), "{}:\n{}", c.packet, e.render());
        assert_eq!(r.verdict.fate, c.fate, "{}:\n{}", c.packet, e.render());
        assert_eq!(r.invalid, c.invalid, "{}", c.packet);
        assert_eq!(
            r.seen.map(|t| t.dst.to_string()).as_deref(),
            c.seen_dst,
            "{}",
            c.packet
        );
        let first_miss =
            (r.evaluated > 1 || r.decider == Some(Decider::Policy)).then(|| r.misses[0]);
        assert_eq!(first_miss, c.first_miss, "{}:\n{}", c.packet, e.render());
        assert_eq!(e.exit_code(), u8::from(!matches!(c.fate, Fate::Forward)));
        let text = e.render();
        assert!(text.contains("verdict:"), "{text}");
    }
}

#[test]
fn the_text_names_the_rule_the_state_and_the_nat() {
    let e = run(
        "tcp 203.0.113.9:40000 -> 198.51.100.7:8080 syn from wan",
        None,
    )
    .unwrap();
    let text = e.render();
    assert!(
        text.contains("nat:       the rules see tcp 203.0.113.9:40000 -> 192.168.1.20:80"),
        "{text}"
    );
    assert!(
        text.contains(
            "#1 replies: --state ESTABLISHED,RELATED -j ACCEPT: no (state does not match)"
        ),
        "{text}"
    );
    assert!(text.contains("decision:  rule web (#2)"), "{text}");
    let e = run(
        "tcp 192.168.1.5:5555 -> 192.0.2.1:80 syn,fin from lan",
        None,
    )
    .unwrap();
    assert!(
        e.render().contains("conntrack: INVALID (tcp_bad_flags)"),
        "{}",
        e.render()
    );
    let e = run("udp 192.168.1.5:5555 -> 192.0.2.1:123 from lan", None).unwrap();
    assert!(
        e.render().contains("decision:  policy Drop"),
        "{}",
        e.render()
    );
}

#[test]
fn a_reply_to_a_masqueraded_flow_is_told_where_answers_go() {
    let e = run(
        "tcp 192.0.2.1:80 -> 192.168.1.5:5555 ack from wan",
        Some("reply"),
    )
    .unwrap();
    let text = e.render();
    assert!(
        text.contains("its answers travel as tcp 192.0.2.1:80 -> 198.51.100.7:5555"),
        "{text}"
    );
}

#[test]
fn bad_descriptions_are_errors_naming_the_fault() {
    for (packet, state, needle) in [
        ("tcp 192.168.1.5:5555 -> 192.0.2.1:80 syn", None, "from lan"),
        (
            "tcp 192.168.1.5 -> 192.0.2.1:http from lan",
            None,
            "not a port",
        ),
        (
            "tcp 192.168.1.5:1 -> 192.0.2.1:80 from lan",
            Some("sideways"),
            "bad --state",
        ),
    ] {
        let err = run(packet, state)
            .err()
            .unwrap_or_else(|| panic!("{packet} parsed"));
        assert!(err.contains(needle), "{packet}: {err}");
    }
}

/// The traced evaluation agrees with the packet path's: a rule's
/// `mismatch` is `None` exactly when it `matches`.
#[test]
fn mismatch_agrees_with_matches() {
    use tunfw::explain::build::{packet, Extra};
    let cfg = Config::parse(CONFIG, "test.ron").unwrap();
    let rules: Vec<_> = cfg
        .outbound
        .rules
        .iter()
        .chain(&cfg.inbound.rules)
        .collect();
    let x = Extra {
        flags: 2,
        seq: 1,
        ack: 0,
        ttl: 64,
    };
    let mut checked = 0;
    for text in [
        "tcp 192.168.1.5:5555 -> 192.0.2.1:80 from lan",
        "tcp 192.168.1.5:5555 -> 192.168.1.20:80 from lan",
        "tcp 192.168.1.5:5555 -> 192.0.2.1:23 from lan",
        "udp 192.168.1.5:5555 -> 192.0.2.1:53 from lan",
        "icmp 192.168.1.5 -> 192.0.2.1 echo-request from lan",
        "icmp 192.168.1.5 -> 192.0.2.1 echo-reply from lan",
        "icmpv6 fd00::5 -> fd00:1::1 echo-request from lan",
        "47 192.168.1.5 -> 192.0.2.1 from lan",
    ] {
        let d = Description::parse(&text.split_whitespace().collect::<Vec<_>>()).unwrap();
        let bytes = packet(&d.tuple(), &x);
        let pkt = tunfw::packet::parse(&bytes).unwrap();
        for rule in &rules {
            for state in CtState::ALL {
                let sets = tunfw::sets::Sets::default();
                let ctx = tunfw::rules::MatchContext {
                    sets: &sets,
                    now: tunfw::time::Instant::ZERO,
                };
                assert_eq!(
                    rule.matches(&pkt, state, &ctx),
                    rule.mismatch(&pkt, state, &ctx).is_none(),
                    "{text} {state:?} {}",
                    rule.describe()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 6 * 5);
}

/// `ctl trace`'s packet side: with a tracer added, process_in records the
/// packets its filter matches (and only those), with the deciding rule.
#[test]
fn the_live_tracer_records_matching_packets() {
    use tunfw::control::Request;
    use tunfw::explain::build::{packet, Extra};
    use tunfw::filter::trace::TraceOutput;
    use tunfw::filter::Firewall;
    use tunfw::side::Side;
    use tunfw::time::Instant;
    use tunfw::wire::vnet;
    let cfg = Config::parse(CONFIG, "test.ron").unwrap();
    let mut fw = Firewall::new(&cfg);
    let Ok(Request::Trace(filter)) = Request::parse("trace proto=tcp port=80 state=NEW") else {
        panic!("trace request")
    };
    assert!(Request::parse("trace state=SYN_SENT").is_err());
    let slot = fw.tracer_mut().add(filter).unwrap();
    let x = Extra {
        flags: 2,
        seq: 1,
        ack: 0,
        ttl: 64,
    };
    let mut answer = [0u8; 1500];
    for text in [
        "tcp 192.168.1.5:5555 -> 192.0.2.1:80 from lan",
        "tcp 192.168.1.5:5556 -> 192.0.2.1:22 from lan",
        "udp 192.168.1.5:5555 -> 192.0.2.1:80 from lan",
    ] {
        let d = Description::parse(&text.split_whitespace().collect::<Vec<_>>()).unwrap();
        let mut bytes = packet(&d.tuple(), &x);
        let len = bytes.len();
        fw.process_in(
            Side::Lan,
            &vnet::PLAIN,
            &mut bytes,
            len,
            &mut answer,
            Instant::from_secs(1),
        );
    }
    let mut lines = Vec::new();
    let mut records = Vec::new();
    fw.tracer_mut().drain(|o| {
        if let TraceOutput::Record(s, r) = o {
            assert_eq!(s, slot);
            records.push(*r);
        }
    });
    for r in &records {
        lines.push(r.json_line(fw.chain(r.side)));
    }
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("rule web-out (#2)"), "{}", lines[0]);
    assert!(lines[0].contains("NEW"), "{}", lines[0]);
    fw.tracer_mut().remove(slot);
    assert!(!fw.tracer_mut().active());
}
