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

/// Whether a source's window, as it stands after its latest sample, has
/// changed enough to be scored again. Kept without any per-source memory
/// of its own (the flow table's 531 bytes per source stay as they are):
///
/// - **growth**: its 60 s window has just reached one of 1, 2, 3, 4, 6, 9,
///   13, 19, 28, ... samples (each half as many again as the one before),
///   about log₁.₅ n scorings for n samples;
/// - **time**: this is its first sample in the current second, so a source
///   that keeps sending is scored at least once a second, and its rates
///   and counts as they move.
pub fn rescore_due(samples_60s: u64, samples_this_second: u16) -> bool {
    if samples_this_second == 1 {
        return true;
    }
    let mut t: u64 = 1;
    while t < samples_60s {
        t += (t / 2).max(1);
    }
    t == samples_60s
}

/// When the live path scores a source (`[detection] scoring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scoring {
    /// Every sample is scored, as the prototype did.
    #[default]
    EverySample,
    /// A source is scored when its window has changed meaningfully
    /// ([`rescore_due`]) or a payload matches a signature.
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

    /// The full per-sample path.
    pub fn process(&mut self, sample: &PacketSample) -> Result<Decision, DetectError> {
        let sample_every = self.flows.config().sample_every;
        let signatures = self.correlator.signatures(valid_payload(sample));
        let entry = self.flows.record_matched(sample, !signatures.is_empty());
        let stats = entry.windows.stats_at(sample_every, sample.timestamp_ns);
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
    pub fn observe(&mut self, sample: &PacketSample) -> Result<Option<Decision>, DetectError> {
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
mod tests {
    use super::*;
    use crate::correlate::SignatureSet;
    use crate::features::index;
    use crate::models::artifact_tests::small_model;
    use phantomnet_common::IPPROTO_TCP;

    fn sample(ts: u64, src_last: u8, payload: &[u8]) -> PacketSample {
        let mut p = [0u8; 64];
        p[..payload.len()].copy_from_slice(payload);
        PacketSample {
            timestamp_ns: ts,
            ifindex: 1,
            packet_len: 60 + payload.len() as u32,
            src_addr: [192, 0, 2, src_last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            src_port: 50000,
            dst_port: 80,
            payload_len: payload.len() as u16,
            family: 4,
            protocol: IPPROTO_TCP,
            tcp_flags: 0x18,
            ttl: 64,
            payload_valid: payload.len() as u8,
            payload: p,
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn process_runs_every_stage_and_explains_itself() {
        let model = Arc::new(small_model(31));
        let feed = ThreatFeed::parse("192.0.2.9 botnet-c2\n").unwrap();
        let correlator = Correlator::new(SignatureSet::builtin(), Arc::new(feed));
        let mut d = Detector::new(DetectorConfig::default(), model.clone(), correlator).unwrap();
        let mut last = None;
        for i in 0..20u64 {
            last = Some(
                d.process(&sample(i * 10_000_000, 9, b"GET /?q=1 UNION SELECT pw"))
                    .unwrap(),
            );
        }
        let dec = last.unwrap();
        assert_eq!(dec.source.to_string(), "192.0.2.9");
        // Features came from the flow state: 20 samples over 0.19 s.
        assert!(dec.features.get(crate::features::index::BURST_RATE_10S) > 1.9);
        // The scores are the model's on these very features.
        assert_eq!(dec.scores, model.score(&dec.features));
        // Correlator: listed in the feed + SQL injection.
        assert_eq!(dec.threat.feed_label.as_deref(), Some("botnet-c2"));
        assert!(
            dec.threat
                .signatures
                .contains(crate::correlate::SignatureCategory::SqlInjection)
        );
        let expected_threat = 0.2 * dec.scores.anomaly + 0.3 + 0.5;
        assert!((dec.threat.score - expected_threat).abs() < 1e-12);
        // The tree's rule matches its inputs.
        let tree = DecisionTree::default();
        let (a, r) = tree.decide(
            dec.scores.prediction,
            dec.scores.confidence,
            dec.scores.anomaly,
            dec.threat.score,
        );
        assert_eq!((dec.action, dec.rule), (a, r));
        let text = dec.to_string();
        assert!(text.contains(&format!("rule {}", r.number())), "{text}");
        assert!(
            text.contains("sql_injection") && text.contains("botnet-c2"),
            "{text}"
        );
        assert_eq!(d.flows().len(), 1);
    }

    #[test]
    fn a_source_is_rescored_at_growth_points_and_once_a_second() {
        let growth: Vec<u64> = (2..=100u64).filter(|&n| rescore_due(n, 2)).collect();
        assert_eq!(growth, [2, 3, 4, 6, 9, 13, 19, 28, 42, 63, 94]);
        // The first sample of a second, whatever the count.
        assert!(rescore_due(50, 1));
        assert!(!rescore_due(50, 7));
        assert!(rescore_due(1, 1));
    }

    #[test]
    fn observe_scores_on_change_and_on_every_signature_hit() {
        let mut d = Detector::new(
            DetectorConfig {
                scoring: Scoring::OnChange,
                ..DetectorConfig::default()
            },
            Arc::new(small_model(1)),
            Correlator::new(SignatureSet::builtin(), Arc::new(ThreatFeed::empty())),
        )
        .unwrap();
        // 100 samples 1 ms apart from one source: scored at its growth
        // points only (all within one second).
        let base = 5_000_000_000u64;
        let scored: Vec<usize> = (0..100)
            .filter(|&i| {
                d.observe(&sample(base + i as u64 * 1_000_000, 9, b""))
                    .unwrap()
                    .is_some()
            })
            .collect();
        assert_eq!(scored, [0, 1, 2, 3, 5, 8, 12, 18, 27, 41, 62, 93]);
        // A payload with a signature is scored whenever it comes.
        let hit = d
            .observe(&sample(base + 100_000_000, 9, b"GET /?id=1 union select 1"))
            .unwrap()
            .expect("scored");
        assert!(!hit.threat.signatures.is_empty());
        // Schema v3 counts it in the source's window: that sample and the
        // ones after it carry it, scored or not in between.
        assert_eq!(hit.features.get(index::SIGNATURE_HITS), 1.0);
        d.observe(&sample(base + 101_000_000, 9, b"id=1' or '1'='1"))
            .unwrap();
        let next = d
            .observe(&sample(base + 1_000_000_000, 9, b"GET / HTTP/1.1"))
            .unwrap()
            .expect("first sample of a second");
        assert_eq!(next.features.get(index::SIGNATURE_HITS), 2.0);
        assert_eq!(
            packet_features(&sample(0, 9, b"../../etc/passwd"))
                .unwrap()
                .get(index::SIGNATURE_HITS),
            1.0,
            "Analyze of one sample counts its own match"
        );
        // The first sample in the second after is scored.
        assert!(
            d.observe(&sample(base + 2_000_000_000, 9, b""))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn priority_samples_feed_distinct_counts_and_are_scored_on_a_signature() {
        let prio = |ts: u64, port: u16, payload: &[u8]| PacketSample {
            flags: phantomnet_common::sample_flags::PRIORITY,
            tcp_flags: phantomnet_common::TCP_SYN,
            dst_port: port,
            ..sample(ts, 7, payload)
        };
        for scoring in [Scoring::EverySample, Scoring::OnChange] {
            let mut d = Detector::new(
                DetectorConfig {
                    scoring,
                    flow: FlowConfig {
                        sample_every: 16,
                        ..FlowConfig::default()
                    },
                    ..DetectorConfig::default()
                },
                Arc::new(small_model(3)),
                Correlator::builtin(),
            )
            .unwrap();
            // A slow scan seen only through priority samples: no probe is
            // scored on its own, every one counts toward distinct ports.
            for i in 0..40u64 {
                let dec = d
                    .observe(&prio(9_000_000_000 + i * 50_000_000, 1000 + i as u16, b""))
                    .unwrap();
                assert!(dec.is_none(), "{scoring}: probe {i} scored");
            }
            assert_eq!(d.flows().len(), 1);
            // A priority sample whose payload matches a signature is scored,
            // on finite features: rates of 0 (no uniform sample yet) and
            // the probes' distinct ports.
            let hit = d
                .observe(&prio(11_000_000_000, 2000, b"GET /?id=1 union select 1"))
                .unwrap()
                .expect("a signature hit is scored");
            assert!(hit.features.as_array().iter().all(|v| v.is_finite()));
            assert_eq!(hit.features.get(crate::features::index::EVENT_RATE_1M), 0.0);
            assert!(hit.features.get(crate::features::index::UNIQUE_DST_PORTS) > 35.0);
            assert!(!hit.threat.signatures.is_empty());
        }
    }

    #[test]
    fn a_model_trained_on_priority_samples_scores_every_one() {
        let mut model = small_model(3);
        model.meta.scores_priority = true;
        let mut d = Detector::new(
            DetectorConfig {
                flow: FlowConfig {
                    sample_every: 16,
                    ..FlowConfig::default()
                },
                ..DetectorConfig::default()
            },
            Arc::new(model),
            Correlator::builtin(),
        )
        .unwrap();
        // A slow scan's probes, each a priority sample: each is scored,
        // and the distinct ports (an estimate) grow with them.
        let mut ports = Vec::new();
        for i in 0..20u64 {
            let probe = PacketSample {
                flags: phantomnet_common::sample_flags::PRIORITY,
                tcp_flags: phantomnet_common::TCP_SYN,
                dst_port: 1000 + i as u16,
                ..sample(9_000_000_000 + i * 400_000_000, 7, b"")
            };
            let dec = d.observe(&probe).unwrap().expect("scored");
            assert_eq!(dec.features.get(crate::features::index::EVENT_RATE_1M), 0.0);
            ports.push(dec.features.get(crate::features::index::UNIQUE_DST_PORTS));
        }
        assert!(ports.windows(2).all(|w| w[1] >= w[0]), "{ports:?}");
        assert!(ports[19] >= 18.0, "{ports:?}");
        // Swapping in a model trained on uniform rows stops it.
        d.set_model(Arc::new(small_model(3)));
        let probe = PacketSample {
            flags: phantomnet_common::sample_flags::PRIORITY,
            tcp_flags: phantomnet_common::TCP_SYN,
            dst_port: 3000,
            ..sample(18_000_000_000, 7, b"")
        };
        assert!(d.observe(&probe).unwrap().is_none());
    }

    #[test]
    fn an_ipv6_source_is_decided_as_its_prefix() {
        let model = Arc::new(small_model(31));
        let mut d = Detector::new(DetectorConfig::default(), model, Correlator::builtin()).unwrap();
        let v6 = |ts: u64, addr: &str| PacketSample {
            family: 6,
            src_addr: addr.parse::<std::net::Ipv6Addr>().unwrap().octets(),
            ..sample(ts, 0, b"")
        };
        d.process(&v6(0, "2001:db8:bad::1")).unwrap();
        let dec = d.process(&v6(1_000_000, "2001:db8:bad::2:3")).unwrap();
        assert_eq!(dec.source.to_string(), "2001:db8:bad::/64");
        assert!(dec.to_string().starts_with("2001:db8:bad::/64 "), "{dec}");
        assert_eq!(d.flows().len(), 1);
        // Per address again with /128.
        d.set_ipv6_source_prefix(128);
        let dec = d.process(&v6(2_000_000, "2001:db8:bad::2:3")).unwrap();
        assert_eq!(dec.source.to_string(), "2001:db8:bad::2:3");
        let v4 = d.process(&sample(3_000_000, 9, b"")).unwrap();
        assert_eq!(v4.source.to_string(), "192.0.2.9");
    }

    #[test]
    fn non_finite_thresholds_are_refused_at_construction() {
        let cfg = DetectorConfig {
            thresholds: Thresholds {
                high: f64::NAN,
                ..Thresholds::default()
            },
            ..DetectorConfig::default()
        };
        assert!(Detector::new(cfg, Arc::new(small_model(32)), Correlator::builtin()).is_err());
    }

    #[test]
    fn analyze_matches_process_and_touches_no_flow_state() {
        let model = Arc::new(small_model(32));
        let mut d = Detector::new(
            DetectorConfig::default(),
            model.clone(),
            Correlator::builtin(),
        )
        .unwrap();
        let dec = d
            .process(&sample(1_000_000_000, 9, b"GET /?q=' OR 1=1--"))
            .unwrap();
        let flows_before = d.flows().len();
        let a = d.analyze(Some(dec.source.addr()), dec.features, b"GET /?q=' OR 1=1--");
        assert_eq!(d.flows().len(), flows_before);
        assert_eq!((a.action, a.rule), (dec.action, dec.rule));
        assert_eq!(a.scores, dec.scores);
        assert_eq!(a.threat.score, dec.threat.score);
    }

    #[test]
    fn bad_thresholds_are_refused_and_the_old_ones_stay() {
        let mut d = Detector::new(
            DetectorConfig::default(),
            Arc::new(small_model(32)),
            Correlator::builtin(),
        )
        .unwrap();
        let bad = Thresholds {
            medium: 0.9,
            high: 0.8,
            ..Thresholds::default()
        };
        assert!(d.set_thresholds(bad).is_err());
        assert_eq!(d.thresholds(), Thresholds::default());
        let good = Thresholds {
            high: 0.95,
            ..Thresholds::default()
        };
        d.set_thresholds(good).unwrap();
        assert_eq!(d.thresholds(), good);
    }
}
