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
//! every `JOURNAL_REPEAT`. An attacker chooses how many sources we see, so
//! that is bounded in total too: a global budget (`sieve`) drops what
//! exceeds it, counts it, and writes one summary record per interval.
//!
//! Every per-source structure here has a hard cap and O(1) eviction
//! (`Evidence`, the sieve's repeat filter): nothing on the per-sample path
//! scans or clears a map.
mod clock;
mod evidence;
mod floods;
mod recorder;
mod sieve;

pub use clock::SampleClock;
pub use evidence::{EVIDENCE_CAP, Evidence, Observed};
pub use floods::{FloodActions, Floods, MAX_VOUCH, RULE_TTL};
pub use recorder::{QUEUE_BATCHES, RecordQueue, Recorder};
pub use sieve::{Admit, GATE_CAP, JOURNAL_REPEAT, JournalSieve, LogLimiter, Record};

use phantomnet_common::sampling::Reply;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use phantomnet_common::{EventAction, PacketSample, action};
use tracing::{info, warn};

use super::core::{AgentCore, unix_now_ns};
use crate::{
    capture::CaptureWriter,
    dataplane::{DataplaneError, SampleReader},
    decide::{Action, Rule},
    detect::Decision,
    enforce::{Applied, DeceiveRefused, EnforceError, EnforcePolicy, Enforced},
    flow::Source,
    journal::NewEvent,
    metrics::Metrics,
};

/// At most one `enforcement failed` log line this often (a full map fails
/// every sample of every new source).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// The journal record of a decision and what the executor did with it.
/// An IPv6 source grouped to a prefix is stored as its network address,
/// as an operator's prefix rule is; the reason (the decision's
/// explanation) starts with the prefix itself (`2001:db8:bad::/64 BLOCK: …`).
pub fn event_of(d: &Decision, applied: &str) -> NewEvent {
    NewEvent {
        time_unix_ns: unix_now_ns(),
        source: d.source.addr(),
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

/// The pipeline's per-source memory between batches, each part capped.
#[derive(Debug)]
pub struct PipelineState {
    sieve: JournalSieve,
    evidence: Evidence,
    failures: LogLimiter,
    floods: Floods,
    clock: SampleClock,
}

impl Default for PipelineState {
    fn default() -> Self {
        Self::with_clock(SampleClock::live())
    }
}

impl PipelineState {
    /// Empty state judging samples on `clock` (a replay anchors its own).
    pub fn with_clock(clock: SampleClock) -> PipelineState {
        PipelineState {
            sieve: JournalSieve::default(),
            evidence: Evidence::default(),
            failures: LogLimiter::new(FAILURE_LOG_EVERY),
            floods: Floods::default(),
            clock,
        }
    }

    /// The instant the sample stamped `ns` was seen.
    pub fn at(&self, ns: u64) -> Instant {
        self.clock.at(ns)
    }
}

/// What one decision produced besides its effect on the maps.
#[derive(Debug, Default)]
pub struct Step {
    /// The journal record, if the sieve let it through.
    pub record: Option<NewEvent>,
    /// A new enforcement, for `WatchEvents`.
    pub announce: Option<Enforced>,
}

/// One decision: evidence, then (with enough) `apply`, then the sieve.
/// `apply` is the executor's `apply`; it is a parameter so the pipeline's
/// bookkeeping can be tested without pinned maps.
pub fn step(
    state: &mut PipelineState,
    d: &Decision,
    policy: &EnforcePolicy,
    metrics: &Metrics,
    now: Instant,
    apply: impl FnOnce(Source, Action, &str) -> Result<Applied, EnforceError>,
) -> Step {
    let mut out = Step::default();
    metrics.decision(d.action);
    let attack = d.action != Action::Log;
    let seen = state.evidence.observe(
        d.source,
        attack,
        d.threat.signatures,
        now,
        policy.evidence_window,
    );
    if attack && !Evidence::sufficient(&seen, policy.min_evidence) {
        if admit(state, metrics, d, Record::Routine, now) == Admit::Write {
            // The previous period's share makes the counts fractional: one
            // decimal place.
            let tenths = |x: f64| (x * 10.0).round() / 10.0;
            let text = format!(
                "awaiting evidence ({} of {} samples called attacks; {} and a majority needed)",
                tenths(seen.attacks),
                tenths(seen.total),
                policy.min_evidence
            );
            out.record = Some(event_of(d, &text));
        }
        return out;
    }
    let reason = format!("rule {}", d.rule.number());
    let applied = apply(d.source, d.action, &reason);
    let window_sigs = if seen.signatures.is_empty() {
        String::new()
    } else {
        format!(
            "; signatures from this source in the last {}s: {}",
            policy.evidence_window.as_secs(),
            seen.signatures
        )
    };
    let mut fallback = None;
    let (text, kind) = match &applied {
        Ok(Applied::Enforced { action, ttl }) => {
            info!(source = %d.source, %action, rule = d.rule.number(), "enforced");
            metrics.enforced(*action, d.rule.number());
            out.announce = Some(Enforced {
                source: d.source,
                action: *action,
                ttl: *ttl,
                rule: d.rule.number(),
                signatures: seen.signatures.to_string(),
                time_unix_ns: unix_now_ns(),
            });
            (
                format!("enforced {action} for {}s{window_sigs}", ttl.as_secs()),
                Record::Enforcement,
            )
        }
        Ok(Applied::Refreshed { action, ttl }) => (
            format!("refreshed {action} for {}s", ttl.as_secs()),
            Record::Enforcement,
        ),
        Ok(Applied::Unchanged { in_force }) => {
            (format!("{in_force} already in force"), Record::Routine)
        }
        Ok(Applied::Fallback {
            wanted,
            enforced,
            ttl,
            why,
        }) => {
            info!(source = %d.source, %wanted, %enforced, %why, "fallback");
            // The fallback is in force like any enforcement: announced
            // (CrowdSec's watcher), counted and journaled as what was put
            // in force. The executor remembers the failed DECEIVE, so the
            // source's later DECEIVE calls leave the THROTTLE Unchanged
            // rather than falling back again.
            fallback = Some(Enforced {
                source: d.source,
                action: *enforced,
                ttl: *ttl,
                rule: d.rule.number(),
                signatures: seen.signatures.to_string(),
                time_unix_ns: unix_now_ns(),
            });
            (
                format!(
                    "{wanted} not applicable ({why}); enforced {enforced} for {}s instead",
                    ttl.as_secs()
                ),
                Record::Enforcement,
            )
        }
        Ok(Applied::DryRun { action }) => {
            (format!("dry-run: would enforce {action}"), Record::Routine)
        }
        Ok(Applied::Allowlisted { by }) => (format!("allowlisted by {by}"), Record::Routine),
        Ok(Applied::Logged) => ("logged".to_string(), Record::Routine),
        Err(e) => {
            failed(state, metrics, d, e, now);
            // What is in force stays; the failure is journaled like a
            // routine record (once per source and action per JOURNAL_REPEAT).
            (format!("enforcement failed: {e}"), Record::Routine)
        }
    };
    if let Some(e) = fallback {
        metrics.enforced(e.action, e.rule);
        out.announce = Some(e);
    }
    if admit(state, metrics, d, kind, now) == Admit::Write {
        out.record = Some(event_of(d, &text));
    }
    out
}

/// The sieve's verdict on a record about `d`, a suppression counted in the
/// metrics.
fn admit(
    state: &mut PipelineState,
    metrics: &Metrics,
    d: &Decision,
    kind: Record,
    now: Instant,
) -> Admit {
    let verdict = state.sieve.admit(d.source, d.action, kind, now);
    if verdict == Admit::Suppressed {
        metrics.journal_suppressed(kind == Record::Enforcement, 1);
    }
    verdict
}

/// A failed enforcement: a full map is counted per map; the log line is
/// rate-limited (one per `FAILURE_LOG_EVERY`, with a count), never one per
/// sample.
fn failed(
    state: &mut PipelineState,
    metrics: &Metrics,
    d: &Decision,
    e: &EnforceError,
    now: Instant,
) {
    if let EnforceError::Dataplane(DataplaneError::MapFull { map, .. }) = e {
        metrics.map_full(map);
    }
    if let Some(n) = state.failures.note(now) {
        warn!(
            source = %d.source,
            action = %d.action,
            error = %e,
            failures = n,
            "enforcement failed (failures counts every one since the last such line; what is in force stays)"
        );
    }
}

/// Decides for one batch and acts; returns the records to journal.
pub fn handle_batch(
    core: &AgentCore,
    batch: &[PacketSample],
    state: &mut PipelineState,
) -> Vec<NewEvent> {
    // Floods first: the aggregate detector needs no model, and its rules
    // are about packets, whatever their source. The rate each sample
    // stands for is the data plane's (one map read per batch). Switched
    // off (`enforcement.floods = false`), rules already installed run out
    // within their TTL.
    //
    // Before that, the detections' DECEIVEs that nftables refused since the
    // last batch (`Executor::settle`): already THROTTLEd instead; announced
    // here, and journaled within the enforcement budget.
    let (every, policy, refused) = {
        let mut ex = core.executor();
        let every = ex.maps().config().map_or(1, |c| c.sample_every.max(1));
        core.metrics().set_deceive_queue(ex.deceive_queue());
        (every, *ex.policy(), ex.settle())
    };
    let mut records = Vec::new();
    let now = Instant::now();
    for r in refused {
        let source = r.source;
        let record = refused_record(core.metrics(), |e| core.announce(e), r);
        match state
            .sieve
            .admit(source, Action::Deceive, Record::Enforcement, now)
        {
            Admit::Write => records.push(record),
            Admit::Suppressed => core.metrics().journal_suppressed(true, 1),
            Admit::Repeat => {}
        }
    }
    if policy.floods {
        state.floods.set_rule_ttl(policy.flood_rule_ttl);
        for s in batch {
            state.floods.observe(s, every);
        }
        records = state.floods.act(&mut *core.executor());
        for map in state.floods.take_full() {
            core.metrics().map_full(map);
        }
    }
    let mut decisions = Vec::with_capacity(batch.len());
    {
        let mut det = core.detector();
        let Some(det) = det.as_mut() else {
            return records;
        };
        let (mut refusals, mut answers) = (0, 0);
        for s in batch {
            match phantomnet_common::sampling::reply_of(s) {
                Some(Reply::Refusal) => refusals += 1,
                Some(Reply::Answer) => answers += 1,
                None => {}
            }
            // Dropped by a signature rule: decided in the kernel, whatever
            // the source. A spoofed flood's sources would only churn the
            // per-source tables.
            if s.action_code() == action::SIGNATURE {
                continue;
            }
            let t = Instant::now();
            match det.observe(s) {
                Ok(Some(d)) => {
                    core.metrics().inference(t.elapsed());
                    decisions.push(d);
                }
                // Counted in its source's flow state; not a change worth
                // a new verdict (`Detector::observe`).
                Ok(None) => {}
                Err(e) => warn!(error = %e, "sample skipped"),
            }
        }
        core.metrics()
            .set_flow_table_sources(det.flows().len() as u64);
        if refusals > 0 {
            core.metrics().refusals(refusals);
        }
        if answers > 0 {
            core.metrics().answers(answers);
        }
    }
    core.count_decisions(decisions.len() as u64);
    for d in &decisions {
        // Each decision at its sample's time (see `clock`).
        let now = state.at(d.timestamp_ns);
        let out = step(
            state,
            d,
            &policy,
            core.metrics(),
            now,
            |src, action, reason| core.executor().apply(src, action, reason),
        );
        if let Some(e) = out.announce {
            core.announce(e);
        }
        records.extend(out.record);
    }
    let now = Instant::now();
    records.extend(state.sieve.summary(now, unix_now_ns()));
    if let Some(n) = state.failures.flush(now) {
        warn!(
            failures = n,
            "enforcement failed (failures since the last such line; what is in force stays)"
        );
    }
    records
}

/// The record of a deferred DECEIVE nftables refused, and its fallback
/// announced and counted like `step`'s.
pub fn refused_record(
    metrics: &Metrics,
    announce: impl FnOnce(Enforced),
    r: DeceiveRefused,
) -> NewEvent {
    // Only rule 4 proposes DECEIVE.
    let rule = Rule::AnomalousAttack.number();
    let (action, text) = match &r.fallback {
        Ok(Applied::Enforced { action, ttl }) => {
            info!(source = %r.source, wanted = %Action::Deceive, enforced = %action, why = %r.why, "fallback");
            metrics.enforced(*action, rule);
            announce(Enforced {
                source: r.source,
                action: *action,
                ttl: *ttl,
                rule,
                signatures: String::new(),
                time_unix_ns: unix_now_ns(),
            });
            (
                *action,
                format!("enforced {action} for {}s instead", ttl.as_secs()),
            )
        }
        Ok(Applied::Refreshed { action, ttl }) => (
            *action,
            format!("refreshed {action} for {}s instead", ttl.as_secs()),
        ),
        Ok(Applied::Unchanged { in_force }) => (*in_force, format!("{in_force} stays in force")),
        Ok(Applied::Allowlisted { by }) => (Action::Log, format!("allowlisted by {by} since")),
        Ok(Applied::DryRun { .. } | Applied::Logged | Applied::Fallback { .. }) => (
            Action::Log,
            "nothing enforced instead (dry run)".to_string(),
        ),
        Err(e) => (
            Action::Deceive,
            format!("THROTTLE failed too ({e}); what is in force stays"),
        ),
    };
    NewEvent::unassessed(
        unix_now_ns(),
        r.source.addr(),
        EventAction::Apply(action),
        &r.reason,
        format!(
            "{} {}: DECEIVE refused by nftables ({}); {text}",
            r.source, action, r.why
        ),
    )
}

/// Runs until the reader fails. Decisions run on the blocking pool: they
/// take locks and make syscalls (map writes), which must not stall the
/// API's async workers. Neither of the slow writes is made here: records go
/// to the journal's own writer thread ([`Recorder`]), so the next batch
/// never waits for an fsync, and a DECEIVE to the executor's DECEIVE worker
/// (`enforce::deferred`), so it never waits for `nft`.
/// With `capture`, every sample is also written to that file (flushed
/// after each batch, so a stopped agent leaves whole records).
pub async fn run(
    core: Arc<AgentCore>,
    mut reader: SampleReader,
    mut capture: Option<CaptureWriter>,
) {
    let mut batch = Vec::with_capacity(1024);
    let mut state = PipelineState::default();
    // Dropped when this task ends or is aborted: the writer then drains
    // the queue and stops.
    let (_recorder, queue) = match Recorder::start(core.clone()) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "starting the journal writer");
            return;
        }
    };
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
        let queue = queue.clone();
        let joined = tokio::task::spawn_blocking(move || {
            queue.submit(handle_batch(&worker, &batch, &mut state));
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
mod tests;
