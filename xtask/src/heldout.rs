//! `cargo xtask record-heldout`: the tool-disjoint held-out corpus
//! (docs/HELDOUT.md). Never train or tune on it.
//!
//! 1. Build the agent (release).
//! 2. Bring up a lab of its own (`pnho-*`, pins in `/sys/fs/bpf/pnho`),
//!    one extra host namespace per scenario on the outside segment, a NAT
//!    router with four clients behind it, and real servers in `pnho-srv`
//!    (nginx, OpenSSH, dnsmasq, iperf3, chronyd:
//!    [`phantomnet_lab::traffic::heldout`]).
//! 3. Record with `phantomnet-agent run --sample-rate 1 --capture` in the
//!    gateway, exactly as `gen-model` does, while the attacks run one after
//!    another and benign sessions run in lanes around them. Rates, ports,
//!    counts, payloads and pauses come from a seeded generator; the seed is
//!    printed, and `--seed` repeats the plan.
//! 4. Stop the agent (SIGTERM flushes the capture), remove the lab, the
//!    extra namespaces (their nft table with them) and the pins, also on
//!    error.
//! 5. Write `target/heldout/labels.txt` (`CIDR SCENARIO`, `benign_*` for
//!    benign sources), `runs.txt` (every run's tool, sources and drawn
//!    parameters) and count the capture's samples per scenario; live,
//!    replay the capture (`replay-report.txt`) and report per source what
//!    was put in force (`live-report.txt`). `--corpus second` writes to
//!    `target/heldout-second/` instead.
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;

use crate::cmd;
use crate::dataset::{Cleanup, capture_while, count_types, print_capture_stats};
use phantomnet_lab::lab::{Lab, LabOptions};
use phantomnet_lab::traffic::heldout::{
    self, Corpus, Ctx, HeldoutServers, LAN, Outcome, Plan, Ports, Rng, Run,
};

/// The lab's namespace prefix and pin directory.
pub const PREFIX: &str = "pnho";
pub const PIN_DIR: &str = "/sys/fs/bpf/pnho";
/// The capture, labels, run list and logs, relative to the workspace root
/// (the first corpus's; the second's is [`work_dir`]).
pub const WORK_DIR: &str = "target/heldout";

/// Where a corpus's recording goes: `target/heldout` for the first,
/// `target/heldout-second` for the second.
pub fn work_dir(corpus: Corpus) -> String {
    match corpus {
        Corpus::First => WORK_DIR.to_string(),
        c => format!("{WORK_DIR}-{c}"),
    }
}
/// Benign sessions: every kind this many times (fresh draws each pass),
/// as long as the attacks last, and at least the first pass.
const PASSES: usize = 2;
/// Benign sessions run side by side.
const LANES: usize = 3;
/// Benign traffic alone before the first attack, and after the last.
const LEAD_SECS: f64 = 6.0;

#[derive(Clone, Debug, Default)]
pub struct HeldoutOptions {
    /// Repeats a plan; otherwise drawn from the clock.
    pub seed: Option<u64>,
    /// Run the agent live with the shipped model at the shipped defaults
    /// (enforcing) instead of recording every packet, and report per
    /// source what it put in force.
    pub live: bool,
    /// Which held-out corpus to draw the plan from.
    pub corpus: Corpus,
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub fn record_heldout(root: &Path, opts: &HeldoutOptions) -> Result<()> {
    if !crate::prereq::is_root() {
        bail!("record-heldout runs a namespace lab and loads XDP: run as root");
    }
    let t0 = Instant::now();
    let bin = cmd::build_release_agent(root)?;
    let seed = opts.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let corpus = opts.corpus;
    println!(
        "record-heldout: the {corpus} corpus, seed {seed} (repeat this plan with --corpus {corpus} --seed {seed})"
    );
    let work = root.join(work_dir(corpus));
    let run_dir = work.join("run");
    let srv_dir = work.join("srv");
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(&run_dir)?;
    let mut rng = Rng::new(seed);
    let ports = Ports::draw(&mut rng);
    let key = srv_dir.join("client_ed25519");
    let ctx = Ctx {
        ports,
        work: &run_dir,
        key: &key,
    };
    let plan = heldout::plan(&mut rng, &ctx, PASSES, corpus);
    let gaps: Vec<f64> = (0..plan.attacks.len() + plan.benign.len())
        .map(|_| rng.float(0.4, 2.0))
        .collect();
    println!(
        "record-heldout: {} attack runs, {} benign sessions planned, {} hosts; nginx also on :{}, sshd also on :{}, iperf3 on :{}, iperf 2 on :{}",
        plan.attacks.len(),
        plan.benign.len(),
        plan.hosts.len() + 1,
        ports.http_alt,
        ports.ssh_alt,
        ports.iperf,
        ports.iperf2()
    );
    fs::write(work.join("runs.txt"), runs_text(&plan, seed, corpus))?;
    let capture = work.join("heldout.pncap");
    let t_rec = Instant::now();
    let models = root.join(crate::dataset::MODELS_DIR);
    let live = opts.live.then_some(models.as_path());
    let (outcomes, rules) = record(
        &bin, &capture, &plan, ports, &srv_dir, &gaps, &mut rng, live,
    )?;
    println!(
        "record-heldout: recorded in {:.0} s (lab up, traffic, lab down)",
        t_rec.elapsed().as_secs_f64()
    );
    println!("record-heldout: traffic sent");
    let mut text = format!("# {corpus} corpus, seed {seed}: the runs that ran\n");
    for o in &outcomes {
        println!("  {o}");
        let _ = writeln!(text, "{o}");
    }
    fs::write(work.join("outcomes.txt"), text)?;
    let header = format!(
        "cargo xtask record-heldout --corpus {corpus} --seed {seed}: one host per scenario"
    );
    let mut labels = heldout::labels(&plan, &header);
    // Kernel control traffic (MLD reports when the hosts' links come up).
    labels.push_str("fe80::/10 benign_link_local\n");
    let labels_path = work.join("labels.txt");
    fs::write(&labels_path, &labels)?;
    if let Some(rules) = rules {
        fs::write(work.join("live-rules.txt"), &rules)?;
        let seen = replay_sources(&bin, &capture, &labels_path, &work, &models)?;
        let report = live_report(&labels, &rules, &seen)?;
        println!("{report}");
        fs::write(work.join("live-report.txt"), &report)?;
    } else {
        count_by_scenario(&bin, &capture, &work, &labels)?;
    }
    println!(
        "record-heldout: done in {:.0} s; {} and {}",
        t0.elapsed().as_secs_f64(),
        capture.display(),
        labels_path.display()
    );
    Ok(())
}

/// Every planned run with its drawn parameters (scripts elided).
fn runs_text(plan: &Plan, seed: u64, corpus: Corpus) -> String {
    let mut t = format!(
        "# cargo xtask record-heldout --corpus {corpus} --seed {seed}: every planned run (benign sessions of the second pass run only while attacks last)\n"
    );
    for (kind, runs) in [("attack", &plan.attacks), ("benign", &plan.benign)] {
        for r in runs.iter() {
            let argv: Vec<&str> = r
                .argv
                .iter()
                .map(|a| {
                    if a.contains('\n') {
                        "<script>"
                    } else {
                        a.as_str()
                    }
                })
                .collect();
            let _ = writeln!(
                t,
                "{kind} {} [{}] from {} in {}-{} ({:.1} s max): {}\n    {}",
                r.scenario,
                r.tool,
                r.sources.join(" "),
                PREFIX,
                r.ns,
                r.secs,
                r.what,
                argv.join(" ")
            );
        }
    }
    t
}

/// Steps 2–4.
#[allow(clippy::too_many_arguments)]
fn record(
    bin: &Path,
    capture: &Path,
    plan: &Plan,
    ports: Ports,
    srv_dir: &Path,
    gaps: &[f64],
    rng: &mut Rng,
    live: Option<&Path>,
) -> Result<(Vec<Outcome>, Option<String>)> {
    let lab = Lab::new(PREFIX, LabOptions { ipv6: true });
    let mut extra: Vec<String> = plan.hosts.iter().map(|h| h.name.clone()).collect();
    extra.push(LAN.to_string());
    let cleanup = Cleanup {
        lab: lab.clone(),
        bin: bin.to_path_buf(),
        pin_dir: PIN_DIR,
        extra,
    };
    cleanup.run(); // leftovers of an interrupted run
    lab.up()?;
    for h in &plan.hosts {
        lab.add_outside_host(&h.name, &h.mac, &h.v4, Some(&h.v6))?;
    }
    heldout::nat_up(&lab)?;
    let servers = HeldoutServers::start(&lab, srv_dir, ports, rng)?;
    println!(
        "record-heldout: {} servers up in {PREFIX}-srv",
        servers.count()
    );
    let log_path = capture.with_file_name("agent.log");
    let (outcomes, stats) = capture_while(&lab, bin, PIN_DIR, capture, &log_path, live, || {
        traffic(&lab, plan, gaps, live.is_some())
    })?;
    // What the live agent put in force stays pinned after it exits, until
    // the cleanup detaches the pins.
    let rules = match live {
        Some(_) => Some(cmd::output(s(bin), &["--pin-dir", PIN_DIR, "list"])?),
        None => None,
    };
    drop(servers);
    drop(cleanup);
    let outcomes = outcomes?;
    print_capture_stats("record-heldout", &stats, capture);
    Ok((outcomes, rules))
}

/// An address prefix of `phantomnet-agent list` or of a labels file.
fn prefix(text: &str) -> Option<IpNet> {
    text.parse().ok()
}

/// The sources the live capture holds samples of: replays it through
/// the live decision path (its own config and model, 1-in-16) and reads the sources
/// of `decisions.csv` (bare addresses, or /64 prefixes for IPv6). The
/// replay's per-scenario report goes to `replay-report.txt`.
fn replay_sources(
    bin: &Path,
    capture: &Path,
    labels: &Path,
    work: &Path,
    models: &Path,
) -> Result<Vec<IpNet>> {
    let decisions = work.join("decisions.csv");
    let report = cmd::output(
        s(bin),
        &[
            "replay",
            "--capture",
            s(capture),
            "--labels",
            s(labels),
            "--config",
            s(&work.join("live.toml")),
            "--recorded-every",
            "16",
            "--model",
            s(models),
            "--decisions",
            s(&decisions),
        ],
    )?;
    fs::write(work.join("replay-report.txt"), report)?;
    let text = fs::read_to_string(&decisions)?;
    sources_of(&text)
}

/// The distinct sources (first column) of a `replay --decisions` CSV.
fn sources_of(decisions_csv: &str) -> Result<Vec<IpNet>> {
    let mut seen = std::collections::BTreeSet::new();
    for l in decisions_csv.lines().skip(1) {
        let col = l.split(',').next().unwrap_or("");
        let net = match prefix(col) {
            Some(n) => n,
            None => IpNet::from(
                col.parse::<std::net::IpAddr>()
                    .with_context(|| format!("decisions: a source {col:?}"))?,
            ),
        };
        seen.insert(net);
    }
    Ok(seen.into_iter().collect())
}

/// Per scenario, the sources the live agent enforced on: a BLOCK or
/// THROTTLE rule covering the source's address (DECEIVE falls back to
/// THROTTLE at the shipped defaults, which configure no honeypot).
/// A labelled source no sample in `seen` came from sent nothing through the
/// gateway (its tool failed before sending): it is named and not counted.
fn live_report(labels: &str, rules: &str, seen: &[IpNet]) -> Result<String> {
    let in_force: Vec<(String, IpNet)> = rules
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let kind = w.next()?;
            let p = prefix(w.next()?)?;
            matches!(kind, "BLOCK" | "THROTTLE").then(|| (kind.to_string(), p))
        })
        .collect();
    let mut per: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    let mut named = Vec::new();
    let (mut attacks, mut caught, mut benign, mut acted) = (0, 0, 0, 0);
    for l in labels.lines().filter(|l| !l.starts_with('#')) {
        let mut w = l.split_whitespace();
        let (Some(cidr), Some(scenario)) = (w.next(), w.next()) else {
            continue;
        };
        if scenario == "benign_link_local" {
            continue;
        }
        let addr = prefix(cidr).with_context(|| format!("labels: {l}"))?.addr();
        if !seen.iter().any(|p| p.contains(&addr)) {
            named.push(format!(
                "- {scenario}: {addr} sent nothing through the gateway (not counted)"
            ));
            continue;
        }
        let hit = in_force.iter().find(|(_, p)| p.contains(&addr));
        let e = per.entry(scenario.to_string()).or_default();
        e.0 += 1;
        e.1 += u32::from(hit.is_some());
        if scenario.starts_with("benign_") {
            benign += 1;
            if let Some((kind, _)) = hit {
                acted += 1;
                named.push(format!("- benign {scenario}: {addr} {kind}"));
            }
        } else {
            attacks += 1;
            caught += u32::from(hit.is_some());
            if hit.is_none() {
                named.push(format!("- attack {scenario}: {addr} never enforced"));
            }
        }
    }
    let mut t = String::from(
        "Live, at the shipped defaults with the shipped model: what was in force at the end\n\n| scenario | sources | enforced |\n|---|---:|---:|\n",
    );
    for (sc, (n, k)) in &per {
        let _ = writeln!(t, "| {sc} | {n} | {k} |");
    }
    let _ = writeln!(
        t,
        "\nAttack sources enforced: {caught} of {attacks}. Benign sources acted on: {acted} of {benign}.\n"
    );
    for n in named {
        let _ = writeln!(t, "{n}");
    }
    Ok(t)
}

/// Step 3: benign lanes on their own threads, attacks one after another on
/// this one.
/// Live (`enforced`), a run that fails is reported, not an error: an
/// enforced attacker's tool may well fail, and so may a benign client's
/// (which the report then names).
fn traffic(lab: &Lab, plan: &Plan, gaps: &[f64], enforced: bool) -> Result<Vec<Outcome>> {
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    // The first pass always runs to its end.
    let first_pass = plan.benign.len() / PASSES;
    let start = Instant::now();
    let log = |r: &Run| {
        println!(
            "record-heldout: {:>6.1} s  {:<7} {:<18} {:<13} from {}",
            start.elapsed().as_secs_f64(),
            if r.is_attack() { "attack" } else { "benign" },
            r.scenario,
            r.tool,
            r.sources.join(" ")
        );
    };
    let exec = |r: &Run| match heldout::execute(lab, r) {
        Ok(o) => outcomes.lock().unwrap().push(o),
        Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
    };
    std::thread::scope(|sc| {
        for _ in 0..LANES {
            let (stop, next) = (stop.clone(), next.clone());
            let (exec, log) = (&exec, &log);
            sc.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plan.benign.len() || (i >= first_pass && stop.load(Ordering::Relaxed)) {
                        break;
                    }
                    let r = &plan.benign[i];
                    log(r);
                    exec(r);
                    std::thread::sleep(Duration::from_secs_f64(gaps[plan.attacks.len() + i]));
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(LEAD_SECS));
        for (i, r) in plan.attacks.iter().enumerate() {
            log(r);
            exec(r);
            std::thread::sleep(Duration::from_secs_f64(gaps[i]));
        }
        std::thread::sleep(Duration::from_secs_f64(LEAD_SECS / 2.0));
        stop.store(true, Ordering::Relaxed);
    });
    let errors = errors.lock().unwrap();
    if !errors.is_empty() {
        if !enforced {
            bail!("{} runs failed:\n  {}", errors.len(), errors.join("\n  "));
        }
        println!(
            "record-heldout: {} runs failed while the agent enforced:",
            errors.len()
        );
        for e in errors.iter() {
            println!("  {}", e.lines().next().unwrap_or(""));
        }
    }
    let mut o = std::mem::take(&mut *outcomes.lock().unwrap());
    o.sort_by_key(|o| {
        (
            o.scenario.starts_with("benign_"),
            o.scenario,
            o.sources.clone(),
        )
    });
    Ok(o)
}

/// Samples per scenario, with catch-alls that must stay empty.
fn count_by_scenario(bin: &Path, capture: &Path, work: &Path, labels: &str) -> Result<()> {
    let counting = work.join("labels-count.txt");
    fs::write(
        &counting,
        format!("{labels}0.0.0.0/0 unknown_source\n::/0 unknown_source\n"),
    )?;
    let out: PathBuf = work.join("by-scenario.csv");
    cmd::output(
        s(bin),
        &[
            "dataset",
            "--quiet",
            "--capture",
            s(capture),
            "--labels",
            s(&counting),
            "--sample-every",
            "1",
            "--out",
            s(&out),
        ],
    )?;
    println!("record-heldout: samples per scenario");
    let mut stray = 0;
    for (t, n) in count_types(&out)? {
        println!("  {t:<18} {n:>7}");
        if t == "unknown_source" {
            stray += n;
        }
    }
    if stray > 0 {
        println!("record-heldout: WARNING: {stray} samples came from sources no scenario owns");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_rule_covers_its_sources_and_names_the_rest() {
        let labels = "# header\n192.0.2.101/32 nmap_udp\n2001:db8:bad:101::1/128 nmap_udp\n\
                      192.0.2.109/32 ssh_hydra\n198.51.100.100/32 benign_download\n\
                      2001:db8:100:100::1/128 benign_download\nfe80::/10 benign_link_local\n";
        let rules = "KIND      PREFIX     TTL_LEFT HITS RATE BURST  REASON\n\
                     THROTTLE  192.0.2.101/32  590s - 1000 2000  detection: rule 5\n\
                     BLOCK     2001:db8:bad:101::/64  3500s 7 - -  detection: rule 3\n\
                     THROTTLE  198.51.100.100/32  580s - 1000 2000  detection: rule 2\n\
                     ALLOW     2001:db8:100:100::/64  never - - -  operator\n";
        let seen = sources_of(
            "source,scenario,after_ms\n192.0.2.101,nmap_udp,0\n2001:db8:bad:101::/64,nmap_udp,1\n\
             192.0.2.109,ssh_hydra,2\n198.51.100.100,benign_download,0\n\
             2001:db8:100:100::/64,benign_download,3\n192.0.2.101,nmap_udp,4\n",
        )
        .unwrap();
        assert_eq!(seen.len(), 5);
        let r = live_report(labels, rules, &seen).unwrap();
        assert!(r.contains("| nmap_udp | 2 | 2 |"), "{r}");
        assert!(r.contains("| ssh_hydra | 1 | 0 |"), "{r}");
        assert!(
            r.contains("Attack sources enforced: 2 of 3. Benign sources acted on: 1 of 2."),
            "{r}"
        );
        assert!(
            r.contains("- benign benign_download: 198.51.100.100 THROTTLE"),
            "{r}"
        );
        assert!(
            r.contains("- attack ssh_hydra: 192.0.2.109 never enforced"),
            "{r}"
        );
        // A source that sent nothing is named and counted on neither side.
        let quiet: Vec<IpNet> = seen
            .iter()
            .filter(|p| !p.contains(&"192.0.2.109".parse::<std::net::IpAddr>().unwrap()))
            .filter(|p| !p.contains(&"198.51.100.100".parse::<std::net::IpAddr>().unwrap()))
            .copied()
            .collect();
        let r = live_report(labels, rules, &quiet).unwrap();
        assert!(
            r.contains("Attack sources enforced: 2 of 2. Benign sources acted on: 0 of 1."),
            "{r}"
        );
        assert!(
            r.contains("- ssh_hydra: 192.0.2.109 sent nothing through the gateway (not counted)"),
            "{r}"
        );
        assert!(!r.contains("| ssh_hydra |"), "{r}");
        assert!(sources_of("source\nnot-an-address,x\n").is_err());
        // An IPv4 rule never covers an IPv6 address, nor a longer prefix a
        // shorter one's other half.
        let p = prefix("192.0.2.0/25").unwrap();
        let covers = |a: &str| p.contains(&a.parse::<std::net::IpAddr>().unwrap());
        assert!(covers("192.0.2.127"));
        assert!(!covers("192.0.2.128"));
        assert!(!covers("::ffff:192.0.2.1"));
    }
}
