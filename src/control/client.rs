//! One control client: where it is in its request, what it has sent and
//! what waits to be written to it, and its deadlines.

use std::io::{self, Read, Write};

use mio::net::UnixStream;

use super::limits::*;
use super::listing::{FlowListing, LISTING_ROOM};
use super::request::{error_answer, request_line};
use crate::time::Instant;

/// Where a client is in its one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the request line.
    Request,
    /// Writing a one-shot answer, queued at this time (a listing: its
    /// request, then its last step); closed once written.
    Answer(Instant),
    /// Streaming events; `lost`: events dropped since the last one queued.
    Events { lost: u64 },
}

/// What reading a request gave.
pub(super) enum Input {
    /// No complete line yet.
    Pending,
    /// The peer hung up before sending anything, or the socket failed.
    Closed,
    /// The request line (or why it is not one).
    Line(Result<String, String>),
}

pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) phase: Phase,
    pub(super) inbuf: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) written: usize,
    pub(super) accepted: Instant,
    /// Waiting for the request: when the last byte came. Streaming events:
    /// when a byte was last written, or when output started waiting.
    pub(super) active: Instant,
    /// Streaming traces (not events): the tracer slot.
    pub(super) trace: Option<usize>,
    /// A `flows` answer still being written step by step.
    pub(super) listing: Option<FlowListing>,
}

impl Client {
    pub(super) fn new(stream: UnixStream, now: Instant) -> Client {
        Client {
            stream,
            phase: Phase::Request,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            accepted: now,
            active: now,
            trace: None,
            listing: None,
        }
    }

    /// Output bytes not yet written.
    pub(super) fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// When the client is closed if nothing changes.
    pub(super) fn deadline(&self) -> Instant {
        match self.phase {
            Phase::Request => self.accepted + REQUEST_DEADLINE,
            Phase::Answer(since) if self.listing.is_some() => since + LISTING_DEADLINE,
            Phase::Answer(since) => since + ANSWER_DEADLINE,
            Phase::Events { .. } if self.pending() > 0 => self.active + STALL_DEADLINE,
            Phase::Events { .. } => Instant::NEVER,
        }
    }

    /// Since when the client has been idle, if it may be evicted: it has not
    /// sent its request yet, or it subscribes to events and is behind.
    /// Clients being answered and subscribers keeping up are never evicted.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Request => Some(self.active),
            Phase::Events { lost } if lost > 0 => Some(self.active),
            _ => None,
        }
    }

    /// Read towards the request line: at most [`MAX_REQUEST`] + 1 bytes.
    pub(super) fn read_request(&mut self, now: Instant) -> Input {
        let mut buf = [0u8; 1024];
        loop {
            let room = (MAX_REQUEST + 1 - self.inbuf.len()).min(buf.len());
            match self.stream.read(&mut buf[..room]) {
                Ok(0) if self.inbuf.is_empty() => return Input::Closed,
                // A request may end with the end of the stream instead of a newline.
                Ok(0) => return Input::Line(request_line(&self.inbuf)),
                Ok(n) => {
                    self.active = now;
                    self.inbuf.extend_from_slice(&buf[..n]);
                    if buf[..n].contains(&b'\n') || self.inbuf.len() > MAX_REQUEST {
                        return Input::Line(request_line(&self.inbuf));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Closed,
            }
        }
    }

    /// Whether a subscriber hung up; what it sends is read (a bounded
    /// amount per call) and ignored.
    pub(super) fn hung_up(&mut self) -> bool {
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
    pub(super) fn flush(&mut self, now: Instant) -> io::Result<()> {
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
    pub(super) fn push(&mut self, bytes: &[u8], now: Instant) -> bool {
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

    /// Whether a listing under way may take its next step: less than
    /// [`LISTING_ROOM`] waits to be written.
    pub(super) fn listing_has_room(&self) -> bool {
        self.listing.is_some() && self.pending() < LISTING_ROOM
    }

    /// A subscriber that dropped events and is down to [`RESUME_BACKLOG`]
    /// gets the `LOST` line, then events again.
    pub(super) fn catch_up(&mut self, now: Instant) {
        if let Phase::Events { lost } = self.phase {
            if lost > 0 && self.pending() <= RESUME_BACKLOG && self.push(&lost_line(lost), now) {
                self.phase = Phase::Events { lost: 0 };
            }
        }
    }

    /// Queue one event line for a subscriber; false when it was dropped.
    pub(super) fn enqueue(&mut self, line: &[u8], now: Instant) -> bool {
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
    pub(super) fn progress(&mut self, now: Instant) -> bool {
        if self.flush(now).is_err() {
            return false;
        }
        match self.phase {
            Phase::Request => true,
            Phase::Answer(_) => self.pending() > 0 || self.listing.is_some(),
            Phase::Events { .. } => {
                self.catch_up(now);
                self.flush(now).is_ok()
            }
        }
    }

    /// Tell a client still to send its request why it is closed (one
    /// non-blocking write, best effort). Others get nothing: it would land
    /// in the middle of their output.
    pub(super) fn farewell(&mut self, message: &str) {
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
