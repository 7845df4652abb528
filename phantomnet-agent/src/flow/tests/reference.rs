//! The flow windows as they were before the compact layout (issue 11),
//! verbatim but renamed: the oracle that `flow::tests::equivalence`
//! compares the compact [`crate::flow::SourceWindows`] against.
#![allow(dead_code)]

use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, TCP_SYN};

use crate::flow::WindowStats;
use crate::flow::distinct::{hash_bytes, mix};

const NS: u64 = 1_000_000_000;
/// The 10 s window: ten 1 s slots.
const FINE_SLOTS: usize = 10;
const FINE_NS: u64 = NS;
/// The 60 s window: twelve 5 s slots.
const COARSE_SLOTS: usize = 12;
const COARSE_NS: u64 = 5 * NS;
/// Distinct counters: six 10 s generations.
const GEN_NS: u64 = 10 * NS;

/// Sums over one 5 s slot of the 60 s window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    count: u32,
    tcp: u32,
    syn: u32,
    gaps: u32,
    size_sum: f64,
    size_sq: f64,
    gap_sum: f64,
    gap_sq: f64,
}

/// The sliding windows of one source: a ring of ten 1 s packet counts for
/// the 10 s window, a ring of twelve 5 s buckets of sums for the 60 s
/// window, and windowed distinct counters for destination addresses and
/// ports. Updating costs O(1) amortised (a time jump clears at most one
/// ring's worth of slots) and never allocates.
///
/// The windows cover whole slots: the 60 s window spans the current 5 s
/// slot plus the 11 before it (55–60 s), and rates divide by that exact
/// span; the 10 s window likewise spans 9–10 s.
#[derive(Debug, Clone, PartialEq)]
pub struct OldWindows {
    fine: [u32; FINE_SLOTS],
    coarse: [Bucket; COARSE_SLOTS],
    dst_ips: OldDistinct<2>,
    dst_ports: OldDistinct,
    /// Latest timestamp seen (samples older than it count as "now").
    last_ns: u64,
    samples: u64,
}

impl OldWindows {
    pub fn new() -> Self {
        OldWindows {
            fine: [0; FINE_SLOTS],
            coarse: [Bucket::default(); COARSE_SLOTS],
            dst_ips: OldDistinct::<2>::new(),
            dst_ports: OldDistinct::<4>::new(),
            last_ns: 0,
            samples: 0,
        }
    }

    /// Samples recorded since the source was first tracked.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Latest timestamp recorded.
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// Adds one sample. A timestamp older than the latest one (reordered
    /// samples from several CPUs) is counted at the latest time.
    pub fn record(&mut self, s: &PacketSample) {
        let ts = if self.samples == 0 {
            s.timestamp_ns
        } else {
            s.timestamp_ns.max(self.last_ns)
        };
        let gap = if self.samples == 0 {
            None
        } else {
            Some((ts - self.last_ns) as f64 / NS as f64)
        };
        if self.samples == 0 {
            self.advance_all_fresh();
        } else {
            self.advance(ts);
        }
        self.last_ns = ts;
        self.samples += 1;

        self.fine[((ts / FINE_NS) % FINE_SLOTS as u64) as usize] += 1;
        let b = &mut self.coarse[((ts / COARSE_NS) % COARSE_SLOTS as u64) as usize];
        b.count += 1;
        let len = s.packet_len as f64;
        b.size_sum += len;
        b.size_sq += len * len;
        if s.protocol == IPPROTO_TCP {
            b.tcp += 1;
            if s.tcp_flags & TCP_SYN != 0 && s.tcp_flags & TCP_ACK == 0 {
                b.syn += 1;
            }
        }
        if let Some(g) = gap {
            b.gaps += 1;
            b.gap_sum += g;
            b.gap_sq += g * g;
        }
        let generation = (ts / GEN_NS) as usize;
        let dst_len = if s.family == 6 { 16 } else { 4 };
        self.dst_ips
            .insert(generation, hash_bytes(&s.dst_addr[..dst_len]));
        self.dst_ports
            .insert(generation, mix(s.dst_port as u64 ^ 0x5A5A_0000));
    }

    fn advance_all_fresh(&mut self) {
        self.fine = [0; FINE_SLOTS];
        self.coarse = [Bucket::default(); COARSE_SLOTS];
        self.dst_ips.clear();
        self.dst_ports.clear();
    }

    /// Clears the slots that the move from `last_ns` to `ts` expires.
    fn advance(&mut self, ts: u64) {
        let (old, new) = (self.last_ns / FINE_NS, ts / FINE_NS);
        for s in (old + 1)..=new.min(old + FINE_SLOTS as u64) {
            self.fine[(s % FINE_SLOTS as u64) as usize] = 0;
        }
        let (old, new) = (self.last_ns / COARSE_NS, ts / COARSE_NS);
        for s in (old + 1)..=new.min(old + COARSE_SLOTS as u64) {
            self.coarse[(s % COARSE_SLOTS as u64) as usize] = Bucket::default();
        }
        let (old, new) = (self.last_ns / GEN_NS, ts / GEN_NS);
        let gens = GENS as u64;
        for g in (old + 1)..=new.min(old + gens) {
            self.dst_ips.clear_generation(g as usize);
            self.dst_ports.clear_generation(g as usize);
        }
    }

    /// The window statistics as of the latest sample, with rates and
    /// inter-arrival times corrected for 1-in-`sample_every` sampling.
    pub fn stats(&self, sample_every: u32) -> WindowStats {
        if self.samples == 0 {
            return WindowStats::default();
        }
        let scale = sample_every.max(1) as f64;
        let now = self.last_ns;
        let fine_count: u64 = self.fine.iter().map(|&c| c as u64).sum();
        let fine_span = (FINE_SLOTS as u64 - 1) as f64 + (now % FINE_NS) as f64 / NS as f64;
        let coarse_span =
            ((COARSE_SLOTS as u64 - 1) * COARSE_NS + now % COARSE_NS) as f64 / NS as f64;
        let mut t = Bucket::default();
        for b in &self.coarse {
            t.count += b.count;
            t.tcp += b.tcp;
            t.syn += b.syn;
            t.gaps += b.gaps;
            t.size_sum += b.size_sum;
            t.size_sq += b.size_sq;
            t.gap_sum += b.gap_sum;
            t.gap_sq += b.gap_sq;
        }
        let (iat_mean, iat_std) = if t.gaps > 0 {
            let n = t.gaps as f64;
            let mean = t.gap_sum / n;
            let var = (t.gap_sq / n - mean * mean).max(0.0);
            (mean / scale, var.sqrt() / scale)
        } else {
            (0.0, 0.0)
        };
        let size_var = if t.count > 0 {
            let n = t.count as f64;
            let mean = t.size_sum / n;
            (t.size_sq / n - mean * mean).max(0.0)
        } else {
            0.0
        };
        WindowStats {
            event_rate_1m: t.count as f64 * scale / coarse_span,
            burst_rate_10s: fine_count as f64 * scale / fine_span,
            inter_arrival_mean: iat_mean,
            inter_arrival_std: iat_std,
            packet_size_variance: size_var,
            unique_dst_ips: self.dst_ips.estimate(),
            unique_dst_ports: self.dst_ports.estimate(),
            syn_ratio: if t.tcp > 0 {
                t.syn as f64 / t.tcp as f64
            } else {
                0.0
            },
            ..WindowStats::default()
        }
    }
}

impl Default for OldWindows {
    fn default() -> Self {
        Self::new()
    }
}

/// Distinct-value estimator for a sliding window: linear counting
/// (Whang et al., 1990) over a bitmap of `64 · WORDS` bits per 10 s
/// generation, six generations for 60 s (256 bits: 192 bytes; the
/// destination addresses' 128 since schema v7), O(1) insert, no
/// allocation.
///
/// Hand-written: no crate offers a fixed-size, windowed distinct counter
/// that fits a per-source budget of a few hundred bytes. The estimate is
/// within a few percent up to ~300 values and saturates near 1,400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldDistinct<const WORDS: usize = 4> {
    generations: [[u64; WORDS]; GENS],
}

const GENS: usize = 6;

impl<const WORDS: usize> OldDistinct<WORDS> {
    const BITS: usize = WORDS * 64;

    pub const fn new() -> Self {
        OldDistinct {
            generations: [[0; WORDS]; GENS],
        }
    }

    /// Clears generation `g` (the window slot about to be reused).
    pub fn clear_generation(&mut self, g: usize) {
        self.generations[g % GENS] = [0; WORDS];
    }

    /// Clears every generation.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Records a value hash in generation `g`.
    pub fn insert(&mut self, g: usize, hash: u64) {
        let bit = (hash >> 56) as usize % Self::BITS;
        self.generations[g % GENS][bit / 64] |= 1u64 << (bit % 64);
    }

    /// Estimated distinct values across all generations.
    pub fn estimate(&self) -> f64 {
        let mut set = 0u32;
        for w in 0..WORDS {
            let mut word = 0u64;
            for g in &self.generations {
                word |= g[w];
            }
            set += word.count_ones();
        }
        let m = Self::BITS as f64;
        let zeros = Self::BITS as u32 - set;
        if zeros == 0 {
            return (m * m.ln()).round();
        }
        (m * (m / zeros as f64).ln()).round()
    }
}
