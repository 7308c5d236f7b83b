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
//! The server is non-blocking and driven by the event loop; it never touches
//! the packet path.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::conntrack::flow::Flow;
use crate::conntrack::tuple::Dir;
use crate::wire::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/tunfw.sock";
const MAX_REQUEST: usize = 4096;
const MAX_CLIENTS: usize = 32;
/// An event subscriber further behind than this is disconnected.
const MAX_BACKLOG: usize = 1 << 20;

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

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    answered: bool,
    subscriber: bool,
}

/// The listening socket and its clients.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    clients: HashMap<Token, Client>,
    next_token: usize,
    first_token: usize,
}

impl ControlServer {
    /// Bind `path` (mode 0600). A stale socket file is replaced; a live one
    /// (another tunfw answering) is an error.
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
            path: path.to_path_buf(),
            clients: HashMap::new(),
            next_token: first_token,
            first_token,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Register the listener.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    /// Whether a token belongs to one of this server's clients.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    /// Whether any client is subscribed to events.
    pub fn has_subscribers(&self) -> bool {
        self.clients.values().any(|c| c.subscriber)
    }

    /// Accept pending connections.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS {
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if registry
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        self.clients.insert(
                            token,
                            Client {
                                stream,
                                inbuf: Vec::new(),
                                out: Vec::new(),
                                written: 0,
                                answered: false,
                                subscriber: false,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("control socket accept: {e}");
                    return;
                }
            }
        }
    }

    /// Progress one client; `answer` produces the answer to a request.
    pub fn handle(
        &mut self,
        registry: &Registry,
        token: Token,
        mut answer: impl FnMut(Result<Request, String>) -> Answer,
    ) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if client_step(client, &mut answer) {
            self.close(registry, token);
        }
    }

    /// Send bytes to every event subscriber; slow or gone ones are closed.
    pub fn broadcast(&mut self, registry: &Registry, bytes: &[u8]) {
        let mut gone = Vec::new();
        for (token, c) in self.clients.iter_mut().filter(|(_, c)| c.subscriber) {
            c.out.extend_from_slice(bytes);
            if c.out.len() - c.written > MAX_BACKLOG || flush(c).is_err() {
                gone.push(*token);
            }
        }
        for token in gone {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut c) = self.clients.remove(&token) {
            let _ = registry.deregister(&mut c.stream);
        }
    }
}

/// Write what is pending; `Err` when the peer is gone.
fn flush(c: &mut Client) -> io::Result<()> {
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    c.out.clear();
    c.written = 0;
    Ok(())
}

/// Returns true when the client is finished (answered, gone or failed).
fn client_step(c: &mut Client, answer: &mut impl FnMut(Result<Request, String>) -> Answer) -> bool {
    let mut buf = [0u8; 512];
    if !c.answered {
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    c.inbuf.extend_from_slice(&buf[..n]);
                    if c.inbuf.contains(&b'\n') || c.inbuf.len() > MAX_REQUEST {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !c.inbuf.contains(&b'\n') {
                        return false;
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
        let text = String::from_utf8_lossy(&c.inbuf);
        let line = text.lines().next().unwrap_or("").to_string();
        c.answered = true;
        match answer(Request::parse(&line)) {
            Answer::Once(mut bytes) => {
                bytes.push(b'\n');
                c.out = bytes;
            }
            Answer::Subscribe => c.subscriber = true,
        }
    } else if c.subscriber {
        // A subscriber that hangs up (read returns 0) is done.
        match c.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
    match flush(c) {
        Err(_) => true,
        Ok(()) => !c.subscriber && c.written == 0 && c.out.is_empty(),
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

/// Client side: send `request` to the socket at `path` and return the JSON answer.
pub fn query(path: &Path, request: &str) -> io::Result<serde_json::Value> {
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
