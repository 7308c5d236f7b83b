//! The listening socket and its clients, driven by the event loop.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::client::{Client, Input, Phase};
pub use super::counters::ControlCounters;
use super::limits::*;
use super::listing::FlowListing;
use super::query::{ALL_BUSY, EVICTED};
use super::request::{error_answer, Request};
use crate::time::Instant;

/// How the event loop answers a request.
pub enum Answer {
    /// One JSON document, then close.
    Once(Vec<u8>),
    /// A `flows` answer: written step by step (see
    /// [`ControlServer::fill_listings`]), then close.
    Listing(FlowListing),
    /// Keep the connection open and stream events to it.
    Subscribe,
    /// Keep the connection open and stream the traces of tracer slot N.
    Trace(usize),
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
    /// Tracer slots of trace subscribers closed since the last
    /// [`ControlServer::take_closed_traces`].
    closed_traces: Vec<usize>,
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
            closed_traces: Vec::new(),
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
            .filter(|c| matches!(c.phase, Phase::Events { .. }) && c.trace.is_none())
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

    /// When [`ControlServer::tick`] (and [`ControlServer::fill_listings`])
    /// is next due: at once while connections may be waiting or a listing
    /// can take a step, else the earliest client deadline.
    pub fn next_deadline(&self) -> Instant {
        if self.accept_pending || self.clients.values().any(Client::listing_has_room) {
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
                        Answer::Listing(listing) => {
                            c.out = Vec::new();
                            c.written = 0;
                            c.phase = Phase::Answer(now);
                            c.listing = Some(listing);
                        }
                        Answer::Subscribe => {
                            c.phase = Phase::Events { lost: 0 };
                            c.active = now;
                        }
                        Answer::Trace(slot) => {
                            c.phase = Phase::Events { lost: 0 };
                            c.active = now;
                            c.trace = Some(slot);
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
            Ok(Request::Flows(_) | Request::Expectations | Request::Rules | Request::Metrics) => {
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

    /// The next step of every `flows` listing whose client has less than
    /// [`LISTING_ROOM`](super::LISTING_ROOM) waiting: `fill` appends it to
    /// the client's output and says whether the listing is done. A done
    /// listing's answer ends with a newline; its client has
    /// [`ANSWER_DEADLINE`] from then to take the rest, and is closed once
    /// it has. The work of a call is bounded by what `fill` does, once per
    /// client ([`MAX_CLIENTS`] at most).
    pub fn fill_listings(
        &mut self,
        now: Instant,
        fill: &mut impl FnMut(&mut FlowListing, &mut Vec<u8>) -> bool,
    ) {
        let mut gone = Vec::new();
        for (token, c) in self.clients.iter_mut() {
            if !c.listing_has_room() {
                continue;
            }
            if c.written > 0 {
                c.out.drain(..c.written);
                c.written = 0;
            }
            let Some(listing) = c.listing.as_mut() else {
                continue;
            };
            if fill(listing, &mut c.out) {
                c.out.push(b'\n');
                c.listing = None;
                c.phase = Phase::Answer(now);
            }
            if !c.progress(now) {
                gone.push(*token);
            }
        }
        for token in gone {
            self.close(token);
        }
    }

    /// Send event lines (each ending in a newline) to every subscriber. A
    /// subscriber whose backlog would pass [`MAX_BACKLOG`] gets the lines
    /// that fit; the others are counted and it gets a `LOST` line when it
    /// catches up. Subscribers that hung up are closed.
    pub fn broadcast(&mut self, now: Instant, lines: &[u8]) {
        let mut gone = Vec::new();
        for (token, c) in self.clients.iter_mut() {
            if !matches!(c.phase, Phase::Events { .. }) || c.trace.is_some() {
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

    /// Queue `line` (one line, with its newline) for the trace subscriber
    /// of tracer `slot`, as [`ControlServer::broadcast`] does for events.
    pub fn send_trace(&mut self, now: Instant, slot: usize, line: &[u8]) {
        let Some((&token, c)) = self.clients.iter_mut().find(|(_, c)| c.trace == Some(slot)) else {
            return;
        };
        if !c.enqueue(line, now) {
            self.counters.events_lost += 1;
        }
        if !c.progress(now) {
            self.close(token);
        }
    }

    /// The tracer slots of trace subscribers closed since the last call:
    /// the event loop removes their tracers.
    pub fn take_closed_traces(&mut self) -> Vec<usize> {
        core::mem::take(&mut self.closed_traces)
    }

    fn close(&mut self, token: Token) {
        if let Some(mut c) = self.clients.remove(&token) {
            if let Some(slot) = c.trace {
                self.closed_traces.push(slot);
            }
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
