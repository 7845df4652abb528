//! Signature synthesis: from an attack's samples and the destination's
//! pre-attack (baseline) samples, the fields that set the attack apart.
//!
//! A field enters the signature only if it is (near-)constant or tightly
//! ranged in the attack, *and* it discriminates: alone, it leaves out a
//! real share of the baseline samples in the signature's scope. The whole
//! signature must then cover the attack (≥ `attack_coverage` of the samples
//! that are not the key's normal traffic) and match at most
//! `max_baseline_match` of the destination's baseline samples. If nothing
//! meets that, there is no signature: the caller only rate-limits.
//!
//! With a thin baseline (fewer than `min_baseline_samples`: an agent just
//! started, a quiet service whose clients left only a few uniform samples)
//! nothing can be proven harmless, so the signature falls back to the
//! attack's own traits: every field tight in the attack that the baseline
//! samples there are do not show to be common, with at least a length, a
//! payload prefix or a set flag among them, and no match among those
//! samples at all. What spares the
//! target's clients then is the rule's known-good exemption
//! ([`crate::aggregate::KnownGood`]); [`SignatureBasis::AttackTraits`]
//! tells the caller so.

use std::net::IpAddr;

use phantomnet_common::IPPROTO_TCP;

use super::signature::{MAX_PAYLOAD_PREFIX, SigSample, Signature};

/// Selection criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Fewest attack samples to synthesise from, and fewest baseline
    /// samples of the destination to check a signature against. Defaults
    /// 32 and 16: a quiet service at 1-in-16 sampling collects a few
    /// baseline samples a second, and what keeps a signature off the
    /// clients is that it must match none of them (1 % of fewer than 100).
    /// Below 16 the signature comes from the attack's traits alone
    /// ([`SignatureBasis::AttackTraits`]).
    pub min_attack_samples: usize,
    pub min_baseline_samples: usize,
    /// Share of the attack's own packets (the key's samples less its
    /// baseline share) the signature must match. Default 0.99.
    pub attack_coverage: f64,
    /// Most of the destination's baseline samples it may match. Default 0.01.
    pub max_baseline_match: f64,
    /// A field discriminates if, alone, it matches at most this share of the
    /// baseline samples in scope. Default 0.9.
    pub max_field_baseline_share: f64,
    /// Widest ranges that count as "tight": TTL 16, frame length 64 bytes,
    /// destination port (host and prefix keys) 0, i.e. one port.
    pub max_ttl_width: u16,
    pub max_len_width: u16,
    pub max_port_width: u16,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            min_attack_samples: 32,
            min_baseline_samples: 16,
            attack_coverage: 0.99,
            max_baseline_match: 0.01,
            max_field_baseline_share: 0.9,
            max_ttl_width: 16,
            max_len_width: 64,
            max_port_width: 0,
        }
    }
}

/// What a synthesized signature was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureBasis {
    /// The destination's baseline: each field discriminates, and the whole
    /// matches at most `max_baseline_match` of it.
    Baseline,
    /// The baseline was thin (fewer than `min_baseline_samples`): the
    /// attack's tight fields, matching none of the few baseline samples
    /// there were. Only the known-good exemption spares clients the
    /// baseline did not show.
    AttackTraits,
}

impl SignatureBasis {
    /// Whether a baseline of `samples` is too thin to check a signature against.
    pub fn of(samples: usize, cfg: &SynthConfig) -> SignatureBasis {
        if samples < cfg.min_baseline_samples.max(1) {
            SignatureBasis::AttackTraits
        } else {
            SignatureBasis::Baseline
        }
    }
}

/// Where the signature applies: destination (host or prefix), protocol,
/// and the port if the key fixes one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    pub family: u8,
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub protocol: u8,
    pub port: Option<u16>,
}

/// The shortest inclusive range holding at least `need` of `values`.
fn shortest_range(mut values: Vec<u16>, need: usize) -> Option<(u16, u16)> {
    if need == 0 || need > values.len() {
        return None;
    }
    values.sort_unstable();
    (0..=values.len() - need)
        .map(|i| (values[i], values[i + need - 1]))
        .min_by_key(|(lo, hi)| hi - lo)
}

fn share(samples: &[&SigSample], f: impl Fn(&SigSample) -> bool) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().filter(|s| f(s)).count() as f64 / samples.len() as f64
}

/// The longest payload prefix (1..=8 bytes) at least `need` attack samples share.
fn common_payload(attack: &[&SigSample], need: usize) -> Option<Vec<u8>> {
    for len in (1..=MAX_PAYLOAD_PREFIX).rev() {
        let mut prefixes: Vec<&[u8]> = attack
            .iter()
            .filter(|s| usize::from(s.payload_valid) >= len)
            .filter_map(|s| s.payload.get(..len))
            .collect();
        if prefixes.len() < need {
            continue;
        }
        prefixes.sort_unstable();
        let mut best: (usize, &[u8]) = (0, &[]);
        let mut run = 0;
        for i in 0..prefixes.len() {
            run = if i > 0 && prefixes[i] == prefixes[i - 1] {
                run + 1
            } else {
                1
            };
            if run > best.0 {
                best = (run, prefixes[i]);
            }
        }
        if best.0 >= need {
            return Some(best.1.to_vec());
        }
    }
    None
}

/// Synthesises a signature for an attack on `scope`. `benign_share` is the
/// expected share of the attack samples that are the key's normal traffic
/// (its baseline rate over the attack's rate); it lowers the coverage asked
/// of each field so those samples need not match.
pub(crate) fn synthesize(
    scope: Scope,
    attack: &[SigSample],
    baseline: &[SigSample],
    benign_share: f64,
    cfg: &SynthConfig,
) -> Option<Signature> {
    let base = Signature {
        family: scope.family,
        dst: scope.dst,
        dst_prefix_len: scope.prefix_len,
        protocol: Some(scope.protocol),
        tcp_flags: None,
        ttl: None,
        packet_len: None,
        dst_port: scope.port.map(|p| (p, p)),
        payload_prefix: None,
    };
    let a: Vec<&SigSample> = attack.iter().filter(|s| base.matches_fields(s)).collect();
    if a.len() < cfg.min_attack_samples.max(1) {
        return None;
    }
    let thin = SignatureBasis::of(baseline.len(), cfg) == SignatureBasis::AttackTraits;
    let all_b: Vec<&SigSample> = baseline.iter().collect();
    let b: Vec<&SigSample> = baseline.iter().filter(|s| base.matches_fields(s)).collect();
    // The attack's samples include its target's normal traffic. The
    // baseline rate says how much on average; a burst (a bulk transfer
    // during the flood) can be far more, so the share of attack samples
    // shaped exactly like baseline ones (same flags and length) counts too.
    // It only lowers the coverage asked; what spares the clients is the
    // baseline check at the end.
    let shapes: std::collections::HashSet<(u8, u16)> =
        b.iter().map(|s| (s.tcp_flags, s.packet_len)).collect();
    let looks_benign = if a.is_empty() {
        0.0
    } else {
        a.iter()
            .filter(|s| shapes.contains(&(s.tcp_flags, s.packet_len)))
            .count() as f64
            / a.len() as f64
    };
    let benign = if benign_share.is_finite() {
        benign_share.max(looks_benign).clamp(0.0, 0.5)
    } else {
        looks_benign.clamp(0.0, 0.5)
    };
    let coverage = cfg.attack_coverage.clamp(0.0, 1.0) * (1.0 - benign);
    let need = ((coverage * a.len() as f64).ceil() as usize).clamp(1, a.len());
    // A field discriminates if, alone, it leaves out a real share of the
    // baseline in scope. With no baseline in scope, nothing does: the scope
    // alone already spares every normal client. With a thin baseline, a
    // tight field is the attack's trait unless the few samples in scope
    // show it to be common.
    let discriminates = |f: &dyn Fn(&SigSample) -> bool| {
        if b.is_empty() {
            thin
        } else {
            share(&b, f) <= cfg.max_field_baseline_share
        }
    };

    let mut sig = base.clone();
    if scope.protocol == IPPROTO_TCP {
        let (mut mask, mut value) = (0u8, 0u8);
        for bit in 0..8 {
            let m = 1u8 << bit;
            let ones = a.iter().filter(|s| s.tcp_flags & m != 0).count();
            let v = if ones * 2 >= a.len() { m } else { 0 };
            let agree = if v != 0 { ones } else { a.len() - ones };
            if agree >= need && discriminates(&|s: &SigSample| s.tcp_flags & m == v) {
                mask |= m;
                value |= v;
            }
        }
        if mask != 0 {
            sig.tcp_flags = Some((mask, value));
        }
    }
    let ttl = shortest_range(a.iter().map(|s| u16::from(s.ttl)).collect(), need);
    if let Some((lo, hi)) = ttl
        && hi - lo <= cfg.max_ttl_width
        && discriminates(&|s: &SigSample| (lo..=hi).contains(&u16::from(s.ttl)))
    {
        // Both ends came from u8 values.
        sig.ttl = Some((lo.min(255) as u8, hi.min(255) as u8));
    }
    let len = shortest_range(a.iter().map(|s| s.packet_len).collect(), need);
    if let Some((lo, hi)) = len
        && hi - lo <= cfg.max_len_width
        && discriminates(&|s: &SigSample| (lo..=hi).contains(&s.packet_len))
    {
        sig.packet_len = Some((lo, hi));
    }
    if scope.port.is_none() {
        let ports = shortest_range(a.iter().map(|s| s.dst_port).collect(), need);
        if let Some((lo, hi)) = ports
            && hi - lo <= cfg.max_port_width
            && discriminates(&|s: &SigSample| (lo..=hi).contains(&s.dst_port))
        {
            sig.dst_port = Some((lo, hi));
        }
    }
    if let Some(p) = common_payload(&a, need)
        && discriminates(&|s: &SigSample| {
            usize::from(s.payload_valid) >= p.len() && s.payload.get(..p.len()) == Some(&p[..])
        })
    {
        sig.payload_prefix = Some(p);
    }

    // Each field covers `need` alone; together they might not. Drop the
    // field that costs the most coverage until the whole does.
    let covered = |sig: &Signature| a.iter().filter(|s| sig.matches_fields(s)).count();
    while covered(&sig) < need {
        let mut options = Vec::new();
        for field in 0..5 {
            let mut t = sig.clone();
            let had = match field {
                0 => t.tcp_flags.take().is_some(),
                1 => t.ttl.take().is_some(),
                2 => t.packet_len.take().is_some(),
                3 => scope.port.is_none() && t.dst_port.take().is_some(),
                _ => t.payload_prefix.take().is_some(),
            };
            if had {
                options.push((covered(&t), t));
            }
        }
        match options.into_iter().max_by_key(|(c, _)| *c) {
            Some((_, t)) => sig = t,
            None => break,
        }
    }
    let baseline_match = share(&all_b, |s| sig.matches_fields(s));
    let spares = if thin {
        // A trait of the attack's own: a length, a payload prefix or a set
        // flag. Flags the attack agrees are clear, or a TTL alone, also
        // hold for most clients: with them only, the caller's rate limit
        // is the honest answer. And none of the few samples there are.
        let has_trait = sig.packet_len.is_some()
            || sig.payload_prefix.is_some()
            || sig.tcp_flags.is_some_and(|(_, value)| value != 0);
        has_trait && baseline_match == 0.0
    } else {
        baseline_match <= cfg.max_baseline_match
    };
    (covered(&sig) >= need && spares).then_some(sig)
}
