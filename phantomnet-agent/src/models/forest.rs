//! The random-forest classifier: trained with smartcore, then converted into
//! [`CompactForest`], the inference form the agent runs.
//!
//! Why a hand-written inference form: smartcore has no `predict_proba`, and
//! its row-by-row prediction goes through generic matrix accessors and
//! allocates per row (about 0.3 ms a row for 200 trees). The compact form
//! keeps every tree's nodes in one flat array of 16-byte nodes, children
//! side by side, and walks it with no allocation. It gives the same class
//! as smartcore for every row (same `<=` comparison on the same `f64`
//! thresholds, same majority vote with ties going to the first class), plus
//! the share of trees voting "attack".

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::ModelError;
use crate::features::FEATURE_COUNT;

/// smartcore's forest over our row type.
pub type SmartForest = RandomForestClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

/// Marks a leaf in [`Node::feature`].
pub const LEAF: u16 = u16::MAX;

/// One tree node, 16 bytes. Internal: go to `left` if `x[feature] <=
/// threshold`, else to `left + 1`. Leaf (`feature == LEAF`): `left` is the
/// payload (the class index for the classifier), `threshold` the value (the
/// path length for the isolation forest).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct Node {
    pub threshold: f64,
    pub left: u32,
    pub feature: u16,
}

const _: () = assert!(std::mem::size_of::<Node>() == 16);

impl Node {
    pub fn leaf(value: f64, payload: u32) -> Node {
        Node {
            threshold: value,
            left: payload,
            feature: LEAF,
        }
    }
}

/// Walks the tree rooted at `root` and returns its leaf. The nodes must have
/// passed [`validate_trees`].
#[inline]
pub(crate) fn walk<'a>(nodes: &'a [Node], root: u32, x: &[f64; FEATURE_COUNT]) -> &'a Node {
    let mut i = root as usize;
    loop {
        let n = &nodes[i];
        if n.feature == LEAF {
            return n;
        }
        // `!(a <= b)` rather than `a > b`: identical to smartcore for NaN.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let right = !(x[n.feature as usize] <= n.threshold);
        i = n.left as usize + usize::from(right);
    }
}

/// Checks a flat forest so that [`walk`] can neither index out of bounds nor
/// loop: roots start at 0 and increase, every child lies after its parent
/// and inside its own tree, features are below `width` (the model's
/// schema's feature count), values finite, and leaf payloads below
/// `max_payload`.
pub(crate) fn validate_trees(
    what: &str,
    roots: &[u32],
    nodes: &[Node],
    max_payload: u32,
    width: usize,
) -> Result<(), ModelError> {
    let bad = |msg: String| ModelError::Invalid(format!("{what}: {msg}"));
    if roots.is_empty() {
        return Err(bad("no trees".into()));
    }
    if roots[0] != 0 {
        return Err(bad(format!("first root is {} not 0", roots[0])));
    }
    for t in 0..roots.len() {
        let start = roots[t] as usize;
        let end = if t + 1 < roots.len() {
            roots[t + 1] as usize
        } else {
            nodes.len()
        };
        if start >= end || end > nodes.len() {
            return Err(bad(format!(
                "tree {t} spans nodes {start}..{end} of {}",
                nodes.len()
            )));
        }
        for (i, n) in nodes.iter().enumerate().take(end).skip(start) {
            if !n.threshold.is_finite() {
                return Err(bad(format!(
                    "node {i} has non-finite value {}",
                    n.threshold
                )));
            }
            if n.feature == LEAF {
                if n.left >= max_payload {
                    return Err(bad(format!("leaf {i} payload {} out of range", n.left)));
                }
                continue;
            }
            if n.feature as usize >= width.min(FEATURE_COUNT) {
                return Err(bad(format!(
                    "node {i} splits on feature {}, the schema has {width}",
                    n.feature
                )));
            }
            let l = n.left as usize;
            if l <= i || l + 1 >= end {
                return Err(bad(format!(
                    "node {i} children {l},{} out of bounds for tree {t} ({start}..{end})",
                    l + 1
                )));
            }
        }
    }
    Ok(())
}

/// Random-forest training settings (smartcore's, plus job size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: u16,
    pub max_depth: Option<u16>,
    pub min_samples_leaf: usize,
    pub min_samples_split: usize,
    /// Features tried per split; `None` = ⌊√15⌋ = 3, smartcore's default.
    pub mtry: Option<usize>,
    pub seed: u64,
    /// Trees per parallel job. Jobs get fixed seeds derived from `seed`, so
    /// the forest is the same whatever the number of threads.
    pub trees_per_job: u16,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 200,
            max_depth: None,
            min_samples_leaf: 1,
            min_samples_split: 2,
            mtry: None,
            seed: 42,
            trees_per_job: 25,
        }
    }
}

/// The first `width` features of row-major rows to a smartcore matrix.
pub fn to_matrix(
    rows: &[[f64; FEATURE_COUNT]],
    width: usize,
) -> Result<DenseMatrix<f64>, ModelError> {
    let width = width.min(FEATURE_COUNT);
    let flat: Vec<f64> = rows.iter().flat_map(|r| &r[..width]).copied().collect();
    DenseMatrix::new(rows.len(), width, flat, false)
        .map_err(|e| ModelError::Training(e.to_string()))
}

/// Trains the forest on the first `width` features of `rows` as
/// `ceil(n_trees / trees_per_job)` smartcore forests in parallel (rayon);
/// `on_job` is called once per finished job with its tree count. `labels`
/// must contain both 0 and 1.
pub fn fit_smartcore(
    rows: &[[f64; FEATURE_COUNT]],
    width: usize,
    labels: &[u32],
    params: &ForestParams,
    on_job: &(dyn Fn(u64) + Sync),
) -> Result<Vec<SmartForest>, ModelError> {
    if rows.len() != labels.len() {
        return Err(ModelError::Training(format!(
            "{} rows but {} labels",
            rows.len(),
            labels.len()
        )));
    }
    if labels.iter().any(|&l| l > 1) {
        return Err(ModelError::Training("labels must be 0 or 1".into()));
    }
    if !(labels.contains(&0) && labels.contains(&1)) {
        return Err(ModelError::Training(
            "training data needs both benign (0) and attack (1) rows".into(),
        ));
    }
    if params.n_trees == 0 || params.trees_per_job == 0 {
        return Err(ModelError::Training(
            "n_trees and trees_per_job must be > 0".into(),
        ));
    }
    let x = to_matrix(rows, width)?;
    let y = labels.to_vec();
    let per_job = params.trees_per_job;
    let jobs: Vec<(u64, u16)> = (0..params.n_trees.div_ceil(per_job))
        .map(|j| {
            let n = per_job.min(params.n_trees - j * per_job);
            // Seeds 1,000,003 apart: smartcore seeds tree k of a job with
            // `seed + k`, so no two trees of the forest share a seed.
            (params.seed.wrapping_add(j as u64 * 1_000_003), n)
        })
        .collect();
    jobs.par_iter()
        .map(|&(seed, n)| {
            let mut p = RandomForestClassifierParameters::default()
                .with_n_trees(n)
                .with_min_samples_leaf(params.min_samples_leaf)
                .with_min_samples_split(params.min_samples_split)
                .with_seed(seed);
            if let Some(d) = params.max_depth {
                p = p.with_max_depth(d);
            }
            if let Some(m) = params.mtry {
                p = p.with_m(m);
            }
            let forest =
                SmartForest::fit(&x, &y, p).map_err(|e| ModelError::Training(e.to_string()))?;
            on_job(n as u64);
            Ok(forest)
        })
        .collect()
}

/// The compact inference form of a binary random forest (classes 0, 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactForest {
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

// Mirrors of smartcore's serialised forest, read through serde because
// smartcore keeps the tree fields private.
#[derive(Deserialize)]
struct SmForest {
    trees: Option<Vec<SmTree>>,
    classes: Option<Vec<u32>>,
}
#[derive(Deserialize)]
struct SmTree {
    nodes: Vec<SmNode>,
    classes: Vec<u32>,
}
#[derive(Deserialize)]
struct SmNode {
    output: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
}

impl CompactForest {
    /// Converts one or more smartcore forests (the parallel jobs of one
    /// training) into a single compact forest; trees keep their order.
    pub fn from_smartcore(parts: &[SmartForest]) -> Result<CompactForest, ModelError> {
        let conv = |m: String| ModelError::Training(format!("forest conversion: {m}"));
        let mut roots = Vec::new();
        let mut nodes = Vec::new();
        for part in parts {
            let v = serde_json::to_value(part).map_err(|e| conv(e.to_string()))?;
            let f: SmForest = serde_json::from_value(v).map_err(|e| conv(e.to_string()))?;
            if f.classes.as_deref() != Some(&[0, 1][..]) {
                return Err(conv(format!("classes {:?}, expected [0, 1]", f.classes)));
            }
            for tree in f.trees.unwrap_or_default() {
                if tree.classes != [0, 1] {
                    return Err(conv(format!("tree classes {:?}", tree.classes)));
                }
                roots.push(nodes.len() as u32);
                append_tree(&tree.nodes, &mut nodes).map_err(conv)?;
            }
        }
        let forest = CompactForest { roots, nodes };
        forest.validate()?;
        Ok(forest)
    }

    /// Builds from raw parts, validating them.
    pub fn from_parts(roots: Vec<u32>, nodes: Vec<Node>) -> Result<CompactForest, ModelError> {
        let f = CompactForest { roots, nodes };
        f.validate()?;
        Ok(f)
    }

    /// Structural checks, features below [`FEATURE_COUNT`].
    pub fn validate(&self) -> Result<(), ModelError> {
        self.validate_for(FEATURE_COUNT)
    }

    /// Structural checks, features below `width` (a model's schema's count).
    pub fn validate_for(&self, width: usize) -> Result<(), ModelError> {
        if self.nodes.len() >= u32::MAX as usize {
            return Err(ModelError::Invalid("forest has too many nodes".into()));
        }
        validate_trees("random forest", &self.roots, &self.nodes, 2, width)
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// How many internal nodes split on each feature (index = feature): a
    /// coarse importance measure, reported by `train`.
    pub fn split_counts(&self) -> [u32; FEATURE_COUNT] {
        let mut c = [0u32; FEATURE_COUNT];
        for n in self.nodes.iter().filter(|n| n.feature != LEAF) {
            c[n.feature as usize] += 1;
        }
        c
    }

    /// Trees voting "attack" for one (scaled) row.
    #[inline]
    pub fn attack_votes(&self, x: &[f64; FEATURE_COUNT]) -> u32 {
        self.roots
            .iter()
            .map(|&r| walk(&self.nodes, r, x).left)
            .sum()
    }

    /// Share of trees voting "attack", in [0, 1].
    #[inline]
    pub fn attack_probability(&self, x: &[f64; FEATURE_COUNT]) -> f64 {
        self.attack_votes(x) as f64 / self.roots.len() as f64
    }

    /// The majority class (0 or 1); a tie goes to 0, as in smartcore.
    #[inline]
    pub fn predict(&self, x: &[f64; FEATURE_COUNT]) -> u32 {
        let votes = self.attack_votes(x) as usize;
        u32::from(votes * 2 > self.roots.len())
    }

    /// Attack probabilities for many rows, into `out` (reused, so a caller
    /// scoring batches repeatedly does not allocate). Rows in the outer loop:
    /// a trees-outer loop measured the same here (a 200-tree forest of a few
    /// thousand nodes fits in L2), and this one keeps each row in L1.
    pub fn attack_probability_batch(&self, rows: &[[f64; FEATURE_COUNT]], out: &mut Vec<f64>) {
        out.clear();
        out.extend(rows.iter().map(|x| self.attack_probability(x)));
    }
}

/// Re-lays one smartcore tree breadth-first with sibling pairs adjacent.
fn append_tree(src: &[SmNode], out: &mut Vec<Node>) -> Result<(), String> {
    if src.is_empty() {
        return Err("empty tree".into());
    }
    let base = out.len();
    // (smartcore index, our index) to fill, in BFS order.
    let mut queue = std::collections::VecDeque::from([(0usize, base)]);
    out.push(Node::leaf(0.0, 0));
    let mut visited = 0usize;
    while let Some((si, oi)) = queue.pop_front() {
        visited += 1;
        if visited > src.len() {
            return Err("tree has a cycle".into());
        }
        let n = src
            .get(si)
            .ok_or_else(|| format!("node index {si} out of range"))?;
        match (n.true_child, n.false_child) {
            (None, _) => {
                if n.output > 1 {
                    return Err(format!("leaf class index {}", n.output));
                }
                out[oi] = Node::leaf(0.0, n.output as u32);
            }
            (Some(t), Some(f)) => {
                let thr = n
                    .split_value
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("node {si} has no finite split value"))?;
                if n.split_feature >= FEATURE_COUNT {
                    return Err(format!("node {si} splits on feature {}", n.split_feature));
                }
                let l = out.len();
                out.push(Node::leaf(0.0, 0));
                out.push(Node::leaf(0.0, 0));
                out[oi] = Node {
                    threshold: thr,
                    left: l as u32,
                    feature: n.split_feature as u16,
                };
                queue.push_back((t, l));
                queue.push_back((f, l + 1));
            }
            (Some(_), None) => return Err(format!("node {si} has only one child")),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Two overlapping classes in 15 dimensions, so trees are deep enough to
    /// exercise every path (and some rows are genuinely ambiguous).
    pub(crate) fn synthetic(n: usize, seed: u64) -> (Vec<[f64; FEATURE_COUNT]>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let y = (i % 3 == 0) as u32;
            let mut r = [0.0; FEATURE_COUNT];
            for (j, v) in r.iter_mut().enumerate() {
                let shift = if y == 1 && j % 4 == 0 { 1.2 } else { 0.0 };
                *v = rng.random::<f64>() * 2.0 + shift + j as f64;
            }
            rows.push(r);
            labels.push(y);
        }
        (rows, labels)
    }

    fn params(n_trees: u16, per_job: u16) -> ForestParams {
        ForestParams {
            n_trees,
            trees_per_job: per_job,
            seed: 7,
            ..ForestParams::default()
        }
    }

    #[test]
    fn compact_forest_predicts_exactly_what_smartcore_predicts_on_held_out_rows() {
        let (train_x, train_y) = synthetic(600, 1);
        let (test_x, _) = synthetic(400, 2);
        let parts =
            fit_smartcore(&train_x, FEATURE_COUNT, &train_y, &params(20, 20), &|_| {}).unwrap();
        assert_eq!(parts.len(), 1);
        let compact = CompactForest::from_smartcore(&parts).unwrap();
        assert_eq!(compact.n_trees(), 20);
        let expected = parts[0]
            .predict(&to_matrix(&test_x, FEATURE_COUNT).unwrap())
            .unwrap();
        let got: Vec<u32> = test_x.iter().map(|r| compact.predict(r)).collect();
        assert_eq!(got, expected);
        // The rows are hard enough that both classes and some split votes occur.
        assert!(got.contains(&0) && got.contains(&1));
        let probs: Vec<f64> = test_x
            .iter()
            .map(|r| compact.attack_probability(r))
            .collect();
        assert!(probs.iter().any(|&p| p > 0.0 && p < 1.0));
        for (p, c) in probs.iter().zip(&got) {
            assert_eq!(*c == 1, *p > 0.5);
        }
        let mut batch = Vec::new();
        compact.attack_probability_batch(&test_x, &mut batch);
        assert_eq!(batch, probs);
    }

    #[test]
    fn parallel_jobs_are_each_reproduced_exactly_and_the_forest_is_deterministic() {
        let (x, y) = synthetic(300, 3);
        let (test_x, _) = synthetic(200, 4);
        let parts = fit_smartcore(&x, FEATURE_COUNT, &y, &params(24, 10), &|_| {}).unwrap();
        assert_eq!(parts.iter().map(|_| 1).sum::<usize>(), 3);
        let m = to_matrix(&test_x, FEATURE_COUNT).unwrap();
        for part in &parts {
            let single = CompactForest::from_smartcore(std::slice::from_ref(part)).unwrap();
            let expected = part.predict(&m).unwrap();
            let got: Vec<u32> = test_x.iter().map(|r| single.predict(r)).collect();
            assert_eq!(got, expected);
        }
        let whole = CompactForest::from_smartcore(&parts).unwrap();
        assert_eq!(whole.n_trees(), 24);
        let again = CompactForest::from_smartcore(
            &fit_smartcore(&x, FEATURE_COUNT, &y, &params(24, 10), &|_| {}).unwrap(),
        )
        .unwrap();
        assert_eq!(whole, again);
    }

    #[test]
    fn training_refuses_single_class_data() {
        let (x, _) = synthetic(50, 5);
        let y = vec![0; 50];
        let err = fit_smartcore(&x, FEATURE_COUNT, &y, &params(5, 5), &|_| {}).unwrap_err();
        assert!(err.to_string().contains("both"), "{err}");
    }

    #[test]
    fn corrupt_node_indices_are_refused_not_followed() {
        let leaf = Node::leaf(0.0, 1);
        let split = |left| Node {
            threshold: 0.5,
            left,
            feature: 3,
        };
        assert!(CompactForest::from_parts(vec![0], vec![split(1), leaf, leaf]).is_ok());
        // Child beyond the array.
        assert!(CompactForest::from_parts(vec![0], vec![split(7), leaf, leaf]).is_err());
        // Child pointing back (a loop).
        assert!(CompactForest::from_parts(vec![0], vec![split(0), leaf, leaf]).is_err());
        // Child inside the next tree.
        assert!(CompactForest::from_parts(vec![0, 2], vec![split(1), leaf, leaf]).is_err());
        // Bad feature, bad leaf class, NaN threshold.
        let mut n = split(1);
        n.feature = FEATURE_COUNT as u16;
        assert!(CompactForest::from_parts(vec![0], vec![n, leaf, leaf]).is_err());
        assert!(
            CompactForest::from_parts(vec![0], vec![split(1), Node::leaf(0.0, 2), leaf]).is_err()
        );
        let mut n = split(1);
        n.threshold = f64::NAN;
        assert!(CompactForest::from_parts(vec![0], vec![n, leaf, leaf]).is_err());
        assert!(CompactForest::from_parts(vec![], vec![]).is_err());
    }
}
