//! `cargo xtask <task>`: set-up, lab, tests, benchmarks.
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use xtask::{
    cmd,
    lab::{Lab, LabOptions},
    prereq,
};

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
    /// Time from an attacker's first packet to its first dropped packet, p50/p99 over runs.
    BenchTte {
        /// Runs, one fresh attacker source each.
        #[arg(long, default_value_t = 20)]
        runs: u8,
    },
    /// The main job: the lab, the agent with the shipped model, benign
    /// clients and real attack tools, decisions live, and a table per source.
    Demo {
        /// Leave the lab (and the agent's pins) up afterwards.
        #[arg(long)]
        keep_lab: bool,
    },
    /// Regenerate the shipped default model (models/) from real tool traffic
    /// in a namespace lab (root); --from-csv retrains from models/lab-dataset.csv.
    GenModel {
        #[arg(long)]
        from_csv: bool,
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::env::set_current_dir(workspace_root())?;
    match cli.task {
        Task::Setup => prereq::setup(),
        Task::Lab {
            action,
            name,
            no_ipv6,
        } => {
            if !prereq::is_root() {
                bail!("the lab creates network namespaces: run as root");
            }
            let lab = Lab::new(&name, LabOptions { ipv6: !no_ipv6 });
            match action {
                LabAction::Up => {
                    lab.up()?;
                    println!("lab {name} is up (namespaces {name}-{{wan,gw,srv,hp,cli,atk}})");
                }
                LabAction::Down => {
                    lab.down()?;
                    println!("lab {name} is down");
                }
            }
            Ok(())
        }
        Task::Test { unit_only } => test(unit_only),
        Task::GenModel { from_csv } => {
            xtask::dataset::gen_model(&workspace_root(), &xtask::dataset::GenOptions { from_csv })
        }
        Task::BenchTte { runs } => {
            if !prereq::is_root() {
                bail!("bench-tte runs the lab: run as root");
            }
            prereq::setup()?;
            xtask::tte::bench_tte(&workspace_root(), runs)
        }
        Task::Demo { keep_lab } => {
            if !prereq::is_root() {
                bail!(
                    "the demo runs the namespace lab, XDP and nftables: run it as root (sudo cargo xtask demo)"
                );
            }
            prereq::setup()?;
            xtask::demo::demo(&workspace_root(), keep_lab)
        }
        Task::BenchXdp => {
            if !prereq::is_root() {
                bail!("bench-xdp loads XDP programs: run as root");
            }
            prereq::setup()?;
            xtask::bench::bench_xdp(&cmd::build_release_agent(&workspace_root())?)
        }
    }
}

fn test(unit_only: bool) -> Result<()> {
    prereq::setup()?;
    // The default members: everything but the eBPF crate and the root-only tests.
    cmd::run("cargo", &["test", "--locked"])?;
    if unit_only {
        return Ok(());
    }
    if !prereq::is_root() {
        println!(
            "SKIP root-only tests: they need root (namespaces, XDP, bpffs); run `sudo cargo xtask test`"
        );
        return Ok(());
    }
    cmd::run(
        "cargo",
        &["build", "--locked", "-p", "phantomnet-agent", "--bins"],
    )?;
    let bin = workspace_root().join("target/debug/phantomnet-agent");
    let bin = bin.to_string_lossy().into_owned();
    cmd::run_env(
        "cargo",
        &[
            "test",
            "--locked",
            "-p",
            "phantomnet-tests",
            "--",
            "--test-threads=1",
        ],
        &[("PHANTOMNET_AGENT_BIN", &bin)],
    )
}
