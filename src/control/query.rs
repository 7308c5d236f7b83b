//! The client side of the control socket, as `tunfw ctl` uses it.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

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
