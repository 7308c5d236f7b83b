//! The flow index: a keyed hash of a flow's key to the flow's slot, in 4
//! bytes per entry.
//!
//! Open addressing with linear probing over a power-of-two array at most
//! half full. An entry is a 25-bit reference (the flow's slot id and one bit
//! saying which of its keys the entry files: a translated flow is filed
//! under the key of each of its tuples, see [`super::table`]) and 7 more bits
//! of its hash, so a probe rarely touches a flow that is not the one sought;
//! the caller confirms a candidate by comparing the flow's own tuples. Removal
//! shifts the rest of the probe run back (no tombstones), so the table
//! never degrades. The array is allocated when the index is made or grown,
//! never on insert or remove, and no method panics.

/// Most flows an index can hold: slot ids have 24 bits.
pub const MAX_FLOWS: usize = (1 << 24) - 1;

const EMPTY: u32 = u32::MAX;
/// Bits of an entry's reference (a slot id and a key bit).
const ID_BITS: u32 = 25;
const ID_MASK: u32 = (1 << ID_BITS) - 1;

/// See the module documentation.
#[derive(Debug)]
pub struct FlowIndex {
    entries: Vec<u32>,
    mask: usize,
    len: usize,
}

fn tag(hash: u64) -> u32 {
    (hash >> (64 - (32 - ID_BITS))) as u32
}

impl FlowIndex {
    /// An empty index for up to `max` entries (at most twice
    /// [`MAX_FLOWS`]: a flow has one or two).
    pub fn for_flows(max: usize) -> FlowIndex {
        let slots = (2 * max.clamp(1, 2 * MAX_FLOWS))
            .next_power_of_two()
            .max(16);
        FlowIndex {
            entries: vec![EMPTY; slots],
            mask: slots - 1,
            len: 0,
        }
    }

    /// How many entries it can hold while staying at most half full.
    pub fn capacity(&self) -> usize {
        (self.entries.len() / 2).min(2 * MAX_FLOWS)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no flow is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The reference filed under key hash `hash` for which `is_it(reference)` holds.
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let want = tag(hash);
        let mut i = hash as usize & self.mask;
        for _ in 0..self.entries.len() {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if e >> ID_BITS == want && is_it(e & ID_MASK) {
                return Some(e & ID_MASK);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// File the reference `id` under `hash`. Returns false (and changes
    /// nothing) when the index is at capacity or `id` does not fit in 25
    /// bits; the caller never inserts a key twice.
    pub fn insert(&mut self, hash: u64, id: u32) -> bool {
        if self.len >= self.capacity() || id > ID_MASK || id == ID_MASK {
            return false;
        }
        let mut i = hash as usize & self.mask;
        for _ in 0..self.entries.len() {
            match self.entries.get_mut(i) {
                Some(e) if *e == EMPTY => {
                    *e = tag(hash) << ID_BITS | id;
                    self.len += 1;
                    return true;
                }
                Some(_) => i = (i + 1) & self.mask,
                None => return false,
            }
        }
        false
    }

    /// Remove the reference `id`, filed under `hash`. `hash_of(other)` gives
    /// the key hash any other reference is filed under (entries behind it
    /// move back).
    pub fn remove(&mut self, hash: u64, id: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        let wanted = tag(hash) << ID_BITS | id;
        let Some(mut hole) = self.position(hash, wanted) else {
            return false;
        };
        let mut j = (hole + 1) & self.mask;
        loop {
            let e = self.entries.get(j).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                break;
            }
            let home = hash_of(e & ID_MASK) as usize & self.mask;
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

    fn position(&self, hash: u64, entry: u32) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        for _ in 0..self.entries.len() {
            let e = *self.entries.get(i)?;
            if e == EMPTY {
                return None;
            }
            if e == entry {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes chosen to collide in home slot and tag, and to wrap around.
    fn hash_for(id: u32) -> u64 {
        let home = u64::from(id % 5) * 7 + 28; // 32 slots: homes 28 (runs wrap), 3, 10, 17, 24
        let tag = u64::from(id % 3);
        tag << 57 | home
    }

    #[test]
    fn insert_find_remove_agree_with_a_map() {
        let mut index = FlowIndex::for_flows(12);
        let mut model: HashMap<u32, u64> = HashMap::new();
        let mut rng = 12345u64;
        for step in 0..20_000u32 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = (rng >> 33) as u32 % 20;
            let h = hash_for(id);
            if model.remove(&id).is_some() {
                assert!(index.remove(h, id, hash_for), "step {step}: remove {id}");
            } else if index.insert(h, id) {
                model.insert(id, h);
            } else {
                assert_eq!(model.len(), index.capacity(), "refused only when full");
            }
            assert_eq!(index.len(), model.len());
            for probe in 0..20u32 {
                let found = index.find(hash_for(probe), |c| c == probe);
                assert_eq!(
                    found.is_some(),
                    model.contains_key(&probe),
                    "step {step} id {probe}"
                );
            }
        }
    }

    #[test]
    fn bounds() {
        let mut index = FlowIndex::for_flows(1);
        assert_eq!(index.capacity(), 8);
        assert!(
            !index.insert(1, ID_MASK),
            "the empty marker's id is refused"
        );
        assert!(!index.remove(1, 3, |_| 1), "absent");
        assert_eq!(index.find(1, |_| true), None);
    }
}
