//! The queue index: a keyed hash (std's `RandomState`, so an attacker
//! cannot aim fragments at one probe run) of a datagram's key to its
//! queue's slot.
//!
//! Open addressing with linear probing over a power-of-two array at most
//! half full; removal shifts the rest of the probe run back (no
//! tombstones). The array is allocated when the index is made; no method
//! allocates or panics, and a probe visits at most the whole array.

const EMPTY: u32 = u32::MAX;

/// See the module documentation.
#[derive(Debug)]
pub struct Index {
    entries: Box<[u32]>,
    mask: usize,
    len: usize,
}

impl Index {
    /// An empty index for up to `max` queues.
    pub fn for_queues(max: usize) -> Index {
        let slots = (2 * max.max(1)).next_power_of_two().max(8);
        Index {
            entries: vec![EMPTY; slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
        }
    }

    /// Queues indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no queue is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The queue under `hash` for which `is_it` holds.
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.entries.len() {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if is_it(e) {
                return Some(e);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Index queue `id` under `hash`; false (nothing changed) when half
    /// full already. The caller never inserts a key twice.
    pub fn insert(&mut self, hash: u64, id: u32) -> bool {
        if id == EMPTY || self.len >= self.entries.len() / 2 {
            return false;
        }
        let mut i = hash as usize & self.mask;
        for _ in 0..self.entries.len() {
            match self.entries.get_mut(i) {
                Some(e) if *e == EMPTY => {
                    *e = id;
                    self.len += 1;
                    return true;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => return false,
            }
        }
        false
    }

    /// Remove queue `id`, indexed under `hash`; `hash_of(other)` is the
    /// hash of any other indexed queue.
    pub fn remove(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        let mut i = hash as usize & self.mask;
        let mut hole = None;
        for _ in 0..self.entries.len() {
            match self.entries.get(i) {
                Some(&e) if e == id => {
                    hole = Some(i);
                    break;
                }
                Some(&e) if e != EMPTY => i = (i + 1) & self.mask,
                _ => break,
            }
        }
        let Some(mut hole) = hole else {
            return false;
        };
        let mut j = (hole + 1) & self.mask;
        loop {
            let e = self.entries.get(j).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                break;
            }
            let home = hash_of(e) as usize & self.mask;
            // The entry stays when its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let Some(slot) = self.entries.get_mut(hole) {
                    *slot = e;
                }
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        if let Some(slot) = self.entries.get_mut(hole) {
            *slot = EMPTY;
        }
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes that collide in their home slot and wrap around.
    fn hash_for(id: u32) -> u64 {
        u64::from(id % 5) * 7 + 12 // 16 slots: homes 12 (runs wrap), 3, 10, ...
    }

    #[test]
    fn insert_find_remove_agree_with_a_map() {
        let mut index = Index::for_queues(8);
        let mut model: HashMap<u32, ()> = HashMap::new();
        let mut rng = 12345u64;
        for step in 0..20_000u32 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = (rng >> 33) as u32 % 12;
            if model.remove(&id).is_some() {
                assert!(index.remove(hash_for(id), id, hash_for), "step {step}");
            } else if index.insert(hash_for(id), id) {
                model.insert(id, ());
            } else {
                assert_eq!(model.len(), 8, "refused only when half full");
            }
            assert_eq!(index.len(), model.len());
            for probe in 0..12u32 {
                let found = index.find(hash_for(probe), |c| c == probe);
                assert_eq!(found.is_some(), model.contains_key(&probe), "step {step}");
            }
        }
    }
}
