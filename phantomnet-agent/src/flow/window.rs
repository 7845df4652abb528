use phantomnet_common::{IPPROTO_TCP, PacketSample, sample_flags};

use super::WindowStats;
use super::census::{Census, CensusStats};
use super::coarse::{COARSE_SLOTS, Coarse};
use super::distinct::{AddrCounter, DistinctCounter, GENERATIONS, hash_bytes, mix};
use super::shares::Shares;

const NS: u64 = 1_000_000_000;
/// The 10 s window: ten 1 s slots.
const FINE_SLOTS: usize = 10;
const FINE_NS: u64 = NS;
const COARSE_NS: u64 = 5 * NS;
/// Distinct counters: six 10 s generations.
const GEN_NS: u64 = 10 * NS;
/// `last_ns` of a window that has seen no sample yet.
const EMPTY: u64 = u64::MAX;

/// The sliding windows of one source: a ring of ten 1 s packet counts for
/// the 10 s window, a ring of twelve 5 s buckets of sums for the 60 s
/// window, and windowed distinct counters for destination addresses and
/// ports. Updating costs O(1) amortised (a time jump clears at most one
/// ring's worth of slots) and never allocates.
///
/// The windows cover whole slots: the 60 s window spans the current 5 s
/// slot plus the 11 before it (55–60 s), and rates divide by that exact
/// span; the 10 s window likewise spans 9–10 s.
///
/// 496 bytes (494 used), 4-byte aligned (see `docs/DETECTION.md` for the
/// breakdown);
/// the layout before issue 11 took 1,016 and survives as the test oracle
/// in `flow/tests/reference.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceWindows {
    /// Samples per 1 s slot; saturates at `u16::MAX` (65,535 samples of one
    /// source in one second).
    fine: [u16; FINE_SLOTS],
    coarse: Coarse,
    dst_ips: AddrCounter,
    dst_ports: DistinctCounter,
    /// Schema v2's running packet-kind shares (uniform samples only).
    shares: Shares,
    /// Schema v7's Horvitz–Thompson counts (every sample, weighted), on
    /// the distinct counters' generations.
    census: Census,
    /// The window clock, two halves so the struct needs only 4-byte
    /// alignment; see [`Clock`].
    last_ns: [u32; 2],
}

/// What `last_ns` holds. Priority samples must not move the clock that
/// gaps and rate spans are measured from (the uniform stratum's), yet the
/// distinct counters they feed need a clock of their own: both fit in the
/// one word, so the windows cost no more than before priority sampling.
///
/// - [`EMPTY`]: no sample yet.
/// - `Uniform { last, lead }`: `last` is the latest uniform (1-in-N)
///   sample's timestamp (low 60 bits); the distinct counters' generation
///   is `lead` (top 4 bits, 0..=[`LEAD_MAX`]) ahead of `last`'s, moved
///   there by later priority samples. Without priority samples `lead` is
///   0 and the word is the plain timestamp, as before.
/// - `Priority { at }`: no uniform sample in the window, only priority
///   ones; `at` is the latest one's timestamp (top 4 bits all set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Empty,
    Uniform { last: u64, lead: u64 },
    Priority { at: u64 },
}

/// Timestamps kept below 2^60 ns (36 years of uptime); a later one is
/// taken as this.
const TS_MAX: u64 = (1 << 60) - 2;
const TS_MASK: u64 = (1 << 60) - 1;
/// Most distinct-counter generations (10 s each) priority samples may run
/// ahead of the latest uniform sample; past it the uniform windows (60 s)
/// have long expired, and the source is `Clock::Priority` until its next
/// uniform sample.
const LEAD_MAX: u64 = 14;
const PRIORITY_TAG: u64 = 0xF;

impl Clock {
    fn decode(word: u64) -> Clock {
        match word >> 60 {
            _ if word == EMPTY => Clock::Empty,
            PRIORITY_TAG => Clock::Priority { at: word & TS_MASK },
            lead => Clock::Uniform {
                last: word & TS_MASK,
                lead,
            },
        }
    }

    fn encode(self) -> u64 {
        match self {
            Clock::Empty => EMPTY,
            Clock::Uniform { last, lead } => (lead << 60) | last,
            Clock::Priority { at } => (PRIORITY_TAG << 60) | at,
        }
    }
}

impl SourceWindows {
    pub fn new() -> Self {
        let mut w = SourceWindows {
            fine: [0; FINE_SLOTS],
            coarse: Coarse::ZERO,
            dst_ips: AddrCounter::new(),
            dst_ports: DistinctCounter::new(),
            shares: Shares::default(),
            census: Census::default(),
            last_ns: [0; 2],
        };
        w.set_clock(Clock::Empty);
        w
    }

    fn clock(&self) -> Clock {
        Clock::decode(((self.last_ns[1] as u64) << 32) | self.last_ns[0] as u64)
    }

    fn set_clock(&mut self, c: Clock) {
        let w = c.encode();
        self.last_ns = [w as u32, (w >> 32) as u32];
    }

    /// The latest uniform sample's timestamp, if any is in the window.
    fn uniform_last(&self) -> Option<u64> {
        match self.clock() {
            Clock::Uniform { last, .. } => Some(last),
            _ => None,
        }
    }

    /// True until the first uniform (1-in-N) sample: priority samples
    /// alone leave the rate windows empty.
    pub fn is_empty(&self) -> bool {
        self.uniform_last().is_none()
    }

    /// Uniform samples in the 60 s window as of the latest one.
    pub fn samples_60s(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        self.coarse.count.iter().map(|&c| c as u64).sum()
    }

    /// Uniform samples in the current 1 s slot (the latest one's second).
    pub fn samples_this_second(&self) -> u16 {
        match self.uniform_last() {
            Some(last) => self.fine[((last / FINE_NS) % FINE_SLOTS as u64) as usize],
            None => 0,
        }
    }

    /// Latest uniform sample's timestamp (0 before the first).
    pub fn last_ns(&self) -> u64 {
        self.uniform_last().unwrap_or(0)
    }

    /// Adds one sample. A uniform (1-in-N) sample updates every window
    /// exactly as before priority sampling existed. A timestamp older than
    /// the latest one (reordered samples from several CPUs) is counted at
    /// the latest time. (Timestamps are capped at 2^60 − 2 ns, 36 years of
    /// uptime: the top bits of the clock word carry its state.)
    ///
    /// A priority sample (`sample_flags::PRIORITY`: taken with probability
    /// 1, on top of the 1-in-N draw) adds no count, sum or gap and does not
    /// move the uniform clock: rates, the SYN ratio, size variance and
    /// gaps stay the uniform stratum's, unbiased when scaled by N. It only
    /// adds its destination address and port to the distinct counters
    /// (distinct counts are not scaled: every probe counts).
    pub fn record(&mut self, s: &PacketSample) {
        if s.flags & sample_flags::PRIORITY != 0 {
            self.record_priority(s);
            return;
        }
        let (ts, gap) = match self.clock() {
            Clock::Uniform { last, .. } => {
                let ts = s.timestamp_ns.clamp(last, TS_MAX);
                self.advance(last, ts);
                (ts, Some((ts - last) as f64 / NS as f64))
            }
            Clock::Empty => {
                self.advance_all_fresh();
                (s.timestamp_ns.min(TS_MAX), None)
            }
            Clock::Priority { at } => {
                // The first uniform sample after priority ones: fresh rate
                // windows; the distinct counters run on from `at`.
                self.fine = [0; FINE_SLOTS];
                self.coarse.restart();
                (s.timestamp_ns.clamp(at, TS_MAX), None)
            }
        };
        let distinct_gen = match self.clock() {
            Clock::Uniform { last, lead } => last / GEN_NS + lead,
            Clock::Priority { at } => at / GEN_NS,
            Clock::Empty => ts / GEN_NS,
        };
        let g = self.advance_distinct(distinct_gen, ts);
        self.set_clock(Clock::Uniform {
            last: ts,
            lead: g - ts / GEN_NS,
        });

        let f = &mut self.fine[((ts / FINE_NS) % FINE_SLOTS as u64) as usize];
        *f = f.saturating_add(1);
        let tcp = s.protocol == IPPROTO_TCP;
        let syn = s.opens_connection();
        self.coarse.add(
            ((ts / COARSE_NS) % COARSE_SLOTS as u64) as usize,
            s.packet_len,
            tcp,
            syn,
            gap,
        );
        let n: u64 = self.coarse.count.iter().map(|&c| c as u64).sum();
        self.shares.add(s, n);
        self.insert_distinct(s, g, ts);
    }

    fn record_priority(&mut self, s: &PacketSample) {
        let ts = s.timestamp_ns.min(TS_MAX);
        match self.clock() {
            Clock::Empty => {
                self.advance_all_fresh();
                self.set_clock(Clock::Priority { at: ts });
                self.insert_distinct(s, ts / GEN_NS, ts);
            }
            Clock::Priority { at } => {
                let g = self.advance_distinct(at / GEN_NS, ts);
                self.set_clock(Clock::Priority { at: at.max(ts) });
                self.insert_distinct(s, g, ts);
            }
            Clock::Uniform { last, lead } => {
                let ts = ts.max(last);
                let g = self.advance_distinct(last / GEN_NS + lead, ts);
                let lead = g - last / GEN_NS;
                if lead <= LEAD_MAX {
                    self.set_clock(Clock::Uniform { last, lead });
                } else {
                    // The uniform windows expired long ago (`g` is this
                    // sample's generation).
                    self.fine = [0; FINE_SLOTS];
                    self.coarse.restart();
                    self.set_clock(Clock::Priority { at: ts });
                }
                self.insert_distinct(s, g, ts);
            }
        }
    }

    /// Moves the distinct counters' generation from `from` to `ts`'s if
    /// that is later, clearing the generations it expires; returns the
    /// (new) current generation.
    fn advance_distinct(&mut self, from: u64, ts: u64) -> u64 {
        let new = ts / GEN_NS;
        let gens = GENERATIONS as u64;
        for g in (from + 1)..=new.min(from + gens) {
            self.dst_ips.clear_generation(g as usize);
            self.dst_ports.clear_generation(g as usize);
            self.census.clear_generation(g as usize);
        }
        // A run of signature matches is live while its latest match is
        // under six generations old. At `from` it was (this runs at every
        // sample, so an expired run is cleared the first time it expires,
        // and the stamp's low byte never wraps unnoticed).
        let [hits, stamp] = self.coarse.signature;
        if hits > 0 && new > from {
            let age = u64::from((from as u8).wrapping_sub(stamp)) + (new - from);
            if age >= gens {
                self.coarse.signature = [0; 2];
            }
        }
        from.max(new)
    }

    /// Adds `s`'s destination to the distinct counters and `s` to the
    /// census: in `ts`'s generation, or the current one `g` if `ts`'s has
    /// expired.
    fn insert_distinct(&mut self, s: &PacketSample, g: u64, ts: u64) {
        let own = ts / GEN_NS;
        let generation = if own + GENERATIONS as u64 > g { own } else { g } as usize;
        let dst_len = if s.family == 6 { 16 } else { 4 };
        self.census.add(generation, s);
        self.dst_ips
            .insert(generation, hash_bytes(&s.dst_addr[..dst_len]));
        self.dst_ports
            .insert(generation, mix(s.dst_port as u64 ^ 0x5A5A_0000));
    }

    fn advance_all_fresh(&mut self) {
        self.fine = [0; FINE_SLOTS];
        self.coarse = Coarse::ZERO;
        self.dst_ips.clear();
        self.dst_ports.clear();
        self.census = Census::default();
    }

    /// Counts a signature match of the sample just [`record`](Self::record)ed
    /// (schema v3's `signature_hits`), stamped with the current generation.
    /// The caller matches the payload (`correlate` comes after `flow` in
    /// the pipeline).
    pub fn add_signature_hit(&mut self) {
        let g = match self.clock() {
            Clock::Uniform { last, lead } => last / GEN_NS + lead,
            Clock::Priority { at } => at / GEN_NS,
            Clock::Empty => return,
        };
        let hits = self.coarse.signature[0].saturating_add(1);
        self.coarse.signature = [hits, g as u8];
    }

    /// Signature matches of the current run (0 once 60 s passed without
    /// one; [`advance_distinct`](Self::advance_distinct) clears it).
    fn signature_hits(&self) -> f64 {
        self.coarse.signature[0] as f64
    }

    /// Clears the rate windows' slots that the move from the latest uniform
    /// timestamp `last` to `ts` expires.
    fn advance(&mut self, last: u64, ts: u64) {
        let (old, new) = (last / FINE_NS, ts / FINE_NS);
        for s in (old + 1)..=new.min(old + FINE_SLOTS as u64) {
            self.fine[(s % FINE_SLOTS as u64) as usize] = 0;
        }
        let (old, new) = (last / COARSE_NS, ts / COARSE_NS);
        for s in (old + 1)..=new.min(old + COARSE_SLOTS as u64) {
            self.coarse.clear((s % COARSE_SLOTS as u64) as usize);
        }
    }

    /// Schema v7's estimates as of `at` or the latest sample, whichever is
    /// later: the census over the live generations, whose span is the
    /// current 10 s generation's elapsed part plus the five before it
    /// (50–60 s). (A priority sample's exact time is not kept once a
    /// uniform one came before it: the start of the generation it moved
    /// the clock to stands for it.)
    fn census_at(&self, sample_every: u32, at: u64) -> CensusStats {
        let latest = match self.clock() {
            Clock::Empty => return CensusStats::default(),
            Clock::Uniform { last, lead } => last.max((last / GEN_NS + lead) * GEN_NS),
            Clock::Priority { at } => at,
        };
        let now = at.min(TS_MAX).max(latest);
        let span = ((GENERATIONS as u64 - 1) * GEN_NS + now % GEN_NS) as f64 / NS as f64;
        self.census.stats(sample_every, span)
    }

    /// The window statistics as of the latest uniform sample, with rates
    /// and inter-arrival times corrected for 1-in-`sample_every` sampling.
    pub fn stats(&self, sample_every: u32) -> WindowStats {
        self.stats_at(sample_every, 0)
    }

    /// The window statistics as of `at` (a priority sample's time) or the
    /// latest uniform sample, whichever is later. The rate windows are the
    /// uniform stratum's: a slot that `at` has moved out of the window is
    /// left out and rates divide by the span ending at `at`, without
    /// changing the windows. With no uniform sample in the window, rates,
    /// ratios, variance and gaps are 0 and only the distinct counts speak.
    pub fn stats_at(&self, sample_every: u32, at: u64) -> WindowStats {
        let census = self.census_at(sample_every, at);
        let Some(last) = self.uniform_last() else {
            return match self.clock() {
                Clock::Empty => WindowStats::default(),
                _ => WindowStats {
                    unique_dst_ips: self.dst_ips.estimate(),
                    unique_dst_ports: self.dst_ports.estimate(),
                    signature_hits: self.signature_hits(),
                    est_packet_rate: census.packet_rate,
                    est_conn_rate: census.conn_rate,
                    est_packets_per_conn: census.packets_per_conn,
                    ..WindowStats::default()
                },
            };
        };
        let scale = sample_every.max(1) as f64;
        let now = at.min(TS_MAX).max(last);
        // Whether ring slot `i` (of `n`, `width` ns each) still holds a
        // slot inside the window ending at `now` (a slot never written is
        // zero either way). At `now == last` all do.
        // At `now == last` (every uniform sample) all do: the divisions
        // below are skipped, which is most of this function's cost.
        let all = now == last;
        let live = |i: usize, n: u64, width: u64| {
            if all {
                return true;
            }
            let (l, cur) = (last / width, now / width);
            let back = (l % n + n - i as u64) % n;
            l.checked_sub(back).is_none_or(|s| s + n > cur)
        };
        let fine_count: u64 = (0..FINE_SLOTS)
            .filter(|&i| live(i, FINE_SLOTS as u64, FINE_NS))
            .map(|i| self.fine[i] as u64)
            .sum();
        let fine_span = (FINE_SLOTS as u64 - 1) as f64 + (now % FINE_NS) as f64 / NS as f64;
        let coarse_span =
            ((COARSE_SLOTS as u64 - 1) * COARSE_NS + now % COARSE_NS) as f64 / NS as f64;
        let c = &self.coarse;
        let slots: [bool; COARSE_SLOTS] =
            std::array::from_fn(|i| live(i, COARSE_SLOTS as u64, COARSE_NS));
        let (mut count, mut tcp, mut syn, mut gaps) = (0u64, 0u64, 0u64, 0u64);
        let (mut size_sum, mut size_sq, mut gap_sum) = (0u64, 0u64, 0.0f64);
        for i in (0..COARSE_SLOTS).filter(|&i| slots[i]) {
            count += c.count[i] as u64;
            tcp += c.tcp[i] as u64;
            syn += c.syn[i] as u64;
            gaps += c.gaps(i) as u64;
            size_sum += c.size_sum(i) as u64;
            size_sq += c.size_sq(i);
            gap_sum += c.gap_sum[i] as f64;
        }
        let (iat_mean, iat_std) = if gaps > 0 {
            let n = gaps as f64;
            let mean = gap_sum / n;
            // Chan et al.'s combination of the buckets' deviations.
            let mut m2 = 0.0;
            for i in (0..COARSE_SLOTS).filter(|&i| slots[i]) {
                let k = c.gaps(i);
                if k > 0 {
                    let d = c.gap_sum[i] as f64 / k as f64 - mean;
                    m2 += c.gap_m2[i] as f64 + k as f64 * d * d;
                }
            }
            let var = (m2 / n).max(0.0);
            (mean / scale, var.sqrt() / scale)
        } else {
            (0.0, 0.0)
        };
        // Every sum below 12 · 2^39 < 2^53: the f64 values are exact, and
        // the arithmetic is the old one operation for operation.
        let conns = syn.max(1) as f64;
        let share = |i: usize| if count > 0 { self.shares.get(i) } else { 0.0 };
        let size_var = if count > 0 {
            let n = count as f64;
            let mean = size_sum as f64 / n;
            (size_sq as f64 / n - mean * mean).max(0.0)
        } else {
            0.0
        };
        WindowStats {
            event_rate_1m: count as f64 * scale / coarse_span,
            burst_rate_10s: fine_count as f64 * scale / fine_span,
            inter_arrival_mean: iat_mean,
            inter_arrival_std: iat_std,
            packet_size_variance: size_var,
            unique_dst_ips: self.dst_ips.estimate(),
            unique_dst_ports: self.dst_ports.estimate(),
            syn_ratio: if tcp > 0 {
                syn as f64 / tcp as f64
            } else {
                0.0
            },
            new_conn_rate: syn as f64 * scale / coarse_span,
            packets_per_conn: count as f64 / conns,
            bytes_per_conn: size_sum as f64 / conns,
            payload_share: share(0),
            ack_only_share: share(1),
            rst_share: share(2),
            fin_share: share(3),
            signature_hits: self.signature_hits(),
            // The table's, not the windows': `FlowTable::server_refusals`.
            server_refusals: 0.0,
            server_answers: 0.0,
            server_errors: 0.0,
            est_packet_rate: census.packet_rate,
            est_conn_rate: census.conn_rate,
            est_packets_per_conn: census.packets_per_conn,
        }
    }
}

impl Default for SourceWindows {
    fn default() -> Self {
        Self::new()
    }
}
