//! The held-out report of a trained model, for docs/MODEL.md:
//! `cargo run -p phantomnet-tests --example model_report -- MODEL CSV [HELDOUT_CSV]`.
//!
//! Re-creates `train`'s stratified split of CSV (the same function, with
//! the test fraction and seed the model's metadata records), scores the held-out rows with
//! MODEL (a file or a registry directory), and prints the confusion matrix
//! (checked against the one `train` stored in the model's metadata), the
//! cross-validation scores from the metadata, and the recall of every
//! `attack_type` (for `benign`, the share classified benign). With
//! HELDOUT_CSV, also writes the held-out rows there (for `evaluate`'s plots).
use std::path::PathBuf;
use std::process::ExitCode;

use phantomnet_agent::features::FeatureVector;
use phantomnet_agent::models::ModelHandle;
use phantomnet_agent::train::csvdata::{CsvOut, read_csv};
use phantomnet_agent::train::split::stratified_split;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: model_report MODEL CSV [HELDOUT_CSV]");
        return ExitCode::FAILURE;
    }
    let model = ModelHandle::open(&PathBuf::from(&args[0]))
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]))
        .current();
    let ds = read_csv(&PathBuf::from(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let p = &model.meta.params;
    let (_, test) = stratified_split(&ds.labels, p.test_fraction, p.seed);

    let mut types: Vec<(String, u64, u64)> = Vec::new(); // (type, rows, correct)
    let (mut tn, mut fp, mut fn_, mut tp) = (0u64, 0u64, 0u64, 0u64);
    let mut out = args.get(2).map(|p| {
        CsvOut::new(std::fs::File::create(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .expect("CSV header")
    });
    for &i in &test {
        let fv = FeatureVector::new(ds.rows[i]).expect("finite features");
        let pred = u32::from(model.score(&fv).prediction);
        let truth = ds.labels[i];
        match (truth, pred) {
            (0, 0) => tn += 1,
            (0, _) => fp += 1,
            (_, 0) => fn_ += 1,
            _ => tp += 1,
        }
        let t = &ds.attack_types[i];
        let idx = match types.iter().position(|(k, _, _)| k == t) {
            Some(p) => p,
            None => {
                types.push((t.clone(), 0, 0));
                types.len() - 1
            }
        };
        types[idx].1 += 1;
        types[idx].2 += u64::from(pred == truth);
        if let Some(w) = out.as_mut() {
            w.row(&fv, truth, t).expect("write held-out row");
        }
    }
    if let Some(w) = out {
        w.finish().expect("flush held-out CSV");
    }
    types.sort();

    let m = &model.meta.metrics;
    let stored = &m["test"]["confusion"];
    let same = [("tn", tn), ("fp", fp), ("fn_", fn_), ("tp", tp)]
        .iter()
        .all(|(k, v)| stored[*k].as_u64() == Some(*v));
    println!(
        "model created {}, {} training rows; held-out rows: {}",
        model.meta.created_at,
        model.meta.training_rows,
        test.len()
    );
    if let Some(cv) = m.get("cross_validation").filter(|v| !v.is_null()) {
        println!(
            "\nstratified {}-fold cross-validation on the training 80 % (mean ± std):\n",
            cv["folds"]
        );
        println!("| metric | mean | std |\n|---|---:|---:|");
        for k in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
            println!(
                "| {k} | {:.4} | {:.4} |",
                cv[k]["mean"].as_f64().unwrap_or(f64::NAN),
                cv[k]["std"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    let t = &m["test"];
    println!(
        "\nheld-out test set ({:.0} %, seed {}):\n",
        p.test_fraction * 100.0,
        p.seed
    );
    println!("| metric | value |\n|---|---:|");
    for k in ["accuracy", "precision", "recall", "f1", "roc_auc"] {
        println!("| {k} | {:.4} |", t[k].as_f64().unwrap_or(f64::NAN));
    }
    println!("\n| actual \\ predicted | benign | attack |\n|---|---:|---:|");
    println!("| benign | {tn} | {fp} |\n| attack | {fn_} | {tp} |");
    println!("\nper attack type on the held-out set:\n");
    println!(
        "| attack_type | held-out rows | classified correctly | recall |\n|---|---:|---:|---:|"
    );
    for (k, n, ok) in &types {
        println!(
            "| {k} | {n} | {ok} | {:.4} |",
            *ok as f64 / (*n).max(1) as f64
        );
    }
    if !same {
        eprintln!(
            "the confusion matrix differs from the one train stored ({stored}); was MODEL trained on CSV?"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
