//! Expiry bookkeeping: a lower bound of the earliest deadline, and the
//! sweep that visits the flow pool in bounded steps, so that expiring a
//! large table never pauses the event loop for long. The table
//! ([`super::table::Conntrack::collect_expired`]) drives it and removes
//! what it finds expired.

use crate::time::Instant;

/// Where the sweep stands.
#[derive(Clone, Copy, Debug)]
pub struct ExpiryState {
    /// Next slot the sweep looks at.
    cursor: usize,
    /// A sweep is under way.
    in_pass: bool,
    /// A lower bound of every flow's expiry.
    earliest: Instant,
    /// The earliest expiry seen (or noted) during the current sweep.
    pass_min: Instant,
}

impl Default for ExpiryState {
    fn default() -> Self {
        ExpiryState {
            cursor: 0,
            in_pass: false,
            earliest: Instant::NEVER,
            pass_min: Instant::NEVER,
        }
    }
}

impl ExpiryState {
    /// Remember that some flow expires at `at`.
    pub fn note(&mut self, at: Instant) {
        self.earliest = self.earliest.min(at);
        self.pass_min = self.pass_min.min(at);
    }

    /// When the sweep has work next: `now` while a pass is under way, else
    /// the lower bound of the earliest expiry (`NEVER` when `empty`).
    pub fn deadline(&self, now: Instant, empty: bool) -> Instant {
        if self.in_pass {
            now
        } else if empty {
            Instant::NEVER
        } else {
            self.earliest
        }
    }

    /// The slots to look at in this step, at most `slots` of `slot_count`,
    /// starting a pass when one is due at `now`; `None` when none is. Each
    /// step must be followed by [`ExpiryState::advance`].
    pub fn step(
        &mut self,
        now: Instant,
        empty: bool,
        slots: usize,
        slot_count: usize,
    ) -> Option<core::ops::Range<usize>> {
        if !self.in_pass {
            if now < self.earliest || empty {
                return None;
            }
            self.in_pass = true;
            self.cursor = 0;
            self.pass_min = Instant::NEVER;
        }
        Some(self.cursor..(self.cursor + slots).min(slot_count))
    }

    /// The step looked at slots up to (not including) `next`, and saw live
    /// flows expiring no earlier than `live_min`; a pass that reached
    /// `slot_count` ends.
    pub fn advance(&mut self, next: usize, live_min: Instant, slot_count: usize) {
        self.cursor = next;
        self.pass_min = self.pass_min.min(live_min);
        if self.cursor >= slot_count {
            self.in_pass = false;
            self.earliest = self.pass_min;
        }
    }
}
