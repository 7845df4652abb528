//! The control API of a real agent process, over real sockets: every RPC,
//! validation errors that change nothing, the Unix socket's permissions,
//! mutual TLS on TCP, the journal across kill -9, and config errors and
//! SIGHUP reloads.
mod access;
mod detection;
mod durability;
mod events;
mod invalid;
mod rules;
mod serving;
mod signatures;

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use phantomnet_agent::api::{
    client::{ClientTls, connect_tls, connect_unix, unix_channel},
    pb::{self, agent_client::AgentClient},
};
use phantomnet_tests::{
    AgentProcess, Banner, Pki, Role, TestLab, addr, drain, from_src, in_netns, root_or_skip,
    send_udp, udp_from, udp_sink, who_answers,
};
use tonic::{Code, transport::Channel};

/// The shipped model registry, or `PHANTOMNET_TEST_MODEL`.
fn models_dir() -> PathBuf {
    std::env::var_os("PHANTOMNET_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
}

/// A config for the lab's gateway: honeypot on 22, the shipped model.
fn write_config(t: &TestLab, extra: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-agent.toml", t.lab.prefix()));
    let text = format!(
        r#"
[dataplane]
interfaces = ["out0"]
pin_dir = "{pins}"
# No samples, so detection never acts on the test traffic: every rule here
# is one the test made.
sample_every = 0

[[honeypot]]
port = 22
target = "{hp}:2222"

[model]
path = "{model}"

[api]
socket = "{socket}"

[journal]
path = "{journal}"
{extra}
"#,
        pins = t.pins.path().display(),
        hp = addr::HP4,
        model = models_dir().display(),
        socket = t.api_socket().display(),
        journal = t.journal().display(),
    );
    fs::write(&path, text).unwrap();
    path
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(t: &TestLab) -> AgentClient<Channel> {
    connect_unix(t.api_socket())
        .await
        .expect("connect to the agent")
}

fn deliver(t: &TestLab, src: &str) -> usize {
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV4, 5000);
    let role = if src.starts_with("192.0.2.") {
        Role::Atk
    } else {
        Role::Cli
    };
    let dst: SocketAddr = format!("{}:5000", addr::SRV4).parse().unwrap();
    send_udp(&udp_from(&t.netns(role), src), dst, 10, b"api", None);
    from_src(&drain(&sink, Duration::from_millis(300)), src)
}

async fn all_rules(c: &mut AgentClient<Channel>) -> Vec<(i32, String)> {
    let r = c
        .list_rules(pb::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut v: Vec<_> = r.rules.iter().map(|r| (r.action, r.cidr.clone())).collect();
    v.sort();
    v
}

/// The Prometheus endpoint's body, from the gateway namespace's loopback.
fn metrics_text(t: &TestLab) -> String {
    in_netns(&t.netns(Role::Gw), || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9477").unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
}

/// The value of one series (name and labels exactly as rendered).
fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("the request should have been refused");
    (s.code(), s.message().to_string())
}

#[test]
fn every_rpc_over_the_unix_socket() {
    if !root_or_skip("every_rpc_over_the_unix_socket") {
        return;
    }
    let t = TestLab::up("api");
    let cfg = write_config(&t, "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let _srv = Banner::start(&t, Role::Srv, addr::SRV4, 22, b"server");
    let _hp = Banner::start(&t, Role::Hp, addr::HP4, 2222, b"honeypot");
    rt().block_on(async {
        let mut c = client(&t).await;
        rules::status(&mut c).await;
        rules::block(&t, &mut c).await;
        rules::rules(&t, &mut c).await;
        signatures::rules(&t, &mut c).await;
        signatures::invalid(&t, &mut c).await;
        signatures::full(&mut c).await;
        signatures::remove(&t, &mut c).await;
        events::journal(&mut c).await;
        events::watch(&t, &mut c).await;
        detection::analyze(&mut c).await;
        detection::model(&mut c).await;
        detection::settings(&mut c).await;
        serving::health(&t).await;
    });

    // The Prometheus endpoint, on the gateway namespace's loopback.
    std::thread::sleep(Duration::from_millis(1200)); // one counters publication
    let body = metrics_text(&t);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for metric in [
        "phantomnet_xdp_packets_total{",
        "outcome=\"passed\"",
        "interface=\"out0\"",
        "phantomnet_decisions_total",
        "phantomnet_active_rules",
        "phantomnet_inference_seconds",
        "phantomnet_flow_table_sources",
        "phantomnet_deceive_queue",
        "phantomnet_samples_read_total",
    ] {
        assert!(
            body.contains(metric),
            "{metric} missing from /metrics:\n{body}"
        );
    }
}
