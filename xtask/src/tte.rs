//! `cargo xtask bench-tte`: time to enforcement, from an attacker's first
//! packet to the first packet the data plane drops, over repeated runs.
//!
//! Each run is a hping3 SYN flood from an attacker source the agent has
//! never seen, against the lab's server, with the agent running the shipped
//! model and sampling every packet into a capture. Both ends of the
//! measurement are kernel timestamps of the same clock, taken by the XDP
//! program: the source's first sample, and its first sample whose action is
//! BLOCK or THROTTLE (a dropped packet). The wall clock, scheduling of the
//! tool, and the capture file's latency do not enter the figure.
//!
//! `--rate` sets the flood's rate and `--sample-every` the data plane's
//! sampling. Below 1-in-1 both ends are sampled packets: the first is exact
//! when the source's first SYN is a priority sample (a connection opener),
//! and the first dropped sample may come up to N packets after the first
//! dropped packet, so the figure is then an upper bound.
use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use anyhow::{Result, bail};

use phantomnet_lab::{
    lab::{Lab, LabOptions, addr},
    traffic::{Budget, Scenario, Servers},
};

use crate::{
    cmd,
    demo::{Paths, read_capture, start_agent, start_honeypot, write_config},
};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// A flood's rate and the data plane's sampling for `bench-tte`.
#[derive(Clone, Debug)]
pub struct TteOptions {
    pub runs: u8,
    /// SYNs per second (hping3 sends at most 10,000/s here).
    pub rate: u32,
    /// The data plane samples 1 in this many packets.
    pub sample_every: u32,
    /// `[detection] scoring` (`None`: the built-in default).
    pub scoring: Option<String>,
    /// Where to copy the agent's files (capture, config, log, journal)
    /// before the lab goes down.
    pub keep: Option<PathBuf>,
}

pub fn bench_tte(root: &Path, opts: TteOptions) -> Result<()> {
    let TteOptions {
        runs,
        rate,
        sample_every,
        scoring,
        keep,
    } = opts;
    if !(1..=10_000).contains(&rate) || sample_every == 0 {
        bail!("--rate must be 1..=10000 packets/s and --sample-every at least 1");
    }
    if runs == 0 || runs > addr::ATK_SOURCES {
        bail!(
            "--runs must be 1..={} (one fresh attacker source per run)",
            addr::ATK_SOURCES
        );
    }
    let bin = cmd::build_release_agent(root)?;
    let paths = Paths::new("tte");
    let lab = Lab::new("pntte", LabOptions::default());
    let cleanup = |lab: &Lab| {
        let _ = cmd::output(
            bin.to_str().unwrap(),
            &["--pin-dir", paths.pins.to_str().unwrap(), "detach"],
        );
        let _ = lab.down();
        let _ = fs::remove_dir_all(&paths.dir);
    };
    cleanup(&lab);
    lab.up()?;
    let result = (|| -> Result<Vec<f64>> {
        let config = write_config(root, &paths, "", sample_every, scoring.as_deref())?;
        let _servers = Servers::start(&lab)?;
        let _hp = start_honeypot(&lab)?;
        let capture = paths.file("tte.pncap");
        let mut agent = start_agent(&lab, &bin, &config, &capture, &paths.file("agent.log"))?;
        let mut sources = Vec::new();
        for i in 0..runs {
            let src = addr::atk_src4(i);
            // The scenario spreads its count over 80 % of the time bound.
            Scenario::SynFlood.run(
                &lab,
                &src,
                Budget {
                    count: (f64::from(rate) * 1.6).round() as u32,
                    secs: 2.0,
                },
                1.0,
            )?;
            sources.push(src);
            thread::sleep(Duration::from_millis(300));
        }
        agent.stop(Duration::from_secs(5));
        let traces = read_capture(&capture)?;
        if let Some(keep) = &keep {
            fs::create_dir_all(keep)?;
            for e in fs::read_dir(&paths.dir)?.flatten() {
                if e.path().is_file() {
                    fs::copy(e.path(), keep.join(e.file_name()))?;
                }
            }
            println!("bench-tte: the agent's files are in {}", keep.display());
        }
        let mut tte = Vec::new();
        for src in &sources {
            let t = traces.get(&src.parse()?).copied().unwrap_or_default();
            match t.first_drop_ns {
                Some(d) => tte.push((d - t.first_ns) as f64 / 1e6),
                None => bail!(
                    "{src}: {} packets, none dropped: the flood was not enforced",
                    t.packets
                ),
            }
        }
        Ok(tte)
    })();
    cleanup(&lab);
    let mut tte = result?;
    for (i, ms) in tte.iter().enumerate() {
        println!("run {:>2}: {:>8.2} ms", i + 1, ms);
    }
    tte.sort_by(f64::total_cmp);
    println!(
        "\n## Time to enforcement ({} runs, hping3 SYN flood at {rate} packets/s, 1-in-{sample_every} sampling, fresh source each run)\n",
        tte.len()
    );
    println!("| p50 | p90 | p99 | min | max |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        percentile(&tte, 50.0),
        percentile(&tte, 90.0),
        percentile(&tte, 99.0),
        tte[0],
        tte[tte.len() - 1]
    );
    Ok(())
}
