//! The threat correlator: payload signatures, the threat-intel feed and the
//! anomaly score, weighted into one `threat_score` in [0, 1] with a verdict.

pub mod feed_format;
pub mod intel;
pub mod query;
pub mod signatures;

pub use feed_format::FeedFormat;
pub use intel::{FeedEntry, FeedError, ThreatFeed, ThreatFeedHandle};
pub use signatures::{SignatureCategory, SignatureMatches, SignatureSet};

use std::net::IpAddr;
use std::sync::Arc;

/// Weights of the three evidence sources; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreatWeights {
    pub anomaly: f64,
    pub signatures: f64,
    pub feed: f64,
}

impl Default for ThreatWeights {
    fn default() -> Self {
        ThreatWeights {
            anomaly: 0.2,
            signatures: 0.3,
            feed: 0.5,
        }
    }
}

/// The verdict on a threat score: SAFE ≤ 0.2 < WARNING ≤ 0.5 < HIGH ≤ 0.8 < CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Safe,
    Warning,
    High,
    Critical,
}

impl Verdict {
    pub fn from_score(score: f64) -> Verdict {
        if score > 0.8 {
            Verdict::Critical
        } else if score > 0.5 {
            Verdict::High
        } else if score > 0.2 {
            Verdict::Warning
        } else {
            Verdict::Safe
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Safe => "SAFE",
            Verdict::Warning => "WARNING",
            Verdict::High => "HIGH",
            Verdict::Critical => "CRITICAL",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The correlator's findings for one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreatAssessment {
    /// Weighted sum, in [0, 1].
    pub score: f64,
    pub verdict: Verdict,
    /// The anomaly score that went in.
    pub anomaly: f64,
    /// Highest severity among matched signatures (0 if none).
    pub signature_score: f64,
    pub signatures: SignatureMatches,
    /// The feed entry's confidence (0 if the source is not listed).
    pub feed_score: f64,
    pub feed_label: Option<Arc<str>>,
}

/// Signatures + feed + weights.
#[derive(Debug, Clone)]
pub struct Correlator {
    signatures: SignatureSet,
    feed: Arc<ThreatFeed>,
    weights: ThreatWeights,
}

impl Correlator {
    pub fn new(signatures: SignatureSet, feed: Arc<ThreatFeed>) -> Correlator {
        Correlator {
            signatures,
            feed,
            weights: ThreatWeights::default(),
        }
    }

    /// Built-in signatures and an empty feed.
    pub fn builtin() -> Correlator {
        Self::new(SignatureSet::builtin(), Arc::new(ThreatFeed::empty()))
    }

    /// Swaps in a (re)loaded feed.
    pub fn set_feed(&mut self, feed: Arc<ThreatFeed>) {
        self.feed = feed;
    }

    pub fn feed(&self) -> &Arc<ThreatFeed> {
        &self.feed
    }

    /// Correlates one sample. `payload` is the sampled prefix, `anomaly`
    /// the normalised isolation-forest score. No allocation (the feed label
    /// is a shared `Arc<str>`).
    pub fn assess(&self, source: IpAddr, payload: &[u8], anomaly: f64) -> ThreatAssessment {
        self.assess_found(source, self.signatures.scan(payload), anomaly)
    }

    /// The signature categories `payload` matches (the first half of
    /// [`Correlator::assess`]).
    pub fn signatures(&self, payload: &[u8]) -> SignatureMatches {
        self.signatures.scan(payload)
    }

    /// [`Correlator::assess`] with the payload's signatures already found.
    pub fn assess_found(
        &self,
        source: IpAddr,
        signatures: SignatureMatches,
        anomaly: f64,
    ) -> ThreatAssessment {
        let anomaly = anomaly.clamp(0.0, 1.0);
        let signature_score = signatures.score();
        let (feed_score, feed_label) = match self.feed.lookup(source) {
            Some(e) => (e.confidence, Some(e.label.clone())),
            None => (0.0, None),
        };
        let w = &self.weights;
        let score = (w.anomaly * anomaly + w.signatures * signature_score + w.feed * feed_score)
            .clamp(0.0, 1.0);
        ThreatAssessment {
            score,
            verdict: Verdict::from_score(score),
            anomaly,
            signature_score,
            signatures,
            feed_score,
            feed_label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_boundaries() {
        assert_eq!(Verdict::from_score(0.0), Verdict::Safe);
        assert_eq!(Verdict::from_score(0.2), Verdict::Safe);
        assert_eq!(Verdict::from_score(0.21), Verdict::Warning);
        assert_eq!(Verdict::from_score(0.5), Verdict::Warning);
        assert_eq!(Verdict::from_score(0.51), Verdict::High);
        assert_eq!(Verdict::from_score(0.8), Verdict::High);
        assert_eq!(Verdict::from_score(0.81), Verdict::Critical);
    }

    #[test]
    fn score_is_the_weighted_sum_of_the_evidence() {
        let feed = ThreatFeed::parse("192.0.2.66 c2\n192.0.2.77 scanner 0.4\n").unwrap();
        let c = Correlator::new(SignatureSet::builtin(), Arc::new(feed));
        let listed: IpAddr = "192.0.2.66".parse().unwrap();
        let clean: IpAddr = "192.0.2.1".parse().unwrap();

        let a = c.assess(clean, b"GET / HTTP/1.1", 0.0);
        assert_eq!((a.score, a.verdict), (0.0, Verdict::Safe));

        let a = c.assess(clean, b"GET / HTTP/1.1", 1.0);
        assert!((a.score - 0.2).abs() < 1e-12);

        let a = c.assess(clean, b"id=1 union select 1", 0.5);
        assert!((a.score - (0.1 + 0.3)).abs() < 1e-12);
        assert_eq!(a.verdict, Verdict::Warning);

        let a = c.assess(listed, b"", 0.0);
        assert!((a.score - 0.5).abs() < 1e-12);
        assert_eq!(a.feed_label.as_deref(), Some("c2"));

        let a = c.assess(listed, b"GET /../../etc/passwd", 1.0);
        assert!((a.score - (0.2 + 0.27 + 0.5)).abs() < 1e-12);
        assert_eq!(a.verdict, Verdict::Critical);

        let a = c.assess("192.0.2.77".parse().unwrap(), b"", 0.0);
        assert!((a.score - 0.2).abs() < 1e-12);
    }
}
