//! The live path: sample → flow state → features → models → decision →
//! evidence → executor, then journal, watchers and metrics.
//!
//! The decision tree decides per sample, as the prototype did, and a model
//! with 99.96 % precision still calls about one benign sample in a thousand
//! an attack: acted on directly, every busy benign client would be throttled
//! sooner or later. So a source is enforced only once, within
//! `evidence_window`, the tree has called it an attack `min_evidence` times
//! and in more than half of its samples (`min_evidence = 1` with a
//! one-sample window restores act-on-every-decision). A flood or a scan
//! produces that evidence within milliseconds; a benign client's stray
//! misclassifications never add up to a majority. The executor gets the tree's
//! own decision for the sample (`proposed`) and keeps whatever stronger
//! action is already in force.
//!
//! Every sample gets a decision, but the journal gets only what an operator
//! wants to read: every enforcement (new, upgraded or refreshed), and at most
//! one LOG / dry-run / allowlisted / unchanged record per source and action
//! every `JOURNAL_REPEAT`. Attack floods therefore cost one journal write per
//! source per refresh, not one per packet.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use phantomnet_common::{EventAction, PacketSample};
use tracing::{info, warn};

use super::core::{AgentCore, unix_now_ns};
use crate::enforce::Enforced;
use crate::{
    capture::CaptureWriter, correlate::SignatureMatches, dataplane::SampleReader, decide::Action,
    detect::Decision, enforce::Applied, journal::NewEvent,
};

/// At most one repeated (non-enforcing) record per source and action this often.
const JOURNAL_REPEAT: Duration = Duration::from_secs(60);
/// Bound on the repeat filter's memory; it is cleared when it grows past it.
const GATE_CAP: usize = 100_000;

/// Per source, over a window: how many of its samples the tree called an
/// attack, how many it saw, and every signature category that matched.
/// The sample that completes the evidence is often one without a payload
/// (an ACK after the request), so the enforcement record names the
/// signatures seen from the source in the window, not only its own.
#[derive(Debug, Default)]
pub struct Evidence {
    seen: HashMap<IpAddr, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    attacks: u32,
    total: u32,
    signatures: SignatureMatches,
}

/// What a source's evidence window holds after one more decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub attacks: u32,
    pub total: u32,
    pub signatures: SignatureMatches,
}

impl Evidence {
    /// Records one decision about `src` at `now`.
    pub fn observe(
        &mut self,
        src: IpAddr,
        attack: bool,
        signatures: SignatureMatches,
        now: Instant,
        window: Duration,
    ) -> Observed {
        if self.seen.len() > GATE_CAP {
            self.seen
                .retain(|_, w| now.duration_since(w.start) < window);
        }
        let fresh = Window {
            start: now,
            attacks: 0,
            total: 0,
            signatures: SignatureMatches::default(),
        };
        let w = self.seen.entry(src).or_insert(fresh);
        if now.duration_since(w.start) >= window {
            *w = fresh;
        }
        w.total += 1;
        w.attacks += u32::from(attack);
        w.signatures = w.signatures.union(signatures);
        Observed {
            attacks: w.attacks,
            total: w.total,
            signatures: w.signatures,
        }
    }

    /// Enough to act: `need` attack decisions, and more than half of the
    /// source's decisions in the window.
    pub fn sufficient(o: &Observed, need: u32) -> bool {
        o.attacks >= need && o.attacks * 2 > o.total
    }
}

/// The journal record of a decision and what the executor did with it.
pub fn event_of(d: &Decision, applied: &str) -> NewEvent {
    NewEvent {
        time_unix_ns: unix_now_ns(),
        source: d.source,
        action: EventAction::Apply(d.action),
        verdict: d.threat.verdict.to_string(),
        confidence: d.scores.confidence,
        anomaly: d.scores.anomaly,
        threat: d.threat.score,
        rule: d.rule.to_string(),
        reason: format!("{d}; {applied}"),
        features: d.features.as_array().to_vec(),
    }
}

/// The pipeline's per-source memory between batches.
#[derive(Debug, Default)]
pub struct PipelineState {
    /// When each (source, action) was last journaled.
    gate: HashMap<(IpAddr, Action), Instant>,
    evidence: Evidence,
}

/// Decides for one batch and acts; returns the records to journal.
pub fn handle_batch(
    core: &AgentCore,
    batch: &[PacketSample],
    state: &mut PipelineState,
) -> Vec<NewEvent> {
    let mut records = Vec::new();
    let mut decisions = Vec::with_capacity(batch.len());
    {
        let mut det = core.detector();
        let Some(det) = det.as_mut() else {
            return records;
        };
        for s in batch {
            let t = Instant::now();
            match det.process(s) {
                Ok(d) => {
                    core.metrics().inference(t.elapsed());
                    decisions.push(d);
                }
                Err(e) => warn!(error = %e, "sample skipped"),
            }
        }
        core.metrics()
            .set_flow_table_sources(det.flows().len() as u64);
    }
    core.count_decisions(decisions.len() as u64);
    let now = Instant::now();
    let policy = *core.executor().policy();
    let PipelineState { gate, evidence } = state;
    if gate.len() > GATE_CAP {
        gate.clear();
    }
    for d in &decisions {
        core.metrics().decision(d.action);
        let attack = d.action != Action::Log;
        let seen = evidence.observe(
            d.source,
            attack,
            d.threat.signatures,
            now,
            policy.evidence_window,
        );
        if attack && !Evidence::sufficient(&seen, policy.min_evidence) {
            let key = (d.source, d.action);
            if gate
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= JOURNAL_REPEAT)
            {
                gate.insert(key, now);
                let text = format!(
                    "awaiting evidence ({} of {} samples called attacks; {} and a majority needed)",
                    seen.attacks, seen.total, policy.min_evidence
                );
                records.push(event_of(d, &text));
            }
            continue;
        }
        let reason = format!("rule {}", d.rule.number());
        let applied = core.executor().apply(d.source, d.action, &reason);
        let window_sigs = if seen.signatures.is_empty() {
            String::new()
        } else {
            format!(
                "; signatures from this source in the last {}s: {}",
                policy.evidence_window.as_secs(),
                seen.signatures
            )
        };
        let (text, always) = match &applied {
            Ok(Applied::Enforced { action, ttl }) => {
                info!(source = %d.source, %action, rule = d.rule.number(), "enforced");
                core.metrics().enforced(*action, d.rule.number());
                core.announce(Enforced {
                    source: d.source,
                    action: *action,
                    ttl: *ttl,
                    rule: d.rule.number(),
                    signatures: seen.signatures.to_string(),
                    time_unix_ns: unix_now_ns(),
                });
                (
                    format!("enforced {action} for {}s{window_sigs}", ttl.as_secs()),
                    true,
                )
            }
            Ok(Applied::Refreshed { action, ttl }) => {
                (format!("refreshed {action} for {}s", ttl.as_secs()), true)
            }
            Ok(Applied::Unchanged { in_force }) => (format!("{in_force} already in force"), false),
            Ok(Applied::Fallback {
                wanted,
                enforced,
                ttl,
                why,
            }) => {
                info!(source = %d.source, %wanted, %enforced, %why, "fallback");
                (
                    format!(
                        "{wanted} not applicable ({why}); enforced {enforced} for {}s instead",
                        ttl.as_secs()
                    ),
                    // Journaled once per (source, action) per JOURNAL_REPEAT.
                    false,
                )
            }
            Ok(Applied::DryRun { action }) => (format!("dry-run: would enforce {action}"), false),
            Ok(Applied::Allowlisted { by }) => (format!("allowlisted by {by}"), false),
            Ok(Applied::Logged) => ("logged".to_string(), false),
            Err(e) => {
                warn!(source = %d.source, action = %d.action, error = %e, "enforcement failed");
                (format!("enforcement failed: {e}"), true)
            }
        };
        let key = (d.source, d.action);
        let due = gate
            .get(&key)
            .is_none_or(|t| now.duration_since(*t) >= JOURNAL_REPEAT);
        if always || due {
            gate.insert(key, now);
            records.push(event_of(d, &text));
        }
    }
    records
}

/// Runs until the reader fails. Decisions run on the blocking pool: they
/// take locks and make syscalls (map writes, `nft`), which must not stall
/// the API's async workers.
/// With `capture`, every sample is also written to that file (flushed
/// after each batch, so a stopped agent leaves whole records).
pub async fn run(
    core: Arc<AgentCore>,
    mut reader: SampleReader,
    mut capture: Option<CaptureWriter>,
) {
    let mut batch = Vec::with_capacity(1024);
    let mut state = PipelineState::default();
    loop {
        batch.clear();
        if let Err(e) = reader.next_batch(&mut batch).await {
            warn!(error = %e, "sample reader stopped");
            return;
        }
        if let Some(w) = capture.as_mut() {
            let written = batch
                .iter()
                .try_for_each(|s| w.write(s))
                .and_then(|()| w.flush());
            if let Err(e) = written {
                warn!(error = %e, "capture stopped");
                capture = None;
            }
        }
        core.count_samples(batch.len() as u64);
        core.metrics().samples_read(batch.len() as u64);
        let worker = core.clone();
        // The journal fsyncs each append: it runs there too.
        let joined = tokio::task::spawn_blocking(move || {
            let records = handle_batch(&worker, &batch, &mut state);
            if let Err(e) = worker.record(records) {
                warn!(error = %e, "journal write failed");
            }
            (batch, state)
        })
        .await;
        (batch, state) = match joined {
            Ok(parts) => parts,
            Err(e) => {
                warn!(error = %e, "decision task panicked");
                (Vec::with_capacity(1024), PipelineState::default())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_needs_a_count_and_a_majority_within_the_window() {
        let mut e = Evidence::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let atk: IpAddr = "192.0.2.1".parse().unwrap();
        // An attacker: every sample an attack; the third one is enough.
        let none = SignatureMatches::default();
        let o = e.observe(atk, true, none, at(0), w);
        assert_eq!((o.attacks, o.total), (1, 1));
        assert!(!Evidence::sufficient(
            &e.observe(atk, true, none, at(1), w),
            3
        ));
        assert!(Evidence::sufficient(
            &e.observe(atk, true, none, at(2), w),
            3
        ));
        // A busy benign client with a few stray attack calls: never enough.
        let cli: IpAddr = "198.51.100.10".parse().unwrap();
        for i in 0..100u32 {
            let o = e.observe(cli, i % 25 == 0, none, at(0), w);
            assert!(!Evidence::sufficient(&o, 3), "{o:?}");
            assert_eq!(o.attacks, i / 25 + 1);
        }
        // Signatures accumulate over the window, and the window restarts
        // once it has passed.
        let mut sqli = SignatureMatches::default();
        sqli.insert(crate::correlate::SignatureCategory::SqlInjection);
        assert_eq!(e.observe(atk, false, sqli, at(3), w).signatures, sqli);
        assert_eq!(
            e.observe(atk, true, none, at(4), w).signatures,
            sqli,
            "kept"
        );
        let o = e.observe(atk, false, none, at(10), w);
        assert_eq!((o.attacks, o.total, o.signatures), (0, 1, none));
        let o = e.observe(atk, true, none, at(11), w);
        assert_eq!((o.attacks, o.total), (1, 2));
    }
}
