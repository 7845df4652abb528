//! The demo's heavier benign clients, the kinds a measurement of issue 10
//! found misjudged: a bulk download, a throughput test, a health checker
//! and an IPv6 browser. Each repeats until the demo stops it, every run
//! bounded in time, from a source of its own in the lab's client
//! namespace, against the lab's servers (an `iperf3 -s` of its own for the
//! throughput test).
use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use anyhow::{Result, bail};
use phantomnet_lab::{
    lab::{Lab, Role, addr},
    proc::Bg,
    traffic::Scenario,
};

/// iperf3's port on the server.
const IPERF_PORT: &str = "5201";

/// The heavier benign kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    BulkDownload,
    Throughput,
    HealthCheck,
    Ipv6Browser,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::BulkDownload,
        Kind::Throughput,
        Kind::HealthCheck,
        Kind::Ipv6Browser,
    ];

    /// Its name in the demo's table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::BulkDownload => "bulk_download",
            Kind::Throughput => "throughput",
            Kind::HealthCheck => "health_check",
            Kind::Ipv6Browser => "ipv6_browser",
        }
    }
}

/// One client: its kind and its source address.
#[derive(Clone, Debug)]
pub struct Client {
    pub kind: Kind,
    pub src: String,
}

/// The four kinds, each from its own source.
pub fn clients() -> Vec<Client> {
    Kind::ALL
        .iter()
        .zip([
            addr::cli_src4(8),
            addr::cli_src4(9),
            addr::cli_src4(10),
            addr::cli_src6(11),
        ])
        .map(|(&kind, src)| Client { kind, src })
        .collect()
}

/// Starts the throughput test's server in the server namespace.
pub fn start_iperf_server(lab: &Lab) -> Result<Bg> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.ns(Role::Srv)])
        .args(["iperf3", "-s", "-p", IPERF_PORT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let bg = Bg::spawn(c, "iperf3 -s")?;
    thread::sleep(Duration::from_millis(300));
    Ok(bg)
}

/// One bounded run of `client`'s traffic.
fn run_once(lab: &Lab, client: &Client) -> Result<()> {
    let argv: Vec<String> = match client.kind {
        // 8 MiB, the server's largest file, as fast as the veth goes.
        Kind::BulkDownload => vec![
            "wget".into(),
            "-q".into(),
            "-O".into(),
            "/dev/null".into(),
            format!("--bind-address={}", client.src),
            format!("http://{}/files/8388608", addr::SRV4),
        ],
        // 200 Mbit/s for 4 s, client to server.
        Kind::Throughput => vec![
            "iperf3".into(),
            "-c".into(),
            addr::SRV4.into(),
            "-p".into(),
            IPERF_PORT.into(),
            "-B".into(),
            client.src.clone(),
            "-b".into(),
            "200M".into(),
            "-t".into(),
            "4".into(),
        ],
        // One request every 0.3 s, 30 of them.
        Kind::HealthCheck => vec![
            "sh".into(),
            "-c".into(),
            "for i in $(seq 30); do curl -s -o /dev/null --max-time 2 --interface \"$1\" \
             \"http://$2/\"; sleep 0.3; done"
                .into(),
            "sh".into(),
            client.src.clone(),
            addr::SRV4.into(),
        ],
        Kind::Ipv6Browser => {
            let budget = Scenario::BenignBrowse.default_budget();
            Scenario::BenignBrowse.run(lab, &client.src, budget, 1.0)?;
            return Ok(());
        }
    };
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns(Role::Cli)])
        .args(["timeout", "--kill-after=2", "20"])
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "{} exited with {}: {}",
            argv[0],
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs every client in a loop until `stop`.
pub fn start(lab: &Lab, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    clients()
        .into_iter()
        .map(|client| {
            let (lab, stop) = (lab.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = run_once(&lab, &client) {
                        eprintln!("demo: {}: {e:#}", client.kind.name());
                        thread::sleep(Duration::from_secs(1));
                    }
                }
            })
        })
        .collect()
}
