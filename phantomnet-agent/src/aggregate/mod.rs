//! Aggregate detection: attacks spread over many sources, recognised as one
//! attack by what they target (issue 11).
//!
//! The per-source path ([`crate::detect`]) decides about one source at a
//! time, so a spoofed flood (every packet a new random source) or a botnet
//! of modest sources passes it untouched. This module watches the same
//! sample stream by *aggregate key* instead: the destination service
//! (address, protocol, port), the destination host (address, protocol), the
//! destination /24 or /64, and the source /24 or /64. Each key keeps a
//! baseline of its normal rate; a key whose rate leaps above both a floor
//! and k × its baseline, with traffic from many distinct sources, is an
//! attack. For a destination attack the module then synthesises a
//! [`Signature`] from the attack's samples against the destination's
//! pre-attack samples, and [`KnownGood`] lists the sources to exempt from it.
//!
//! Pure: no I/O, no maps, no clock. Time comes only from the samples'
//! `timestamp_ns` (or an explicit [`AggregateDetector::advance`]), so a
//! replay gives the same events. Every table has a hard cap with O(1)
//! eviction; docs/DETECTION.md ("Aggregate detection") lists the bytes per
//! entry and the defaults.

mod baseline;
mod detect;
mod hll;
mod known_good;
mod lru;
mod rule;
mod signature;
mod synth;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::net::IpAddr;

pub use detect::{AggregateDetector, AggregateStats};
pub use hll::Hll;
pub use known_good::{KnownGood, KnownGoodConfig};
pub use lru::SegmentedLru;
pub use signature::{MAX_PAYLOAD_PREFIX, Signature, SignatureParseError};
pub use synth::{SignatureBasis, SynthConfig};

use crate::dataplane::Prefix;

/// Every tunable of the aggregate detector, with documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateConfig {
    /// Length of a rate tick (ns). Rates are packets per tick, scaled to /s. Default 1 s.
    pub tick_ns: u64,
    /// Time constant of the baseline EWMA (s): the per-tick weight is
    /// 1 − e^(−tick/τ), and the first ticks of a key average plainly. A rate
    /// that grows by less than k× within τ is followed, not flagged. Default 60 s.
    pub baseline_tau_secs: f64,
    /// No attack starts during the detector's first `warmup_secs` of sample
    /// time, so busy services get a baseline before they can trip. Default 5 s.
    pub warmup_secs: f64,
    /// Absolute floor (estimated packets/s) a key must exceed. Default 1,000.
    pub min_pps: f64,
    /// The rate must also exceed `rate_factor` × the key's baseline. Default 3.
    pub rate_factor: f64,
    /// Distinct sampled sources in the tick a destination key needs (the
    /// spread test; a single-source flood is the per-source path's). Default 16.
    pub min_distinct_sources: f64,
    /// Distinct sampled sources in the tick a source-prefix key needs. Default 8.
    pub min_distinct_in_src_prefix: f64,
    /// Prefix lengths of the destination- and source-prefix keys. Defaults 24 and 64.
    pub v4_prefix_len: u8,
    pub v6_prefix_len: u8,
    /// An attack is quiet in a tick whose rate is below `end_ratio` × the
    /// threshold it started with; it ends after `hold_secs` of quiet ticks.
    /// Defaults 0.5 and 10 s.
    pub end_ratio: f64,
    pub hold_secs: f64,
    /// Period of [`AttackEvent::Updated`] while an attack lasts. Default 5 s.
    pub update_secs: f64,
    /// Cap of the aggregate-key table (all four kinds). Default 16,384.
    pub max_keys: usize,
    /// Cap of the per-destination-host baseline reservoirs. Default 1,024.
    pub max_hosts: usize,
    /// Most attacks tracked at once; further triggers are counted, not reported. Default 64.
    pub max_attacks: usize,
    /// Baseline samples kept per destination host, and how many a host may
    /// admit per tick (so the reservoir spans minutes, not the last burst).
    /// Defaults 128 and 8.
    pub baseline_reservoir: usize,
    pub baseline_admit_per_tick: u32,
    /// Attack samples kept per attack for synthesis. Default 256.
    pub attack_reservoir: usize,
    /// An attack is announced (with its signature) once it has this many
    /// samples, or at the next tick boundary, whichever is first. Default 64.
    pub announce_after_samples: usize,
    /// Signature selection criteria.
    pub synth: SynthConfig,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            tick_ns: 1_000_000_000,
            baseline_tau_secs: 60.0,
            warmup_secs: 5.0,
            min_pps: 1_000.0,
            rate_factor: 3.0,
            min_distinct_sources: 16.0,
            min_distinct_in_src_prefix: 8.0,
            v4_prefix_len: 24,
            v6_prefix_len: 64,
            end_ratio: 0.5,
            hold_secs: 10.0,
            update_secs: 5.0,
            max_keys: 16_384,
            max_hosts: 1_024,
            max_attacks: 64,
            baseline_reservoir: 128,
            baseline_admit_per_tick: 8,
            attack_reservoir: 256,
            announce_after_samples: 64,
            synth: SynthConfig::default(),
        }
    }
}

/// What an aggregate counts traffic by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateKey {
    /// One service: destination address, protocol, destination port (0 for
    /// protocols without ports).
    Service {
        dst: IpAddr,
        protocol: u8,
        port: u16,
    },
    /// One destination host, any port (catches floods to random ports).
    Host { dst: IpAddr, protocol: u8 },
    /// A destination /24 or /64 (catches carpet bombing across hosts).
    DstPrefix { prefix: Prefix, protocol: u8 },
    /// A source /24 or /64, any destination (distributed attackers inside
    /// one network).
    SrcPrefix { prefix: Prefix },
}

impl AggregateKey {
    /// Destination keys, most specific first: a broader key defers to a
    /// narrower one that explains its traffic.
    pub(crate) fn dst_rank(&self) -> Option<u8> {
        match self {
            AggregateKey::Service { .. } => Some(0),
            AggregateKey::Host { .. } => Some(1),
            AggregateKey::DstPrefix { .. } => Some(2),
            AggregateKey::SrcPrefix { .. } => None,
        }
    }

    /// The destination a signature for this key applies to, and the
    /// protocol and port it is fixed to. `None` for source prefixes.
    pub(crate) fn scope(&self) -> Option<(IpAddr, u8, u8, Option<u16>)> {
        match *self {
            AggregateKey::Service {
                dst,
                protocol,
                port,
            } => Some((dst, host_len(dst), protocol, Some(port))),
            AggregateKey::Host { dst, protocol } => Some((dst, host_len(dst), protocol, None)),
            AggregateKey::DstPrefix { prefix, protocol } => {
                Some((prefix.addr(), prefix.prefix_len(), protocol, None))
            }
            AggregateKey::SrcPrefix { .. } => None,
        }
    }

    /// Whether the two destination keys' traffic overlaps (one's scope
    /// contains the other's). Source-prefix keys overlap only themselves.
    pub(crate) fn overlaps(&self, other: &AggregateKey) -> bool {
        match (self.scope(), other.scope()) {
            (Some((a, al, ap, aport)), Some((b, bl, bp, bport))) => {
                let ports = match (aport, bport) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                let len = al.min(bl);
                ap == bp && ports && same_prefix(a, b, len)
            }
            _ => self == other,
        }
    }
}

fn host_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Whether `a` and `b` agree on their first `len` bits (false across families).
pub(crate) fn same_prefix(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn proto_text(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        n => format!("proto {n}"),
    }
}

impl fmt::Display for AggregateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateKey::Service {
                dst,
                protocol,
                port,
            } => write!(f, "service {dst} {}/{port}", proto_text(*protocol)),
            AggregateKey::Host { dst, protocol } => {
                write!(f, "host {dst} {}", proto_text(*protocol))
            }
            AggregateKey::DstPrefix { prefix, protocol } => {
                write!(f, "dst-prefix {prefix} {}", proto_text(*protocol))
            }
            AggregateKey::SrcPrefix { prefix } => write!(f, "src-prefix {prefix}"),
        }
    }
}

/// One attack's counts, as every event carries them, so the journal can
/// write one entry per attack from any of its events.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackReport {
    /// Unique per detector, increasing.
    pub id: u64,
    pub key: AggregateKey,
    /// Timestamp of the first sample of the tick in which the attack
    /// tripped, and of its latest sample (sample time, ns).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Samples counted for the attack so far.
    pub samples: u64,
    /// Estimated packets (each sample × the sampling rate at the time).
    pub est_packets: u64,
    /// Estimated distinct source addresses among the samples (a lower bound
    /// on the real count; for a spoofed flood, where each packet has a new
    /// source, the real count is about `est_packets`).
    pub est_distinct_sources: u64,
    /// Highest rate of a whole tick so far (estimated packets/s).
    pub peak_pps: f64,
    /// The key's baseline when the attack started, and the threshold it crossed (packets/s).
    pub baseline_pps: f64,
    pub threshold_pps: f64,
    /// The packet signature, if one sets the attack apart from the
    /// destination's normal traffic (never for source-prefix attacks). With
    /// `None` the caller can only rate-limit.
    pub signature: Option<Signature>,
    /// What the signature was checked against: the destination's baseline,
    /// or (when that was thin) the attack's traits alone, which the caller
    /// must pair with the known-good exemption.
    pub signature_basis: SignatureBasis,
}

/// What the detector reports, in order, each at most once per attack
/// except `Updated`.
#[derive(Debug, Clone, PartialEq)]
pub enum AttackEvent {
    /// A new attack, with its signature (if any).
    Started(AttackReport),
    /// Every `update_secs` while it lasts. The signature changes only if the
    /// old one no longer covers the attack (or there was none).
    Updated(AttackReport),
    /// It has been quiet for `hold_secs`; its rules can be lifted.
    Ended(AttackReport),
}

impl AttackEvent {
    pub fn report(&self) -> &AttackReport {
        match self {
            AttackEvent::Started(r) | AttackEvent::Updated(r) | AttackEvent::Ended(r) => r,
        }
    }
}
