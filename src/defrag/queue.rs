//! One datagram's queue: its fragments, the runs they form, and the
//! insertion rules of Linux's `ip_frag_queue` / `nf_ct_frag6_queue` and
//! `inet_frag_queue_insert`.
//!
//! Fragments are kept in arrival order (reassembly copies each to its own
//! offset, so order does not matter there); the *runs* are kept sorted. A
//! run is what the kernel's rb-tree holds: fragments that arrived one
//! after another at the tail, each starting where the previous one ended.
//! A fragment landing inside one run is a duplicate (dropped alone), one
//! that touches queued bytes otherwise is an overlap (the datagram is
//! discarded, RFC 5722); a fragment placed by the binary search always
//! starts a run of its own, as in the kernel, so whether a fragment
//! spanning two earlier ones is a duplicate depends on how they arrived.
//!
//! Guarantees: [`Queue::check`] changes nothing; [`Queue::commit`] of a
//! plan `check` returned keeps the runs sorted and disjoint, the fragments
//! within `[0, len)`, `meat` equal to the bytes queued, and at most
//! [`MAX_FRAGMENTS`] fragments; work per fragment is a binary search and
//! a shift of at most 64 entries. Nothing panics.

use super::config::MAX_FRAGMENTS;
use super::fragment::{First, Incoming, Key};
use super::outcome::{Family, FragDrop};
use super::pool::NIL;
use crate::time::Instant;

/// A queued fragment: its data's place in the datagram and its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frag {
    /// Offset of its first data byte (at most 65,528).
    pub start: u16,
    /// Its data bytes (at most 65,535).
    pub len: u16,
    /// Its chain in the pool (for the first fragment: header, then data).
    pub chain: u32,
}

impl Frag {
    /// Offset after its last data byte: beyond 65,535 for an IPv4
    /// fragment that makes its datagram oversize.
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.len)
    }
}

/// Offsets of a run: 32 bits, as an IPv4 fragment may end past 65,535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u32,
    end: u32,
}

/// A family's answers where Linux's two reassemblers differ.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// The highest end a fragment may have; a fragment beyond it is
    /// dropped alone (IPv6). IPv4 has none: its datagram is found
    /// oversize at completion.
    pub max_end: u32,
    /// A last-fragment inconsistency discards the datagram.
    pub corrupt_discards: bool,
    /// A fragment without data discards the datagram.
    pub empty_discards: bool,
}

/// Where an accepted fragment goes among the runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// It extends the last run.
    Append,
    /// It is a new run at this index.
    NewRun(usize),
}

/// What [`Queue::commit`] needs to add a fragment [`Queue::check`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    start: u32,
    end: u32,
    len: u32,
    last_in: bool,
    place: Place,
}

/// A refused fragment: why, and whether its datagram is discarded too.
pub type Refusal = (FragDrop, bool);

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Queue {
    /// The datagram's key.
    pub key: Key,
    /// The key's hash (the index needs it to remove the queue).
    pub hash: u64,
    /// Its family.
    pub family: Family,
    /// When its first fragment came.
    pub created: Instant,
    /// When it expires.
    pub deadline: Instant,
    /// Payload bytes the datagram has, as far as known (`q.len`).
    pub len: u32,
    /// Payload bytes queued (`q.meat`).
    pub meat: u32,
    /// The first fragment (offset 0) is queued.
    pub first_in: bool,
    /// The last fragment (M clear) is queued.
    pub last_in: bool,
    /// The largest fragment queued, header included.
    pub max_size: u32,
    /// The largest IPv4 fragment queued with DF set.
    pub max_df_size: u32,
    /// The OR of `1 << ECN` of every fragment queued.
    pub ecn: u8,
    /// What the first fragment's header said, once it is queued.
    pub first: First,
    frags: [Frag; MAX_FRAGMENTS],
    nfrags: u8,
    runs: [Run; MAX_FRAGMENTS],
    nruns: u8,
}

impl Queue {
    /// A queue with nothing in it.
    pub const EMPTY: Queue = Queue {
        key: Key {
            side: 0,
            family: 0,
            protocol: 0,
            ident: 0,
            src: [0; 16],
            dst: [0; 16],
        },
        hash: 0,
        family: Family::V4,
        created: Instant::ZERO,
        deadline: Instant::ZERO,
        len: 0,
        meat: 0,
        first_in: false,
        last_in: false,
        max_size: 0,
        max_df_size: 0,
        ecn: 0,
        first: First::NONE,
        frags: [Frag {
            start: 0,
            len: 0,
            chain: NIL,
        }; MAX_FRAGMENTS],
        nfrags: 0,
        runs: [Run { start: 0, end: 0 }; MAX_FRAGMENTS],
        nruns: 0,
    };

    /// The fragments queued, in arrival order.
    pub fn frags(&self) -> &[Frag] {
        self.frags.get(..usize::from(self.nfrags)).unwrap_or(&[])
    }

    /// Every byte of the datagram is queued.
    pub fn is_complete(&self) -> bool {
        self.first_in && self.last_in && self.meat == self.len
    }

    /// Whether a fragment covering `[inc.start, inc.end)` may join, in the
    /// kernel's order of checks: its end against `policy.max_end`; a last
    /// fragment must not end before queued bytes nor elsewhere than an
    /// earlier last fragment; a fragment with M set must end on a multiple
    /// of 8 (IPv4 rounded it already) and not beyond a known last
    /// fragment; it must carry data; then duplicates and overlaps; then
    /// the fragment cap.
    pub fn check(
        &self,
        policy: &Policy,
        inc: &Incoming,
        max_frags: usize,
    ) -> Result<Plan, Refusal> {
        let (start, end) = (inc.start, inc.end);
        if end > policy.max_end {
            return Err((FragDrop::Oversize, false));
        }
        let (mut len, mut last_in) = (self.len, self.last_in);
        if !inc.more {
            if end < len || (last_in && end != len) {
                return Err((FragDrop::Corrupt, policy.corrupt_discards));
            }
            last_in = true;
            len = end;
        } else {
            if end & 7 != 0 {
                return Err((FragDrop::BadLength, true));
            }
            if end > len {
                if last_in {
                    return Err((FragDrop::Corrupt, policy.corrupt_discards));
                }
                len = end;
            }
        }
        if end <= start {
            return Err((FragDrop::Empty, policy.empty_discards));
        }
        let place = self.place(start, end)?;
        if usize::from(self.nfrags) >= max_frags.min(MAX_FRAGMENTS) {
            return Err((FragDrop::TooMany, true));
        }
        Ok(Plan {
            start,
            end,
            len,
            last_in,
            place,
        })
    }

    /// `inet_frag_queue_insert`: past the last run's end it appends to that
    /// run or starts a new one (an overlap if it starts inside it);
    /// otherwise a binary search over the runs finds the one run it could
    /// touch.
    fn place(&self, start: u32, end: u32) -> Result<Place, Refusal> {
        let runs = self.runs.get(..usize::from(self.nruns)).unwrap_or(&[]);
        let Some(last) = runs.last() else {
            return Ok(Place::NewRun(0));
        };
        let last_end = last.end;
        if last_end < end {
            return match start.cmp(&last_end) {
                core::cmp::Ordering::Less => Err((FragDrop::Overlap, true)),
                core::cmp::Ordering::Equal => Ok(Place::Append),
                core::cmp::Ordering::Greater => Ok(Place::NewRun(runs.len())),
            };
        }
        let i = runs.partition_point(|r| r.end <= start);
        if let Some(r) = runs.get(i) {
            if r.start < end {
                let inside = start >= r.start && end <= r.end;
                return Err(if inside {
                    (FragDrop::Duplicate, false)
                } else {
                    (FragDrop::Overlap, true)
                });
            }
        }
        Ok(Place::NewRun(i))
    }

    /// Add the fragment `plan` (from [`Queue::check`] on this queue, with
    /// nothing changed since) whose bytes are in `chain`; false (nothing
    /// changed) for a plan that does not fit the queue.
    pub fn commit(&mut self, plan: &Plan, chain: u32) -> bool {
        let (start, end) = (plan.start, plan.end);
        let n = usize::from(self.nruns);
        let nfrags = usize::from(self.nfrags);
        let (Ok(short_start), Ok(len)) = (u16::try_from(start), u16::try_from(end - start)) else {
            return false;
        };
        if nfrags >= MAX_FRAGMENTS || n >= MAX_FRAGMENTS {
            return false;
        }
        match plan.place {
            Place::Append if n > 0 => self.runs[n - 1].end = end,
            Place::NewRun(i) if i <= n => {
                self.runs.copy_within(i..n, i + 1);
                self.runs[i] = Run { start, end };
                self.nruns += 1;
            }
            _ => return false,
        }
        self.frags[nfrags] = Frag {
            start: short_start,
            len,
            chain,
        };
        self.nfrags += 1;
        self.len = plan.len;
        self.last_in = plan.last_in;
        self.meat += plan.end - plan.start;
        if plan.start == 0 {
            self.first_in = true;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Policy = Policy {
        max_end: 65535,
        corrupt_discards: false,
        empty_discards: false,
    };

    fn add(q: &mut Queue, start: u32, end: u32, more: bool) -> Result<(), Refusal> {
        let plan = q.check(&OPEN, &Incoming { start, end, more }, 64)?;
        assert!(q.commit(&plan, 0));
        Ok(())
    }

    #[test]
    fn runs_decide_duplicates_by_arrival_order() {
        // In order: [0,16) and [16,32) are one run; [8,24) lies inside it.
        let mut q = Queue::EMPTY;
        add(&mut q, 0, 16, true).unwrap();
        add(&mut q, 16, 32, true).unwrap();
        assert_eq!(add(&mut q, 8, 24, true), Err((FragDrop::Duplicate, false)));
        // Reversed: two runs, and [8,24) touches both.
        let mut q = Queue::EMPTY;
        add(&mut q, 16, 32, true).unwrap();
        add(&mut q, 0, 16, true).unwrap();
        assert_eq!(add(&mut q, 8, 24, true), Err((FragDrop::Overlap, true)));
        assert_eq!(add(&mut q, 0, 16, true), Err((FragDrop::Duplicate, false)));
        assert_eq!((q.meat, q.len, q.frags().len()), (32, 32, 2));
    }

    #[test]
    fn tail_overlap_and_gaps() {
        let mut q = Queue::EMPTY;
        add(&mut q, 16, 24, true).unwrap();
        assert_eq!(add(&mut q, 20, 32, true), Err((FragDrop::Overlap, true)));
        add(&mut q, 32, 40, false).unwrap();
        add(&mut q, 0, 8, true).unwrap();
        assert!(!q.is_complete());
        add(&mut q, 8, 16, true).unwrap();
        add(&mut q, 24, 32, true).unwrap();
        assert!(q.is_complete());
    }
}
