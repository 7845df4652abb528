//! Classification metrics: confusion matrix, accuracy, precision, recall,
//! F1 (attack = positive), ROC curve and ROC-AUC, mean ± std.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub tn: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tp: u64,
}

impl Confusion {
    pub fn from_predictions(truth: &[u32], predicted: &[u32]) -> Confusion {
        let mut c = Confusion::default();
        for (&t, &p) in truth.iter().zip(predicted) {
            match (t, p) {
                (0, 0) => c.tn += 1,
                (0, _) => c.fp += 1,
                (_, 0) => c.fn_ += 1,
                _ => c.tp += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tn + self.fp + self.fn_ + self.tp
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// ROC-AUC: the probability that a random attack row scores above a random
/// benign row, ties counting half (Mann-Whitney U with mid-ranks).
/// `None` if either class is absent.
pub fn roc_auc(truth: &[u32], scores: &[f64]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..truth.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n_pos = truth.iter().filter(|&&t| t == 1).count() as f64;
    let n_neg = truth.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if truth[k] == 1 {
                rank_sum_pos += mid_rank;
            }
        }
        i = j + 1;
    }
    Some((rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// ROC curve points `(false positive rate, true positive rate)`, one per
/// distinct score threshold, from (0, 0) to (1, 1).
pub fn roc_curve(truth: &[u32], scores: &[f64]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..truth.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n_pos = truth.iter().filter(|&&t| t == 1).count().max(1) as f64;
    let n_neg = truth.iter().filter(|&&t| t != 1).count().max(1) as f64;
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if truth[idx[i]] == 1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        pts.push((fp / n_neg, tp / n_pos));
    }
    pts
}

/// Metrics of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: Option<f64>,
    pub confusion: Confusion,
}

impl Scores {
    pub fn compute(truth: &[u32], predicted: &[u32], probability: &[f64]) -> Scores {
        let c = Confusion::from_predictions(truth, predicted);
        Scores {
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            roc_auc: roc_auc(truth, probability),
            confusion: c,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    /// Mean and population standard deviation.
    pub fn of(values: &[f64]) -> MeanStd {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        MeanStd {
            mean,
            std: var.sqrt(),
        }
    }
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_metrics() {
        let truth = [1, 1, 1, 0, 0, 0, 0, 1];
        let pred = [1, 1, 0, 0, 0, 1, 0, 1];
        let c = Confusion::from_predictions(&truth, &pred);
        assert_eq!(
            c,
            Confusion {
                tn: 3,
                fp: 1,
                fn_: 1,
                tp: 3
            }
        );
        assert_eq!(c.accuracy(), 0.75);
        assert_eq!(c.precision(), 0.75);
        assert_eq!(c.recall(), 0.75);
        assert_eq!(c.f1(), 0.75);
        assert_eq!(Confusion::default().f1(), 0.0);
    }

    #[test]
    fn auc_matches_pairwise_counting() {
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.8, 0.9]), Some(1.0));
        assert_eq!(roc_auc(&[1, 1, 0, 0], &[0.1, 0.2, 0.8, 0.9]), Some(0.0));
        assert_eq!(roc_auc(&[0, 1], &[0.5, 0.5]), Some(0.5));
        // 2 pos × 2 neg: pairs (0.35>0.1 yes, 0.35>0.4 no, 0.8>both yes) = 3/4.
        assert_eq!(roc_auc(&[0, 1, 0, 1], &[0.1, 0.35, 0.4, 0.8]), Some(0.75));
        assert_eq!(roc_auc(&[1, 1], &[0.1, 0.2]), None);
        let curve = roc_curve(&[0, 1, 0, 1], &[0.1, 0.35, 0.4, 0.8]);
        assert_eq!(
            curve,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn mean_std() {
        let m = MeanStd::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        assert!((m.std - 1.118_033_988_749_895).abs() < 1e-12);
        assert_eq!(m.to_string(), "2.5000 ± 1.1180");
    }
}
