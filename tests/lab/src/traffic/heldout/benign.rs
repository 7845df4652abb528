//! The benign sessions: one kind per host, each drawing its sizes, rates,
//! pauses and payloads from the plan's generator.
use super::servers::{DNS_NAMES, IMAGES, LARGE_FILES, PAGES};
use super::{
    Ctx, Host, LAN, Rng, Run, benign_passes, fam, gaps, rng_k, s, script, src, target, total,
};
use crate::lab::addr;

const BROWSE_SH: &str = include_str!("../../../scripts/heldout/browse.sh");
const HEALTH_SH: &str = include_str!("../../../scripts/heldout/health.sh");
const DIG_SH: &str = include_str!("../../../scripts/heldout/dig.sh");
const IPERF_SH: &str = include_str!("../../../scripts/heldout/iperf.sh");
const NTP_SH: &str = include_str!("../../../scripts/heldout/ntp.sh");
const NAT_SH: &str = include_str!("../../../scripts/heldout/nat_clients.sh");
const API_PY: &str = include_str!("../../../scripts/heldout/api_client.py");
const SSH_PY: &str = include_str!("../../../scripts/heldout/ssh_session.py");

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
            let mut r = Run::new("benign_download", "wget", &h.name, me);
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
            let mut r = Run::new("benign_upload", "wget", &h.name, me);
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
            let mut r = Run::new(
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
            let total = total(&think);
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
            let mut r = Run::new("benign_browser", mode, &h.name, me);
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
            let mut r = Run::new("benign_health", "wget", &h.name, me);
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
            let mut r = Run::new("benign_api", "python3", &h.name, me);
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
            let mut r = Run::new("benign_ssh", "ssh", &h.name, me);
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
            let total = total(&g);
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
            let mut r = Run::new("benign_dns", "dig", &h.name, me);
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
            let mut r = Run::new("benign_ping", "ping", &h.name, me);
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
            let total = total(&g);
            let pid = ctx.work.join(format!("{}-{f}-{pass}-chronyd.pid", h.name));
            let mut r = Run::new("benign_ntp", "chronyd", &h.name, me);
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
            let mut r = Run::new("benign_nat", "curl+dig+wget", LAN, me);
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
    benign_passes(rng, passes, BENIGN_KINDS, |rng, k, h, v6, pass| {
        benign_session(rng, ctx, k, h, v6, pass)
    })
}
