//! Known-good sources: addresses seen behaving like real clients before an
//! attack started on their destination. A signature rule drops whatever
//! matches it; these sources are exempt (the data plane keeps them in a
//! hash map next to the rule).
//!
//! Two bounded tables, so an attacker cannot flush the list:
//! - *candidates* (LRU): a source enters on a sample that a real client
//!   sends (TCP with ACK set and payload, i.e. after a handshake; or any
//!   non-TCP packet). A spoofed flood only churns this table.
//! - *known* (LRU): a candidate is promoted once it has `min_samples`
//!   qualifying samples spanning `min_span_ns` (TCP), or `other_min_samples`
//!   spanning `other_min_span_ns` (other protocols). A spoofed source is
//!   seen once, so it never gets there. With 3 samples, a random IPv4
//!   source would have to be drawn three times while its candidate entry
//!   lives: about (16,384 / 2³²)² ≈ 10⁻¹¹ per spoofed sample.
//!
//! A SYN or a bare ACK never creates an entry, so SYN and ACK floods do
//! not even touch the candidates.

use std::net::IpAddr;

use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, TCP_RST, TCP_SYN};

use super::lru::SegmentedLru;
use super::same_prefix;
use crate::flow::SourceKey;

/// Known-good settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownGoodConfig {
    /// Caps of the two tables. Defaults 16,384 and 16,384.
    pub max_candidates: usize,
    pub max_known: usize,
    /// TCP: qualifying samples and the time they must span. Defaults 3 and 1 s.
    pub min_samples: u32,
    pub min_span_ns: u64,
    /// Other protocols (no handshake to observe): defaults 4 samples over 30 s.
    pub other_min_samples: u32,
    pub other_min_span_ns: u64,
}

impl Default for KnownGoodConfig {
    fn default() -> Self {
        KnownGoodConfig {
            max_candidates: 16_384,
            max_known: 16_384,
            min_samples: 3,
            min_span_ns: 1_000_000_000,
            other_min_samples: 4,
            other_min_span_ns: 30_000_000_000,
        }
    }
}

/// Destinations remembered per source.
const DSTS: usize = 4;

#[derive(Debug, Clone)]
struct Candidate {
    first_ns: u64,
    last_ns: u64,
    samples: u32,
    dsts: Dsts,
}

#[derive(Debug, Clone)]
struct Known {
    /// When it qualified: it is exempt only from attacks that started after.
    confirmed_ns: u64,
    last_ns: u64,
    dsts: Dsts,
}

/// The last few destinations a source talked to (round robin).
#[derive(Debug, Clone, Default)]
struct Dsts {
    addrs: [Option<IpAddr>; DSTS],
    next: u8,
}

impl Dsts {
    fn add(&mut self, ip: IpAddr) {
        if self.addrs.contains(&Some(ip)) {
            return;
        }
        let i = usize::from(self.next) % DSTS;
        self.addrs[i] = Some(ip);
        self.next = ((i + 1) % DSTS) as u8;
    }

    fn any_in(&self, net: IpAddr, len: u8) -> bool {
        self.addrs
            .iter()
            .flatten()
            .any(|d| same_prefix(net, *d, len))
    }
}

/// The tracker (see the module docs).
#[derive(Debug)]
pub struct KnownGood {
    cfg: KnownGoodConfig,
    candidates: SegmentedLru<SourceKey, Candidate>,
    known: SegmentedLru<SourceKey, Known>,
}

impl KnownGood {
    /// Bytes per candidate and per known source (entry, key, table overhead).
    pub const BYTES_PER_CANDIDATE: usize = std::mem::size_of::<Candidate>()
        + std::mem::size_of::<SourceKey>()
        + SegmentedLru::<SourceKey, Candidate>::OVERHEAD_BYTES;
    pub const BYTES_PER_KNOWN: usize = std::mem::size_of::<Known>()
        + std::mem::size_of::<SourceKey>()
        + SegmentedLru::<SourceKey, Known>::OVERHEAD_BYTES;

    pub fn new(cfg: KnownGoodConfig) -> KnownGood {
        KnownGood {
            candidates: SegmentedLru::new(cfg.max_candidates),
            known: SegmentedLru::new(cfg.max_known),
            cfg,
        }
    }

    pub fn candidates_len(&self) -> usize {
        self.candidates.len()
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Whether `ip` is a known-good source.
    pub fn is_known(&self, ip: IpAddr) -> bool {
        self.known.get(&SourceKey::from(ip)).is_some()
    }

    /// Feeds one sample (every sample of the stream, attack or not).
    pub fn observe(&mut self, s: &PacketSample) {
        let key = SourceKey::of_sample(s);
        let dst = s.dst_ip();
        let ts = s.timestamp_ns;
        if self.known.find(&key).is_some() {
            // Refresh recency: traffic from it keeps it (the closure never runs).
            let (slot, _) = self.known.touch_or_insert(key, || Known {
                confirmed_ns: ts,
                last_ns: ts,
                dsts: Dsts::default(),
            });
            if let Some(k) = self.known.value_mut(slot) {
                k.last_ns = k.last_ns.max(ts);
                if Self::qualifies(s) {
                    k.dsts.add(dst);
                }
            }
            return;
        }
        if !Self::qualifies(s) {
            return;
        }
        let (slot, _) = self.candidates.touch_or_insert(key, || Candidate {
            first_ns: ts,
            last_ns: ts,
            samples: 0,
            dsts: Dsts::default(),
        });
        let tcp = s.protocol == IPPROTO_TCP;
        let (need, span) = if tcp {
            (self.cfg.min_samples, self.cfg.min_span_ns)
        } else {
            (self.cfg.other_min_samples, self.cfg.other_min_span_ns)
        };
        let Some(c) = self.candidates.value_mut(slot) else {
            return;
        };
        c.samples = c.samples.saturating_add(1);
        c.first_ns = c.first_ns.min(ts);
        c.last_ns = c.last_ns.max(ts);
        c.dsts.add(dst);
        if c.samples >= need.max(2) && c.last_ns - c.first_ns >= span {
            let dsts = c.dsts.clone();
            let (slot, _) = self.known.touch_or_insert(key, || Known {
                confirmed_ns: ts,
                last_ns: ts,
                dsts,
            });
            self.known.promote(slot);
        } else if c.samples >= 2 {
            // Seen more than once: out of the candidates' probation, so a
            // spoofed flood's one-offs cannot evict it.
            self.candidates.promote(slot);
        }
    }

    /// A sample a real client sends: TCP after the handshake (ACK and
    /// payload, not SYN or RST), or any non-TCP packet.
    fn qualifies(s: &PacketSample) -> bool {
        if s.protocol != IPPROTO_TCP {
            return true;
        }
        s.tcp_flags & TCP_ACK != 0 && s.tcp_flags & (TCP_SYN | TCP_RST) == 0 && s.payload_len > 0
    }

    /// [`KnownGood::exemptions`] for a signature's destination.
    pub fn exemptions_for(
        &self,
        sig: &super::Signature,
        attack_first_ns: u64,
        max: usize,
    ) -> Vec<IpAddr> {
        self.exemptions(sig.dst, sig.dst_prefix_len, attack_first_ns, max)
    }

    /// The sources to exempt from a rule on `dst`/`prefix_len` for an
    /// attack that started at `attack_first_ns`: known-good sources,
    /// confirmed before then, that talked to a destination inside it. At
    /// most `max` of them, most recently seen first.
    pub fn exemptions(
        &self,
        dst: IpAddr,
        prefix_len: u8,
        attack_first_ns: u64,
        max: usize,
    ) -> Vec<IpAddr> {
        let mut out: Vec<(u64, IpAddr)> = self
            .known
            .iter()
            .filter(|(_, k)| k.confirmed_ns < attack_first_ns && k.dsts.any_in(dst, prefix_len))
            .map(|(key, k)| (k.last_ns, key.ip()))
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.into_iter().take(max).map(|(_, ip)| ip).collect()
    }
}
