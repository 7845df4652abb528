//! The second held-out corpus's benign sessions ([`Corpus::Second`]):
//! clients that neither the training recording nor the first held-out
//! corpus uses (a real browser, text browsers, a segmented downloader,
//! rsync over SSH, iperf 2, HTTPie, kdig, httping, Nagios plugins), one
//! kind per host, each drawing its sizes, rates, pauses and payloads from
//! the plan's generator.
//!
//! [`Corpus::Second`]: super::Corpus::Second
use super::servers::{DNS_NAMES, LARGE_FILES, PAGES};
use super::{
    Ctx, Host, LAN, Rng, Run, benign_passes, fam, gaps, rng_k, s, script, src, target, total,
};

const CHROMIUM_SH: &str = include_str!("../../../scripts/heldout/second/chromium.sh");
const TEXT_SH: &str = include_str!("../../../scripts/heldout/second/text_browser.sh");
const MONITOR_SH: &str = include_str!("../../../scripts/heldout/second/monitor.sh");
const API_SH: &str = include_str!("../../../scripts/heldout/second/api.sh");
const KDIG_SH: &str = include_str!("../../../scripts/heldout/second/kdig.sh");
const POLL6_SH: &str = include_str!("../../../scripts/heldout/second/poll6.sh");
const NAT_SH: &str = include_str!("../../../scripts/heldout/second/nat_clients.sh");

/// The status endpoint the pollers use (nginx's `stub_status`), not the
/// first corpus's `/healthz`.
pub const STATUS: &str = "/nginx_status";

/// JSON an ordinary client posts: quotes and SQL-looking words in free
/// text (none of the first corpus's sentences).
fn json_body(rng: &mut Rng) -> String {
    const NOTES: &[&str] = &[
        "SELECT a venue for the offsite; Bob's list is \"final\"",
        "Union Street office: drop by after 5",
        "update: the table's legs were delivered; chairs where? ",
        "rename 'Q3 plan' to 'Q3 plan (old)' -- keep both",
        "1' cup of flour OR 2 cups of oats",
        "from: accounts; where: the shared drive; join us at 10",
        "please don't truncate the attachment",
        "script: <intro> then <demo>, 5 min each",
    ];
    serde_json::json!({
        "subject": format!("ticket {}", rng.range(100, 99_999)),
        "body": rng.pick(NOTES),
        "labels": rng.sample(&["ops", "insert", "delete", "where", "billing", "it's"], 2),
        "estimate": rng.float(0.5, 16.0),
    })
    .to_string()
}

fn pages(rng: &mut Rng, base: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("{base}{}", rng.pick(PAGES)))
        .collect()
}

/// One benign session of kind `k` over one family.
fn session(rng: &mut Rng, ctx: &Ctx, k: usize, h: &Host, v6: bool, pass: usize) -> Run {
    let http_port = if rng.range(0, 2) == 0 {
        ctx.ports.http_alt
    } else {
        80
    };
    let (dst, base) = target(v6, http_port);
    let me = vec![src(h, v6)];
    let f = fam(v6);
    let tag = format!("{}-{f}-{pass}", h.name);
    let mut r = match k {
        0 => {
            let (path, size) = *rng.pick(LARGE_FILES);
            let conns = rng.range(2, 5);
            let rate = rng.range(3, 12);
            let dir = ctx.work.join(format!("{tag}-aria2"));
            let mut r = Run::new("benign_download", "aria2c", &h.name, me);
            r.argv = script(
                "aria2c -q -x \"$1\" -s \"$1\" --max-overall-download-limit=\"$2\" \
                 --allow-overwrite=true --connect-timeout=3 --timeout=5 --max-tries=1 \
                 -d \"$3\" -o file.bin \"$4\"; rc=$?; rm -rf \"$3\"; exit $rc\n",
                vec![
                    conns.to_string(),
                    format!("{rate}M"),
                    dir.to_string_lossy().into(),
                    format!("{base}{path}"),
                ],
            );
            r.what = format!(
                "{} MiB in {conns} segments on {conns} connections at ≤ {rate} MiB/s, :{http_port}, {f}",
                size >> 20
            );
            r.secs = size as f64 / (f64::from(rate) * 1_048_576.0) * 1.5 + 8.0;
            r
        }
        1 => {
            let mib = rng.range(2, 10);
            let kbps = rng.range(1500, 6000);
            let port = if rng.range(0, 1) == 0 {
                22
            } else {
                ctx.ports.ssh_alt
            };
            let body = ctx.work.join(format!("{tag}-rsync.bin"));
            let dest = ctx.work.join(format!("{tag}-rsync-dest.bin"));
            let host = if v6 { format!("[{dst}]") } else { dst.into() };
            let ssh = format!(
                "ssh -i {} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=4",
                ctx.key.display()
            );
            let mut r = Run::new("benign_rsync", "rsync", &h.name, me);
            r.argv = script(
                "head -c \"$1\" /dev/urandom > \"$2\" || exit 1\n\
                 rsync -q --bwlimit=\"$3\" -e \"$4\" \"$2\" \"root@$5:$6\"; rc=$?\n\
                 rm -f \"$2\" \"$6\"; exit $rc\n",
                vec![
                    ((mib as usize) << 20).to_string(),
                    body.to_string_lossy().into(),
                    kbps.to_string(),
                    ssh,
                    host,
                    dest.to_string_lossy().into(),
                ],
            );
            r.what = format!(
                "{mib} MiB of random bytes uploaded with rsync over SSH (key login) at ≤ {kbps} KiB/s, :{port}, {f}"
            );
            r.secs = f64::from(mib) * 1024.0 / f64::from(kbps) * 1.5 + 10.0;
            r
        }
        2 => {
            let t = rng.range(3, 6);
            let mbit = rng.range(20, 150);
            let streams = rng.range(1, 4);
            let port = ctx.ports.iperf2();
            let mut r = Run::new("benign_iperf2", "iperf", &h.name, me);
            r.argv = s(&[
                "iperf",
                "-c",
                dst,
                "-p",
                &port.to_string(),
                "-t",
                &t.to_string(),
                "-b",
                &format!("{}M", mbit / streams),
                "-P",
                &streams.to_string(),
            ]);
            if v6 {
                r.argv.push("-V".into());
            }
            if rng.range(0, 1) == 1 {
                r.argv.push("-R".into());
                r.what = format!(
                    "{t} s download (-R), {mbit} Mbit/s on {streams} streams, :{port}, {f}"
                );
            } else {
                r.what = format!("{t} s upload, {mbit} Mbit/s on {streams} streams, :{port}, {f}");
            }
            r.secs = f64::from(t) + 10.0;
            r
        }
        3 => {
            let views = rng.range(3, 6) as usize;
            let think = gaps(rng, views, 1.0, 6.0);
            let prof = ctx.work.join(format!("{tag}-chromium"));
            let mut args = vec![prof.to_string_lossy().into_owned(), think.clone()];
            args.extend(pages(rng, &base, views));
            let mut r = Run::new("benign_chromium", "chromium", &h.name, me);
            r.argv = script(CHROMIUM_SH, args);
            r.what = format!(
                "{views} page loads in headless Chromium (every asset, parallel connections, its favicon), think 1-6 s, :{http_port}, {f}"
            );
            r.secs = total(&think) + views as f64 * 8.0 + 10.0;
            r
        }
        4 => {
            let tool = if v6 { "w3m" } else { "lynx" };
            let views = rng.range(4, 10) as usize;
            let think = gaps(rng, views, 1.0, 8.0);
            let mut args = s(&[tool, &think]);
            args.extend(pages(rng, &base, views));
            let mut r = Run::new("benign_text_browser", tool, &h.name, me);
            r.argv = script(TEXT_SH, args);
            r.what = format!("{views} pages read in {tool}, think 1-8 s, :{http_port}, {f}");
            r.secs = total(&think) + views as f64 * 4.0 + 6.0;
            r
        }
        5 => {
            let n = rng.range(30, 80);
            let gap = rng.float(0.25, 1.0);
            let keep = rng.range(0, 1) == 1;
            if v6 {
                // httping 2.5 cannot reach an IPv6 literal on another port
                // (it drops the port, or fails to parse the URL): over IPv6
                // the poller is the Nagios HTTP check in a loop.
                let mut r = Run::new("benign_status_poll", "check_http", &h.name, me);
                r.argv = script(
                    POLL6_SH,
                    s(&[
                        dst,
                        &http_port.to_string(),
                        STATUS,
                        &n.to_string(),
                        &format!("{gap:.2}"),
                    ]),
                );
                r.what = format!(
                    "GET {STATUS} every {gap:.2} s, {n} times, a connection each, :{http_port}, {f}"
                );
                r.secs = (f64::from(n) * (gap + 0.2) + 6.0).min(60.0);
                return r;
            }
            let mut r = Run::new("benign_status_poll", "httping", &h.name, me);
            r.argv = s(&[
                "httping",
                "-q",
                "-G",
                "-c",
                &n.to_string(),
                "-i",
                &format!("{gap:.2}"),
                "-t",
                "2",
                "-I",
                "status-poller/2.1",
            ]);
            if keep {
                r.argv.push("-Q".into());
            }
            r.argv.push(format!("{base}{STATUS}"));
            r.what = format!(
                "GET {STATUS} every {gap:.2} s, {n} times, {}, :{http_port}, {f}",
                if keep {
                    "one keep-alive connection"
                } else {
                    "a connection each"
                }
            );
            r.secs = f64::from(n) * (gap + 0.2) + 6.0;
            r
        }
        6 => {
            let rounds = rng.range(4, 9) as usize;
            let g = gaps(rng, rounds, 1.0, 5.0);
            let page = *rng.pick(PAGES);
            let ssh_port = if rng.range(0, 1) == 0 {
                22
            } else {
                ctx.ports.ssh_alt
            };
            let mut r = Run::new("benign_monitor", "check_*", &h.name, me);
            r.argv = script(
                MONITOR_SH,
                s(&[
                    if v6 { "6" } else { "4" },
                    dst,
                    &http_port.to_string(),
                    &ssh_port.to_string(),
                    &g,
                    page,
                ]),
            );
            r.what = format!(
                "{rounds} rounds of check_http {page} :{http_port}, check_ssh :{ssh_port}, check_ntp_time, 1-5 s apart, {f}"
            );
            r.secs = total(&g) + rounds as f64 * 2.0 + 8.0;
            r
        }
        7 => {
            let n = rng.range(10, 25) as usize;
            let g = gaps(rng, n, 0.3, 2.5);
            let mut args = s(&[&base, &g]);
            args.extend((0..n).map(|_| json_body(rng)));
            let mut r = Run::new("benign_httpie", "http", &h.name, me);
            r.argv = script(API_SH, args);
            r.what = format!(
                "{n} HTTPie calls to /api/notes (3 of 4 JSON POSTs), a connection each, gaps 0.3-2.5 s, :{http_port}, {f}"
            );
            r.secs = total(&g) + n as f64 * 0.8 + 8.0;
            r
        }
        8 => {
            let n = rng_k(rng, 15, 40);
            let g = gaps(rng, n, 0.05, 1.5);
            let mut args = s(&[dst, &g]);
            for _ in 0..n {
                let name = format!("{}.lab.example", rng.pick(DNS_NAMES));
                let ty = *rng.pick(&["A", "AAAA", "AAAA", "A", "TXT"]);
                args.push(format!("{name}:{ty}"));
            }
            let mut r = Run::new("benign_kdig", "kdig", &h.name, me);
            r.argv = script(KDIG_SH, args);
            r.what = format!("{n} queries (A, AAAA, TXT) with kdig, gaps 0.05-1.5 s, {f}");
            r.secs = total(&g) + n as f64 * 0.3 + 6.0;
            r
        }
        _ => {
            let n = rng.range(8, 14);
            let tmp = ctx.work.join(format!("nat-{f}-{pass}"));
            let mut r = Run::new("benign_nat", "lynx+kdig+aria2c+httping", LAN, me);
            r.argv = script(
                NAT_SH,
                s(&[
                    if v6 { "6" } else { "4" },
                    dst,
                    &n.to_string(),
                    &tmp.to_string_lossy(),
                ]),
            );
            r.what = format!(
                "4 clients behind one masquerading NAT at once (lynx, kdig, aria2c, httping), {n} rounds, {f}"
            );
            r.secs = f64::from(n) * 2.5 + 12.0;
            r
        }
    };
    r.secs = r.secs.min(60.0);
    r
}

/// The second corpus's benign kinds, in the order [`session`] numbers them.
pub const BENIGN_KINDS_SECOND: usize = 10;

/// Benign sessions: every kind over IPv4 and IPv6, `passes` times with
/// fresh draws, each pass in a random order. Kind `k` runs from benign
/// host `k`; the NAT kind from the NAT's inside.
pub fn benign_second(rng: &mut Rng, ctx: &Ctx, passes: usize) -> (Vec<Run>, Vec<Host>) {
    benign_passes(rng, passes, BENIGN_KINDS_SECOND, |rng, k, h, v6, pass| {
        Some(session(rng, ctx, k, h, v6, pass))
    })
}
