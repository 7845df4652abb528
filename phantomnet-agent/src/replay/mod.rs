//! `phantomnet-agent replay`: a recorded capture through the live decision
//! path, without root and deterministically, judged per source.
//!
//! Each sample goes where the live pipeline sends it (`daemon::pipeline`):
//! flow state → features → models → correlator → decision tree (the
//! `Detector`), then the evidence rule and the journal sieve
//! (`pipeline::step`, the same function), then an executor. The executor
//! is [`Enforcer`]: the live one's precedence rule, TTLs, allowlist and
//! DECEIVE fallback over an in-memory record, writing nothing. Time is the
//! samples' own (`SampleClock`), as live, so a replayed capture gives the
//! live agent's decisions.
//!
//! A capture recorded at 1-in-1 can be replayed at any rate: the data
//! plane's sampling is emulated ([`Sampler`]: the 1-in-N draw with a
//! seeded generator, and priority sampling within its bounds when the
//! config has it on, as by default).
//!
//! Offline, the replay's own per-source records (its report, the
//! in-memory executor) grow with the sources the capture holds, a few
//! hundred bytes each; the detector's own tables keep their live caps.
//!
//! Not replayed: the flood path (`aggregate`, signature rules), which is
//! about packets, not sources, and has its own tests; rules from operators,
//! feeds and CrowdSec.
mod cli;
mod enforcer;
mod marks;
mod plots;
mod report;

use crate::sampler::Sampler;
pub use cli::{ReplayArgs, ReplayCliError, run_replay};
pub use enforcer::Enforcer;
pub use marks::{Marks, RebuiltMarks, Remarker};
pub use plots::{PlotError, RECALL_PNG, TTE_PNG, write_plots};
pub use report::{Counts, FirstEnforcement, Report, ScenarioSummary, SourceOutcome};

use std::{collections::HashMap, fmt::Write as _, path::PathBuf, sync::Arc};

use phantomnet_common::{PacketSample, action, sample_flags, sampling};

use crate::{
    capture::{CaptureError, CaptureReader},
    config::Config,
    correlate::{Correlator, SignatureSet, ThreatFeed},
    daemon::pipeline::{PipelineState, SampleClock, step},
    decide::Action,
    detect::{DetectError, Detector, DetectorConfig},
    enforce::{Applied, EnforcePolicy},
    features::{FEATURE_NAMES, FeatureVector},
    flow::{FlowConfig, Source, SourceKey},
    metrics::Metrics,
    models::Model,
    train::labels::LabelRules,
};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(
        "--marks {0}: only a capture recorded at 1-in-N (N > 1) has marks to rebuild or strip; a 1-in-1 capture's are set by the emulated sampling"
    )]
    Marks(String),
    #[error(
        "--sample-every {sample_every} cannot be emulated from a capture recorded at 1-in-{recorded_every}: only a capture of every packet (1-in-1) can be replayed at another rate"
    )]
    Rate {
        recorded_every: u32,
        sample_every: u32,
    },
}

/// Everything a replay depends on. The same inputs give the same report.
pub struct ReplayInput<'a> {
    pub capture: PathBuf,
    pub labels: &'a LabelRules,
    pub config: &'a Config,
    pub policy: EnforcePolicy,
    pub model: Arc<Model>,
    pub feed: Arc<ThreatFeed>,
    /// The rate the capture was recorded at (1: every packet).
    pub recorded_every: u32,
    /// The data plane rate to emulate.
    pub sample_every: u32,
    /// Seeds the emulated sampling draw.
    pub seed: u64,
    /// The capture's `ALSO_PRIORITY` marks: as recorded, rebuilt (a
    /// 1-in-N capture made before the data plane set them) or stripped.
    pub marks: Marks,
}

/// Per source while replaying.
#[derive(Debug, Default)]
struct Track<'l> {
    /// The labels' scenario of its first packet's address, and whether it
    /// is an attack; looked up once (an IPv6 /64 may hold several
    /// addresses, the first names it).
    named: Option<(&'l str, bool)>,
    first_ns: u64,
    records: u64,
    decided: u64,
    first: Option<FirstEnforcement>,
    strongest: Option<Action>,
}

/// What the executor put in force, if anything: the action now covering
/// the source because of this decision.
fn put_in_force(applied: &Applied) -> Option<Action> {
    match applied {
        Applied::Enforced { action, .. } | Applied::Refreshed { action, .. } => Some(*action),
        Applied::Fallback { enforced, .. } => Some(*enforced),
        Applied::Logged
        | Applied::Unchanged { .. }
        | Applied::DryRun { .. }
        | Applied::Allowlisted { .. } => None,
    }
}

/// One scoring of a source, as `replay --decisions` writes it: what the
/// tree said and whether the evidence rule let it reach the executor. For
/// studying the decision path (an evidence rule, a threshold) offline
/// against labelled sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    pub source: Source,
    /// The source's scenario (the labels'), `unlabeled` if none.
    pub scenario: &'a str,
    pub attack_source: bool,
    /// From the source's first packet in the capture, ms.
    pub after_ms: f64,
    pub action: Action,
    pub rule: u8,
    pub confidence: f64,
    pub anomaly: f64,
    pub threat: f64,
    /// A priority sample (a connection opener, a scan probe, a flow's
    /// first payload packets), not one of the 1-in-N draw.
    pub priority: bool,
    /// It reached the executor: a LOG always, an attack call once the
    /// evidence rule was met.
    pub past_evidence: bool,
    /// What the executor put in force because of it, if anything.
    pub put_in_force: Option<Action>,
    /// The feature row the models scored (every schema's features; a
    /// model reads its schema's prefix): why a source was called what it
    /// was.
    pub features: FeatureVector,
}

impl Scored<'_> {
    /// The CSV header `Scored::csv_row` matches: the decision's columns,
    /// then one per feature, named as in docs/FEATURES.md.
    pub fn csv_header() -> String {
        let mut h = String::from(
            "source,scenario,attack_source,after_ms,action,rule,confidence,anomaly,threat,priority,past_evidence,put_in_force",
        );
        for name in FEATURE_NAMES {
            h.push(',');
            h.push_str(name);
        }
        h
    }

    /// One CSV line, without the newline. A scenario name is a labels-file
    /// word (no comma, no quote), so no field needs quoting.
    pub fn csv_row(&self) -> String {
        let mut row = format!(
            "{},{},{},{:.3},{},{},{:.4},{:.4},{:.4},{},{},{}",
            self.source,
            self.scenario,
            u8::from(self.attack_source),
            self.after_ms,
            self.action,
            self.rule,
            self.confidence,
            self.anomaly,
            self.threat,
            u8::from(self.priority),
            u8::from(self.past_evidence),
            self.put_in_force.map_or(String::new(), |a| a.to_string()),
        );
        for v in self.features.as_array() {
            // Shortest text that reads back as the same f64.
            let _ = write!(row, ",{v}");
        }
        row
    }
}

/// Replays the capture and reports per source.
pub fn replay(input: &ReplayInput<'_>) -> Result<Report, ReplayError> {
    replay_with(input, |_| {})
}

/// [`replay`], calling `on_decision` with every scoring, in capture order.
pub fn replay_with(
    input: &ReplayInput<'_>,
    mut on_decision: impl FnMut(&Scored<'_>),
) -> Result<Report, ReplayError> {
    let recorded = input.recorded_every.max(1);
    let every = input.sample_every.max(1);
    if recorded != 1 && every != recorded {
        return Err(ReplayError::Rate {
            recorded_every: recorded,
            sample_every: every,
        });
    }
    if recorded == 1 && input.marks != Marks::AsRecorded {
        return Err(ReplayError::Marks(input.marks.name()));
    }
    let mut remarker = Remarker::new(input.marks);
    // A 1-in-1 capture is sampled as the data plane would at 1-in-N; a
    // sampled one is replayed as it is.
    let mut sampler = Sampler::new(
        every / recorded,
        input.config.dataplane.priority_sampling,
        input.seed,
    );
    let mut detector = Detector::new(
        DetectorConfig {
            flow: FlowConfig {
                sample_every: every,
                ipv6_source_prefix: input.config.enforcement.ipv6_source_prefix,
                ..FlowConfig::default()
            },
            thresholds: input.config.thresholds,
            scoring: input.config.detection.scoring,
        },
        input.model.clone(),
        Correlator::new(SignatureSet::builtin(), input.feed.clone()),
    )?;
    let honeypot = [
        input.config.honeypots.iter().any(|h| h.target.is_ipv4()),
        input.config.honeypots.iter().any(|h| h.target.is_ipv6()),
    ];
    let mut enforcer = Enforcer::new(input.policy, input.config.allowlist.clone(), honeypot);
    let metrics = Metrics::new();
    let mut state: Option<PipelineState> = None;
    let mut tracks: HashMap<Source, Track> = HashMap::new();
    let mut counts = Counts::default();
    for sample in CaptureReader::open(&input.capture)? {
        let mut sample: PacketSample = sample?;
        remarker.apply(&mut sample);
        counts.records += 1;
        if sample.flags & sample_flags::REPLY != 0 {
            // The protected side refusing or answering an outside host:
            // counted against that host's source by the detector, no
            // source of its own.
            match sampling::reply_of(&sample) {
                Some(sampling::Reply::Refusal) => counts.refusals += 1,
                Some(sampling::Reply::Answer) => counts.answers += 1,
                None => {}
            }
            if let Some(sample) = sampler.take(&sample) {
                let _ = detector.observe(&sample);
            }
            continue;
        }
        let source = detector.flows().source_of(&sample);
        let track = tracks.entry(source).or_insert_with(|| Track {
            named: input.labels.scenario(SourceKey::of_sample(&sample).ip()),
            first_ns: sample.timestamp_ns,
            ..Track::default()
        });
        track.records += 1;
        let Some(sample) = sampler.take(&sample) else {
            continue;
        };
        counts.sampled += 1;
        if sample.action_code() == action::SIGNATURE {
            counts.signature_dropped += 1;
            continue;
        }
        let state = state.get_or_insert_with(|| {
            PipelineState::with_clock(SampleClock::anchored(sample.timestamp_ns))
        });
        let d = match detector.observe(&sample) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(_) => {
                counts.refused += 1;
                continue;
            }
        };
        counts.decisions += 1;
        track.decided += 1;
        let now = state.at(d.timestamp_ns);
        let mut applied = None;
        step(state, &d, &input.policy, &metrics, now, |src, action, _| {
            let a = enforcer.apply(src, action, now);
            applied = Some(a.clone());
            Ok(a)
        });
        let in_force = applied.as_ref().and_then(put_in_force);
        let named = track.named;
        on_decision(&Scored {
            source: d.source,
            scenario: named.map_or("unlabeled", |(n, _)| n),
            attack_source: named.is_some_and(|(_, attack)| attack),
            after_ms: sample.timestamp_ns.saturating_sub(track.first_ns) as f64 / 1e6,
            action: d.action,
            rule: d.rule.number(),
            confidence: d.scores.confidence,
            anomaly: d.scores.anomaly,
            threat: d.threat.score,
            priority: sample.flags & sample_flags::PRIORITY != 0,
            past_evidence: applied.is_some(),
            put_in_force: in_force,
            features: d.features,
        });
        if applied.is_none() {
            continue;
        }
        counts.past_evidence += 1;
        let Some(action) = in_force else {
            continue;
        };
        track.strongest = Some(track.strongest.map_or(action, |s| s.max(action)));
        if track.first.is_none() {
            track.first = Some(FirstEnforcement {
                action: action.to_string(),
                rule: d.rule.number(),
                after_ms: sample.timestamp_ns.saturating_sub(track.first_ns) as f64 / 1e6,
                packets_before: track.records * u64::from(recorded),
            });
        }
    }
    let mut tracks: Vec<(Source, Track)> = tracks.into_iter().collect();
    tracks.sort_by_key(|(s, _)| *s);
    let sources: Vec<SourceOutcome> = tracks
        .into_iter()
        .map(|(source, t)| {
            let (scenario, attack) = match t.named {
                Some((name, attack)) => (name.to_string(), attack),
                None => ("unlabeled".to_string(), false),
            };
            SourceOutcome {
                source: source.to_string(),
                scenario,
                attack,
                packets: t.records * u64::from(recorded),
                decided: t.decided,
                first: t.first,
                strongest: t.strongest.unwrap_or(Action::Log).to_string(),
            }
        })
        .collect();
    counts.rebuilt_marks = remarker.rebuilt();
    Ok(Report::new(recorded, every, counts, sources))
}

#[cfg(test)]
mod tests;
