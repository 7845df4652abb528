//! `cargo xtask demo`: PhantomNet doing its whole job on real traffic.
//!
//! It brings up the namespace lab, starts the agent with the shipped model,
//! runs benign clients the whole time and real attack tools one after
//! another, prints decisions live, and ends with one row per source: the
//! action, the time from the source's first packet to enforcement, and the
//! packets dropped / throttled and connections redirected. The exit status
//! is non-zero if a benign client was acted on or an attack went unenforced.
//!
//! The agent runs as shipped: sampling 1 in 16 with priority sampling,
//! scoring on change (`--scoring` picks the other). With `--heavy-clients`
//! the heavier benign kinds run too ([`crate::demo_clients`]: a bulk
//! download, a throughput test, a health checker, an IPv6 browser), and
//! the run FAILs if any of them is acted on, as it does in most runs with
//! the shipped model (README.md).
//!
//! Times come from the data plane itself: the agent records every sample
//! (`--capture`), and a sample carries the kernel's timestamp and the
//! action XDP took. Time to enforcement is the first dropped sample's
//! timestamp minus the source's first sample's; for a deceived source, the
//! journal's enforcement time (converted to the same clock) minus the first
//! sample's. At 1 in 16 the first sample is the first packet when that
//! packet opens a connection or starts a flow (a priority sample), and the
//! first dropped packet is seen only when it is sampled too, so the figure
//! is an upper bound.
use std::{
    collections::BTreeMap,
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use phantomnet_common::{Action, action};

use phantomnet_lab::{
    agent::{AgentRun, AgentSpec},
    lab::{Lab, LabOptions, Role, addr},
    proc::Bg,
    traffic::{Scenario, Servers},
};

use crate::demo_flood::spoofed_flood;
use crate::{cmd, demo_clients};

pub const LAB: &str = "pn";
/// The shipped default (`dataplane.sample_every`).
const SAMPLE_EVERY: u32 = 16;
/// The shipped default (`enforcement.ipv6_source_prefix`), written into
/// the lab's config: an IPv6 source's rules and journal entries are for
/// its /64, and the result table looks them up by it.
const IPV6_SOURCE_PREFIX: u8 = 64;

/// The source key the agent gives `ip`: IPv4 as it is, IPv6 its
/// [`IPV6_SOURCE_PREFIX`] network.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            ipnet::Ipv6Net::new(v6, IPV6_SOURCE_PREFIX).map_or(ip, |n| IpAddr::V6(n.trunc().addr()))
        }
    }
}

/// Where a demo keeps its files (removed at the end unless the lab is kept).
pub struct Paths {
    pub dir: PathBuf,
    pub pins: PathBuf,
}

impl Paths {
    pub fn new(name: &str) -> Paths {
        Paths {
            dir: PathBuf::from(format!("/tmp/phantomnet-{name}")),
            pins: PathBuf::from(format!("/sys/fs/bpf/phantomnet-{name}")),
        }
    }
    pub fn file(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The honeypot's listeners: an SSH-ish banner on 2222 and HTTP on 8080.
const HONEYPOT_PY: &str = r#"
import socket, threading
def serve(port, reply):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(512)
    while True:
        c, _ = s.accept()
        try:
            c.settimeout(0.5)
            c.sendall(reply)
        except OSError:
            pass
        finally:
            c.close()
for port, reply in [(2222, b"SSH-2.0-OpenSSH_7.4 honeypot\r\n"), (8080, b"HTTP/1.0 200 OK\r\n\r\nhoneypot\n")]:
    threading.Thread(target=serve, args=(port, reply), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// Starts the honeypot listeners in the `hp` namespace.
pub fn start_honeypot(lab: &Lab) -> Result<Bg> {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &lab.ns(Role::Hp),
        "python3",
        "-u",
        "-c",
        HONEYPOT_PY,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let bg = Bg::spawn(c, "the honeypot")?;
    thread::sleep(Duration::from_millis(300));
    Ok(bg)
}

/// The agent's config for the lab; `scoring` sets `[detection] scoring`
/// (`None`: the built-in default).
pub fn write_config(
    root: &Path,
    p: &Paths,
    feed: &str,
    sample_every: u32,
    scoring: Option<&str>,
) -> Result<PathBuf> {
    fs::create_dir_all(&p.dir)?;
    fs::write(p.file("intel.txt"), feed)?;
    let cfg = format!(
        r#"# Written by cargo xtask for the namespace lab.
[dataplane]
interfaces = ["out0"]
inside_interfaces = ["in0"]
xdp_mode = "native"
pin_dir = "{pins}"
sample_every = {sample_every}

[enforcement]
ipv6_source_prefix = {IPV6_SOURCE_PREFIX}
block_ttl_secs = 600
throttle_ttl_secs = 300
deceive_ttl_secs = 300
throttle_rate_pps = 50
throttle_burst = 10

[[honeypot]]
port = 22
target = "{hp}:2222"

[[honeypot]]
port = 80
target = "{hp}:8080"

[intel]
feed = "{feed}"

[model]
path = "{model}"

[api]
socket = "{socket}"

[journal]
path = "{journal}"
{detection}"#,
        pins = s(&p.pins),
        hp = addr::HP4,
        feed = s(&p.file("intel.txt")),
        model = s(&root.join("models")),
        socket = s(&p.file("agent.sock")),
        journal = s(&p.file("journal")),
        detection = scoring.map_or(String::new(), |sc| format!(
            "\n[detection]\nscoring = \"{sc}\"\n"
        )),
    );
    let path = p.file("agent.toml");
    fs::write(&path, cfg)?;
    Ok(path)
}

/// Starts `phantomnet-agent run` in the gateway namespace and waits until it serves.
pub fn start_agent(
    lab: &Lab,
    bin: &Path,
    config: &Path,
    capture: &Path,
    log: &Path,
) -> Result<AgentRun> {
    let args = [
        "run",
        "--config",
        s(config),
        "--stats-interval",
        "5",
        "--capture",
        s(capture),
    ];
    let mut agent = AgentRun::spawn(AgentSpec {
        netns: &lab.netns_path(Role::Gw),
        bin,
        args: args.map(String::from).to_vec(),
        log,
        cpu: None,
    })?;
    agent.wait_serving()?;
    Ok(agent)
}

/// (CLOCK_REALTIME - CLOCK_MONOTONIC) in ns, to put journal times on the
/// data plane's clock.
pub fn realtime_minus_monotonic() -> i128 {
    use nix::time::{ClockId, clock_gettime};
    let ns = |c| {
        let t = clock_gettime(c).expect("clock");
        t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128
    };
    let m1 = ns(ClockId::CLOCK_MONOTONIC);
    let r = ns(ClockId::CLOCK_REALTIME);
    let m2 = ns(ClockId::CLOCK_MONOTONIC);
    r - (m1 + m2) / 2
}

/// Per-source facts from a capture file.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceTrace {
    pub first_ns: u64,
    pub first_drop_ns: Option<u64>,
    pub packets: u64,
    pub blocked: u64,
    pub throttled: u64,
}

/// Per source, from an agent capture file (read with the common format).
pub fn read_capture(path: &Path) -> Result<BTreeMap<IpAddr, SourceTrace>> {
    let mut out: BTreeMap<IpAddr, SourceTrace> = BTreeMap::new();
    for smp in phantomnet_lab::capture::read(path)? {
        let t = out.entry(smp.src_ip()).or_default();
        if t.packets == 0 || smp.timestamp_ns < t.first_ns {
            t.first_ns = smp.timestamp_ns;
        }
        t.packets += 1;
        let dropped = match smp.action_code() {
            action::BLOCK => {
                t.blocked += 1;
                true
            }
            action::THROTTLE => {
                t.throttled += 1;
                true
            }
            _ => false,
        };
        if dropped && t.first_drop_ns.is_none_or(|d| smp.timestamp_ns < d) {
            t.first_drop_ns = Some(smp.timestamp_ns);
        }
    }
    Ok(out)
}

/// `phantomctl --json <args>` against the demo agent.
pub fn ctl_json(ctl: &Path, socket: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let mut full = vec!["--socket", s(socket), "--json"];
    full.extend_from_slice(args);
    let out = cmd::output(s(ctl), &full)?;
    serde_json::from_str(&out).with_context(|| format!("phantomctl said {out:?}"))
}

/// The strongest enforcement each source got, with the journal record.
#[derive(Clone, Debug)]
pub struct Enforced {
    pub action: Action,
    pub time_unix_ns: u64,
    pub rule: String,
    pub verdict: String,
}

/// From the journal: per source, the strongest action enforced by the
/// detector and when it was first enforced.
pub fn enforced_by_source(ctl: &Path, socket: &Path) -> Result<BTreeMap<IpAddr, Enforced>> {
    let events = ctl_json(ctl, socket, &["events", "--limit", "1000"])?;
    let mut out: BTreeMap<IpAddr, Enforced> = BTreeMap::new();
    for e in events.as_array().into_iter().flatten() {
        let action = Action::from_name(e["action"].as_str().unwrap_or_default());
        let reason = e["reason"].as_str().unwrap_or_default();
        let Some(action) = action.filter(|a| a.rule_kind().is_some()) else {
            continue;
        };
        if e["rule"] == "api" || !reason.contains("; enforced") {
            continue;
        }
        let Ok(src) = e["source"].as_str().unwrap_or_default().parse::<IpAddr>() else {
            continue;
        };
        let t = e["time_unix_ns"].as_u64().unwrap_or(0);
        let new = Enforced {
            action,
            time_unix_ns: t,
            rule: e["rule"].as_str().unwrap_or_default().to_string(),
            verdict: e["verdict"].as_str().unwrap_or_default().to_string(),
        };
        match out.get_mut(&src) {
            None => {
                out.insert(src, new);
            }
            Some(old) => {
                let first = old.time_unix_ns.min(t);
                if action > old.action {
                    *old = new;
                }
                old.time_unix_ns = first;
            }
        }
    }
    Ok(out)
}

/// Connections each deceived source had redirected (nft element counters).
pub fn redirected(lab: &Lab) -> BTreeMap<IpAddr, u64> {
    let mut out = BTreeMap::new();
    // The agent's host and prefix sets (`enforce::nft`), both families.
    for set in [
        "deceived_hosts_v4",
        "deceived_v4",
        "deceived_hosts_v6",
        "deceived_nets64_v6",
        "deceived_v6",
    ] {
        let Ok(text) = cmd::output(
            "ip",
            &[
                "netns",
                "exec",
                &lab.ns(Role::Gw),
                "nft",
                "-j",
                "list",
                "set",
                "inet",
                "phantomnet",
                set,
            ],
        ) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for obj in v["nftables"].as_array().into_iter().flatten() {
            for e in obj["set"]["elem"].as_array().into_iter().flatten() {
                let el = &e["elem"];
                if let Some(ip) = el["val"].as_str().and_then(|x| x.parse().ok()) {
                    out.insert(ip, el["counter"]["packets"].as_u64().unwrap_or(0));
                }
            }
        }
    }
    out
}

/// Stops and removes what the demo created: the agent, its pins, the lab
/// (which takes the nft table with the gateway namespace), its files.
struct Teardown<'a> {
    lab: &'a Lab,
    agent_bin: &'a Path,
    paths: &'a Paths,
    keep: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if self.keep {
            println!(
                "\nThe lab {} is still up (cargo xtask lab down --name {} removes it; the agent's pins are under {}).",
                self.lab.prefix(),
                self.lab.prefix(),
                self.paths.pins.display()
            );
            return;
        }
        let _ = cmd::output(
            s(self.agent_bin),
            &["--pin-dir", s(&self.paths.pins), "detach"],
        );
        let _ = self.lab.down();
        let _ = fs::remove_dir_all(&self.paths.dir);
    }
}

fn ms(ns: i128) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// What `cargo xtask demo` runs.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// Leave the lab (and the agent's pins) up afterwards.
    pub keep_lab: bool,
    /// Also run [`demo_clients`].
    pub heavy_clients: bool,
    /// `[detection] scoring` (`None`: the built-in default).
    pub scoring: Option<String>,
}

pub fn demo(root: &Path, opts: DemoOptions) -> Result<()> {
    let DemoOptions {
        keep_lab,
        heavy_clients,
        scoring,
    } = opts;
    if !root.join("models/registry.json").exists() {
        bail!("no shipped model in models/ (cargo xtask gen-model makes one)");
    }
    let agent_bin = cmd::build_release_agent(root)?;
    let ctl = agent_bin.with_file_name("phantomctl");
    let paths = Paths::new("demo");
    let _ = fs::remove_dir_all(&paths.dir);
    let lab = Lab::new(LAB, LabOptions::default());
    let _ = cmd::output(s(&agent_bin), &["--pin-dir", s(&paths.pins), "detach"]);
    lab.up()?;
    let _teardown = Teardown {
        lab: &lab,
        agent_bin: &agent_bin,
        paths: &paths,
        keep: keep_lab,
    };

    // One attacker is on a threat-intelligence feed: the BLOCK path needs
    // the feed (0.5 of the threat score) on top of the model.
    let plan: Vec<(Scenario, String)> = Scenario::ATTACKS
        .iter()
        .enumerate()
        .map(|(i, sc)| (*sc, addr::atk_src4(i as u8)))
        .collect();
    let feed_src = plan
        .iter()
        .find(|(sc, _)| *sc == Scenario::SynFlood)
        .map(|(_, src)| src.clone())
        .unwrap_or_default();
    let config = write_config(
        root,
        &paths,
        &format!("{feed_src} botnet-c2 0.9\n"),
        SAMPLE_EVERY,
        scoring.as_deref(),
    )?;
    let _servers = Servers::start(&lab)?;
    let _iperf = if heavy_clients {
        Some(demo_clients::start_iperf_server(&lab)?)
    } else {
        None
    };
    let _honeypot = start_honeypot(&lab)?;
    let capture = paths.file("demo.pncap");
    let mut agent = start_agent(
        &lab,
        &agent_bin,
        &config,
        &capture,
        &paths.file("agent.log"),
    )?;
    let socket = paths.file("agent.sock");
    let offset = realtime_minus_monotonic();

    println!(
        "\n=== PhantomNet demo: the agent runs on {}-gw out0 with the shipped model ===",
        LAB
    );
    println!("(live decisions below: #id time source action verdict scores reason)\n");
    let mut watcher = {
        let mut c = Command::new(&ctl);
        c.args(["--socket", s(&socket), "events", "--follow"])
            .stdin(Stdio::null());
        Bg::spawn(c, "phantomctl events --follow")?
    };

    // Benign clients, the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let mut benign = Vec::new();
    for (sc, src) in Scenario::BENIGN.iter().zip(addr::CLI_SRC4) {
        let (sc, stop, lab) = (*sc, stop.clone(), lab.clone());
        benign.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = sc.run(&lab, src, sc.default_budget(), 1.0) {
                    eprintln!("demo: {}: {e:#}", sc.name());
                    thread::sleep(Duration::from_secs(1));
                }
            }
        }));
    }
    if heavy_clients {
        benign.extend(demo_clients::start(&lab, &stop));
    }
    thread::sleep(Duration::from_secs(2));
    for (sc, src) in &plan {
        println!("\n>>> attack: {} from {src}", sc.name());
        match sc.run(&lab, src, sc.default_budget(), 1.0) {
            Ok(r) => println!(">>> done: {r}"),
            Err(e) => println!(">>> {} failed to run: {e:#}", sc.name()),
        }
    }
    let flood = spoofed_flood(&lab, &ctl, &socket)?;
    stop.store(true, Ordering::Relaxed);
    for b in benign {
        let _ = b.join();
    }
    thread::sleep(Duration::from_millis(1500));
    watcher.stop_with(Signal::SIGTERM, Duration::from_secs(2));

    // The table.
    let enforced = enforced_by_source(&ctl, &socket)?;
    let redirected = redirected(&lab);
    agent.stop(Duration::from_secs(5));
    let traces = read_capture(&capture)?;
    let mut rows: Vec<(String, String, bool)> = plan
        .iter()
        .map(|(sc, src)| (src.clone(), sc.name().to_string(), true))
        .collect();
    for (sc, src) in Scenario::BENIGN.iter().zip(addr::CLI_SRC4) {
        rows.push((src.to_string(), sc.name().to_string(), false));
    }
    if heavy_clients {
        for c in demo_clients::clients() {
            rows.push((c.src, c.kind.name().to_string(), false));
        }
    }
    println!("\n=== Result: one row per source ===\n");
    println!(
        "{:<18} {:<15} {:<9} {:>13} {:>9} {:>8} {:>10} {:>10}  REASON",
        "SOURCE",
        "TRAFFIC",
        "ACTION",
        "TO ENFORCE",
        "SAMPLED",
        "DROPPED",
        "THROTTLED",
        "REDIRECTED",
    );
    let mut failures = Vec::new();
    for (src, what, attack) in &rows {
        let ip: IpAddr = src.parse().expect("lab address");
        let trace = traces.get(&ip).copied().unwrap_or_default();
        // The journal names an IPv6 source by its /64.
        let e = enforced.get(&source_key(ip));
        let action = e.map_or("none", |e| e.action.name());
        let tte = match (e, trace.first_drop_ns) {
            (_, Some(d)) if trace.packets > 0 => ms(i128::from(d) - i128::from(trace.first_ns)),
            (Some(e), None) if trace.packets > 0 => {
                ms(i128::from(e.time_unix_ns) - offset - i128::from(trace.first_ns))
            }
            _ => "-".into(),
        };
        let reason = e
            .map(|e| format!("{} ({})", e.rule, e.verdict))
            .unwrap_or_default();
        println!(
            "{:<18} {:<15} {:<9} {:>13} {:>9} {:>8} {:>10} {:>10}  {}",
            src,
            what,
            action,
            tte,
            trace.packets,
            trace.blocked,
            trace.throttled,
            // A host's own element, or its /64's (IPv6).
            redirected
                .get(&ip)
                .or_else(|| redirected.get(&source_key(ip)))
                .copied()
                .unwrap_or(0),
            reason
        );
        if *attack && e.is_none() {
            failures.push(format!("attack {what} from {src} went unenforced"));
        }
        if !*attack && e.is_some() {
            failures.push(format!("benign {what} from {src} was acted on ({action})"));
        } else if !*attack && trace.blocked + trace.throttled > 0 {
            // Dropped in XDP by a rule the journal did not show (e.g. one
            // enforced before the events the table reads).
            failures.push(format!(
                "benign {what} from {src} had {} samples dropped",
                trace.blocked + trace.throttled
            ));
        }
    }
    println!(
        "\n(SAMPLED, DROPPED, THROTTLED: the source's samples, 1 in {SAMPLE_EVERY} of its packets plus its priority samples, and those of them XDP dropped. TO ENFORCE: from the source's first sample at the gateway to its first dropped sample, or to the DNAT rule for a deceived source; an upper bound, see `cargo xtask bench-tte`.)"
    );
    println!(
        "\n=== Spoofed flood: every packet from a new source, answered by a signature rule ===\n"
    );
    println!("{flood}");
    if flood.rules.is_empty() || flood.dropped == 0 {
        failures.push("the spoofed flood got no signature rule that dropped it".to_string());
    }
    if failures.is_empty() {
        println!("\nPASS: every attack was enforced and no benign client was touched.");
        Ok(())
    } else {
        for f in &failures {
            println!("FAIL: {f}");
        }
        bail!("{} problem(s)", failures.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_source_is_looked_up_by_its_64_and_ipv4_as_it_is() {
        let v6: IpAddr = "2001:db8:100::31".parse().unwrap();
        assert_eq!(source_key(v6), "2001:db8:100::".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "198.51.100.29".parse().unwrap();
        assert_eq!(source_key(v4), v4);
    }
}
