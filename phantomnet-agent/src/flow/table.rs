use std::collections::HashMap;

use phantomnet_common::PacketSample;

use super::{FlowConfig, SourceKey, SourceWindows, WindowStats};

const NIL: u32 = u32::MAX;

/// What the table keeps for one source: its windows. (What is in force on
/// a source is the executor's alone to know.)
#[derive(Debug, Clone, PartialEq)]
pub struct FlowEntry {
    pub windows: SourceWindows,
}

impl FlowEntry {
    fn new() -> Self {
        FlowEntry {
            windows: SourceWindows::new(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    key: SourceKey,
    entry: FlowEntry,
    prev: u32,
    next: u32,
}

/// Per-source flow state with a hard cap and least-recently-seen eviction.
///
/// Entries live in a slab (`Vec<Slot>`) threaded by an intrusive doubly
/// linked list in recency order; a `HashMap` maps each source to its slot.
/// Lookup, move-to-front and eviction are O(1); once the table is full an
/// eviction reuses the evicted slot, so the steady state does not allocate.
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    index: HashMap<SourceKey, u32>,
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
    evictions: u64,
}

impl FlowTable {
    /// Approximate bytes one tracked source costs: the slot plus its hash
    /// map entry (key, index, one control byte, at the map's load factor).
    pub const BYTES_PER_SOURCE: usize =
        std::mem::size_of::<Slot>() + (std::mem::size_of::<(SourceKey, u32)>() + 1) * 8 / 7;

    pub fn new(config: FlowConfig) -> Self {
        let cap = config.max_sources.max(1);
        FlowTable {
            config: FlowConfig {
                max_sources: cap,
                ..config
            },
            index: HashMap::with_capacity(cap.min(4096)),
            slots: Vec::with_capacity(cap.min(4096)),
            head: NIL,
            tail: NIL,
            evictions: 0,
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The data plane's new sampling rate (1 in `every`; 0 is taken as 1).
    pub fn set_sample_every(&mut self, every: u32) {
        self.config.sample_every = every.max(1);
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sources evicted to stay under the cap.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Records `sample` under its source and returns the source's entry and
    /// its window statistics after the update.
    pub fn observe(&mut self, sample: &PacketSample) -> (&mut FlowEntry, WindowStats) {
        let key = SourceKey::of_sample(sample);
        let i = self.touch(key);
        let sample_every = self.config.sample_every;
        let entry = &mut self.slots[i as usize].entry;
        entry.windows.record(sample);
        let stats = entry.windows.stats(sample_every);
        (entry, stats)
    }

    /// The entry for `key`, if tracked (does not change recency).
    pub fn get(&self, key: &SourceKey) -> Option<&FlowEntry> {
        self.index.get(key).map(|&i| &self.slots[i as usize].entry)
    }

    /// Sources from most to least recently seen.
    pub fn keys_by_recency(&self) -> impl Iterator<Item = SourceKey> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let slot = &self.slots[cur as usize];
            cur = slot.next;
            Some(slot.key)
        })
    }

    /// Finds or creates the slot for `key` and moves it to the front.
    fn touch(&mut self, key: SourceKey) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            self.unlink(i);
            self.push_front(i);
            return i;
        }
        let i = if self.slots.len() < self.config.max_sources {
            self.slots.push(Slot {
                key,
                entry: FlowEntry::new(),
                prev: NIL,
                next: NIL,
            });
            (self.slots.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            let slot = &mut self.slots[victim as usize];
            self.index.remove(&slot.key);
            slot.key = key;
            slot.entry = FlowEntry::new();
            self.evictions += 1;
            tracing::trace!(
                evictions = self.evictions,
                "flow table full: evicted the least recently seen source"
            );
            victim
        };
        self.index.insert(key, i);
        self.push_front(i);
        i
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        if old != NIL {
            self.slots[old as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomnet_common::IPPROTO_UDP;

    fn from(a: u8, family: u8, ts: u64) -> PacketSample {
        let mut src = [0u8; 16];
        src[0] = if family == 6 { 0x20 } else { 10 };
        src[3] = a;
        src[15] = 0xEE; // garbage after an IPv4 address must not split a source
        PacketSample {
            timestamp_ns: ts,
            ifindex: 1,
            packet_len: 64,
            src_addr: src,
            src_port: 5000,
            dst_port: 53,
            family,
            protocol: IPPROTO_UDP,
            ttl: 64,
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn cap_is_enforced_with_least_recently_seen_eviction() {
        let mut t = FlowTable::new(FlowConfig {
            max_sources: 3,
            sample_every: 1,
        });
        for a in 1..=3 {
            t.observe(&from(a, 4, a as u64));
        }
        // Touch 1 so that 2 becomes the oldest.
        t.observe(&from(1, 4, 10));
        t.observe(&from(4, 4, 11));
        assert_eq!(t.len(), 3);
        assert_eq!(t.evictions(), 1);
        let keys: Vec<u8> = t.keys_by_recency().map(|k| k.addr[3]).collect();
        assert_eq!(keys, vec![4, 1, 3]);
        let two = SourceKey::of_sample(&from(2, 4, 0));
        assert!(t.get(&two).is_none());
        // An evicted source comes back with fresh state.
        let (e, _) = t.observe(&from(2, 4, 12));
        assert_eq!(e.windows.samples(), 1);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn ipv4_and_ipv6_sources_are_tracked_separately_and_accumulate() {
        let mut t = FlowTable::new(FlowConfig::default());
        for i in 0..5 {
            t.observe(&from(7, 4, i * 1_000_000));
        }
        let (e, _) = t.observe(&from(7, 6, 0));
        assert_eq!(e.windows.samples(), 1);
        let v4 = SourceKey::of_sample(&from(7, 4, 0));
        assert_eq!(t.get(&v4).unwrap().windows.samples(), 5);
        assert_eq!(v4.ip().to_string(), "10.0.0.7");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn bytes_per_source_is_about_a_kilobyte() {
        // docs/DETECTION.md quotes this figure.
        let bytes = std::hint::black_box(FlowTable::BYTES_PER_SOURCE);
        println!("bytes per tracked source: {bytes}");
        assert!((1000..1200).contains(&bytes), "{bytes}");
    }
}
