//! The detector's destination baselines: what each host's reservoir
//! admits, what it forgets (sources the data plane enforced on, an
//! attack's own sources in the ticks before it tripped), and the
//! synthesis of an attack's signature against them.

use std::net::IpAddr;

use super::super::baseline::HostBaseline;
use super::super::signature::{SigSample, Signature};
use super::super::synth::{Scope, SignatureBasis, synthesize};
use super::super::{AggregateKey, same_prefix};
use super::{AggregateDetector, Attack, FORGOTTEN, RAMP_TICKS};

impl AggregateDetector {
    /// Whether `dst`'s baseline forgot the source with this tag recently.
    pub(super) fn is_forgotten(&self, dst: IpAddr, tag: [u8; 4]) -> bool {
        let b = usize::from(tag[0]);
        self.forgotten_bytes[b / 64] & (1 << (b % 64)) != 0
            && self.forgotten[..self.forgotten_next.min(FORGOTTEN)].contains(&(dst, tag))
    }

    /// Removes a source's samples from `dst`'s baseline, once per source
    /// while it stays among the last [`FORGOTTEN`] forgotten.
    pub(super) fn forget_source(&mut self, dst: IpAddr, tag: [u8; 4]) {
        if self.is_forgotten(dst, tag) {
            return;
        }
        self.forgotten[self.forgotten_next % FORGOTTEN] = (dst, tag);
        self.forgotten_next = self.forgotten_next.wrapping_add(1);
        // Rebuilt from the ring (an entry that rolled out takes its bit).
        self.forgotten_bytes = [0; 4];
        for (_, t) in &self.forgotten[..self.forgotten_next.min(FORGOTTEN)] {
            let b = usize::from(t[0]);
            self.forgotten_bytes[b / 64] |= 1 << (b % 64);
        }
        if let Some(slot) = self.hosts.find(&dst)
            && let Some(h) = self.hosts.value_mut(slot)
        {
            h.forget_source(tag);
        }
    }

    /// The baseline samples a signature for `key` is checked against: the
    /// destination host's, or every tracked host's inside the prefix.
    pub(super) fn baseline_for(&self, key: &AggregateKey) -> Vec<SigSample> {
        match *key {
            AggregateKey::Service { dst, .. } | AggregateKey::Host { dst, .. } => self
                .hosts
                .get(&dst)
                .map(|h| h.samples.clone())
                .unwrap_or_default(),
            AggregateKey::DstPrefix { prefix, .. } => self
                .hosts
                .iter()
                .filter(|(ip, _)| same_prefix(**ip, prefix.addr(), prefix.prefix_len()))
                .flat_map(|(_, h)| h.samples.iter().copied())
                .collect(),
            AggregateKey::SrcPrefix { .. } => Vec::new(),
        }
    }

    /// The attack's signature and what it was checked against.
    pub(super) fn synthesize_for(&self, a: &Attack) -> Option<(Signature, SignatureBasis)> {
        let (dst, prefix_len, protocol, port) = a.key.scope()?;
        let scope = Scope {
            family: if dst.is_ipv4() { 4 } else { 6 },
            dst,
            prefix_len,
            protocol,
            port,
        };
        let secs = (a.last_ns.saturating_sub(a.first_ns) as f64 / 1e9).max(self.tick_secs());
        let rate = a.est_packets as f64 / secs;
        let benign = if rate > 0.0 {
            a.baseline_pps / rate
        } else {
            0.0
        };
        let baseline = self.baseline_for(&a.key);
        let basis = SignatureBasis::of(baseline.len(), &self.cfg.synth);
        synthesize(scope, &a.reservoir, &baseline, benign, &self.cfg.synth).map(|s| (s, basis))
    }

    /// Takes what the attack's own sources left in its destinations'
    /// baselines in the [`RAMP_TICKS`] before it tripped: a flood that ramps
    /// up (a botnet whose members start one by one) crosses the threshold
    /// only after its first packets were admitted as normal traffic. The
    /// sources in the attack's reservoir lose their samples of those ticks,
    /// and so does every source first seen in them (members the reservoir
    /// has not drawn yet, a spoofed flood's first packets). A client that
    /// was there long before (a bulk transfer that goes on during the
    /// flood) keeps its older samples.
    pub(super) fn forget_attack_sources(&mut self, idx: usize) {
        let Some(Some(a)) = self.attacks.get(idx) else {
            return;
        };
        let Some((net, len, _, _)) = a.key.scope() else {
            return;
        };
        let since = a.trip_tick.saturating_sub(RAMP_TICKS);
        let mut tags: Vec<[u8; 4]> = a.reservoir.iter().map(|s| s.src_tag).collect();
        tags.sort_unstable();
        tags.dedup();
        self.hosts.for_each_mut(|ip, h| {
            if same_prefix(net, *ip, len) {
                h.forget_sources_since(&tags, since);
            }
        });
    }

    /// Admits a sample into its destination's baseline reservoir, unless an
    /// attack covers that destination.
    pub(super) fn offer_baseline(&mut self, dst: IpAddr, sig: SigSample, t: u64) {
        if self.active > 0
            && self.attacks.iter().flatten().any(|a| match a.key.scope() {
                Some((net, len, _, _)) => same_prefix(net, dst, len),
                None => false,
            })
        {
            // The tick the attack was recognised in is the attack's own.
            if let Some(slot) = self.hosts.find(&dst)
                && let Some(h) = self.hosts.value_mut(slot)
            {
                h.discard_pending();
            }
            return;
        }
        let (slot, _) = self.hosts.touch_or_insert(dst, HostBaseline::default);
        let (cap, per_tick) = (
            self.cfg.baseline_reservoir,
            self.cfg.baseline_admit_per_tick,
        );
        let promote = match self.hosts.value_mut(slot) {
            Some(h) => {
                h.offer(sig, t, cap, per_tick);
                h.active_ticks >= 2
            }
            None => false,
        };
        if promote {
            self.hosts.promote(slot);
        }
    }
}
