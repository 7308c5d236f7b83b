//! The control socket: a Unix stream socket (mode 0600) that answers one
//! request per connection with JSON.
//!
//! Protocol: the client sends one line, `stats`, `flows` or `rules`; the
//! server answers with one JSON document and closes. `tunfw ctl` is the
//! client. The server is non-blocking and driven by the event loop; it never
//! touches the packet path.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// Default control socket path.
pub const DEFAULT_PATH: &str = "/run/tunfw.sock";
const MAX_REQUEST: usize = 1024;
const MAX_CLIENTS: usize = 32;

/// A request the event loop must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Counters.
    Stats,
    /// Conntrack table.
    Flows,
    /// Rules with counters.
    Rules,
    /// Pending expectations.
    Expectations,
}

impl Request {
    /// Parse a request line.
    pub fn parse(line: &str) -> Option<Request> {
        match line.trim() {
            "stats" => Some(Request::Stats),
            "flows" => Some(Request::Flows),
            "rules" => Some(Request::Rules),
            "expectations" => Some(Request::Expectations),
            _ => None,
        }
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    answered: bool,
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

    /// Register the listener.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    /// Whether a token belongs to one of this server's clients.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
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

    /// Progress one client; `answer` produces the JSON for a request.
    pub fn handle(
        &mut self,
        registry: &Registry,
        token: Token,
        mut answer: impl FnMut(Request) -> Vec<u8>,
    ) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        let done = client_step(client, &mut answer);
        if done {
            if let Some(mut c) = self.clients.remove(&token) {
                let _ = registry.deregister(&mut c.stream);
            }
        }
    }
}

/// Returns true when the client is finished (answered or failed).
fn client_step(c: &mut Client, answer: &mut impl FnMut(Request) -> Vec<u8>) -> bool {
    if !c.answered {
        let mut buf = [0u8; 256];
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
        let line = String::from_utf8_lossy(&c.inbuf);
        let line = line.lines().next().unwrap_or("");
        c.out = match Request::parse(line) {
            Some(req) => answer(req),
            None => {
                let msg =
                    format!("unknown request {line:?}: use stats, flows, expectations or rules");
                serde_json::to_vec(&serde_json::json!({ "error": msg })).unwrap_or_default()
            }
        };
        c.out.push(b'\n');
        c.answered = true;
    }
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    true
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: send `request` to the socket at `path` and return the JSON answer.
pub fn query(path: &Path, request: &str) -> io::Result<serde_json::Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reach tunfw's control socket {}: {e}",
                path.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
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
