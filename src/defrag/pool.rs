//! The byte arena: fragment data copied into fixed-size chunks, allocated
//! once when the reassembler is made.
//!
//! A fragment's bytes live in a chain of [`CHUNK`]-byte chunks linked
//! through a `next` array; free chunks form one more chain. A chain is
//! allocated and released in time proportional to its length, never with
//! a heap allocation, and the memory a chain accounts for is its chunks'
//! full size (the kernel charges a fragment its skb's truesize the same
//! way: what it holds, not what it carries).
//!
//! Guarantees: no method panics or allocates; a chain handed out is never
//! handed out again until released; `in_use() + free() == capacity()`.

/// Bytes per chunk.
pub const CHUNK: usize = 256;

/// The end of a chain.
pub const NIL: u32 = u32::MAX;

/// See the module documentation.
#[derive(Debug)]
pub struct Pool {
    data: Box<[u8]>,
    next: Box<[u32]>,
    free_head: u32,
    free: usize,
}

/// Chunks needed to hold `len` bytes (at least one).
pub fn chunks_for(len: usize) -> usize {
    len.div_ceil(CHUNK).max(1)
}

impl Pool {
    /// A pool of `chunks` chunks (at most `u32::MAX - 1`), all free.
    pub fn new(chunks: usize) -> Pool {
        let chunks = chunks.min(NIL as usize - 1);
        let next: Box<[u32]> = (0..chunks)
            .map(|i| if i + 1 < chunks { i as u32 + 1 } else { NIL })
            .collect();
        Pool {
            data: vec![0; chunks * CHUNK].into_boxed_slice(),
            next,
            free_head: if chunks > 0 { 0 } else { NIL },
            free: chunks,
        }
    }

    /// Chunks in the pool.
    pub fn capacity(&self) -> usize {
        self.next.len()
    }

    /// Free chunks.
    pub fn free(&self) -> usize {
        self.free
    }

    /// Chunks held by chains.
    pub fn in_use(&self) -> usize {
        self.capacity() - self.free
    }

    /// Copy the concatenation of `parts` into a new chain: its first chunk
    /// and its length in chunks, or `None` (nothing taken) when too few
    /// chunks are free.
    pub fn store(&mut self, parts: &[&[u8]]) -> Option<(u32, usize)> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let need = chunks_for(len);
        if need > self.free {
            return None;
        }
        // Detach the first `need` free chunks as the new chain.
        let head = self.free_head;
        let mut end = head;
        for _ in 1..need {
            end = *self.next.get(end as usize)?;
        }
        self.free_head = *self.next.get(end as usize)?;
        *self.next.get_mut(end as usize)? = NIL;
        self.free -= need;
        // Fill it.
        let mut chunk = head;
        let mut at = 0; // bytes written into `chunk`
        for part in parts {
            let mut part: &[u8] = part;
            while !part.is_empty() {
                if at == CHUNK {
                    chunk = *self.next.get(chunk as usize)?;
                    at = 0;
                }
                let n = part.len().min(CHUNK - at);
                let base = chunk as usize * CHUNK + at;
                self.data
                    .get_mut(base..base + n)?
                    .copy_from_slice(&part[..n]);
                part = &part[n..];
                at += n;
            }
        }
        Some((head, need))
    }

    /// Copy the first `out.len()` bytes of the chain at `head`, from byte
    /// `skip` on, into `out`. Returns false (out partly written) when the
    /// chain is shorter.
    pub fn load(&self, head: u32, skip: usize, out: &mut [u8]) -> bool {
        let mut chunk = head;
        let mut skip = skip;
        while skip >= CHUNK {
            match self.next.get(chunk as usize) {
                Some(&n) => chunk = n,
                None => return false,
            }
            skip -= CHUNK;
        }
        let mut done = 0;
        while done < out.len() {
            let base = chunk as usize * CHUNK + skip;
            let n = (out.len() - done).min(CHUNK - skip);
            let (Some(src), Some(dst)) =
                (self.data.get(base..base + n), out.get_mut(done..done + n))
            else {
                return false;
            };
            dst.copy_from_slice(src);
            done += n;
            skip = 0;
            if done < out.len() {
                match self.next.get(chunk as usize) {
                    Some(&n) => chunk = n,
                    None => return false,
                }
            }
        }
        true
    }

    /// Return the chain at `head` to the free chunks; the number released.
    pub fn release(&mut self, head: u32) -> usize {
        let mut n = 0;
        let mut chunk = head;
        let mut last = NIL;
        while let Some(&next) = self.next.get(chunk as usize) {
            n += 1;
            last = chunk;
            if next == NIL {
                break;
            }
            chunk = next;
        }
        if let Some(tail) = self.next.get_mut(last as usize) {
            *tail = self.free_head;
            self.free_head = head;
            self.free += n;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_release_round_trip() {
        let mut pool = Pool::new(8);
        let a: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let (head, n) = pool.store(&[&a[..10], &a[10..]]).unwrap();
        assert_eq!((n, pool.free(), pool.in_use()), (3, 5, 3));
        let mut out = vec![0; 590];
        assert!(pool.load(head, 10, &mut out));
        assert_eq!(out, &a[10..]);
        let mut tail = [0u8; 4];
        assert!(!pool.load(head, 766, &mut tail), "past the chain");
        let (h2, n2) = pool.store(&[&[7; CHUNK]]).unwrap();
        assert_eq!(n2, 1);
        assert!(pool.store(&[&[0; 5 * CHUNK]]).is_none(), "4 free, 5 needed");
        assert_eq!(pool.release(head), 3);
        assert_eq!(pool.release(h2), 1);
        assert_eq!(pool.free(), 8);
        let (h3, n3) = pool.store(&[&[1; 8 * CHUNK]]).unwrap();
        assert_eq!((n3, pool.free()), (8, 0));
        assert!(
            pool.store(&[&[]]).is_none(),
            "an empty chain still takes a chunk"
        );
        pool.release(h3);
        let (_, n4) = pool.store(&[]).unwrap();
        assert_eq!(n4, 1);
    }
}
