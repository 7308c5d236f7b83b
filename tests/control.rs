//! The control server against hostile clients, driven directly: a mio
//! `Poll`, std `UnixStream` clients and an injected clock (no sleeping).
//! Idle clients are closed at the request deadline, a full server evicts
//! the longest-idle client and answers the newcomer, accepts are bounded
//! per wakeup, a subscriber that falls behind gets a `LOST` line with the
//! right count and then events again, and its backlog never passes the bound.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

mod common;

use mio::{Events, Poll, Token};
use tunfw::control::{
    Answer, ControlCounters, ControlServer, FlowFilter, FlowListing, Request, ANSWER_BUDGET,
    ANSWER_DEADLINE, LISTING_DEADLINE, LISTING_FLOWS, LISTING_ROOM, LISTING_SLOTS, MAX_BACKLOG,
    MAX_CLIENTS, MAX_SUBSCRIBERS, REQUEST_DEADLINE, STALL_DEADLINE,
};
use tunfw::filter::Firewall;
use tunfw::time::Instant;

const LISTENER: Token = Token(0);

/// A server on a fresh socket, its poll, and how big `flows` answers are.
struct Rig {
    poll: Poll,
    events: Events,
    server: ControlServer,
    path: PathBuf,
    flows_bytes: usize,
    answered: usize,
    /// With a firewall, `flows` is answered by a listing of its table,
    /// stepped as the event loop steps it.
    fw: Option<Firewall>,
    /// The most bytes one listing step wrote, and the bytes of all steps.
    largest_step: usize,
    listed: usize,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let path = std::env::temp_dir().join(format!(
            "tunfw-control-test-{}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let poll = Poll::new().expect("poll");
        let mut server = ControlServer::bind(&path, 16).expect("bind");
        server
            .register(poll.registry(), LISTENER)
            .expect("register");
        Rig {
            poll,
            events: Events::with_capacity(64),
            server,
            path,
            flows_bytes: 100,
            answered: 0,
            fw: None,
            largest_step: 0,
            listed: 0,
        }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.path).expect("connect");
        s.set_nonblocking(true).expect("nonblocking");
        s
    }

    /// Serve everything ready at `now`, as the event loop does, until
    /// nothing is left to do.
    fn pump(&mut self, now: Instant) {
        let flows_bytes = self.flows_bytes;
        let answered = &mut self.answered;
        let listing = self.fw.is_some();
        let mut answer = |req: Result<Request, String>, c: &ControlCounters| {
            *answered += 1;
            match req {
                Ok(Request::Events) => Answer::Subscribe,
                Ok(Request::Flows(f)) if listing => Answer::Listing(FlowListing::new(f)),
                Ok(Request::Flows(_)) => Answer::Once(vec![b'x'; flows_bytes]),
                Ok(Request::Stats) => Answer::Once(
                    format!("{{\"accepted\":{},\"evicted\":{}}}", c.accepted, c.evicted)
                        .into_bytes(),
                ),
                Ok(_) => Answer::Once(b"{}".to_vec()),
                Err(e) => Answer::Once(tunfw::control::error_answer(&e)),
            }
        };
        for _ in 0..1000 {
            self.poll
                .poll(&mut self.events, Some(Duration::ZERO))
                .expect("poll");
            let mut any = false;
            for event in self.events.iter() {
                any = true;
                match event.token() {
                    LISTENER => self.server.listener_ready(),
                    token => self.server.handle(token, now, &mut answer),
                }
            }
            let due = self.server.next_deadline() <= now;
            if due {
                self.server.tick(now, &mut answer);
                if let Some(fw) = &self.fw {
                    let (largest, listed) = (&mut self.largest_step, &mut self.listed);
                    self.server.fill_listings(now, &mut |l, out| {
                        let before = out.len();
                        let done = l.step(fw, now, LISTING_SLOTS, LISTING_FLOWS, out);
                        *largest = (*largest).max(out.len() - before);
                        *listed += out.len() - before;
                        done
                    });
                }
            }
            if !any && !due {
                return;
            }
        }
        panic!("pump did not settle");
    }

    fn counters(&self) -> ControlCounters {
        self.server.counters()
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// What the client can read now, and whether the server closed it.
fn drain(s: &mut UnixStream) -> (String, bool) {
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&text).into_owned(), true),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return (String::from_utf8_lossy(&text).into_owned(), false)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&text).into_owned(), true)
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn is_closed(s: &mut UnixStream) -> bool {
    drain(s).1
}

/// `n` clients that connect and send nothing, accepted one millisecond apart
/// from `t0`.
fn idle_clients(rig: &mut Rig, n: usize, t0: u64) -> Vec<UnixStream> {
    (0..n)
        .map(|i| {
            let s = rig.connect();
            rig.pump(at(t0 + i as u64));
            s
        })
        .collect()
}

fn subscribe(rig: &mut Rig, now: Instant) -> UnixStream {
    let mut s = rig.connect();
    s.write_all(b"events\n").expect("write");
    rig.pump(now);
    assert!(rig.server.has_subscribers());
    s
}

/// `count` event lines numbered from `first`, each `len` bytes with its newline.
fn event_lines(first: usize, count: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for n in first..first + count {
        let line = format!("{{\"n\":{n},\"pad\":\"");
        out.extend_from_slice(line.as_bytes());
        out.resize(out.len() + len - line.len() - 3, b'.');
        out.extend_from_slice(b"\"}\n");
    }
    out
}

#[test]
fn request_answered_and_closed() {
    let mut rig = Rig::new("answer");
    let mut c = rig.connect();
    c.write_all(b"stats\n").unwrap();
    rig.pump(at(0));
    let (text, closed) = drain(&mut c);
    assert!(closed);
    assert_eq!(text, "{\"accepted\":1,\"evicted\":0}\n");
    assert_eq!(rig.server.client_count(), 0);
}

#[test]
fn idle_client_closed_at_the_request_deadline() {
    let mut rig = Rig::new("idle");
    let mut idle = rig.connect();
    rig.pump(at(0));
    assert_eq!(rig.server.client_count(), 1);
    let deadline = at(0) + REQUEST_DEADLINE;
    assert_eq!(rig.server.next_deadline(), deadline);
    // A partial line does not move the deadline.
    idle.write_all(b"sta").unwrap();
    rig.pump(deadline - Duration::from_millis(1));
    assert!(!is_closed(&mut idle));
    assert_eq!(rig.server.client_count(), 1);
    rig.pump(deadline);
    let (text, closed) = drain(&mut idle);
    assert!(closed);
    assert!(text.contains("no request line within 2 s"), "{text}");
    assert_eq!(rig.counters().closed_idle, 1);
    assert_eq!(rig.server.client_count(), 0);
    assert_eq!(rig.server.next_deadline(), Instant::NEVER);
}

#[test]
fn request_ended_by_the_end_of_the_stream_is_answered() {
    let mut rig = Rig::new("eof");
    let mut c = rig.connect();
    c.write_all(b"stats").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    rig.pump(at(0));
    assert!(drain(&mut c).0.starts_with("{\"accepted\":1"));
}

#[test]
fn overlong_request_is_an_error() {
    let mut rig = Rig::new("long");
    let mut c = rig.connect();
    c.write_all(&[b'a'; 5000]).unwrap();
    rig.pump(at(0));
    let (text, closed) = drain(&mut c);
    assert!(closed);
    assert!(text.contains("request longer than 4096 bytes"), "{text}");
}

#[test]
fn full_server_evicts_the_longest_idle_and_answers_the_newcomer() {
    let mut rig = Rig::new("evict");
    let mut idle = idle_clients(&mut rig, MAX_CLIENTS, 0);
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
    // A newcomer whose request is already there is served at the door.
    let mut quick = rig.connect();
    quick.write_all(b"stats\n").unwrap();
    rig.pump(at(100));
    let (text, closed) = drain(&mut quick);
    assert!(closed && text.starts_with("{\"accepted\":33"), "{text}");
    assert_eq!(rig.counters().evicted, 0);
    // A newcomer that writes after the accept takes the slot of the client
    // idle longest (accepted at 0 ms), and is then answered.
    let mut slow = rig.connect();
    rig.pump(at(200));
    assert_eq!(rig.counters().evicted, 1);
    let (text, gone) = drain(&mut idle[0]);
    assert!(gone);
    assert!(text.contains("evicted"), "{text}");
    for other in &mut idle[1..] {
        assert!(!is_closed(other));
    }
    slow.write_all(b"stats\n").unwrap();
    rig.pump(at(201));
    let (text, closed) = drain(&mut slow);
    assert!(closed && text.contains("\"evicted\":1"), "{text}");
    assert_eq!(rig.counters().accepted, 34);
}

#[test]
fn an_evicted_client_whose_request_arrived_is_served_instead() {
    let mut rig = Rig::new("lastchance");
    let mut idle = idle_clients(&mut rig, MAX_CLIENTS, 0);
    // The oldest sends its request but the server has not looked yet.
    idle[0].write_all(b"stats\n").unwrap();
    let _newcomer = rig.connect();
    // One accept, before the readable event of idle[0] is handled.
    rig.server.listener_ready();
    rig.server
        .tick(at(50), &mut |_, _| Answer::Once(b"{\"ok\":1}".to_vec()));
    let (text, closed) = drain(&mut idle[0]);
    assert!(closed);
    assert_eq!(text, "{\"ok\":1}\n");
    assert_eq!(rig.counters().evicted, 0);
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
}

#[test]
fn subscribers_keeping_up_and_clients_being_answered_are_not_evicted() {
    let mut rig = Rig::new("protected");
    // Oldest: a subscriber that keeps up, and a client whose large answer
    // is being written.
    let mut sub = subscribe(&mut rig, at(0));
    rig.flows_bytes = 4 << 20;
    let mut reader = rig.connect();
    reader.write_all(b"flows\n").unwrap();
    rig.pump(at(1));
    let mut idle = idle_clients(&mut rig, MAX_CLIENTS - 2, 10);
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
    let _newcomer = rig.connect();
    rig.pump(at(100));
    assert_eq!(rig.counters().evicted, 1);
    assert!(is_closed(&mut idle[0]), "the oldest idle client goes");
    assert!(!is_closed(&mut sub));
    let (text, gone) = drain(&mut reader);
    assert!(!gone && !text.is_empty());
}

#[test]
fn newcomer_refused_when_no_client_can_be_evicted() {
    let mut rig = Rig::new("refused");
    // Every slot is a client being answered: answers too big for the
    // socket buffer, not read.
    rig.flows_bytes = 1 << 20;
    let mut busy = Vec::new();
    for i in 0..MAX_CLIENTS {
        let mut c = rig.connect();
        c.write_all(b"flows\n").unwrap();
        rig.pump(at(i as u64));
        busy.push(c);
    }
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
    let mut late = rig.connect();
    rig.pump(at(100));
    let (text, closed) = drain(&mut late);
    assert!(closed && text.contains("all busy"), "{text}");
    assert_eq!(rig.counters().refused, 1);
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
}

#[test]
fn unread_answer_closed_at_the_answer_deadline() {
    let mut rig = Rig::new("unread");
    rig.flows_bytes = 4 << 20;
    let mut c = rig.connect();
    c.write_all(b"flows\n").unwrap();
    rig.pump(at(0));
    assert_eq!(rig.server.next_deadline(), at(0) + ANSWER_DEADLINE);
    rig.pump(at(0) + ANSWER_DEADLINE - Duration::from_millis(1));
    assert_eq!(rig.server.client_count(), 1);
    rig.pump(at(0) + ANSWER_DEADLINE);
    assert_eq!(rig.server.client_count(), 0);
    assert_eq!(rig.counters().closed_slow, 1);
    // What was written arrives, then the end: the answer is cut short.
    let (text, closed) = drain(&mut c);
    assert!(closed && text.len() < 4 << 20);
}

#[test]
fn answer_read_in_time_is_complete() {
    let mut rig = Rig::new("bigread");
    rig.flows_bytes = 4 << 20;
    let mut c = rig.connect();
    c.write_all(b"flows\n").unwrap();
    let mut got = Vec::new();
    for ms in 0..1000 {
        rig.pump(at(ms));
        let (text, closed) = drain(&mut c);
        got.extend_from_slice(text.as_bytes());
        if closed {
            break;
        }
    }
    assert_eq!(got.len(), (4 << 20) + 1);
    assert_eq!(rig.counters().closed_slow, 0);
}

#[test]
fn listings_refused_while_answers_over_the_budget_wait() {
    let mut rig = Rig::new("budget");
    // Two answers unread (less what the socket buffers took) pass the budget.
    rig.flows_bytes = ANSWER_BUDGET / 2 + (1 << 20);
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = rig.connect();
        c.write_all(b"flows\n").unwrap();
        rig.pump(at(i));
        held.push(c);
    }
    let mut third = rig.connect();
    third.write_all(b"flows\n").unwrap();
    rig.pump(at(5));
    let (text, closed) = drain(&mut third);
    assert!(closed && text.contains("busy"), "{text}");
    // Small requests still are answered.
    let mut stats = rig.connect();
    stats.write_all(b"stats\n").unwrap();
    rig.pump(at(6));
    assert!(drain(&mut stats).0.starts_with("{\"accepted\""));
    assert_eq!(rig.counters().refused, 1);
}

#[test]
fn accepts_are_bounded_per_wakeup() {
    let mut rig = Rig::new("batch");
    let _waiting: Vec<UnixStream> = (0..100).map(|_| rig.connect()).collect();
    rig.server.listener_ready();
    let mut answer = |_: Result<Request, String>, _: &ControlCounters| Answer::Subscribe;
    rig.server.tick(at(0), &mut answer);
    assert_eq!(rig.counters().accepted, 64);
    // The rest wait: the next tick is due at once.
    assert!(rig.server.next_deadline() <= at(0));
    rig.server.tick(at(1), &mut answer);
    assert_eq!(rig.counters().accepted, 100);
    assert_eq!(rig.server.client_count(), MAX_CLIENTS);
    assert_eq!(rig.counters().evicted, 100 - MAX_CLIENTS as u64);
    assert!(rig.server.next_deadline() > at(1));
}

#[test]
fn connect_close_churn_leaves_no_clients() {
    let mut rig = Rig::new("churn");
    for round in 0..20 {
        for _ in 0..100 {
            drop(rig.connect());
        }
        rig.pump(at(round));
    }
    assert_eq!(rig.counters().accepted, 2000);
    assert_eq!(rig.server.client_count(), 0);
    assert_eq!(rig.counters().evicted, 0);
    let mut c = rig.connect();
    c.write_all(b"stats\n").unwrap();
    rig.pump(at(100));
    assert!(drain(&mut c).0.starts_with("{\"accepted\":2001"));
}

#[test]
fn subscribers_are_bounded() {
    let mut rig = Rig::new("subs");
    let _subs: Vec<UnixStream> = (0..MAX_SUBSCRIBERS)
        .map(|i| subscribe(&mut rig, at(i as u64)))
        .collect();
    let mut extra = rig.connect();
    extra.write_all(b"events\n").unwrap();
    rig.pump(at(50));
    let (text, closed) = drain(&mut extra);
    assert!(
        closed && text.contains("too many event subscribers"),
        "{text}"
    );
    assert_eq!(rig.counters().refused, 1);
}

/// Parse what a subscriber read: event numbers and LOST counts, in order.
fn parse_stream(text: &str) -> Vec<Result<u64, u64>> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect(l);
            if v["event"] == "LOST" {
                Err(v["lost"].as_u64().unwrap())
            } else {
                Ok(v["n"].as_u64().unwrap())
            }
        })
        .collect()
}

#[test]
fn slow_subscriber_gets_a_lost_line_with_the_count_then_events() {
    let mut rig = Rig::new("lost");
    let mut sub = subscribe(&mut rig, at(0));
    // A burst of 100 000 events of 100 bytes (10 MB) while it reads nothing.
    const BURST: usize = 100_000;
    for chunk in 0..100 {
        rig.server
            .broadcast(at(1), &event_lines(chunk * 1000, 1000, 100));
        assert!(rig.server.largest_backlog() <= MAX_BACKLOG);
    }
    let lost = rig.counters().events_lost;
    assert!(lost > 0);
    // It catches up: reads everything, and the server writes as it can.
    let mut text = String::new();
    for ms in 2..1000 {
        let (got, closed) = drain(&mut sub);
        assert!(!closed, "a subscriber behind is not disconnected");
        text += &got;
        if text.contains("LOST") {
            break;
        }
        rig.pump(at(ms));
    }
    // Then new events.
    rig.server.broadcast(at(2000), &event_lines(BURST, 10, 100));
    rig.pump(at(2000));
    text += &drain(&mut sub).0;
    let items = parse_stream(&text);
    let lost_at = items.iter().position(Result::is_err).expect("a LOST line");
    let received = lost_at as u64;
    // Events 0..received arrived in order, then LOST with the rest of the
    // burst, then the new events.
    for (i, item) in items[..lost_at].iter().enumerate() {
        assert_eq!(*item, Ok(i as u64));
    }
    assert_eq!(items[lost_at], Err(BURST as u64 - received));
    assert_eq!(lost, BURST as u64 - received);
    let after: Vec<u64> = (BURST as u64..BURST as u64 + 10).collect();
    let got: Vec<u64> = items[lost_at + 1..]
        .iter()
        .map(|r| *r.as_ref().unwrap())
        .collect();
    assert_eq!(got, after);
    assert_eq!(rig.counters().events_lost, lost);
    assert_eq!(rig.counters().closed_slow, 0);
}

#[test]
fn lost_line_comes_only_once_the_backlog_is_down_to_half() {
    let mut rig = Rig::new("resume");
    let mut sub = subscribe(&mut rig, at(0));
    // Fill the socket buffer and the backlog, then one more line is lost.
    let mut n = 0;
    while rig.counters().events_lost == 0 {
        rig.server.broadcast(at(1), &event_lines(n, 100, 100));
        n += 100;
    }
    let lost_before = rig.counters().events_lost;
    // Read a little: the backlog moves into the socket, but stays over half,
    // so further events are still dropped (no LOST line yet).
    let mut small = [0u8; 4096];
    let _ = sub.read(&mut small).unwrap();
    rig.pump(at(2));
    rig.server.broadcast(at(3), &event_lines(n, 1, 100));
    assert_eq!(rig.counters().events_lost, lost_before + 1);
    assert!(rig.server.largest_backlog() > MAX_BACKLOG / 2);
}

#[test]
fn backlog_never_exceeds_the_bound() {
    let mut rig = Rig::new("bound");
    let mut sub = subscribe(&mut rig, at(0));
    // Irregular line sizes and a reader that takes a little now and then.
    let mut n = 0;
    let mut small = [0u8; 10_000];
    for round in 0..300 {
        let len = 60 + (round * 37) % 400;
        rig.server
            .broadcast(at(round as u64), &event_lines(n, 500, len));
        n += 500;
        assert!(rig.server.largest_backlog() <= MAX_BACKLOG);
        if round % 3 == 0 {
            let _ = sub.read(&mut small);
            rig.pump(at(round as u64));
            assert!(rig.server.largest_backlog() <= MAX_BACKLOG);
        }
    }
    assert!(rig.counters().events_lost > 0);
    assert!(!is_closed(&mut sub));
}

#[test]
fn stalled_subscriber_closed_at_the_stall_deadline() {
    let mut rig = Rig::new("stall");
    let mut sub = subscribe(&mut rig, at(0));
    let mut n = 0;
    while rig.server.largest_backlog() == 0 {
        rig.server.broadcast(at(1000), &event_lines(n, 100, 100));
        n += 100;
    }
    assert_eq!(rig.server.next_deadline(), at(1000) + STALL_DEADLINE);
    rig.pump(at(1000) + STALL_DEADLINE - Duration::from_millis(1));
    assert!(rig.server.has_subscribers());
    rig.pump(at(1000) + STALL_DEADLINE);
    assert!(!rig.server.has_subscribers());
    assert_eq!(rig.counters().closed_slow, 1);
    // What was queued in the socket is still readable, then the end.
    let (_, closed) = drain(&mut sub);
    assert!(closed);
}

#[test]
fn subscriber_that_hangs_up_is_closed() {
    let mut rig = Rig::new("hangup");
    let sub = subscribe(&mut rig, at(0));
    drop(sub);
    rig.pump(at(1));
    assert!(!rig.server.has_subscribers());
    assert_eq!(rig.server.client_count(), 0);
}

#[test]
fn control_counters_come_last_in_stats_in_their_order() {
    let config = tunfw::config::Config::embedded_default().expect("default config");
    let fw = tunfw::filter::Firewall::new(&config);
    let shell = tunfw::report::LoopCounters {
        control: ControlCounters {
            accepted: 1,
            closed_idle: 2,
            evicted: 3,
            events_lost: 4,
            closed_slow: 5,
            refused: 6,
            clients: 7,
        },
        ..Default::default()
    };
    let counters = tunfw::report::counters(&fw, &shell);
    let tail: Vec<(String, u64)> = counters[counters.len() - 7..].to_vec();
    let names = [
        "accepted",
        "closed_idle",
        "evicted",
        "events_lost",
        "closed_slow",
        "refused",
        "clients",
    ];
    let want: Vec<(String, u64)> = names
        .iter()
        .zip(1..)
        .map(|(n, v)| (format!("control.{n}"), v))
        .collect();
    assert_eq!(tail, want);
}

#[test]
fn lost_line_format() {
    assert_eq!(
        tunfw::control::lost_line(9885),
        b"{\"event\":\"LOST\",\"lost\":9885}\n"
    );
}

#[test]
fn turned_away_means_the_request_was_never_read() {
    use std::io::Error;
    use tunfw::control::{turned_away, ALL_BUSY, EVICTED};
    assert!(turned_away(&Error::from(ErrorKind::BrokenPipe)));
    assert!(turned_away(&Error::from(ErrorKind::ConnectionReset)));
    assert!(turned_away(&Error::other(EVICTED)));
    assert!(turned_away(&Error::other(format!("{ALL_BUSY}; try later"))));
    // Refusals after the request was read are final.
    assert!(!turned_away(&Error::other(
        "too many event subscribers (8); try later"
    )));
    assert!(!turned_away(&Error::other("busy: 5 bytes of answers wait")));
    assert!(!turned_away(&Error::from(ErrorKind::ConnectionRefused)));
}

#[test]
fn query_is_answered_by_a_server_in_another_thread() {
    // The blocking client against the real server loop with real time.
    let path = std::env::temp_dir().join(format!(
        "tunfw-control-test-{}-query.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let server_path = path.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(64);
        let mut server = ControlServer::bind(&server_path, 16).unwrap();
        server.register(poll.registry(), LISTENER).unwrap();
        ready_tx.send(()).unwrap();
        let start = std::time::Instant::now();
        let mut answer = |req: Result<Request, String>, _: &ControlCounters| match req {
            Ok(Request::Stats) => Answer::Once(b"{\"n\":1}".to_vec()),
            _ => Answer::Once(b"{}".to_vec()),
        };
        while start.elapsed() < Duration::from_secs(5) {
            poll.poll(&mut events, Some(Duration::from_millis(5)))
                .unwrap();
            let now = Instant::from_millis(start.elapsed().as_millis() as u64);
            for event in events.iter() {
                match event.token() {
                    LISTENER => server.listener_ready(),
                    token => server.handle(token, now, &mut answer),
                }
            }
            if server.next_deadline() <= now {
                server.tick(now, &mut answer);
            }
            if server.counters().accepted >= 1 && server.client_count() == 0 {
                return;
            }
        }
    });
    ready_rx.recv().unwrap();
    let value = tunfw::control::query(&path, "stats").expect("answered");
    assert_eq!(value["n"], 1);
    server.join().unwrap();
}

#[test]
fn query_sends_again_a_request_turned_away_unread() {
    // A stand-in server: the first two connections are closed unread (as an
    // eviction does), the third is answered.
    let path = std::env::temp_dir().join(format!(
        "tunfw-control-test-{}-retry.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (s, _) = listener.accept().unwrap();
            drop(s);
        }
        let (mut s, _) = listener.accept().unwrap();
        let mut line = [0u8; 6];
        s.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"stats\n");
        s.write_all(b"{\"n\":3}\n").unwrap();
    });
    let value = tunfw::control::query(&path, "stats").expect("answered on the third try");
    assert_eq!(value["n"], 3);
    server.join().unwrap();
    let _ = std::fs::remove_file(&path);
}

/// A firewall whose table holds `n` UDP flows from the LAN.
fn firewall_with_flows(n: u16) -> Firewall {
    let mut h = common::Harness::default_config();
    for port in 0..n {
        h.out(common::udp(
            common::CLIENT,
            common::SERVER,
            10_000 + port,
            53,
            b"q",
        ));
    }
    assert_eq!(h.fw.conntrack().len(), usize::from(n));
    h.fw
}

/// The listing of a table too big for the socket: stepped only while the
/// client has room, a bounded number of flows a step, and whole once read:
/// the same bytes as the listing written at once.
#[test]
fn a_flows_listing_waits_for_its_reader_and_arrives_whole() {
    let mut rig = Rig::new("listing");
    rig.fw = Some(firewall_with_flows(6000));
    let now = at(0);
    let whole = FlowListing::new(FlowFilter::default()).complete(rig.fw.as_ref().expect("fw"), now);
    assert!(whole.len() > 4 * LISTING_ROOM, "{} bytes", whole.len());
    let mut c = rig.connect();
    c.write_all(b"flows\n").unwrap();
    rig.pump(now);
    // Unread, the listing stops: nothing is due before the deadline, and
    // less than the answer has been formatted.
    assert_eq!(rig.server.next_deadline(), now + LISTING_DEADLINE);
    assert!(
        rig.listed < whole.len(),
        "{} of {}",
        rig.listed,
        whole.len()
    );
    // One step: at most LISTING_FLOWS flows of some 200 bytes each.
    assert!(
        rig.largest_step <= LISTING_FLOWS * 400,
        "{}",
        rig.largest_step
    );
    // Read while the loop turns (at one time: the flows' timeouts stay).
    let mut got = Vec::new();
    for _ in 0..10_000 {
        let (text, closed) = drain(&mut c);
        got.extend_from_slice(text.as_bytes());
        if closed {
            break;
        }
        rig.pump(now);
    }
    assert_eq!(got.last(), Some(&b'\n'));
    got.pop();
    assert!(got == whole, "the listing differs from the answer at once");
    assert_eq!(rig.listed, whole.len());
    assert_eq!(rig.server.client_count(), 0);
    assert_eq!(rig.counters().closed_slow, 0);
}

/// A listing client that never reads holds its slot until the listing
/// deadline, then is closed as slow.
#[test]
fn an_unread_listing_is_closed_at_the_listing_deadline() {
    let mut rig = Rig::new("listing-unread");
    rig.fw = Some(firewall_with_flows(6000));
    let mut c = rig.connect();
    c.write_all(b"flows\n").unwrap();
    rig.pump(at(0));
    rig.pump(at(0) + LISTING_DEADLINE - Duration::from_millis(1));
    assert_eq!(rig.server.client_count(), 1);
    rig.pump(at(0) + LISTING_DEADLINE);
    assert_eq!(rig.server.client_count(), 0);
    assert_eq!(rig.counters().closed_slow, 1);
    let (text, closed) = drain(&mut c);
    assert!(closed && text.starts_with('[') && !text.ends_with("]\n"));
}
