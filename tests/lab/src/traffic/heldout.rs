//! The tool-disjoint held-out corpus (`cargo xtask record-heldout`): tools,
//! scan modes, flags, services and rates the training recording never
//! uses, against real servers ([`HeldoutServers`]), from addresses the
//! training never uses.
//!
//! Every scenario runs from its own **host**: a namespace of its own on
//! the outside segment ([`Lab::add_outside_host`]) with one IPv4 and one
//! IPv6 source, so tools without a source-address option (hydra, sqlmap,
//! slowhttptest, ab, hey) are labeled by source too. Attack hosts use
//! `192.0.2.100+` / `2001:db8:bad::1:N`, benign hosts `198.51.100.100+` /
//! `2001:db8:100::1:N`, the NAT `198.51.100.199` / `2001:db8:100::1:199`;
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

use super::heldout_servers::{DNS_NAMES, IMAGES, LARGE_FILES, PAGES};
pub use super::heldout_servers::{HeldoutServers, Ports};
use crate::cmd;
use crate::lab::{Lab, addr};

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

/// Attack host `i`: `192.0.2.(100+i)`, `2001:db8:bad::1:i`.
pub fn attack_host(i: u8) -> Host {
    Host {
        name: format!("a{i:02}"),
        mac: format!("02:50:4e:01:00:{i:02x}"),
        v4: format!("192.0.2.{}", 100 + u32::from(i)),
        v6: format!("2001:db8:bad::1:{i}"),
    }
}

/// Benign host `i`: `198.51.100.(100+i)`, `2001:db8:100::1:i`.
pub fn benign_host(i: u8) -> Host {
    Host {
        name: format!("b{i:02}"),
        mac: format!("02:50:4e:01:01:{i:02x}"),
        v4: format!("198.51.100.{}", 100 + u32::from(i)),
        v6: format!("2001:db8:100::1:{i}"),
    }
}

/// The NAT router; its clients sit in `<prefix>-lan` behind it.
pub fn nat_host() -> Host {
    Host {
        name: "nat".into(),
        mac: "02:50:4e:01:02:00".into(),
        v4: "198.51.100.199".into(),
        v6: "2001:db8:100::1:199".into(),
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

const USERS: &[&str] = &[
    "admin", "root", "ubuntu", "test", "oracle", "postgres", "git", "user", "pi", "deploy",
    "backup", "support", "guest", "ftp", "www-data", "jenkins",
];
const PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "admin",
    "letmein",
    "qwerty",
    "toor",
    "changeme",
    "welcome1",
    "P@ssw0rd",
    "dragon",
    "monkey",
    "iloveyou",
    "111111",
    "abc123",
    "root",
    "raspberry",
    "summer2024",
    "passw0rd",
    "secret",
    "master",
];

fn lines(xs: &[&str]) -> Vec<u8> {
    let mut t = xs.join("\n");
    t.push('\n');
    t.into_bytes()
}

/// An nmap scan (`-sU`, `-sF`, `-sX`, `-sN`, `-sA`, or a slow `-sS`).
fn nmap(rng: &mut Rng, scenario: &'static str, mode: &str, h: &Host, v6: bool) -> Run {
    let (dst, _) = target(v6, 80);
    let slow = mode == "-sS";
    let (ports, n, rate, delay) = if slow {
        let n = rng.range(25, 35) as usize;
        (port_list(rng, n, 10_000), n, 0, rng.range(250, 500))
    } else if mode == "-sU" {
        let n = rng.range(60, 150) as usize;
        (port_list(rng, n, 1024), n, rng.range(40, 120), 0)
    } else {
        let lo = rng.range(1, 3000);
        let n = rng.range(200, 500);
        (
            format!("{lo}-{}", lo + n - 1),
            n as usize,
            rng.range(150, 450),
            0,
        )
    };
    let mut argv = s(&[
        "nmap",
        mode,
        "-Pn",
        "-n",
        "-e",
        "eth0",
        "--max-retries",
        "0",
    ]);
    argv.extend(s(&["-p", &ports, "--host-timeout", "40s", "-oG", "-"]));
    let (secs, what) = if slow {
        argv.extend(s(&[
            "--scan-delay",
            &format!("{delay}ms"),
            "--max-parallelism",
            "1",
        ]));
        (
            n as f64 * f64::from(delay) / 1000.0 + 8.0,
            format!("{n} random ports of 1-10000, one probe every {delay} ms"),
        )
    } else {
        let r = rate.to_string();
        argv.extend(s(&["--min-rate", &r, "--max-rate", &r]));
        (
            n as f64 / f64::from(rate) + 8.0,
            format!(
                "{n} ports ({}), {rate} probes/s",
                if mode == "-sU" {
                    "random of 1-1024".to_string()
                } else {
                    ports.clone()
                }
            ),
        )
    };
    if !v6 {
        argv.push("--send-ip".into());
    } else {
        argv.push("-6".into());
    }
    argv.push(dst.into());
    Run {
        scenario,
        tool: "nmap",
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!("nmap {mode}, {}, {what}", fam(v6)),
        argv,
        secs: secs.min(45.0),
        also_ok: &[],
        expect: Some("Nmap done"),
        files: vec![],
    }
}

/// `nping` floods with one TCP flag (IPv6 too; hping3 has no IPv6).
fn nping_flood(
    rng: &mut Rng,
    scenario: &'static str,
    flag: &str,
    h: &Host,
    v6: bool,
    fast: bool,
) -> Run {
    let (dst, _) = target(v6, 80);
    let (rate, n) = if fast {
        (rng.range(500, 900), rng.range(1200, 2400))
    } else {
        (rng.range(100, 250), rng.range(400, 800))
    };
    let port = *rng.pick(&[80u32, 443, 22, 8443, 3389]);
    let len = *rng.pick(&[0u32, 0, 6, 32]);
    let mut argv = s(&["nping", "--tcp", "--flags", flag, "-p", &port.to_string()]);
    argv.extend(s(&[
        "--rate",
        &rate.to_string(),
        "-c",
        &n.to_string(),
        "-q",
        "-H",
    ]));
    if len > 0 {
        argv.extend(s(&["--data-length", &len.to_string()]));
    }
    if v6 {
        argv.push("-6".into());
    }
    argv.push(dst.into());
    Run {
        scenario,
        tool: "nping",
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!(
            "{n} TCP {flag} to :{port}, {rate} pps, {len} B payload, {}",
            fam(v6)
        ),
        argv,
        secs: f64::from(n) / f64::from(rate) + 5.0,
        also_ok: &[],
        expect: Some("Raw packets sent"),
        files: vec![],
    }
}

/// `hping3 -F` (FIN) or `-A` flood over IPv4.
fn hping_flood(rng: &mut Rng, scenario: &'static str, flag: &str, h: &Host, fast: bool) -> Run {
    let (gap_us, n) = if fast {
        (rng.range(1100, 2500), rng.range(1200, 2000))
    } else {
        (rng.range(7000, 15000), rng.range(300, 500))
    };
    let port = *rng.pick(&[80u32, 443, 25, 53, 8080]);
    let argv = s(&[
        "hping3",
        "-q",
        "-I",
        "eth0",
        flag,
        "-p",
        &port.to_string(),
        "-c",
        &n.to_string(),
        "-i",
        &format!("u{gap_us}"),
        addr::SRV4,
    ]);
    Run {
        scenario,
        tool: "hping3",
        ns: h.name.clone(),
        sources: vec![h.v4.clone()],
        what: format!(
            "{n} TCP {flag} to :{port}, {:.0} pps, IPv4",
            1e6 / f64::from(gap_us)
        ),
        argv,
        secs: f64::from(n) * f64::from(gap_us) / 1e6 * 1.3 + 4.0,
        also_ok: &[1],
        expect: Some("packets transmitted"),
        files: vec![],
    }
}

fn masscan(rng: &mut Rng, h: &Host) -> Run {
    let lo = rng.range(1, 2000);
    let n = rng.range(400, 900);
    let rate = rng.range(250, 600);
    let argv = s(&[
        "masscan",
        "--range",
        addr::SRV4,
        "-p",
        &format!("{lo}-{}", lo + n - 1),
        "--rate",
        &rate.to_string(),
        "--adapter",
        "eth0",
        "--adapter-ip",
        &h.v4,
        "--adapter-mac",
        &h.mac,
        "--router-mac",
        &Lab::gw_out_mac(),
        "--wait",
        "1",
        "--seed",
        &rng.next_u64().to_string(),
    ]);
    Run {
        scenario: "masscan_syn",
        tool: "masscan",
        ns: h.name.clone(),
        sources: vec![h.v4.clone()],
        what: format!("SYN scan of ports {lo}-{}, {rate} pps, IPv4", lo + n - 1),
        argv,
        // masscan 1.3.2 keeps waiting after its scan: the time bound ends it.
        secs: f64::from(n) / f64::from(rate) + 3.0,
        also_ok: &[137],
        expect: Some("Scanning 1 hosts"),
        files: vec![],
    }
}

fn hydra(rng: &mut Rng, ctx: &Ctx, service: &'static str, h: &Host, v6: bool) -> Run {
    let ssh = service == "ssh";
    let (users, pw) = if ssh {
        (rng.range(3, 6) as usize, rng.range(5, 10) as usize)
    } else {
        (rng.range(4, 8) as usize, rng.range(8, 16) as usize)
    };
    let users = rng.sample(USERS, users);
    let pw = rng.sample(PASSWORDS, pw);
    let threads = if ssh {
        rng.range(2, 6)
    } else {
        rng.range(4, 12)
    };
    let port = if rng.range(0, 1) == 0 {
        if ssh { 22 } else { 80 }
    } else if ssh {
        ctx.ports.ssh_alt
    } else {
        ctx.ports.http_alt
    };
    let (dst, _) = target(v6, port);
    let tag = format!("{}-{}", h.name, fam(v6));
    let ul = ctx.work.join(format!("{tag}-users.txt"));
    let pl = ctx.work.join(format!("{tag}-passwords.txt"));
    let mut argv = s(&["hydra", "-L"]);
    argv.push(ul.to_string_lossy().into());
    argv.push("-P".into());
    argv.push(pl.to_string_lossy().into());
    argv.extend(s(&[
        "-t",
        &threads.to_string(),
        "-I",
        "-q",
        "-s",
        &port.to_string(),
    ]));
    if v6 {
        argv.push("-6".into());
    }
    argv.push(dst.into());
    if ssh {
        argv.push("ssh".into());
    } else {
        argv.extend(s(&["http-get", "/admin/"]));
    }
    let tries = users.len() * pw.len();
    Run {
        scenario: if ssh { "ssh_hydra" } else { "http_basic_hydra" },
        tool: "hydra",
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!(
            "{tries} guesses ({} users × {} passwords) on :{port}, {threads} tasks, {}",
            users.len(),
            pw.len(),
            fam(v6)
        ),
        argv,
        secs: 30.0,
        also_ok: &[],
        expect: Some("of 1 target"),
        files: vec![(ul, lines(&users)), (pl, lines(&pw))],
    }
}

fn sqlmap(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = if rng.range(0, 1) == 0 {
        80
    } else {
        ctx.ports.http_alt
    };
    let (_, base) = target(v6, port);
    let page = rng.pick(PAGES);
    let k = rng_k(rng, 1, 3);
    let params = rng.sample(&["id", "q", "cat", "page", "user", "sort", "ref"], k);
    let query: Vec<String> = params
        .iter()
        .map(|p| format!("{p}={}", rng.range(1, 999)))
        .collect();
    let url = format!("{base}{page}?{}", query.join("&"));
    let technique = *rng.pick(&["BEU", "BEUS", "BU", "EUS", "BEUS"]);
    let threads = rng.range(1, 4);
    let home = ctx.work.join(format!("{}-{}-sqlmap", h.name, fam(v6)));
    let mut argv = vec!["env".to_string(), format!("HOME={}", home.display())];
    argv.extend(s(&[
        "sqlmap",
        "-u",
        &url,
        "--batch",
        "--level",
        "1",
        "--risk",
        "1",
        "--technique",
        technique,
        "--threads",
        &threads.to_string(),
        "--timeout",
        "3",
        "--retries",
        "0",
        "--flush-session",
        "--disable-coloring",
        "--output-dir",
    ]));
    argv.push(home.join("out").to_string_lossy().into());
    Run {
        scenario: "sqlmap",
        tool: "sqlmap",
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!(
            "{url}, techniques {technique}, {threads} threads, {}",
            fam(v6)
        ),
        argv,
        secs: 40.0,
        also_ok: &[],
        expect: Some("ending @"),
        files: vec![(home.join(".keep"), vec![])],
    }
}

fn rng_k(rng: &mut Rng, lo: u32, hi: u32) -> usize {
    rng.range(lo, hi) as usize
}

fn slowloris(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = if rng.range(0, 1) == 0 {
        80
    } else {
        ctx.ports.http_alt
    };
    let (_, base) = target(v6, port);
    let conns = rng.range(40, 150);
    let rate = rng.range(20, 60);
    let interval = rng.range(2, 6);
    let length = rng.range(7, 12);
    let argv = s(&[
        "slowhttptest",
        "-H",
        "-c",
        &conns.to_string(),
        "-r",
        &rate.to_string(),
        "-i",
        &interval.to_string(),
        "-l",
        &length.to_string(),
        "-s",
        "8192",
        "-t",
        "GET",
        "-p",
        "3",
        "-u",
        &format!("{base}{}", rng.pick(PAGES)),
    ]);
    Run {
        scenario: "slowloris",
        tool: "slowhttptest",
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!(
            "{conns} connections at {rate}/s, a header line every {interval} s, for {length} s, :{port}, {}",
            fam(v6)
        ),
        argv,
        secs: f64::from(length) + 5.0,
        also_ok: &[],
        expect: Some("Exit status"),
        files: vec![],
    }
}

fn http_flood(rng: &mut Rng, ctx: &Ctx, tool: &'static str, h: &Host, v6: bool) -> Run {
    let port = if rng.range(0, 1) == 0 {
        80
    } else {
        ctx.ports.http_alt
    };
    let (_, base) = target(v6, port);
    let url = format!("{base}{}", rng.pick(PAGES));
    let (argv, what, secs, expect) = if tool == "ab" {
        let n = rng.range(800, 2500);
        let c = rng.range(10, 40);
        (
            s(&[
                "ab",
                "-q",
                "-n",
                &n.to_string(),
                "-c",
                &c.to_string(),
                "-s",
                "3",
                &url,
            ]),
            format!("{n} requests, {c} concurrent, a connection each, {url}"),
            20.0,
            "Complete requests",
        )
    } else {
        let n = rng.range(1000, 3000);
        let c = rng.range(10, 30);
        let dur = rng.float(3.0, 6.0);
        let q = (f64::from(n) / (f64::from(c) * dur)).ceil().max(1.0) as u32;
        (
            s(&[
                "hey",
                "-n",
                &n.to_string(),
                "-c",
                &c.to_string(),
                "-q",
                &q.to_string(),
                "-t",
                "3",
                &url,
            ]),
            format!("{n} requests, {c} keep-alive workers × {q}/s, {url}"),
            dur + 8.0,
            "Requests/sec",
        )
    };
    Run {
        scenario: if tool == "ab" {
            "http_flood_ab"
        } else {
            "http_flood_hey"
        },
        tool,
        ns: h.name.clone(),
        sources: vec![src(h, v6)],
        what: format!("{what}, {}", fam(v6)),
        argv,
        secs,
        also_ok: &[],
        expect: Some(expect),
        files: vec![],
    }
}

/// The attack runs, one host per kind (both of its sources used where the
/// tool has IPv6), in a random order.
pub fn attacks(rng: &mut Rng, ctx: &Ctx) -> (Vec<Run>, Vec<Host>) {
    let mut runs = Vec::new();
    let mut hosts = Vec::new();
    let mut host = || {
        let h = attack_host(hosts.len() as u8);
        hosts.push(h.clone());
        h
    };
    let h = host();
    runs.push(masscan(rng, &h));
    for (scenario, mode) in [
        ("nmap_udp", "-sU"),
        ("nmap_fin", "-sF"),
        ("nmap_xmas", "-sX"),
        ("nmap_null", "-sN"),
        ("nmap_ack", "-sA"),
        ("nmap_syn_slow", "-sS"),
    ] {
        let h = host();
        for v6 in [false, true] {
            runs.push(nmap(rng, scenario, mode, &h, v6));
        }
    }
    let h = host();
    runs.push(nping_flood(rng, "ack_flood", "ack", &h, false, true));
    runs.push(nping_flood(rng, "ack_flood", "ack", &h, true, false));
    let h = host();
    runs.push(hping_flood(rng, "fin_flood", "-F", &h, true));
    runs.push(nping_flood(rng, "fin_flood", "fin", &h, true, false));
    for service in ["ssh", "http"] {
        let h = host();
        for v6 in [false, true] {
            runs.push(hydra(rng, ctx, service, &h, v6));
        }
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(sqlmap(rng, ctx, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(slowloris(rng, ctx, &h, v6));
    }
    for tool in ["ab", "hey"] {
        let h = host();
        for v6 in [false, true] {
            runs.push(http_flood(rng, ctx, tool, &h, v6));
        }
    }
    rng.shuffle(&mut runs);
    (runs, hosts)
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

const BROWSE_SH: &str = include_str!("../../scripts/heldout/browse.sh");
const HEALTH_SH: &str = include_str!("../../scripts/heldout/health.sh");
const DIG_SH: &str = include_str!("../../scripts/heldout/dig.sh");
const IPERF_SH: &str = include_str!("../../scripts/heldout/iperf.sh");
const NTP_SH: &str = include_str!("../../scripts/heldout/ntp.sh");
const NAT_SH: &str = include_str!("../../scripts/heldout/nat_clients.sh");
const API_PY: &str = include_str!("../../scripts/heldout/api_client.py");
const SSH_PY: &str = include_str!("../../scripts/heldout/ssh_session.py");

/// JSON bodies an ordinary API client posts: quotes, apostrophes and
/// SQL-looking words in free text.
fn json_body(rng: &mut Rng) -> String {
    const NOTES: &[&str] = &[
        "please select the 'blue' option",
        "drop off the parcel at O'Brien's desk",
        "meeting: \"union\" reps, room 4",
        "we need to update the table of contents",
        "it's fine' or not? ask Dan",
        "insert the new slide after \"Results\"",
        "don't delete the old invoices; select from the archive",
        "order by date, then by name",
        "the 1=1 review meeting moved to 3pm",
        "-- draft -- not final",
    ];
    let body = serde_json::json!({
        "title": format!("note {}", rng.range(1, 9999)),
        "text": rng.pick(NOTES),
        "tags": rng.sample(&["work", "sql", "select", "drop", "urgent", "o'clock"], 2),
        "priority": rng.range(1, 5),
        "done": rng.range(0, 1) == 1,
    });
    body.to_string()
}

fn benign_run(scenario: &'static str, tool: &'static str, ns: &str, sources: Vec<String>) -> Run {
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

/// One benign session of kind `k` over one family (or both, for iperf3).
fn benign_session(
    rng: &mut Rng,
    ctx: &Ctx,
    k: usize,
    h: &Host,
    v6: bool,
    pass: usize,
) -> Option<Run> {
    let http_port = if rng.range(0, 2) == 0 {
        ctx.ports.http_alt
    } else {
        80
    };
    let (dst, base) = target(v6, http_port);
    let me = vec![src(h, v6)];
    let f = fam(v6);
    let mut r = match k {
        0 => {
            let rate = rng.range(4, 15);
            let k = rng_k(rng, 1, 2);
            let files = rng.sample(LARGE_FILES, k);
            let mut r = benign_run("benign_download", "wget", &h.name, me);
            let bytes: usize = files.iter().map(|f| f.1).sum();
            r.argv = s(&["wget", "-q", "-T", "5", "-t", "1", "-O", "/dev/null"]);
            r.argv.push(format!("--limit-rate={rate}m"));
            r.argv
                .extend(files.iter().map(|f| format!("{base}{}", f.0)));
            r.what = format!(
                "{} MiB over {} file(s) at ≤ {rate} MB/s, :{http_port}, {f}",
                bytes >> 20,
                files.len()
            );
            r.secs = bytes as f64 / (f64::from(rate) * 1e6) * 1.5 + 6.0;
            r
        }
        1 => {
            let mib = rng.range(2, 12);
            let body = ctx.work.join(format!("{}-{f}-{pass}-upload.bin", h.name));
            let mut r = benign_run("benign_upload", "wget", &h.name, me);
            // The body is made when the run starts (random bytes), and removed after.
            r.argv = script(
                "head -c \"$1\" /dev/urandom > \"$2\" || exit 1\n\
                 wget -q -T 10 -t 1 -O /dev/null --post-file=\"$2\" \"$3\"; rc=$?\n\
                 rm -f \"$2\"; exit $rc\n",
                vec![
                    ((mib as usize) << 20).to_string(),
                    body.to_string_lossy().into(),
                    format!("{base}/upload"),
                ],
            );
            r.what = format!("{mib} MiB of random bytes POSTed to /upload, :{http_port}, {f}");
            r.secs = 25.0;
            r
        }
        2 => {
            if v6 {
                return None; // both families in one run: one server, one test at a time
            }
            let t = rng.range(2, 3);
            let (r4, r6) = (rng.range(10, 40), rng.range(10, 40));
            let mut r = benign_run(
                "benign_iperf3",
                "iperf3",
                &h.name,
                vec![h.v4.clone(), h.v6.clone()],
            );
            r.argv = script(
                IPERF_SH,
                s(&[
                    &ctx.ports.iperf.to_string(),
                    &t.to_string(),
                    &format!("{r4}M"),
                    &format!("{r6}M"),
                    addr::SRV4,
                    addr::SRV6,
                ]),
            );
            r.what = format!(
                "{t} s each way to :{}, {r4} Mbit/s IPv4, {r6} Mbit/s IPv6, upload then download (-R)",
                ctx.ports.iperf
            );
            r.secs = f64::from(4 * t) + 16.0;
            r
        }
        3 => {
            let mode = if v6 { "wget" } else { "curl" };
            let views = rng.range(4, 8) as usize;
            let par = rng.range(3, 6);
            let think = gaps(rng, views, 0.5, 4.0);
            let total: f64 = think.split(' ').filter_map(|t| t.parse::<f64>().ok()).sum();
            let pages: Vec<String> = (0..views)
                .map(|_| {
                    let imgs: Vec<String> = (0..rng.range(1, 3))
                        .map(|_| rng.range(1, IMAGES).to_string())
                        .collect();
                    format!("{}:{}", rng.pick(PAGES), imgs.join(","))
                })
                .collect();
            let tmp = ctx.work.join(format!("{}-{f}-{pass}-browser", h.name));
            let mut args = s(&[
                mode,
                &base,
                &tmp.to_string_lossy(),
                &par.to_string(),
                &think,
            ]);
            args.extend(pages);
            let mut r = benign_run("benign_browser", mode, &h.name, me);
            r.argv = script(BROWSE_SH, args);
            r.what = if mode == "curl" {
                format!(
                    "{views} page views, each with its assets on ≤ {par} parallel keep-alive connections (curl -Z), think 0.5-4 s, :{http_port}, {f}"
                )
            } else {
                format!(
                    "{views} page views with their requisites (wget -p, keep-alive), think 0.5-4 s, :{http_port}, {f}"
                )
            };
            r.secs = total + views as f64 * 3.0 + 8.0;
            r
        }
        4 => {
            let n = rng.range(40, 70);
            let mut r = benign_run("benign_health", "wget", &h.name, me);
            r.argv = script(
                HEALTH_SH,
                s(&[&format!("{base}/healthz"), &n.to_string(), "0.3"]),
            );
            r.what = format!(
                "GET /healthz every 0.3 s, {n} times, a connection each, :{http_port}, {f}"
            );
            r.secs = f64::from(n) * 0.6 + 6.0;
            r
        }
        5 => {
            let n = rng.range(15, 40) as usize;
            let g: Vec<String> = (0..n)
                .map(|_| format!("{:.2}", rng.float(0.2, 1.5)))
                .collect();
            let total: f64 = g.iter().filter_map(|t| t.parse::<f64>().ok()).sum();
            let mut args = s(&[dst, &http_port.to_string(), &g.join(",")]);
            args.extend((0..n).map(|_| json_body(rng)));
            let mut r = benign_run("benign_api", "python3", &h.name, me);
            r.argv = s(&["python3", "-c", API_PY]);
            r.argv.extend(args);
            r.what = format!(
                "{n} JSON POSTs/GETs on one keep-alive connection, gaps 0.2-1.5 s, :{http_port}, {f}"
            );
            r.secs = total + 10.0;
            r
        }
        6 => {
            const CMDS: &[&str] = &[
                "uptime",
                "ls -la /etc | head -5",
                "cat /proc/loadavg",
                "df -h / | tail -1",
                "uname -r",
                "ps -e | wc -l",
                "free -m | head -2",
                "ip -br addr",
                "date",
                "echo hello",
            ];
            let k = rng_k(rng, 4, 7);
            let cmds = rng.sample(CMDS, k);
            let pauses: Vec<String> = (0..cmds.len())
                .map(|_| format!("{:.1}", rng.float(0.5, 3.0)))
                .collect();
            let total: f64 = pauses.iter().filter_map(|t| t.parse::<f64>().ok()).sum();
            let chars: usize = cmds.iter().map(|c| c.len() + 1).sum();
            let (lo, hi) = (rng.range(60, 120), rng.range(150, 280));
            let port = if v6 { ctx.ports.ssh_alt } else { 22 };
            let mut r = benign_run("benign_ssh", "ssh", &h.name, me);
            r.argv = s(&[
                "python3",
                "-c",
                SSH_PY,
                &ctx.key.to_string_lossy(),
                "root",
                dst,
                &port.to_string(),
                &lo.to_string(),
                &hi.to_string(),
                &pauses.join(","),
            ]);
            r.argv.extend(cmds.iter().map(|c| c.to_string()));
            r.what = format!(
                "{} commands typed at {lo}-{hi} ms a key, pauses 0.5-3 s, key login, :{port}, {f}",
                cmds.len()
            );
            r.secs = total + chars as f64 * f64::from(hi) / 1000.0 + 12.0;
            r
        }
        7 => {
            let n = rng.range(15, 40) as usize;
            let g = gaps(rng, n, 0.1, 2.0);
            let total: f64 = g.split(' ').filter_map(|t| t.parse::<f64>().ok()).sum();
            let mut args = s(&[dst, &g]);
            for _ in 0..n {
                let name = match rng.range(0, 9) {
                    0 => format!("host{}.lab.example", rng.range(1, 99)), // NXDOMAIN
                    1 | 2 => "lab.example".to_string(),
                    _ => format!("{}.lab.example", rng.pick(DNS_NAMES)),
                };
                let ty = if name == "lab.example" {
                    *rng.pick(&["MX", "TXT"])
                } else {
                    *rng.pick(&["A", "AAAA", "A"])
                };
                args.push(format!("{name}:{ty}"));
            }
            let mut r = benign_run("benign_dns", "dig", &h.name, me);
            r.argv = script(DIG_SH, args);
            r.what = format!(
                "{n} queries (A, AAAA, MX, TXT, some NXDOMAIN) to dnsmasq, gaps 0.1-2 s, {f}"
            );
            r.secs = total + n as f64 * 0.2 + 8.0;
            r
        }
        8 => {
            let n = rng.range(10, 30);
            let i = rng.float(0.2, 1.0);
            let size = rng.range(56, 1000);
            let mut r = benign_run("benign_ping", "ping", &h.name, me);
            r.argv = s(&[
                "ping",
                "-q",
                "-c",
                &n.to_string(),
                "-i",
                &format!("{i:.2}"),
                "-s",
                &size.to_string(),
                "-W",
                "1",
                dst,
            ]);
            r.what = format!("{n} echo requests every {i:.2} s, {size} B, {f}");
            r.secs = f64::from(n) * i + 5.0;
            r
        }
        9 => {
            let checks = rng.range(3, 6) as usize;
            let g = gaps(rng, checks, 1.0, 4.0);
            let total: f64 = g.split(' ').filter_map(|t| t.parse::<f64>().ok()).sum();
            let pid = ctx.work.join(format!("{}-{f}-{pass}-chronyd.pid", h.name));
            let mut r = benign_run("benign_ntp", "chronyd", &h.name, me);
            r.argv = script(NTP_SH, s(&[dst, &pid.to_string_lossy(), &g]));
            r.what = format!(
                "{checks} clock checks (chronyd -Q, an iburst of NTP requests each), 1-4 s apart, {f}"
            );
            r.secs = total + checks as f64 * 3.0 + 8.0;
            r.expect = Some("System clock wrong by");
            r
        }
        _ => {
            let n = rng.range(8, 14);
            let mut r = benign_run("benign_nat", "curl+dig+wget", LAN, me);
            r.argv = script(
                NAT_SH,
                s(&[if v6 { "6" } else { "4" }, dst, dst, &n.to_string()]),
            );
            r.what = format!(
                "4 clients behind one masquerading NAT at once (a browser, a resolver, a downloader, a health checker), {n} rounds, {f}"
            );
            r.secs = f64::from(n) * 2.5 + 10.0;
            r
        }
    };
    r.secs = r.secs.min(60.0);
    Some(r)
}

/// The benign kinds, in the order [`benign_session`] numbers them.
pub const BENIGN_KINDS: usize = 11;

/// Benign sessions: every kind over IPv4 and IPv6 (iperf3 both in one),
/// `passes` times with fresh draws, each pass in a random order. Kind `k`
/// runs from benign host `k`; the NAT kind from the NAT's inside.
pub fn benign(rng: &mut Rng, ctx: &Ctx, passes: usize) -> (Vec<Run>, Vec<Host>) {
    let hosts: Vec<Host> = (0..BENIGN_KINDS as u8 - 1)
        .map(benign_host)
        .chain([nat_host()])
        .collect();
    let mut runs = Vec::new();
    for pass in 0..passes {
        let mut p = Vec::new();
        for (k, h) in hosts.iter().enumerate() {
            for v6 in [false, true] {
                if let Some(r) = benign_session(rng, ctx, k, h, v6, pass) {
                    p.push(r);
                }
            }
        }
        rng.shuffle(&mut p);
        runs.extend(p);
    }
    (runs, hosts)
}

pub fn plan(rng: &mut Rng, ctx: &Ctx, passes: usize) -> Plan {
    let (attacks, mut hosts) = attacks(rng, ctx);
    let (benign, bh) = benign(rng, ctx, passes);
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
