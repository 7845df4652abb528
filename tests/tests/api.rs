//! The control API of a real agent process, over real sockets: every RPC,
//! validation errors that change nothing, the Unix socket's permissions,
//! mutual TLS on TCP, the journal across kill -9, and config errors and
//! SIGHUP reloads.
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
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    let a2 = addr::atk_src4(2);
    rt().block_on(async {
        let mut c = client(&t).await;

        let s = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert!(!s.version.is_empty());
        assert_eq!(s.interfaces.len(), 1);
        assert_eq!(
            (
                s.interfaces[0].name.as_str(),
                s.interfaces[0].xdp_mode.as_str()
            ),
            ("out0", "native")
        );
        assert!(s.model_version.contains("model-v"), "{}", s.model_version);
        assert_eq!(s.mode, pb::Mode::Enforce as i32);
        assert_eq!(s.counters.len(), 7);

        // Block: dropped in the data plane, visible with bpftool.
        let r = c
            .block(pb::BlockRequest {
                cidr: a0.clone(),
                ttl_seconds: 600,
                reason: "api test".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .rule
            .unwrap();
        assert_eq!(
            (r.action, r.cidr.as_str()),
            (pb::Action::Block as i32, format!("{a0}/32").as_str())
        );
        assert!(r.expires_in_seconds > 590 && r.expires_in_seconds <= 600);
        assert_eq!(deliver(&t, &a0), 0, "blocked over gRPC");
        let dump = Command::new("bpftool")
            .args(["map", "dump", "pinned"])
            .arg(t.pins.map("PN_BLOCK_V4"))
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(
            dump.contains("\"prefix_len\": 32") && dump.contains("\"reason\": 4"),
            "{dump}"
        );
        c.unblock(pb::PrefixRequest { cidr: a0.clone() })
            .await
            .unwrap();
        assert_eq!(deliver(&t, &a0), 10, "unblocked");

        // Throttle, allow, deceive; ListRules with a filter and pages.
        c.throttle(pb::ThrottleRequest {
            cidr: a1.clone(),
            rate_pps: 5,
            burst: 1,
            ..Default::default()
        })
        .await
        .unwrap();
        c.allow(pb::PrefixRequest {
            cidr: addr::CLI4.into(),
        })
        .await
        .unwrap();
        let (code_, msg) = code(
            c.block(pb::BlockRequest {
                cidr: addr::CLI4.into(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!(code_, Code::FailedPrecondition, "{msg}");
        assert!(msg.contains("allowlisted"), "{msg}");
        c.deceive(pb::DeceiveRequest {
            cidr: a2.clone(),
            ttl_seconds: 120,
            ..Default::default()
        })
        .await
        .unwrap();
        let ssh: SocketAddr = format!("{}:22", addr::SRV4).parse().unwrap();
        assert_eq!(who_answers(&t, Role::Atk, &a2, ssh), "honeypot");
        let throttles = c
            .list_rules(pb::ListRulesRequest {
                action: pb::Action::Throttle as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(throttles.rules.len(), 1);
        assert_eq!(
            (throttles.rules[0].rate_pps, throttles.rules[0].burst),
            (5, 1)
        );
        let page1 = c
            .list_rules(pb::ListRulesRequest {
                page_size: 2,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page1.rules.len(), 2);
        assert!(!page1.next_page_token.is_empty());
        let page2 = c
            .list_rules(pb::ListRulesRequest {
                page_size: 2,
                page_token: page1.next_page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page2.rules.len(), 1, "allow + throttle + deceive = 3 rules");
        assert!(page2.next_page_token.is_empty());
        c.undeceive(pb::PrefixRequest { cidr: a2.clone() })
            .await
            .unwrap();
        assert_eq!(who_answers(&t, Role::Atk, &a2, ssh), "server");
        c.unthrottle(pb::PrefixRequest { cidr: a1.clone() })
            .await
            .unwrap();
        c.disallow(pb::PrefixRequest {
            cidr: addr::CLI4.into(),
        })
        .await
        .unwrap();
        assert!(all_rules(&mut c).await.is_empty());

        // The journal recorded every operator action; filters and pages work.
        let ev = c
            .list_events(pb::ListEventsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let actions: Vec<i32> = ev
            .events
            .iter()
            .filter(|e| e.rule == "api")
            .map(|e| e.action)
            .collect();
        assert!(
            actions.contains(&(pb::Action::Block as i32))
                && actions.contains(&(pb::Action::Deceive as i32)),
            "{actions:?}"
        );
        let blocks = c
            .list_events(pb::ListEventsRequest {
                action: pb::Action::Block as i32,
                source_prefix: a0.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(blocks.events.len(), 1);
        assert_eq!(blocks.events[0].source, a0);
        let first = c
            .list_events(pb::ListEventsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let second = c
            .list_events(pb::ListEventsRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            second.events[0].id < first.events[0].id,
            "newest first, no repeats"
        );

        // WatchEvents sees a new decision as it happens.
        let mut watch = c
            .watch_events(pb::WatchEventsRequest {
                source_prefix: "192.0.2.0/24".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut c2 = client(&t).await;
        c2.block(pb::BlockRequest {
            cidr: addr::atk_src4(3),
            ttl_seconds: 30,
            ..Default::default()
        })
        .await
        .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.source.as_str(), e.action),
            (addr::atk_src4(3).as_str(), pb::Action::Block as i32)
        );

        // Analyze: a feature vector and a sample; nothing is enforced.
        let before = all_rules(&mut c).await;
        let a = c
            .analyze(pb::AnalyzeRequest {
                input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                    values: vec![
                        60.0, 1.0, 1.0, 1.0, 5.0, 5.0, 0.2, 0.01, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0,
                        64.0,
                    ],
                })),
                source: a0.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(a.rule.starts_with("rule "), "{}", a.rule);
        assert_eq!(a.features.len(), 15);
        let sqli = c
            .analyze(pb::AnalyzeRequest {
                input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                    src: a0.clone(),
                    dst: addr::SRV4.into(),
                    src_port: 40000,
                    dst_port: 80,
                    protocol: 6,
                    tcp_flags: 0x18,
                    ttl: 64,
                    packet_length: 120,
                    payload: b"GET /?id=1' UNION SELECT password FROM users-- HTTP/1.1".to_vec(),
                })),
                source: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!sqli.signatures.is_empty(), "{sqli:?}");
        assert!(sqli.threat > 0.0 && !sqli.explanation.is_empty());
        assert_eq!(all_rules(&mut c).await, before, "Analyze enforces nothing");

        // Model: info, and a bad file never replaces the running model.
        let m = c
            .get_model(pb::GetModelRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!((m.schema_version, m.feature_names.len()), (1, 15));
        let bad = std::env::temp_dir().join("phantomnet-not-a-model.pnm");
        fs::write(&bad, b"definitely not a model").unwrap();
        let (code_, msg) = code(
            c.load_model(pb::LoadModelRequest {
                path: bad.display().to_string(),
            })
            .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{msg}");
        assert!(
            msg.starts_with("path: ") && msg.contains("outside the model directory"),
            "{msg}"
        );
        let (code_, _) = code(
            c.load_model(pb::LoadModelRequest {
                path: "/nonexistent/model.pnm".into(),
            })
            .await,
        );
        assert!(matches!(code_, Code::InvalidArgument | Code::NotFound));
        let _ = fs::remove_file(&bad);
        assert_eq!(
            c.get_model(pb::GetModelRequest {})
                .await
                .unwrap()
                .into_inner()
                .version,
            m.version
        );
        let reloaded = c
            .load_model(pb::LoadModelRequest {
                path: models_dir().display().to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reloaded.training_data_sha256, m.training_data_sha256);

        // Thresholds, mode, sampling.
        let t0 = c
            .get_thresholds(pb::GetThresholdsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                t0.low,
                t0.medium_confidence,
                t0.medium,
                t0.high_confidence,
                t0.high
            ),
            (0.3, 0.6, 0.5, 0.8, 0.8)
        );
        let t1 = c
            .set_thresholds(pb::Thresholds { high: 0.9, ..t0 })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t1.high, 0.9);
        c.set_mode(pb::SetModeRequest {
            mode: pb::Mode::DryRun as i32,
        })
        .await
        .unwrap();
        c.set_sampling(pb::SetSamplingRequest { every: 4 })
            .await
            .unwrap();
        let s = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!((s.mode, s.sample_every), (pb::Mode::DryRun as i32, 4));
        c.set_sampling(pb::SetSamplingRequest { every: 0 })
            .await
            .unwrap();

        // Health and reflection on the same socket.
        let ch = unix_channel(t.api_socket()).await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        let h = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "phantomnet.v1.Agent".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            h.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let mut refl =
            tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(ch);
        let req = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
        };
        let mut resp = refl
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let listed = format!("{:?}", resp.message().await.unwrap().unwrap());
        assert!(
            listed.contains("phantomnet.v1.Agent") && listed.contains("grpc.health.v1.Health"),
            "{listed}"
        );
    });

    // The Prometheus endpoint, on the gateway namespace's loopback.
    std::thread::sleep(Duration::from_millis(1200)); // one counters publication
    let body = in_netns(&t.netns(Role::Gw), || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.0.0.1:9477").unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for metric in [
        "phantomnet_xdp_packets_total{",
        "outcome=\"passed\"",
        "interface=\"out0\"",
        "phantomnet_decisions_total",
        "phantomnet_active_rules",
        "phantomnet_inference_seconds",
        "phantomnet_flow_table_sources",
        "phantomnet_samples_read_total",
    ] {
        assert!(
            body.contains(metric),
            "{metric} missing from /metrics:\n{body}"
        );
    }
}

#[test]
fn invalid_requests_name_the_field_and_change_nothing() {
    if !root_or_skip("invalid_requests_name_the_field_and_change_nothing") {
        return;
    }
    let t = TestLab::up("apibad");
    let cfg = write_config(&t, "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    rt().block_on(async {
        let mut c = client(&t).await;
        c.block(pb::BlockRequest {
            cidr: "192.0.2.0/24".into(),
            ttl_seconds: 600,
            reason: "keep".into(),
        })
        .await
        .unwrap();
        let rules = all_rules(&mut c).await;
        let thresholds = c
            .get_thresholds(pb::GetThresholdsRequest {})
            .await
            .unwrap()
            .into_inner();
        let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();

        let long = "x".repeat(40);
        let cases: Vec<(&str, Result<(), tonic::Status>)> = vec![
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.0/33".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.7/24".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.throttle(pb::ThrottleRequest {
                    cidr: "not-an-ip".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "ttl_seconds",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.1".into(),
                    ttl_seconds: u64::MAX,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "reason",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.1".into(),
                    reason: long.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "rate_pps",
                c.throttle(pb::ThrottleRequest {
                    cidr: "192.0.2.1".into(),
                    rate_pps: 2_000_000_000,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "action",
                c.list_rules(pb::ListRulesRequest {
                    action: 42,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "page_size",
                c.list_rules(pb::ListRulesRequest {
                    page_size: 5000,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "page_token",
                c.list_rules(pb::ListRulesRequest {
                    page_token: "abc".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "source_prefix",
                c.list_events(pb::ListEventsRequest {
                    source_prefix: "x".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "verdict",
                c.list_events(pb::ListEventsRequest {
                    verdict: 9,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "since_unix_ns",
                c.list_events(pb::ListEventsRequest {
                    since_unix_ns: 10,
                    until_unix_ns: 5,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "input",
                c.analyze(pb::AnalyzeRequest {
                    input: None,
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "features",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                        values: vec![1.0; 14],
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "features",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                        values: {
                            let mut v = vec![1.0; 15];
                            v[3] = f64::NAN;
                            v
                        },
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "sample.src",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                        src: "x".into(),
                        dst: addr::SRV4.into(),
                        ..Default::default()
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "sample.dst_port",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                        src: addr::CLI4.into(),
                        dst: addr::SRV4.into(),
                        dst_port: 70000,
                        ..Default::default()
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "path",
                c.load_model(pb::LoadModelRequest {
                    path: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "high",
                c.set_thresholds(pb::Thresholds {
                    high: 1.5,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "medium",
                c.set_thresholds(pb::Thresholds {
                    medium: 0.9,
                    high: 0.8,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "medium_confidence",
                c.set_thresholds(pb::Thresholds {
                    medium_confidence: 0.95,
                    high_confidence: 0.8,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "mode",
                c.set_mode(pb::SetModeRequest { mode: 0 }).await.map(drop),
            ),
        ];
        for (field, r) in cases {
            let (code_, msg) = code(r);
            assert_eq!(code_, Code::InvalidArgument, "{field}: {msg}");
            assert!(
                msg.starts_with(&format!("{field}: ")),
                "expected the message to name {field}: {msg}"
            );
        }
        // Not-found is its own code, and changes nothing either.
        let (code_, _) = code(
            c.unblock(pb::PrefixRequest {
                cidr: "198.51.100.0/24".into(),
            })
            .await,
        );
        assert_eq!(code_, Code::NotFound);
        let (code_, _) = code(
            c.undeceive(pb::PrefixRequest {
                cidr: "198.51.100.9".into(),
            })
            .await,
        );
        assert_eq!(code_, Code::NotFound);

        assert_eq!(all_rules(&mut c).await, rules, "no rule changed");
        assert_eq!(
            c.get_thresholds(pb::GetThresholdsRequest {})
                .await
                .unwrap()
                .into_inner(),
            thresholds
        );
        let after = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(
            (after.mode, after.sample_every),
            (status.mode, status.sample_every)
        );
    });
}

#[test]
fn the_unix_socket_is_for_root_only() {
    if !root_or_skip("the_unix_socket_is_for_root_only") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = TestLab::up("apisock");
    let cfg = write_config(&t, "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let meta = fs::metadata(t.api_socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);
    let ctl = phantomnet_tests::agent_bin().with_file_name("phantomctl");
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&ctl)
        .arg("--socket")
        .arg(t.api_socket())
        .arg("status")
        .output()
        .unwrap();
    assert!(!as_nobody.status.success());
    assert!(
        String::from_utf8_lossy(&as_nobody.stderr).contains("ermission denied"),
        "{}",
        String::from_utf8_lossy(&as_nobody.stderr)
    );
    let as_root = Command::new(&ctl)
        .arg("--socket")
        .arg(t.api_socket())
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert!(
        as_root.status.success(),
        "{}",
        String::from_utf8_lossy(&as_root.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&as_root.stdout).unwrap();
    assert_eq!(v["interfaces"][0]["name"], "out0");
}

#[test]
fn tcp_requires_a_client_certificate_from_the_configured_ca() {
    if !root_or_skip("tcp_requires_a_client_certificate_from_the_configured_ca") {
        return;
    }
    let t = TestLab::up("mtls");
    let pki = Pki::new("mtls");
    let tcp = format!(
        "\n[api.tcp]\nlisten = \"127.0.0.1:50443\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
        pki.path("ca.crt").display()
    );
    let cfg = write_config(&t, &tcp);
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let url = "https://127.0.0.1:50443";
    let ca = pki.path("ca.crt");
    // The listener is on the gateway namespace's loopback: connect from there.
    let attempt = |cert: Option<&str>| {
        let (c, k) = (
            cert.map(|s| pki.path(&format!("{s}.crt"))),
            cert.map(|s| pki.path(&format!("{s}.key"))),
        );
        in_netns(&t.netns(Role::Gw), || {
            rt().block_on(async {
                let tls = ClientTls {
                    ca: &ca,
                    cert: c.as_deref(),
                    key: k.as_deref(),
                    domain: Some("localhost"),
                };
                let mut client = connect_tls(url, &tls).await.map_err(|e| e.to_string())?;
                client
                    .status(pb::StatusRequest {})
                    .await
                    .map(|r| r.into_inner().version)
                    .map_err(|e| e.to_string())
            })
        })
    };
    let ok = attempt(Some("client")).expect("a client with a certificate from the CA is served");
    assert!(!ok.is_empty());
    assert!(attempt(None).is_err(), "no client certificate: nothing");
    assert!(
        attempt(Some("untrusted")).is_err(),
        "a certificate from another CA: nothing"
    );
    let plain = in_netns(&t.netns(Role::Gw), || {
        rt().block_on(async {
            let ch = tonic::transport::Endpoint::from_static("http://127.0.0.1:50443")
                .connect()
                .await?;
            let mut client = AgentClient::new(ch);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                client
                    .status(pb::StatusRequest {})
                    .await?
                    .into_inner()
                    .version,
            )
        })
    });
    assert!(plain.is_err(), "plain TCP: nothing");
}

#[test]
fn journal_survives_kill9_mid_write() {
    if !root_or_skip("journal_survives_kill9_mid_write") {
        return;
    }
    let t = TestLab::up("journal");
    let cfg = write_config(&t, "");
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    // Operator actions in a tight loop from a second thread, while the agent
    // is killed under them.
    let socket = t.api_socket();
    let writer = std::thread::spawn(move || {
        rt().block_on(async {
            let Ok(mut c) = connect_unix(&socket).await else {
                return 0;
            };
            let mut acked = 0u32;
            for i in 0..100_000u32 {
                let cidr = format!("10.{}.{}.0/24", (i / 256) % 256, i % 256);
                if c.block(pb::BlockRequest {
                    cidr,
                    ttl_seconds: 60,
                    reason: "churn".into(),
                })
                .await
                .is_err()
                {
                    break;
                }
                acked += 1;
            }
            acked
        })
    });
    std::thread::sleep(Duration::from_millis(1500));
    agent.kill9();
    let acked = writer.join().unwrap();
    assert!(acked > 10, "the writer got going ({acked})");

    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    rt().block_on(async {
        let mut c = client(&t).await;
        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let r = c
                .list_events(pb::ListEventsRequest {
                    page_size: 1000,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            for e in &r.events {
                assert_eq!(e.action, pb::Action::Block as i32);
                assert!(e.reason.contains("churn"), "{}", e.reason);
            }
            ids.extend(r.events.iter().map(|e| e.id));
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
        assert!(
            ids.len() >= acked as usize,
            "every acknowledged action is journaled ({} < {acked})",
            ids.len()
        );
        ids.sort();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous ids, nothing torn"
        );
    });
}

#[test]
fn config_errors_name_the_key_and_a_bad_reload_keeps_the_running_config() {
    if !root_or_skip("config_errors_name_the_key_and_a_bad_reload_keeps_the_running_config") {
        return;
    }
    let t = TestLab::up("config");
    // Errors at start name the key, and the agent does not start.
    for (extra, key) in [
        (
            "[thresholds]\nmedium = 0.9\nhigh = 0.8\n",
            "thresholds.medium",
        ),
        (
            "[enforcement]\nthrottle_rate_pps = 0\n",
            "enforcement.throttle_rate_pps",
        ),
        ("[dataplane2]\nfoo = 1\n", "dataplane2"),
    ] {
        let cfg = write_config(&t, extra);
        let out = Command::new(phantomnet_tests::agent_bin())
            .args(["run", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key}: {err}");
    }

    let cfg = write_config(&t, "[thresholds]\nhigh = 0.85\n");
    let mut agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let high = || {
        rt().block_on(async {
            let mut c = client(&t).await;
            c.get_thresholds(pb::GetThresholdsRequest {})
                .await
                .unwrap()
                .into_inner()
                .high
        })
    };
    assert_eq!(high(), 0.85);
    let pid = agent.pid();
    // A broken file: the running config stays.
    fs::write(
        &cfg,
        fs::read_to_string(&cfg)
            .unwrap()
            .replace("high = 0.85", "high = 1.5"),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let line = agent.wait_for_log("config reload refused", Duration::from_secs(5));
    assert!(line.contains("thresholds.high"), "{line}");
    assert_eq!(high(), 0.85);
    // A good one applies.
    fs::write(
        &cfg,
        fs::read_to_string(&cfg)
            .unwrap()
            .replace("high = 1.5", "high = 0.95"),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    agent.wait_for_log("config reloaded", Duration::from_secs(5));
    assert_eq!(high(), 0.95);
}
