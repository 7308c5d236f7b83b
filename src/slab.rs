//! A slot pool: values addressed by a small integer id, with a free list, and
//! a limit on how many it holds. Storage for the limit can be reserved up
//! front, so inserting and removing never allocate (the conntrack table, the
//! expectations and the FTP helper states all use one).

/// Values addressed by `u32` ids.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
    limit: usize,
}

impl<T> Slab<T> {
    /// An empty pool for at most `limit` values, with room for all of them
    /// allocated now.
    pub fn with_limit(limit: usize) -> Slab<T> {
        Slab {
            slots: Vec::with_capacity(limit),
            free: Vec::with_capacity(limit),
            len: 0,
            limit,
        }
    }

    /// Raise the limit (allocating the room now); a lower limit only stops
    /// new insertions until values are removed.
    pub fn set_limit(&mut self, limit: usize) {
        if limit > self.slots.capacity() {
            self.slots.reserve_exact(limit - self.slots.len());
            self.free.reserve_exact(limit - self.free.len());
        }
        self.limit = limit;
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots ever used: ids are below this.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Store a value; `Err` gives it back when the pool is at its limit.
    pub fn insert(&mut self, value: T) -> Result<u32, T> {
        if self.len >= self.limit {
            return Err(value);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[id as usize] = Some(value);
        self.len += 1;
        Ok(id)
    }

    /// Take a value out.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        self.len -= 1;
        Some(value)
    }

    /// A value by id.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    /// A value by id, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Every value with its id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }
}
