//! `cargo xtask <task>`: set-up, lab, tests, benchmarks.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use phantomnet_lab::lab::{Lab, LabOptions};
use xtask::{cmd, prereq, privilege};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install missing prerequisites (apt packages, nightly + rust-src, bpf-linker).
    Setup,
    /// Bring the namespace lab up or down.
    Lab {
        #[command(subcommand)]
        action: LabAction,
        /// Namespace name prefix.
        #[arg(long, default_value = "pn", global = true)]
        name: String,
        /// IPv4 only (IPv6 disabled in every namespace).
        #[arg(long, global = true)]
        no_ipv6: bool,
    },
    /// Per-packet XDP cost (vs xdp-filter) and ring-buffer reader rate, for docs/BENCHMARKS.md.
    BenchXdp,
    /// Samples/s through the agent's whole path on one core (shipped model),
    /// at paced rates: ring buffer to decision, with the losses counted.
    BenchPath {
        /// Target rates, samples/s (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [250_000u32, 500_000, 1_000_000])]
        rate: Vec<u32>,
        /// Seconds at each rate.
        #[arg(long, default_value_t = 5)]
        secs: u32,
        /// `[detection] scoring`: on-change (the default) or every-sample.
        #[arg(long, default_value = xtask::evaluate::DEFAULT_SCORING)]
        scoring: String,
    },
    /// Time from an attacker's first packet to its first dropped packet, p50/p99 over runs.
    BenchTte {
        /// Runs, one fresh attacker source each.
        #[arg(long, default_value_t = 20)]
        runs: u8,
        /// The SYN flood's rate, packets/s (at most 10,000).
        #[arg(long, default_value_t = 375)]
        rate: u32,
        /// The data plane's sampling: 1 in N.
        #[arg(long, default_value_t = 1)]
        sample_every: u32,
        /// `[detection] scoring`: on-change or every-sample [default: the
        /// agent's default].
        #[arg(long, value_parser = xtask::evaluate::SCORINGS)]
        scoring: Option<String>,
        /// Copy the agent's capture, config, log and journal into this
        /// directory before the lab goes down (to replay the runs:
        /// `phantomnet-agent replay --capture DIR/tte.pncap
        /// --recorded-every N`).
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// The main job: the lab, the agent with the shipped model, benign
    /// clients and real attack tools, decisions live, and a table per source.
    Demo {
        /// Leave the lab (and the agent's pins) up afterwards.
        #[arg(long)]
        keep_lab: bool,
        /// Also run the heavier benign clients (a wget bulk download, an
        /// iperf3 throughput test, a health checker, an IPv6 browser). The
        /// demo FAILs if any of them is acted on.
        #[arg(long)]
        heavy_clients: bool,
        /// `[detection] scoring`: on-change or every-sample [default: the
        /// agent's default].
        #[arg(long, value_parser = xtask::evaluate::SCORINGS)]
        scoring: Option<String>,
    },
    /// Regenerate the shipped default model (models/) from real tool traffic
    /// in a namespace lab (root); --from-csv retrains from models/lab-dataset.csv.gz.
    GenModel {
        #[arg(long)]
        from_csv: bool,
        /// Only record: the capture and the labels files in target/pngen/
        /// (for `phantomnet-agent replay`), no dataset and no training.
        #[arg(long, conflicts_with = "from_csv")]
        record_only: bool,
    },
    /// Judge the model per source on a recording (default: the one
    /// `gen-model --record-only` made) through `phantomnet-agent replay`:
    /// the shipped model at 1-in-1 and 1-in-16, then each attack family left
    /// out of training in turn; tables, JSON and plots in target/evaluate.
    /// No root.
    Evaluate {
        #[arg(long)]
        capture: Option<PathBuf>,
        #[arg(long)]
        labels: Option<PathBuf>,
        /// The training CSV [default: models/lab-dataset.csv.gz].
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Record the tool-disjoint held-out corpus (target/heldout/): real
    /// servers and tools training never uses, from fresh sources (root).
    /// Never train or tune on it (docs/HELDOUT.md).
    RecordHeldout {
        /// Repeat a plan (rates, ports, payloads, timing) from its seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Run the agent live with the shipped model at the shipped defaults
        /// (enforcing, 1-in-16 with priority sampling) and report per source
        /// what it put in force; the capture then holds its samples.
        #[arg(long)]
        live: bool,
        /// Which corpus: `first` (target/heldout/) or `second`
        /// (target/heldout-second/: tools neither training nor the first
        /// uses).
        #[arg(long, default_value = "first")]
        corpus: phantomnet_lab::traffic::heldout::Corpus,
    },
    /// Install the release binaries, their man pages and shell completions,
    /// the config, the models and the systemd unit (root for the default prefix).
    Install {
        /// Where binaries, man pages and completions go.
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
        /// Stage everything under this directory instead of `/` (packaging).
        #[arg(long)]
        destdir: Option<PathBuf>,
    },
    /// Install prerequisites, run the unprivileged tests, then the root-only
    /// tests one at a time.
    Test {
        /// Only the unprivileged tests.
        #[arg(long)]
        unit_only: bool,
    },
}

#[derive(Subcommand)]
enum LabAction {
    Up,
    Down,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs `f` as root. As a normal user: builds what the task needs as that
/// user (so `target/` stays theirs), then re-runs this task through sudo.
fn as_root(
    task_args: &[&str],
    prebuild: impl FnOnce() -> Result<()>,
    f: impl FnOnce() -> Result<()>,
) -> Result<()> {
    if privilege::is_root() {
        return f();
    }
    privilege::ensure_root_available()?;
    prereq::setup()?;
    prebuild()?;
    privilege::reexec_as_root(task_args)
}

fn release_agent() -> Result<()> {
    cmd::build_release_agent(&workspace_root()).map(|_| ())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::env::set_current_dir(workspace_root())?;
    let root = workspace_root();
    match cli.task {
        Task::Setup => prereq::setup(),
        Task::Lab {
            action,
            name,
            no_ipv6,
        } => {
            let verb = match action {
                LabAction::Up => "up",
                LabAction::Down => "down",
            };
            let mut args = vec!["lab", verb, "--name", name.as_str()];
            if no_ipv6 {
                args.push("--no-ipv6");
            }
            as_root(
                &args,
                || Ok(()),
                || {
                    let lab = Lab::new(&name, LabOptions { ipv6: !no_ipv6 });
                    match action {
                        LabAction::Up => {
                            lab.up()?;
                            println!(
                                "lab {name} is up (namespaces {name}-{{wan,gw,srv,hp,cli,atk}})"
                            );
                        }
                        LabAction::Down => {
                            lab.down()?;
                            println!("lab {name} is down");
                        }
                    }
                    Ok(())
                },
            )
        }
        Task::Test { unit_only } => test(unit_only),
        Task::Evaluate {
            capture,
            labels,
            csv,
        } => xtask::evaluate::evaluate(
            &root,
            &xtask::evaluate::EvalOptions {
                capture,
                labels,
                csv,
            },
        ),
        Task::GenModel {
            from_csv,
            record_only,
        } => {
            let opts = xtask::dataset::GenOptions {
                from_csv,
                record_only,
            };
            if from_csv {
                return xtask::dataset::gen_model(&root, &opts);
            }
            let args: &[&str] = if record_only {
                &["gen-model", "--record-only"]
            } else {
                &["gen-model"]
            };
            as_root(args, release_agent, || {
                prereq::setup()?;
                xtask::dataset::gen_model(&root, &opts)
            })
        }
        Task::RecordHeldout { seed, live, corpus } => {
            let opts = xtask::heldout::HeldoutOptions { seed, live, corpus };
            let seed_s = seed.map(|s| s.to_string());
            let mut args = vec!["record-heldout", "--corpus", corpus.name()];
            if let Some(s) = &seed_s {
                args.extend(["--seed", s.as_str()]);
            }
            if live {
                args.push("--live");
            }
            as_root(&args, release_agent, || {
                prereq::setup()?;
                xtask::heldout::record_heldout(&root, &opts)
            })
        }
        Task::BenchTte {
            runs,
            rate,
            sample_every,
            scoring,
            keep,
        } => {
            let keep = keep.map(std::path::absolute).transpose()?;
            let keep_s = match &keep {
                Some(k) => Some(k.to_str().context("--keep: the path is not UTF-8")?),
                None => None,
            };
            let (runs_s, rate_s, every_s) =
                (runs.to_string(), rate.to_string(), sample_every.to_string());
            let mut args = vec![
                "bench-tte",
                "--runs",
                &runs_s,
                "--rate",
                &rate_s,
                "--sample-every",
                &every_s,
            ];
            if let Some(sc) = &scoring {
                args.extend(["--scoring", sc.as_str()]);
            }
            if let Some(k) = keep_s {
                args.extend(["--keep", k]);
            }
            as_root(&args, release_agent, || {
                prereq::setup()?;
                xtask::tte::bench_tte(
                    &root,
                    xtask::tte::TteOptions {
                        runs,
                        rate,
                        sample_every,
                        scoring: scoring.clone(),
                        keep: keep.clone(),
                    },
                )
            })
        }
        Task::Demo {
            keep_lab,
            heavy_clients,
            scoring,
        } => {
            let mut args = vec!["demo"];
            if keep_lab {
                args.push("--keep-lab");
            }
            if heavy_clients {
                args.push("--heavy-clients");
            }
            if let Some(sc) = &scoring {
                args.extend(["--scoring", sc.as_str()]);
            }
            as_root(&args, release_agent, || {
                prereq::setup()?;
                xtask::demo::demo(
                    &root,
                    xtask::demo::DemoOptions {
                        keep_lab,
                        heavy_clients,
                        scoring: scoring.clone(),
                    },
                )
            })
        }
        Task::BenchPath {
            rate,
            secs,
            scoring,
        } => {
            let rates = rate
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let secs_s = secs.to_string();
            let args = [
                "bench-path",
                "--rate",
                &rates,
                "--secs",
                &secs_s,
                "--scoring",
                &scoring,
            ];
            as_root(&args, release_agent, || {
                prereq::setup()?;
                xtask::bench_path::bench_path(
                    &root,
                    &cmd::build_release_agent(&root)?,
                    &rate,
                    secs,
                    &scoring,
                )
            })
        }
        Task::BenchXdp => as_root(&["bench-xdp"], release_agent, || {
            prereq::setup()?;
            xtask::bench::bench_xdp(&cmd::build_release_agent(&root)?)
        }),
        Task::Install { prefix, destdir } => {
            xtask::install::install(&root, &prefix, destdir.as_deref())
        }
    }
}

/// The unprivileged tests as the invoking user; then the root-only test
/// binaries, built as that user and run one at a time as root (directly,
/// or through sudo), each with one test thread.
fn test(unit_only: bool) -> Result<()> {
    if !unit_only {
        privilege::ensure_root_available()?;
    }
    prereq::setup()?;
    // The default members: everything but the eBPF crate and the root-only tests.
    cmd::run("cargo", &["test", "--locked"])?;
    if unit_only {
        return Ok(());
    }
    cmd::run(
        "cargo",
        &["build", "--locked", "-p", "phantomnet-agent", "--bins"],
    )?;
    let bin = workspace_root().join("target/debug/phantomnet-agent");
    let bin = bin.to_string_lossy().into_owned();
    let tests = cmd::test_executables(&["-p", "phantomnet-tests"])?;
    let dir = workspace_root().join("tests");
    let mut failed = Vec::new();
    for (name, exe) in &tests {
        println!("\n== root-only tests: {name} ==");
        let exe = exe.to_string_lossy();
        if let Err(e) = privilege::run_as_root_in(
            &exe,
            &["--test-threads=1"],
            &[("PHANTOMNET_AGENT_BIN", &bin)],
            Some(&dir),
        ) {
            println!("FAILED: {name}: {e:#}");
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("root-only test binaries failed: {}", failed.join(", "));
    }
    println!("\nall {} root-only test binaries passed", tests.len());
    Ok(())
}
