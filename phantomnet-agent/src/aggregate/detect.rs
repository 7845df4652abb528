//! The aggregate detector: sample in, attack events out.

use std::net::IpAddr;

use phantomnet_common::{PacketSample, action};

use super::baseline::{CompletedTick, HostBaseline, KeyState};
use super::hll::{Hll, hash_addr, mix};
use super::lru::SegmentedLru;
use super::signature::{SigSample, Signature};
use super::synth::SignatureBasis;
use super::{AggregateConfig, AggregateKey, AttackEvent, AttackReport};
use crate::dataplane::Prefix;

/// One tracked attack. About 10 KB with the default reservoir (256 × 34 B)
/// and distinct counter (1,024 B).
#[derive(Debug)]
struct Attack {
    id: u64,
    key: AggregateKey,
    first_ns: u64,
    last_ns: u64,
    /// Sample time at which it tripped: announced at most one tick later.
    trigger_ns: u64,
    samples: u64,
    est_packets: u64,
    distinct: Hll<1024>,
    /// Distinct sources of the tick it tripped in (counted before the attack existed).
    distinct_seed: f64,
    peak_pps: f64,
    baseline_pps: f64,
    threshold_pps: f64,
    /// The tick it tripped in.
    trip_tick: u64,
    tick: u64,
    tick_packets: u64,
    /// Last tick whose rate stayed above the end threshold.
    last_loud_tick: u64,
    announced: bool,
    last_update_ns: u64,
    reservoir: Vec<SigSample>,
    reservoir_seen: u64,
    signature: Option<Signature>,
    signature_basis: SignatureBasis,
}

impl Attack {
    fn roll(&mut self, t: u64, tick_secs: f64, end_pps: f64) {
        if t <= self.tick {
            return;
        }
        let rate = self.tick_packets as f64 / tick_secs;
        self.peak_pps = self.peak_pps.max(rate);
        if rate >= end_pps {
            self.last_loud_tick = self.tick;
        }
        self.tick = t;
        self.tick_packets = 0;
    }

    fn report(&self) -> AttackReport {
        AttackReport {
            id: self.id,
            key: self.key,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            samples: self.samples,
            est_packets: self.est_packets,
            est_distinct_sources: self.distinct.estimate().max(self.distinct_seed).round() as u64,
            peak_pps: self.peak_pps,
            baseline_pps: self.baseline_pps,
            threshold_pps: self.threshold_pps,
            signature: self.signature.clone(),
            signature_basis: self.signature_basis,
        }
    }
}

/// Counters for metrics and for proving the tables stay bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub samples: u64,
    pub keys: usize,
    pub key_evictions: u64,
    pub hosts: usize,
    pub active_attacks: usize,
    pub attacks_started: u64,
    pub attacks_ended: u64,
    /// Triggers not reported because `max_attacks` were active.
    pub attacks_dropped: u64,
}

#[path = "detect_baselines.rs"]
mod baselines;

/// Ticks before an attack tripped whose baseline samples from its own
/// sources it takes back.
const RAMP_TICKS: u64 = 3;

/// How many forgotten (destination, source) pairs the detector remembers.
const FORGOTTEN: usize = 64;

/// Recognises attacks spread over many sources (see the module docs).
///
/// Feed every sample to [`AggregateDetector::process`] with the sampling
/// rate in force; events are appended to the caller's vector.
#[derive(Debug)]
pub struct AggregateDetector {
    cfg: AggregateConfig,
    /// The (destination, source tag) pairs whose samples the baseline
    /// forgot most recently: a ring, so a throttled flood's every sample
    /// does not rescan the reservoir.
    forgotten: [(IpAddr, [u8; 4]); FORGOTTEN],
    forgotten_next: usize,
    /// The first tag bytes the ring holds, one bit each: most samples'
    /// bit is clear, and they skip the scan of the ring on the per-sample
    /// path.
    forgotten_bytes: [u64; 4],
    keys: SegmentedLru<AggregateKey, KeyState>,
    hosts: SegmentedLru<IpAddr, HostBaseline>,
    attacks: Vec<Option<Attack>>,
    active: usize,
    next_id: u64,
    now_ns: u64,
    start_ns: Option<u64>,
    tick: u64,
    alpha: f64,
    stats: AggregateStats,
}

fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::from((u32::from(a) & mask).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::from((u128::from(a) & mask).to_be_bytes())
        }
    }
}

impl AggregateDetector {
    /// Bytes one aggregate key costs: its rate state, the key, and the
    /// table's links and hash entry.
    pub const BYTES_PER_KEY: usize = std::mem::size_of::<KeyState>()
        + std::mem::size_of::<AggregateKey>()
        + SegmentedLru::<AggregateKey, KeyState>::OVERHEAD_BYTES;
    /// Bytes one destination host's baseline costs with `r` reservoir samples.
    pub const fn bytes_per_host(r: usize) -> usize {
        std::mem::size_of::<HostBaseline>()
            + std::mem::size_of::<IpAddr>()
            + SegmentedLru::<IpAddr, HostBaseline>::OVERHEAD_BYTES
            + r * std::mem::size_of::<SigSample>()
            // The current tick's pending samples (`baseline_admit_per_tick`, 8).
            + 8 * std::mem::size_of::<SigSample>()
    }
    /// Bytes one tracked attack costs with `r` reservoir samples.
    pub const fn bytes_per_attack(r: usize) -> usize {
        std::mem::size_of::<Option<Attack>>() + r * std::mem::size_of::<SigSample>()
    }

    pub fn new(cfg: AggregateConfig) -> AggregateDetector {
        let cfg = AggregateConfig {
            tick_ns: cfg.tick_ns.max(1_000_000),
            max_attacks: cfg.max_attacks.clamp(1, 65_536),
            ..cfg
        };
        let tau = cfg.baseline_tau_secs.max(1e-3);
        let alpha = 1.0 - (-(cfg.tick_ns as f64 / 1e9) / tau).exp();
        AggregateDetector {
            forgotten: [(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), [0; 4]); FORGOTTEN],
            forgotten_next: 0,
            forgotten_bytes: [0; 4],
            keys: SegmentedLru::new(cfg.max_keys),
            hosts: SegmentedLru::new(cfg.max_hosts),
            attacks: (0..cfg.max_attacks).map(|_| None).collect(),
            active: 0,
            next_id: 1,
            now_ns: 0,
            start_ns: None,
            tick: 0,
            alpha,
            stats: AggregateStats::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &AggregateConfig {
        &self.cfg
    }

    pub fn stats(&self) -> AggregateStats {
        AggregateStats {
            keys: self.keys.len(),
            key_evictions: self.keys.evictions(),
            hosts: self.hosts.len(),
            active_attacks: self.active,
            ..self.stats
        }
    }

    /// The learned baseline of a key (packets/s), if it is tracked.
    pub fn baseline_pps(&self, key: &AggregateKey) -> Option<f64> {
        self.keys.get(key).map(|k| k.baseline_pps)
    }

    /// Snapshots of the attacks in progress (announced or not yet).
    pub fn active_attacks(&self) -> Vec<AttackReport> {
        self.attacks.iter().flatten().map(Attack::report).collect()
    }

    fn tick_secs(&self) -> f64 {
        self.cfg.tick_ns as f64 / 1e9
    }

    /// Advances sample time without a sample (e.g. from a timer reading the
    /// same monotonic clock, when the stream is idle), so attacks can end.
    pub fn advance(&mut self, now_ns: u64, events: &mut Vec<AttackEvent>) {
        self.now_ns = self.now_ns.max(now_ns);
        let t = self.now_ns / self.cfg.tick_ns;
        if t > self.tick {
            self.housekeeping(t, events);
            self.tick = t;
        }
    }

    /// Counts one sample; each stands for `sample_every` packets (0 is taken
    /// as 1). Only the uniform (1-in-N) stratum is counted: a priority
    /// sample (`sample_flags::PRIORITY`, taken on top of the 1-in-N draw)
    /// is left out, so volumes, baselines and signatures are what they were
    /// before priority sampling.
    pub fn process(&mut self, s: &PacketSample, sample_every: u32, events: &mut Vec<AttackEvent>) {
        if s.flags & phantomnet_common::sample_flags::PRIORITY != 0 {
            return;
        }
        self.stats.samples += 1;
        self.start_ns.get_or_insert(s.timestamp_ns);
        self.advance(s.timestamp_ns, events);
        let t = self.tick;
        let every = u64::from(sample_every.max(1));
        let family = if s.family == 6 { 6 } else { 4 };
        let src_hash = hash_addr(family, &s.src_addr);
        let (dst, src) = (s.dst_ip(), s.src_ip());
        let len = if family == 6 {
            self.cfg.v6_prefix_len.min(128)
        } else {
            self.cfg.v4_prefix_len.min(32)
        };
        let sig = SigSample::of(s).tagged(src_hash);
        let keys = [
            Some(AggregateKey::Service {
                dst,
                protocol: s.protocol,
                port: s.dst_port,
            }),
            Some(AggregateKey::Host {
                dst,
                protocol: s.protocol,
            }),
            Prefix::new(network(dst, len), len)
                .ok()
                .map(|prefix| AggregateKey::DstPrefix {
                    prefix,
                    protocol: s.protocol,
                }),
            Prefix::new(network(src, len), len)
                .ok()
                .map(|prefix| AggregateKey::SrcPrefix { prefix }),
        ];
        for key in keys.into_iter().flatten() {
            self.observe_key(key, t, every, src_hash, s, &sig, events);
        }
        // A packet the data plane dropped by a rule on its source (BLOCK,
        // THROTTLE) was an attacker's: its source's samples leave the
        // baseline, so a signature is never refused for matching an attack
        // the per-source path already handled.
        if matches!(s.action_code(), action::BLOCK | action::THROTTLE) {
            self.forget_source(dst, sig.src_tag);
        } else if !self.is_forgotten(dst, sig.src_tag) {
            // (A throttled source's admitted packets pass: still not normal.)
            self.offer_baseline(dst, sig, t);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn observe_key(
        &mut self,
        key: AggregateKey,
        t: u64,
        every: u64,
        src_hash: u64,
        s: &PacketSample,
        sig: &SigSample,
        events: &mut Vec<AttackEvent>,
    ) {
        let (slot, inserted) = self.keys.touch_or_insert(key, || KeyState::new(t));
        if inserted && self.active > 0 {
            let linked = self.attack_slot_of(&key);
            if let Some(k) = self.keys.value_mut(slot) {
                k.attack = linked;
            }
        }
        let Some(k) = self.keys.value(slot) else {
            return;
        };
        if t > k.tick {
            let done = k.completed();
            let baselines = (k.baseline_pps, k.spread_baseline_pps);
            if matches!(
                key,
                AggregateKey::Host { .. } | AggregateKey::DstPrefix { .. }
            ) && done.samples > 0
            {
                self.evaluate_broad(key, slot, done, baselines);
            }
            let learn = !self.under_attack(&key);
            let (tick_secs, alpha) = (self.tick_secs(), self.alpha);
            let promote = match self.keys.value_mut(slot) {
                Some(k) => {
                    k.roll(t, tick_secs, alpha, learn);
                    k.active_ticks >= 2
                }
                None => false,
            };
            if promote {
                self.keys.promote(slot);
            }
        }
        // The narrower key this sample falls in, for the majority vote.
        let (vote_dst, vote_port) = match key {
            AggregateKey::Host { .. } => (s.dst_ip(), s.dst_port),
            _ => (s.dst_ip(), 0),
        };
        let Some(k) = self.keys.value_mut(slot) else {
            return;
        };
        k.record(s.timestamp_ns, every, src_hash, vote_dst, vote_port);
        let attack = k.attack;
        if let Some(a) = attack {
            self.record_attack(a, t, every, src_hash, s.timestamp_ns, sig, events);
            return;
        }
        // Services and source prefixes trip as soon as the tick's count
        // crosses the threshold; broader destination keys at the tick's end,
        // so that the narrowest key explaining a flood is the one reported.
        if matches!(
            key,
            AggregateKey::Service { .. } | AggregateKey::SrcPrefix { .. }
        ) {
            let Some(k) = self.keys.value(slot) else {
                return;
            };
            let threshold = self.threshold_pps(k.spread_baseline_pps);
            if self.warm()
                && k.spread_packets() as f64 >= threshold * self.tick_secs()
                && k.cur_samples >= k.next_check
            {
                let done = k.completed();
                let baseline = k.baseline_pps;
                if let Some(k) = self.keys.value_mut(slot) {
                    k.next_check = k.cur_samples.saturating_add(16);
                }
                let min_distinct = match key {
                    AggregateKey::SrcPrefix { .. } => self.cfg.min_distinct_in_src_prefix,
                    _ => self.cfg.min_distinct_sources,
                };
                if done.distinct >= min_distinct && !self.overlaps_active(&key) {
                    self.start(key, slot, done, baseline, threshold);
                }
            }
        }
    }

    fn warm(&self) -> bool {
        self.start_ns
            .is_some_and(|s0| self.now_ns.saturating_sub(s0) as f64 >= self.cfg.warmup_secs * 1e9)
    }

    fn threshold_pps(&self, baseline: f64) -> f64 {
        self.cfg.min_pps.max(self.cfg.rate_factor * baseline)
    }

    /// A host or prefix key's completed tick: an attack if its traffic,
    /// less what attacks on narrower keys inside it already account for,
    /// crossed the threshold from many sources, and no single narrower key
    /// (port or host) carried most of it (that key reports it instead).
    fn evaluate_broad(
        &mut self,
        key: AggregateKey,
        slot: u32,
        done: CompletedTick,
        (baseline, spread_baseline): (f64, f64),
    ) {
        if !self.warm() || done.distinct < self.cfg.min_distinct_sources {
            return;
        }
        let threshold = self.threshold_pps(spread_baseline);
        let mut excess = done.spread_packets;
        for a in self.attacks.iter().flatten() {
            if !a.key.overlaps(&key) {
                continue;
            }
            match (a.key.dst_rank(), key.dst_rank()) {
                (Some(ar), Some(kr)) if ar < kr => {
                    let inside = self.keys.get(&a.key).map_or(0, |k| k.packets_at(done.tick));
                    excess = excess.saturating_sub(inside);
                }
                // The same or a broader attack already covers this key.
                _ => return,
            }
        }
        if (excess as f64) < threshold * self.tick_secs() {
            return;
        }
        let narrower = match (key, done.major_dst) {
            (AggregateKey::Host { dst, protocol }, _) => Some(AggregateKey::Service {
                dst,
                protocol,
                port: done.major_port,
            }),
            (AggregateKey::DstPrefix { protocol, .. }, Some(dst)) => {
                Some(AggregateKey::Host { dst, protocol })
            }
            _ => None,
        };
        if let Some(n) = narrower {
            let carried = self.keys.get(&n).map_or(0, |k| k.packets_at(done.tick));
            if carried * 2 >= done.packets {
                return;
            }
        }
        self.start(key, slot, done, baseline, threshold);
    }

    /// Whether an active attack's key overlaps `key`.
    fn overlaps_active(&self, key: &AggregateKey) -> bool {
        self.active > 0 && self.attacks.iter().flatten().any(|a| a.key.overlaps(key))
    }

    fn under_attack(&self, key: &AggregateKey) -> bool {
        self.overlaps_active(key)
    }

    fn attack_slot_of(&self, key: &AggregateKey) -> Option<u32> {
        self.attacks
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.key == *key))
            .and_then(|i| u32::try_from(i).ok())
    }

    fn start(
        &mut self,
        key: AggregateKey,
        slot: u32,
        done: CompletedTick,
        baseline: f64,
        threshold: f64,
    ) {
        let Some(free) = self.attacks.iter().position(Option::is_none) else {
            self.stats.attacks_dropped += 1;
            if let Some(k) = self.keys.value_mut(slot) {
                // Do not count the same key again before its next tick.
                k.next_check = u32::MAX;
            }
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let attack = Attack {
            id,
            key,
            first_ns: done.first_ns,
            last_ns: self.now_ns,
            trigger_ns: self.now_ns,
            samples: u64::from(done.samples),
            est_packets: done.packets,
            distinct: Hll::new(),
            distinct_seed: done.distinct,
            peak_pps: 0.0,
            baseline_pps: baseline,
            threshold_pps: threshold,
            trip_tick: done.tick,
            tick: done.tick,
            tick_packets: done.packets,
            last_loud_tick: done.tick,
            announced: false,
            last_update_ns: self.now_ns,
            reservoir: Vec::with_capacity(self.cfg.attack_reservoir.min(4096)),
            reservoir_seen: 0,
            signature: None,
            signature_basis: SignatureBasis::Baseline,
        };
        if let Some(a) = self.attacks.get_mut(free) {
            *a = Some(attack);
        }
        self.active += 1;
        self.stats.attacks_started += 1;
        if let Some(k) = self.keys.value_mut(slot) {
            k.attack = u32::try_from(free).ok();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_attack(
        &mut self,
        idx: u32,
        t: u64,
        every: u64,
        src_hash: u64,
        ts: u64,
        sig: &SigSample,
        events: &mut Vec<AttackEvent>,
    ) {
        let tick_secs = self.tick_secs();
        let (cap, announce_after, end_ratio) = (
            self.cfg.attack_reservoir,
            self.cfg.announce_after_samples,
            self.cfg.end_ratio,
        );
        let Some(Some(a)) = self.attacks.get_mut(idx as usize) else {
            return;
        };
        a.roll(t, tick_secs, a.threshold_pps * end_ratio);
        a.samples += 1;
        a.est_packets = a.est_packets.saturating_add(every);
        a.tick_packets = a.tick_packets.saturating_add(every);
        a.distinct.insert(src_hash);
        a.last_ns = a.last_ns.max(ts);
        // Reservoir sampling, with the odds floored at 1 in 8 so it follows
        // an attack that changes its packets.
        a.reservoir_seen = (a.reservoir_seen + 1).min(8 * cap.max(1) as u64);
        if a.reservoir.len() < cap {
            a.reservoir.push(*sig);
        } else if cap > 0 {
            let j = mix(a.reservoir_seen ^ (a.id << 48) ^ a.samples) % a.reservoir_seen;
            if let Some(r) = a.reservoir.get_mut(j as usize) {
                *r = *sig;
            }
        }
        if !a.announced && a.reservoir.len() >= announce_after {
            self.announce(idx as usize, events);
        }
    }

    fn announce(&mut self, idx: usize, events: &mut Vec<AttackEvent>) {
        self.forget_attack_sources(idx);
        let Some(Some(a)) = self.attacks.get(idx) else {
            return;
        };
        let signature = self.synthesize_for(a);
        if let Some(Some(a)) = self.attacks.get_mut(idx) {
            if let Some((_, basis)) = signature {
                a.signature_basis = basis;
            }
            a.signature = signature.map(|(s, _)| s);
            a.announced = true;
            a.last_update_ns = self.now_ns;
            events.push(AttackEvent::Started(a.report()));
        }
    }

    /// At each new tick: announce attacks that waited a tick for samples,
    /// send updates, end the quiet ones.
    fn housekeeping(&mut self, t: u64, events: &mut Vec<AttackEvent>) {
        if self.active == 0 {
            return;
        }
        let tick_secs = self.tick_secs();
        let tick_ns = self.cfg.tick_ns;
        let hold_ticks = (self.cfg.hold_secs * 1e9 / tick_ns as f64).ceil().max(1.0) as u64;
        let update_ns = (self.cfg.update_secs * 1e9).max(1.0) as u64;
        for idx in 0..self.attacks.len() {
            let Some(Some(a)) = self.attacks.get_mut(idx) else {
                continue;
            };
            a.roll(t, tick_secs, a.threshold_pps * self.cfg.end_ratio);
            let (announced, trigger_ns) = (a.announced, a.trigger_ns);
            if !announced && self.now_ns.saturating_sub(trigger_ns) >= tick_ns {
                self.announce(idx, events);
            }
            let Some(Some(a)) = self.attacks.get(idx) else {
                continue;
            };
            if !a.announced {
                continue;
            }
            let quiet = t.saturating_sub(a.last_loud_tick + 1);
            if quiet >= hold_ticks {
                let key = a.key;
                if let Some(Some(a)) = self.attacks.get_mut(idx).map(Option::take) {
                    events.push(AttackEvent::Ended(a.report()));
                }
                self.active -= 1;
                self.stats.attacks_ended += 1;
                if let Some(slot) = self.keys.find(&key)
                    && let Some(k) = self.keys.value_mut(slot)
                {
                    k.attack = None;
                }
                continue;
            }
            if self.now_ns.saturating_sub(a.last_update_ns) >= update_ns {
                let stale = match &a.signature {
                    None => true,
                    Some(sig) => {
                        let hit = a.reservoir.iter().filter(|s| sig.matches_sig(s)).count();
                        (hit as f64)
                            < self.cfg.synth.attack_coverage * 0.9 * a.reservoir.len() as f64
                    }
                };
                let fresh = if stale {
                    self.forget_attack_sources(idx);
                    self.attacks
                        .get(idx)
                        .and_then(Option::as_ref)
                        .and_then(|a| self.synthesize_for(a))
                } else {
                    None
                };
                if let Some(Some(a)) = self.attacks.get_mut(idx) {
                    if let Some((sig, basis)) = fresh {
                        a.signature = Some(sig);
                        a.signature_basis = basis;
                    }
                    a.last_update_ns = self.now_ns;
                    events.push(AttackEvent::Updated(a.report()));
                }
            }
        }
    }
}
