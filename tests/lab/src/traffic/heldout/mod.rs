//! The tool-disjoint held-out corpora (`cargo xtask record-heldout`):
//! tools, scan modes, flags, services and rates the training recording
//! never uses, against real servers ([`HeldoutServers`]), from addresses
//! the training never uses. Two corpora ([`Corpus`]): the first
//! (`attacks.rs`, `benign.rs`), and a second (`attacks_second.rs`,
//! `benign_second.rs`) with none of the first's tools but two
//! (slowhttptest, in another mode; OpenSSH's client, as rsync's
//! transport), made to judge what was changed because of the first.
//!
//! Every scenario runs from its own **host**: a namespace of its own on
//! the outside segment ([`Lab::add_outside_host`]) with one IPv4 and one
//! IPv6 source, so tools without a source-address option (hydra, sqlmap,
//! slowhttptest, ab, hey) are labeled by source too. Attack hosts use
//! `192.0.2.100+` / `2001:db8:bad:(100+N)::1`, benign hosts `198.51.100.100+` /
//! `2001:db8:100:(100+N)::1`, the NAT `198.51.100.199` / `2001:db8:100:199::1`
//! (each IPv6 host in a /64 of its own, so the agent's default /64
//! grouping keeps them apart);
//! training uses `192.0.2.10–29`, `198.51.100.10–12, 20–51, 66` and
//! `2001:db8:{bad,100}::10–51, 66`.
//!
//! Each run's rates, ports, counts, payloads and pauses are drawn from a
//! seeded [`Rng`], so a seed repeats a plan. Every run is bounded in
//! packets or requests and in time (`timeout --kill-after=2`).
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod attacks;
mod attacks_second;
mod benign;
mod benign_second;
mod servers;
#[cfg(test)]
mod tests;

use crate::cmd;
use crate::lab::{Lab, addr};
pub use attacks::attacks;
pub use attacks_second::attacks_second;
pub use benign::{BENIGN_KINDS, benign};
pub use benign_second::{BENIGN_KINDS_SECOND, STATUS, benign_second};
pub use servers::{HeldoutServers, Ports};

/// SplitMix64: small, seedable, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    /// Uniform in `[lo, hi)`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.range(0, xs.len() as u32 - 1) as usize]
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.range(0, i as u32) as usize);
        }
    }

    /// `k` distinct elements, in random order.
    pub fn sample<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let mut v = xs.to_vec();
        self.shuffle(&mut v);
        v.truncate(k);
        v
    }
}

/// A namespace on the outside segment with one source per family.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace is `<prefix>-<name>`.
    pub name: String,
    pub mac: String,
    pub v4: String,
    pub v6: String,
}

/// Attack host `i`: `192.0.2.(100+i)`, `2001:db8:bad:(100+i)::1` (its own
/// /64; the group's digits are decimal text).
pub fn attack_host(i: u8) -> Host {
    Host {
        name: format!("a{i:02}"),
        mac: format!("02:50:4e:01:00:{i:02x}"),
        v4: format!("192.0.2.{}", 100 + u32::from(i)),
        v6: format!("2001:db8:bad:{}::1", 100 + u32::from(i)),
    }
}

/// Benign host `i`: `198.51.100.(100+i)`, `2001:db8:100:(100+i)::1` (its
/// own /64).
pub fn benign_host(i: u8) -> Host {
    Host {
        name: format!("b{i:02}"),
        mac: format!("02:50:4e:01:01:{i:02x}"),
        v4: format!("198.51.100.{}", 100 + u32::from(i)),
        v6: format!("2001:db8:100:{}::1", 100 + u32::from(i)),
    }
}

/// The NAT router; its clients sit in `<prefix>-lan` behind it.
pub fn nat_host() -> Host {
    Host {
        name: "nat".into(),
        mac: "02:50:4e:01:02:00".into(),
        v4: "198.51.100.199".into(),
        v6: "2001:db8:100:199::1".into(),
    }
}

/// The inside namespace's name (suffix) behind [`nat_host`].
pub const LAN: &str = "lan";
/// The nft table the NAT router's namespace holds.
pub const NAT_TABLE: &str = "pnho_nat";

/// One bounded tool run from one host.
#[derive(Clone, Debug)]
pub struct Run {
    /// The label (`benign_*` for benign traffic).
    pub scenario: &'static str,
    pub tool: &'static str,
    /// The namespace suffix it runs in.
    pub ns: String,
    /// The source addresses it sends from (what the labels name).
    pub sources: Vec<String>,
    /// The drawn parameters, for the log and the docs.
    pub what: String,
    pub argv: Vec<String>,
    /// The hard time bound.
    pub secs: f64,
    /// Exit codes accepted besides 0 and 124 (the time bound).
    pub also_ok: &'static [i32],
    /// Text the tool must print (stdout or stderr) for the run to count.
    pub expect: Option<&'static str>,
    /// Files to write before it runs (word lists, upload bodies).
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl Run {
    /// A run with nothing drawn yet: the generators fill in the rest.
    pub fn new(scenario: &'static str, tool: &'static str, ns: &str, sources: Vec<String>) -> Run {
        Run {
            scenario,
            tool,
            ns: ns.into(),
            sources,
            what: String::new(),
            argv: vec![],
            secs: 0.0,
            also_ok: &[],
            expect: None,
            files: vec![],
        }
    }

    pub fn is_attack(&self) -> bool {
        !self.scenario.starts_with("benign_")
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: &'static str,
    pub sources: Vec<String>,
    pub tool: &'static str,
    pub what: String,
    pub elapsed: Duration,
    pub status: Option<i32>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<18} {:<13} {:<40} {:>5.1} s  exit {}  {}",
            self.scenario,
            self.tool,
            self.sources.join(" "),
            self.elapsed.as_secs_f64(),
            self.status.map_or("signal".into(), |c| c.to_string()),
            self.what
        )
    }
}

/// Runs `run` in its namespace under `timeout --kill-after=2`.
pub fn execute(lab: &Lab, run: &Run) -> Result<Outcome> {
    for (path, data) in &run.files {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    }
    let ns = format!("{}-{}", lab.prefix(), run.ns);
    let t = format!("{:.1}", run.secs);
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "timeout", "--kill-after=2", &t])
        .args(&run.argv)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .with_context(|| format!("starting {}", run.argv.join(" ")))?;
    let elapsed = start.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code();
    let ok_code =
        matches!(code, Some(0) | Some(124)) || code.is_some_and(|c| run.also_ok.contains(&c));
    let tail = || {
        let t = text.trim();
        t[t.len().saturating_sub(600)..].to_string()
    };
    if !ok_code {
        bail!(
            "{} ({}) from {} in {ns}: {}: {}",
            run.scenario,
            run.tool,
            run.sources.join(" "),
            out.status,
            tail()
        );
    }
    if let Some(e) = run.expect
        && !text.contains(e)
    {
        bail!(
            "{} ({}) from {}: the output lacks {e:?}: {}",
            run.scenario,
            run.tool,
            run.sources.join(" "),
            tail()
        );
    }
    Ok(Outcome {
        scenario: run.scenario,
        sources: run.sources.clone(),
        tool: run.tool,
        what: run.what.clone(),
        elapsed,
        status: code,
    })
}

/// What the plan's generators need to know.
pub struct Ctx<'a> {
    pub ports: Ports,
    /// Per-run files (word lists, upload bodies, tool homes).
    pub work: &'a Path,
    /// The SSH client key root's (lab) `authorized_keys` holds.
    pub key: &'a Path,
}

/// The whole plan: attacks (run one after another) and benign sessions
/// (run in lanes around them), with the hosts they need.
pub struct Plan {
    pub attacks: Vec<Run>,
    pub benign: Vec<Run>,
    pub hosts: Vec<Host>,
}

fn s<T: ToString>(xs: &[T]) -> Vec<String> {
    xs.iter().map(ToString::to_string).collect()
}

/// `dst` for the family and a URL base on `port`.
fn target(v6: bool, port: u16) -> (&'static str, String) {
    let dst = if v6 { addr::SRV6 } else { addr::SRV4 };
    let host = if v6 {
        format!("[{dst}]")
    } else {
        dst.to_string()
    };
    let base = if port == 80 {
        format!("http://{host}")
    } else {
        format!("http://{host}:{port}")
    };
    (dst, base)
}

fn src(h: &Host, v6: bool) -> String {
    if v6 { h.v6.clone() } else { h.v4.clone() }
}

fn fam(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// A port list of `k` random ports from `1..=hi` (sorted, comma-joined).
fn port_list(rng: &mut Rng, k: usize, hi: u32) -> String {
    let all: Vec<u32> = (1..=hi).collect();
    let mut v = rng.sample(&all, k);
    v.sort_unstable();
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn gaps(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> String {
    (0..n)
        .map(|_| format!("{:.2}", rng.float(lo, hi)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn script(body: &str, args: Vec<String>) -> Vec<String> {
    let mut v = s(&["sh", "-c", body, "sh"]);
    v.extend(args);
    v
}

fn rng_k(rng: &mut Rng, lo: u32, hi: u32) -> usize {
    rng.range(lo, hi) as usize
}

/// The sum of a [`gaps`] list, in seconds.
fn total(gaps: &str) -> f64 {
    gaps.split(' ').filter_map(|t| t.parse::<f64>().ok()).sum()
}

/// A word list file's bytes: one word a line.
fn lines(xs: &[&str]) -> Vec<u8> {
    let mut t = xs.join("\n");
    t.push('\n');
    t.into_bytes()
}

/// Benign sessions of `kinds` kinds over IPv4 and IPv6, `passes` times
/// with fresh draws, each pass in a random order. Kind `k` runs from
/// benign host `k`, the last kind from the NAT's inside; `session` may
/// skip a kind for a family (`None`).
fn benign_passes(
    rng: &mut Rng,
    passes: usize,
    kinds: usize,
    mut session: impl FnMut(&mut Rng, usize, &Host, bool, usize) -> Option<Run>,
) -> (Vec<Run>, Vec<Host>) {
    let hosts: Vec<Host> = (0..kinds as u8 - 1)
        .map(benign_host)
        .chain([nat_host()])
        .collect();
    let mut runs = Vec::new();
    for pass in 0..passes {
        let mut p = Vec::new();
        for (k, h) in hosts.iter().enumerate() {
            for v6 in [false, true] {
                if let Some(r) = session(rng, k, h, v6, pass) {
                    p.push(r);
                }
            }
        }
        rng.shuffle(&mut p);
        runs.extend(p);
    }
    (runs, hosts)
}

/// Which held-out corpus a plan draws from. Each uses tools the training
/// recording never uses; the second also none that the first uses but
/// slowhttptest (another mode) and OpenSSH's client (rsync's transport),
/// so it judges what was changed because of the first (docs/HELDOUT.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Corpus {
    /// masscan, nmap's other modes, nping, hydra, sqlmap, slowhttptest's
    /// slow headers, ab, hey; wget, curl, dig, OpenSSH, iperf3, chronyd.
    #[default]
    First,
    /// pnscan, netcat, mausezahn, T50, medusa, patator, wfuzz, gobuster,
    /// slowhttptest's slow read, siege; Chromium, lynx, w3m, aria2c,
    /// rsync, iperf 2, httping, Nagios plugins, HTTPie, kdig.
    Second,
}

impl Corpus {
    pub const ALL: [Corpus; 2] = [Corpus::First, Corpus::Second];

    /// The name on the command line and in the output files.
    pub fn name(self) -> &'static str {
        match self {
            Corpus::First => "first",
            Corpus::Second => "second",
        }
    }
}

impl std::fmt::Display for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Corpus {
    type Err = String;
    fn from_str(s: &str) -> Result<Corpus, String> {
        Corpus::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown corpus {s:?} (first or second)"))
    }
}

pub fn plan(rng: &mut Rng, ctx: &Ctx, passes: usize, corpus: Corpus) -> Plan {
    let ((attacks, mut hosts), (benign, bh)) = match corpus {
        Corpus::First => {
            let a = attacks(rng, ctx);
            (a, benign(rng, ctx, passes))
        }
        Corpus::Second => {
            let a = attacks_second(rng, ctx);
            (a, benign_second(rng, ctx, passes))
        }
    };
    hosts.extend(bh);
    Plan {
        attacks,
        benign,
        hosts,
    }
}

/// Brings up the NAT: `<prefix>-lan` (clients `10.77.0.11–14`,
/// `fd77::11–14`) behind the NAT host, which masquerades both families
/// (nft table [`NAT_TABLE`] in its own namespace) out of `eth0`.
pub fn nat_up(lab: &Lab) -> Result<()> {
    let nat = format!("{}-{}", lab.prefix(), nat_host().name);
    let lan = format!("{}-{LAN}", lab.prefix());
    let ip = |args: &[&str]| cmd::output("ip", args).map(drop);
    let sysctl = |ns: &str, kv: &str| {
        cmd::output("ip", &["netns", "exec", ns, "sysctl", "-qw", kv]).map(drop)
    };
    ip(&["netns", "add", &lan])?;
    for kv in [
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.default.disable_ipv6=0",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ] {
        sysctl(&lan, kv)?;
    }
    sysctl(&nat, "net.ipv4.ip_forward=1")?;
    sysctl(&nat, "net.ipv6.conf.all.forwarding=1")?;
    ip(&["-n", &lan, "link", "set", "lo", "up"])?;
    ip(&[
        "link", "add", "lan0", "netns", &nat, "type", "veth", "peer", "name", "eth0", "netns", &lan,
    ])?;
    ip(&["-n", &nat, "link", "set", "lan0", "up"])?;
    ip(&["-n", &lan, "link", "set", "eth0", "up"])?;
    ip(&["-n", &nat, "addr", "add", "10.77.0.1/24", "dev", "lan0"])?;
    ip(&[
        "-n",
        &nat,
        "-6",
        "addr",
        "add",
        "fd77::1/64",
        "dev",
        "lan0",
        "nodad",
    ])?;
    for i in 11..=14 {
        ip(&[
            "-n",
            &lan,
            "addr",
            "add",
            &format!("10.77.0.{i}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&[
            "-n",
            &lan,
            "-6",
            "addr",
            "add",
            &format!("fd77::{i}/64"),
            "dev",
            "eth0",
            "nodad",
        ])?;
    }
    ip(&["-n", &lan, "route", "add", "default", "via", "10.77.0.1"])?;
    ip(&[
        "-n", &lan, "-6", "route", "add", "default", "via", "fd77::1",
    ])?;
    let rules = format!(
        "table inet {NAT_TABLE} {{\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"eth0\" masquerade\n }}\n}}\n"
    );
    let path = std::env::temp_dir().join(format!("{}-nat.nft", lab.prefix()));
    std::fs::write(&path, rules)?;
    let r = cmd::output(
        "ip",
        &["netns", "exec", &nat, "nft", "-f", &path.to_string_lossy()],
    );
    let _ = std::fs::remove_file(&path);
    r.map(drop)
}

/// The labels file: `CIDR SCENARIO` for every source of every run,
/// attacks first, by scenario.
pub fn labels(plan: &Plan, header: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# {header}");
    let mut rows = std::collections::BTreeSet::new();
    for r in plan.attacks.iter().chain(&plan.benign) {
        for src in &r.sources {
            rows.insert((!r.is_attack(), r.scenario, src.contains(':'), src.clone()));
        }
    }
    for (_, scenario, v6, src) in rows {
        let _ = writeln!(t, "{src}/{} {scenario}", if v6 { 128 } else { 32 });
    }
    t
}
