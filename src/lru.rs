//! A bounded least-recently-used map that allocates nothing in the steady state.
//!
//! Entries live in a slab (`Vec` of nodes linked into a recency list by index) and a
//! `HashMap` from key to slab index. Evicting reuses the evicted node in place, removing
//! puts its slot on a free list, and `HashMap::remove` keeps the table's capacity, so once
//! the map has been full (or as full as it gets) neither lookups, inserts nor removes
//! allocate. The `lru` crate allocates a node per insert below capacity, which is why this
//! small one exists.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    entry: Option<(K, V)>,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

pub(crate) struct Lru<K, V, S> {
    map: HashMap<K, u32, S>,
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher + Default> Lru<K, V, S> {
    /// At most `capacity` entries (clamped below `u32::MAX`); 0 keeps nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.min(NIL as usize - 1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Looks `key` up and marks it most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<&V> {
        let index = self.get_index(key)?;
        Some(self.value(index))
    }

    /// Like [`get`](Self::get), returning the slot for [`value`](Self::value) (lets a
    /// caller return the value after a miss path that mutates the map).
    pub(crate) fn get_index(&mut self, key: &K) -> Option<u32> {
        let index = *self.map.get(key)?;
        self.touch(index);
        Some(index)
    }

    /// The value in slot `index`, from [`get_index`](Self::get_index) or
    /// [`insert`](Self::insert) since the last change.
    pub(crate) fn value(&self, index: u32) -> &V {
        match &self.nodes[index as usize].entry {
            Some((_, v)) => v,
            None => unreachable!("slot {index} is empty"),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Inserts or replaces; returns the entry evicted to make room, if any. With capacity
    /// 0 the entry itself comes back.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        self.insert_slot(key, value).1
    }

    /// [`insert`](Self::insert), also returning the new entry's slot (`u32::MAX` when the
    /// capacity is 0 and nothing was stored).
    pub(crate) fn insert_slot(&mut self, key: K, value: V) -> (u32, Option<(K, V)>) {
        if self.capacity == 0 {
            return (NIL, Some((key, value)));
        }
        if let Some(&index) = self.map.get(&key) {
            self.touch(index);
            let node = &mut self.nodes[index as usize];
            let old = node.entry.replace((key, value));
            // Same key: nothing was evicted; drop the old value.
            drop(old);
            return (index, None);
        }
        if self.map.len() == self.capacity {
            let index = self.tail;
            debug_assert_ne!(index, NIL);
            self.unlink(index);
            let evicted = self.nodes[index as usize].entry.replace((key.clone(), value));
            if let Some((old_key, _)) = &evicted {
                self.map.remove(old_key);
            }
            self.map.insert(key, index);
            self.push_front(index);
            return (index, evicted);
        }
        let index = match self.free.pop() {
            Some(index) => {
                self.nodes[index as usize].entry = Some((key.clone(), value));
                index
            }
            None => {
                self.nodes.push(Node { entry: Some((key.clone(), value)), prev: NIL, next: NIL });
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, index);
        self.push_front(index);
        (index, None)
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let index = self.map.remove(key)?;
        self.unlink(index);
        self.free.push(index);
        self.nodes[index as usize].entry.take().map(|(_, v)| v)
    }

    /// Removes everything, handing each value to `recycle` (keeps every allocation).
    pub(crate) fn clear(&mut self, mut recycle: impl FnMut(V)) {
        self.map.clear();
        self.free.clear();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some((_, v)) = node.entry.take() {
                recycle(v);
            }
            self.free.push(i as u32);
        }
        self.head = NIL;
        self.tail = NIL;
    }

    fn touch(&mut self, index: u32) {
        if self.head != index {
            self.unlink(index);
            self.push_front(index);
        }
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next) = {
            let node = &self.nodes[index as usize];
            (node.prev, node.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, index: u32) {
        let old_head = self.head;
        {
            let node = &mut self.nodes[index as usize];
            node.prev = NIL;
            node.next = old_head;
        }
        match old_head {
            NIL => self.tail = index,
            h => self.nodes[h as usize].prev = index,
        }
        self.head = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::collections::VecDeque;

    type Map = Lru<u32, u32, RandomState>;

    #[test]
    fn evicts_least_recently_used() {
        let mut lru = Map::new(2);
        assert_eq!(lru.insert(1, 10), None);
        assert_eq!(lru.insert(2, 20), None);
        assert_eq!(lru.get(&1), Some(&10)); // 2 is now the oldest
        assert_eq!(lru.insert(3, 30), Some((2, 20)));
        assert_eq!(lru.get(&2), None);
        assert_eq!(lru.remove(&1), Some(10));
        assert_eq!(lru.insert(4, 40), None);
        assert_eq!(lru.len(), 2);
        assert_eq!(Map::new(0).insert(1, 1), Some((1, 1)));
    }

    #[test]
    fn agrees_with_a_model() {
        // A VecDeque model, most recent at the front, over a pseudo-random op sequence.
        let mut lru = Map::new(5);
        let mut model: VecDeque<(u32, u32)> = VecDeque::new();
        let mut x = 0x9e37_79b9_u32;
        // Fewer steps under miri (it interprets every one); the map has no unsafe code.
        let steps = if cfg!(miri) { 2_000 } else { 20_000 };
        for step in 0..steps {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let key = x % 9;
            match x % 3 {
                0 => {
                    let got = lru.get(&key).copied();
                    let pos = model.iter().position(|&(k, _)| k == key);
                    let want = pos.map(|p| {
                        let e = model.remove(p).unwrap();
                        model.push_front(e);
                        e.1
                    });
                    assert_eq!(got, want, "step {step}");
                }
                1 => {
                    let evicted = lru.insert(key, step);
                    let want = if let Some(p) = model.iter().position(|&(k, _)| k == key) {
                        model.remove(p);
                        None
                    } else if model.len() == 5 {
                        model.pop_back()
                    } else {
                        None
                    };
                    model.push_front((key, step));
                    assert_eq!(evicted, want, "step {step}");
                }
                _ => {
                    let want = model
                        .iter()
                        .position(|&(k, _)| k == key)
                        .and_then(|p| model.remove(p))
                        .map(|e| e.1);
                    assert_eq!(lru.remove(&key), want, "step {step}");
                }
            }
            assert_eq!(lru.len(), model.len());
        }
    }
}
