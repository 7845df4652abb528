//! The agent as a real process: enforcement outlives it, a new agent adopts
//! the pins and the link, operators read the maps with bpftool, and
//! `detach` removes only what PhantomNet created.
use std::{net::SocketAddr, process::Command, time::Duration};

use phantomnet_agent::dataplane::Rule;
use phantomnet_tests::{
    AgentProcess, GW_XDP_IFACE, Role, TestLab, addr, drain, from_src, root_or_skip, send_udp,
    udp_from, udp_sink,
};
use serde_json::Value;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bpftool -j ...`; map dumps carry the BTF-formatted entries under
/// "formatted" next to the raw bytes.
fn bpftool_json(args: &[&str]) -> Value {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&ok_bytes(out)).expect("bpftool JSON")
}

fn ok_bytes(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Datagrams that arrive at the server from each source.
fn deliver(t: &TestLab, sources: &[&str]) -> Vec<usize> {
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV4, 5000);
    let dst: SocketAddr = format!("{}:5000", addr::SRV4).parse().unwrap();
    for src in sources {
        let role = if src.starts_with("192.0.2.") {
            Role::Atk
        } else {
            Role::Cli
        };
        send_udp(&udp_from(&t.netns(role), src), dst, 20, b"restart", None);
    }
    let got = drain(&sink, Duration::from_millis(300));
    sources.iter().map(|s| from_src(&got, s)).collect()
}

/// The rules without what changes with time and traffic (time left, hits).
fn stable(rules: Vec<Rule>) -> Vec<Rule> {
    rules
        .into_iter()
        .map(|mut r| {
            r.remaining = None;
            r.hits = 0;
            r
        })
        .collect()
}

fn link_ids(t: &TestLab) -> (u64, u64) {
    let path = t.pins.link("native", GW_XDP_IFACE);
    let v = bpftool_json(&["link", "show", "pinned", path.to_str().unwrap()]);
    (v["id"].as_u64().unwrap(), v["prog_id"].as_u64().unwrap())
}

#[test]
fn enforcement_survives_kill9_and_a_new_agent_adopts_it() {
    if !root_or_skip("enforcement_survives_kill9_and_a_new_agent_adopts_it") {
        return;
    }
    let t = TestLab::up("restart");
    let agent = AgentProcess::start(&t, &["--xdp-mode", "native"]);
    let a0 = addr::atk_src4(0);
    ok(t.cli(&["block", &a0, "--ttl", "600", "--reason", "restart test"]));
    ok(t.cli(&["throttle", "192.0.2.128/25", "--rate", "50", "--burst", "5"]));
    ok(t.cli(&["allow", addr::CLI4]));
    let rules_before = stable(t.maps().rules().unwrap());
    assert_eq!(rules_before.len(), 3);
    let listed_before = ok(t.cli(&["list"]));
    assert!(listed_before.contains(&format!("{a0}/32")) && listed_before.contains("restart test"));
    assert_eq!(deliver(&t, &[&a0, addr::CLI4]), [0, 20]);
    let (link_id, prog_before) = link_ids(&t);

    agent.kill9();
    assert_eq!(
        deliver(&t, &[&a0, addr::CLI4]),
        [0, 20],
        "the block outlives the agent"
    );
    assert_eq!(stable(t.maps().rules().unwrap()), rules_before);

    let mut agent = AgentProcess::start(&t, &[]);
    let ready = agent.wait_for_log("data plane ready", Duration::from_secs(5));
    assert!(ready.contains("adopted=true"), "{ready}");
    let (link_after, prog_after) = link_ids(&t);
    assert_eq!(link_after, link_id, "the same pinned link");
    assert_ne!(
        prog_after, prog_before,
        "now running the new agent's program"
    );
    assert_eq!(
        stable(t.maps().rules().unwrap()),
        rules_before,
        "no entry was cleared"
    );
    let listed_after = ok(t.cli(&["list"]));
    assert_eq!(
        listed_after.lines().count(),
        listed_before.lines().count(),
        "{listed_after}"
    );
    assert_eq!(deliver(&t, &[&a0, addr::CLI4]), [0, 20]);
    // Counters continued across the restart: 20 + 20 + 20 blocked packets.
    let stats = ok(t.cli(&["stats"]));
    let dropped: u64 = stats
        .lines()
        .find(|l| l.starts_with("block_dropped"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(dropped, 60, "{stats}");
}

#[test]
fn bpftool_dumps_entries_with_field_names() {
    if !root_or_skip("bpftool_dumps_entries_with_field_names") {
        return;
    }
    let t = TestLab::up("bpftool");
    let _dp = t.load();
    ok(t.cli(&["block", "192.0.2.0/24", "--ttl", "60", "--reason", "scan"]));
    ok(t.cli(&[
        "throttle",
        "2001:db8:bad::/64",
        "--rate",
        "100",
        "--burst",
        "7",
    ]));
    let pin = |name: &str| t.pins.map(name).to_string_lossy().into_owned();

    let v = bpftool_json(&["map", "dump", "pinned", &pin("PN_BLOCK_V4")]);
    let e = &v[0]["formatted"];
    assert_eq!(e["key"]["prefix_len"], 24);
    assert_eq!(e["key"]["data"][0], 192);
    assert_eq!(e["value"]["reason"], 1, "ReasonCode::Manual");
    assert_eq!(e["value"]["prefix_len"], 24);
    assert!(
        e["value"]["expires_ns"].as_u64().unwrap() > e["value"]["created_ns"].as_u64().unwrap()
    );
    let text: Vec<u8> = e["value"]["reason_text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .take_while(|&b| b != 0)
        .collect();
    assert_eq!(text, b"scan");

    let v = bpftool_json(&["map", "dump", "pinned", &pin("PN_THR_RULE_V6")]);
    let e = &v[0]["formatted"];
    assert_eq!(e["value"]["rate_pps"], 100);
    assert_eq!(e["value"]["burst"], 7);
    assert_eq!(e["value"]["interval_ns"], 10_000_000);

    let v = bpftool_json(&["map", "dump", "pinned", &pin("PN_COUNTERS")]);
    assert_eq!(
        v.as_array().unwrap().len(),
        phantomnet_common::Outcome::COUNT as usize,
        "one slot per outcome"
    );
    let per_cpu = &v[0]["formatted"]["values"][0];
    assert!(per_cpu["value"]["packets"].is_u64(), "{}", v[0]);
    let v = bpftool_json(&["map", "dump", "pinned", &pin("PN_CONFIG")]);
    assert!(
        v[0]["formatted"]["value"]["sample_every"].is_u64(),
        "{}",
        v[0]
    );
}

#[test]
fn detach_removes_only_what_phantomnet_created() {
    if !root_or_skip("detach_removes_only_what_phantomnet_created") {
        return;
    }
    let t = TestLab::up("detach");
    let dp = t.load();
    drop(dp);
    // Someone else's pin in our directory.
    let foreign = t.pins.path().join("someone_elses_map");
    ok(Command::new("bpftool")
        .args(["map", "create", foreign.to_str().unwrap()])
        .args([
            "type", "array", "key", "4", "value", "4", "entries", "1", "name", "foreign",
        ])
        .output()
        .unwrap());
    let gw_link = || {
        ok(Command::new("ip")
            .args([
                "-n",
                &t.lab.ns(Role::Gw),
                "-d",
                "link",
                "show",
                GW_XDP_IFACE,
            ])
            .output()
            .unwrap())
    };
    let link = gw_link();
    assert!(link.contains("xdp"), "attached before detach: {link}");

    let out = ok(t.cli(&["detach"]));
    assert!(
        out.contains("PN_BLOCK_V4") && out.contains(GW_XDP_IFACE),
        "{out}"
    );
    assert!(foreign.exists(), "a pin PhantomNet did not create stays");
    assert!(!t.pins.map("PN_BLOCK_V4").exists());
    let link = gw_link();
    assert!(!link.contains("prog/xdp"), "XDP is detached: {link}");
    std::fs::remove_file(&foreign).unwrap();
    // With nothing pinned, map commands fail clearly and change nothing.
    let out = t.cli(&["block", "192.0.2.1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not loaded"));
}

#[test]
fn cli_rejects_bad_input_and_changes_nothing() {
    if !root_or_skip("cli_rejects_bad_input_and_changes_nothing") {
        return;
    }
    let t = TestLab::up("badcli");
    let _dp = t.load();
    ok(t.cli(&["block", "192.0.2.0/24", "--reason", "keep"]));
    let before = t.maps().rules().unwrap();
    for (args, msg) in [
        (vec!["block", "192.0.2.0/33"], "longer than IPv4 allows"),
        (vec!["block", "2001:db8::/129"], "longer than IPv6 allows"),
        (vec!["block", "192.0.2.7/24"], "host bits are set"),
        (vec!["block", "not-an-ip"], "not an IPv4 or IPv6 address"),
        (vec!["block", "192.0.2.0/24", "--ttl", "0"], "ttl"),
        (
            vec!["block", "192.0.2.0/24", "--ttl", "18446744073709551615"],
            "ttl",
        ),
        (
            vec!["block", "192.0.2.0/24", "--reason", &"x".repeat(40)],
            "reason",
        ),
        (vec!["throttle", "192.0.2.0/24", "--rate", "0"], "rate"),
        (
            vec!["throttle", "192.0.2.0/24", "--rate", "10", "--burst", "0"],
            "burst",
        ),
        (vec!["unblock", "198.51.100.0/24"], "no block entry"),
        (vec!["disallow", "198.51.100.7"], "no allow entry"),
    ] {
        let out = t.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    assert_eq!(t.maps().rules().unwrap(), before, "nothing changed");
}
