//! Conntrack events (`conntrack -E`): NEW when a flow is confirmed, UPDATE when
//! its TCP state or its status (replied, assured) changes, DESTROY when it is
//! removed. Events go to a fixed-size ring allocated when enabled; when
//! nobody drains it fast enough the oldest are overwritten and counted as lost.

use serde::Serialize;

use super::tcp::TcpState;
use super::tuple::Tuple;
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
///
/// Its size is `capacity`, fixed when enabled; `buf` is allocated with room
/// for at least that many events (std may give more room than asked for, so
/// the ring never reads its size from `buf.capacity()`).
#[derive(Debug, Default)]
pub struct EventRing {
    buf: Vec<Event>,
    /// Ring size; 0 while disabled.
    capacity: usize,
    head: usize,
    len: usize,
    /// Events overwritten before they were drained.
    pub lost: u64,
}

impl EventRing {
    /// Start recording, with room for `capacity` events (allocated now). A
    /// ring that is already enabled keeps its size.
    pub fn enable(&mut self, capacity: usize) {
        if self.capacity == 0 {
            let capacity = capacity.max(1);
            self.buf = Vec::with_capacity(capacity);
            self.capacity = capacity;
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
        self.capacity > 0
    }

    /// Record an event (no-op when disabled; never allocates: `buf` grows
    /// only up to `capacity`, which it has room for).
    pub fn push(&mut self, event: Event) {
        let cap = self.capacity;
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn event(n: u16) -> Event {
        Event {
            kind: EventKind::New,
            tuple: Tuple {
                src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                protocol: 17,
                src_id: n,
                dst_id: 53,
            },
            tcp_state: None,
            replied: false,
            assured: false,
            at: Instant::from_millis(u64::from(n)),
        }
    }

    fn drained(ring: &mut EventRing) -> Vec<u16> {
        let mut ids = Vec::new();
        ring.drain(|e| ids.push(e.tuple.src_id));
        ids
    }

    #[test]
    fn overflow_counts_lost_and_keeps_the_newest_in_order() {
        let mut ring = EventRing::default();
        ring.enable(3);
        assert!(ring.enabled());
        for n in 0..8 {
            ring.push(event(n));
        }
        assert_eq!(ring.lost, 5);
        assert_eq!(drained(&mut ring), vec![5, 6, 7]);
        assert!(drained(&mut ring).is_empty());
        // After a drain the ring fills again from empty, still 3 events.
        for n in 10..14 {
            ring.push(event(n));
        }
        assert_eq!(ring.lost, 6);
        assert_eq!(drained(&mut ring), vec![11, 12, 13]);
    }

    #[test]
    fn a_partial_ring_drains_in_order() {
        let mut ring = EventRing::default();
        ring.enable(4);
        ring.push(event(1));
        ring.push(event(2));
        assert_eq!(drained(&mut ring), vec![1, 2]);
        assert_eq!(ring.lost, 0);
    }

    #[test]
    fn enabling_again_keeps_the_size_and_zero_means_one() {
        let mut ring = EventRing::default();
        ring.enable(2);
        ring.enable(10);
        for n in 0..5 {
            ring.push(event(n));
        }
        assert_eq!(drained(&mut ring), vec![3, 4]);
        let mut one = EventRing::default();
        one.enable(0);
        assert!(one.enabled());
        one.push(event(1));
        one.push(event(2));
        assert_eq!((drained(&mut one), one.lost), (vec![2], 1));
    }

    #[test]
    fn push_never_allocates_past_the_ring() {
        let mut ring = EventRing::default();
        ring.enable(5);
        let room = ring.buf.capacity();
        for n in 0..100 {
            ring.push(event(n));
        }
        assert_eq!(ring.buf.capacity(), room);
        assert_eq!(ring.buf.len(), 5);
    }

    #[test]
    fn disable_keeps_lost_and_a_disabled_ring_records_nothing() {
        let mut ring = EventRing::default();
        assert!(!ring.enabled());
        ring.push(event(1));
        assert!(drained(&mut ring).is_empty());
        assert_eq!(ring.lost, 0);
        ring.enable(1);
        ring.push(event(1));
        ring.push(event(2));
        ring.disable();
        assert!(!ring.enabled());
        assert_eq!(ring.lost, 1);
        ring.push(event(3));
        assert!(drained(&mut ring).is_empty());
        assert_eq!(ring.lost, 1);
        // Enabled again, it counts on from there.
        ring.enable(1);
        ring.push(event(4));
        ring.push(event(5));
        assert_eq!((drained(&mut ring), ring.lost), (vec![5], 2));
    }
}
