//! The second held-out corpus's attack runs ([`Corpus::Second`]): tools
//! that neither the training recording nor the first held-out corpus
//! uses, one generator per tool, each drawing its rates, ports, counts
//! and word lists from the plan's generator.
//!
//! [`Corpus::Second`]: super::Corpus::Second
use super::servers::PAGES;
use super::{
    Ctx, Host, Rng, Run, attack_host, fam, lines, port_list, rng_k, s, script, src, target,
};
use crate::lab::{Lab, addr};

const NC_SCAN_SH: &str = include_str!("../../../scripts/heldout/second/nc_scan.sh");

/// Word lists Debian's wfuzz ships: SQL injection payloads and common
/// web paths.
pub const WFUZZ_SQL: &str = "/usr/share/wfuzz/wordlist/Injections/SQL.txt";
pub const WFUZZ_COMMON: &str = "/usr/share/wfuzz/wordlist/general/common.txt";

/// Guesses not in the first corpus's lists (so no run repeats another's).
const USERS: &[&str] = &[
    "administrator",
    "operator",
    "nagios",
    "mysql",
    "tomcat",
    "ansible",
    "vagrant",
    "centos",
    "debian",
    "hadoop",
    "elastic",
    "minecraft",
];
const PASSWORDS: &[&str] = &[
    "hunter2",
    "trustno1",
    "zaq12wsx",
    "1q2w3e4r",
    "Password1",
    "winter2025",
    "admin123",
    "qazwsx",
    "football",
    "shadow",
    "baseball",
    "starwars",
    "sunshine",
    "princess",
    "ninja",
    "654321",
];

fn http_port(rng: &mut Rng, ctx: &Ctx) -> u16 {
    if rng.range(0, 1) == 0 {
        80
    } else {
        ctx.ports.http_alt
    }
}

/// pnscan: a multithreaded TCP connect scan (IPv4; pnscan has no IPv6).
fn pnscan(rng: &mut Rng, h: &Host) -> Run {
    let lo = rng.range(1, 4000);
    let n = rng.range(300, 800);
    let workers = rng.range(8, 48);
    let mut r = Run::new("pnscan_connect", "pnscan", &h.name, vec![h.v4.clone()]);
    r.argv = s(&[
        "pnscan",
        &format!("-n{workers}"),
        "-t500",
        addr::SRV4,
        &format!("{lo}:{}", lo + n - 1),
    ]);
    r.what = format!(
        "connect scan of ports {lo}-{}, {workers} workers, IPv4",
        lo + n - 1
    );
    r.secs = 30.0;
    r
}

/// netcat (OpenBSD's) `-z`: a connect probe per port, with a pause
/// between probes (a slow scan), over one family.
fn nc_slow_scan(rng: &mut Rng, h: &Host, v6: bool) -> Run {
    let (dst, _) = target(v6, 80);
    let n = rng.range(20, 35) as usize;
    let ports = port_list(rng, n, 20_000).replace(',', " ");
    let (lo, hi) = (rng.float(0.25, 0.5), rng.float(0.6, 1.2));
    let mut r = Run::new("nc_slow_scan", "nc", &h.name, vec![src(h, v6)]);
    r.argv = script(
        NC_SCAN_SH,
        s(&[dst, &format!("{lo:.2}"), &format!("{hi:.2}"), &ports]),
    );
    r.what = format!(
        "{n} connect probes (nc -z), {lo:.2}-{hi:.2} s apart, ports ≤ 20000, {}",
        fam(v6)
    );
    r.secs = (n as f64 * (hi + 1.0) + 5.0).min(60.0);
    r
}

/// mausezahn: crafted frames at a drawn pace; `what` is a packet spec.
#[allow(clippy::too_many_arguments)]
fn mausezahn(
    rng: &mut Rng,
    scenario: &'static str,
    h: &Host,
    v6: bool,
    ty: &str,
    spec: &str,
    frames: u32,
    payload: Option<&str>,
) -> Run {
    let (dst, _) = target(v6, 80);
    let gap_us = rng.range(300, 2500);
    let mut r = Run::new(scenario, "mausezahn", &h.name, vec![src(h, v6)]);
    r.argv = s(&["mausezahn", "eth0"]);
    if v6 {
        r.argv.push("-6".into());
    }
    r.argv.extend(s(&[
        "-A",
        &src(h, v6),
        "-B",
        dst,
        "-b",
        &Lab::gw_out_mac(),
        "-c",
        "1",
        "-d",
        &format!("{gap_us}usec"),
        "-t",
        ty,
        spec,
    ]));
    if let Some(p) = payload {
        r.argv.extend(s(&["-P", p]));
    }
    r.what = format!(
        "{frames} {ty} frames ({spec}), {:.0} pps, {}",
        1e6 / f64::from(gap_us),
        fam(v6)
    );
    r.secs = (f64::from(frames) * f64::from(gap_us) / 1e6 * 1.5 + 4.0).min(60.0);
    r
}

/// A SYN flood from a run of source ports, one frame each.
fn mz_syn_flood(rng: &mut Rng, h: &Host, v6: bool) -> Run {
    let n = rng.range(800, 2500);
    let sp = rng.range(1024, 60000 - n);
    let dp = *rng.pick(&[80u32, 443, 22, 8080]);
    let spec = format!("flags=syn,sp={sp}-{},dp={dp}", sp + n - 1);
    mausezahn(rng, "syn_flood_mz", h, v6, "tcp", &spec, n, None)
}

/// A UDP flood to one port from a run of source ports.
fn mz_udp_flood(rng: &mut Rng, h: &Host, v6: bool) -> Run {
    let n = rng.range(800, 2500);
    let sp = rng.range(1024, 60000 - n);
    let dp = *rng.pick(&[53u32, 123, 161, 1900, 11211, 27015]);
    let spec = format!("sp={sp}-{},dp={dp}", sp + n - 1);
    let len = rng.range(16, 400) as usize;
    let payload: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    mausezahn(rng, "udp_flood_mz", h, v6, "udp", &spec, n, Some(&payload))
}

/// T50: `--threshold` packets as fast as it can (IPv4; no rate option).
fn t50(rng: &mut Rng, scenario: &'static str, h: &Host, proto: &str, flags: &[&str]) -> Run {
    let n = rng.range(600, 2500);
    let mut r = Run::new(scenario, "t50", &h.name, vec![h.v4.clone()]);
    r.argv = s(&[
        "t50",
        addr::SRV4,
        "--protocol",
        proto,
        "--threshold",
        &n.to_string(),
        "-s",
        &h.v4,
    ]);
    r.argv.extend(s(flags));
    r.what = format!(
        "{n} {proto} packets{} at full speed, random ports, IPv4",
        if flags.is_empty() {
            String::new()
        } else {
            format!(" with {}", flags.join(" "))
        }
    );
    r.secs = 15.0;
    r
}

/// medusa against sshd (IPv4).
fn medusa(rng: &mut Rng, ctx: &Ctx, h: &Host) -> Run {
    let k = rng_k(rng, 3, 5);
    let users = rng.sample(USERS, k);
    let k = rng_k(rng, 4, 8);
    let pw = rng.sample(PASSWORDS, k);
    let threads = rng.range(2, 6);
    let port = if rng.range(0, 1) == 0 {
        22
    } else {
        ctx.ports.ssh_alt
    };
    let ul = ctx.work.join(format!("{}-medusa-users.txt", h.name));
    let pl = ctx.work.join(format!("{}-medusa-passwords.txt", h.name));
    let mut r = Run::new("ssh_medusa", "medusa", &h.name, vec![h.v4.clone()]);
    r.argv = s(&[
        "medusa",
        "-h",
        addr::SRV4,
        "-U",
        &ul.to_string_lossy(),
        "-P",
        &pl.to_string_lossy(),
        "-M",
        "ssh",
        "-n",
        &port.to_string(),
        "-t",
        &threads.to_string(),
        "-b",
    ]);
    r.what = format!(
        "{} guesses ({} users × {} passwords) on :{port}, {threads} at once, IPv4",
        users.len() * pw.len(),
        users.len(),
        pw.len()
    );
    r.secs = 45.0;
    r.files = vec![(ul, lines(&users)), (pl, lines(&pw))];
    r
}

/// patator's `http_fuzz` guessing HTTP basic-auth passwords on `/admin/`.
fn patator(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = http_port(rng, ctx);
    let (_, base) = target(v6, port);
    let k = rng_k(rng, 3, 6);
    let users = rng.sample(USERS, k);
    let k = rng_k(rng, 6, 12);
    let pw = rng.sample(PASSWORDS, k);
    let threads = rng.range(2, 8);
    let tag = format!("{}-{}", h.name, fam(v6));
    let ul = ctx.work.join(format!("{tag}-patator-users.txt"));
    let pl = ctx.work.join(format!("{tag}-patator-passwords.txt"));
    let (dst, _) = target(v6, port);
    // Debian's patator 0.9 hands pycurl an empty CURLOPT_RESOLVE entry,
    // which fails every request before it is sent, unless `resolve` names
    // one: so the URL names the lab's zone and `resolve` maps it.
    let url = base
        .replace(&format!("[{dst}]"), "www.lab.example")
        .replace(dst, "www.lab.example");
    let mut r = Run::new("http_basic_patator", "patator", &h.name, vec![src(h, v6)]);
    r.argv = s(&[
        "patator",
        "http_fuzz",
        &format!("url={url}/admin/"),
        &format!("resolve=www.lab.example:{dst}"),
        "auth_type=basic",
        "user_pass=FILE0:FILE1",
        &format!("0={}", ul.display()),
        &format!("1={}", pl.display()),
        &format!("--threads={threads}"),
        "--timeout=3",
    ]);
    r.what = format!(
        "{} guesses ({} users × {} passwords) on /admin/ :{port}, {threads} threads, {}",
        users.len() * pw.len(),
        users.len(),
        pw.len(),
        fam(v6)
    );
    r.secs = 40.0;
    // Each refused guess prints its 401; a run whose requests all failed
    // prints none.
    r.expect = Some("401 Unauthorized");
    r.files = vec![(ul, lines(&users)), (pl, lines(&pw))];
    r
}

/// wfuzz: Debian's SQL-injection payload list in one query parameter.
fn wfuzz_sqli(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = http_port(rng, ctx);
    let (_, base) = target(v6, port);
    let param = *rng.pick(&["id", "item", "q", "search", "uid", "product"]);
    let page = rng.pick(PAGES);
    let threads = rng.range(2, 10);
    let mut r = Run::new("wfuzz_sqli", "wfuzz", &h.name, vec![src(h, v6)]);
    r.argv = s(&[
        "wfuzz",
        "-t",
        &threads.to_string(),
        "-z",
        &format!("file,{WFUZZ_SQL}"),
        "--req-delay",
        "3",
        &format!("{base}{page}?{param}=FUZZ"),
    ]);
    r.what = format!(
        "Debian's SQL.txt payloads in ?{param}= of {page}, {threads} threads, :{port}, {}",
        fam(v6)
    );
    r.secs = 40.0;
    r.expect = Some("Processed Requests");
    r
}

/// gobuster: content discovery with Debian's (wfuzz's) common.txt.
fn gobuster(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = http_port(rng, ctx);
    let (_, base) = target(v6, port);
    let threads = rng.range(4, 20);
    let delay = rng.range(0, 30);
    let mut r = Run::new("gobuster_dirs", "gobuster", &h.name, vec![src(h, v6)]);
    r.argv = s(&[
        "gobuster",
        "dir",
        "-q",
        "-z",
        "-u",
        &format!("{base}/"),
        "-w",
        WFUZZ_COMMON,
        "-t",
        &threads.to_string(),
        "--delay",
        &format!("{delay}ms"),
        "--timeout",
        "3s",
    ]);
    r.what = format!(
        "common.txt (949 paths), {threads} threads, {delay} ms delay, :{port}, {}",
        fam(v6)
    );
    r.secs = 40.0;
    r
}

/// slowhttptest's slow-read mode (`-X`): large files read through a tiny
/// receive window.
fn slow_read(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = http_port(rng, ctx);
    let (_, base) = target(v6, port);
    let conns = rng.range(30, 120);
    let rate = rng.range(10, 40);
    let length = rng.range(8, 14);
    let (wlo, whi) = (rng.range(1, 4), rng.range(8, 32));
    let read = rng.range(1, 4);
    let mut r = Run::new("slow_read", "slowhttptest", &h.name, vec![src(h, v6)]);
    r.argv = s(&[
        "slowhttptest",
        "-X",
        "-c",
        &conns.to_string(),
        "-r",
        &rate.to_string(),
        "-l",
        &length.to_string(),
        "-w",
        &wlo.to_string(),
        "-y",
        &whi.to_string(),
        "-n",
        &read.to_string(),
        "-z",
        "32",
        "-p",
        "3",
        "-u",
        &format!("{base}/files/large-2.bin"),
    ]);
    r.what = format!(
        "{conns} connections at {rate}/s reading a window of {wlo}-{whi} B every {read} s, for {length} s, :{port}, {}",
        fam(v6)
    );
    r.secs = f64::from(length) + 5.0;
    r.expect = Some("Exit status");
    r
}

/// siege in benchmark mode: `-c` users × `-r` repetitions of one page.
fn siege(rng: &mut Rng, ctx: &Ctx, h: &Host, v6: bool) -> Run {
    let port = http_port(rng, ctx);
    let (_, base) = target(v6, port);
    let url = format!("{base}{}", rng.pick(PAGES));
    let c = rng.range(8, 30);
    let reps = rng.range(40, 120);
    let rc = ctx.work.join(format!("{}-{}-siegerc", h.name, fam(v6)));
    let mut r = Run::new("http_flood_siege", "siege", &h.name, vec![src(h, v6)]);
    r.argv = s(&[
        "siege",
        "-R",
        &rc.to_string_lossy(),
        "-q",
        "-b",
        "-c",
        &c.to_string(),
        "-r",
        &reps.to_string(),
        &url,
    ]);
    r.what = format!("{} requests, {c} users × {reps}, {url}", c * reps);
    r.secs = 25.0;
    r.also_ok = &[1];
    r.files = vec![(
        rc,
        b"# the lab's siege: defaults, no log\nlogging = false\n".to_vec(),
    )];
    r
}

/// The attack runs, one host per kind (both of its sources used where the
/// tool has IPv6), in a random order.
pub fn attacks_second(rng: &mut Rng, ctx: &Ctx) -> (Vec<Run>, Vec<Host>) {
    let mut runs = Vec::new();
    let mut hosts = Vec::new();
    let mut host = || {
        let h = attack_host(hosts.len() as u8);
        hosts.push(h.clone());
        h
    };
    let h = host();
    runs.push(pnscan(rng, &h));
    let h = host();
    for v6 in [false, true] {
        runs.push(nc_slow_scan(rng, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(mz_syn_flood(rng, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(mz_udp_flood(rng, &h, v6));
    }
    let h = host();
    runs.push(t50(rng, "icmp_flood_t50", &h, "ICMP", &[]));
    let h = host();
    runs.push(t50(rng, "xmas_t50", &h, "TCP", &["-F", "-P", "-U"]));
    let h = host();
    runs.push(t50(rng, "udp_flood_t50", &h, "UDP", &[]));
    let h = host();
    runs.push(medusa(rng, ctx, &h));
    let h = host();
    for v6 in [false, true] {
        runs.push(patator(rng, ctx, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(wfuzz_sqli(rng, ctx, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(gobuster(rng, ctx, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(slow_read(rng, ctx, &h, v6));
    }
    let h = host();
    for v6 in [false, true] {
        runs.push(siege(rng, ctx, &h, v6));
    }
    rng.shuffle(&mut runs);
    (runs, hosts)
}
