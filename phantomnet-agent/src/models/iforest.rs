//! Isolation forest (Liu, Ting & Zhou, 2008).
//!
//! Hand-written: smartcore has none, and the crates that do are either
//! unmaintained or cannot be serialised with their state and seeded for a
//! reproducible build. The trees reuse the classifier's flat 16-byte
//! [`Node`] layout (a leaf's value is its path length), so scoring one row
//! walks `n_trees` short paths (depth ≤ ⌈log₂ sample_size⌉) with no
//! allocation.

use rand::seq::index::sample as sample_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::forest::{Node, validate_trees, walk};
use crate::features::FEATURE_COUNT;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationParams {
    pub n_trees: u16,
    /// Rows drawn (without replacement) for each tree: ψ.
    pub sample_size: usize,
    /// Expected share of anomalies in the training data, in (0, 0.5].
    pub contamination: f64,
    pub seed: u64,
}

impl Default for IsolationParams {
    fn default() -> Self {
        IsolationParams {
            n_trees: 100,
            sample_size: 256,
            contamination: 0.1,
            seed: 42,
        }
    }
}

/// A fitted isolation forest.
///
/// `raw_score` is the paper's s(x) = 2^(−E[h(x)] / c(ψ)) in (0, 1).
/// `score` normalises it so that the training set's contamination quantile
/// maps to 0.5: piecewise linear, [0, t] → [0, 0.5] and [t, 1] → [0.5, 1].
/// So `score ≥ 0.5` flags about `contamination` of the training rows, and
/// the decision thresholds (MEDIUM 0.5, HIGH 0.8) read on the same scale
/// whatever the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    params: IsolationParams,
    /// c(ψ) for the sample size actually used.
    c_norm: f64,
    /// Raw score at the training set's (1 − contamination) quantile.
    threshold: f64,
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

/// Average path length of an unsuccessful BST search among `n` points.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForest {
    /// Fits on the first `width` features of (scaled) `rows`.
    pub fn fit(
        rows: &[[f64; FEATURE_COUNT]],
        width: usize,
        params: &IsolationParams,
    ) -> Result<Self, ModelError> {
        let width = width.min(FEATURE_COUNT);
        let err = |m: &str| ModelError::Training(format!("isolation forest: {m}"));
        if rows.len() < 2 {
            return Err(err("needs at least 2 rows"));
        }
        if !(params.contamination > 0.0 && params.contamination <= 0.5) {
            return Err(err("contamination must be in (0, 0.5]"));
        }
        if params.n_trees == 0 || params.sample_size < 2 {
            return Err(err("n_trees must be > 0 and sample_size ≥ 2"));
        }
        let psi = params.sample_size.min(rows.len());
        let limit = (psi as f64).log2().ceil() as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut roots = Vec::with_capacity(params.n_trees as usize);
        let mut nodes = Vec::new();
        for _ in 0..params.n_trees {
            let mut idx: Vec<usize> = sample_indices(&mut rng, rows.len(), psi).into_vec();
            roots.push(nodes.len() as u32);
            nodes.push(Node::leaf(0.0, 0));
            let at = nodes.len() - 1;
            grow(rows, width, &mut idx, 0, limit, at, &mut nodes, &mut rng);
        }
        let mut forest = IsolationForest {
            params: params.clone(),
            c_norm: c_factor(psi),
            threshold: 0.5,
            roots,
            nodes,
        };
        let mut scores: Vec<f64> = rows.iter().map(|r| forest.raw_score(r)).collect();
        scores.sort_by(f64::total_cmp);
        let q = ((1.0 - params.contamination) * rows.len() as f64).floor() as usize;
        forest.threshold = scores[q.min(rows.len() - 1)].clamp(1e-9, 1.0 - 1e-9);
        forest.validate()?;
        Ok(forest)
    }

    pub fn params(&self) -> &IsolationParams {
        &self.params
    }

    /// The raw score that maps to 0.5.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Mean path length of `x` over the trees.
    #[inline]
    pub fn mean_path_length(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        let total: f64 = self
            .roots
            .iter()
            .map(|&r| walk(&self.nodes, r, x).threshold)
            .sum();
        total / self.roots.len() as f64
    }

    /// s(x) in (0, 1]; higher is more anomalous.
    #[inline]
    pub fn raw_score(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        if self.c_norm <= 0.0 {
            return 0.5;
        }
        (-self.mean_path_length(x) / self.c_norm).exp2()
    }

    /// Anomaly score normalised to [0, 1] (see the type's docs).
    #[inline]
    pub fn score(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        let s = self.raw_score(x);
        let t = self.threshold;
        let v = if s < t {
            0.5 * s / t
        } else {
            0.5 + 0.5 * (s - t) / (1.0 - t)
        };
        v.clamp(0.0, 1.0)
    }

    /// Whether `x` is flagged as an outlier (`score ≥ 0.5`).
    pub fn is_anomaly(&self, x: &[f64; FEATURE_COUNT]) -> bool {
        self.raw_score(x) >= self.threshold
    }

    /// Structural checks, features below [`FEATURE_COUNT`].
    pub fn validate(&self) -> Result<(), ModelError> {
        self.validate_for(FEATURE_COUNT)
    }

    /// Structural checks, features below `width` (a model's schema's count).
    pub fn validate_for(&self, width: usize) -> Result<(), ModelError> {
        let bad = |m: String| ModelError::Invalid(format!("isolation forest: {m}"));
        if !(self.c_norm.is_finite() && self.c_norm > 0.0) {
            return Err(bad(format!("normaliser c(ψ) = {}", self.c_norm)));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(bad(format!("threshold {} not in (0, 1)", self.threshold)));
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(bad("too many nodes".into()));
        }
        validate_trees("isolation forest", &self.roots, &self.nodes, 1, width)
    }
}

/// Grows the subtree for `idx` into `nodes[at]`; children are appended as
/// adjacent pairs, so every child index exceeds its parent's.
#[allow(clippy::too_many_arguments)]
fn grow(
    rows: &[[f64; FEATURE_COUNT]],
    width: usize,
    idx: &mut [usize],
    depth: usize,
    limit: usize,
    at: usize,
    nodes: &mut Vec<Node>,
    rng: &mut ChaCha8Rng,
) {
    let leaf = |n: usize| Node::leaf(depth as f64 + c_factor(n), 0);
    if depth >= limit || idx.len() <= 1 {
        nodes[at] = leaf(idx.len());
        return;
    }
    // Features that still vary in this node; pick one uniformly.
    let mut ranges = [(0.0f64, 0.0f64); FEATURE_COUNT];
    let mut candidates = [0usize; FEATURE_COUNT];
    let mut n_cand = 0;
    for (j, range) in ranges.iter_mut().enumerate().take(width) {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &i in idx.iter() {
            lo = lo.min(rows[i][j]);
            hi = hi.max(rows[i][j]);
        }
        *range = (lo, hi);
        if hi > lo {
            candidates[n_cand] = j;
            n_cand += 1;
        }
    }
    if n_cand == 0 {
        nodes[at] = leaf(idx.len());
        return;
    }
    let j = candidates[rng.random_range(0..n_cand)];
    let (lo, hi) = ranges[j];
    let mut thr = lo + rng.random::<f64>() * (hi - lo);
    if thr >= hi {
        thr = lo;
    }
    // Partition: values <= thr to the front.
    let mut k = 0;
    for m in 0..idx.len() {
        if rows[idx[m]][j] <= thr {
            idx.swap(k, m);
            k += 1;
        }
    }
    let l = nodes.len();
    nodes.push(Node::leaf(0.0, 0));
    nodes.push(Node::leaf(0.0, 0));
    nodes[at] = Node {
        threshold: thr,
        left: l as u32,
        feature: j as u16,
    };
    let (left, right) = idx.split_at_mut(k);
    grow(rows, width, left, depth + 1, limit, l, nodes, rng);
    grow(rows, width, right, depth + 1, limit, l + 1, nodes, rng);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn gaussian_blob(n: usize, seed: u64) -> Vec<[f64; FEATURE_COUNT]> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut r = [0.0; FEATURE_COUNT];
                for v in &mut r {
                    // Sum of uniforms: roughly normal, unit-ish spread.
                    *v = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                }
                r
            })
            .collect()
    }

    #[test]
    fn isolated_outliers_score_higher_than_inliers() {
        let rows = gaussian_blob(1000, 1);
        let f = IsolationForest::fit(
            &rows,
            FEATURE_COUNT,
            &IsolationParams {
                n_trees: 50,
                ..Default::default()
            },
        )
        .unwrap();
        let centre = [0.0; FEATURE_COUNT];
        // Outside the data's range on every feature: it lands in an extreme leaf of every tree.
        let far = [5.0; FEATURE_COUNT];
        // Outside on one feature only: isolated whenever a tree splits on it.
        let mut edge = [0.0; FEATURE_COUNT];
        edge[3] = 8.0;
        let (s_far, s_edge, s_centre) = (f.score(&far), f.score(&edge), f.score(&centre));
        assert!(
            s_far > s_edge && s_edge > s_centre,
            "{s_far} {s_edge} {s_centre}"
        );
        assert!(s_far > s_centre + 0.2, "{s_far} {s_centre}");
        assert!(f.score(&far) >= 0.5 && f.is_anomaly(&far));
        assert!(f.score(&centre) < 0.5 && !f.is_anomaly(&centre));
        for r in &rows[..50] {
            let s = f.score(r);
            assert!((0.0..=1.0).contains(&s));
        }
    }

    #[test]
    fn about_the_contamination_share_of_training_rows_is_flagged() {
        let rows = gaussian_blob(2000, 2);
        for contamination in [0.05, 0.1, 0.2] {
            let f = IsolationForest::fit(
                &rows,
                FEATURE_COUNT,
                &IsolationParams {
                    n_trees: 50,
                    contamination,
                    ..Default::default()
                },
            )
            .unwrap();
            let flagged =
                rows.iter().filter(|r| f.score(r) >= 0.5).count() as f64 / rows.len() as f64;
            assert!(
                (flagged - contamination).abs() < 0.02,
                "{contamination}: {flagged}"
            );
        }
    }

    #[test]
    fn seeded_fits_are_identical_and_different_seeds_differ() {
        let rows = gaussian_blob(300, 3);
        let p = IsolationParams {
            n_trees: 20,
            ..Default::default()
        };
        let a = IsolationForest::fit(&rows, FEATURE_COUNT, &p).unwrap();
        let b = IsolationForest::fit(&rows, FEATURE_COUNT, &p).unwrap();
        assert_eq!(a, b);
        let c =
            IsolationForest::fit(&rows, FEATURE_COUNT, &IsolationParams { seed: 43, ..p }).unwrap();
        assert_ne!(a, c);
        let bytes = postcard::to_allocvec(&a).unwrap();
        let back: IsolationForest = postcard::from_bytes(&bytes).unwrap();
        back.validate().unwrap();
        for r in &rows {
            assert_eq!(a.score(r).to_bits(), back.score(r).to_bits());
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let rows = gaussian_blob(10, 4);
        for p in [
            IsolationParams {
                contamination: 0.0,
                ..Default::default()
            },
            IsolationParams {
                contamination: 0.7,
                ..Default::default()
            },
            IsolationParams {
                n_trees: 0,
                ..Default::default()
            },
        ] {
            assert!(IsolationForest::fit(&rows, FEATURE_COUNT, &p).is_err());
        }
        assert!(
            IsolationForest::fit(&rows[..1], FEATURE_COUNT, &IsolationParams::default()).is_err()
        );
        assert!((c_factor(256) - 10.244).abs() < 0.01);
    }
}
