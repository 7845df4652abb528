//! PhantomNet and a real CrowdSec Local API (Debian's crowdsec 1.4.6, run
//! by the test with a config of its own, in a namespace of its own):
//! - as a bouncer: a decision added with `cscli` is enforced in XDP, for
//!   its duration, and removed when deleted; ranges and IPv6 too; an
//!   operator's own block is never touched; an unreachable LAPI changes
//!   nothing in force;
//! - as a watcher, with two lab gateways on one LAPI: an attack detected at
//!   gateway 1 appears in `cscli decisions list` and is blocked at gateway
//!   2. The propagation time is printed.
use std::{
    fs,
    time::{Duration, Instant},
};

use phantomnet_agent::{
    api::{client::connect_unix, pb},
    dataplane::Rule,
};
use phantomnet_common::ReasonCode;
use phantomnet_lab::traffic::Scenario;
use phantomnet_tests::{
    AgentProcess, Role, TestLab, addr,
    crowdsec::Lapi,
    observe::{delivered, wait_metric, write_agent_config},
    root_or_skip,
};

fn block_at(t: &TestLab, cidr: &str) -> Option<Rule> {
    t.maps()
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.prefix.to_string() == cidr && r.kind == phantomnet_common::RuleKind::Block)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn crowdsec_reason(r: &Rule) -> Option<String> {
    match &r.reason {
        Some((ReasonCode::CrowdSec, text)) => Some(text.clone()),
        _ => None,
    }
}

#[test]
fn lapi_decisions_are_enforced_for_their_duration_and_removed_when_deleted() {
    if !root_or_skip("lapi_decisions_are_enforced_for_their_duration_and_removed_when_deleted") {
        return;
    }
    let t = TestLab::up("csb");
    let mut lapi = Lapi::start("csb", &[&t.netns(Role::Gw)]);
    let key = lapi.bouncer_key("gw");
    // A decision that exists before the agent starts: the startup stream.
    lapi.cscli(&[
        "decisions",
        "add",
        "--ip",
        "192.0.2.13",
        "--duration",
        "1h",
        "--reason",
        "test",
    ]);
    let cfg = write_agent_config(
        &t,
        0,
        &format!(
            "[crowdsec]\nlapi_url = \"{}\"\n\n[crowdsec.bouncer]\napi_key_file = \"{}\"\ninterval_secs = 1\n",
            lapi.url(0),
            key.display()
        ),
    );
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let limit = Duration::from_secs(10);
    wait_for("the startup decision's BLOCK", limit, || {
        block_at(&t, "192.0.2.13/32").is_some()
    });
    let r = block_at(&t, "192.0.2.13/32").unwrap();
    assert_eq!(
        crowdsec_reason(&r).as_deref(),
        Some("crowdsec:cscli"),
        "{r:?}"
    );
    let left = r
        .remaining
        .expect("a CrowdSec block expires with its decision");
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    assert_eq!(
        delivered(&t, "192.0.2.13"),
        0,
        "XDP drops the banned source"
    );

    // New decisions while running: a range and an IPv6 address.
    lapi.cscli(&[
        "decisions",
        "add",
        "--range",
        "192.0.2.16/28",
        "--duration",
        "10m",
    ]);
    lapi.cscli(&[
        "decisions",
        "add",
        "--ip",
        "2001:db8:bad::21",
        "--duration",
        "10m",
    ]);
    wait_for("the range and IPv6 BLOCKs", limit, || {
        block_at(&t, "192.0.2.16/28").is_some() && block_at(&t, "2001:db8:bad::21/128").is_some()
    });
    assert_eq!(
        delivered(&t, &addr::atk_src4(7)),
        0,
        "192.0.2.17 is in the banned range"
    );

    // A prefix an operator blocked is theirs: CrowdSec neither rewrites nor removes it.
    t.cli(&["block", "192.0.2.14", "--reason", "operator"]);
    lapi.cscli(&["decisions", "add", "--ip", "192.0.2.14", "--duration", "5m"]);
    std::thread::sleep(Duration::from_secs(3));
    lapi.cscli(&["decisions", "delete", "--ip", "192.0.2.14"]);

    // Deleting a decision removes its BLOCK.
    lapi.cscli(&["decisions", "delete", "--ip", "192.0.2.13"]);
    wait_for("the deleted decision's BLOCK to go", limit, || {
        block_at(&t, "192.0.2.13/32").is_none()
    });
    assert_eq!(delivered(&t, "192.0.2.13"), 20);
    std::thread::sleep(Duration::from_secs(2));
    let op = block_at(&t, "192.0.2.14/32").expect("the operator's block stays");
    assert_eq!(
        op.reason,
        Some((ReasonCode::Manual, "operator".to_string()))
    );

    // The LAPI goes away: what is in force stays, and the failure is said.
    lapi.stop();
    wait_metric(
        &t,
        "phantomnet_crowdsec_polls_total{result=\"failed\"}",
        limit,
        |v| v >= 3.0,
    );
    assert!(
        block_at(&t, "192.0.2.16/28").is_some() && block_at(&t, "2001:db8:bad::21/128").is_some()
    );
    assert_eq!(delivered(&t, &addr::atk_src4(7)), 0);
    let log = fs::read_to_string(&agent.log).unwrap();
    assert!(log.contains("CrowdSec LAPI poll failed"), "{log}");
    assert_eq!(
        log.matches("CrowdSec LAPI poll failed").count(),
        1,
        "one line, not one per poll"
    );
}

#[test]
fn two_gateways_share_an_attack_through_one_lapi() {
    if !root_or_skip("two_gateways_share_an_attack_through_one_lapi") {
        return;
    }
    let gw1 = TestLab::up("cs1");
    let gw2 = TestLab::up("cs2");
    let lapi = Lapi::start("csfleet", &[&gw1.netns(Role::Gw), &gw2.netns(Role::Gw)]);
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/model-v1.pnm");
    let bouncer = |t: &TestLab, i: usize| {
        format!(
            "[crowdsec]\nlapi_url = \"{}\"\n\n[crowdsec.bouncer]\napi_key_file = \"{}\"\ninterval_secs = 1\n",
            lapi.url(i),
            lapi.bouncer_key(t.lab.prefix()).display()
        )
    };
    let cfg1 = write_agent_config(
        &gw1,
        1,
        &format!(
            "[model]\npath = \"{}\"\n\n{}\n[crowdsec.watcher]\nmachine_id = \"gw1\"\npassword_file = \"{}\"\n",
            model.display(),
            bouncer(&gw1, 0),
            lapi.machine("gw1").display()
        ),
    );
    let cfg2 = write_agent_config(&gw2, 0, &bouncer(&gw2, 1));
    let _a1 = AgentProcess::start(&gw1, &["--config", cfg1.to_str().unwrap()]);
    let _a2 = AgentProcess::start(&gw2, &["--config", cfg2.to_str().unwrap()]);

    // A SYN flood (hping3) at gateway 1; its detector enforces.
    let src = addr::atk_src4(2);
    let flood = {
        let lab = gw1.lab.clone();
        let src = src.clone();
        std::thread::spawn(move || {
            Scenario::SynFlood
                .run(&lab, &src, Scenario::SynFlood.default_budget(), 1.0)
                .unwrap()
        })
    };
    let host = format!("{src}/32");
    // Gateway 2 blocks it, by the LAPI's decision; time it from gateway 1's
    // enforcement (its journal's time) to gateway 2's map entry.
    wait_for("gateway 2's BLOCK", Duration::from_secs(30), || {
        block_at(&gw2, &host).is_some()
    });
    let seen_at = std::time::SystemTime::now();
    flood.join().unwrap();
    let r = block_at(&gw2, &host).unwrap();
    assert_eq!(
        crowdsec_reason(&r).as_deref(),
        Some("crowdsec:phantomnet"),
        "{r:?}"
    );
    let enforced_ns = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = connect_unix(gw1.api_socket()).await.unwrap();
            let events = c
                .list_events(pb::ListEventsRequest {
                    source_prefix: format!("{src}/32"),
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .events;
            events
                .iter()
                .filter(|e| e.reason.contains("; enforced") || e.reason.starts_with("enforced"))
                .map(|e| e.time_unix_ns)
                .min()
                .expect("gateway 1 enforced the flood")
        });
    let seen_ns = seen_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let ms = seen_ns.saturating_sub(enforced_ns) as f64 / 1e6;
    println!(
        "gateway 1's enforcement reached gateway 2's XDP map in {ms:.0} ms (bouncer interval 1 s)"
    );
    assert!(ms < 5000.0, "propagation took {ms} ms");
    assert_eq!(
        delivered(&gw2, &src),
        0,
        "gateway 2 drops the source in XDP"
    );
    // The agent's enforcement is a decision in the LAPI, for every bouncer.
    assert!(
        lapi.banned("phantomnet").contains(&src),
        "{}",
        lapi.decisions()
    );
}
