//! The control socket: a Unix stream socket (mode 0600, owned by the user
//! tunfw runs as) that answers requests with JSON.
//!
//! Protocol: the client sends one line, a verb and `key=value` arguments:
//!
//! | request | answer |
//! |---|---|
//! | `stats` | all counters, one JSON object |
//! | `flows [proto=P] [state=S] [addr=A] [port=N]` | matching flows, a JSON array |
//! | `expectations` | pending expectations |
//! | `rules` | rules and policies with counters |
//! | `flush` | `{"removed": N}`: every flow and expectation removed |
//! | `kill FILTER` | `{"removed": N}`: matching flows removed (a filter is required) |
//! | `reload [FILE]` | `{"ok": ...}` or `{"error": "FILE:LINE:COL: ..."}` |
//! | `events` | one JSON line per flow event until the client hangs up |
//!
//! A request line ends with a newline or with the end of the client's stream.
//!
//! The server is non-blocking and driven by the event loop; it never touches
//! the packet path.
//!
//! A client cannot hold the server: it is bounded in number, time and
//! memory, and a legitimate request is served even while others hold or
//! churn connections.
//!
//! - At most [`MAX_CLIENTS`] clients. A connection whose request has already
//!   arrived is answered at once; one that must wait takes a slot, and at the
//!   bound the client idle longest is evicted (after a last read: a request
//!   that has arrived is served, not evicted). Only clients still to send
//!   their request and subscribers that are behind can be evicted, never one
//!   being answered nor a subscriber keeping up; if none can, the new
//!   connection is refused with an error line.
//! - [`ACCEPTS_PER_WAKEUP`] accepts per wakeup, so a connect flood costs the
//!   packet path one bounded batch per turn.
//! - Deadlines: the request line within [`REQUEST_DEADLINE`] of the accept,
//!   the whole answer written within [`ANSWER_DEADLINE`] of the request, and
//!   a subscriber with output waiting takes some of it within
//!   [`STALL_DEADLINE`]. Clients past their deadline are closed.
//! - Memory: a request is at most [`MAX_REQUEST`] bytes, a subscriber's
//!   backlog at most [`MAX_BACKLOG`], at most [`MAX_SUBSCRIBERS`]
//!   subscribers, and listings (`flows`, `expectations`, `rules`) are
//!   refused while more than [`ANSWER_BUDGET`] bytes of answers wait.
//! - A subscriber that falls behind is not disconnected: events that do not
//!   fit its backlog are dropped and counted, and once it is down to
//!   [`RESUME_BACKLOG`] it gets `{"event":"LOST","lost":N}` (see
//!   [`lost_line`]) and then new events again.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::conntrack::flow::Flow;
use crate::conntrack::tuple::Dir;
use crate::time::Instant;
use crate::wire::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/tunfw.sock";
/// Longest request line, bytes.
pub const MAX_REQUEST: usize = 4096;
/// Clients connected at once.
pub const MAX_CLIENTS: usize = 32;
/// Events subscribers at once: the other slots stay for requests.
pub const MAX_SUBSCRIBERS: usize = 8;
/// Connections accepted per wakeup.
pub const ACCEPTS_PER_WAKEUP: usize = 64;
/// Output waiting for one events subscriber, bytes; events beyond it are
/// dropped and counted.
pub const MAX_BACKLOG: usize = 1 << 20;
/// A subscriber that dropped events gets them again (after the `LOST`
/// line) once its backlog is down to this.
pub const RESUME_BACKLOG: usize = MAX_BACKLOG / 2;
/// Answers (not yet written) beyond which listings are refused, bytes.
pub const ANSWER_BUDGET: usize = 64 << 20;
/// From the accept to a complete request line.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// From the request to the last byte of its answer written.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// A subscriber with output waiting that takes none of it for this long is
/// closed.
pub const STALL_DEADLINE: Duration = Duration::from_secs(30);
/// Accept errors (EMFILE, ...) are logged at most this often.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Which flows a `flows` or `kill` request means. Absent fields match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// TCP state name (`ESTABLISHED`, ...), or `ASSURED` / `UNREPLIED`.
    pub state: Option<String>,
    /// An address on either end of the flow.
    pub addr: Option<IpAddr>,
    /// A port on either end of the flow.
    pub port: Option<u16>,
}

impl FlowFilter {
    /// Parse `key=value` words.
    pub fn parse(words: &[&str]) -> Result<FlowFilter, String> {
        let mut f = FlowFilter::default();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("bad filter {w:?}: use key=value"))?;
            match k {
                "proto" => {
                    f.protocol = Some(match v.to_ascii_lowercase().as_str() {
                        "tcp" => PROTO_TCP,
                        "udp" => PROTO_UDP,
                        "icmp" => PROTO_ICMP,
                        n => n.parse().map_err(|_| format!("bad proto {v:?}"))?,
                    })
                }
                "state" => f.state = Some(v.to_ascii_uppercase()),
                "addr" => f.addr = Some(v.parse().map_err(|_| format!("bad addr {v:?}"))?),
                "port" => f.port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?),
                _ => return Err(format!("unknown filter {k:?}: proto, state, addr, port")),
            }
        }
        Ok(f)
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == FlowFilter::default()
    }

    /// Whether `flow` matches.
    pub fn matches(&self, flow: &Flow) -> bool {
        let t = &flow.tuple(Dir::Original);
        if self.protocol.is_some_and(|p| p != t.protocol) {
            return false;
        }
        if self.addr.is_some_and(|a| a != t.src && a != t.dst) {
            return false;
        }
        let ported = matches!(t.protocol, PROTO_TCP | PROTO_UDP);
        if self
            .port
            .is_some_and(|p| !ported || (p != t.src_id && p != t.dst_id))
        {
            return false;
        }
        match self.state.as_deref() {
            None => true,
            Some("ASSURED") => flow.assured,
            Some("UNREPLIED") => !flow.seen_reply,
            Some(s) => flow.tcp_state().is_some_and(|st| st.as_str() == s),
        }
    }
}

/// A request the event loop must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Counters.
    Stats,
    /// Conntrack table, filtered.
    Flows(FlowFilter),
    /// Pending expectations.
    Expectations,
    /// Rules with counters.
    Rules,
    /// Remove every flow.
    Flush,
    /// Remove matching flows.
    Kill(FlowFilter),
    /// Reload the config (from this file, or the one tunfw started with).
    Reload(Option<PathBuf>),
    /// Subscribe to flow events.
    Events,
}

impl Request {
    /// Parse a request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Err("empty request".into());
        };
        let no_args = |r: Request| {
            if args.is_empty() {
                Ok(r)
            } else {
                Err(format!("{verb} takes no arguments"))
            }
        };
        match verb {
            "stats" => no_args(Request::Stats),
            "expectations" => no_args(Request::Expectations),
            "rules" => no_args(Request::Rules),
            "flush" => no_args(Request::Flush),
            "events" => no_args(Request::Events),
            "flows" => Ok(Request::Flows(FlowFilter::parse(args)?)),
            "kill" => {
                let f = FlowFilter::parse(args)?;
                if f.is_empty() {
                    return Err("kill needs a filter (use flush to remove every flow)".into());
                }
                Ok(Request::Kill(f))
            }
            "reload" => match args {
                [] => Ok(Request::Reload(None)),
                [file] => Ok(Request::Reload(Some(PathBuf::from(file)))),
                _ => Err("reload takes at most one file".into()),
            },
            _ => Err(format!(
                "unknown request {verb:?}: stats, flows, expectations, rules, flush, kill, reload, events"
            )),
        }
    }
}

/// How the event loop answers a request.
pub enum Answer {
    /// One JSON document, then close.
    Once(Vec<u8>),
    /// Keep the connection open and stream events to it.
    Subscribe,
}

/// What the server did with its clients: the `control.*` counters of
/// `ctl stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Clients closed for not sending a complete request line within
    /// [`REQUEST_DEADLINE`].
    pub closed_idle: u64,
    /// Clients closed to make room for a new connection (the longest idle).
    pub evicted: u64,
    /// Events not queued for a subscriber that was behind, summed over the
    /// subscribers; each was told with a `LOST` line.
    pub events_lost: u64,
    /// Clients closed for not taking their output: an answer not read
    /// within [`ANSWER_DEADLINE`], or a subscriber that took nothing for
    /// [`STALL_DEADLINE`].
    pub closed_slow: u64,
    /// Connections or requests turned away at a bound: a new connection when
    /// no client could be evicted, an `events` request beyond
    /// [`MAX_SUBSCRIBERS`], a listing while more than [`ANSWER_BUDGET`] bytes
    /// of answers wait.
    pub refused: u64,
    /// Clients connected now.
    pub clients: u64,
}

/// Where a client is in its one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the request line.
    Request,
    /// Writing a one-shot answer, queued at this time; closed once written.
    Answer(Instant),
    /// Streaming events; `lost`: events dropped since the last one queued.
    Events { lost: u64 },
}

/// What reading a request gave.
enum Input {
    /// No complete line yet.
    Pending,
    /// The peer hung up before sending anything, or the socket failed.
    Closed,
    /// The request line (or why it is not one).
    Line(Result<String, String>),
}

struct Client {
    stream: UnixStream,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    accepted: Instant,
    /// Waiting for the request: when the last byte came. Streaming events:
    /// when a byte was last written, or when output started waiting.
    active: Instant,
}

impl Client {
    fn new(stream: UnixStream, now: Instant) -> Client {
        Client {
            stream,
            phase: Phase::Request,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            accepted: now,
            active: now,
        }
    }

    /// Output bytes not yet written.
    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// When the client is closed if nothing changes.
    fn deadline(&self) -> Instant {
        match self.phase {
            Phase::Request => self.accepted + REQUEST_DEADLINE,
            Phase::Answer(since) => since + ANSWER_DEADLINE,
            Phase::Events { .. } if self.pending() > 0 => self.active + STALL_DEADLINE,
            Phase::Events { .. } => Instant::NEVER,
        }
    }

    /// Since when the client has been idle, if it may be evicted: it has not
    /// sent its request yet, or it subscribes to events and is behind.
    /// Clients being answered and subscribers keeping up are never evicted.
    fn idle_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Request => Some(self.active),
            Phase::Events { lost } if lost > 0 => Some(self.active),
            _ => None,
        }
    }

    /// Read towards the request line: at most [`MAX_REQUEST`] + 1 bytes.
    fn read_request(&mut self, now: Instant) -> Input {
        let mut buf = [0u8; 1024];
        loop {
            let room = (MAX_REQUEST + 1 - self.inbuf.len()).min(buf.len());
            match self.stream.read(&mut buf[..room]) {
                Ok(0) if self.inbuf.is_empty() => return Input::Closed,
                // A request may end with the end of the stream instead of a newline.
                Ok(0) => return Input::Line(self.line()),
                Ok(n) => {
                    self.active = now;
                    self.inbuf.extend_from_slice(&buf[..n]);
                    if buf[..n].contains(&b'\n') || self.inbuf.len() > MAX_REQUEST {
                        return Input::Line(self.line());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Closed,
            }
        }
    }

    /// The first line of what was read.
    fn line(&self) -> Result<String, String> {
        match self.inbuf.iter().position(|&b| b == b'\n') {
            Some(end) => Ok(String::from_utf8_lossy(&self.inbuf[..end])
                .trim_end_matches('\r')
                .to_string()),
            None if self.inbuf.len() > MAX_REQUEST => {
                Err(format!("request longer than {MAX_REQUEST} bytes"))
            }
            None => Ok(String::from_utf8_lossy(&self.inbuf).into_owned()),
        }
    }

    /// Whether a subscriber hung up; what it sends is read (a bounded
    /// amount per call) and ignored.
    fn hung_up(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// Write what is pending; `Err` when the peer is gone.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    self.active = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Queue `bytes` if the output stays within [`MAX_BACKLOG`]. Written
    /// bytes are dropped from the front only when the buffer would pass the
    /// bound, so the copying is paid for by what was written since.
    fn push(&mut self, bytes: &[u8], now: Instant) -> bool {
        if self.out.len() + bytes.len() > MAX_BACKLOG && self.written > 0 {
            self.out.drain(..self.written);
            self.written = 0;
        }
        if self.out.len() + bytes.len() > MAX_BACKLOG {
            return false;
        }
        if self.pending() == 0 {
            // The stall clock starts when output starts waiting.
            self.active = now;
        }
        self.out.extend_from_slice(bytes);
        true
    }

    /// A subscriber that dropped events and is down to [`RESUME_BACKLOG`]
    /// gets the `LOST` line, then events again.
    fn catch_up(&mut self, now: Instant) {
        if let Phase::Events { lost } = self.phase {
            if lost > 0 && self.pending() <= RESUME_BACKLOG && self.push(&lost_line(lost), now) {
                self.phase = Phase::Events { lost: 0 };
            }
        }
    }

    /// Queue one event line for a subscriber; false when it was dropped.
    fn enqueue(&mut self, line: &[u8], now: Instant) -> bool {
        self.catch_up(now);
        let Phase::Events { lost } = self.phase else {
            return false;
        };
        if lost == 0 && self.push(line, now) {
            return true;
        }
        self.phase = Phase::Events { lost: lost + 1 };
        false
    }

    /// Write what waits (and a due `LOST` line). False when the client is
    /// finished: its answer written, or the peer gone.
    fn progress(&mut self, now: Instant) -> bool {
        if self.flush(now).is_err() {
            return false;
        }
        match self.phase {
            Phase::Request => true,
            Phase::Answer(_) => self.pending() > 0,
            Phase::Events { .. } => {
                self.catch_up(now);
                self.flush(now).is_ok()
            }
        }
    }

    /// Tell a client still to send its request why it is closed (one
    /// non-blocking write, best effort). Others get nothing: it would land
    /// in the middle of their output.
    fn farewell(&mut self, message: &str) {
        if self.phase == Phase::Request {
            let mut line = error_answer(message);
            line.push(b'\n');
            let _ = self.stream.write(&line);
        }
    }
}

/// The line a subscriber gets when it catches up after `lost` events were
/// dropped for it.
pub fn lost_line(lost: u64) -> Vec<u8> {
    format!("{{\"event\":\"LOST\",\"lost\":{lost}}}\n").into_bytes()
}

/// The listening socket and its clients.
///
/// Every method that can change a client takes the time (the event loop's
/// injected clock) and returns without blocking; the work of one call is
/// bounded (at most [`ACCEPTS_PER_WAKEUP`] accepts, [`MAX_CLIENTS`] clients,
/// [`MAX_REQUEST`] bytes read per client). [`ControlServer::next_deadline`]
/// says when [`ControlServer::tick`] is due.
pub struct ControlServer {
    listener: UnixListener,
    /// The poll registry, for registering clients (set by `register`).
    registry: Option<Registry>,
    path: PathBuf,
    clients: HashMap<Token, Client>,
    next_token: usize,
    first_token: usize,
    /// The listener may have connections waiting (readiness is edge-triggered).
    accept_pending: bool,
    counters: ControlCounters,
    /// When an accept error was last logged.
    warned: Option<Instant>,
}

impl ControlServer {
    /// Bind `path` (mode 0600). A stale socket file is replaced; a live one
    /// (another tunfw answering) is an error. Client tokens count up from
    /// `first_token`.
    pub fn bind(path: &Path, first_token: usize) -> io::Result<ControlServer> {
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another tunfw answers on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlServer {
            listener,
            registry: None,
            path: path.to_path_buf(),
            clients: HashMap::new(),
            next_token: first_token,
            first_token,
            accept_pending: false,
            counters: ControlCounters::default(),
            warned: None,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Register the listener under `token`; clients are registered with
    /// the same registry.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)?;
        self.registry = Some(registry.try_clone()?);
        Ok(())
    }

    /// Whether a token belongs to one of this server's clients.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    /// Whether any client is subscribed to events.
    pub fn has_subscribers(&self) -> bool {
        self.subscribers() > 0
    }

    fn subscribers(&self) -> usize {
        self.clients
            .values()
            .filter(|c| matches!(c.phase, Phase::Events { .. }))
            .count()
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The most output bytes waiting for one events subscriber (at most
    /// [`MAX_BACKLOG`]).
    pub fn largest_backlog(&self) -> usize {
        self.clients
            .values()
            .filter(|c| matches!(c.phase, Phase::Events { .. }))
            .map(Client::pending)
            .max()
            .unwrap_or(0)
    }

    /// The counters, with the current client count.
    pub fn counters(&self) -> ControlCounters {
        ControlCounters {
            clients: self.clients.len() as u64,
            ..self.counters
        }
    }

    /// The listener said it is readable: connections are accepted at the
    /// next [`ControlServer::tick`] (due at once).
    pub fn listener_ready(&mut self) {
        self.accept_pending = true;
    }

    /// When [`ControlServer::tick`] is next due: at once while connections
    /// may be waiting, else the earliest client deadline.
    pub fn next_deadline(&self) -> Instant {
        if self.accept_pending {
            return Instant::ZERO;
        }
        self.clients
            .values()
            .map(Client::deadline)
            .min()
            .unwrap_or(Instant::NEVER)
    }

    /// Housekeeping at `now`: accept waiting connections (a bounded batch),
    /// close clients whose deadline passed.
    pub fn tick(
        &mut self,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) {
        if self.accept_pending {
            self.accept(now, answer);
        }
        let due: Vec<(Token, Phase)> = self
            .clients
            .iter()
            .filter(|(_, c)| c.deadline() <= now)
            .map(|(t, c)| (*t, c.phase))
            .collect();
        for (token, phase) in due {
            // A last look first: the request or the reader may just have come.
            if !self.step(token, now, answer) {
                self.close(token);
                continue;
            }
            if self.clients.get(&token).is_none_or(|c| c.deadline() > now) {
                continue;
            }
            if phase == Phase::Request {
                self.counters.closed_idle += 1;
                let secs = REQUEST_DEADLINE.as_secs();
                self.close_with(token, &format!("no request line within {secs} s"));
            } else {
                self.counters.closed_slow += 1;
                self.close(token);
            }
        }
    }

    /// Accept up to [`ACCEPTS_PER_WAKEUP`] waiting connections. Each is
    /// served at once if its request has arrived; one that must wait for it
    /// takes a slot, and at [`MAX_CLIENTS`] the longest-idle client makes
    /// room. When the batch ran out, the rest wait for the next tick.
    pub fn accept(
        &mut self,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) {
        self.accept_pending = false;
        for _ in 0..ACCEPTS_PER_WAKEUP {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, now, answer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: the connection stays queued; say so
                    // once in a while, not once per wakeup.
                    if self
                        .warned
                        .is_none_or(|t| now >= t + ACCEPT_WARNING_INTERVAL)
                    {
                        log::warn!("control socket accept: {e}");
                        self.warned = Some(now);
                    }
                    return;
                }
            }
        }
        self.accept_pending = true;
    }

    fn admit(
        &mut self,
        mut stream: UnixStream,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) {
        let Some(registry) = self.registry.as_ref() else {
            return;
        };
        let token = Token(self.next_token);
        self.next_token += 1;
        if registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return;
        }
        self.counters.accepted += 1;
        self.clients.insert(token, Client::new(stream, now));
        if !self.step(token, now, answer) {
            self.close(token);
            return;
        }
        self.make_room(token, now, answer);
    }

    /// Bring the clients back to [`MAX_CLIENTS`] after `newcomer` came:
    /// evict the longest-idle client, after a last read (a request that has
    /// arrived is served, not evicted). With no client to evict, the
    /// newcomer is refused.
    fn make_room(
        &mut self,
        newcomer: Token,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) {
        while self.clients.len() > MAX_CLIENTS {
            let victim = self
                .clients
                .iter()
                .filter(|(t, _)| **t != newcomer)
                .filter_map(|(t, c)| c.idle_since().map(|since| (since, *t)))
                .min();
            let Some((_, victim)) = victim else {
                self.counters.refused += 1;
                self.close_with(newcomer, &format!("{ALL_BUSY}; try later"));
                return;
            };
            if !self.step(victim, now, answer) {
                self.close(victim);
                continue;
            }
            if self
                .clients
                .get(&victim)
                .is_some_and(|c| c.idle_since().is_some())
            {
                self.counters.evicted += 1;
                self.close_with(victim, EVICTED);
            }
        }
    }

    /// Progress one client (readable or writable); `answer` produces the
    /// answer to a request.
    pub fn handle(
        &mut self,
        token: Token,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) {
        if !self.step(token, now, answer) {
            self.close(token);
        }
    }

    /// Read, answer, write. False when the client is finished (answered,
    /// gone or failed).
    fn step(
        &mut self,
        token: Token,
        now: Instant,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) -> bool {
        let Some(c) = self.clients.get_mut(&token) else {
            return false;
        };
        match c.phase {
            Phase::Request => match c.read_request(now) {
                Input::Pending => return true,
                Input::Closed => return false,
                Input::Line(line) => {
                    c.inbuf = Vec::new();
                    let reply = self.respond(line, answer);
                    let Some(c) = self.clients.get_mut(&token) else {
                        return false;
                    };
                    match reply {
                        Answer::Once(mut bytes) => {
                            bytes.push(b'\n');
                            c.out = bytes;
                            c.written = 0;
                            c.phase = Phase::Answer(now);
                        }
                        Answer::Subscribe => {
                            c.phase = Phase::Events { lost: 0 };
                            c.active = now;
                        }
                    }
                }
            },
            Phase::Events { .. } => {
                if c.hung_up() {
                    return false;
                }
            }
            Phase::Answer(_) => {}
        }
        self.clients
            .get_mut(&token)
            .is_some_and(|c| c.progress(now))
    }

    /// The answer to a request line, or a refusal at a bound.
    fn respond(
        &mut self,
        line: Result<String, String>,
        answer: &mut impl FnMut(Result<Request, String>, &ControlCounters) -> Answer,
    ) -> Answer {
        let request = line.and_then(|l| Request::parse(&l));
        match request {
            Ok(Request::Events) if self.subscribers() >= MAX_SUBSCRIBERS => {
                self.counters.refused += 1;
                return Answer::Once(error_answer(&format!(
                    "too many event subscribers ({MAX_SUBSCRIBERS}); try later"
                )));
            }
            Ok(Request::Flows(_) | Request::Expectations | Request::Rules) => {
                let waiting: usize = self
                    .clients
                    .values()
                    .filter(|c| matches!(c.phase, Phase::Answer(_)))
                    .map(Client::pending)
                    .sum();
                if waiting > ANSWER_BUDGET {
                    self.counters.refused += 1;
                    return Answer::Once(error_answer(&format!(
                        "busy: {waiting} bytes of answers wait to be read; try later"
                    )));
                }
            }
            _ => {}
        }
        answer(request, &self.counters())
    }

    /// Send event lines (each ending in a newline) to every subscriber. A
    /// subscriber whose backlog would pass [`MAX_BACKLOG`] gets the lines
    /// that fit; the others are counted and it gets a `LOST` line when it
    /// catches up. Subscribers that hung up are closed.
    pub fn broadcast(&mut self, now: Instant, lines: &[u8]) {
        let mut gone = Vec::new();
        for (token, c) in self.clients.iter_mut() {
            if !matches!(c.phase, Phase::Events { .. }) {
                continue;
            }
            for line in lines.split_inclusive(|&b| b == b'\n') {
                if !c.enqueue(line, now) {
                    self.counters.events_lost += 1;
                }
            }
            if !c.progress(now) {
                gone.push(*token);
            }
        }
        for token in gone {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut c) = self.clients.remove(&token) {
            if let Some(registry) = &self.registry {
                let _ = registry.deregister(&mut c.stream);
            }
        }
    }

    fn close_with(&mut self, token: Token, message: &str) {
        if let Some(c) = self.clients.get_mut(&token) {
            c.farewell(message);
        }
        self.close(token);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An error message as the JSON answer.
pub fn error_answer(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}

/// What an evicted client is told (if it can still read).
pub const EVICTED: &str = "evicted: too many control clients";
/// What a new connection is told when no client could be evicted.
pub const ALL_BUSY: &str = "too many control clients, all busy";
/// Times a client sends a request again when the server turned it away
/// unread (see [`turned_away`]), after 10, 20, 40 and 80 ms.
pub const CLIENT_RETRIES: u32 = 4;

/// Whether `e` means the server closed the connection without reading the
/// request, so that it was not carried out and may be sent again: evicted
/// or refused before the request arrived (the write fails with EPIPE, the
/// read with ECONNRESET as the request was left unread, or the answer is
/// [`EVICTED`] or [`ALL_BUSY`]).
pub fn turned_away(e: &io::Error) -> bool {
    let message = e.to_string();
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    ) || message.starts_with(EVICTED)
        || message.starts_with(ALL_BUSY)
}

/// Client side: send `request` to the socket at `path` and return the JSON
/// answer. A request turned away unread is sent again, up to
/// [`CLIENT_RETRIES`] times.
pub fn query(path: &Path, request: &str) -> io::Result<serde_json::Value> {
    let mut wait = Duration::from_millis(10);
    for _ in 0..CLIENT_RETRIES {
        match query_once(path, request) {
            Err(e) if turned_away(&e) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            answer => return answer,
        }
    }
    query_once(path, request)
}

fn query_once(path: &Path, request: &str) -> io::Result<serde_json::Value> {
    let mut stream = connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad answer: {e}")))?;
    if let Some(err) = value.get("error").and_then(|e| e.as_str()) {
        return Err(io::Error::other(err.to_string()));
    }
    Ok(value)
}

/// Client side: connect to the socket at `path`, with an error that names it.
pub fn connect(path: &Path) -> io::Result<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reach tunfw's control socket {}: {e}",
                path.display()
            ),
        )
    })
}
