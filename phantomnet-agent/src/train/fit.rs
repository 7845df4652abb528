//! The training pipeline: stratified split, stratified k-fold
//! cross-validation, final fit (scaler → forest, isolation forest), and the
//! held-out evaluation, all seeded.

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::csvdata::Dataset;
use super::metrics::{MeanStd, Scores};
use super::progress::Progress;
use super::split::{stratified_kfold, stratified_split};
use crate::features::{FEATURE_COUNT, Schema};
use crate::models::forest::fit_smartcore;
use crate::models::{CompactForest, IsolationForest, Model, ModelParams, StandardScaler};

/// Cross-validation results, mean ± std over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvReport {
    pub folds: usize,
    pub accuracy: MeanStd,
    pub precision: MeanStd,
    pub recall: MeanStd,
    pub f1: MeanStd,
    pub roc_auc: MeanStd,
}

/// Everything `train` measured; stored in the artifact's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub rows: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub attack_share: f64,
    pub cross_validation: Option<CvReport>,
    pub test: Scores,
    /// Share of held-out rows the isolation forest flags (score ≥ 0.5).
    pub test_anomaly_share: f64,
    /// Features held at 0 for an ablation (`train --without`); none for a
    /// model meant to ship.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without: Vec<String>,
}

/// The rows and labels at `idx`, with the features in `without` set to 0.
fn gather(ds: &Dataset, idx: &[usize], without: &[usize]) -> (Vec<[f64; FEATURE_COUNT]>, Vec<u32>) {
    let row = |i: usize| {
        let mut r = ds.rows[i];
        without.iter().for_each(|&j| r[j] = 0.0);
        r
    };
    (
        idx.iter().map(|&i| row(i)).collect(),
        idx.iter().map(|&i| ds.labels[i]).collect(),
    )
}

/// Fits scaler + forest on the first `width` features of `x`/`y`.
fn fit_forest(
    x: &[[f64; FEATURE_COUNT]],
    width: usize,
    y: &[u32],
    params: &ModelParams,
    progress: &Progress,
    what: &str,
) -> Result<(StandardScaler, Vec<[f64; FEATURE_COUNT]>, CompactForest), TrainError> {
    let scaler = StandardScaler::fit(x, width);
    let scaled: Vec<_> = x.iter().map(|r| scaler.transformed(r)).collect();
    let bar = progress.bar(params.forest.n_trees as u64, what);
    let parts = fit_smartcore(&scaled, width, y, &params.forest, &|n| bar.inc(n))?;
    bar.finish();
    let forest = CompactForest::from_smartcore(&parts)?;
    Ok((scaler, scaled, forest))
}

fn evaluate_forest(
    scaler: &StandardScaler,
    forest: &CompactForest,
    x: &[[f64; FEATURE_COUNT]],
    y: &[u32],
) -> Scores {
    let scaled: Vec<_> = x.iter().map(|r| scaler.transformed(r)).collect();
    let mut prob = Vec::new();
    forest.attack_probability_batch(&scaled, &mut prob);
    let pred: Vec<u32> = scaled.iter().map(|r| forest.predict(r)).collect();
    Scores::compute(y, &pred, &prob)
}

/// Trains a model of `schema` on `ds` (whose own schema must have all of
/// its features). `data_sha256` and `created_at` go into its metadata.
///
/// `without` (feature indices) is for ablations: those features are held
/// at 0 in training, so no tree splits on them, and the report lists them.
#[allow(clippy::too_many_arguments)]
pub fn train_model(
    ds: &Dataset,
    schema: Schema,
    without: &[usize],
    params: &ModelParams,
    data_sha256: String,
    created_at: String,
    progress: &Progress,
) -> Result<(Model, TrainReport), TrainError> {
    if schema.count() > ds.schema.count() {
        return Err(TrainError::Usage(format!(
            "a schema-{schema} model needs {} features; the data has schema {}'s {}",
            schema.count(),
            ds.schema,
            ds.schema.count()
        )));
    }
    let width = schema.count();
    if let Some(&j) = without.iter().find(|&&j| j >= width) {
        return Err(TrainError::Usage(format!(
            "feature index {j} is not in schema {schema}"
        )));
    }
    let (n_benign, n_attack) = (ds.count_label(0), ds.count_label(1));
    let need = params.folds.max(2);
    if n_benign < need || n_attack < need {
        return Err(TrainError::Data(format!(
            "need at least {need} benign and {need} attack rows, have {n_benign} and {n_attack}"
        )));
    }
    if !(params.test_fraction > 0.0 && params.test_fraction < 1.0) {
        return Err(TrainError::Usage(
            "--test-fraction must be in (0, 1)".into(),
        ));
    }
    let (train_idx, test_idx) = stratified_split(&ds.labels, params.test_fraction, params.seed);
    let (train_x, train_y) = gather(ds, &train_idx, without);
    let (test_x, test_y) = gather(ds, &test_idx, without);
    tracing::info!(
        train = train_x.len(),
        test = test_x.len(),
        "stratified split"
    );

    let cross_validation = if params.folds >= 2 {
        let folds = stratified_kfold(&train_y, params.folds, params.seed ^ 0xC5);
        let mut per_fold: Vec<Scores> = Vec::new();
        for (k, (tr, te)) in folds.iter().enumerate() {
            let x: Vec<_> = tr.iter().map(|&i| train_x[i]).collect();
            let y: Vec<_> = tr.iter().map(|&i| train_y[i]).collect();
            let (scaler, _, forest) = fit_forest(
                &x,
                width,
                &y,
                params,
                progress,
                &format!("cv fold {}/{}", k + 1, params.folds),
            )?;
            let tx: Vec<_> = te.iter().map(|&i| train_x[i]).collect();
            let ty: Vec<_> = te.iter().map(|&i| train_y[i]).collect();
            per_fold.push(evaluate_forest(&scaler, &forest, &tx, &ty));
        }
        let stat = |f: fn(&Scores) -> f64| MeanStd::of(&per_fold.iter().map(f).collect::<Vec<_>>());
        Some(CvReport {
            folds: params.folds,
            accuracy: stat(|s| s.accuracy),
            precision: stat(|s| s.precision),
            recall: stat(|s| s.recall),
            f1: stat(|s| s.f1),
            roc_auc: stat(|s| s.roc_auc.unwrap_or(f64::NAN)),
        })
    } else {
        None
    };

    let (scaler, scaled, forest) =
        fit_forest(&train_x, width, &train_y, params, progress, "final forest")?;
    // The isolation forest learns benign traffic only, so its score means
    // "unlike benign", not "rare in this mix": in a mix where most rows are
    // attacks (a flood's or scan's openers are most of what 1-in-16 with
    // priority sampling keeps), no attack is rare, and fitted on every row
    // its score for them stayed below MEDIUM, so rules 3 and 4 (BLOCK,
    // DECEIVE) never fired.
    let benign: Vec<_> = scaled
        .iter()
        .zip(&train_y)
        .filter(|(_, y)| **y == 0)
        .map(|(r, _)| *r)
        .collect();
    let isolation = IsolationForest::fit(&benign, width, &params.isolation)?;
    let test = evaluate_forest(&scaler, &forest, &test_x, &test_y);
    let flagged = test_x
        .iter()
        .filter(|r| isolation.score(&scaler.transformed(r)) >= 0.5)
        .count();
    let report = TrainReport {
        rows: ds.len(),
        train_rows: train_x.len(),
        test_rows: test_x.len(),
        attack_share: n_attack as f64 / ds.len() as f64,
        cross_validation,
        test,
        test_anomaly_share: flagged as f64 / test_x.len().max(1) as f64,
        without: without
            .iter()
            .map(|&j| crate::features::FEATURE_NAMES[j].to_string())
            .collect(),
    };
    let metrics = serde_json::to_value(&report).map_err(|e| TrainError::Other(e.to_string()))?;
    let meta = Model::meta(
        schema,
        params.clone(),
        data_sha256,
        ds.len(),
        metrics,
        created_at,
    );
    let model = Model::new(meta, scaler, forest, isolation)?;
    Ok((model, report))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Flow-like synthetic rows: benign web traffic vs SYN floods/scans.
    pub(crate) fn synthetic_dataset(n: usize, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ds = Dataset {
            schema: Schema::V1,
            ..Dataset::default()
        };
        for i in 0..n {
            let attack = i % 4 == 0;
            let noise = |rng: &mut ChaCha8Rng, s: f64| (rng.random::<f64>() - 0.5) * s;
            let r = if attack {
                [
                    60.0 + noise(&mut rng, 10.0),
                    1.0,
                    1.0,
                    1.0,
                    400.0 + noise(&mut rng, 300.0),
                    500.0 + noise(&mut rng, 400.0),
                    0.002 + noise(&mut rng, 0.002).abs(),
                    0.001,
                    5.0 + noise(&mut rng, 5.0).abs(),
                    0.0,
                    1.0,
                    20.0 + noise(&mut rng, 30.0).abs(),
                    0.0,
                    0.9 + noise(&mut rng, 0.2).abs() / 2.0,
                    50.0 + noise(&mut rng, 20.0),
                ]
            } else {
                [
                    600.0 + noise(&mut rng, 1000.0),
                    1.0 + (i % 3 == 0) as u8 as f64,
                    1.0,
                    1.0,
                    5.0 + noise(&mut rng, 8.0).abs(),
                    5.0 + noise(&mut rng, 8.0).abs(),
                    0.3 + noise(&mut rng, 0.5).abs(),
                    0.2 + noise(&mut rng, 0.3).abs(),
                    90000.0 + noise(&mut rng, 80000.0),
                    5.0 + noise(&mut rng, 4.0),
                    2.0,
                    2.0,
                    400.0 + noise(&mut rng, 700.0),
                    0.05 + noise(&mut rng, 0.1).abs(),
                    60.0 + noise(&mut rng, 10.0),
                ]
            };
            let mut row = [0.0; FEATURE_COUNT];
            row[..15].copy_from_slice(&r);
            ds.rows.push(row);
            ds.labels.push(u32::from(attack));
            ds.attack_types
                .push(if attack { "syn_flood" } else { "benign" }.into());
        }
        ds
    }

    pub(crate) fn small_params(seed: u64) -> ModelParams {
        ModelParams::small(seed, 0.25)
    }

    #[test]
    fn training_reports_cv_and_test_metrics_and_is_deterministic() {
        let ds = synthetic_dataset(400, 1);
        let p = small_params(5);
        let train = || {
            train_model(
                &ds,
                Schema::V1,
                &[],
                &p,
                "ab".repeat(32),
                "t".into(),
                &Progress::hidden(),
            )
            .unwrap()
        };
        let (model, report) = train();
        assert_eq!(report.test_rows, 100);
        assert_eq!(report.train_rows, 300);
        let cv = report.cross_validation.as_ref().unwrap();
        assert_eq!(cv.folds, 5);
        assert!(cv.f1.mean > 0.9, "{:?}", cv);
        assert!(report.test.accuracy > 0.9);
        assert!(report.test.roc_auc.unwrap() > 0.95);
        assert_eq!(report.test.confusion.total(), 100);
        assert_eq!(
            model.meta.metrics["test"]["confusion"]["tp"],
            report.test.confusion.tp
        );
        assert_eq!(model.forest.n_trees(), 20);
        let (again, _) = train();
        assert_eq!(model, again);
    }

    #[test]
    fn too_few_rows_of_a_class_is_an_error() {
        let mut ds = synthetic_dataset(40, 2);
        for l in ds.labels.iter_mut().skip(3) {
            *l = 0;
        }
        let err = train_model(
            &ds,
            Schema::V1,
            &[],
            &small_params(1),
            String::new(),
            String::new(),
            &Progress::hidden(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("attack rows"), "{err}");
    }

    #[test]
    fn a_v2_model_needs_v2_data_and_an_ablation_never_splits_on_its_feature() {
        let ds = synthetic_dataset(300, 3);
        let p = small_params(2);
        let hidden = Progress::hidden();
        let err = train_model(
            &ds,
            Schema::V2,
            &[],
            &p,
            String::new(),
            String::new(),
            &hidden,
        )
        .unwrap_err();
        assert!(err.to_string().contains("schema v1's 15"), "{err}");
        let (model, report) = train_model(
            &ds,
            Schema::V1,
            &[4, 5],
            &p,
            String::new(),
            String::new(),
            &hidden,
        )
        .unwrap();
        assert_eq!(report.without, vec!["event_rate_1m", "burst_rate_10s"]);
        assert_eq!(model.meta.metrics["without"][1], "burst_rate_10s");
        assert!(
            model
                .forest
                .nodes()
                .iter()
                .all(|n| n.feature != 4 && n.feature != 5)
        );
        assert!(model.forest.nodes().iter().any(|n| n.feature == 0));
    }
}
