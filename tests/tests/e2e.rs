//! End to end over the lab: the agent with the shipped model against real
//! attack tools (nmap, hping3, curl with injections, SSH-port hammering)
//! while benign clients run, plus restarts and an orchestrator's commands.
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use phantomnet_agent::api::{
    client::connect_unix,
    pb::{self, agent_client::AgentClient},
};
use phantomnet_lab::{
    agent::AgentRun,
    proc::Bg,
    traffic::{Budget, Scenario, Servers},
};
use phantomnet_tests::{
    Role, TestLab, addr, drain, from_src, root_or_skip, send_udp, udp_from, udp_sink, who_answers,
};
use tonic::transport::Channel;
use xtask::demo::{Paths, read_capture, start_agent, start_honeypot, write_config};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A lab with the servers, the honeypot and the agent (shipped model,
/// every packet sampled and captured).
struct Rig {
    /// One runtime for connecting and calling: a channel's worker runs on it.
    rt: tokio::runtime::Runtime,
    t: TestLab,
    paths: Paths,
    agent: Option<AgentRun>,
    _servers: Servers,
    _honeypot: Bg,
}

impl Rig {
    fn up(name: &str, feed: &str) -> Rig {
        let t = TestLab::up(name);
        let paths = Paths {
            dir: std::env::temp_dir().join(format!("pnt-{name}-e2e")),
            pins: t.pins.path().to_path_buf(),
        };
        let _ = std::fs::remove_dir_all(&paths.dir);
        write_config(&root(), &paths, feed, 1, None).unwrap();
        let servers = Servers::start(&t.lab).unwrap();
        let honeypot = start_honeypot(&t.lab).unwrap();
        let mut rig = Rig {
            rt: rt(),
            t,
            paths,
            agent: None,
            _servers: servers,
            _honeypot: honeypot,
        };
        rig.start_agent();
        rig
    }

    fn start_agent(&mut self) {
        let bin = phantomnet_tests::agent_bin();
        let agent = start_agent(
            &self.t.lab,
            &bin,
            &self.paths.file("agent.toml"),
            &self.paths.file(&format!(
                "capture-{}.pncap",
                Instant::now().elapsed().as_nanos()
            )),
            &self.paths.file("agent.log"),
        )
        .unwrap();
        self.agent = Some(agent);
    }

    fn kill9(&mut self) {
        if let Some(a) = self.agent.take() {
            a.kill9();
        }
    }

    fn client(&self) -> AgentClient<Channel> {
        self.rt
            .block_on(connect_unix(self.paths.file("agent.sock")))
            .unwrap()
    }

    /// Journal records of the detector's enforcements, per source: actions in order.
    fn enforced(&self) -> BTreeMap<IpAddr, Vec<(String, String)>> {
        let mut c = self.client();
        let events = self
            .rt
            .block_on(c.list_events(pb::ListEventsRequest {
                page_size: 1000,
                ..Default::default()
            }))
            .unwrap()
            .into_inner()
            .events;
        let mut out: BTreeMap<IpAddr, Vec<(String, String)>> = BTreeMap::new();
        for e in events.iter().rev() {
            if e.rule != "api" && e.reason.contains("; enforced") {
                let action = pb::Action::try_from(e.action)
                    .unwrap()
                    .as_str_name()
                    .to_string();
                out.entry(e.source.parse().unwrap())
                    .or_default()
                    .push((action, e.reason.clone()));
            }
        }
        out
    }

    fn run(&self, sc: Scenario, src: &str) {
        sc.run(&self.t.lab, src, sc.default_budget(), 1.0).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.paths.dir);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn actions(e: &BTreeMap<IpAddr, Vec<(String, String)>>, src: &str) -> Vec<String> {
    e.get(&ip(src))
        .map(|v| v.iter().map(|(a, _)| a.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_syn_flood_is_throttled_or_blocked() {
    if !root_or_skip("a_syn_flood_is_throttled_or_blocked") {
        return;
    }
    let rig = Rig::up("synflood", "");
    let src = addr::atk_src4(0);
    rig.run(Scenario::SynFlood, &src);
    let got = actions(&rig.enforced(), &src);
    assert!(
        got.iter()
            .any(|a| a == "ACTION_THROTTLE" || a == "ACTION_BLOCK"),
        "SYN flood enforced with {got:?}"
    );
}

#[test]
fn a_port_scan_is_deceived_or_blocked_and_a_deceived_scanner_reaches_the_honeypot() {
    if !root_or_skip(
        "a_port_scan_is_deceived_or_blocked_and_a_deceived_scanner_reaches_the_honeypot",
    ) {
        return;
    }
    let rig = Rig::up("scan", "");
    let src = addr::atk_src4(1);
    rig.run(Scenario::NmapSyn, &src);
    let got = actions(&rig.enforced(), &src);
    assert!(
        got.iter()
            .any(|a| a == "ACTION_DECEIVE" || a == "ACTION_BLOCK"),
        "port scan enforced with {got:?}"
    );
    let ssh: SocketAddr = format!("{}:22", addr::SRV4).parse().unwrap();
    if got.last().is_some_and(|a| a == "ACTION_DECEIVE") {
        let banner = who_answers(&rig.t, Role::Atk, &src, ssh);
        assert!(
            banner.contains("honeypot"),
            "a deceived scanner lands on the honeypot: {banner:?}"
        );
        // A client nobody deceived still reaches the real server.
        let banner = who_answers(&rig.t, Role::Cli, addr::CLI4, ssh);
        assert!(!banner.contains("honeypot"), "{banner:?}");
    }
}

#[test]
fn injection_payloads_are_caught_by_the_signatures() {
    if !root_or_skip("injection_payloads_are_caught_by_the_signatures") {
        return;
    }
    let rig = Rig::up("inject", "");
    let src = addr::atk_src4(5);
    rig.run(Scenario::HttpInjection, &src);
    let e = rig.enforced();
    let records = e.get(&ip(&src)).cloned().unwrap_or_default();
    assert!(!records.is_empty(), "the injector was enforced");
    let injection = ["sql_injection", "xss", "path_traversal", "shell_injection"];
    assert!(
        records
            .iter()
            .any(|(_, reason)| injection.iter().any(|c| reason.contains(c))),
        "an enforcement record names the injection signatures that matched: {records:?}"
    );
}

#[test]
fn benign_clients_are_never_acted_on() {
    if !root_or_skip("benign_clients_are_never_acted_on") {
        return;
    }
    let rig = Rig::up("benign", "");
    // Benign traffic alongside an attack, as in the demo.
    std::thread::scope(|s| {
        for (sc, src) in Scenario::BENIGN.iter().zip(addr::CLI_SRC4) {
            let lab = &rig.t.lab;
            s.spawn(move || sc.run(lab, src, sc.default_budget(), 1.0).unwrap());
        }
        rig.run(Scenario::UdpFlood, &addr::atk_src4(3));
    });
    std::thread::sleep(Duration::from_millis(500));
    let e = rig.enforced();
    for src in addr::CLI_SRC4 {
        assert!(
            !e.contains_key(&ip(src)),
            "{src} was acted on: {:?}",
            e.get(&ip(src))
        );
    }
    let mut c = rig.client();
    let rules = rig
        .rt
        .block_on(c.list_rules(pb::ListRulesRequest::default()))
        .unwrap()
        .into_inner()
        .rules;
    for r in &rules {
        assert!(
            !r.cidr.starts_with("198.51.100."),
            "a rule covers a client: {r:?}"
        );
    }
    let traces = read_capture(&rig.paths.file(&latest_capture(&rig.paths.dir))).unwrap();
    for src in addr::CLI_SRC4 {
        let t = traces.get(&ip(src)).copied().unwrap_or_default();
        assert!(t.packets > 0, "{src} sent traffic");
        assert_eq!(
            (t.blocked, t.throttled),
            (0, 0),
            "{src} lost packets to XDP"
        );
    }
}

/// The live agent's decisions, replayed offline from its own capture with
/// its own config, are the same: every source enforced live is enforced by
/// the replay with the same first action, and no other.
#[test]
fn a_replayed_capture_gives_the_live_agents_decisions() {
    use phantomnet_agent::{
        config::Config,
        correlate::ThreatFeedHandle,
        models::ModelHandle,
        replay::{Marks, ReplayInput, replay},
        train::labels::LabelRules,
    };
    if !root_or_skip("a_replayed_capture_gives_the_live_agents_decisions") {
        return;
    }
    let mut rig = Rig::up("replay", "");
    std::thread::scope(|s| {
        for (sc, src) in Scenario::BENIGN.iter().zip(addr::CLI_SRC4) {
            let lab = &rig.t.lab;
            s.spawn(move || sc.run(lab, src, sc.default_budget(), 1.0).unwrap());
        }
        rig.run(Scenario::SynFlood, &addr::atk_src4(0));
        rig.run(Scenario::NmapSyn, &addr::atk_src4(1));
        rig.run(Scenario::HttpInjection, &addr::atk_src4(2));
    });
    std::thread::sleep(Duration::from_millis(500));
    // Every source here is an IPv4 host: its name is its address.
    let live: BTreeMap<String, String> = rig
        .enforced()
        .into_iter()
        .map(|(src, v)| (src.to_string(), v[0].0.clone()))
        .collect();
    // The pipeline flushes the capture after every batch.
    rig.kill9();
    let capture = rig.paths.file(&latest_capture(&rig.paths.dir));
    let config = Config::load(rig.paths.file("agent.toml")).unwrap();
    let model = ModelHandle::open(config.model.path.as_ref().unwrap())
        .unwrap()
        .current();
    let feed = ThreatFeedHandle::open(config.intel.feed.as_ref().unwrap())
        .unwrap()
        .current();
    let input = ReplayInput {
        capture,
        labels: &LabelRules::default(),
        config: &config,
        policy: config.enforcement.policy(),
        model,
        feed,
        recorded_every: 1,
        sample_every: 1,
        seed: 1,
        marks: Marks::AsRecorded,
    };
    let report = replay(&input).unwrap();
    assert_eq!(report, replay(&input).unwrap(), "replay is deterministic");
    let replayed: BTreeMap<String, String> = report
        .sources
        .iter()
        .filter_map(|s| {
            s.first
                .as_ref()
                .map(|f| (s.source.clone(), format!("ACTION_{}", f.action)))
        })
        .collect();
    for src in [addr::atk_src4(0), addr::atk_src4(1), addr::atk_src4(2)] {
        assert!(live.contains_key(&src), "{src} enforced live: {live:?}");
    }
    assert_eq!(replayed, live, "replayed vs live first enforcements");
}

fn latest_capture(dir: &Path) -> String {
    let mut caps: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pncap"))
        .collect();
    caps.sort();
    caps.pop().expect("a capture")
}

#[test]
fn enforcement_survives_an_agent_restart_mid_attack() {
    if !root_or_skip("enforcement_survives_an_agent_restart_mid_attack") {
        return;
    }
    let mut rig = Rig::up("midattack", "");
    let src = addr::atk_src4(2);
    let flood = {
        let lab = rig.t.lab.clone();
        let src = src.clone();
        std::thread::spawn(move || {
            Scenario::SynFlood
                .run(
                    &lab,
                    &src,
                    Budget {
                        count: 12_000,
                        secs: 12.0,
                    },
                    1.0,
                )
                .unwrap()
        })
    };
    // Wait for the detector to act, then crash the agent mid-attack.
    let start = Instant::now();
    while !rig.enforced().contains_key(&ip(&src)) {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "the flood was never enforced"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut c = rig.client();
    let before: Vec<String> = rig
        .rt
        .block_on(c.list_rules(pb::ListRulesRequest::default()))
        .unwrap()
        .into_inner()
        .rules
        .iter()
        .map(|r| r.cidr.clone())
        .collect();
    assert!(before.iter().any(|r| r.starts_with(&src)), "{before:?}");
    drop(c);
    // The tree may deceive the flood (rule 4: a confident, anomalous
    // attack) rather than throttle or block it; a deception lives in the
    // gateway's nft table, not in XDP's maps, and has to survive as well.
    let deceived = actions(&rig.enforced(), &src)
        .last()
        .is_some_and(|a| a == "ACTION_DECEIVE");
    let gw_ns = rig.t.lab.ns(Role::Gw);
    let nft_holds_src = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &gw_ns])
            .args(["nft", "list", "table", "inet", "phantomnet"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(src.as_str())
    };
    if deceived {
        assert!(nft_holds_src(), "the deception is in the nft table");
    }
    rig.kill9();
    // With no agent, XDP keeps dropping the flood.
    let agent_bin = phantomnet_tests::agent_bin();
    let pins = rig.t.pins.path().to_path_buf();
    let dropped = || {
        let out = std::process::Command::new(&agent_bin)
            .arg("--pin-dir")
            .arg(&pins)
            .arg("stats")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter(|l| l.starts_with("block_dropped") || l.starts_with("throttle_dropped"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>()
    };
    if deceived {
        assert!(nft_holds_src(), "the deception outlives the agent");
    } else {
        let d0 = dropped();
        std::thread::sleep(Duration::from_millis(800));
        assert!(dropped() > d0, "drops continue while the agent is down");
    }
    rig.start_agent();
    let mut c = rig.client();
    let after: Vec<String> = rig
        .rt
        .block_on(c.list_rules(pb::ListRulesRequest::default()))
        .unwrap()
        .into_inner()
        .rules
        .iter()
        .map(|r| r.cidr.clone())
        .collect();
    for r in &before {
        assert!(after.contains(r), "{r} survived the restart: {after:?}");
    }
    if deceived {
        assert!(nft_holds_src(), "the restarted agent keeps the deception");
    } else {
        let d1 = dropped();
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            dropped() > d1,
            "and the restarted agent's program keeps dropping"
        );
    }
    let log = std::fs::read_to_string(rig.paths.file("agent.log")).unwrap();
    assert!(log.contains("adopted=true"), "the link was adopted");
    flood.join().unwrap();
}

#[test]
fn an_orchestrators_block_and_deceive_are_honoured() {
    if !root_or_skip("an_orchestrators_block_and_deceive_are_honoured") {
        return;
    }
    let rig = Rig::up("orchestr", "");
    let mut c = rig.client();
    let (a, b) = (addr::atk_src4(6), addr::atk_src4(7));
    rig.rt.block_on(async {
        c.block(pb::BlockRequest {
            cidr: a.clone(),
            ttl_seconds: 60,
            reason: "orchestrator".into(),
        })
        .await
        .unwrap();
        c.deceive(pb::DeceiveRequest {
            cidr: b.clone(),
            ttl_seconds: 60,
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let sink = udp_sink(&rig.t.netns(Role::Srv), addr::SRV4, 5001);
    let dst: SocketAddr = format!("{}:5001", addr::SRV4).parse().unwrap();
    send_udp(&udp_from(&rig.t.netns(Role::Atk), &a), dst, 20, b"x", None);
    assert_eq!(
        from_src(&drain(&sink, Duration::from_millis(300)), &a),
        0,
        "blocked"
    );
    let ssh: SocketAddr = format!("{}:22", addr::SRV4).parse().unwrap();
    assert!(
        who_answers(&rig.t, Role::Atk, &b, ssh).contains("honeypot"),
        "deceived"
    );
}

/// Issue 10, point 7: an IPv6 attacker rotating through its /64 is one
/// source. Each nmap burst comes from another address of 2001:db8:bad::/64;
/// the detector's entry is the /64 (a trie entry in the BPF maps), and a
/// fresh address of that /64, never seen before, is dropped as well.
#[test]
fn an_ipv6_attacker_rotating_through_its_64_is_enforced_as_one_prefix() {
    use phantomnet_agent::dataplane::{Prefix, RuleKind};
    use phantomnet_common::ReasonCode;
    use phantomnet_tests::{AgentProcess, observe::write_agent_config};

    if !root_or_skip("an_ipv6_attacker_rotating_through_its_64_is_enforced_as_one_prefix") {
        return;
    }
    let t = TestLab::up("rot6");
    // The shipped model, every packet sampled, no honeypot (a DECEIVE
    // falls back to THROTTLE): whatever the tree picks lands in the maps.
    let model = root().join("models/model-v1.pnm");
    let cfg = write_agent_config(&t, 1, &format!("[model]\npath = \"{}\"\n", model.display()));
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let net: Prefix = addr::ATK_NET6.parse().unwrap();
    let inside = |p: &Prefix| !p.is_ipv4() && net.contains(p.addr());
    let detector_entry = || {
        t.maps().rules().unwrap().into_iter().find(|r| {
            inside(&r.prefix)
                && r.reason
                    .as_ref()
                    .is_some_and(|(c, _)| *c == ReasonCode::Detection)
        })
    };
    let budget = phantomnet_lab::traffic::Budget {
        count: 150,
        secs: 4.0,
    };
    let mut used = Vec::new();
    for i in 0..addr::ATK_SOURCES {
        let src = addr::atk_src6(i);
        Scenario::NmapSyn.run(&t.lab, &src, budget, 1.0).unwrap();
        used.push(src);
        if detector_entry().is_some() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let rules = t.maps().rules().unwrap();
    let ours: Vec<_> = rules.iter().filter(|r| inside(&r.prefix)).collect();
    assert!(
        !ours.is_empty(),
        "the scan from {} addresses was not enforced: {rules:?}",
        used.len()
    );
    for r in &ours {
        assert_eq!(r.prefix, net, "one /64 entry, no per-address one: {ours:?}");
        assert!(matches!(r.kind, RuleKind::Block | RuleKind::Throttle));
    }

    // A fresh address of the /64 the detector never saw.
    let fresh = "2001:db8:bad::99";
    phantomnet_lab::cmd::run(
        "ip",
        &[
            "-n",
            &t.lab.ns(Role::Atk),
            "-6",
            "addr",
            "add",
            &format!("{fresh}/128"),
            "dev",
            "eth0",
            "nodad",
        ],
    )
    .unwrap();
    let dst: SocketAddr = format!("[{}]:5002", addr::SRV6).parse().unwrap();
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV6, 5002);
    send_udp(&udp_from(&t.netns(Role::Atk), fresh), dst, 200, b"x", None);
    let from_fresh = from_src(&drain(&sink, Duration::from_millis(300)), fresh);
    match ours[0].kind {
        RuleKind::Block => assert_eq!(from_fresh, 0, "blocked with its /64"),
        // 100 pps, burst 20, for 200 datagrams sent at once.
        _ => assert!(
            from_fresh <= 50,
            "throttled with its /64: {from_fresh} of 200"
        ),
    }
    // Another /64 (the clients') is untouched.
    let client = udp_from(&t.netns(Role::Cli), addr::CLI6);
    send_udp(&client, dst, 50, b"x", Some(100));
    let from_client = from_src(&drain(&sink, Duration::from_millis(300)), addr::CLI6);
    assert_eq!(from_client, 50, "the client's /64 is untouched");

    // The journal and the API name the /64.
    let rt = rt();
    let events = rt.block_on(async {
        let mut c = connect_unix(t.api_socket()).await.unwrap();
        c.list_events(pb::ListEventsRequest {
            source_prefix: addr::ATK_NET6.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
    });
    // Every record about the attacker names its /64, the journal's repeat
    // filter's key. (A DECEIVE that falls back to THROTTLE is a routine
    // record, so the "awaiting evidence" one may stand for it.)
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e.source, "2001:db8:bad::", "{e:?}");
        assert!(
            e.reason.starts_with("2001:db8:bad::/64 "),
            "the record names the /64: {}",
            e.reason
        );
    }
}
