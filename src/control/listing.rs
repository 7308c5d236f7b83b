//! A `flows` answer written over many turns of the event loop.
//!
//! A full table takes long to format: 65,536 flows made a 13.9 MB answer in
//! about 360 ms, a million flows several seconds, and built at once that is
//! time the packet path stands still. A [`FlowListing`] walks the table a
//! bounded number of slots at a time instead (as the metrics census does)
//! and formats at most a bounded number of flows per step, and the control
//! server steps it only while its client has little output waiting: the
//! loop's turn stays short whatever the table holds, and a client that
//! reads slowly holds at most [`LISTING_ROOM`] bytes plus one step.
//!
//! The answer is the JSON array `flows` always was, byte for byte. Like
//! `conntrack -L` (a netlink dump in many batches), it is not a snapshot: a
//! flow created or removed during the listing may be in it or not; every
//! flow live from the request to the end of the listing is in it once.

use crate::filter::Firewall;
use crate::report::FlowView;
use crate::time::Instant;

use super::request::FlowFilter;

/// Table slots one [`FlowListing::step`] looks at, at most.
pub const LISTING_SLOTS: u32 = 32_768;
/// Flows one [`FlowListing::step`] formats, at most (about 200 bytes and
/// a few microseconds each).
pub const LISTING_FLOWS: usize = 128;
/// A listing is stepped only while less than this waits to be written to
/// its client, bytes.
pub const LISTING_ROOM: usize = 256 << 10;

/// A `flows` answer under way: the filter and where the walk is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowListing {
    filter: FlowFilter,
    /// The next table slot to look at.
    next: u32,
    /// Whether a flow has been written (the next needs a comma).
    any: bool,
    /// Whether the closing bracket has been written.
    done: bool,
}

impl FlowListing {
    /// A listing of the flows `filter` matches, not yet started.
    pub fn new(filter: FlowFilter) -> FlowListing {
        FlowListing {
            filter,
            next: 0,
            any: false,
            done: false,
        }
    }

    /// Whether the whole answer has been written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Append to `out` the next flows (live at `now`) the filter matches:
    /// at most `slots` table slots looked at and `flows` flows written.
    /// The first step writes the opening bracket, the one that reaches the
    /// table's end the closing one; true from then on, and later steps
    /// write nothing.
    pub fn step(
        &mut self,
        fw: &Firewall,
        now: Instant,
        slots: u32,
        flows: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.done {
            return true;
        }
        if self.next == 0 && !self.any {
            out.push(b'[');
        }
        let ct = fw.conntrack();
        let end = u32::try_from(ct.config().max).unwrap_or(u32::MAX);
        let stop = self.next.saturating_add(slots).min(end);
        let mut written = 0;
        while self.next < stop && written < flows {
            let id = self.next;
            self.next += 1;
            let Some(flow) = ct.get(id).filter(|f| f.expires > now) else {
                continue;
            };
            let reply = ct.reply_tuple(flow);
            if !self.filter.matches(flow, &reply) {
                continue;
            }
            // Through a `Value`, so that the keys come in the order (sorted)
            // they always had.
            let Ok(value) = serde_json::to_value(FlowView::of(flow, &reply, now)) else {
                continue;
            };
            if self.any {
                out.push(b',');
            }
            if serde_json::to_writer(&mut *out, &value).is_ok() {
                self.any = true;
            }
            written += 1;
        }
        if self.next >= end {
            out.push(b']');
            self.done = true;
        }
        self.done
    }

    /// The whole answer at once (tests, the fuzz target, small tables).
    pub fn complete(mut self, fw: &Firewall, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        while !self.step(fw, now, u32::MAX, usize::MAX, &mut out) {}
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::control::dispatch::tests::udp;
    use crate::side::Side;

    fn firewall_with(flows: u16) -> Firewall {
        let cfg = Config::embedded_default().expect("default");
        let mut fw = Firewall::new(&cfg);
        let mut answer = [0u8; 256];
        for sport in 0..flows {
            fw.process(
                Side::Lan,
                &mut udp(1000 + sport),
                &mut answer,
                Instant::from_secs(1),
            );
        }
        assert_eq!(fw.conntrack().len(), usize::from(flows));
        fw
    }

    /// The answer of the listing as `flows` answered at once before it:
    /// the JSON of the `FlowView` array, through a `Value`.
    fn at_once(fw: &Firewall, now: Instant, filter: &FlowFilter) -> Vec<u8> {
        let views = crate::report::flows(fw, now, |f, reply| filter.matches(f, reply));
        serde_json::to_vec(&serde_json::to_value(views).expect("value")).expect("json")
    }

    #[test]
    fn small_steps_write_the_answer_at_once_byte_for_byte() {
        let fw = firewall_with(300);
        let now = Instant::from_secs(2);
        for filter in [
            FlowFilter::default(),
            FlowFilter {
                port: Some(1007),
                ..FlowFilter::default()
            },
            FlowFilter {
                port: Some(9),
                ..FlowFilter::default()
            },
        ] {
            let whole = at_once(&fw, now, &filter);
            assert_eq!(FlowListing::new(filter.clone()).complete(&fw, now), whole);
            // One slot, or one flow, a step: many steps, the same bytes.
            for (slots, flows) in [(1, usize::MAX), (u32::MAX, 1), (7, 3)] {
                let mut listing = FlowListing::new(filter.clone());
                let mut out = Vec::new();
                let mut steps = 0;
                while !listing.step(&fw, now, slots, flows, &mut out) {
                    steps += 1;
                    assert!(steps < 1_000_000, "the listing never ends");
                }
                assert_eq!(out, whole, "slots {slots}, flows {flows}");
                assert!(listing.is_done());
                assert!(listing.step(&fw, now, slots, flows, &mut out));
                assert_eq!(out, whole, "a finished listing writes nothing");
            }
        }
        let all: serde_json::Value =
            serde_json::from_slice(&FlowListing::new(FlowFilter::default()).complete(&fw, now))
                .expect("JSON");
        assert_eq!(all.as_array().map(Vec::len), Some(300));
    }

    #[test]
    fn a_step_is_bounded_in_flows_and_slots() {
        let fw = firewall_with(1000);
        let now = Instant::from_secs(2);
        let mut listing = FlowListing::new(FlowFilter::default());
        let mut out = Vec::new();
        listing.step(&fw, now, u32::MAX, 10, &mut out);
        out.push(b']');
        let first: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(first.as_array().map(Vec::len), Some(10));
        // A step of 0 slots looks at nothing.
        let mut rest = Vec::new();
        assert!(!listing.step(&fw, now, 0, usize::MAX, &mut rest));
        assert!(rest.is_empty());
    }

    #[test]
    fn expired_flows_are_not_listed() {
        let fw = firewall_with(5);
        // The default UDP unreplied timeout is 30 s.
        let later = Instant::from_secs(100);
        let out = FlowListing::new(FlowFilter::default()).complete(&fw, later);
        assert_eq!(out, b"[]");
    }
}
