use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use phantomnet_common::PacketSample;

use lru::LruCache;
use phantomnet_common::sampling::{Reply, reply_of};

use super::run::{self, Run, STAMP_MASK};
use super::{FlowConfig, SourceKey, SourceWindows, WindowStats};

/// "No slot" in the links. Slot numbers take 24 bits (so the cap is at
/// most 16,777,215 sources, 8.9 GB of table); the top byte of each link
/// word holds something else: of `Slot::prev_v6`, the key's family (its
/// top bit) and the refusal run's generation stamp (7 bits); of
/// `Slot::next_run`, the refusal run's count.
const NIL: u32 = 0x00FF_FFFF;
const LINK: u32 = NIL;
const V6: u32 = 0x8000_0000;
/// `Slot::prev_v6`'s bits 24..31: the refusal run's stamp.
const STAMP_SHIFT: u32 = 24;
/// `Slot::next_run`'s bits 24..32: the refusal run's count.
const COUNT_SHIFT: u32 = 24;
/// Most sources whose answer run (schema v5's `server_answers`) is kept:
/// a table of its own, least recently answered first out, as the slots
/// had no byte left (docs/DETECTION.md, "Flow state").
pub const MAX_ANSWERED: usize = 262_144;

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

/// One source's place in the slab: 520 bytes, of which 496 are windows.
/// The key's family rides in the top bit of the `prev` link rather than in
/// a byte of its own, which would cost 4 bytes of padding; so does schema
/// v4's refusal run (see [`NIL`]): the windows had no byte left, and 4
/// more bytes per source would take a full table past 512 MiB
/// (docs/DETECTION.md).
#[derive(Debug)]
struct Slot {
    addr: [u8; 16],
    /// The previous (more recent) slot, or [`NIL`]; [`V6`] if IPv6; the
    /// refusal run's stamp in bits 24..31.
    prev_v6: u32,
    /// The next (less recent) slot, or [`NIL`]; the refusal run's count in
    /// the top byte.
    next_run: u32,
    entry: FlowEntry,
}

impl Slot {
    fn new(key: SourceKey) -> Slot {
        let mut s = Slot {
            addr: key.addr,
            prev_v6: NIL,
            next_run: NIL,
            entry: FlowEntry::new(),
        };
        s.set_key(key);
        s
    }

    fn key(&self) -> SourceKey {
        SourceKey {
            family: if self.prev_v6 & V6 != 0 { 6 } else { 4 },
            addr: self.addr,
        }
    }

    fn set_key(&mut self, key: SourceKey) {
        self.addr = key.addr;
        self.prev_v6 = (self.prev_v6 & !V6) | if key.family == 6 { V6 } else { 0 };
    }

    fn prev(&self) -> u32 {
        self.prev_v6 & LINK
    }

    fn set_prev(&mut self, prev: u32) {
        self.prev_v6 = (self.prev_v6 & !LINK) | prev;
    }

    fn next(&self) -> u32 {
        self.next_run & LINK
    }

    fn set_next(&mut self, next: u32) {
        self.next_run = (self.next_run & !LINK) | next;
    }

    /// The refusal run: its count in `next_run`'s top byte, its stamp in
    /// `prev_v6`'s bits 24..31.
    fn run(&self) -> Run {
        Run {
            count: self.next_run >> COUNT_SHIFT,
            stamp: (self.prev_v6 >> STAMP_SHIFT) & STAMP_MASK,
        }
    }

    fn set_run(&mut self, run: Run) {
        self.next_run = (self.next_run & LINK) | (run.count.min(255) << COUNT_SHIFT);
        self.prev_v6 = (self.prev_v6 & !(STAMP_MASK << STAMP_SHIFT))
            | ((run.stamp & STAMP_MASK) << STAMP_SHIFT);
    }

    /// Clears the refusal run if it has expired as of `ts`, before its
    /// stamp can wrap (see [`Run::count_at`]).
    fn expire_run(&mut self, ts: u64) {
        if self.run().expired(ts) {
            self.set_run(Run::default());
        }
    }
}

/// A source's answer run, with the latest answer's generation in full: the
/// answers table is not cleared at the source's samples as a slot's
/// refusal run is, so a stamp that wrapped must not read as live. Beside
/// it, schema v6's run of the answers that were HTTP error responses.
#[derive(Debug, Clone, Copy)]
struct Answered {
    run: Run,
    latest_ns: u64,
    /// The error run. Every answer clears it once it has expired, so while
    /// the answer run is live its stamp is under two minutes old and never
    /// wraps; once the answer run is over, so is it.
    errors: Run,
}

impl Answered {
    /// The answer and error runs' counts as of `now`.
    fn counts_at(&self, now: u64) -> (u32, u32) {
        if now.saturating_sub(self.latest_ns) >= run::MAX_AGE_NS {
            (0, 0)
        } else {
            (self.run.count_at(now), self.errors.count_at(now))
        }
    }
}

/// Per-source flow state with a hard cap and least-recently-seen eviction.
///
/// Entries live in a slab (`Vec<Slot>`) threaded by an intrusive doubly
/// linked list in recency order; a hash index of slot numbers
/// (`hashbrown::HashTable<u32>`, keyed by the slot's own key, so the key
/// is stored once) finds a source's slot. Lookup, move-to-front and
/// eviction are O(1); once the table is full an eviction reuses the evicted
/// slot, so the steady state does not allocate.
///
/// The slab grows (from at most 4,096 slots) by doubling but never beyond
/// the cap, so a full table has no spare slots. The index hashes with
/// std's randomly keyed SipHash (`RandomState`): sources are chosen by
/// whoever sends packets, and must not be able to aim at one chain.
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    index: HashTable<u32>,
    hasher: RandomState,
    slots: Vec<Slot>,
    head: u32,
    tail: u32,
    evictions: u64,
    /// Schema v5's answer runs, of tracked sources only, at most
    /// `answers_cap`: [`MAX_ANSWERED`] (or the table's cap, if lower).
    /// Unbounded to `lru` and capped here, so that it grows with use
    /// rather than reserving its cap up front (`LruCache::new` does).
    answers: LruCache<SourceKey, Answered>,
    answers_cap: usize,
}

impl FlowTable {
    /// Bytes one tracked source costs: its slot (the slab holds no spare
    /// slots once full), plus its index entry (a `u32` slot number and one
    /// control byte) at the index's lowest load factor, 7/16, just after it
    /// doubled (it doubles when 7/8 full).
    pub const BYTES_PER_SOURCE: usize =
        std::mem::size_of::<Slot>() + (std::mem::size_of::<u32>() + 1) * 16 / 7;

    pub fn new(config: FlowConfig) -> Self {
        let cap = config.max_sources.clamp(1, NIL as usize);
        FlowTable {
            config: FlowConfig {
                max_sources: cap,
                ..config
            },
            index: HashTable::with_capacity(cap.min(4096)),
            hasher: RandomState::new(),
            slots: Vec::with_capacity(cap.min(4096)),
            head: NIL,
            tail: NIL,
            evictions: 0,
            answers: LruCache::unbounded(),
            answers_cap: cap.min(MAX_ANSWERED),
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

    /// Sources with an answer run in the answers table (schema v5).
    pub fn answered(&self) -> usize {
        self.answers.len()
    }

    /// The answers table's cap: [`MAX_ANSWERED`], or the flow table's cap
    /// if lower.
    pub fn answered_cap(&self) -> usize {
        self.answers_cap
    }

    /// Sources evicted to stay under the cap.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Groups IPv6 sources to `len` bits from the next sample on (capped at
    /// 128). Entries already keyed under the old length age out.
    pub fn set_ipv6_source_prefix(&mut self, len: u8) {
        self.config.ipv6_source_prefix = len.min(128);
    }

    /// The key `sample` is recorded under: its source address, IPv6 masked
    /// to the configured prefix.
    pub fn key_of(&self, sample: &PacketSample) -> SourceKey {
        SourceKey::of_sample(sample).masked(self.config.ipv6_source_prefix)
    }

    /// The [`Source`](super::Source) `sample` is recorded under.
    pub fn source_of(&self, sample: &PacketSample) -> super::Source {
        SourceKey::of_sample(sample).source(self.config.ipv6_source_prefix)
    }

    /// Records `sample` under its source (IPv6: the configured prefix of its
    /// address) and returns the source's entry and its window statistics
    /// after the update, as of the sample's time (a priority sample feeds
    /// only the distinct counts: see [`SourceWindows::record`]).
    pub fn observe(&mut self, sample: &PacketSample) -> (&mut FlowEntry, WindowStats) {
        let sample_every = self.config.sample_every;
        let at = sample.timestamp_ns;
        let key = self.key_of(sample);
        let i = self.touch(key);
        let (answers, errors) = self.answers.peek(&key).map_or((0, 0), |a| a.counts_at(at));
        let slot = &mut self.slots[i as usize];
        slot.expire_run(sample.timestamp_ns);
        slot.entry.windows.record(sample);
        // As `with_server_side`, from the slot in hand.
        let stats = WindowStats {
            server_refusals: f64::from(slot.run().count_at(at)),
            server_answers: f64::from(answers),
            server_errors: f64::from(errors),
            ..slot.entry.windows.stats_at(sample_every, at)
        };
        (&mut slot.entry, stats)
    }

    /// Records `sample` under its source, as [`FlowTable::observe`], without
    /// computing the window statistics (a caller that scores only some
    /// samples computes them for those: `SourceWindows::stats`).
    pub fn record(&mut self, sample: &PacketSample) -> &mut FlowEntry {
        self.record_matched(sample, false)
    }

    /// [`FlowTable::record`], and counts a payload-signature match
    /// (`signature_hit`, found by the caller: matching is the correlator's)
    /// in the source's schema-v3 `signature_hits`. The detector and
    /// `dataset` record every sample through this.
    pub fn record_matched(&mut self, sample: &PacketSample, signature_hit: bool) -> &mut FlowEntry {
        let key = self.key_of(sample);
        let i = self.touch(key);
        let slot = &mut self.slots[i as usize];
        slot.expire_run(sample.timestamp_ns);
        let entry = &mut slot.entry;
        entry.windows.record(sample);
        if signature_hit {
            entry.windows.add_signature_hit();
        }
        entry
    }

    /// Counts an inside observer's sample (`sample_flags::REPLY`: the
    /// protected side refusing or answering an outside host,
    /// `sampling::reply_of`) against the source its *destination* belongs
    /// to, if that source is tracked; returns whether it was. It creates
    /// no flow entry and does not change recency: a reply is the server's
    /// packet, and a flood of resets to spoofed addresses must not fill
    /// the table. A refusal adds to the source's refusal run (schema v4's
    /// `server_refusals`), an answer to its answer run (schema v5's
    /// `server_answers`) and, if it is an HTTP error response
    /// ([`super::status::http_error`]), to its error run (schema v6's
    /// `server_errors`).
    pub fn record_reply(&mut self, sample: &PacketSample) -> bool {
        let Some(reply) = reply_of(sample) else {
            return false;
        };
        let key = SourceKey::from_raw(sample.family, &sample.dst_addr)
            .masked(self.config.ipv6_source_prefix);
        let hash = self.hasher.hash_one(key);
        let Some(&i) = self
            .index
            .find(hash, |&i| self.slots[i as usize].key() == key)
        else {
            return false;
        };
        let ts = sample.timestamp_ns;
        match reply {
            Reply::Refusal => {
                let slot = &mut self.slots[i as usize];
                slot.set_run(slot.run().add(ts));
            }
            Reply::Answer => {
                let valid = (sample.payload_valid as usize).min(sample.payload.len());
                let error = super::status::http_error(&sample.payload[..valid]);
                // An entry 60 s or more older than this answer is a run
                // that has ended (whatever its 7-bit stamp says); an error
                // run that has expired is cleared.
                let (answers, latest_ns, errors) = match self
                    .answers
                    .get(&key)
                    .filter(|a| ts.saturating_sub(a.latest_ns) < run::MAX_AGE_NS)
                {
                    Some(a) if a.errors.expired(ts) => (a.run, a.latest_ns.max(ts), Run::default()),
                    Some(a) => (a.run, a.latest_ns.max(ts), a.errors),
                    None => (Run::default(), ts, Run::default()),
                };
                let answered = Answered {
                    run: answers.add(ts),
                    latest_ns,
                    errors: if error { errors.add(ts) } else { errors },
                };
                if self.answers.len() >= self.answers_cap && !self.answers.contains(&key) {
                    self.answers.pop_lru();
                }
                self.answers.put(key, answered);
            }
        }
        true
    }

    /// `stats` with the protected side's replies to the source `sample`
    /// belongs to, as of `at`: schema v4's `server_refusals` (its refusal
    /// run's count), schema v5's `server_answers` (its answer run's) and
    /// schema v6's `server_errors` (its error run's), each 0 if untracked
    /// or once 60 s passed without one. The detector
    /// and `dataset` put them into the window statistics of a sample they
    /// score.
    pub fn with_server_side(
        &self,
        sample: &PacketSample,
        at: u64,
        stats: WindowStats,
    ) -> WindowStats {
        let key = self.key_of(sample);
        let hash = self.hasher.hash_one(key);
        let refusals = self
            .index
            .find(hash, |&i| self.slots[i as usize].key() == key)
            .map_or(0, |&i| self.slots[i as usize].run().count_at(at));
        let (answers, errors) = self.answers.peek(&key).map_or((0, 0), |a| a.counts_at(at));
        WindowStats {
            server_refusals: f64::from(refusals),
            server_answers: f64::from(answers),
            server_errors: f64::from(errors),
            ..stats
        }
    }

    /// The entry for `key`, if tracked (does not change recency).
    pub fn get(&self, key: &SourceKey) -> Option<&FlowEntry> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| self.slots[i as usize].key() == *key)
            .map(|&i| &self.slots[i as usize].entry)
    }

    /// Sources from most to least recently seen.
    pub fn keys_by_recency(&self) -> impl Iterator<Item = SourceKey> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let slot = &self.slots[cur as usize];
            cur = slot.next();
            Some(slot.key())
        })
    }

    /// Finds or creates the slot for `key` and moves it to the front.
    fn touch(&mut self, key: SourceKey) -> u32 {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        if let Some(&i) = self.index.find(hash, |&i| slots[i as usize].key() == key) {
            self.unlink(i);
            self.push_front(i);
            return i;
        }
        let i = if self.slots.len() < self.config.max_sources {
            if self.slots.len() == self.slots.capacity() {
                // Double, but never past the cap: a full table wastes no slot.
                let more = self
                    .slots
                    .capacity()
                    .max(1)
                    .min(self.config.max_sources - self.slots.len());
                self.slots.reserve_exact(more);
            }
            self.slots.push(Slot::new(key));
            (self.slots.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            let old = self.hasher.hash_one(self.slots[victim as usize].key());
            if let Ok(e) = self.index.find_entry(old, |&i| i == victim) {
                e.remove();
            }
            let slot = &mut self.slots[victim as usize];
            slot.set_key(key);
            slot.set_run(Run::default());
            slot.entry = FlowEntry::new();
            self.evictions += 1;
            tracing::trace!(
                evictions = self.evictions,
                "flow table full: evicted the least recently seen source"
            );
            victim
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(slots[j as usize].key()));
        self.push_front(i);
        i
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev(), s.next())
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].set_next(next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].set_prev(prev);
        }
        let s = &mut self.slots[i as usize];
        s.set_prev(NIL);
        s.set_next(NIL);
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.set_prev(NIL);
            s.set_next(old);
        }
        if old != NIL {
            self.slots[old as usize].set_prev(i);
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
            ..FlowConfig::default()
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
        assert_eq!(e.windows.samples_60s(), 1);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn ipv4_and_ipv6_sources_are_tracked_separately_and_accumulate() {
        let mut t = FlowTable::new(FlowConfig::default());
        for i in 0..5 {
            t.observe(&from(7, 4, i * 1_000_000));
        }
        let (e, _) = t.observe(&from(7, 6, 0));
        assert_eq!(e.windows.samples_60s(), 1);
        let v4 = SourceKey::of_sample(&from(7, 4, 0));
        assert_eq!(t.get(&v4).unwrap().windows.samples_60s(), 5);
        assert_eq!(v4.ip().to_string(), "10.0.0.7");
        assert_eq!(t.len(), 2);
    }

    fn v6(addr: &str, ts: u64) -> PacketSample {
        let a: std::net::Ipv6Addr = addr.parse().unwrap();
        PacketSample {
            src_addr: a.octets(),
            ..from(0, 6, ts)
        }
    }

    #[test]
    fn ipv6_addresses_in_one_prefix_share_one_entry() {
        let mut t = FlowTable::new(FlowConfig::default());
        t.observe(&v6("2001:db8:bad::1", 0));
        t.observe(&v6("2001:db8:bad:0:ffff:1:2:3", 1_000_000));
        let (e, _) = t.observe(&v6("2001:db8:bad::9", 2_000_000));
        assert_eq!(e.windows.samples_60s(), 3, "one /64, one entry");
        assert_eq!(t.len(), 1);
        let k = t.key_of(&v6("2001:db8:bad::77", 0));
        assert_eq!(k.ip().to_string(), "2001:db8:bad::");
        assert_eq!(
            t.source_of(&v6("2001:db8:bad::77", 0)).to_string(),
            "2001:db8:bad::/64"
        );
        // The next /64 is another source.
        let (e, _) = t.observe(&v6("2001:db8:bad:1::1", 3_000_000));
        assert_eq!(e.windows.samples_60s(), 1);
        assert_eq!(t.len(), 2);
        // IPv4 stays per address.
        t.observe(&from(1, 4, 0));
        t.observe(&from(2, 4, 0));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn a_128_prefix_keeps_one_entry_per_address() {
        let mut t = FlowTable::new(FlowConfig {
            ipv6_source_prefix: 128,
            ..FlowConfig::default()
        });
        t.observe(&v6("2001:db8:bad::1", 0));
        t.observe(&v6("2001:db8:bad::2", 0));
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.source_of(&v6("2001:db8:bad::2", 0)).to_string(),
            "2001:db8:bad::2"
        );
        // Switched to /64 (a reload): the next samples group.
        t.set_ipv6_source_prefix(64);
        t.observe(&v6("2001:db8:bad::3", 0));
        let (e, _) = t.observe(&v6("2001:db8:bad::4", 0));
        assert_eq!(e.windows.samples_60s(), 2);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn masking_clears_exactly_the_host_bits() {
        let k = |a: &str| SourceKey::from(a.parse::<std::net::IpAddr>().unwrap());
        let a = k("2001:db8:bad:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(a.masked(64).ip().to_string(), "2001:db8:bad:ffff::");
        assert_eq!(a.masked(60).ip().to_string(), "2001:db8:bad:fff0::");
        assert_eq!(a.masked(32).ip().to_string(), "2001:db8::");
        assert_eq!(a.masked(128), a);
        assert_eq!(a.masked(200), a);
        let v4 = k("192.0.2.255");
        assert_eq!(v4.masked(64), v4);
    }

    #[test]
    fn a_million_sources_fit_in_512_mib() {
        // docs/DETECTION.md quotes these figures.
        let slot = std::hint::black_box(std::mem::size_of::<Slot>());
        let bytes = std::hint::black_box(FlowTable::BYTES_PER_SOURCE);
        println!("slot {slot} bytes, {bytes} bytes per tracked source");
        assert_eq!(std::mem::size_of::<SourceWindows>(), 496);
        assert_eq!(slot, 520);
        assert_eq!(bytes, 531);
        assert_eq!(FlowConfig::default().max_sources, 1_000_000);
        assert!(bytes * FlowConfig::default().max_sources <= 512 << 20);
    }
}
