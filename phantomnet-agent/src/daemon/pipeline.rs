//! The live path: sample → flow state → features → models → decision →
//! executor, then journal, watchers and metrics.
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

use phantomnet_common::PacketSample;
use tracing::{info, warn};

use super::core::{AgentCore, unix_now_ns};
use crate::{
    capture::CaptureWriter, dataplane::SampleReader, decide::Action, detect::Decision,
    enforce::Applied, journal::NewEvent, metrics::ActionLabel,
};

/// At most one repeated (non-enforcing) record per source and action this often.
const JOURNAL_REPEAT: Duration = Duration::from_secs(60);
/// Bound on the repeat filter's memory; it is cleared when it grows past it.
const GATE_CAP: usize = 100_000;

fn label(a: Action) -> ActionLabel {
    match a {
        Action::Log => ActionLabel::Log,
        Action::Throttle => ActionLabel::Throttle,
        Action::Deceive => ActionLabel::Deceive,
        Action::Block => ActionLabel::Block,
    }
}

/// The journal record of a decision and what the executor did with it.
pub fn event_of(d: &Decision, applied: &str) -> NewEvent {
    NewEvent {
        time_unix_ns: unix_now_ns(),
        source: d.source,
        action: d.action.name().to_string(),
        verdict: d.threat.verdict.to_string(),
        confidence: d.scores.confidence,
        anomaly: d.scores.anomaly,
        threat: d.threat.score,
        rule: d.rule.to_string(),
        reason: format!("{d}; {applied}"),
        features: d.features.as_array().to_vec(),
    }
}

/// Decides for one batch and acts; returns the records to journal.
pub fn handle_batch(
    core: &AgentCore,
    batch: &[PacketSample],
    gate: &mut HashMap<(IpAddr, Action), Instant>,
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
    if gate.len() > GATE_CAP {
        gate.clear();
    }
    for d in &decisions {
        core.metrics().decision(label(d.action));
        let reason = format!("rule {}", d.rule.number());
        let applied = core.executor().apply(d.source, d.action, &reason);
        let (text, always) = match &applied {
            Ok(Applied::Enforced { action, ttl }) => {
                info!(source = %d.source, %action, rule = d.rule.number(), "enforced");
                (format!("enforced {action} for {}s", ttl.as_secs()), true)
            }
            Ok(Applied::Refreshed { action, ttl }) => {
                (format!("refreshed {action} for {}s", ttl.as_secs()), true)
            }
            Ok(Applied::Unchanged { in_force, .. }) => {
                (format!("{in_force} already in force"), false)
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
    let mut gate = HashMap::new();
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
            let records = handle_batch(&worker, &batch, &mut gate);
            if let Err(e) = worker.record(records) {
                warn!(error = %e, "journal write failed");
            }
            (batch, gate)
        })
        .await;
        (batch, gate) = match joined {
            Ok(parts) => parts,
            Err(e) => {
                warn!(error = %e, "decision task panicked");
                (Vec::with_capacity(1024), HashMap::new())
            }
        };
    }
}
