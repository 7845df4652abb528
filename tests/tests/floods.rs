//! Floods from many sources against the live agent in the lab: spoofed SYN,
//! UDP and ACK floods (`hping3 --flood --rand-source`, as fast as the lab
//! veth takes them) while benign HTTP clients browse the server, then a
//! distributed flood from 50 real sources. The agent samples 1 in 16 (the
//! default). Each load is bounded in time; the lab's namespaces, pins and
//! journal are removed by the lab guard.
//!
//! Both run the shipped model, so the per-source path, its journal and
//! its memory carry the floods too. What they assert of the clients is that
//! their requests succeed: a flood rule that caught their packets would
//! fail them. They do not assert that the per-source path leaves them
//! alone: it throttled 0 to 2 of the 5 browsing clients over 50 s in four
//! runs (at 100 packets/s, so their requests still succeeded), and every
//! client polling at a fixed 0.2 s without any flood. That is issue 10's
//! detection work, not the flood defence's.
use std::{
    collections::HashSet,
    net::IpAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use phantomnet_agent::{
    aggregate::Signature,
    api::{
        client::connect_unix,
        pb::{self},
    },
};
use phantomnet_lab::traffic::Servers;
use phantomnet_tests::{AgentProcess, Role, TestLab, addr, root_or_skip};

/// Each flood's length.
const FLOOD: Duration = Duration::from_secs(8);

fn model() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .to_string_lossy()
        .into_owned()
}

/// A counter of `dev` in the role's namespace (`rx` or `tx` packets).
fn packets(t: &TestLab, role: Role, dev: &str, dir: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "-n",
            &t.lab.ns(role),
            "-s",
            "-j",
            "link",
            "show",
            "dev",
            dev,
        ])
        .output()
        .expect("ip link");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip's JSON");
    v[0]["stats64"][dir]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no {dir} packets for {dev}: {v}"))
}

/// Benign clients: each browses the server from its own address for `secs`
/// (a page, every other view with its assets, think times of 0.2–1.6 s as
/// the lab's benign clients), and prints `requests succeeded`. (A fixed
/// 0.2 s poller is throttled by the per-source model, flood or not: that is
/// the detection work of issue 10, not this test's subject.)
struct Clients {
    children: Vec<(String, Child)>,
}

const CLIENT_SH: &str = r#"
end=$(( $(date +%s) + $3 )); n=0; ok=0
ua='Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
while [ "$(date +%s)" -lt "$end" ]; do
  for t in 0.4 1.1 0.3 0.8 1.6 0.5 0.9 0.2 1.3 0.7; do
    [ "$(date +%s)" -ge "$end" ] && break
    n=$((n+1))
    if [ $((n % 2)) -eq 0 ]; then
      curl -sf -o /dev/null -o /dev/null -o /dev/null -m 3 --interface "$1" -A "$ua" \
        "http://$2/" "http://$2/static/app.css" "http://$2/static/app.js" && ok=$((ok+1))
    else
      curl -sf -o /dev/null -m 3 --interface "$1" -A "$ua" "http://$2/index.html" && ok=$((ok+1))
    fi
    sleep "$t"
  done
done
echo "$n $ok"
"#;

impl Clients {
    fn start(t: &TestLab, sources: &[String], secs: u64) -> Clients {
        let children = sources
            .iter()
            .map(|src| {
                let child = t
                    .nsenter(Role::Cli)
                    .args(["sh", "-c", CLIENT_SH, "sh", src, addr::SRV4])
                    .arg(secs.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn a client");
                (src.clone(), child)
            })
            .collect();
        Clients { children }
    }

    /// (requests, succeeded) per client.
    fn finish(self) -> Vec<(String, u64, u64)> {
        self.children
            .into_iter()
            .map(|(src, child)| {
                let out = child.wait_with_output().expect("a client");
                let text = String::from_utf8_lossy(&out.stdout);
                let mut it = text.split_whitespace().map(|w| w.parse::<u64>().unwrap());
                (src, it.next().unwrap_or(0), it.next().unwrap_or(0))
            })
            .collect()
    }
}

/// Calls Status every 50 ms until stopped; returns the latencies.
struct ApiProbe {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Vec<Duration>>,
}

impl ApiProbe {
    fn start(socket: &Path) -> ApiProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, socket) = (stop.clone(), socket.to_path_buf());
        let handle = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = connect_unix(&socket).await.expect("connect");
                let mut out = Vec::new();
                while !flag.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    c.status(pb::StatusRequest::default())
                        .await
                        .expect("Status");
                    out.push(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                out
            })
        });
        ApiProbe { stop, handle }
    }

    fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the API probe")
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// What one flood showed.
#[derive(Debug)]
struct Flood {
    /// From the tool's start to a signature rule in the maps.
    mitigated_after: Duration,
    rule: String,
    /// After mitigation: packets the attacker sent, and packets that reached
    /// the server (benign ones included, so the figure is conservative).
    sent: u64,
    reached: u64,
}

/// Runs `tool` (bounded by [`FLOOD`]) in `role`'s namespace and watches the
/// maps for the signature rule that answers it.
fn flood(t: &TestLab, role: Role, tool: &[&str], want: impl Fn(&Signature) -> bool) -> Flood {
    let maps = t.maps();
    let before: HashSet<u32> = maps
        .signatures()
        .unwrap()
        .iter()
        .map(|v| v.rule.id)
        .collect();
    let start = Instant::now();
    let mut child = t
        .nsenter(role)
        .args(["timeout", "--kill-after=2"])
        .arg(FLOOD.as_secs().to_string())
        .args(tool)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the flood");
    let found = loop {
        let rules = maps.signatures().unwrap();
        let new = rules
            .iter()
            .find(|v| !before.contains(&v.rule.id) && want(&Signature::from_rule(&v.rule)));
        if let Some(v) = new {
            break Some((start.elapsed(), Signature::from_rule(&v.rule).to_string()));
        }
        if start.elapsed() > FLOOD {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let (a0, s0) = (
        packets(t, role, "eth0", "tx"),
        packets(t, Role::Srv, "eth0", "rx"),
    );
    child.wait().expect("the flood");
    let (a1, s1) = (
        packets(t, role, "eth0", "tx"),
        packets(t, Role::Srv, "eth0", "rx"),
    );
    let (mitigated_after, rule) = found.unwrap_or_else(|| {
        panic!(
            "no signature rule within the flood; rules: {:?}",
            maps.signatures().unwrap()
        )
    });
    Flood {
        mitigated_after,
        rule,
        sent: a1 - a0,
        reached: s1 - s0,
    }
}

fn to_server(sig: &Signature, protocol: u8, port: u16) -> bool {
    sig.dst == addr::SRV4.parse::<IpAddr>().unwrap()
        && sig.protocol == Some(protocol)
        && sig
            .dst_port
            .is_some_and(|(lo, hi)| lo <= port && port <= hi)
}

fn rss_peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn spoofed_floods_are_dropped_in_the_kernel_and_clients_keep_working() {
    if !root_or_skip("spoofed_floods_are_dropped_in_the_kernel_and_clients_keep_working") {
        return;
    }
    let t = TestLab::up("fld");
    let _servers = Servers::start(&t.lab).unwrap();
    let mut agent = AgentProcess::start(&t, &["--model", &model(), "--sample-rate", "16"]);
    let clients: Vec<String> = (0..5).map(addr::cli_src4).collect();
    // 12 s of clients before the floods (the detector's baselines), then
    // three floods of 8 s, 2 s apart.
    let run = Clients::start(&t, &clients, 50);
    thread::sleep(Duration::from_secs(12));
    let journal0 = file_bytes(&agent.journal);
    let probe = ApiProbe::start(&agent.socket);

    let srv = addr::SRV4;
    let syn = flood(
        &t,
        Role::Atk,
        &[
            "hping3",
            "-q",
            "-S",
            "--flood",
            "--rand-source",
            "-p",
            "80",
            srv,
        ],
        |s| to_server(s, 6, 80),
    );
    thread::sleep(Duration::from_secs(2));
    let udp = flood(
        &t,
        Role::Atk,
        &[
            "hping3",
            "-q",
            "--udp",
            "--flood",
            "--rand-source",
            "-p",
            "5000",
            "-d",
            "64",
            srv,
        ],
        |s| to_server(s, 17, 5000),
    );
    thread::sleep(Duration::from_secs(2));
    let ack = flood(
        &t,
        Role::Atk,
        &[
            "hping3",
            "-q",
            "-A",
            "--flood",
            "--rand-source",
            "-p",
            "443",
            srv,
        ],
        |s| to_server(s, 6, 443),
    );
    let api = probe.finish();
    let journal_growth = file_bytes(&agent.journal).saturating_sub(journal0);
    let results = run.finish();
    let rss = rss_peak_kib(agent.pid());

    println!("SYN flood: {syn:?}\nUDP flood: {udp:?}\nACK flood: {ack:?}");
    println!(
        "clients: {results:?}\nAPI p99 {:?} over {} calls; journal +{journal_growth} bytes; agent peak RSS {rss} KiB",
        p99(api.clone()),
        api.len()
    );
    for (name, f) in [("SYN", &syn), ("UDP", &udp), ("ACK", &ack)] {
        assert!(
            f.mitigated_after <= Duration::from_secs(1),
            "{name}: mitigated after {:?}",
            f.mitigated_after
        );
        assert!(f.sent > 10_000, "{name}: the flood sent only {}", f.sent);
        let through = f.reached as f64 / f.sent as f64;
        assert!(
            through <= 0.01,
            "{name}: {} of {} packets reached the server after mitigation ({})",
            f.reached,
            f.sent,
            f.rule
        );
    }
    let (requests, ok) = results
        .iter()
        .fold((0, 0), |(n, k), (_, a, b)| (n + a, k + b));
    assert!(requests > 150, "{results:?}");
    // A rule that caught the clients' packets would fail their requests.
    assert!(ok * 100 >= requests * 99, "clients: {results:?}");
    assert!(rss <= 256 * 1024, "agent peak RSS {rss} KiB");
    assert!(
        journal_growth <= 10 << 20,
        "journal grew {journal_growth} bytes"
    );
    assert!(
        p99(api) <= Duration::from_millis(100),
        "API p99 over the floods"
    );
    assert!(agent.alive());
}

#[test]
fn a_distributed_flood_from_fifty_real_sources_is_one_attack() {
    if !root_or_skip("a_distributed_flood_from_fifty_real_sources_is_one_attack") {
        return;
    }
    let t = TestLab::up("dfl");
    let _servers = Servers::start(&t.lab).unwrap();
    // 50 attacker addresses inside the lab's attacker network (routed to
    // the attacker namespace by the gateway).
    let sources: Vec<String> = (100..150).map(|i| format!("192.0.2.{i}")).collect();
    for s in &sources {
        let ok = Command::new("ip")
            .args(["-n", &t.lab.ns(Role::Atk), "addr", "add"])
            .arg(format!("{s}/32"))
            .args(["dev", "eth0"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "adding {s}");
    }
    let mut agent = AgentProcess::start(&t, &["--model", &model(), "--sample-rate", "16"]);
    let clients: Vec<String> = (0..5).map(addr::cli_src4).collect();
    let run = Clients::start(&t, &clients, 30);
    // The server's baseline: enough client samples to tell the flood's
    // packets from theirs.
    thread::sleep(Duration::from_secs(14));
    // Each source at ~200 SYNs/s: modest alone, 10,000/s together.
    let start = Instant::now();
    let mut floods: Vec<Child> = sources
        .iter()
        .map(|s| {
            t.nsenter(Role::Atk)
                .args(["timeout", "--kill-after=2", "8"])
                .args(["hping3", "-q", "-S", "-i", "u5000", "-a", s, "-p", "80"])
                .arg(addr::SRV4)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn hping3")
        })
        .collect();
    let maps = t.maps();
    let mut rule = None;
    while start.elapsed() < Duration::from_secs(8) && rule.is_none() {
        rule = maps
            .signatures()
            .unwrap()
            .into_iter()
            .map(|v| Signature::from_rule(&v.rule))
            .find(|s| to_server(s, 6, 80));
        thread::sleep(Duration::from_millis(20));
    }
    let mitigated_after = start.elapsed();
    for c in &mut floods {
        c.wait().unwrap();
    }
    let results = run.finish();
    let Some(rule) = rule else {
        // What the agent did instead, for the next one to read.
        let installed: Vec<String> = maps
            .signatures()
            .map(|v| {
                v.iter()
                    .map(|v| Signature::from_rule(&v.rule).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
        let said: Vec<&str> = log
            .lines()
            .filter(|l| {
                ["flood", "distributed", "signature"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .take(40)
            .collect();
        panic!(
            "no signature rule for the distributed flood within 8 s; signature rules: \
             {installed:?}; clients {results:?}; the agent's log on floods:\n{}",
            said.join("\n")
        );
    };
    // hping3's SYNs, told apart from the clients' by their traits.
    assert!(
        rule.packet_len.is_some() && rule.tcp_flags.is_some(),
        "{rule}"
    );
    println!("distributed flood: `{rule}` after {mitigated_after:?}; clients {results:?}");
    // One attack: one journal record of a flood starting on the service.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = rt.block_on(async {
        let mut c = connect_unix(&agent.socket).await.unwrap();
        c.list_events(pb::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
    });
    // The flood's end is journaled too (LOG, "ended after …; signature rule
    // N removed") once it has been quiet long enough, which may or may not
    // fall before this read: only the enforcing start record counts.
    let starts: Vec<_> = events
        .iter()
        .filter(|e| {
            e.rule == "aggregate"
                && e.action != pb::Action::Log as i32
                && e.reason.contains("signature rule")
        })
        .collect();
    assert_eq!(starts.len(), 1, "{starts:#?}");
    assert!(starts[0].reason.contains("tcp/80"), "{}", starts[0].reason);
    let (requests, ok) = results
        .iter()
        .fold((0, 0), |(n, k), (_, a, b)| (n + a, k + b));
    assert!(ok * 100 >= requests * 99, "clients: {results:?}");
    assert!(agent.alive());
}
