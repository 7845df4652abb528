//! The `replay` subcommand: its clap arguments and entry point.
use std::{io::Write as _, path::PathBuf, sync::Arc};

use clap::Args;

use super::{Marks, ReplayError, ReplayInput, Report, Scored, replay_with, write_plots};
use crate::{
    config::Config,
    correlate::{ThreatFeed, ThreatFeedHandle},
    detect::Scoring,
    models::ModelHandle,
    train::labels::LabelRules,
};

/// Replay a recorded capture through the decision path, offline, and
/// report per source and per scenario.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A capture file (`run --capture`).
    #[arg(long, value_name = "FILE")]
    pub capture: PathBuf,
    /// A labels file: one `CIDR TYPE` per line; a TYPE that starts with
    /// `benign_` names a benign scenario, any other an attack. Sources no
    /// line covers are reported as `unlabeled` (benign).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The agent's config file [default: built-in defaults]: thresholds,
    /// evidence, TTLs, allowlist, honeypots, sampling rate, model, feed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A model artifact or registry directory, instead of the config's.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// The sampling rate the capture was recorded at (1 in N).
    #[arg(long, default_value_t = 1)]
    pub recorded_every: u32,
    /// The data plane's sampling rate to emulate [default: the config's].
    #[arg(long)]
    pub sample_every: Option<u32>,
    /// When to score a source, instead of the config's `[detection]
    /// scoring`: every-sample or on-change.
    #[arg(long, value_parser = parse_scoring)]
    pub scoring: Option<Scoring>,
    /// Seeds the emulated sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The capture's ALSO_PRIORITY marks (schema v7's census weights):
    /// as-recorded; rebuild them, for a 1-in-N capture made before the
    /// data plane set them; or strip them.
    #[arg(long, value_enum, default_value_t = Marks::AsRecorded)]
    pub marks: Marks,
    /// Also write the whole report, every source included, as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the report into this directory: `recall-by-scenario.png`
    /// (per scenario, the share of sources enforced or acted on) and
    /// `time-to-enforcement.png` (the share of attack sources enforced
    /// within t).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Also write every scoring as CSV: source, scenario, time since the
    /// source's first packet, the tree's action, rule and scores, whether
    /// the evidence rule let it through, what was put in force, and the
    /// feature row the models scored (one column per feature).
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
}

fn parse_scoring(s: &str) -> Result<Scoring, String> {
    [Scoring::EverySample, Scoring::OnChange]
        .into_iter()
        .find(|v| v.name() == s)
        .ok_or_else(|| format!("{s:?}: expected every-sample or on-change"))
}

/// What can stop a replay before it starts or while it writes.
#[derive(Debug, thiserror::Error)]
pub enum ReplayCliError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("{0}")]
    Input(String),
}

/// Runs the subcommand: prints the Markdown report, writes the JSON one.
pub fn run_replay(args: &ReplayArgs) -> Result<Report, ReplayCliError> {
    let input =
        |what: &str, e: &dyn std::fmt::Display| ReplayCliError::Input(format!("{what}: {e}"));
    let mut config = match &args.config {
        Some(p) => Config::load(p).map_err(|e| input("config", &e))?,
        None => Config::default(),
    };
    if let Some(s) = args.scoring {
        config.detection.scoring = s;
    }
    let model_path = args
        .model
        .clone()
        .or_else(|| config.model.path.clone())
        .ok_or_else(|| {
            ReplayCliError::Input("no model: give --model or set [model] path".into())
        })?;
    let model = ModelHandle::open(&model_path)
        .map_err(|e| input(&model_path.display().to_string(), &e))?
        .current();
    let feed = match &config.intel.feed {
        Some(p) => ThreatFeedHandle::open(p)
            .map_err(|e| input(&p.display().to_string(), &e))?
            .current(),
        None => Arc::new(ThreatFeed::empty()),
    };
    let mut labels = LabelRules::default();
    if let Some(p) = &args.labels {
        labels.add_file(p).map_err(|e| input("labels", &e))?;
    }
    // Written as the replay goes; the first write error is kept and
    // reported once it ends.
    let mut decisions = match &args.decisions {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| input(&p.display().to_string(), &e))?;
            let mut w = std::io::BufWriter::new(f);
            writeln!(w, "{}", Scored::csv_header())
                .map_err(|e| input(&p.display().to_string(), &e))?;
            Some((p, w))
        }
        None => None,
    };
    let mut write_error: Option<std::io::Error> = None;
    let on_decision = |s: &Scored<'_>| {
        if let Some((_, w)) = decisions.as_mut()
            && write_error.is_none()
            && let Err(e) = writeln!(w, "{}", s.csv_row())
        {
            write_error = Some(e);
        }
    };
    let report = replay_with(
        &ReplayInput {
            capture: args.capture.clone(),
            labels: &labels,
            config: &config,
            policy: config.enforcement.policy(),
            model,
            feed,
            recorded_every: args.recorded_every,
            sample_every: args
                .sample_every
                .unwrap_or(config.dataplane.sample_every)
                .max(1),
            seed: args.seed,
            marks: args.marks,
        },
        on_decision,
    )?;
    if let Some((p, mut w)) = decisions {
        let flushed = match write_error {
            Some(e) => Err(e),
            None => w.flush(),
        };
        flushed.map_err(|e| input(&p.display().to_string(), &e))?;
    }
    print!("{}", report.to_markdown());
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| input("json", &e))?;
        std::fs::write(p, text).map_err(|e| input(&p.display().to_string(), &e))?;
    }
    if let Some(dir) = &args.plots {
        write_plots(&report, dir).map_err(|e| ReplayCliError::Input(e.to_string()))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_decisions_file_is_named_before_anything_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("no-such-dir").join("decisions.csv");
        let args = ReplayArgs {
            // Never opened: the decisions file is refused first.
            capture: dir.path().join("missing.pncap"),
            labels: None,
            config: None,
            model: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../models").into()),
            recorded_every: 1,
            sample_every: None,
            scoring: None,
            seed: 1,
            marks: Marks::AsRecorded,
            json: None,
            plots: None,
            decisions: Some(bad.clone()),
        };
        let e = run_replay(&args).unwrap_err();
        assert!(matches!(e, ReplayCliError::Input(_)), "{e:?}");
        assert!(e.to_string().contains("decisions.csv"), "{e}");
        assert!(!bad.exists());
    }

    #[test]
    fn scoring_takes_the_configs_two_names_and_refuses_others() {
        assert_eq!(parse_scoring("on-change"), Ok(Scoring::OnChange));
        assert_eq!(parse_scoring("every-sample"), Ok(Scoring::EverySample));
        let e = parse_scoring("sometimes").unwrap_err();
        assert!(e.contains("every-sample or on-change"), "{e}");
    }
}
