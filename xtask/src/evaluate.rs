//! `cargo xtask evaluate`: the model judged per source, on a recording it
//! was not trained on, through the live decision path (`phantomnet-agent
//! replay`), and with each attack family left out of training in turn.
//!
//! 1. The shipped model, replayed over the capture at 1-in-1 and at the
//!    shipped default sampling (1-in-16), scoring on change (the default
//!    `[detection] scoring`), and at 1-in-16 scoring every sample.
//! 2. Leave one family out: for each `attack_type` of the training CSV,
//!    train without its rows (same seed, same `--created-at`), replay the
//!    capture at the default sampling, and report how many of that
//!    family's sources were enforced (the model never saw the family) and
//!    which benign sources were acted on.
//!
//! The capture should be a recording the CSV was not built from
//! (`cargo xtask gen-model --record-only` makes a fresh one). No root.
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;
use crate::dataset::{DATASET_CSV, SEED, TRAIN_FLAGS, WORK_DIR};

/// Where the per-family CSVs, models and reports go.
pub const EVAL_DIR: &str = "target/evaluate";
/// The shipped default sampling rate.
pub const DEFAULT_EVERY: u32 = 16;
/// The agent's `[detection] scoring` names, the shipped default first.
pub const SCORINGS: [&str; 2] = ["on-change", "every-sample"];
/// The shipped default `[detection] scoring`.
pub const DEFAULT_SCORING: &str = SCORINGS[0];

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub capture: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub csv: Option<PathBuf>,
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The replay's config (`config/replay-lab.toml`): the defaults, with the
/// lab's IPv6 sources judged per address (they share /64s).
pub const LAB_CONFIG: &str = "config/replay-lab.toml";

/// What every replay of one evaluation shares.
struct Replays<'a> {
    bin: &'a Path,
    config: &'a Path,
    capture: &'a Path,
    labels: &'a Path,
}

/// Runs `replay`; returns its JSON report and its Markdown table.
fn replay(
    r: &Replays<'_>,
    model: &Path,
    every: u32,
    scoring: &str,
    out: &Path,
) -> Result<(Value, String)> {
    // Each run's plots next to its JSON: `shipped-16-on-change.plots/`.
    let plots = out.with_extension("plots");
    let table = cmd::output(
        s(r.bin),
        &[
            "replay",
            "--config",
            s(r.config),
            "--capture",
            s(r.capture),
            "--labels",
            s(r.labels),
            "--model",
            s(model),
            "--sample-every",
            &every.to_string(),
            "--scoring",
            scoring,
            "--json",
            s(out),
            "--plots",
            s(&plots),
        ],
    )?;
    let text = fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    Ok((serde_json::from_str(&text)?, table))
}

/// The training CSV without the rows of `family`; returns the rows kept.
fn without_family(csv: &Path, family: &str, out: &Path) -> Result<usize> {
    let text = fs::read_to_string(csv)?;
    let mut lines = text.lines();
    let header = lines.next().context("empty CSV")?;
    let mut kept = String::with_capacity(text.len());
    kept.push_str(header);
    kept.push('\n');
    let mut n = 0;
    for l in lines {
        if l.rsplit(',').next() != Some(family) {
            kept.push_str(l);
            kept.push('\n');
            n += 1;
        }
    }
    fs::write(out, kept)?;
    Ok(n)
}

/// The attack families of a training CSV (its `attack_type`s with label 1).
fn families(csv: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(csv)?;
    let mut out: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.rsplit(',');
            let kind = f.next()?;
            (f.next()? == "1").then(|| kind.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.0}")),
        other => other.to_string(),
    }
}

fn scenario<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    r["scenarios"]
        .as_array()?
        .iter()
        .find(|s| s["scenario"] == name)
}

/// Benign sources acted on, named.
fn acted_on(r: &Value) -> Vec<String> {
    r["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| {
            let name = s["scenario"].as_str().unwrap_or("?").to_string();
            s["acted_on"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |a| format!("{name}: {}", a.as_str().unwrap_or("?")))
        })
        .collect()
}

pub fn evaluate(root: &Path, opts: &EvalOptions) -> Result<()> {
    let work = root.join(WORK_DIR);
    let capture = opts
        .capture
        .clone()
        .unwrap_or_else(|| work.join("lab.pncap"));
    let labels = opts
        .labels
        .clone()
        .unwrap_or_else(|| work.join("labels-count.txt"));
    let csv = opts.csv.clone().unwrap_or_else(|| root.join(DATASET_CSV));
    for p in [&capture, &labels, &csv] {
        if !p.exists() {
            bail!(
                "{} is missing (record one with `cargo xtask gen-model --record-only`)",
                p.display()
            );
        }
    }
    let dir = root.join(EVAL_DIR);
    fs::create_dir_all(&dir)?;
    let bin = cmd::build_release_agent(root)?;
    let config = root.join(LAB_CONFIG);
    let runs = Replays {
        bin: &bin,
        config: &config,
        capture: &capture,
        labels: &labels,
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Capture `{}`, labels `{}`, training CSV `{}`.\n",
        capture.display(),
        labels.display(),
        csv.display()
    );

    // 1. The shipped model.
    for (every, scoring) in [
        (1, DEFAULT_SCORING),
        (DEFAULT_EVERY, DEFAULT_SCORING),
        (DEFAULT_EVERY, SCORINGS[1]),
    ] {
        let out = dir.join(format!("shipped-{every}-{scoring}.json"));
        let models = root.join("models");
        let (_, text) = replay(&runs, &models, every, scoring, &out)?;
        let _ = writeln!(
            md,
            "### The shipped model, 1-in-{every}, scoring {scoring}\n\n{text}"
        );
    }

    // 2. Leave one family out.
    let created_at = fs::read_to_string(work.join("created_at"))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".into());
    let _ = writeln!(
        md,
        "### Leave one family out (trained without it, replayed at 1-in-{DEFAULT_EVERY})\n"
    );
    let _ = writeln!(
        md,
        "| left out | its sources enforced | time to enforcement p50 / p99 (ms) | packets before p50 / p99 | all attack sources enforced | benign sources acted on |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    let mut named = Vec::new();
    for fam in families(&csv)? {
        let fcsv = dir.join(format!("without-{fam}.csv"));
        let rows = without_family(&csv, &fam, &fcsv)?;
        let mdir = dir.join(format!("without-{fam}"));
        let _ = fs::remove_dir_all(&mdir);
        let seed = SEED.to_string();
        cmd::output(
            s(&bin),
            &[
                "train",
                "--quiet",
                // The final forest does not depend on the folds.
                "--folds",
                "0",
                "--data",
                s(&fcsv),
                "--out",
                s(&mdir),
                "--seed",
                &seed,
                "--created-at",
                &created_at,
            ]
            .into_iter()
            .chain(TRAIN_FLAGS.iter().copied())
            .collect::<Vec<_>>(),
        )?;
        let (r, _) = replay(
            &runs,
            &mdir,
            DEFAULT_EVERY,
            DEFAULT_SCORING,
            &dir.join(format!("without-{fam}.json")),
        )?;
        let sc = scenario(&r, &fam);
        let (sources, enforced) = sc.map_or((0, 0), |s| {
            (
                s["sources"].as_u64().unwrap_or(0),
                s["enforced"].as_u64().unwrap_or(0),
            )
        });
        let null = Value::Null;
        let get = |k: &str| sc.map_or(&null, |s| &s[k]);
        let _ = writeln!(
            md,
            "| {fam} ({rows} training rows kept) | {enforced} of {sources} | {} / {} | {} / {} | {} of {} | {} of {} |",
            num(get("tte_p50_ms")),
            num(get("tte_p99_ms")),
            num(get("packets_before_p50")),
            num(get("packets_before_p99")),
            r["attack_enforced"],
            r["attack_sources"],
            r["benign_acted_on"],
            r["benign_sources"],
        );
        for a in acted_on(&r) {
            named.push(format!("without {fam}: {a}"));
        }
        println!("evaluate: {fam} left out: {enforced} of {sources} of its sources enforced");
    }
    if !named.is_empty() {
        let _ = writeln!(md, "\nBenign sources acted on, by run:\n");
        for n in named {
            let _ = writeln!(md, "- {n}");
        }
    }
    let report = dir.join("report.md");
    fs::write(&report, &md)?;
    println!("{md}");
    println!("evaluate: written to {}", report.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_left_out_by_its_attack_type_column() {
        let dir = std::env::temp_dir().join(format!("pn-eval-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("d.csv");
        fs::write(
            &csv,
            "a,b,label,attack_type\n1,2,1,syn_flood\n3,4,0,benign\n5,6,1,nmap_syn\n7,8,0,benign_http\n",
        )
        .unwrap();
        assert_eq!(families(&csv).unwrap(), ["nmap_syn", "syn_flood"]);
        let out = dir.join("o.csv");
        assert_eq!(without_family(&csv, "syn_flood", &out).unwrap(), 3);
        let kept = fs::read_to_string(&out).unwrap();
        assert!(!kept.contains("syn_flood"), "{kept}");
        assert!(kept.starts_with("a,b,label,attack_type\n"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
