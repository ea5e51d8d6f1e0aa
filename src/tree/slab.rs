//! The tree's node storage: slots named by dense `u32` ids, in fixed-size
//! chunks.
//!
//! A single `Vec` of all slots grows by doubling, and with jemalloc a large
//! `realloc` copies: 28 ms of apply stall at half a million znodes,
//! twice that at a million. Chunks never move, so growing costs one chunk's
//! allocation; a chunk's unused tail is reserved, not written, so it is not
//! resident either.

/// Slots per chunk: 4096 nodes of 80 bytes is 320 KiB.
const CHUNK: usize = 4096;

/// Slots by id; a slot is empty (`None`) once its value is taken.
#[derive(Debug)]
pub struct Slab<T> {
    /// Every chunk but the last is full.
    chunks: Vec<Vec<Option<T>>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { chunks: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Number of slots ever pushed (full or empty).
    pub fn len(&self) -> usize {
        self.chunks.last().map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    /// True if no slot was ever pushed.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The slot of `id`, if it was pushed.
    pub fn slot(&self, id: u32) -> Option<&Option<T>> {
        let id = id as usize;
        self.chunks.get(id / CHUNK)?.get(id % CHUNK)
    }

    /// The slot of `id` to fill or empty, if it was pushed.
    pub fn slot_mut(&mut self, id: u32) -> Option<&mut Option<T>> {
        let id = id as usize;
        self.chunks.get_mut(id / CHUNK)?.get_mut(id % CHUNK)
    }

    /// The value in slot `id`, if there is one.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.slot(id)?.as_ref()
    }

    /// The value in slot `id` to change, if there is one.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slot_mut(id)?.as_mut()
    }

    /// Adds a slot holding `value` and returns its id.
    pub fn push(&mut self, value: T) -> u32 {
        let id = self.len() as u32;
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(Some(value)),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(Some(value));
                self.chunks.push(chunk);
            }
        }
        id
    }

    /// Every full slot with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.chunks.iter().flatten().enumerate().filter_map(|(id, slot)| Some((id as u32, slot.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cross_chunks_and_slots_empty_and_refill() {
        let mut slab = Slab::default();
        for i in 0..(2 * CHUNK + 3) {
            assert_eq!(slab.push(i), i as u32);
        }
        assert_eq!(slab.len(), 2 * CHUNK + 3);
        assert_eq!(slab.get(CHUNK as u32), Some(&CHUNK));
        assert_eq!(slab.get((2 * CHUNK + 2) as u32), Some(&(2 * CHUNK + 2)));
        assert_eq!(slab.get((2 * CHUNK + 3) as u32), None);
        assert_eq!(slab.slot_mut(CHUNK as u32 - 1).and_then(Option::take), Some(CHUNK - 1));
        assert_eq!(slab.get(CHUNK as u32 - 1), None);
        assert_eq!(slab.iter().count(), 2 * CHUNK + 2);
        *slab.slot_mut(CHUNK as u32 - 1).unwrap() = Some(7);
        *slab.get_mut(0).unwrap() += 1;
        let firsts: Vec<_> = slab.iter().take(1).chain(slab.iter().skip(CHUNK - 1).take(1)).collect();
        assert_eq!(firsts, [(0, &1), (CHUNK as u32 - 1, &7)]);
    }
}
