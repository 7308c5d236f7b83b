//! The queue slots: every queue record allocated up front, a free list,
//! and one list per family in creation order, which is deadline order
//! (a queue's lifetime is fixed per family and never extended) and the
//! eviction order.
//!
//! Guarantees: no method allocates or panics; a slot is on exactly one of
//! the free list and its family's age list.

use super::outcome::Family;
use super::queue::Queue;

const NIL: u32 = u32::MAX;

/// See the module documentation.
#[derive(Debug)]
pub struct Slots {
    queues: Box<[Queue]>,
    prev: Box<[u32]>,
    next: Box<[u32]>,
    free: Vec<u32>,
    head: [u32; 2],
    tail: [u32; 2],
    live: usize,
}

impl Slots {
    /// `n` slots, all free.
    pub fn new(n: usize) -> Slots {
        Slots {
            queues: vec![Queue::EMPTY; n].into_boxed_slice(),
            prev: vec![NIL; n].into_boxed_slice(),
            next: vec![NIL; n].into_boxed_slice(),
            free: (0..n as u32).rev().collect(),
            head: [NIL; 2],
            tail: [NIL; 2],
            live: 0,
        }
    }

    /// Slots in use.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.queues.len()
    }

    /// A queue by slot.
    pub fn get(&self, id: u32) -> Option<&Queue> {
        self.queues.get(id as usize)
    }

    /// A queue by slot, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Queue> {
        self.queues.get_mut(id as usize)
    }

    /// Take a free slot, set to `queue`, as the youngest of its family.
    pub fn take(&mut self, queue: Queue) -> Option<u32> {
        let id = self.free.pop()?;
        let f = queue.family as usize;
        *self.queues.get_mut(id as usize)? = queue;
        let old_tail = self.tail[f];
        self.prev[id as usize] = old_tail;
        self.next[id as usize] = NIL;
        match self.next.get_mut(old_tail as usize) {
            Some(n) => *n = id,
            None => self.head[f] = id,
        }
        self.tail[f] = id;
        self.live += 1;
        Some(id)
    }

    /// Free slot `id` (which must be in use).
    pub fn put(&mut self, id: u32) {
        let Some(q) = self.queues.get(id as usize) else {
            return;
        };
        let f = q.family as usize;
        let (p, n) = (self.prev[id as usize], self.next[id as usize]);
        if p == NIL && self.head[f] != id {
            return; // not in use
        }
        match self.next.get_mut(p as usize) {
            Some(x) => *x = n,
            None => self.head[f] = n,
        }
        match self.prev.get_mut(n as usize) {
            Some(x) => *x = p,
            None => self.tail[f] = p,
        }
        self.prev[id as usize] = NIL;
        self.next[id as usize] = NIL;
        if self.free.len() < self.free.capacity() {
            self.free.push(id);
            self.live -= 1;
        }
    }

    /// The oldest queue of `family`.
    pub fn oldest(&self, family: Family) -> Option<u32> {
        let h = self.head[family as usize];
        (h != NIL).then_some(h)
    }

    /// The oldest queue of either family other than `except`.
    pub fn oldest_except(&self, except: Option<u32>) -> Option<u32> {
        let pick = |f: Family| {
            let h = self.oldest(f)?;
            if Some(h) == except {
                let n = *self.next.get(h as usize)?;
                (n != NIL).then_some(n)
            } else {
                Some(h)
            }
        };
        match (pick(Family::V4), pick(Family::V6)) {
            (Some(a), Some(b)) => {
                let older = |x: u32| self.get(x).map(|q| q.created);
                Some(if older(b) < older(a) { b } else { a })
            }
            (a, b) => a.or(b),
        }
    }
}
