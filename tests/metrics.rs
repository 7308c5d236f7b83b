//! The Prometheus text of `--metrics` and `ctl metrics`: every counter of
//! `report::counters` is in it with its labels and value, the table census
//! counts flows per protocol and state (in chunks as in one walk), and the
//! HTTP server answers scrapes while stalled and slow clients are bounded.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use mio::{Events, Poll, Token};
use tunfw::metrics::{family_of, render, Census, HttpCounters, SUMS};
use tunfw::metrics_http::{MetricsServer, MAX_CLIENTS, REQUEST_DEADLINE};
use tunfw::report::{self, LoopCounters};
use tunfw::side::Side;
use tunfw::time::Instant;

/// The samples of a text: `name{labels}` to value; every sample line is
/// checked to be `NAME[{LABELS}] VALUE` and of a family with HELP and TYPE.
fn samples(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().expect("name").to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("NAME VALUE");
        let name = key.split('{').next().expect("name");
        assert!(typed.iter().any(|t| t == name), "{name} has no TYPE line");
        assert!(name.starts_with("tunfw_"), "{line}");
        out.insert(key.to_string(), value.parse().expect("integer value"));
    }
    out
}

/// The sample key a counter name maps to.
fn key_of(name: &str) -> Option<String> {
    let (spec, label) = family_of(name)?;
    let metric = if spec.gauge {
        spec.metric.to_string()
    } else {
        format!("{}_total", spec.metric)
    };
    Some(match label {
        None => metric,
        Some((k, v)) => format!("{metric}{{{k}=\"{v}\"}}"),
    })
}

fn some_traffic(h: &mut Harness) {
    for sport in 1000..1005 {
        h.out(udp(CLIENT, SERVER, sport, 53, b"q"));
    }
    h.inb(udp(SERVER, CLIENT, 53, 1000, b"a"));
    h.out(tcp_segment(CLIENT, SERVER, 40000, 80, 1, 0, SYN, b""));
    // Unsolicited from the WAN: the default inbound policy drops it.
    h.inb(tcp_segment(SERVER, CLIENT, 80, 40001, 1, 0, SYN, b""));
}

#[test]
fn every_counter_is_in_the_text_with_its_labels_and_value() {
    let mut h = Harness::default_config();
    some_traffic(&mut h);
    let shell = LoopCounters {
        tx_errors: [3, 4],
        ..LoopCounters::default()
    };
    let census = Census::complete(&h.fw, h.now);
    let text = render(&h.fw, &shell, &census, Some(&HttpCounters::default()));
    let s = samples(&text);
    let counters = report::counters(&h.fw, &shell);
    for (name, value) in &counters {
        if SUMS.contains(&name.as_str()) {
            continue;
        }
        let key = key_of(name).unwrap_or_else(|| panic!("{name} has no family"));
        assert_eq!(s.get(&key), Some(value), "{name} as {key}");
    }
    // The sums are the sums of their families.
    let sum = |prefix: &str| -> u64 {
        s.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    let total = |n: &str| counters.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    assert_eq!(
        Some(sum("tunfw_dropped_packets_total{")),
        total("drop.total")
    );
    assert_eq!(
        Some(sum("tunfw_invalid_packets_total{")),
        total("invalid.total")
    );
    assert!(
        s["tunfw_dropped_packets_total{reason=\"policy_inbound\"}"] >= 1,
        "{text}"
    );
    assert_eq!(s["tunfw_packets_total{side=\"lan\"}"], 6);
    assert_eq!(s["tunfw_transmit_errors_total{side=\"wan\"}"], 4);
    assert_eq!(
        s["tunfw_conntrack_entries_limit"],
        h.fw.conntrack().config().max as u64
    );
    assert!(text.contains("# HELP tunfw_packets_total "), "{text}");
    assert!(text.contains("# TYPE tunfw_packets_total counter"));
    assert!(text.contains("# TYPE tunfw_conntrack_entries gauge"));
    // Rule counters: every rule and policy, by direction, number and name.
    for rule in report::rules(&h.fw) {
        let key = format!(
            "tunfw_rule_packets_total{{direction=\"{}\",number=\"{}\",rule=\"{}\"}}",
            rule.direction, rule.number, rule.name
        );
        assert_eq!(s.get(&key), Some(&rule.packets), "{key}");
    }
    assert!(s["tunfw_rule_packets_total{direction=\"inbound\",number=\"0\",rule=\"policy\"}"] >= 1);
}

#[test]
fn the_census_counts_flows_by_protocol_and_state_in_chunks_as_at_once() {
    let mut h = Harness::tracking();
    for sport in 1000..1010 {
        h.out(udp(CLIENT, SERVER, sport, 53, b"q"));
    }
    for sport in 1000..1003 {
        h.inb(udp(SERVER, CLIENT, 53, sport, b"a"));
    }
    h.out(tcp_segment(CLIENT, SERVER, 40000, 80, 1, 0, SYN, b""));
    h.out(tcp_segment(CLIENT, SERVER, 40001, 80, 1, 0, SYN, b""));
    h.inb(tcp_segment(SERVER, CLIENT, 80, 40001, 9, 2, SYN | ACK, b""));
    h.out(echo(CLIENT, SERVER, 8, 7, 1));
    let all = Census::complete(&h.fw, h.now);
    let mut chunked = Census::new();
    let mut steps = 0;
    while !chunked.step(&h.fw, h.now, 3) {
        steps += 1;
    }
    assert!(steps > 3, "walked in several steps");
    assert_eq!(chunked, all);
    let text = render(&h.fw, &LoopCounters::default(), &all, None);
    let s = samples(&text);
    let entries = |p: &str, st: &str| {
        s[&format!("tunfw_conntrack_entries{{protocol=\"{p}\",state=\"{st}\"}}")]
    };
    assert_eq!(entries("udp", "unreplied"), 7);
    assert_eq!(entries("udp", "replied"), 3);
    assert_eq!(entries("tcp", "syn_sent"), 1);
    assert_eq!(entries("tcp", "syn_recv"), 1);
    assert_eq!(
        entries("tcp", "established"),
        0,
        "every state is there, zeros too"
    );
    assert_eq!(entries("icmp", "unreplied"), 1);
    let live: u64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("tunfw_conntrack_entries{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(live, h.fw.conntrack().len() as u64);
    // Expired flows are not live.
    h.advance_secs(100_000);
    assert_eq!(
        Census::complete(&h.fw, h.now)
            .samples()
            .iter()
            .map(|s| s.2)
            .sum::<u64>(),
        0
    );
    assert!(
        !text.contains("tunfw_metrics_http"),
        "no server, no server counters"
    );
}

/// A metrics server on 127.0.0.1, driven by a poll as the event loop does.
struct Served {
    poll: Poll,
    server: MetricsServer,
    events: Events,
    now: Instant,
}

const LISTENER: Token = Token(1);

impl Served {
    fn new() -> Served {
        let poll = Poll::new().expect("poll");
        let mut server =
            MetricsServer::bind("127.0.0.1:0".parse().expect("addr"), 100).expect("bind");
        server
            .register(poll.registry(), LISTENER)
            .expect("register");
        Served {
            poll,
            server,
            events: Events::with_capacity(64),
            now: Instant::from_secs(1),
        }
    }

    /// One turn: poll briefly, serve what is ready, hand over the text.
    fn turn(&mut self) {
        self.poll
            .poll(&mut self.events, Some(Duration::from_millis(5)))
            .expect("poll");
        for e in self.events.iter() {
            if e.token() == LISTENER {
                self.server.listener_ready();
            } else {
                self.server.handle(e.token(), self.now);
            }
        }
        if self.server.next_deadline() <= self.now {
            self.server.tick(self.now);
        }
        if self.server.waiting() {
            self.server.deliver(self.now, "tunfw_test_total 1\n");
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.server.local_addr()).expect("connect");
        s.set_nonblocking(true).expect("nonblocking");
        s
    }

    /// Send `request` on a new connection; the whole answer.
    fn ask(&mut self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).expect("write");
        let mut got = Vec::new();
        for _ in 0..400 {
            self.turn();
            let mut buf = [0u8; 65536];
            match s.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no answer: {}", String::from_utf8_lossy(&got));
    }
}

#[test]
fn scrapes_are_answered_and_bad_requests_get_their_status() {
    let mut m = Served::new();
    let a = m.ask(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    assert!(a.contains("Content-Type: text/plain; version=0.0.4"), "{a}");
    assert!(a.ends_with("\r\n\r\ntunfw_test_total 1\n"), "{a}");
    assert!(m
        .ask(b"GET /other HTTP/1.1\r\n\r\n")
        .starts_with("HTTP/1.1 404"));
    assert!(m
        .ask(b"DELETE /metrics HTTP/1.1\r\n\r\n")
        .starts_with("HTTP/1.1 405"));
    assert!(m.ask(b"\x01\x02\r\n\r\n").starts_with("HTTP/1.1 400"));
    let c = m.server.counters();
    assert_eq!((c.accepted, c.scrapes, c.errors), (4, 1, 3));
}

#[test]
fn stalled_and_slow_clients_neither_hold_scrapes_nor_stay() {
    let mut m = Served::new();
    // A full house of clients that connect and never send (slowloris)...
    let stalled: Vec<TcpStream> = (0..MAX_CLIENTS).map(|_| m.connect()).collect();
    for _ in 0..20 {
        m.turn();
    }
    assert_eq!(m.server.counters().clients, MAX_CLIENTS as u64);
    // ... and a scrape is still answered: the oldest makes room.
    let a = m.ask(b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(a.contains("tunfw_test_total 1"), "{a}");
    assert_eq!(m.server.counters().evicted, 1);
    // Past the request deadline, the stalled clients are closed.
    m.now = m.now + REQUEST_DEADLINE;
    m.turn();
    let c = m.server.counters();
    assert_eq!(c.clients, 0);
    assert_eq!(c.closed_slow, MAX_CLIENTS as u64 - 1);
    drop(stalled);
}

#[test]
fn a_scraper_that_does_not_read_is_closed_at_the_answer_deadline() {
    let mut m = Served::new();
    // A text far larger than the socket buffers, to a client that never reads.
    let text = "tunfw_x_total 1\n".repeat(1 << 20);
    let mut s = m.connect();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .expect("write");
    for _ in 0..50 {
        m.poll
            .poll(&mut m.events, Some(Duration::from_millis(2)))
            .expect("poll");
        for e in m.events.iter() {
            if e.token() == LISTENER {
                m.server.listener_ready();
            } else {
                m.server.handle(e.token(), m.now);
            }
        }
        m.server.tick(m.now);
        if m.server.waiting() {
            m.server.deliver(m.now, &text);
        }
    }
    assert_eq!(m.server.counters().clients, 1, "still writing");
    m.now = m.now + tunfw::metrics_http::ANSWER_DEADLINE;
    m.server.tick(m.now);
    let c = m.server.counters();
    assert_eq!((c.clients, c.closed_slow, c.scrapes), (0, 1, 1));
}

/// A walk of a table of 1M flows: how long one walk and one
/// [`tunfw::metrics::CENSUS_CHUNK`] take (`cargo test --release --test
/// metrics -- --ignored --nocapture`).
#[test]
#[ignore]
fn census_time_at_a_million_flows() {
    let mut h = Harness::with_config(
        r#"(conntrack: (max: 1048576), outbound: (policy: Accept), inbound: (policy: Accept))"#,
    );
    for i in 0..1_000_000u32 {
        let src = std::net::Ipv4Addr::from(0x0a00_0000 | (i >> 8));
        let pkt = udp(src, SERVER, 1024 + (i & 0xff) as u16, 53, b"");
        h.send(Side::Lan, pkt);
    }
    assert_eq!(h.fw.conntrack().len(), 1_000_000);
    let started = std::time::Instant::now();
    let census = Census::complete(&h.fw, h.now);
    let whole = started.elapsed();
    let started = std::time::Instant::now();
    let mut c = Census::new();
    c.step(&h.fw, h.now, tunfw::metrics::CENSUS_CHUNK);
    let chunk = started.elapsed();
    let started = std::time::Instant::now();
    let text = render(&h.fw, &LoopCounters::default(), &census, None);
    let rendered = started.elapsed();
    println!(
        "census of 1M flows: {whole:?}; one chunk of {}: {chunk:?}; render: {rendered:?} ({} bytes)",
        tunfw::metrics::CENSUS_CHUNK,
        text.len()
    );
}

#[test]
fn the_config_names_a_metrics_address_and_a_bad_one_is_located() {
    let ok = r#"(metrics: Some("[::1]:9100"), outbound: (policy: Drop), inbound: (policy: Drop))"#;
    let cfg = tunfw::config::Config::parse(ok, "m.ron").expect("parses");
    assert_eq!(cfg.metrics, Some("[::1]:9100".parse().expect("addr")));
    let plain = r#"(metrics: "127.0.0.1:9100", outbound: (policy: Drop), inbound: (policy: Drop))"#;
    let cfg = tunfw::config::Config::parse(plain, "m.ron").expect("parses");
    assert_eq!(cfg.metrics, Some("127.0.0.1:9100".parse().expect("addr")));
    let none = r#"(outbound: (policy: Drop), inbound: (policy: Drop))"#;
    assert_eq!(
        tunfw::config::Config::parse(none, "m.ron")
            .expect("parses")
            .metrics,
        None
    );
    let bad = "(\n    metrics: Some(\"localhost:9100\"),\n    outbound: (policy: Drop), inbound: (policy: Drop))";
    let e = tunfw::config::Config::parse(bad, "m.ron").expect_err("bad address");
    assert_eq!(e.line, 2, "{e}");
    assert!(e.to_string().starts_with("m.ron:2:"), "{e}");
    assert!(
        e.to_string()
            .contains("bad metrics address \"localhost:9100\""),
        "{e}"
    );
}
