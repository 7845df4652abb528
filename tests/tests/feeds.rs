//! Threat feeds over a real HTTPS server (Debian's nginx, which answers
//! conditional requests itself): each format parses and reaches the
//! correlator, a `block = true` feed drops its sources in XDP, nginx sees
//! 304s for unchanged lists, a malformed or truncated update keeps the last
//! good list, and a 300,000-entry feed loads (time and memory printed).
use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use phantomnet_agent::api::{client::connect_unix, pb};
use phantomnet_common::ReasonCode;
use phantomnet_tests::{
    AgentProcess, Pki, Role, TestLab, addr,
    nginx::Nginx,
    observe::{delivered, metric, rss_kib, scrape, wait_metric, write_agent_config},
    root_or_skip,
};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/model-v1.pnm")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The feed label the correlator gives `source`, through the API's Analyze.
fn feed_label(t: &TestLab, source: &str) -> String {
    rt().block_on(async {
        let mut c = connect_unix(t.api_socket()).await.unwrap();
        c.analyze(pb::AnalyzeRequest {
            input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                values: vec![0.0; 15],
            })),
            source: source.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .feed_label
    })
}

fn feed_blocks(t: &TestLab) -> Vec<String> {
    let mut v: Vec<String> = t
        .maps()
        .rules()
        .unwrap()
        .into_iter()
        .filter(|r| matches!(&r.reason, Some((ReasonCode::ThreatIntel, n)) if n == "spamhaus_drop"))
        .map(|r| r.prefix.to_string())
        .collect();
    v.sort();
    v
}

const NETSET: &str = "#\n# firehol_level1 (test copy)\n#\n192.0.2.0/28\n198.18.0.0/15\n";

fn drop_json(records: &[&str], claimed: usize) -> String {
    let mut s: String = records
        .iter()
        .map(|c| format!("{{\"cidr\":\"{c}\",\"sblid\":\"SBL1\",\"rir\":\"ripencc\"}}\n"))
        .collect();
    s.push_str(&format!(
        "{{\"type\":\"metadata\",\"timestamp\":1764700000,\"size\":100,\"records\":{claimed},\"copyright\":\"test\"}}\n"
    ));
    s
}

#[test]
fn feeds_in_every_format_load_over_https_and_a_bad_update_keeps_the_last_good_list() {
    if !root_or_skip(
        "feeds_in_every_format_load_over_https_and_a_bad_update_keeps_the_last_good_list",
    ) {
        return;
    }
    let t = TestLab::up("feeds");
    let pki = Pki::new("feeds");
    let www = std::env::temp_dir().join("pnt-feeds-www");
    let _ = fs::remove_dir_all(&www);
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("level1.netset"), NETSET).unwrap();
    fs::write(
        www.join("drop.json"),
        drop_json(&["192.0.2.16/28", "2001:db8:bad::/48"], 2),
    )
    .unwrap();
    let local = www.join("mine.txt");
    fs::write(&local, "# ours\n192.0.2.40 c2 0.5\n").unwrap();
    let nginx = Nginx::start(
        "feeds",
        &t.netns(Role::Gw),
        &www,
        8443,
        &pki.path("server.crt"),
        &pki.path("server.key"),
    );
    let ca = pki.path("ca.crt");
    let cfg = write_agent_config(
        &t,
        0,
        &format!(
            r#"[model]
path = "{model}"

[[intel.feeds]]
name = "firehol_level1"
source = "{netset}"
format = "firehol"
weight = 0.9
interval_secs = 10
ca_file = "{ca}"

[[intel.feeds]]
name = "spamhaus_drop"
source = "{drop}"
format = "spamhaus"
interval_secs = 10
block = true
ca_file = "{ca}"

[[intel.feeds]]
name = "local"
source = "{local}"
format = "plain"
weight = 0.8
interval_secs = 10
"#,
            model = models().display(),
            netset = nginx.url("level1.netset"),
            drop = nginx.url("drop.json"),
            ca = ca.display(),
            local = local.display(),
        ),
    );
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let limit = Duration::from_secs(15);
    wait_metric(&t, "phantomnet_feed_entries{feed=\"all\"}", limit, |v| {
        v == 5.0
    });
    let body = scrape(&t);
    for (feed, n) in [
        ("firehol_level1", 2.0),
        ("spamhaus_drop", 2.0),
        ("local", 1.0),
    ] {
        assert_eq!(
            metric(
                &body,
                &format!("phantomnet_feed_entries{{feed=\"{feed}\"}}")
            ),
            Some(n),
            "{feed}"
        );
    }
    // Every format reaches the correlator, with its label.
    assert_eq!(feed_label(&t, "192.0.2.3"), "firehol_level1");
    assert_eq!(feed_label(&t, "198.19.255.1"), "firehol_level1");
    assert_eq!(feed_label(&t, "192.0.2.17"), "spamhaus_drop");
    assert_eq!(feed_label(&t, "2001:db8:bad:7::1"), "spamhaus_drop");
    assert_eq!(feed_label(&t, "192.0.2.40"), "c2");
    assert_eq!(feed_label(&t, "192.0.2.41"), "");

    // block = true: the DROP list's prefixes are BLOCK entries, and XDP
    // drops their sources; a source listed only in a scoring feed passes.
    assert_eq!(feed_blocks(&t), ["192.0.2.16/28", "2001:db8:bad::/48"]);
    assert_eq!(
        delivered(&t, &addr::atk_src4(7)),
        0,
        "192.0.2.17 is in the DROP list"
    );
    assert_eq!(
        delivered(&t, &addr::atk_src4(0)),
        20,
        "192.0.2.10 is only scored (FireHOL)"
    );

    // Unchanged lists cost a 304: nginx answered 200 once, then 304.
    wait_metric(
        &t,
        "phantomnet_feed_checks_total{feed=\"firehol_level1\",result=\"not_modified\"}",
        limit,
        |v| v >= 1.0,
    );
    let st = nginx.statuses("level1.netset");
    assert_eq!(st.first(), Some(&200), "{st:?}");
    assert!(st[1..].iter().all(|s| *s == 304) && st.len() >= 2, "{st:?}");

    // A malformed update (an HTML error page served as the list) and a
    // truncated DROP file (metadata says 3 records, 1 arrived) are refused;
    // the last good lists stay, in the correlator and in BLOCK.
    fs::write(
        www.join("level1.netset"),
        "<html><body>502 Bad Gateway</body></html>\n",
    )
    .unwrap();
    fs::write(www.join("drop.json"), drop_json(&["192.0.2.16/28"], 3)).unwrap();
    wait_metric(
        &t,
        "phantomnet_feed_checks_total{feed=\"firehol_level1\",result=\"failed\"}",
        limit,
        |v| v >= 1.0,
    );
    wait_metric(
        &t,
        "phantomnet_feed_checks_total{feed=\"spamhaus_drop\",result=\"failed\"}",
        limit,
        |v| v >= 1.0,
    );
    let body = scrape(&t);
    assert_eq!(
        metric(&body, "phantomnet_feed_entries{feed=\"firehol_level1\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&body, "phantomnet_feed_entries{feed=\"spamhaus_drop\"}"),
        Some(2.0)
    );
    assert_eq!(feed_label(&t, "192.0.2.3"), "firehol_level1");
    assert_eq!(feed_blocks(&t), ["192.0.2.16/28", "2001:db8:bad::/48"]);
    let log = fs::read_to_string(&agent.log).unwrap();
    assert!(
        log.contains("keeping the last good list") && log.contains("threat feed truncated"),
        "{log}"
    );

    // A good update applies: the prefix the DROP list dropped leaves BLOCK,
    // an operator's block of another prefix is never touched by the feed.
    t.cli(&["block", "192.0.2.48/28", "--reason", "operator"]);
    fs::write(
        www.join("drop.json"),
        drop_json(&["192.0.2.16/28", "192.0.2.48/28"], 2),
    )
    .unwrap();
    let before = metric(
        &scrape(&t),
        "phantomnet_feed_checks_total{feed=\"spamhaus_drop\",result=\"updated\"}",
    )
    .unwrap();
    wait_metric(
        &t,
        "phantomnet_feed_checks_total{feed=\"spamhaus_drop\",result=\"updated\"}",
        limit,
        |v| v > before,
    );
    assert_eq!(feed_blocks(&t), ["192.0.2.16/28"]);
    let op = t
        .maps()
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.prefix.to_string() == "192.0.2.48/28")
        .unwrap();
    assert_eq!(
        op.reason.as_ref().map(|(c, s)| (*c, s.as_str())),
        Some((ReasonCode::Manual, "operator"))
    );
    assert_eq!(delivered(&t, &addr::atk_src4(7)), 0);
    let _ = fs::remove_dir_all(&www);
}

#[test]
fn a_300000_entry_feed_loads_and_its_time_and_memory_are_measured() {
    if !root_or_skip("a_300000_entry_feed_loads_and_its_time_and_memory_are_measured") {
        return;
    }
    let t = TestLab::up("bigfeed");
    let pki = Pki::new("bigfeed");
    let www = std::env::temp_dir().join("pnt-bigfeed-www");
    let _ = fs::remove_dir_all(&www);
    fs::create_dir_all(&www).unwrap();
    // 300,000 distinct entries: 250,000 hosts in 10.0.0.0/8 and 50,000 /24s
    // in 100.64.0.0/10 and beyond (a FireHOL netset's usual mix).
    let mut text = String::from("# synthetic netset, 300000 entries\n");
    for i in 0..250_000u32 {
        let a = 0x0a00_0000 + i * 7;
        text.push_str(&format!("{}\n", std::net::Ipv4Addr::from(a)));
    }
    for i in 0..50_000u32 {
        let a = 0x6440_0000 + (i << 8);
        text.push_str(&format!("{}/24\n", std::net::Ipv4Addr::from(a)));
    }
    fs::write(www.join("big.netset"), &text).unwrap();
    let nginx = Nginx::start(
        "bigfeed",
        &t.netns(Role::Gw),
        &www,
        8444,
        &pki.path("server.crt"),
        &pki.path("server.key"),
    );
    let model = format!("[model]\npath = \"{}\"\n", models().display());
    let cfg = write_agent_config(&t, 0, &model);
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(1));
    let rss0 = rss_kib(agent.pid());
    write_agent_config(
        &t,
        0,
        &format!(
            "{model}\n[[intel.feeds]]\nname = \"big\"\nsource = \"{}\"\nformat = \"firehol\"\ninterval_secs = 3600\nca_file = \"{}\"\n",
            nginx.url("big.netset"),
            pki.path("ca.crt").display()
        ),
    );
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    wait_metric(
        &t,
        "phantomnet_feed_entries{feed=\"all\"}",
        Duration::from_secs(60),
        |v| v == 300_000.0,
    );
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss1 = rss_kib(agent.pid());
    let grew_mib = (rss1.saturating_sub(rss0)) as f64 / 1024.0;
    println!(
        "300,000-entry FireHOL feed ({:.1} MB) over HTTPS: loaded in {:.2} s; agent RSS {:.1} -> {:.1} MiB (+{grew_mib:.1} MiB)",
        text.len() as f64 / 1e6,
        took.as_secs_f64(),
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
    );
    assert_eq!(feed_label(&t, "10.0.0.7"), "big");
    assert_eq!(feed_label(&t, "100.64.5.9"), "big");
    assert_eq!(feed_label(&t, "10.0.0.8"), "");
    assert!(took < Duration::from_secs(20), "loading took {took:?}");
    assert!(grew_mib < 256.0, "RSS grew by {grew_mib:.1} MiB");
    let _ = fs::remove_dir_all(&www);
}
