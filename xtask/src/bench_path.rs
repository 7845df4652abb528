//! `cargo xtask bench-path`: samples per second through the agent's whole
//! path on one core, from the ring buffer to a decision, at paced rates.
//!
//! The real agent runs with the shipped model, pinned to CPU 1, in a
//! namespace of its own (`pnpath`, a veth pair, pins in
//! `/sys/fs/bpf/pnpath`; all removed at the end), sampling every packet.
//! The kernel produces the samples with BPF_PROG_TEST_RUN on CPU 0
//! (`taskset -c 0 bpftool prog run … repeat 10000`), one batch at a time,
//! paced to each target rate. The batches cycle through 256 UDP sources,
//! so every batch is one source's burst of 10,000 samples.
//!
//! The agent reads a batch from the ring buffer, runs the whole path on it
//! (flood detector, flow state, features, model, decision, executor) and
//! only then reads the next: the ring buffer is the only queue (the
//! journal's records go to its writer thread, on the same core). So a rate
//! the agent does not keep up with shows as `sample_lost` (the ring was
//! full when a sample was due), and a rate with 0 lost is one the whole
//! path sustained.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    bench::{BenchNet, logged_samples_read, start_attached, stats_counter, udp_frame},
    cmd,
};

const NS: &str = "pnpath";
const PINS: &str = "/sys/fs/bpf/pnpath";
const SOCKET: &str = "/tmp/pnpath-agent.sock";
const JOURNAL: &str = "/tmp/pnpath-journal";
const LOG: &str = "/tmp/pnpath-agent.log";
const CONFIG: &str = "/tmp/pnpath-agent.toml";
/// Samples per test-run batch: fits the 4 MiB ring buffer (about 29,000
/// samples) with room to spare.
const BATCH: u32 = 10_000;
const SOURCES: u8 = 255;

/// Where source `s`'s frame is written for bpftool.
fn frame_file(s: u8) -> PathBuf {
    std::env::temp_dir().join(format!("pnpath-frame-{s}.bin"))
}

fn agent(bin: &Path, args: &[&str]) -> Result<String> {
    let mut full = vec!["--pin-dir", PINS];
    full.extend_from_slice(args);
    cmd::output(bin.to_str().context("agent path")?, &full)
}

fn cleanup(bin: &Path) {
    let _ = agent(bin, &["detach"]);
    let _ = cmd::output("ip", &["netns", "del", NS]);
    for f in [SOCKET, JOURNAL, LOG, CONFIG] {
        let _ = fs::remove_file(f);
    }
    for s in 1..=SOURCES {
        let _ = fs::remove_file(frame_file(s));
    }
}

/// `bench-path` at these rates (samples/s), `secs` each, with `scoring`
/// (`every-sample` or `on-change`).
pub fn bench_path(root: &Path, bin: &Path, rates: &[u32], secs: u32, scoring: &str) -> Result<()> {
    if !crate::evaluate::SCORINGS.contains(&scoring) {
        bail!("--scoring is every-sample or on-change, not {scoring:?}");
    }
    if rates.is_empty() || rates.iter().any(|r| !(1_000..=5_000_000).contains(r)) {
        bail!("each --rate is 1000..=5000000 samples/s");
    }
    if !(1..=30).contains(&secs) {
        bail!("--secs is 1..=30");
    }
    cleanup(bin);
    let r = run(root, bin, rates, secs, scoring);
    cleanup(bin);
    r
}

fn run(root: &Path, bin: &Path, rates: &[u32], secs: u32, scoring: &str) -> Result<()> {
    fs::write(
        CONFIG,
        format!("[dataplane]\ninterfaces = [\"pnp0\"]\n\n[detection]\nscoring = \"{scoring}\"\n"),
    )?;
    let model = root.join("models");
    let args = [
        "run",
        "--config",
        CONFIG,
        "--iface",
        "pnp0",
        "--sample-rate",
        "1",
        "--model",
        model.to_str().context("model path")?,
        "--stats-interval",
        "1",
        "--api-socket",
        SOCKET,
        "--journal",
        JOURNAL,
    ];
    let (_agent, id) = start_attached(
        bin,
        BenchNet {
            ns: NS,
            pins: PINS,
            veth: ("pnp0", "pnp1"),
            inside: None,
            log: LOG,
        },
        &args,
    )?;
    let frames: Vec<PathBuf> = (1..=SOURCES)
        .map(|s| fs::write(frame_file(s), udp_frame([10, 9, 0, s])).map(|()| frame_file(s)))
        .collect::<Result<_, _>>()?;
    // Let the agent settle (its first counters line).
    sleep(Duration::from_millis(1500));

    println!("\n## Whole path, ring buffer to decision (agent on one core, scoring = {scoring})\n");
    println!(
        "| target samples/s | produced | in | produced/s | read by agent | lost (ring full) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut next = 0usize;
    for &rate in rates {
        let lost0 = counter(bin, "sample_lost")?;
        let read0 = samples_read()?;
        let total = u64::from(rate) * u64::from(secs);
        let t0 = Instant::now();
        let mut sent = 0u64;
        while sent < total {
            let due = Duration::from_secs_f64(sent as f64 / f64::from(rate));
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                sleep(wait);
            }
            produce(id, &frames[next % frames.len()])?;
            next += 1;
            sent += u64::from(BATCH);
        }
        let took = t0.elapsed();
        sleep(Duration::from_millis(2500));
        let lost = counter(bin, "sample_lost")? - lost0;
        let read = samples_read()? - read0;
        println!(
            "| {rate} | {sent} | {:.2} s | {:.0} | {read} | {lost} |",
            took.as_secs_f64(),
            sent as f64 / took.as_secs_f64()
        );
    }
    Ok(())
}

/// One batch of `BATCH` runs of the frame in `file`, on CPU 0.
fn produce(id: u32, file: &Path) -> Result<()> {
    let out = Command::new("taskset")
        .args(["-c", "0", "bpftool", "prog", "run", "id", &id.to_string()])
        .arg("data_in")
        .arg(file)
        .args(["repeat", &BATCH.to_string()])
        .output()
        .context("running bpftool")?;
    if !out.status.success() {
        bail!(
            "bpftool prog run: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn counter(bin: &Path, outcome: &str) -> Result<u64> {
    stats_counter(bin, PINS, outcome)
}

fn samples_read() -> Result<u64> {
    logged_samples_read(Path::new(LOG))
}
