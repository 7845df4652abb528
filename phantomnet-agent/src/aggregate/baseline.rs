//! Per-key rate state and per-destination baseline samples.
//!
//! A key counts its samples in 1 s ticks (by sample time) and keeps
//! exponentially weighted moving averages of its packets per second (all
//! of its traffic, and its spread: less its heavy sources'), learned only
//! from ticks in which no attack overlapped it, so a flood never becomes
//! "normal". A destination host keeps a reservoir of its pre-attack
//! samples (signature fields only), which the synthesiser compares an
//! attack with.

use std::net::IpAddr;

use super::hll::{Hll, mix};
use super::signature::SigSample;

/// Sources a key tells apart as heavy in a tick: one with more than
/// 1/(HEAVY + 1) of the tick's samples is found (Misra–Gries). Eight
/// cover a service's few bulk clients at once, where one majority
/// candidate (Boyer–Moore, before) found none when two downloads shared a
/// port. Hand-written, like the HyperLogLog beside it: a fixed array inside
/// each key with no allocation per tick, which the streaming crates' top-k
/// summaries (heap maps) do not offer.
pub(crate) const HEAVY: usize = 8;

/// Rate state of one aggregate key (with its key and table entry, about
/// 330 bytes: `AggregateDetector::BYTES_PER_KEY`).
#[derive(Debug, Clone)]
pub(crate) struct KeyState {
    /// Tick index the `cur_*` fields count.
    pub tick: u64,
    pub cur_samples: u32,
    /// Estimated packets in the tick (samples × sampling rate).
    pub cur_packets: u64,
    pub cur_first_ns: u64,
    /// Distinct sampled sources in the tick.
    pub cur_distinct: Hll<64>,
    /// The key's previous tick (the one `roll` left, however long ago) and
    /// its estimated packets: a broader key judges a completed tick at its
    /// next sample, possibly ticks later, and must still learn what this
    /// key carried in it.
    pub prev_tick: u64,
    pub prev_packets: u64,
    /// EWMAs of packets/s: all of the key's traffic (what a flood's
    /// samples are expected to hold besides the flood, for its signature),
    /// and its spread (`spread_packets`: what the trigger compares, so a
    /// bulk client's ACK stream does not raise the bar for a flood from
    /// many sources); and how many ticks they have learned.
    pub baseline_pps: f64,
    pub spread_baseline_pps: f64,
    pub learned_ticks: u32,
    /// Ticks with at least one sample: two or more promote the key out of
    /// the table's probation segment.
    pub active_ticks: u32,
    /// The attack this key is feeding (slot in the detector's attack table).
    pub attack: Option<u32>,
    /// Samples at which to evaluate the spread test next (it reads 64 registers).
    pub next_check: u32,
    /// The tick's heaviest sources (by hash): Misra–Gries counters, each
    /// at most `samples / (HEAVY + 1)` below its source's true count and
    /// never above it (`spread_packets`).
    pub heavy_src: [u64; HEAVY],
    pub heavy_cnt: [u32; HEAVY],
    /// Boyer–Moore majority candidate among the narrower keys inside this
    /// one (port for a host key, host for a prefix key) in the tick.
    pub major_dst: Option<IpAddr>,
    pub major_port: u16,
    pub major_votes: u32,
}

/// What a key's completed tick held, read before the key moves on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompletedTick {
    pub tick: u64,
    pub packets: u64,
    /// `packets` less what its heavy sources are proven to have sent (see
    /// [`KeyState::spread_packets`]).
    pub spread_packets: u64,
    pub first_ns: u64,
    pub samples: u32,
    pub distinct: f64,
    pub major_dst: Option<IpAddr>,
    pub major_port: u16,
}

impl KeyState {
    pub fn new(tick: u64) -> KeyState {
        KeyState {
            tick,
            cur_samples: 0,
            cur_packets: 0,
            cur_first_ns: 0,
            cur_distinct: Hll::new(),
            prev_tick: u64::MAX,
            prev_packets: 0,
            baseline_pps: 0.0,
            spread_baseline_pps: 0.0,
            learned_ticks: 0,
            active_ticks: 0,
            attack: None,
            next_check: 0,
            heavy_src: [0; HEAVY],
            heavy_cnt: [0; HEAVY],
            major_dst: None,
            major_port: 0,
            major_votes: 0,
        }
    }

    /// Estimated packets this key saw in tick `t`, if still known.
    pub fn packets_at(&self, t: u64) -> u64 {
        if self.tick == t {
            self.cur_packets
        } else if self.prev_tick == t {
            self.prev_packets
        } else {
            0
        }
    }

    pub fn completed(&self) -> CompletedTick {
        CompletedTick {
            tick: self.tick,
            packets: self.cur_packets,
            spread_packets: self.spread_packets(),
            first_ns: self.cur_first_ns,
            samples: self.cur_samples,
            distinct: self.cur_distinct.estimate(),
            major_dst: self.major_dst,
            major_port: self.major_port,
        }
    }

    /// Moves to tick `t` (> `self.tick`). With `learn`, the finished tick
    /// and the empty ticks after it update the baseline; otherwise it stays
    /// frozen. `alpha` is the per-tick EWMA weight.
    pub fn roll(&mut self, t: u64, tick_secs: f64, alpha: f64, learn: bool) {
        if t <= self.tick {
            return;
        }
        if learn {
            let rate = self.cur_packets as f64 / tick_secs;
            let spread = self.spread_packets() as f64 / tick_secs;
            self.learn(rate, spread, alpha);
            let gap = t - self.tick - 1;
            for _ in 0..gap.min(32) {
                self.learn(0.0, 0.0, alpha);
            }
            if gap > 32 {
                let rest = i32::try_from(gap - 32).unwrap_or(i32::MAX);
                let decay = (1.0 - alpha).powi(rest);
                self.baseline_pps *= decay;
                self.spread_baseline_pps *= decay;
            }
        }
        if self.cur_samples > 0 {
            self.active_ticks = self.active_ticks.saturating_add(1);
        }
        self.prev_tick = self.tick;
        self.prev_packets = self.cur_packets;
        self.tick = t;
        self.cur_samples = 0;
        self.cur_packets = 0;
        self.cur_first_ns = 0;
        self.cur_distinct.clear();
        self.next_check = 0;
        self.heavy_cnt = [0; HEAVY];
        self.major_dst = None;
        self.major_port = 0;
        self.major_votes = 0;
    }

    /// One EWMA step; the first ticks average plainly (weight 1/n) so a
    /// young key's baseline is not biased toward zero.
    fn learn(&mut self, rate: f64, spread: f64, alpha: f64) {
        self.learned_ticks = self.learned_ticks.saturating_add(1);
        let w = alpha.max(1.0 / f64::from(self.learned_ticks));
        self.baseline_pps += w * (rate - self.baseline_pps);
        self.spread_baseline_pps += w * (spread - self.spread_baseline_pps);
    }

    /// The tick's packets less what its heavy sources are proven to have
    /// sent: what the spread of sources, not a few heavy clients, accounts
    /// for. A bulk download among a service's clients is one source's
    /// traffic, the per-source path's business, not a flood. A counter
    /// above the Misra–Gries error bound `samples / (HEAVY + 1)` belongs to
    /// a source proven heavy, which sent at least its counter; a spoofed
    /// flood's sources, a sample or two each, never are.
    pub fn spread_packets(&self) -> u64 {
        let n = u64::from(self.cur_samples);
        if n == 0 {
            return 0;
        }
        let bound = n / (HEAVY as u64 + 1);
        let heavy: u64 = self
            .heavy_cnt
            .iter()
            .map(|&c| u64::from(c))
            .filter(|&c| c > bound)
            .sum();
        self.cur_packets.saturating_mul(n - heavy.min(n)) / n
    }

    /// One sample of source `h` into the Misra–Gries counters: O(HEAVY).
    fn count_source(&mut self, h: u64) {
        if let Some(i) = (0..HEAVY).find(|&i| self.heavy_cnt[i] > 0 && self.heavy_src[i] == h) {
            self.heavy_cnt[i] += 1;
        } else if let Some(i) = self.heavy_cnt.iter().position(|&c| c == 0) {
            self.heavy_src[i] = h;
            self.heavy_cnt[i] = 1;
        } else {
            for c in &mut self.heavy_cnt {
                *c -= 1;
            }
        }
    }

    /// Counts one sample.
    pub fn record(&mut self, ts: u64, every: u64, src_hash: u64, dst: IpAddr, port: u16) {
        if self.cur_samples == 0 {
            self.cur_first_ns = ts;
        }
        self.cur_samples = self.cur_samples.saturating_add(1);
        self.cur_packets = self.cur_packets.saturating_add(every);
        self.cur_distinct.insert(src_hash);
        self.count_source(src_hash);
        if self.major_votes == 0 {
            self.major_dst = Some(dst);
            self.major_port = port;
            self.major_votes = 1;
        } else if self.major_dst == Some(dst) && self.major_port == port {
            self.major_votes += 1;
        } else {
            self.major_votes -= 1;
        }
    }
}

/// Pre-attack samples of one destination host: a reservoir of
/// `baseline_reservoir` signature fields (34 bytes each), admitting at most
/// `admit_per_tick` samples per tick, with the replacement odds floored at
/// 1 in 8 so it keeps following the traffic (about two minutes of history
/// with the defaults).
///
/// A tick's samples wait in `pending` until the next tick begins: an attack
/// is recognised when its first tick completes, and by then that tick's
/// samples are the attack's own. The detector discards them
/// ([`HostBaseline::discard_pending`]) when an attack covers the host, so a
/// flood that starts on a tick boundary never poisons the baseline its
/// signature is checked against.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostBaseline {
    pub samples: Vec<SigSample>,
    pending: Vec<SigSample>,
    admitted: u64,
    tick: u64,
    admitted_in_tick: u32,
    pub active_ticks: u32,
}

impl HostBaseline {
    /// Offers a sample; returns whether it was admitted (to `pending`).
    pub fn offer(&mut self, s: SigSample, t: u64, cap: usize, admit_per_tick: u32) -> bool {
        if t != self.tick {
            self.commit(cap);
            self.tick = t;
            self.admitted_in_tick = 0;
            self.active_ticks = self.active_ticks.saturating_add(1);
        }
        if self.admitted_in_tick >= admit_per_tick || cap == 0 {
            return false;
        }
        self.admitted_in_tick += 1;
        self.pending.push(s);
        true
    }

    /// Drops the current tick's samples: an attack covers the host.
    pub fn discard_pending(&mut self) {
        self.pending.clear();
    }

    /// Forgets every sample of the source with this tag: the data plane
    /// enforced on it, so its traffic was an attack's, not the host's
    /// normal traffic. Returns how many were dropped.
    pub fn forget_source(&mut self, tag: [u8; 4]) -> usize {
        let before = self.samples.len() + self.pending.len();
        self.samples.retain(|s| s.src_tag != tag);
        self.pending.retain(|s| s.src_tag != tag);
        before - self.samples.len() - self.pending.len()
    }

    /// Forgets what an attack's sources left in tick `since` or later (and
    /// pending): the samples of the sources with these tags (sorted), and
    /// of every source with no sample kept before `since`. An attack's
    /// sample reservoir holds only some of its sources when it is
    /// announced (64 samples of a 50-source botnet miss about 14 of them);
    /// a source first seen in the ticks before an attack tripped is taken
    /// as one of its own. A client seen before keeps its samples.
    pub fn forget_sources_since(&mut self, tags: &[[u8; 4]], since: u64) {
        let since = u32::try_from(since).unwrap_or(u32::MAX);
        let mut older: Vec<[u8; 4]> = self
            .samples
            .iter()
            .filter(|s| s.tick < since)
            .map(|s| s.src_tag)
            .collect();
        older.sort_unstable();
        older.dedup();
        let attacker =
            |tag: &[u8; 4]| tags.binary_search(tag).is_ok() || older.binary_search(tag).is_err();
        self.samples
            .retain(|s| s.tick < since || !attacker(&s.src_tag));
        self.pending.retain(|s| !attacker(&s.src_tag));
    }

    /// Moves the last tick's samples into the reservoir.
    fn commit(&mut self, cap: usize) {
        let t = self.tick;
        let tick = u32::try_from(t).unwrap_or(u32::MAX);
        for (i, mut s) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            s.tick = tick;
            self.admitted = (self.admitted + 1).min(8 * cap as u64);
            if self.samples.len() < cap {
                self.samples.push(s);
                continue;
            }
            let j = mix(self.admitted ^ (t << 20) ^ (i as u64 + 1)) % self.admitted;
            if let Some(slot) = self.samples.get_mut(j as usize) {
                *slot = s;
            }
        }
    }
}
