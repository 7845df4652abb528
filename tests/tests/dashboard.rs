//! The shipped Grafana dashboard and Prometheus alert rules against a live
//! agent and a real Prometheus (Debian's): every metric either file names
//! is exported by the agent, Prometheus scrapes the agent, evaluates every
//! dashboard expression without error (and gets data for each that does
//! not depend on an attack), and loads and evaluates every alert rule.
use std::{
    collections::BTreeSet,
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use phantomnet_tests::{
    AgentProcess, Role, TestLab, addr, drain,
    observe::{METRICS_ADDR, scrape, wait_metric, write_agent_config},
    root_or_skip, send_udp, udp_from, udp_sink,
};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `phantomnet_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("phantomnet_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The exposition declares the family a queried name belongs to
/// (`x_total` → counter `x`; `x_bucket` → histogram `x`; gauges as is).
fn exported(body: &str, name: &str) -> bool {
    let family = ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    body.lines()
        .any(|l| l.starts_with(&format!("# TYPE {family} ")))
}

struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `GET /api/v1/<path>?query=...` on the test's Prometheus, in the gateway namespace.
fn api(t: &TestLab, path: &str, query: Option<&str>) -> Value {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", t.netns(Role::Gw).display()))
        .args(["curl", "-sS", "--max-time", "5", "-G"])
        .arg(format!("http://127.0.0.1:19090/api/v1/{path}"));
    if let Some(q) = query {
        cmd.arg("--data-urlencode").arg(format!("query={q}"));
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{path} {query:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn the_dashboard_and_alert_rules_query_metrics_a_live_agent_exports() {
    if !root_or_skip("the_dashboard_and_alert_rules_query_metrics_a_live_agent_exports") {
        return;
    }
    let dashboard: Value = serde_json::from_str(
        &fs::read_to_string(root().join("deploy/grafana/phantomnet.json")).unwrap(),
    )
    .unwrap();
    let alerts_path = root().join("deploy/prometheus/phantomnet-alerts.yml");
    let alerts = fs::read_to_string(&alerts_path).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 15, "{} expressions", exprs.len());

    // promtool's own check of the rule file.
    let st = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&alerts_path)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&st.stdout)
    );

    let t = TestLab::up("dash");
    let feeds = std::env::temp_dir().join("pnt-dash-feed.txt");
    fs::write(&feeds, "192.0.2.16/28 dash-test\n").unwrap();
    let model = root().join("models/model-v1.pnm");
    let cfg = write_agent_config(
        &t,
        16,
        &format!(
            "[model]\npath = \"{}\"\n\n[[intel.feeds]]\nname = \"dash\"\nsource = \"{}\"\nformat = \"plain\"\ninterval_secs = 10\nblock = true\n",
            model.display(),
            feeds.display()
        ),
    );
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    // Traffic: a blocked source (top-blocked hits) and a passing one (samples).
    wait_metric(
        &t,
        "phantomnet_feed_blocked{feed=\"dash\"}",
        Duration::from_secs(10),
        |v| v == 1.0,
    );
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV4, 5000);
    let dst: SocketAddr = format!("{}:5000", addr::SRV4).parse().unwrap();
    send_udp(
        &udp_from(&t.netns(Role::Atk), &addr::atk_src4(7)),
        dst,
        50,
        b"x",
        None,
    );
    send_udp(
        &udp_from(&t.netns(Role::Cli), addr::CLI4),
        dst,
        200,
        b"hello",
        None,
    );
    drain(&sink, Duration::from_millis(200));
    wait_metric(
        &t,
        "phantomnet_top_blocked_hits{prefix=\"192.0.2.16/28\",reason=\"threat-intel: dash\"}",
        Duration::from_secs(5),
        |v| v > 0.0,
    );

    // Every name either file uses is a family the agent exports.
    let body = scrape(&t);
    let names: BTreeSet<String> = exprs
        .iter()
        .flat_map(|e| metric_names(e))
        .chain(metric_names(&alerts))
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !exported(&body, n)).collect();
    assert!(
        missing.is_empty(),
        "not exported by the agent: {missing:?}\n{body}"
    );

    // A real Prometheus scraping the agent, with the alert rules loaded.
    let dir = std::env::temp_dir().join("pnt-dash-prometheus");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::copy(&alerts_path, dir.join("alerts.yml")).unwrap();
    fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [alerts.yml]\n\
             scrape_configs:\n  - job_name: phantomnet\n    static_configs: [{{targets: ['{METRICS_ADDR}']}}]\n"
        ),
    )
    .unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net={}", t.netns(Role::Gw).display()))
        .arg("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .args(["--web.listen-address=127.0.0.1:19090", "--log.level=warn"])
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    let prom = Prometheus { child, dir };
    let start = Instant::now();
    loop {
        let up = Command::new("nsenter")
            .arg(format!("--net={}", t.netns(Role::Gw).display()))
            .args(["curl", "-sS", "-G", "http://127.0.0.1:19090/api/v1/query", "--data-urlencode"])
            .arg("query=count_over_time(up{job=\"phantomnet\"}[1m]) >= 4 and up{job=\"phantomnet\"} == 1")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&up.stdout).unwrap_or(Value::Null);
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus never scraped the agent: {v}\n{}",
            fs::read_to_string(prom.dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for e in &exprs {
        let q = e
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        let v = api(&t, "query", Some(&q));
        assert_eq!(v["status"], "success", "{q}: {v}");
        // Only the enforcement panels need an attack to have data.
        if !q.contains("phantomnet_enforcements_total") {
            let result = v["data"]["result"].as_array().unwrap();
            assert!(!result.is_empty(), "no data for {q}");
        }
    }
    // Every alert rule loaded and evaluates without error.
    std::thread::sleep(Duration::from_secs(2));
    let rules = api(&t, "rules", None);
    let all: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(all.len(), alerts.matches("- alert:").count(), "{rules}");
    for r in all {
        assert_eq!(r["health"], "ok", "{r}");
    }
    let _ = fs::remove_file(&feeds);
}
