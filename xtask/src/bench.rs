//! `cargo xtask bench-xdp`: per-packet cost of each XDP path, measured with
//! BPF_PROG_TEST_RUN (`bpftool prog run ... repeat N`) on the same 64-byte
//! frame for PhantomNet and for xdp-filter (Debian's xdp-tools) in one run,
//! and of the inside observer on frames a server sends back; then the
//! ring-buffer reader's sustained rate with the real agent pinned to one
//! core.
//!
//! Everything happens in a namespace of its own (`pnbench`) with two veth
//! pairs (the second one's first end observed as an inside interface) and
//! a pin directory of its own; both are removed at the end.
use std::{
    fs,
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use phantomnet_lab::{
    agent::{AgentRun, AgentSpec},
    bpf,
    packet::{self, Frame},
};

use phantomnet_common::{TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN};

use crate::cmd;

const NS: &str = "pnbench";
const PINS: &str = "/sys/fs/bpf/pnbench";
const BENCH_SOCKET: &str = "/tmp/pnbench-agent.sock";
const BENCH_JOURNAL: &str = "/tmp/pnbench-journal";

/// A 64-byte Ethernet/IPv4/UDP frame from 192.0.2.10 to 203.0.113.10:5000.
fn frame() -> Vec<u8> {
    udp_frame([192, 0, 2, 10])
}

/// A 64-byte Ethernet/IPv4/UDP frame from `src` to 203.0.113.10:5000.
pub(crate) fn udp_frame(src: [u8; 4]) -> Vec<u8> {
    let udp = packet::udp(40000, 5000, &[0x5A; 22]);
    let f = Frame::eth(&[], packet::ETH_IP).ipv4(src, [203, 0, 113, 10], 17, &[], 0, &udp);
    debug_assert_eq!(f.bytes.len(), 64);
    f.bytes
}

/// Where a benchmark's agent runs: a namespace of its own holding a veth
/// pair (the agent attaches to the first end), its pin directory and log.
pub(crate) struct BenchNet<'a> {
    pub(crate) ns: &'a str,
    pub(crate) pins: &'a str,
    pub(crate) veth: (&'a str, &'a str),
    /// A second veth pair whose first end the agent observes as an inside
    /// interface (`--inside-iface`), if any.
    pub(crate) inside: Option<(&'a str, &'a str)>,
    pub(crate) log: &'a str,
}

fn add_veth(ns: &str, (a, b): (&str, &str)) -> Result<()> {
    cmd::output(
        "ip",
        &[
            "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b,
        ],
    )?;
    cmd::output("ip", &["-n", ns, "link", "set", a, "up"])?;
    cmd::output("ip", &["-n", ns, "link", "set", b, "up"])?;
    Ok(())
}

/// Creates `net`'s namespace and veth pair, starts the agent there pinned
/// to CPU 1 (`--pin-dir` and then `args`), and waits until it has attached
/// natively: the running agent and its program's id.
pub(crate) fn start_attached(
    bin: &Path,
    net: BenchNet<'_>,
    args: &[&str],
) -> Result<(AgentRun, u32)> {
    let a = net.veth.0;
    cmd::output("ip", &["netns", "add", net.ns])?;
    add_veth(net.ns, net.veth)?;
    let mut full = vec!["--pin-dir".to_string(), net.pins.to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    if let Some(inside) = net.inside {
        add_veth(net.ns, inside)?;
        full.extend(["--inside-iface".to_string(), inside.0.to_string()]);
    }
    let agent = AgentRun::spawn(AgentSpec {
        netns: Path::new(&format!("/run/netns/{}", net.ns)),
        bin,
        args: full,
        log: Path::new(net.log),
        cpu: Some(1),
    })?;
    let link = format!("{}/links/native/{a}", net.pins);
    let start = Instant::now();
    while !Path::new(&link).exists() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the agent did not attach: {}", fs::read_to_string(net.log)?);
        }
        sleep(Duration::from_millis(50));
    }
    let id = bpf::link_prog_id(Path::new(&link)).context("the program of our link")?;
    Ok((agent, id))
}

/// A 64-byte Ethernet/IPv4/TCP frame from 192.0.2.10:40000 to
/// 203.0.113.10:80 with these flags and 10 bytes of payload (or none).
fn tcp_frame(flags: u8, payload: bool) -> Vec<u8> {
    let data: &[u8] = if payload { &[0x5A; 10] } else { &[] };
    let tcp = packet::tcp(40000, 80, flags, data);
    let mut f = Frame::eth(&[], packet::ETH_IP)
        .ipv4([192, 0, 2, 10], [203, 0, 113, 10], 6, &[], 0, &tcp)
        .bytes;
    f.resize(64, 0); // Ethernet padding: the IP header's length excludes it.
    f
}

/// Mean ns per run over `repeat` runs, the best of `rounds`.
fn prog_run(id: u32, repeat: u32, rounds: u32) -> Result<u64> {
    bpf::best_duration_ns(id, &frame(), repeat, rounds)
}

fn agent(bin: &Path, args: &[&str]) -> Result<String> {
    let mut full = vec!["--pin-dir", PINS];
    full.extend_from_slice(args);
    cmd::output(bin.to_str().unwrap(), &full)
}

/// Where libxdp pins xdp-filter's maps and its dispatcher.
const LIBXDP_PINS: [&str; 2] = ["/sys/fs/bpf/xdp-filter", "/sys/fs/bpf/xdp"];

fn cleanup(bin: &Path, libxdp_ours: &[&str]) {
    let _ = agent(bin, &["detach"]);
    let ns = format!("--net=/run/netns/{NS}");
    let _ = cmd::output("nsenter", &[&ns, "xdp-filter", "unload", "pnb1"]);
    let _ = cmd::output("ip", &["netns", "del", NS]);
    for f in [BENCH_SOCKET, BENCH_JOURNAL, "/tmp/pnbench-agent.log"] {
        let _ = fs::remove_file(f);
    }
    // Only the pin directories this run made; never anyone else's.
    for dir in libxdp_ours {
        let _ = fs::remove_dir_all(dir);
    }
}

pub fn bench_xdp(bin: &Path) -> Result<()> {
    let libxdp_ours: Vec<&str> = LIBXDP_PINS
        .into_iter()
        .filter(|d| !Path::new(d).exists())
        .collect();
    cleanup(bin, &[]);
    let r = run(bin);
    cleanup(bin, &libxdp_ours);
    r
}

fn run(bin: &Path) -> Result<()> {
    // The agent, its reader pinned to CPU 1; prog runs go to CPU 0.
    let args = [
        "run",
        "--iface",
        "pnb0",
        "--sample-rate",
        "0",
        "--stats-interval",
        "1",
        // Its own control socket and journal, never a real agent's.
        "--api-socket",
        BENCH_SOCKET,
        "--journal",
        BENCH_JOURNAL,
    ];
    let (_agent, pn) = start_attached(
        bin,
        BenchNet {
            ns: NS,
            pins: PINS,
            veth: ("pnb0", "pnb1"),
            inside: Some(("pnb2", "pnb3")),
            log: "/tmp/pnbench-agent.log",
        },
        &args,
    )?;
    let inside = attached_prog_id(NS, "pnb2").context("the inside program")?;

    // xdp-filter on the peer, same kind of attach.
    cmd::output(
        "nsenter",
        &[
            &format!("--net=/run/netns/{NS}"),
            "xdp-filter",
            "load",
            "pnb1",
            "-m",
            "native",
        ],
    )?;
    let xf = *bpf::prog_ids_named("xdpfilt_")?
        .last()
        .context("xdp-filter's program")?;

    const REPEAT: u32 = 10_000_000;
    const ROUNDS: u32 = 3;
    let mut rows: Vec<(&str, String, String)> = Vec::new();

    let pass = prog_run(pn, REPEAT, ROUNDS)?;
    let xf_pass = prog_run(xf, REPEAT, ROUNDS)?;
    rows.push((
        "pass (no rule matches)",
        pass.to_string(),
        xf_pass.to_string(),
    ));

    agent(bin, &["allow", "192.0.2.10"])?;
    rows.push((
        "allowlisted",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(bin, &["disallow", "192.0.2.10"])?;

    agent(bin, &["block", "192.0.2.10"])?;
    cmd::output(
        "nsenter",
        &[
            &format!("--net=/run/netns/{NS}"),
            "xdp-filter",
            "ip",
            "192.0.2.10",
            "-m",
            "src",
        ],
    )?;
    let block = prog_run(pn, REPEAT, ROUNDS)?;
    let xf_drop = prog_run(xf, REPEAT, ROUNDS)?;
    rows.push((
        "block drop (/32, host hash)",
        block.to_string(),
        xf_drop.to_string(),
    ));
    agent(bin, &["unblock", "192.0.2.10"])?;
    // A realistic trie: 10,000 other prefixes, then the /24 that matches.
    let mut many = Vec::new();
    for i in 0..10_000u32 {
        many.push(format!("10.{}.{}.0/24", i / 256, i % 256));
    }
    for p in &many {
        agent(bin, &["block", p])?;
    }
    agent(bin, &["block", "192.0.2.0/24"])?;
    rows.push((
        "block drop (/24 among 10,001 prefixes)",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(bin, &["unblock", "192.0.2.0/24"])?;
    rows.push((
        "pass (10,000 non-matching block prefixes)",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    for p in &many {
        agent(bin, &["unblock", p])?;
    }

    agent(
        bin,
        &[
            "throttle",
            "192.0.2.0/24",
            "--rate",
            "1000000000",
            "--burst",
            "1000000",
        ],
    )?;
    rows.push((
        "throttle, admitted",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(
        bin,
        &["throttle", "192.0.2.0/24", "--rate", "1", "--burst", "1"],
    )?;
    rows.push((
        "throttle, dropped",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(bin, &["unthrottle", "192.0.2.0/24"])?;

    // Signature rules: 63 for other destinations, then one that matches
    // the frame in the last slot, so the drop row walks all 64.
    for i in 0..63u32 {
        let rule = format!("udp dst 198.51.{}.{}/32 dport 5000", i / 200, i % 200);
        agent(bin, &["signature", "add", &rule])?;
    }
    rows.push((
        "pass, 63 signature rules loaded (none matches)",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(
        bin,
        &[
            "signature",
            "add",
            "udp dst 203.0.113.10/32 dport 5000 len 64",
        ],
    )?;
    rows.push((
        "signature drop (the 64th rule matches)",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    for id in 1..=64u32 {
        agent(bin, &["signature", "remove", &id.to_string()])?;
    }

    // Sampling at 1 in 16, priority sampling on (the agent set the flag
    // at start: `dataplane.priority_sampling` defaults to true). Repeated
    // runs of one frame are one flow and one source: the UDP frame is past
    // its flow's first 2 payload packets after 2 runs (one flow-map hit per
    // run), the SYN past its source's bound after 64 (the CPU bucket peek,
    // one source-map hit, the `priority_bounded` count, then the 1-in-16
    // draw). The pure ACK touches no map.
    agent(bin, &["sampling", "16"])?;
    inside_rows(inside, &mut rows)?;
    let ack = tcp_frame(TCP_ACK, false);
    let syn = tcp_frame(TCP_SYN, false);
    let data = tcp_frame(TCP_ACK | TCP_PSH, true);
    rows.push((
        "1-in-16 + priority: pure TCP ACK (no map)",
        bpf::best_duration_ns(pn, &ack, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    rows.push((
        "1-in-16 + priority: UDP payload after its flow's first 2",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    rows.push((
        "1-in-16 + priority: TCP data after its flow's first 2",
        bpf::best_duration_ns(pn, &data, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    rows.push((
        "1-in-16 + priority: SYN past its source's bound",
        bpf::best_duration_ns(pn, &syn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    // The same frames with priority sampling off: the uniform draw alone.
    agent(bin, &["priority-sampling", "off"])?;
    rows.push((
        "1-in-16, priority off: UDP",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    rows.push((
        "1-in-16, priority off: SYN",
        bpf::best_duration_ns(pn, &syn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(bin, &["priority-sampling", "on"])?;
    // A blocked host at the default sampling: 15 of 16 packets take the
    // fast path, 1 the full parse and a sample.
    agent(bin, &["block", "192.0.2.10"])?;
    rows.push((
        "1-in-16: block drop (/32, host hash)",
        prog_run(pn, REPEAT, ROUNDS)?.to_string(),
        "-".into(),
    ));
    agent(bin, &["unblock", "192.0.2.10"])?;

    // Sampled: every packet reserves, fills and submits a ring-buffer record.
    // 20,000 runs fit in the 4 MiB ring, so none is lost to a full ring.
    agent(bin, &["sampling", "1"])?;
    let before = counter(bin, "sample_lost")?;
    let sampled = prog_run(pn, 20_000, 5)?;
    let lost = counter(bin, "sample_lost")? - before;
    rows.push((
        "pass + sampled (64-byte payload copy)",
        sampled.to_string(),
        "-".into(),
    ));
    if lost > 0 {
        println!("note: {lost} samples were lost during the sampled-path runs");
    }

    println!("\n## XDP per-packet cost (ns, BPF_PROG_TEST_RUN, 64-byte UDP/IPv4 frame)\n");
    println!("| path | PhantomNet | xdp-filter |");
    println!("|---|---:|---:|");
    for (path, a, b) in &rows {
        println!("| {path} | {a} | {b} |");
    }

    // Ring-buffer reader: the kernel produces samples as fast as test-run
    // goes on CPU 0; the agent drains on CPU 1.
    let sampled0 = counter(bin, "sampled")?;
    let lost0 = counter(bin, "sample_lost")?;
    let read0 = samples_read()?;
    let t0 = Instant::now();
    for _ in 0..10 {
        prog_run(pn, 1_000_000, 1)?;
    }
    let produce = t0.elapsed();
    sleep(Duration::from_millis(2500));
    let sampled = counter(bin, "sampled")? - sampled0;
    let lost = counter(bin, "sample_lost")? - lost0;
    let read = samples_read()? - read0;
    println!("\n## Ring-buffer reader (agent pinned to one core)\n");
    println!(
        "| produced (ok + lost) | in | produced/s | read by agent | lost (ring full) | loss |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let total = sampled + lost;
    println!(
        "| {total} | {:.2} s | {:.0} | {read} | {lost} | {:.2}% |",
        produce.as_secs_f64(),
        total as f64 / produce.as_secs_f64(),
        100.0 * lost as f64 / total.max(1) as f64
    );
    println!(
        "reader sustained at least {:.0} samples/s",
        read as f64 / produce.as_secs_f64()
    );
    Ok(())
}

/// The id of the XDP program attached to `iface` in namespace `ns`, once
/// the agent has attached one (the inside observer is attached after the
/// outside program's link is pinned, and its own link is not pinned, so
/// `ip` is asked).
fn attached_prog_id(ns: &str, iface: &str) -> Result<u32> {
    let start = Instant::now();
    loop {
        let out = cmd::output("ip", &["-j", "-n", ns, "link", "show", iface])?;
        let v: serde_json::Value = serde_json::from_str(&out).context("ip -j link show")?;
        if let Some(id) = v[0]["xdp"]["prog"]["id"].as_u64() {
            return u32::try_from(id).context("a program id");
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("no XDP program on {iface} after 20 s: {out}");
        }
        sleep(Duration::from_millis(50));
    }
}

/// A 64-byte frame a protected server sends back: from 203.0.113.10:80 to
/// 192.0.2.10:40000, TCP with these flags (no payload) or, with `flags`
/// `None`, UDP with 22 bytes of payload.
fn reply_frame(flags: Option<u8>) -> Vec<u8> {
    let (proto, l4) = match flags {
        Some(f) => (6, packet::tcp(80, 40000, f, &[])),
        None => (17, packet::udp(80, 40000, &[0x5A; 22])),
    };
    let mut f = Frame::eth(&[], packet::ETH_IP)
        .ipv4([203, 0, 113, 10], [192, 0, 2, 10], proto, &[], 0, &l4)
        .bytes;
    f.resize(64, 0);
    f
}

/// The inside observer (`phantomnet_inside`) at 1-in-16 sampling. One
/// repeated frame is one destination: an answer is past its destination's
/// bound after 8 runs (the LRU lookup, the GCRA test, the count), a reset
/// past the per-CPU refusal bound after 2,000 (the per-CPU bucket, the
/// count); the buckets' refill (20/s, 20,000/s) samples well under 1 % of
/// the runs. A SYN-ACK is neither an answer nor a refusal: parsed, then
/// passed.
fn inside_rows(id: u32, rows: &mut Vec<(&str, String, String)>) -> Result<()> {
    const REPEAT: u32 = 10_000_000;
    const ROUNDS: u32 = 3;
    for (path, frame) in [
        (
            "inside: SYN-ACK (neither answer nor refusal)",
            reply_frame(Some(TCP_SYN | TCP_ACK)),
        ),
        (
            "inside: TCP answer past its destination's bound",
            reply_frame(Some(TCP_ACK)),
        ),
        (
            "inside: UDP answer past its destination's bound",
            reply_frame(None),
        ),
        (
            "inside: TCP reset past the per-CPU bound",
            reply_frame(Some(TCP_RST | TCP_ACK)),
        ),
    ] {
        rows.push((
            path,
            bpf::best_duration_ns(id, &frame, REPEAT, ROUNDS)?.to_string(),
            "-".into(),
        ));
    }
    Ok(())
}

fn counter(bin: &Path, outcome: &str) -> Result<u64> {
    stats_counter(bin, PINS, outcome)
}

fn samples_read() -> Result<u64> {
    logged_samples_read(Path::new("/tmp/pnbench-agent.log"))
}

/// One outcome's packets from `phantomnet-agent --pin-dir <pins> stats`.
pub(crate) fn stats_counter(bin: &Path, pins: &str, outcome: &str) -> Result<u64> {
    let stats = cmd::output(
        bin.to_str().context("agent path")?,
        &["--pin-dir", pins, "stats"],
    )?;
    stats
        .lines()
        .find(|l| l.starts_with(outcome))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{outcome} in {stats}"))
}

/// The agent's own count of samples read, from the last counters line of
/// its log (each read batch is decided before the next is read).
pub(crate) fn logged_samples_read(log: &Path) -> Result<u64> {
    let log = fs::read_to_string(log)?;
    log.lines()
        .rev()
        .find_map(|l| {
            l.split("samples_read=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("samples_read in the agent log")
}
