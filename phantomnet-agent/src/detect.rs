//! The per-sample detection path: sample → flow state → features → models →
//! correlator → decision tree → priority. Pure: no I/O, no enforcement; the
//! caller acts on the returned [`Decision`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use phantomnet_common::PacketSample;

use crate::correlate::{Correlator, SignatureMatches, SignatureSet, ThreatAssessment, ThreatFeed};
use crate::decide::{Action, DecisionTree, Rule, ThresholdError, Thresholds};
use crate::features::{FeatureError, FeatureVector, extract};
use crate::flow::{FlowConfig, FlowTable, Source};
use crate::models::{Model, ModelScores};

/// Up to this many uniform samples in its 60 s window, a source is scored
/// on every sample even when scoring on change (see [`rescore_due`]).
pub const YOUNG_SOURCE_SAMPLES: u64 = 32;

/// Whether a source's window, as it stands after its latest sample, has
/// changed enough to be scored again. Kept without any per-source memory
/// of its own (the flow table's 531 bytes per source stay as they are):
///
/// - **young**: its 60 s window holds at most [`YOUNG_SOURCE_SAMPLES`]
///   uniform samples (none at all for a source seen only through priority
///   samples: a slow scan's probes at 1-in-16). Each sample then moves
///   the window's counts by a few percent or more, and this is when a
///   source's verdict forms: a 10,000 packets/s flood must be decided
///   within its first few samples;
/// - **growth**: past that, its 60 s window has just reached one of 48,
///   72, 108, 162, ... samples (each half as many again as the one
///   before), about log₁.₅ n scorings for n samples;
/// - **time**: this is its first sample in the current second, so a source
///   that keeps sending is scored at least once a second, and its rates
///   and counts as they move.
pub fn rescore_due(samples_60s: u64, samples_this_second: u16) -> bool {
    if samples_this_second == 1 || samples_60s <= YOUNG_SOURCE_SAMPLES {
        return true;
    }
    let mut t: u64 = YOUNG_SOURCE_SAMPLES;
    while t < samples_60s {
        t += t / 2;
    }
    t == samples_60s
}

/// When the live path scores a source (`[detection] scoring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scoring {
    /// Every sample is scored, as the prototype did.
    EverySample,
    /// A source is scored when its window has changed meaningfully
    /// ([`rescore_due`]) or a payload matches a signature. The default:
    /// on a fresh validation recording it decided as every-sample scoring
    /// does, for fewer model calls (docs/DETECTION.md, "Scoring a source").
    #[default]
    OnChange,
}

impl Scoring {
    pub const fn name(self) -> &'static str {
        match self {
            Scoring::EverySample => "every-sample",
            Scoring::OnChange => "on-change",
        }
    }
}

impl fmt::Display for Scoring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorConfig {
    pub flow: FlowConfig,
    pub thresholds: Thresholds,
    pub scoring: Scoring,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Thresholds(#[from] ThresholdError),
}

/// One decision with everything that explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The source the sample counted under: its IPv4 address, or its IPv6
    /// address's configured prefix (`2001:db8:bad::/64`).
    pub source: Source,
    pub timestamp_ns: u64,
    /// What the decision tree proposes for this sample. The detector only
    /// proposes: the executor alone knows what is in force and applies
    /// the precedence rule (docs/CONTROL.md).
    pub action: Action,
    /// The rule that chose `action`.
    pub rule: Rule,
    pub scores: ModelScores,
    pub threat: ThreatAssessment,
    pub features: FeatureVector,
}

impl fmt::Display for Decision {
    /// The explanation: action, rule, and the scores the rule read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} (prediction {}, confidence {:.3}, anomaly {:.3}, threat {:.3} {}; signatures {}, feed {})",
            self.source,
            self.action,
            self.rule,
            if self.scores.prediction == 1 {
                "attack"
            } else {
                "benign"
            },
            self.scores.confidence,
            self.scores.anomaly,
            self.threat.score,
            self.threat.verdict,
            self.threat.signatures,
            self.threat.feed_label.as_deref().unwrap_or("-"),
        )
    }
}

/// What [`Detector::analyze`] finds for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub action: Action,
    pub rule: Rule,
    pub scores: ModelScores,
    pub threat: ThreatAssessment,
    pub features: FeatureVector,
}

/// The features of one packet taken on its own, against a fresh flow state
/// (the control API's Analyze of a single sample).
pub fn packet_features(sample: &PacketSample) -> Result<FeatureVector, FeatureError> {
    let mut flows = FlowTable::new(FlowConfig::default());
    let hit = !SignatureSet::shared()
        .scan(valid_payload(sample))
        .is_empty();
    let sample_every = flows.config().sample_every;
    let entry = flows.record_matched(sample, hit);
    extract(
        sample,
        &entry.windows.stats_at(sample_every, sample.timestamp_ns),
    )
    // A fresh table has no reply to anyone: `server_refusals` and
    // `server_answers` are 0.
}

/// The sampled payload prefix the data plane filled in.
pub fn valid_payload(sample: &PacketSample) -> &[u8] {
    &sample.payload[..(sample.payload_valid as usize).min(sample.payload.len())]
}

/// Owns the flow table, the model, the correlator and the decision
/// settings; turns one sample into one decision.
#[derive(Debug)]
pub struct Detector {
    flows: FlowTable,
    model: Arc<Model>,
    correlator: Correlator,
    tree: DecisionTree,
    scoring: Scoring,
}

impl Detector {
    pub fn new(
        config: DetectorConfig,
        model: Arc<Model>,
        correlator: Correlator,
    ) -> Result<Detector, DetectError> {
        Ok(Detector {
            flows: FlowTable::new(config.flow),
            model,
            correlator,
            tree: DecisionTree::new(config.thresholds)?,
            scoring: config.scoring,
        })
    }

    pub fn scoring(&self) -> Scoring {
        self.scoring
    }

    /// Follows a change of `[detection] scoring`.
    pub fn set_scoring(&mut self, scoring: Scoring) {
        self.scoring = scoring;
    }

    /// Swaps the model (e.g. after [`crate::models::ModelHandle::load_validated`]).
    pub fn set_model(&mut self, model: Arc<Model>) {
        self.model = model;
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Swaps the threat feed (e.g. after a reload).
    pub fn set_feed(&mut self, feed: Arc<ThreatFeed>) {
        self.correlator.set_feed(feed);
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// Groups IPv6 sources to `len` bits from the next sample on.
    pub fn set_ipv6_source_prefix(&mut self, len: u8) {
        self.flows.set_ipv6_source_prefix(len);
    }

    /// Follows a change of the data plane's sampling rate.
    pub fn set_sample_every(&mut self, every: u32) {
        self.flows.set_sample_every(every);
    }

    pub fn thresholds(&self) -> Thresholds {
        *self.tree.thresholds()
    }

    /// Swaps the thresholds; invalid ones are refused and the old stay.
    pub fn set_thresholds(&mut self, t: Thresholds) -> Result<(), ThresholdError> {
        self.tree = DecisionTree::new(t)?;
        Ok(())
    }

    /// Models, correlator and tree on one feature vector, touching no flow
    /// state and no priority: what the control API's Analyze answers.
    pub fn analyze(
        &self,
        source: Option<IpAddr>,
        features: FeatureVector,
        payload: &[u8],
    ) -> Analysis {
        let scores = self.model.score(&features);
        let source = source.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let threat = self.correlator.assess(source, payload, scores.anomaly);
        let (action, rule) = self.tree.decide(
            scores.prediction,
            scores.confidence,
            scores.anomaly,
            threat.score,
        );
        Analysis {
            action,
            rule,
            scores,
            threat,
            features,
        }
    }

    /// The full per-sample path, for a sample of an outside source (a
    /// refusal sample, `sample_flags::REPLY`, goes through
    /// [`Detector::observe`]).
    pub fn process(&mut self, sample: &PacketSample) -> Result<Decision, DetectError> {
        let sample_every = self.flows.config().sample_every;
        let signatures = self.correlator.signatures(valid_payload(sample));
        let entry = self.flows.record_matched(sample, !signatures.is_empty());
        let stats = entry.windows.stats_at(sample_every, sample.timestamp_ns);
        let stats = self
            .flows
            .with_server_side(sample, sample.timestamp_ns, stats);
        self.score(sample, &stats, Some(signatures))
    }

    /// The live path's entry: records `sample` in its source's flow state
    /// and scores it. With [`Scoring::EverySample`] that is every uniform
    /// sample (`Some`, as [`Detector::process`]). With [`Scoring::OnChange`]
    /// it scores the source only when its window has changed meaningfully
    /// ([`rescore_due`]: at growth points of its sample count, and at its
    /// first sample of each second) or the payload matches a signature.
    /// Otherwise `None`: the sample is counted in the flow state, and the
    /// source's last verdict stands.
    ///
    /// A priority sample (`sample_flags::PRIORITY`: a connection opener or
    /// probe, a flow's first payload packets) feeds the source's distinct
    /// counts. It is scored when the model was trained on priority samples
    /// (`ModelMeta::scores_priority`), as any uniform sample is; otherwise
    /// only when its payload matches a signature (a single injection
    /// request): a model trained on uniformly sampled packets misjudges
    /// openers it never saw in that proportion, and acted on benign
    /// clients (docs/DETECTION.md, "Priority samples and the model").
    ///
    /// An inside observer's sample (`sample_flags::REPLY`: the protected
    /// side refusing or answering an outside host) is counted against the
    /// source its destination belongs to (schema v4's `server_refusals`,
    /// v5's `server_answers`) and is never scored itself: `None`.
    pub fn observe(&mut self, sample: &PacketSample) -> Result<Option<Decision>, DetectError> {
        if sample.flags & phantomnet_common::sample_flags::REPLY != 0 {
            self.flows.record_reply(sample);
            return Ok(None);
        }
        let sample_every = self.flows.config().sample_every;
        let priority = sample.flags & phantomnet_common::sample_flags::PRIORITY != 0;
        let signatures = self.correlator.signatures(valid_payload(sample));
        // Schema v3's `signature_hits`: every matching sample counts,
        // scored or not (`dataset` counts them the same way).
        let entry = self.flows.record_matched(sample, !signatures.is_empty());
        // Whether the window changed is asked only when scoring on change.
        let skip = (priority && !self.model.meta.scores_priority)
            || (self.scoring == Scoring::OnChange
                && !rescore_due(
                    entry.windows.samples_60s(),
                    entry.windows.samples_this_second(),
                ));
        if skip && signatures.is_empty() {
            return Ok(None);
        }
        // The window statistics only for a sample that is scored, as of
        // its own time.
        let stats = entry.windows.stats_at(sample_every, sample.timestamp_ns);
        let stats = self
            .flows
            .with_server_side(sample, sample.timestamp_ns, stats);
        self.score(sample, &stats, Some(signatures)).map(Some)
    }

    /// Features, models, correlator and tree for one sample of a source
    /// whose window statistics are `stats`.
    fn score(
        &self,
        sample: &PacketSample,
        stats: &crate::flow::WindowStats,
        signatures: Option<SignatureMatches>,
    ) -> Result<Decision, DetectError> {
        let features = extract(sample, stats)?;
        let scores = self.model.score(&features);
        let source = self.flows.source_of(sample);
        let valid = (sample.payload_valid as usize).min(sample.payload.len());
        // The feed is asked about the sample's own address: a listed host
        // inside an unlisted /64 still counts.
        let addr = crate::flow::SourceKey::of_sample(sample).ip();
        let payload = &sample.payload[..valid];
        let threat = match signatures {
            Some(found) => self.correlator.assess_found(addr, found, scores.anomaly),
            None => self.correlator.assess(addr, payload, scores.anomaly),
        };
        let (action, rule) = self.tree.decide(
            scores.prediction,
            scores.confidence,
            scores.anomaly,
            threat.score,
        );

        Ok(Decision {
            source,
            timestamp_ns: sample.timestamp_ns,
            action,
            rule,
            scores,
            threat,
            features,
        })
    }
}

#[cfg(test)]
mod flow_equivalence;

#[cfg(test)]
mod tests;
