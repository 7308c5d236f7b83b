//! Conntrack events (`conntrack -E`): NEW when a flow is confirmed, UPDATE when
//! its TCP state or its status (replied, assured) changes, DESTROY when it is
//! removed. Events go to a fixed-size ring allocated when enabled; when
//! nobody drains it fast enough the oldest are overwritten and counted as lost.

use serde::Serialize;

use super::tcp::TcpState;
use super::Tuple;
use crate::time::Instant;

/// What happened to a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    /// Confirmed (its first packet was accepted).
    New,
    /// TCP state or status changed.
    Update,
    /// Removed (expired, closed, evicted, killed, flushed).
    Destroy,
}

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Kind.
    pub kind: EventKind,
    /// The flow's original tuple.
    pub tuple: Tuple,
    /// TCP state after the event, for TCP flows.
    pub tcp_state: Option<TcpState>,
    /// A reply has been seen.
    pub replied: bool,
    /// The flow is ASSURED.
    pub assured: bool,
    /// When.
    pub at: Instant,
}

/// The event ring.
#[derive(Debug, Default)]
pub struct EventRing {
    buf: Vec<Event>,
    head: usize,
    len: usize,
    /// Events overwritten before they were drained.
    pub lost: u64,
}

impl EventRing {
    /// Start recording, with room for `capacity` events (allocated now).
    pub fn enable(&mut self, capacity: usize) {
        if self.buf.capacity() == 0 {
            self.buf = Vec::with_capacity(capacity.max(1));
        }
    }

    /// Stop recording and free the ring.
    pub fn disable(&mut self) {
        *self = EventRing {
            lost: self.lost,
            ..EventRing::default()
        };
    }

    /// Whether events are recorded.
    pub fn enabled(&self) -> bool {
        self.buf.capacity() > 0
    }

    /// Record an event (no-op when disabled; never allocates).
    pub fn push(&mut self, event: Event) {
        let cap = self.buf.capacity();
        if cap == 0 {
            return;
        }
        if self.buf.len() < cap {
            self.buf.push(event);
            self.len += 1;
            return;
        }
        let at = (self.head + self.len) % cap;
        self.buf[at] = event;
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.lost += 1;
        } else {
            self.len += 1;
        }
    }

    /// Take every recorded event, oldest first.
    pub fn drain(&mut self, mut f: impl FnMut(&Event)) {
        let cap = self.buf.len();
        for i in 0..self.len {
            f(&self.buf[(self.head + i) % cap]);
        }
        self.head = 0;
        self.len = 0;
        self.buf.clear();
    }
}
