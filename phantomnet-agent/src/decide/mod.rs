//! The decision tree: model prediction, confidence, anomaly and threat
//! scores → LOG, THROTTLE, DECEIVE or BLOCK, with the rule that fired; and
//! the priority rule that keeps a stronger unexpired action in force.

use std::fmt;

pub use phantomnet_common::Action;

/// The rule of the tree that fired, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// 1. A benign prediction → LOG.
    Benign,
    /// 2. An attack with confidence < MEDIUM_CONFIDENCE → THROTTLE.
    LowConfidenceAttack,
    /// 3. An attack with confidence ≥ HIGH_CONFIDENCE, anomaly ≥ HIGH and
    ///    threat ≥ HIGH → BLOCK.
    ConfirmedAttack,
    /// 4. An attack with confidence ≥ MEDIUM_CONFIDENCE and anomaly ≥ MEDIUM → DECEIVE.
    AnomalousAttack,
    /// 5. Any other attack → THROTTLE.
    OtherAttack,
}

impl Rule {
    pub const fn number(self) -> u8 {
        match self {
            Rule::Benign => 1,
            Rule::LowConfidenceAttack => 2,
            Rule::ConfirmedAttack => 3,
            Rule::AnomalousAttack => 4,
            Rule::OtherAttack => 5,
        }
    }

    pub const fn description(self) -> &'static str {
        match self {
            Rule::Benign => "benign prediction",
            Rule::LowConfidenceAttack => "attack with confidence < MEDIUM_CONFIDENCE",
            Rule::ConfirmedAttack => {
                "attack with confidence >= HIGH_CONFIDENCE, anomaly >= HIGH and threat >= HIGH"
            }
            Rule::AnomalousAttack => {
                "attack with confidence >= MEDIUM_CONFIDENCE and anomaly >= MEDIUM"
            }
            Rule::OtherAttack => "other attack",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({})", self.number(), self.description())
    }
}

/// The tree's thresholds. Defaults: LOW 0.3, MEDIUM_CONFIDENCE 0.6,
/// MEDIUM 0.5, HIGH_CONFIDENCE 0.8, HIGH 0.8.
///
/// LOW is kept (and validated) for compatibility with the prototype's
/// configuration; none of the five rules reads it.
/// Also the `[thresholds]` table of the agent's config (same keys).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub low: f64,
    pub medium_confidence: f64,
    pub medium: f64,
    pub high_confidence: f64,
    pub high: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            low: 0.3,
            medium_confidence: 0.6,
            medium: 0.5,
            high_confidence: 0.8,
            high: 0.8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("threshold {name} = {value} is outside [0, 1]")]
    OutOfRange { name: &'static str, value: f64 },
    #[error("threshold {lower} = {lower_value} is above {higher} = {higher_value}")]
    Inconsistent {
        lower: &'static str,
        lower_value: f64,
        higher: &'static str,
        higher_value: f64,
    },
}

impl Thresholds {
    /// Checks every threshold is in [0, 1] (NaN is out of range) and that
    /// LOW ≤ MEDIUM ≤ HIGH and MEDIUM_CONFIDENCE ≤ HIGH_CONFIDENCE.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        let all = [
            ("LOW", self.low),
            ("MEDIUM_CONFIDENCE", self.medium_confidence),
            ("MEDIUM", self.medium),
            ("HIGH_CONFIDENCE", self.high_confidence),
            ("HIGH", self.high),
        ];
        for (name, value) in all {
            if !(0.0..=1.0).contains(&value) {
                return Err(ThresholdError::OutOfRange { name, value });
            }
        }
        for (lower, lower_value, higher, higher_value) in [
            ("LOW", self.low, "MEDIUM", self.medium),
            ("MEDIUM", self.medium, "HIGH", self.high),
            (
                "MEDIUM_CONFIDENCE",
                self.medium_confidence,
                "HIGH_CONFIDENCE",
                self.high_confidence,
            ),
        ] {
            if lower_value > higher_value {
                return Err(ThresholdError::Inconsistent {
                    lower,
                    lower_value,
                    higher,
                    higher_value,
                });
            }
        }
        Ok(())
    }
}

/// Validated thresholds, so the tree never runs on bad ones.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DecisionTree {
    t: Thresholds,
}

impl DecisionTree {
    pub fn new(t: Thresholds) -> Result<DecisionTree, ThresholdError> {
        t.validate()?;
        Ok(DecisionTree { t })
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.t
    }

    /// Applies the five rules in order.
    pub fn decide(
        &self,
        prediction: u8,
        confidence: f64,
        anomaly: f64,
        threat: f64,
    ) -> (Action, Rule) {
        let t = &self.t;
        if prediction == 0 {
            (Action::Log, Rule::Benign)
        } else if confidence < t.medium_confidence {
            (Action::Throttle, Rule::LowConfidenceAttack)
        } else if confidence >= t.high_confidence && anomaly >= t.high && threat >= t.high {
            (Action::Block, Rule::ConfirmedAttack)
        } else if confidence >= t.medium_confidence && anomaly >= t.medium {
            (Action::Deceive, Rule::AnomalousAttack)
        } else {
            (Action::Throttle, Rule::OtherAttack)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_prototype_cases() {
        let tree = DecisionTree::default();
        assert_eq!(tree.decide(0, 0.1, 0.1, 0.0), (Action::Log, Rule::Benign));
        assert_eq!(
            tree.decide(1, 0.4, 0.1, 0.0),
            (Action::Throttle, Rule::LowConfidenceAttack)
        );
        assert_eq!(
            tree.decide(1, 0.9, 0.9, 0.9),
            (Action::Block, Rule::ConfirmedAttack)
        );
        assert_eq!(
            tree.decide(1, 0.7, 0.6, 0.0),
            (Action::Deceive, Rule::AnomalousAttack)
        );
    }

    #[test]
    fn rule_order_and_boundaries() {
        let tree = DecisionTree::default();
        // A benign prediction logs whatever the other scores.
        assert_eq!(tree.decide(0, 1.0, 1.0, 1.0).0, Action::Log);
        // Confidence exactly MEDIUM_CONFIDENCE is not "low".
        assert_eq!(
            tree.decide(1, 0.6, 0.5, 0.0),
            (Action::Deceive, Rule::AnomalousAttack)
        );
        // High confidence and anomaly but low threat: not BLOCK, DECEIVE.
        assert_eq!(
            tree.decide(1, 0.95, 0.9, 0.79),
            (Action::Deceive, Rule::AnomalousAttack)
        );
        // Exactly at the HIGH thresholds: BLOCK.
        assert_eq!(
            tree.decide(1, 0.8, 0.8, 0.8),
            (Action::Block, Rule::ConfirmedAttack)
        );
        // Confident attack, unremarkable anomaly: rule 5.
        assert_eq!(
            tree.decide(1, 0.9, 0.2, 0.9),
            (Action::Throttle, Rule::OtherAttack)
        );
        // Thresholds are honoured, not hard-coded.
        let strict = DecisionTree::new(Thresholds {
            medium_confidence: 0.75,
            ..Thresholds::default()
        })
        .unwrap();
        assert_eq!(
            strict.decide(1, 0.7, 0.6, 0.0),
            (Action::Throttle, Rule::LowConfidenceAttack)
        );
    }

    #[test]
    fn bad_thresholds_are_rejected() {
        let ok = Thresholds::default();
        assert!(ok.validate().is_ok());
        for (t, needle) in [
            (Thresholds { high: 1.2, ..ok }, "HIGH = 1.2 is outside"),
            (Thresholds { low: -0.1, ..ok }, "LOW = -0.1 is outside"),
            (
                Thresholds {
                    medium_confidence: f64::NAN,
                    ..ok
                },
                "MEDIUM_CONFIDENCE = NaN",
            ),
            (
                Thresholds { medium: 0.9, ..ok },
                "MEDIUM = 0.9 is above HIGH = 0.8",
            ),
            (
                Thresholds {
                    medium_confidence: 0.85,
                    ..ok
                },
                "MEDIUM_CONFIDENCE = 0.85 is above HIGH_CONFIDENCE",
            ),
            (Thresholds { low: 0.6, ..ok }, "LOW = 0.6 is above MEDIUM"),
        ] {
            let err = DecisionTree::new(t).unwrap_err();
            assert!(err.to_string().contains(needle), "{err} / {needle}");
        }
    }

    #[test]
    fn actions_are_ordered_by_strength() {
        assert!(
            Action::Log < Action::Throttle
                && Action::Throttle < Action::Deceive
                && Action::Deceive < Action::Block
        );
    }
}
