//! The `dataset`, `train` and `evaluate` subcommands: clap argument structs
//! and their entry points (the binary wires them in).

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest, Sha256};

use super::csvdata::read_csv;
use super::dataset::{Input, Pass, build_dataset};
use super::fit::train_model;
use super::labels::LabelRules;
use super::metrics::{Scores, roc_curve};
use super::plots::{confusion_png, roc_png};
use super::progress::Progress;
use super::{TrainError, pcap};
use crate::features::{FEATURE_NAMES, FeatureVector, Schema};
use crate::flow::FlowConfig;
use crate::models::{
    ForestParams, IsolationParams, Model, ModelParams, Registry, resolve_model_path,
};

/// Turn recorded samples into a labeled CSV.
#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// A capture file written by the agent (repeatable).
    #[arg(long = "capture", value_name = "FILE")]
    pub captures: Vec<PathBuf>,
    /// A pcap or pcapng file (repeatable).
    #[arg(long = "pcap", value_name = "FILE")]
    pub pcaps: Vec<PathBuf>,
    /// Label a source prefix as an attack: CIDR=TYPE, e.g.
    /// 192.0.2.11/32=syn_flood (repeatable). Everything else is benign.
    #[arg(long = "attack", value_name = "CIDR=TYPE")]
    pub attacks: Vec<String>,
    /// A labels file: one `CIDR TYPE` per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Where to write the CSV (gzip-compressed if the name ends in `.gz`).
    #[arg(long, value_name = "CSV")]
    pub out: PathBuf,
    /// The data plane's sampling rate when the captures were recorded
    /// (1 in N); rates are scaled by it. pcap files are unsampled: use 1.
    #[arg(long, default_value_t = 1)]
    pub sample_every: u32,
    /// Flow-table cap while replaying.
    #[arg(long, default_value_t = 65_536)]
    pub max_sources: usize,
    /// The prefix IPv6 sources are grouped to (0–128), as the agent's
    /// `enforcement.ipv6_source_prefix` [default: the agent's default, 64].
    /// The lab gives each IPv6 host its own address inside a shared /64:
    /// 128 keeps their features apart.
    #[arg(long)]
    pub ipv6_source_prefix: Option<u8>,
    /// Emulate the data plane sampling 1 in N (with priority sampling, as
    /// by default) over recordings of every packet, and write the rows the
    /// detector scores at that rate, priority samples included
    /// (repeatable; 1 adds the recording as it is). Without it: the
    /// recording as it is.
    #[arg(long = "emulate-every", value_name = "N")]
    pub emulate_every: Vec<u32>,
    /// Emulated draws per rate above 1, seeded --seed, --seed+1, …
    #[arg(long, default_value_t = 1)]
    pub draws: u32,
    /// Seed of the first emulated draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// The passes `dataset` makes: the recording as it is, or each emulated
/// rate (`draws` seeded draws each above 1).
pub fn dataset_passes(args: &DatasetArgs) -> Result<Vec<Pass>, TrainError> {
    if args.emulate_every.is_empty() {
        return Ok(vec![Pass::AS_RECORDED]);
    }
    if args.sample_every != 1 {
        return Err(TrainError::Usage(format!(
            "--emulate-every needs recordings of every packet (--sample-every 1), not 1-in-{}",
            args.sample_every
        )));
    }
    if args.draws == 0 {
        return Err(TrainError::Usage("--draws must be ≥ 1".into()));
    }
    let mut passes = Vec::new();
    for &every in &args.emulate_every {
        match every {
            0 => return Err(TrainError::Usage("--emulate-every must be ≥ 1".into())),
            1 => passes.push(Pass::AS_RECORDED),
            _ => passes.extend((0..args.draws).map(|d| Pass {
                every,
                seed: args.seed.wrapping_add(u64::from(d)),
            })),
        }
    }
    Ok(passes)
}

/// Train a model from a labeled CSV and register it.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The labeled CSV (`phantomnet-agent dataset` output), plain or
    /// gzip-compressed.
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// Registry directory: the artifact goes in as the next version and
    /// becomes active.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 200)]
    pub trees: u16,
    #[arg(long)]
    pub max_depth: Option<u16>,
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    #[arg(long, default_value_t = 100)]
    pub iforest_trees: u16,
    #[arg(long, default_value_t = 256)]
    pub iforest_sample_size: usize,
    #[arg(long, default_value_t = 0.1)]
    pub contamination: f64,
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Cross-validation folds (0 or 1 skips cross-validation).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Seed of every random choice (split, folds, forests).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Set created_at instead of the current time (for byte-identical rebuilds).
    #[arg(long, value_name = "RFC3339")]
    pub created_at: Option<String>,
    /// The feature schema of the model (1 to 6); default: the CSV's. An
    /// older schema's model can be trained from a newer CSV (its first 15,
    /// 22, 23, 24 or 25 features).
    #[arg(long, value_name = "VERSION")]
    pub schema: Option<u32>,
    /// The CSV holds the rows the detector scores at the data plane's
    /// default sampling, priority samples included (`dataset
    /// --emulate-every`): the model then scores priority samples too.
    #[arg(long)]
    pub scores_priority: bool,
    /// Ablation: hold this feature at 0 in training, so no tree uses it
    /// (repeatable). For measuring what a feature earns, not for shipping.
    #[arg(long = "without", value_name = "FEATURE")]
    pub without: Vec<String>,
    #[arg(long)]
    pub quiet: bool,
}

/// Evaluate a model on a labeled CSV; write metrics and plots.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// A model artifact, or a registry directory (its active model).
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// A labeled CSV, plain or gzip-compressed.
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// Directory for metrics.json, confusion_matrix.png and roc_curve.png.
    #[arg(long, value_name = "DIR", default_value = "evaluation")]
    pub out_dir: PathBuf,
    #[arg(long)]
    pub quiet: bool,
}

fn progress(quiet: bool) -> Progress {
    if quiet {
        Progress::hidden()
    } else {
        Progress::stderr()
    }
}

pub fn run_dataset(args: &DatasetArgs) -> Result<(), TrainError> {
    let mut rules = LabelRules::from_args(&args.attacks)?;
    if let Some(f) = &args.labels {
        rules.add_file(f)?;
    }
    if rules.is_empty() {
        tracing::warn!("no --attack or --labels given: every row will be benign");
    }
    let mut inputs: Vec<Input> = args.captures.iter().cloned().map(Input::Capture).collect();
    for p in &args.pcaps {
        if !pcap::is_pcap_path(p) {
            tracing::warn!(path = %p.display(), "--pcap file has no .pcap/.pcapng extension; reading it anyway");
        }
        inputs.push(Input::Pcap(p.clone()));
    }
    if inputs.is_empty() {
        return Err(TrainError::Usage(
            "give at least one --capture or --pcap file".into(),
        ));
    }
    if args.sample_every == 0 {
        return Err(TrainError::Usage("--sample-every must be ≥ 1".into()));
    }
    let ipv6_source_prefix = args
        .ipv6_source_prefix
        .unwrap_or(FlowConfig::default().ipv6_source_prefix);
    if ipv6_source_prefix > 128 {
        return Err(TrainError::Usage(format!(
            "--ipv6-source-prefix {ipv6_source_prefix} is not a prefix length (0–128)"
        )));
    }
    let flow = FlowConfig {
        max_sources: args.max_sources.max(1),
        sample_every: args.sample_every,
        // IPv6 sources grouped as the agent groups them (by default /64),
        // so the features are the ones it computes.
        ipv6_source_prefix,
    };
    let passes = dataset_passes(args)?;
    let s = build_dataset(
        &inputs,
        &rules,
        flow,
        &passes,
        &args.out,
        &progress(args.quiet),
    )?;
    println!(
        "wrote {}: {} rows ({} attack, {} benign); {} frames skipped (not IP)",
        args.out.display(),
        s.rows,
        s.attack_rows,
        s.rows - s.attack_rows,
        s.skipped_frames
    );
    Ok(())
}

/// The sha256 of a CSV's text: of what a gzip-compressed one decompresses
/// to, so the same data has one digest however it is stored.
fn sha256_file(path: &Path) -> Result<String, TrainError> {
    let mut f = crate::train::csvdata::open_text(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| TrainError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

fn print_scores(title: &str, s: &Scores) {
    println!("{title}:");
    println!("  accuracy  {:.4}", s.accuracy);
    println!("  precision {:.4}", s.precision);
    println!("  recall    {:.4}", s.recall);
    println!("  f1        {:.4}", s.f1);
    match s.roc_auc {
        Some(a) => println!("  roc_auc   {a:.4}"),
        None => println!("  roc_auc   undefined (one class)"),
    }
    let c = &s.confusion;
    println!("  confusion (rows actual, cols predicted: benign, attack)");
    println!("    benign  {:>8} {:>8}", c.tn, c.fp);
    println!("    attack  {:>8} {:>8}", c.fn_, c.tp);
}

pub fn run_train(args: &TrainArgs) -> Result<(), TrainError> {
    let ds = read_csv(&args.data)?;
    let sha = sha256_file(&args.data)?;
    println!(
        "{}: {} rows ({} attack, {} benign), schema {}, sha256 {sha}",
        args.data.display(),
        ds.len(),
        ds.count_label(1),
        ds.count_label(0),
        ds.schema
    );
    let schema = match args.schema {
        None => ds.schema,
        Some(v) => Schema::from_version(v).ok_or_else(|| {
            TrainError::Usage(format!(
                "--schema {v}: this build has 1 to {}",
                Schema::CURRENT.version()
            ))
        })?,
    };
    let without = args
        .without
        .iter()
        .map(|name| {
            FEATURE_NAMES[..schema.count()]
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| {
                    TrainError::Usage(format!(
                        "--without {name}: no such feature in schema {schema}"
                    ))
                })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let params = ModelParams {
        forest: ForestParams {
            n_trees: args.trees,
            max_depth: args.max_depth,
            min_samples_leaf: args.min_samples_leaf,
            seed: args.seed,
            ..ForestParams::default()
        },
        isolation: IsolationParams {
            n_trees: args.iforest_trees,
            sample_size: args.iforest_sample_size,
            contamination: args.contamination,
            seed: args.seed,
        },
        test_fraction: args.test_fraction,
        folds: args.folds,
        seed: args.seed,
    };
    let created_at = args.created_at.clone().unwrap_or_else(now_rfc3339);
    let (mut model, report) = train_model(
        &ds,
        schema,
        &without,
        &params,
        sha,
        created_at,
        &progress(args.quiet),
    )?;
    model.meta.scores_priority = args.scores_priority;
    if let Some(cv) = &report.cross_validation {
        println!(
            "stratified {}-fold cross-validation (mean ± std):",
            cv.folds
        );
        println!("  accuracy  {}", cv.accuracy);
        println!("  precision {}", cv.precision);
        println!("  recall    {}", cv.recall);
        println!("  f1        {}", cv.f1);
        println!("  roc_auc   {}", cv.roc_auc);
    }
    print_scores(
        &format!("held-out test set ({} rows)", report.test_rows),
        &report.test,
    );
    println!(
        "  isolation forest flags {:.1}% of test rows",
        report.test_anomaly_share * 100.0
    );
    let splits = model.forest.split_counts();
    let total: u32 = splits.iter().sum();
    let mut order: Vec<usize> = (0..schema.count()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(splits[j]));
    println!("forest splits per feature (schema {schema}, {total} splits):");
    for j in order {
        println!(
            "  {:<22} {:>6}  {:>5.1}%",
            FEATURE_NAMES[j],
            splits[j],
            100.0 * splits[j] as f64 / total.max(1) as f64
        );
    }
    let registry = Registry::open(&args.out)?;
    let (version, path) = registry.register(&model)?;
    println!(
        "model v{version} ({} trees, {} nodes) written to {} and made active in {}",
        model.forest.n_trees(),
        model.forest.n_nodes(),
        path.display(),
        registry
            .dir()
            .join(crate::models::registry_index_file())
            .display()
    );
    Ok(())
}

pub fn run_evaluate(args: &EvaluateArgs) -> Result<(), TrainError> {
    let path = resolve_model_path(&args.model)?;
    let model = Model::load(&path).map_err(|e| TrainError::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let ds = read_csv(&args.data)?;
    let schema = model.schema()?;
    if schema > ds.schema {
        return Err(TrainError::Data(format!(
            "{} is schema {}, the model reads schema {schema}'s features",
            args.data.display(),
            ds.schema
        )));
    }
    if ds.is_empty() {
        return Err(TrainError::Data(format!(
            "{} has no rows",
            args.data.display()
        )));
    }
    let bar = progress(args.quiet).bar(ds.len() as u64, "scoring");
    let mut predicted = Vec::with_capacity(ds.len());
    let mut prob = Vec::with_capacity(ds.len());
    let mut anomalies = 0usize;
    for r in &ds.rows {
        let s = model.score(&FeatureVector::new(*r).map_err(|e| TrainError::Data(e.to_string()))?);
        predicted.push(s.prediction as u32);
        prob.push(s.attack_probability);
        anomalies += usize::from(s.anomaly >= 0.5);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scores = Scores::compute(&ds.labels, &predicted, &prob);
    println!(
        "model {} (created {})",
        path.display(),
        model.meta.created_at
    );
    print_scores(
        &format!("{} ({} rows)", args.data.display(), ds.len()),
        &scores,
    );
    println!(
        "  isolation forest flags {:.1}% of rows",
        anomalies as f64 * 100.0 / ds.len() as f64
    );
    std::fs::create_dir_all(&args.out_dir).map_err(|e| TrainError::io(&args.out_dir, e))?;
    let cm = args.out_dir.join("confusion_matrix.png");
    let roc = args.out_dir.join("roc_curve.png");
    confusion_png(&scores.confusion, &cm)?;
    roc_png(&roc_curve(&ds.labels, &prob), scores.roc_auc, &roc)?;
    let metrics = args.out_dir.join("metrics.json");
    let json = serde_json::json!({
        "model": path,
        "data": args.data,
        "rows": ds.len(),
        "scores": scores,
        "anomaly_share": anomalies as f64 / ds.len() as f64,
    });
    std::fs::write(
        &metrics,
        serde_json::to_vec_pretty(&json).map_err(|e| TrainError::Other(e.to_string()))?,
    )
    .map_err(|e| TrainError::io(&metrics, e))?;
    println!(
        "wrote {}, {} and {}",
        metrics.display(),
        cm.display(),
        roc.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::csvdata::CsvOut;
    use crate::train::fit::tests::synthetic_dataset;

    #[test]
    fn dataset_passes_follow_the_flags_and_refuse_what_cannot_be_emulated() {
        let args = |sample_every: u32, emulate: &[u32], draws: u32| DatasetArgs {
            captures: vec![PathBuf::from("x.pncap")],
            pcaps: Vec::new(),
            attacks: Vec::new(),
            labels: None,
            out: PathBuf::from("x.csv"),
            sample_every,
            max_sources: 1024,
            ipv6_source_prefix: None,
            emulate_every: emulate.to_vec(),
            draws,
            seed: 5,
            quiet: true,
        };
        assert_eq!(
            dataset_passes(&args(1, &[], 1)).unwrap(),
            [Pass::AS_RECORDED]
        );
        assert_eq!(
            dataset_passes(&args(1, &[1, 16], 2)).unwrap(),
            [
                Pass::AS_RECORDED,
                Pass { every: 16, seed: 5 },
                Pass { every: 16, seed: 6 }
            ]
        );
        // A sampled recording cannot be sampled again; 0 is no rate.
        let err = dataset_passes(&args(16, &[16], 1)).unwrap_err().to_string();
        assert!(err.contains("--sample-every 1"), "{err}");
        assert!(dataset_passes(&args(1, &[0], 1)).is_err());
        assert!(dataset_passes(&args(1, &[16], 0)).is_err());
    }

    #[test]
    fn a_bad_ipv6_source_prefix_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.csv");
        let args = DatasetArgs {
            captures: vec![dir.path().join("missing.pncap")],
            pcaps: Vec::new(),
            attacks: Vec::new(),
            labels: None,
            out: out.clone(),
            sample_every: 1,
            max_sources: 1024,
            ipv6_source_prefix: Some(129),
            emulate_every: Vec::new(),
            draws: 1,
            seed: 1,
            quiet: true,
        };
        let err = run_dataset(&args).unwrap_err().to_string();
        assert!(err.contains("--ipv6-source-prefix 129"), "{err}");
        assert!(!out.exists(), "nothing written for a refused request");
    }

    fn write_csv(path: &Path, n: usize, seed: u64) {
        let ds = synthetic_dataset(n, seed);
        let mut out = CsvOut::new(std::fs::File::create(path).unwrap()).unwrap();
        for ((r, l), t) in ds.rows.iter().zip(&ds.labels).zip(&ds.attack_types) {
            out.row(&FeatureVector::new(*r).unwrap(), *l, t).unwrap();
        }
        out.finish().unwrap();
    }

    #[test]
    fn train_then_evaluate_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        write_csv(&csv, 300, 8);
        let reg = dir.path().join("models");
        let args = TrainArgs {
            data: csv.clone(),
            out: reg.clone(),
            trees: 20,
            max_depth: None,
            min_samples_leaf: 1,
            iforest_trees: 30,
            iforest_sample_size: 128,
            contamination: 0.1,
            test_fraction: 0.2,
            folds: 3,
            seed: 9,
            created_at: Some("2026-01-01T00:00:00Z".into()),
            schema: None,
            scores_priority: false,
            without: Vec::new(),
            quiet: true,
        };
        run_train(&args).unwrap();
        run_train(&args).unwrap();
        let registry = Registry::open(&reg).unwrap();
        let index = registry.index().unwrap();
        assert_eq!(index.active, Some(2));
        assert_eq!(
            index.models[0].training_data_sha256,
            sha256_file(&csv).unwrap()
        );
        // Same seed, same data, same created_at: byte-identical artifacts.
        assert_eq!(
            std::fs::read(reg.join("model-v1.pnm")).unwrap(),
            std::fs::read(reg.join("model-v2.pnm")).unwrap()
        );
        assert!(
            !Model::load(&reg.join("model-v1.pnm"))
                .unwrap()
                .meta
                .scores_priority
        );
        // --scores-priority is recorded in the artifact's metadata.
        run_train(&TrainArgs {
            scores_priority: true,
            ..args.clone()
        })
        .unwrap();
        assert!(
            Model::load(&reg.join("model-v3.pnm"))
                .unwrap()
                .meta
                .scores_priority
        );
        let out_dir = dir.path().join("eval");
        run_evaluate(&EvaluateArgs {
            model: reg.clone(),
            data: csv,
            out_dir: out_dir.clone(),
            quiet: true,
        })
        .unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("metrics.json")).unwrap()).unwrap();
        assert!(m["scores"]["accuracy"].as_f64().unwrap() > 0.9);
        for png in ["confusion_matrix.png", "roc_curve.png"] {
            let bytes = std::fs::read(out_dir.join(png)).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        }
    }

    #[test]
    fn evaluate_refuses_a_file_that_is_not_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        write_csv(&csv, 20, 1);
        let err = run_evaluate(&EvaluateArgs {
            model: csv.clone(),
            data: csv,
            out_dir: dir.path().join("e"),
            quiet: true,
        })
        .unwrap_err();
        assert!(err.to_string().contains("not a PhantomNet model"), "{err}");
    }

    #[test]
    fn a_csv_has_one_digest_whether_stored_plain_or_gzip() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("d.csv");
        write_csv(&plain, 20, 1);
        let text = std::fs::read(&plain).unwrap();
        let gz = dir.path().join("d.csv.gz");
        let mut w = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        w.write_all(&text).unwrap();
        w.finish().unwrap();
        let digest = sha256_file(&plain).unwrap();
        assert_eq!(digest.len(), 64);
        assert_eq!(sha256_file(&gz).unwrap(), digest);
        assert_ne!(std::fs::read(&gz).unwrap(), text);
    }
}
