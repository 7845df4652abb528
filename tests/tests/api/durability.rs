//! The journal across kill -9; config errors and SIGHUP reloads.
#[allow(unused_imports)]
use super::*;

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
