//! The attack runs: one generator per tool, each drawing its rates,
//! ports, counts and word lists from the plan's generator.
use super::servers::PAGES;
use super::{Ctx, Host, Rng, Run, attack_host, fam, lines, port_list, rng_k, s, src, target};
use crate::lab::{Lab, addr};

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
        // hydra exits 255 when a worker could not reconnect near the end
        // ("N targets did not resolve or could not be connected") even
        // though it made its tries and says "1 of 1 target completed";
        // that still counts, a target it never completed does not.
        also_ok: &[255],
        expect: Some("1 of 1 target completed"),
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
