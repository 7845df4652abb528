//! `cargo xtask gen-model`: the shipped default model, regenerated from
//! scratch.
//!
//! 1. Build the agent (release).
//! 2. Bring up a lab of its own (`pngen-*`, pins in `/sys/fs/bpf/pngen`),
//!    start the server listeners and `phantomnet-agent run --sample-rate 1
//!    --capture` in the gateway namespace.
//! 3. Run every attack scenario of [`phantomnet_lab::traffic`] twice (a fast run and
//!    a slower, IPv6 where the tool allows it), each from its own source,
//!    while the three benign scenarios loop from the clients the whole
//!    time, so benign and attack flows overlap, and short benign sessions
//!    run from many fresh client sources ([`crate::plan::fresh_session`]), so the data
//!    holds young benign sources as well as young attackers.
//! 4. Stop the agent (SIGTERM flushes the capture), remove the lab and the
//!    pins (also on error). Steps 2–4 run [`RECORDINGS`] times, each into
//!    its own capture.
//! 5. `dataset` over the captures ([`DATASET_PASSES`]) with a labels file
//!    naming each attack source, `train
//!    --seed 42`, the held-out report (`phantomnet-tests`' `model_report`
//!    example: per-attack-type recall on exactly the rows `train` held out)
//!    and `evaluate` on those held-out rows for the plots in `docs/img/`.
//!
//! `--from-csv` skips steps 1–4 and retrains from the shipped
//! `models/lab-dataset.csv.gz` (no root needed). `--record-only` stops after
//! one recording (step 4): a capture and its labels, for `phantomnet-agent
//! replay` (how the validation recordings are made).
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::plan::{
    AttackRun, FRESH_LANES, attack_plan, benign_sources, counting_labels_text, fresh_session,
    labels_text,
};
use phantomnet_lab::agent::{AgentRun, AgentSpec, READY_DATAPLANE};
use phantomnet_lab::lab::{GW_INSIDE_IFACE, GW_XDP_IFACE, Lab, LabOptions, Role};
use phantomnet_lab::traffic::{Report, Scenario, Servers};

/// The lab's namespace prefix and pin directory.
pub const PREFIX: &str = "pngen";
pub const PIN_DIR: &str = "/sys/fs/bpf/pngen";
/// The training seed.
pub const SEED: u64 = 42;
/// `phantomnet-agent dataset`'s rows for the shipped model: the recordings
/// (every packet) as they are, and 8 seeded draws of the data plane's
/// default sampling (1-in-16 with priority sampling) emulated over them,
/// each row a sample the detector scores at that rate, priority samples
/// included. IPv6 sources per address: the lab's IPv6 hosts share a /64
/// each side, which the agent's default /64 grouping would merge into one
/// source whose features mix every scenario's (on a real network a host
/// has its /64 to itself).
pub const DATASET_PASSES: &[&str] = &[
    "--emulate-every",
    "1",
    "--emulate-every",
    "16",
    "--draws",
    "8",
    "--seed",
    "1",
    "--ipv6-source-prefix",
    "128",
];
/// `phantomnet-agent train`'s flags for a model `gen-model` trains and
/// every model `evaluate` compares with it: schema v7 (its
/// `server_refusals`, `server_answers` and `server_errors` need the inside
/// observer, which the lab runs; its census weighs every sample by its
/// sampling probability), and scoring priority samples (it was trained on
/// them). Schema v7 was adopted on 2026-12-07 (MODEL.md).
pub const TRAIN_FLAGS: &[&str] = &["--schema", "7", "--scores-priority"];
/// How many times `gen-model` runs the training plan, each in a fresh lab,
/// into its own capture: the shipped CSV holds all four (the heavy benign
/// clients' sessions then land on other sources and other timings; with
/// two, the eighth revision's candidate failed its adoption rule and
/// with four it met it, docs/MODEL.md).
pub const RECORDINGS: usize = 4;

/// The `n`th training capture (0-based) in `work`: `lab.pncap`, then
/// `lab-2.pncap`, ….
pub fn capture_path(work: &Path, n: usize) -> PathBuf {
    if n == 0 {
        work.join("lab.pncap")
    } else {
        work.join(format!("lab-{}.pncap", n + 1))
    }
}
/// Where the shipped artifacts go, relative to the workspace root.
pub const MODELS_DIR: &str = "models";
pub const DATASET_CSV: &str = "models/lab-dataset.csv.gz";
/// Working files (capture, labels, logs, held-out rows); not shipped.
pub const WORK_DIR: &str = "target/pngen";
/// The plots, relative to the workspace root.
pub const IMG_DIR: &str = "docs/img";

#[derive(Clone, Debug, Default)]
pub struct GenOptions {
    /// Retrain from the shipped CSV instead of generating traffic.
    pub from_csv: bool,
    /// Stop after recording: the capture and the labels files only.
    pub record_only: bool,
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Removes the lab, its extra namespaces and the pins this task created
/// (and only those), also when dropped on an error path.
pub(crate) struct Cleanup {
    pub lab: Lab,
    pub bin: PathBuf,
    pub pin_dir: &'static str,
    /// Namespaces `<prefix>-<name>` made besides the lab's own
    /// (`Lab::add_outside_host`); their nft tables go with them.
    pub extra: Vec<String>,
}

impl Cleanup {
    pub fn run(&self) {
        if Path::new(self.pin_dir).exists() {
            let _ = cmd::output(s(&self.bin), &["--pin-dir", self.pin_dir, "detach"]);
        }
        for name in &self.extra {
            if let Err(e) = self.lab.remove_host(name) {
                eprintln!("removing {}-{name}: {e:#}", self.lab.prefix());
            }
        }
        if let Err(e) = self.lab.down() {
            eprintln!("removing lab {}: {e:#}", self.lab.prefix());
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

pub fn gen_model(root: &Path, opts: &GenOptions) -> Result<()> {
    let work = root.join(WORK_DIR);
    fs::create_dir_all(&work)?;
    let csv = root.join(DATASET_CSV);
    let t0 = Instant::now();
    if !opts.from_csv {
        if !crate::prereq::is_root() {
            bail!("gen-model runs a namespace lab and loads XDP: run as root (or use --from-csv)");
        }
        crate::prereq::setup()?;
    }
    let bin = cmd::build_release_agent(root)?;
    if !opts.from_csv {
        let capture = capture_path(&work, 0);
        let plan = attack_plan();
        let created_at = record(root, &bin, &capture, &plan)?;
        fs::write(work.join("created_at"), &created_at)?;
        // `--record-only` makes one recording (a validation capture);
        // training takes [`RECORDINGS`].
        let recordings = if opts.record_only { 1 } else { RECORDINGS };
        for n in 1..recordings {
            record(root, &bin, &capture_path(&work, n), &plan)?;
        }
        let labels = work.join("labels.txt");
        fs::write(&labels, labels_text(&plan))?;
        fs::write(work.join("labels-count.txt"), counting_labels_text(&plan))?;
        if opts.record_only {
            println!(
                "gen-model: recorded {} with its labels ({} names every source, benign ones by scenario) in {:.0} s",
                capture.display(),
                work.join("labels-count.txt").display(),
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        fs::create_dir_all(root.join(MODELS_DIR))?;
        let captures: Vec<PathBuf> = (0..recordings).map(|n| capture_path(&work, n)).collect();
        let mut args = vec!["dataset", "--quiet"];
        for c in &captures {
            args.extend(["--capture", s(c)]);
        }
        args.extend([
            "--labels",
            s(&labels),
            "--sample-every",
            "1",
            "--out",
            s(&csv),
        ]);
        args.extend(DATASET_PASSES.iter().copied());
        cmd::run(s(&bin), &args)?;
        count_by_source(&bin, &capture, &work)?;
        println!(
            "gen-model: recorded and labeled in {:.0} s",
            t0.elapsed().as_secs_f64()
        );
    } else if !csv.exists() {
        bail!(
            "{} is missing: run `sudo cargo xtask gen-model` first",
            csv.display()
        );
    }
    train(root, &bin, &csv, &work)?;
    println!("gen-model: done in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Steps 2–4: returns the recording's start time (RFC 3339, UTC), used as
/// the model's `created_at`.
fn record(root: &Path, bin: &Path, capture: &Path, plan: &[AttackRun]) -> Result<String> {
    let lab = Lab::new(PREFIX, LabOptions { ipv6: true });
    let cleanup = Cleanup {
        lab: lab.clone(),
        bin: bin.to_path_buf(),
        pin_dir: PIN_DIR,
        extra: Vec::new(),
    };
    cleanup.run(); // leftovers of an interrupted run
    lab.up()?;
    let created_at = cmd::output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])?
        .trim()
        .to_string();
    let servers = Servers::start(&lab)?;
    let log_path = root.join(WORK_DIR).join("agent.log");
    let (reports, stats) = capture_while(&lab, bin, PIN_DIR, capture, &log_path, None, || {
        traffic(&lab, plan)
    })?;
    drop(servers);
    drop(cleanup);
    let reports = reports?;
    println!("gen-model: traffic sent");
    for r in &reports {
        println!("  {r}");
    }
    print_capture_stats("gen-model", &stats, capture);
    Ok(created_at)
}

/// Runs `traffic` while a recording agent ([`start_agent`]) captures every
/// packet into `capture` (or, given a `model`, a live agent enforcing with
/// it at the default sampling captures its samples); then lets the last
/// samples reach the ring buffer reader, reads the data plane's counters
/// and stops the agent (SIGTERM flushes the capture; what it enforced stays
/// pinned). Returns what `traffic` returned and the counters.
pub(crate) fn capture_while<T>(
    lab: &Lab,
    bin: &Path,
    pin_dir: &str,
    capture: &Path,
    log_path: &Path,
    model: Option<&Path>,
    traffic: impl FnOnce() -> T,
) -> Result<(T, String)> {
    let _ = fs::remove_file(capture);
    let mut agent = start_agent(lab, bin, pin_dir, capture, log_path, model)?;
    let out = traffic();
    std::thread::sleep(Duration::from_millis(500));
    // An agent that died after it attached (a journal another agent still
    // holds, say) leaves the data plane counting and the capture empty.
    if !agent.running() {
        bail!(
            "the recording agent exited before the traffic ended; see {}",
            log_path.display()
        );
    }
    let stats = dataplane_stats(bin, pin_dir);
    if !agent.stop(Duration::from_secs(15)) {
        bail!(
            "the agent did not exit on SIGTERM; see {}",
            log_path.display()
        );
    }
    Ok((out, stats))
}

/// The data plane's counters (`phantomnet-agent stats`), while it runs.
pub(crate) fn dataplane_stats(bin: &Path, pin_dir: &str) -> String {
    cmd::output(s(bin), &["--pin-dir", pin_dir, "stats"]).unwrap_or_default()
}

/// Prints what the data plane passed, sampled and lost, and how many
/// samples the capture holds; returns the samples lost.
pub(crate) fn print_capture_stats(tag: &str, stats: &str, capture: &Path) -> u64 {
    let counter = |name: &str| -> u64 {
        stats
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let records = fs::metadata(capture)
        .map(|m| m.len().saturating_sub(16) / 128)
        .unwrap_or(0);
    println!(
        "{tag}: data plane passed {} packets, sampled {}, lost {}; capture holds {records} samples",
        counter("passed"),
        counter("sampled"),
        counter("sample_lost")
    );
    if counter("sample_lost") > 0 {
        println!("{tag}: WARNING: the ring buffer overflowed; the capture misses some packets");
    }
    counter("sample_lost")
}

/// A file beside the capture, in the work directory.
fn work_file(capture: &Path, name: &str) -> PathBuf {
    capture.with_file_name(name)
}

/// `phantomnet-agent run --sample-rate 1 --capture` in the lab's gateway,
/// with its own pins, control socket and journal beside the capture; no
/// model, so nothing is enforced. With a `model`: the shipped defaults
/// instead (a config naming only the interface: 1-in-16 with priority
/// sampling, enforcing), detecting with that model.
pub(crate) fn start_agent(
    lab: &Lab,
    bin: &Path,
    pin_dir: &str,
    capture: &Path,
    log_path: &Path,
    model: Option<&Path>,
) -> Result<AgentRun> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut args: Vec<String> = ["--pin-dir", pin_dir, "run", "--iface", GW_XDP_IFACE]
        .into_iter()
        .chain(["--inside-iface", GW_INSIDE_IFACE])
        .chain(["--stats-interval", "5", "--capture"])
        .map(String::from)
        .collect();
    args.push(path(capture));
    match model {
        None => args.extend(["--sample-rate".into(), "1".into()]),
        Some(m) => {
            // The built-in defaults but for the interface (a config must
            // name one), whatever /etc/phantomnet/agent.toml says.
            let config = work_file(capture, "live.toml");
            fs::write(
                &config,
                format!(
                    "# record-heldout --live: the shipped defaults\n[dataplane]\ninterfaces = [\"{GW_XDP_IFACE}\"]\n"
                ),
            )?;
            args.extend(["--config".into(), path(&config)]);
            args.extend(["--model".into(), path(m)]);
        }
    }
    // Its own control socket and journal, never a real agent's.
    args.extend([
        "--api-socket".into(),
        path(&work_file(capture, "agent.sock")),
    ]);
    args.extend(["--journal".into(), path(&work_file(capture, "journal"))]);
    let mut agent = AgentRun::spawn(AgentSpec {
        netns: &lab.netns_path(Role::Gw),
        bin,
        args,
        log: log_path,
        cpu: None,
    })?;
    agent.wait_for_log(READY_DATAPLANE, Duration::from_secs(30))?;
    Ok(agent)
}

/// Step 3. Benign loops run on their own threads from the start to the
/// end; attacks run one after another on this one.
fn traffic(lab: &Lab, plan: &[AttackRun]) -> Result<Vec<Report>> {
    let stop = Arc::new(AtomicBool::new(false));
    let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let start = Instant::now();
    std::thread::scope(|sc| {
        for s in Scenario::BENIGN {
            let (stop, reports, errors) = (stop.clone(), reports.clone(), errors.clone());
            sc.spawn(move || {
                let mut round = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let src = benign_sources(s)[round % 2];
                    let budget = s.default_budget();
                    // The IPv6 client is slower, so it differs from the IPv4 ones.
                    let pace = if round % 2 == 1 { 1.5 } else { 1.0 };
                    match s.run(lab, src, budget, pace) {
                        Ok(r) => reports.lock().unwrap().push(r),
                        Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
                    }
                    if s == Scenario::BenignBulk {
                        std::thread::sleep(Duration::from_secs(4));
                    }
                    round += 1;
                }
            });
        }
        // Short sessions from fresh client sources, interleaved with everything.
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..FRESH_LANES {
            let (stop, reports, errors, next) =
                (stop.clone(), reports.clone(), errors.clone(), next.clone());
            sc.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let f = fresh_session(next.fetch_add(1, Ordering::Relaxed));
                    match f.scenario.run(lab, &f.source, f.budget, f.pace) {
                        Ok(r) => reports.lock().unwrap().push(r),
                        Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
                    }
                    std::thread::sleep(Duration::from_secs_f64(f.pause));
                }
            });
        }
        // Benign traffic alone first, then the attacks with benign around them.
        std::thread::sleep(Duration::from_secs(8));
        for run in plan {
            println!(
                "gen-model: {:>5.1} s  {} from {}",
                start.elapsed().as_secs_f64(),
                run.scenario.name(),
                run.source
            );
            match run.scenario.run(lab, &run.source, run.budget, run.pace) {
                Ok(r) => reports.lock().unwrap().push(r),
                Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
            }
            std::thread::sleep(Duration::from_millis(700));
        }
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
    });
    let errors = errors.lock().unwrap();
    if !errors.is_empty() {
        bail!("traffic generation failed:\n  {}", errors.join("\n  "));
    }
    let mut r = std::mem::take(&mut *reports.lock().unwrap());
    r.sort_by_key(|r| (!r.scenario.is_attack(), r.scenario.name(), r.source.clone()));
    Ok(r)
}

/// Rows per `attack_type` of a CSV (its last column), read as a stream.
pub(crate) fn count_types(csv: &Path) -> Result<Vec<(String, u64)>> {
    use std::io::{BufRead, BufReader, Read};
    let mut file =
        BufReader::new(fs::File::open(csv).with_context(|| format!("reading {}", csv.display()))?);
    // The shipped CSV is gzip-compressed (told by its magic bytes, as the
    // agent's `read_csv` tells them).
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let text: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut counts: Vec<(String, u64)> = Vec::new();
    for line in BufReader::new(text).lines().skip(1) {
        let line = line.with_context(|| format!("reading {}", csv.display()))?;
        let t = line.rsplit(',').next().unwrap_or("");
        match counts.iter_mut().find(|(k, _)| k == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.to_string(), 1)),
        }
    }
    counts.sort();
    Ok(counts)
}

/// Rows per source group (each benign client address separately); fails if
/// any sample came from a source no scenario owns.
fn count_by_source(bin: &Path, capture: &Path, work: &Path) -> Result<()> {
    let out = work.join("by-source.csv");
    cmd::output(
        s(bin),
        &[
            "dataset",
            "--quiet",
            "--capture",
            s(capture),
            "--labels",
            s(&work.join("labels-count.txt")),
            "--sample-every",
            "1",
            "--out",
            s(&out),
        ],
    )?;
    let counts = count_types(&out)?;
    println!("gen-model: samples per scenario (by source)");
    let mut stray = 0;
    for (t, n) in &counts {
        println!("  {t:<18} {n:>7}");
        if t == "unattributed" || t == "unknown_source" {
            stray += n;
        }
    }
    if stray > 0 {
        bail!("{stray} samples came from sources no scenario owns");
    }
    Ok(())
}

/// Step 5.
fn train(root: &Path, bin: &Path, csv: &Path, work: &Path) -> Result<()> {
    println!("gen-model: rows per attack_type in {}", csv.display());
    for (t, n) in count_types(csv)? {
        println!("  {t:<18} {n:>7}");
    }
    let models = root.join(MODELS_DIR);
    // A fresh registry: this task owns model-v*.pnm and registry.json.
    for e in fs::read_dir(&models)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "registry.json" || (name.starts_with("model-v") && name.ends_with(".pnm")) {
            fs::remove_file(&p)?;
        }
    }
    let created_at = fs::read_to_string(work.join("created_at"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".into());
    let seed = SEED.to_string();
    cmd::run(
        s(bin),
        &[
            "train",
            "--quiet",
            "--data",
            s(csv),
            "--out",
            s(&models),
            "--seed",
            &seed,
            "--created-at",
            &created_at,
        ]
        .into_iter()
        .chain(TRAIN_FLAGS.iter().copied())
        .collect::<Vec<_>>(),
    )?;
    let heldout = work.join("heldout.csv");
    cmd::run(
        "cargo",
        &[
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "phantomnet-tests",
            "--example",
            "model_report",
            "--",
            s(&models),
            s(csv),
            s(&heldout),
        ],
    )?;
    let eval = work.join("eval");
    cmd::run(
        s(bin),
        &[
            "evaluate",
            "--quiet",
            "--model",
            s(&models),
            "--data",
            s(&heldout),
            "--out-dir",
            s(&eval),
        ],
    )?;
    let img = root.join(IMG_DIR);
    fs::create_dir_all(&img)?;
    for (from, to) in [
        ("confusion_matrix.png", "model-confusion-matrix.png"),
        ("roc_curve.png", "model-roc-curve.png"),
    ] {
        fs::copy(eval.join(from), img.join(to))?;
    }
    println!("gen-model: plots in {IMG_DIR}/model-confusion-matrix.png and model-roc-curve.png");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::count_types;
    use std::io::Write;

    #[test]
    fn rows_per_type_are_counted_in_a_plain_and_a_gzip_csv() {
        let dir = std::env::temp_dir().join(format!("pn-count-types-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "a,label,attack_type\n1,1,syn_flood\n2,0,benign\n3,1,syn_flood\n";
        let plain = dir.join("d.csv");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.join("d.csv.gz");
        let mut w = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap();
        let want = vec![("benign".to_string(), 1), ("syn_flood".to_string(), 2)];
        let got = (count_types(&plain).unwrap(), count_types(&gz).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, (want.clone(), want));
    }
}
