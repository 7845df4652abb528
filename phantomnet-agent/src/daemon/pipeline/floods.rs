//! Floods from many sources. The per-source path cannot see a spoofed
//! flood (every packet a new source) or a botnet at modest rates per
//! source, so every sample also feeds the aggregate detector, and what it
//! reports becomes a rule about packets, not sources:
//!
//! - an attack that starts with a signature installs a signature rule that
//!   drops the matching packets, whatever their source; one without a
//!   signature (no baseline yet, or nothing sets the attack apart)
//!   rate-limits its target to the rate that triggered it;
//! - known-good clients of the target (handshakes completed before the
//!   attack) are vouched for first, and the rule exempts them;
//! - the rule carries a TTL that every update refreshes, and it is removed
//!   when the attack ends, so a detector that stops hearing (an agent
//!   restart) never leaves a rule behind for long;
//! - one journal record when an attack starts and one when it ends, with
//!   its counts, whatever the number of sources.
//!
//! A source-prefix aggregate (many sources inside one /24 or /64) is
//! journaled, not enforced: the per-source path acts on each source, and a
//! whole network is an operator's call.
use std::{collections::HashMap, net::IpAddr, time::Duration};

use phantomnet_common::{EventAction, PacketSample, ReasonCode};
use tracing::{info, warn};

use super::unix_now_ns;
use crate::{
    aggregate::{
        AggregateConfig, AggregateDetector, AggregateKey, AttackEvent, AttackReport, KnownGood,
        KnownGoodConfig, Signature, SignatureBasis,
    },
    dataplane::DataplaneError,
    decide::Action,
    enforce::{EnforceError, Executor, SignatureRequest},
    journal::NewEvent,
};

/// How long an installed rule lives without an update by default
/// (`enforcement.flood_rule_ttl_secs`); the detector refreshes it every 5 s
/// while the attack lasts.
pub const RULE_TTL: Duration = Duration::from_secs(60);
/// Most known-good sources vouched for per attack.
pub const MAX_VOUCH: usize = 1024;

/// The rule an attack put in force.
#[derive(Debug, Clone)]
struct Installed {
    rule_id: u32,
    /// Its signature: synthesized, or the target alone (a rate limit).
    signature: Signature,
    synthesized: bool,
}

/// The aggregate detector, the known-good tracker and the rules their
/// attacks installed. Bounded: the detector caps its tables and its
/// attacks (64 by default), and `installed` holds one entry per attack.
#[derive(Debug)]
pub struct Floods {
    detector: AggregateDetector,
    known: KnownGood,
    installed: HashMap<u64, Installed>,
    events: Vec<AttackEvent>,
    /// Rule writes refused because a map was full, since the last `act`.
    full: Vec<&'static str>,
    /// TTL of the rules installed.
    rule_ttl: Duration,
}

impl Default for Floods {
    fn default() -> Self {
        Floods::new(AggregateConfig::default(), KnownGoodConfig::default())
    }
}

impl Floods {
    pub fn new(config: AggregateConfig, known: KnownGoodConfig) -> Self {
        Floods {
            detector: AggregateDetector::new(config),
            known: KnownGood::new(known),
            installed: HashMap::new(),
            events: Vec::new(),
            full: Vec::new(),
            rule_ttl: RULE_TTL,
        }
    }

    /// One sample (standing for `sample_every` packets). The inside
    /// observer's samples (`sample_flags::REPLY`: refusals and answers)
    /// are the protected side's packets, not traffic to it: they are not
    /// counted.
    pub fn observe(&mut self, s: &PacketSample, sample_every: u32) {
        if s.flags & phantomnet_common::sample_flags::REPLY != 0 {
            return;
        }
        self.known.observe(s);
        self.detector.process(s, sample_every, &mut self.events);
    }

    /// The TTL of rules installed or refreshed from now on.
    pub fn set_rule_ttl(&mut self, ttl: Duration) {
        self.rule_ttl = ttl;
    }

    /// The maps that refused a rule since the last call (for the
    /// `phantomnet_map_full_total` metric).
    pub fn take_full(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.full)
    }

    /// Attacks being tracked.
    pub fn active(&self) -> usize {
        self.detector.active_attacks().len()
    }

    /// Acts on what the detector reported since the last call; returns the
    /// journal records. `exec` is the executor (a parameter, so the logic
    /// is tested without pinned maps).
    pub fn act(&mut self, exec: &mut dyn FloodActions) -> Vec<NewEvent> {
        let mut records = Vec::new();
        for event in std::mem::take(&mut self.events) {
            match event {
                AttackEvent::Started(r) => records.extend(self.started(&r, exec)),
                AttackEvent::Updated(r) => self.updated(&r, exec),
                AttackEvent::Ended(r) => records.push(self.ended(&r, exec)),
            }
        }
        records
    }

    fn started(&mut self, r: &AttackReport, exec: &mut dyn FloodActions) -> Option<NewEvent> {
        let Some((mut signature, mut synthesized)) = rule_signature(r) else {
            info!(key = %r.key, sources = r.est_distinct_sources, "distributed sources in one network");
            return Some(record(
                r,
                Action::Log,
                "source-prefix aggregate: journaled, not enforced".into(),
            ));
        };
        if exec.dry_run() {
            return Some(record(
                r,
                Action::Log,
                format!("dry-run: would install signature rule `{signature}`"),
            ));
        }
        let exempt = self.known.exemptions(
            signature.dst,
            signature.dst_prefix_len,
            r.first_ns,
            MAX_VOUCH,
        );
        let traits = synthesized && r.signature_basis == SignatureBasis::AttackTraits;
        if let Err(e) = exec.vouch(&exempt) {
            warn!(error = %e, "vouching for known-good sources");
            if traits {
                // Only the exemption spared the clients the thin baseline
                // did not show: without it, rate-limit the target instead.
                (signature, synthesized) = target_only(r).unwrap_or((signature, false));
            }
        }
        match exec.add_signature(&request(r, &signature, synthesized, self.rule_ttl)) {
            Ok(id) => {
                info!(key = %r.key, rule = id, %signature, "flood: signature rule installed");
                self.installed.insert(
                    r.id,
                    Installed {
                        rule_id: id,
                        signature: signature.clone(),
                        synthesized,
                    },
                );
                let what = if synthesized && traits {
                    "drops the matching packets (the attack's own traits: the target's baseline \
                     was too thin to check them against)"
                        .to_string()
                } else if synthesized {
                    "drops the matching packets".to_string()
                } else {
                    format!("rate-limits its target to {} packets/s", rate_of(r))
                };
                Some(record(
                    r,
                    if synthesized {
                        Action::Block
                    } else {
                        Action::Throttle
                    },
                    format!(
                        "signature rule {id} `{signature}` {what}; {} known-good sources exempt",
                        exempt.len()
                    ),
                ))
            }
            Err(e) => {
                if let EnforceError::Dataplane(DataplaneError::MapFull { map, .. }) = &e {
                    self.full.push(map);
                }
                // One line per attack start: attacks are capped (64).
                warn!(key = %r.key, error = %e, "flood: installing the signature rule failed");
                Some(record(
                    r,
                    Action::Log,
                    format!("installing `{signature}` failed: {e}"),
                ))
            }
        }
    }

    /// Refreshes the rule's TTL; a signature found after the start (the
    /// baseline was too thin then) replaces the target-wide rate limit.
    fn updated(&mut self, r: &AttackReport, exec: &mut dyn FloodActions) {
        let Some(inst) = self.installed.get(&r.id).cloned() else {
            return;
        };
        let mut upgrade = !inst.synthesized && r.signature.is_some();
        if upgrade && r.signature_basis == SignatureBasis::AttackTraits {
            // As at the start: the attack's traits only with the clients vouched for.
            let exempt = self.known.exemptions(
                inst.signature.dst,
                inst.signature.dst_prefix_len,
                r.first_ns,
                MAX_VOUCH,
            );
            upgrade = exec.vouch(&exempt).is_ok();
        }
        let (signature, synthesized) = match (&r.signature, upgrade) {
            (Some(s), true) => (s.clone(), true),
            _ => (inst.signature.clone(), inst.synthesized),
        };
        if upgrade && let Err(e) = exec.remove_signature(inst.rule_id) {
            warn!(error = %e, "flood: removing the rate-limit rule");
        }
        match exec.add_signature(&request(r, &signature, synthesized, self.rule_ttl)) {
            Ok(id) => {
                self.installed.insert(
                    r.id,
                    Installed {
                        rule_id: id,
                        signature,
                        synthesized,
                    },
                );
            }
            Err(e) => warn!(key = %r.key, error = %e, "flood: refreshing the signature rule"),
        }
    }

    fn ended(&mut self, r: &AttackReport, exec: &mut dyn FloodActions) -> NewEvent {
        let removed = match self.installed.remove(&r.id) {
            Some(inst) => match exec.remove_signature(inst.rule_id) {
                Ok(()) => format!("; signature rule {} removed", inst.rule_id),
                // Already gone (expired, or an operator removed it).
                Err(e) => format!("; signature rule {}: {e}", inst.rule_id),
            },
            None => String::new(),
        };
        record(
            r,
            Action::Log,
            format!(
                "ended after {:.1}s{removed}",
                r.last_ns.saturating_sub(r.first_ns) as f64 / 1e9
            ),
        )
    }
}

/// What the pipeline needs of the executor: `Executor` in the agent, a
/// recorder in tests.
pub trait FloodActions {
    fn dry_run(&self) -> bool;
    fn vouch(&mut self, sources: &[IpAddr]) -> Result<usize, EnforceError>;
    /// Installs or refreshes; returns the rule's id.
    fn add_signature(&mut self, req: &SignatureRequest) -> Result<u32, EnforceError>;
    fn remove_signature(&mut self, id: u32) -> Result<(), EnforceError>;
}

impl FloodActions for Executor {
    fn dry_run(&self) -> bool {
        Executor::dry_run(self)
    }
    fn vouch(&mut self, sources: &[IpAddr]) -> Result<usize, EnforceError> {
        Executor::vouch(self, sources)
    }
    fn add_signature(&mut self, req: &SignatureRequest) -> Result<u32, EnforceError> {
        Executor::add_signature(self, req).map(|v| v.rule.id)
    }
    fn remove_signature(&mut self, id: u32) -> Result<(), EnforceError> {
        Executor::remove_signature(self, id)
    }
}

/// The rule's signature: the synthesized one, or the target alone; `None`
/// for a source-prefix aggregate (not enforced).
fn rule_signature(r: &AttackReport) -> Option<(Signature, bool)> {
    if let Some(s) = &r.signature {
        return Some((s.clone(), true));
    }
    target_only(r)
}

/// The attack's target alone (address, protocol, port), to rate-limit.
fn target_only(r: &AttackReport) -> Option<(Signature, bool)> {
    let (dst, len, protocol, port) = match r.key {
        AggregateKey::Service {
            dst,
            protocol,
            port,
        } => (dst, host_len(dst), protocol, (port != 0).then_some(port)),
        AggregateKey::Host { dst, protocol } => (dst, host_len(dst), protocol, None),
        AggregateKey::DstPrefix { prefix, protocol } => {
            (prefix.addr(), prefix.prefix_len(), protocol, None)
        }
        AggregateKey::SrcPrefix { .. } => return None,
    };
    Some((
        Signature {
            family: if dst.is_ipv4() { 4 } else { 6 },
            dst,
            dst_prefix_len: len,
            protocol: (protocol != 0).then_some(protocol),
            tcp_flags: None,
            ttl: None,
            packet_len: None,
            dst_port: port.map(|p| (p, p)),
            payload_prefix: None,
        },
        false,
    ))
}

fn host_len(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

/// A target-wide rate limit lets through what the detector called the
/// target's normal ceiling (the rate that triggered the attack).
fn rate_of(r: &AttackReport) -> u32 {
    r.threshold_pps.clamp(1.0, 1e9) as u32
}

fn request(
    r: &AttackReport,
    signature: &Signature,
    synthesized: bool,
    ttl: Duration,
) -> SignatureRequest {
    SignatureRequest {
        signature: signature.clone(),
        ttl: Some(ttl),
        rate_pps: if synthesized { 0 } else { rate_of(r) },
        exempt_known_good: true,
        reason: ReasonCode::Detection,
    }
}

/// The journal record of an attack: one per start and one per end.
fn record(r: &AttackReport, action: Action, what: String) -> NewEvent {
    let source = match r.key {
        AggregateKey::Service { dst, .. } | AggregateKey::Host { dst, .. } => dst,
        AggregateKey::DstPrefix { prefix, .. } | AggregateKey::SrcPrefix { prefix } => {
            prefix.addr()
        }
    };
    NewEvent {
        time_unix_ns: unix_now_ns(),
        source,
        action: EventAction::Apply(action),
        verdict: "CRITICAL".to_string(),
        confidence: 1.0,
        anomaly: 0.0,
        threat: 0.0,
        rule: "aggregate".to_string(),
        reason: format!(
            "flood {} on {}: ~{} packets from ~{} sources{} (baseline {:.0} pps, threshold {:.0}); {what}",
            r.id,
            r.key,
            r.est_packets,
            r.est_distinct_sources,
            // The peak is known once a tick of the attack has completed.
            if r.peak_pps > 0.0 {
                format!(", peak {:.0} pps", r.peak_pps)
            } else {
                String::new()
            },
            r.baseline_pps,
            r.threshold_pps
        ),
        features: Vec::new(),
    }
}

#[cfg(test)]
#[path = "floods_tests.rs"]
mod tests;
