//! A bounded map with O(1) lookup, insert and eviction, in two segments
//! (segmented LRU): new entries enter *probation*; the owner promotes an
//! entry to *protected* once it has shown it is not a one-off (e.g. seen in
//! two different ticks). Eviction takes the least recently used probation
//! entry, so a spoofed flood, which creates a stream of one-off keys, churns
//! probation only and cannot flush the protected entries (the baselines of
//! real services and networks).
//!
//! Entries live in a slab threaded by two intrusive doubly linked lists; a
//! `HashMap` maps keys to slots. Once full, an eviction reuses the evicted
//! slot, so the steady state does not allocate.
//!
//! The map hashes with foldhash, seeded per process, not std's SipHash:
//! every sample looks up four keys here, and SipHash was a fifth of the
//! flood detector's time. An attacker picks the source-prefix keys, but
//! without the seed cannot aim collisions, and the map is bounded.

use std::collections::HashMap;
use std::hash::Hash;

use foldhash::fast::RandomState;

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
    protected: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

#[derive(Debug)]
pub struct SegmentedLru<K, V> {
    index: HashMap<K, u32, RandomState>,
    slots: Vec<Slot<K, V>>,
    probation: List,
    protected: List,
    cap: usize,
    protected_cap: usize,
    evictions: u64,
}

impl<K: Hash + Eq + Copy, V> SegmentedLru<K, V> {
    /// Per-entry overhead beyond `K` and `V`: list links and flag in the
    /// slot, and the hash map's `(K, u32)` plus a control byte at 7/8 load.
    pub const OVERHEAD_BYTES: usize = 12 + (std::mem::size_of::<(K, u32)>() + 1) * 8 / 7;

    /// A map of at most `cap` entries (at least 2), of which at most 80 % are protected.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(2);
        SegmentedLru {
            index: HashMap::with_capacity_and_hasher(cap.min(4096), RandomState::default()),
            slots: Vec::with_capacity(cap.min(4096)),
            probation: List::EMPTY,
            protected: List::EMPTY,
            cap,
            protected_cap: (cap * 4 / 5).max(1),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Entries evicted to stay under the cap.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Entries in the protected segment.
    pub fn protected_len(&self) -> usize {
        self.protected.len
    }

    /// The slot of `key`, without changing recency.
    pub fn find(&self, key: &K) -> Option<u32> {
        self.index.get(key).copied()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).and_then(|i| self.value(i))
    }

    pub fn value(&self, slot: u32) -> Option<&V> {
        self.slots.get(slot as usize).map(|s| &s.value)
    }

    pub fn value_mut(&mut self, slot: u32) -> Option<&mut V> {
        self.slots.get_mut(slot as usize).map(|s| &mut s.value)
    }

    /// Calls `f` on every (key, value), in no particular order, without
    /// changing the recency order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&K, &mut V)) {
        for &i in self.index.values() {
            if let Some(s) = self.slots.get_mut(i as usize) {
                f(&s.key, &mut s.value);
            }
        }
    }

    /// Every (key, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.index
            .values()
            .filter_map(|&i| self.slots.get(i as usize).map(|s| (&s.key, &s.value)))
    }

    /// Finds `key` (marking it most recently used in its segment) or inserts
    /// `make()`, evicting the least recently used entry when full. Returns
    /// the slot and whether it was inserted.
    pub fn touch_or_insert(&mut self, key: K, make: impl FnOnce() -> V) -> (u32, bool) {
        if let Some(&i) = self.index.get(&key) {
            let protected = self.slots[i as usize].protected;
            self.unlink(i);
            self.push_front(i, protected);
            return (i, false);
        }
        let i = if self.slots.len() < self.cap {
            self.slots.push(Slot {
                key,
                value: make(),
                prev: NIL,
                next: NIL,
                protected: false,
            });
            (self.slots.len() - 1) as u32
        } else {
            let victim = if self.probation.tail != NIL {
                self.probation.tail
            } else {
                self.protected.tail
            };
            self.unlink(victim);
            let slot = &mut self.slots[victim as usize];
            self.index.remove(&slot.key);
            slot.key = key;
            slot.value = make();
            slot.protected = false;
            self.evictions += 1;
            victim
        };
        self.index.insert(key, i);
        self.push_front(i, false);
        (i, true)
    }

    /// Moves a probation entry to the protected segment. When that segment
    /// is over its share, its least recently used entry drops back to
    /// probation (it is not evicted outright).
    pub fn promote(&mut self, slot: u32) {
        match self.slots.get(slot as usize) {
            Some(s) if !s.protected => {}
            _ => return,
        }
        self.unlink(slot);
        self.push_front(slot, true);
        if self.protected.len > self.protected_cap {
            let demoted = self.protected.tail;
            self.unlink(demoted);
            self.push_front(demoted, false);
        }
    }

    fn list(&mut self, protected: bool) -> &mut List {
        if protected {
            &mut self.protected
        } else {
            &mut self.probation
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, protected) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next, s.protected)
        };
        if prev == NIL {
            self.list(protected).head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.list(protected).tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.list(protected).len -= 1;
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, i: u32, protected: bool) {
        let old = self.list(protected).head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
            s.protected = protected;
        }
        if old != NIL {
            self.slots[old as usize].prev = i;
        }
        let list = self.list(protected);
        list.head = i;
        if list.tail == NIL {
            list.tail = i;
        }
        list.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_off_keys_churn_probation_and_never_evict_protected_entries() {
        let mut m = SegmentedLru::<u32, u32>::new(10);
        for k in 0..5 {
            let (slot, inserted) = m.touch_or_insert(k, || k * 10);
            assert!(inserted);
            m.promote(slot);
        }
        assert_eq!(m.protected_len(), 5);
        for k in 100..10_000 {
            m.touch_or_insert(k, || 0);
            assert!(m.len() <= 10);
        }
        for k in 0..5 {
            assert_eq!(m.get(&k), Some(&(k * 10)), "protected key {k} survived");
        }
        assert_eq!(m.len(), 10);
        assert!(m.evictions() > 9000);
    }

    #[test]
    fn lru_order_within_probation_and_protected_overflow_demotes() {
        let mut m = SegmentedLru::<u32, ()>::new(5); // 4 protected at most
        for k in 0..5 {
            m.touch_or_insert(k, || ());
        }
        m.touch_or_insert(0, || ()); // 1 is now the oldest
        m.touch_or_insert(5, || ());
        assert!(m.get(&1).is_none() && m.get(&0).is_some());
        for k in [0, 2, 3, 4, 5] {
            let slot = m.find(&k).unwrap();
            m.promote(slot);
        }
        assert_eq!(
            m.protected_len(),
            4,
            "the oldest protected entry dropped back"
        );
        m.touch_or_insert(6, || ());
        // The demoted entry (0, least recently promoted) was the only probation entry.
        assert!(m.get(&0).is_none());
        assert_eq!(m.len(), 5);
    }
}
