//! The `--metrics` HTTP server: `GET /metrics` answered with the
//! Prometheus text ([`crate::metrics`]), driven by the event loop as the
//! control server is (non-blocking sockets, edge-triggered readiness, one
//! mio token per client slot).
//!
//! A client cannot hold the server or the packet path:
//!
//! - at most [`MAX_CLIENTS`] clients; a new connection at the bound evicts
//!   the client connected longest;
//! - at most [`ACCEPTS_PER_WAKEUP`] accepts per turn;
//! - a request is at most [`MAX_REQUEST`] bytes (431 beyond), complete
//!   within [`REQUEST_DEADLINE`] of the accept (else closed: a slowloris
//!   holds one slot for that long, no more);
//! - the answer is written as the client takes it, never waiting on it,
//!   and must be taken whole within [`ANSWER_DEADLINE`] (a stalled scraper
//!   is closed); it is at most [`MAX_ANSWER`] bytes (500 beyond).
//!
//! Requests are parsed by the `httparse` crate (the parser of hyper: zero
//! copy, no allocation, bounded headers). `GET` and `HEAD` of `/metrics`
//! (any query string) get 200 with [`crate::metrics::CONTENT_TYPE`], other
//! paths 404, other methods 405, unparsable requests 400. Every answer
//! closes the connection (`Connection: close`).
//!
//! The server only says that clients wait for the text
//! ([`MetricsServer::waiting`]); the event loop makes it (spreading the
//! table census over turns) and hands it over with
//! [`MetricsServer::deliver`].

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::metrics::{HttpCounters, CONTENT_TYPE};
use crate::time::Instant;

/// Clients connected at once.
pub const MAX_CLIENTS: usize = 8;
/// Longest request (request line and headers), bytes.
pub const MAX_REQUEST: usize = 8192;
/// Largest answer, bytes.
pub const MAX_ANSWER: usize = 16 << 20;
/// Connections accepted per turn.
pub const ACCEPTS_PER_WAKEUP: usize = 16;
/// From the accept to the whole request read.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// From the request to the last byte of the answer written.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// Headers a request may have.
const MAX_HEADERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request.
    Request,
    /// A `/metrics` request waits for the text (`head`: HEAD, no body).
    Waiting { head: bool },
    /// Writing the answer.
    Writing,
}

struct Client {
    stream: TcpStream,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    accepted: Instant,
    /// When the request was read (phases after `Request`).
    since: Instant,
}

impl Client {
    fn deadline(&self) -> Instant {
        match self.phase {
            Phase::Request => self.accepted + REQUEST_DEADLINE,
            Phase::Waiting { .. } | Phase::Writing => self.since + ANSWER_DEADLINE,
        }
    }
}

/// What reading a request gave.
enum Request {
    Pending,
    Closed,
    /// Status line and body of an error answer.
    Error(&'static str, &'static str),
    Metrics {
        head: bool,
    },
}

/// The listening socket and its clients. Every method returns without
/// blocking and does bounded work.
pub struct MetricsServer {
    listener: TcpListener,
    registry: Option<Registry>,
    addr: SocketAddr,
    slots: Vec<Option<Client>>,
    first_token: usize,
    accept_pending: bool,
    counters: HttpCounters,
    /// When an accept error was last logged.
    warned: Option<Instant>,
}

impl MetricsServer {
    /// Listen on `addr` (port 0: one the kernel picks, see
    /// [`MetricsServer::local_addr`]). Client slot `i` has token
    /// `first_token + i`, `i` below [`MAX_CLIENTS`].
    pub fn bind(addr: SocketAddr, first_token: usize) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(MetricsServer {
            listener,
            registry: None,
            addr,
            slots: (0..MAX_CLIENTS).map(|_| None).collect(),
            first_token,
            accept_pending: false,
            counters: HttpCounters::default(),
            warned: None,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Register the listener under `token`; clients go to the same registry.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)?;
        self.registry = Some(registry.try_clone()?);
        Ok(())
    }

    /// Whether `token` is one of the client slots' tokens.
    pub fn owns(&self, token: Token) -> bool {
        (self.first_token..self.first_token + MAX_CLIENTS).contains(&token.0)
    }

    /// The listener is readable: connections are accepted at the next
    /// [`MetricsServer::tick`] (due at once).
    pub fn listener_ready(&mut self) {
        self.accept_pending = true;
    }

    /// The counters, with the current client count.
    pub fn counters(&self) -> HttpCounters {
        HttpCounters {
            clients: self.slots.iter().flatten().count() as u64,
            ..self.counters
        }
    }

    /// When [`MetricsServer::tick`] is next due: at once while connections
    /// may wait, else the earliest client deadline.
    pub fn next_deadline(&self) -> Instant {
        if self.accept_pending {
            return Instant::ZERO;
        }
        self.slots
            .iter()
            .flatten()
            .map(Client::deadline)
            .min()
            .unwrap_or(Instant::NEVER)
    }

    /// Whether a client waits for the text.
    pub fn waiting(&self) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|c| matches!(c.phase, Phase::Waiting { .. }))
    }

    /// Housekeeping at `now`: accept a bounded batch of connections, close
    /// clients past their deadline.
    pub fn tick(&mut self, now: Instant) {
        if self.accept_pending {
            self.accept(now);
        }
        for i in 0..MAX_CLIENTS {
            if self.slots[i].as_ref().is_some_and(|c| c.deadline() <= now) {
                // A last look: the request or the reader may just have come.
                self.step(i, now);
                if self.slots[i].as_ref().is_some_and(|c| c.deadline() <= now) {
                    self.counters.closed_slow += 1;
                    self.close(i);
                }
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        self.accept_pending = false;
        for _ in 0..ACCEPTS_PER_WAKEUP {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if self
                        .warned
                        .is_none_or(|t| now >= t + Duration::from_secs(10))
                    {
                        log::warn!("metrics socket accept: {e}");
                        self.warned = Some(now);
                    }
                    return;
                }
            }
        }
        self.accept_pending = true;
    }

    fn admit(&mut self, mut stream: TcpStream, now: Instant) {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                // Full: the client connected longest makes room.
                let oldest = (0..MAX_CLIENTS)
                    .min_by_key(|&i| {
                        self.slots[i]
                            .as_ref()
                            .map_or(Instant::NEVER, |c| c.accepted)
                    })
                    .unwrap_or(0);
                self.counters.evicted += 1;
                self.close(oldest);
                oldest
            }
        };
        let Some(registry) = self.registry.as_ref() else {
            return;
        };
        let token = Token(self.first_token + slot);
        if registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return;
        }
        self.counters.accepted += 1;
        self.slots[slot] = Some(Client {
            stream,
            phase: Phase::Request,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            accepted: now,
            since: now,
        });
        self.step(slot, now);
    }

    /// Progress the client of `token` (readable or writable).
    pub fn handle(&mut self, token: Token, now: Instant) {
        if self.owns(token) {
            self.step(token.0 - self.first_token, now);
        }
    }

    /// Read the request or write the answer, as far as the socket allows;
    /// close the client once it is done or gone.
    fn step(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        if c.phase == Phase::Request {
            match read_request(c) {
                Request::Pending => return,
                Request::Closed => return self.close(slot),
                Request::Metrics { head } => {
                    c.phase = Phase::Waiting { head };
                    c.since = now;
                    c.inbuf = Vec::new();
                    return;
                }
                Request::Error(status, body) => {
                    self.counters.errors += 1;
                    c.out = answer(status, "text/plain; charset=utf-8", body.as_bytes(), false);
                    c.phase = Phase::Writing;
                    c.since = now;
                }
            }
        }
        if c.phase == Phase::Writing && !write_out(c) {
            self.close(slot);
        }
    }

    /// Hand `text` to every client waiting for it and start writing.
    pub fn deliver(&mut self, now: Instant, text: &str) {
        for slot in 0..MAX_CLIENTS {
            let Some(c) = self.slots[slot].as_mut() else {
                continue;
            };
            let Phase::Waiting { head } = c.phase else {
                continue;
            };
            c.out = if text.len() > MAX_ANSWER {
                self.counters.errors += 1;
                answer(
                    "500 Internal Server Error",
                    "text/plain; charset=utf-8",
                    b"metrics text too large\n",
                    false,
                )
            } else {
                self.counters.scrapes += 1;
                answer("200 OK", CONTENT_TYPE, text.as_bytes(), head)
            };
            c.phase = Phase::Writing;
            c.since = now;
            if !write_out(c) {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut c) = self.slots[slot].take() {
            if let Some(registry) = &self.registry {
                let _ = registry.deregister(&mut c.stream);
            }
        }
    }
}

/// Read what has arrived (at most one byte past [`MAX_REQUEST`] kept) and
/// parse it.
fn read_request(c: &mut Client) -> Request {
    let mut buf = [0u8; 4096];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return Request::Closed,
            Ok(n) => {
                let room = MAX_REQUEST + 1 - c.inbuf.len();
                c.inbuf.extend_from_slice(&buf[..n.min(room)]);
                if c.inbuf.len() > MAX_REQUEST {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Request::Closed,
        }
    }
    parse(&c.inbuf)
}

/// What a request (the bytes read so far) asks.
fn parse(bytes: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let too_large = Request::Error("431 Request Header Fields Too Large", "request too large\n");
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() > MAX_REQUEST => too_large,
        Ok(httparse::Status::Partial) => Request::Pending,
        Err(httparse::Error::TooManyHeaders) => too_large,
        Err(_) => Request::Error("400 Bad Request", "bad request\n"),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            match req.method.unwrap_or("") {
                "GET" | "HEAD" if path == "/metrics" => Request::Metrics {
                    head: req.method == Some("HEAD"),
                },
                "GET" | "HEAD" => Request::Error("404 Not Found", "not found: try /metrics\n"),
                _ => Request::Error(
                    "405 Method Not Allowed",
                    "method not allowed: GET /metrics\n",
                ),
            }
        }
    }
}

/// A whole HTTP/1.1 answer that closes the connection.
fn answer(status: &str, content_type: &str, body: &[u8], head: bool) -> Vec<u8> {
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

/// Write as much of the answer as the socket takes; false once it is all
/// written (the client is done) or the socket failed.
fn write_out(c: &mut Client) -> bool {
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(0) => return false,
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(bytes: &[u8]) -> String {
        match parse(bytes) {
            Request::Pending => "pending".into(),
            Request::Closed => "closed".into(),
            Request::Error(status, _) => status[..3].to_string(),
            Request::Metrics { head } => format!("metrics head={head}"),
        }
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        for (request, expected) in [
            (
                &b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                "metrics head=false",
            ),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", "metrics head=false"),
            (b"HEAD /metrics HTTP/1.1\r\n\r\n", "metrics head=true"),
            (b"GET / HTTP/1.1\r\n\r\n", "404"),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", "404"),
            (b"POST /metrics HTTP/1.1\r\n\r\n", "405"),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", "pending"),
            (b"GET /met", "pending"),
            (b"\x00\x01 garbage\r\n\r\n", "400"),
        ] {
            assert_eq!(
                kind(request),
                expected,
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
    }

    #[test]
    fn a_request_past_the_bound_is_refused() {
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_REQUEST + 1, b'a');
        assert_eq!(kind(&long), "431");
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(kind(&many), "431");
    }

    #[test]
    fn answers_close_and_say_their_length() {
        let a = String::from_utf8(answer("200 OK", CONTENT_TYPE, b"abc", false)).expect("utf8");
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("Content-Type: text/plain; version=0.0.4"), "{a}");
        assert!(a.contains("Content-Length: 3\r\n") && a.contains("Connection: close"));
        assert!(a.ends_with("\r\n\r\nabc"));
        let h = String::from_utf8(answer("200 OK", CONTENT_TYPE, b"abc", true)).expect("utf8");
        assert!(h.ends_with("\r\n\r\n"), "HEAD has no body");
        let m = String::from_utf8(answer("405 Method Not Allowed", "t", b"", false)).expect("utf8");
        assert!(m.contains("Allow: GET, HEAD\r\n"));
    }
}
