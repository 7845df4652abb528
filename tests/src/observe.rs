//! Looking at a running agent from outside: its config file, its
//! Prometheus endpoint, its memory.
use std::{
    fs,
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{Role, TestLab, addr, drain, in_netns, send_udp, udp_from, udp_sink};

/// The default metrics address, on the gateway namespace's loopback.
pub const METRICS_ADDR: &str = "127.0.0.1:9477";

/// Writes the agent config for `t` (its interface, pins, socket, journal,
/// 1-in-`sample_every` sampling) with `extra` TOML appended; returns its path.
pub fn write_agent_config(t: &TestLab, sample_every: u32, extra: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-agent.toml", t.lab.prefix()));
    let text = format!(
        "[dataplane]\ninterfaces = [\"out0\"]\ninside_interfaces = [\"in0\"]\npin_dir = \"{pins}\"\nsample_every = {sample_every}\n\n\
         [api]\nsocket = \"{socket}\"\n\n[journal]\npath = \"{journal}\"\n\n{extra}\n",
        pins = t.pins.path().display(),
        socket = t.api_socket().display(),
        journal = t.journal().display(),
    );
    fs::write(&path, text).unwrap();
    path
}

/// The agent's `/metrics` body.
pub fn scrape(t: &TestLab) -> String {
    let body = in_netns(&t.netns(Role::Gw), || {
        let mut s = TcpStream::connect(METRICS_ADDR)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok::<_, std::io::Error>(out)
    })
    .expect("scraping /metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// The value of the sample line starting with `series` (a name with its
/// labels as exposed, e.g. `phantomnet_feed_entries{feed="x"}`).
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].split_whitespace().next()?.parse().ok())
}

/// Polls the metrics until `series` satisfies `ok`, or panics after `limit`
/// with the last body.
pub fn wait_metric(t: &TestLab, series: &str, limit: Duration, ok: impl Fn(f64) -> bool) -> f64 {
    let start = Instant::now();
    loop {
        let body = scrape(t);
        if let Some(v) = metric(&body, series)
            && ok(v)
        {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "{series} never reached the expected value in {limit:?}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A process's resident memory, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .expect("VmRSS")
}

/// How many of 20 UDP datagrams from attacker address `src` reach the
/// server's port 5000 (0 when XDP drops the source).
pub fn delivered(t: &TestLab, src: &str) -> usize {
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV4, 5000);
    let from = udp_from(&t.netns(Role::Atk), src);
    let dst: std::net::SocketAddr = format!("{}:5000", addr::SRV4).parse().unwrap();
    send_udp(&from, dst, 20, b"delivery probe", None);
    drain(&sink, Duration::from_millis(300)).len()
}
