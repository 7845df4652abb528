//! Rules that mean what operators think, through the real agent process,
//! its CLI, phantomctl, nft and the pinned maps: reload precedence against
//! run-time changes and command-line overrides, an early SIGHUP, the config
//! allowlist across restarts, DECEIVE's table on detach and on a reload
//! that removes every honeypot, and the API's error for DECEIVE with no
//! honeypot. (Detection precedence: tests/tests/deceive.rs.)
use std::{
    fs,
    path::PathBuf,
    process::{Command, Output},
    thread::sleep,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use phantomnet_common::{RuleKind, config_flags};
use phantomnet_tests::{AgentProcess, Role, TestLab, addr, agent_bin, root_or_skip};

/// A config of this lab's own; `extra` is appended (tables, or top-level
/// keys when `top` is set).
fn write_config(t: &TestLab, top: &str, extra: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-agent.toml", t.lab.prefix()));
    let text = format!(
        r#"{top}
[dataplane]
interfaces = ["out0"]
pin_dir = "{pins}"
sample_every = 16

[api]
socket = "{socket}"

[journal]
path = "{journal}"
{extra}
"#,
        pins = t.pins.path().display(),
        socket = t.api_socket().display(),
        journal = t.journal().display(),
    );
    fs::write(&path, text).unwrap();
    path
}

fn hup(agent: &AgentProcess) {
    nix::sys::signal::kill(Pid::from_raw(agent.pid() as i32), Signal::SIGHUP).unwrap();
}

fn ctl(t: &TestLab, args: &[&str]) -> Output {
    Command::new(agent_bin().with_file_name("phantomctl"))
        .arg("--socket")
        .arg(t.api_socket())
        .args(args)
        .output()
        .unwrap()
}

fn dry_run(t: &TestLab) -> bool {
    t.maps().config().unwrap().flags & config_flags::DRY_RUN != 0
}

fn sample_every(t: &TestLab) -> u32 {
    t.maps().config().unwrap().sample_every
}

fn nft_table(t: &TestLab) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", t.netns(Role::Gw).display()))
        .args(["nft", "list", "table", "inet", "phantomnet"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

const HONEYPOT: &str = "[[honeypot]]\nport = 22\ntarget = \"203.0.113.130:2222\"\n";

#[test]
fn reload_keeps_run_time_changes_and_command_line_overrides() {
    if !root_or_skip("reload_keeps_run_time_changes_and_command_line_overrides") {
        return;
    }
    let t = TestLab::up("reload");
    let cfg = write_config(&t, "", "");
    // An early SIGHUP, from the agent's first log line (its first act is to
    // ignore SIGHUP; before `main` no process can) until it is up, is
    // queued and handled, not fatal.
    let mut agent = AgentProcess::spawn(
        &t,
        &["--config", cfg.to_str().unwrap(), "--sample-rate", "8"],
    );
    let start = Instant::now();
    while !fs::read_to_string(&agent.log)
        .unwrap_or_default()
        .contains("agent starting")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the agent never started"
        );
        sleep(Duration::from_millis(1));
    }
    let mut sent = 0;
    while !fs::read_to_string(&agent.log)
        .unwrap_or_default()
        .contains("metrics on /metrics")
    {
        assert!(
            agent.alive(),
            "an early SIGHUP killed the agent after {sent} signals: {}",
            fs::read_to_string(&agent.log).unwrap_or_default()
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "agent never came up"
        );
        hup(&agent);
        sent += 1;
        sleep(Duration::from_millis(5));
    }
    assert!(sent > 0);
    agent.wait_ready();
    assert!(agent.alive());
    assert_eq!(sample_every(&t), 8, "--sample-rate overrides the file");
    assert!(!dry_run(&t));

    // A run-time change through the API survives a reload of an unchanged file.
    let out = ctl(&t, &["mode", "dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dry_run(&t));
    hup(&agent);
    agent.wait_for_log("keeping the run-time value", Duration::from_secs(5));
    assert!(
        dry_run(&t),
        "the reload re-enforced behind the operator's back"
    );
    // A key the file does change applies; the command line still wins.
    fs::write(
        &cfg,
        fs::read_to_string(&cfg)
            .unwrap()
            .replace("sample_every = 16", "sample_every = 4")
            .replace("[api]", "[thresholds]\nhigh = 0.9\n\n[api]"),
    )
    .unwrap();
    let before = fs::read_to_string(&agent.log)
        .unwrap()
        .matches("config reloaded")
        .count();
    hup(&agent);
    let start = Instant::now();
    while fs::read_to_string(&agent.log)
        .unwrap()
        .matches("config reloaded")
        .count()
        == before
    {
        assert!(start.elapsed() < Duration::from_secs(5), "no reload");
        sleep(Duration::from_millis(20));
    }
    assert_eq!(sample_every(&t), 8, "--sample-rate is lost on reload");
    assert!(dry_run(&t));
    // And the file's own change of dry_run applies (the last writer wins).
    fs::write(
        &cfg,
        fs::read_to_string(&cfg)
            .unwrap()
            .replace("sample_every = 4", "sample_every = 4\ndry_run = true"),
    )
    .unwrap();
    let out = ctl(&t, &["mode", "enforce"]);
    assert!(out.status.success());
    hup(&agent);
    let start = Instant::now();
    while !dry_run(&t) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the file's change was not applied"
        );
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_config_allowlist_is_synced_across_restarts() {
    if !root_or_skip("the_config_allowlist_is_synced_across_restarts") {
        return;
    }
    let t = TestLab::up("allowsync");
    let cfg = write_config(
        &t,
        "allowlist = [\"198.51.100.0/24\", \"2001:db8:7::/48\"]",
        "",
    );
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    // An operator's own entry, with the offline CLI.
    assert!(t.cli(&["allow", "203.0.113.0/28"]).status.success());
    drop(agent);
    let allowed = || -> Vec<String> {
        t.maps()
            .rules()
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == RuleKind::Allow)
            .map(|r| r.prefix.to_string())
            .collect()
    };
    assert_eq!(
        allowed(),
        ["198.51.100.0/24", "203.0.113.0/28", "2001:db8:7::/48"]
    );
    // The range leaves the config: at the next start it leaves the kernel,
    // and the operator's entry stays.
    let cfg = write_config(&t, "allowlist = [\"2001:db8:7::/48\"]", "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(allowed(), ["203.0.113.0/28", "2001:db8:7::/48"]);
    // And a block of it now applies.
    let out = t.cli(&["block", addr::CLI4]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deceive_tables_go_with_their_honeypots_and_with_detach() {
    if !root_or_skip("deceive_tables_go_with_their_honeypots_and_with_detach") {
        return;
    }
    let t = TestLab::up("nftgone");
    let cfg = write_config(&t, "", HONEYPOT);
    let mut agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    assert!(
        ctl(&t, &["deceive", addr::CLI4, "--ttl", "600"])
            .status
            .success()
    );
    let table = nft_table(&t).expect("the DECEIVE table is installed");
    assert!(
        table.contains("dnat") && table.contains(addr::CLI4),
        "{table}"
    );
    // A reload that removes every honeypot removes the DNAT rules.
    write_config(&t, "", "");
    hup(&agent);
    agent.wait_for_log("config reloaded", Duration::from_secs(5));
    assert_eq!(
        nft_table(&t),
        None,
        "DNAT to a honeypot the config no longer names"
    );
    // DECEIVE with no honeypot is a precondition error, not an outage.
    let out = ctl(&t, &["deceive", addr::CLI4]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FailedPrecondition"), "{err}");
    assert!(err.contains("no honeypot"), "{err}");
    // Back with a honeypot, then detach: the table goes with the pins.
    write_config(&t, "", HONEYPOT);
    hup(&agent);
    let start = Instant::now();
    while nft_table(&t).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "table not re-installed"
        );
        sleep(Duration::from_millis(20));
    }
    drop(agent);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", t.netns(Role::Gw).display()))
        .arg(agent_bin())
        .arg("--pin-dir")
        .arg(t.pins.path())
        .arg("detach")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed nft table inet phantomnet"));
    assert_eq!(nft_table(&t), None, "detach left the DNAT rules");
}

#[test]
fn load_model_reads_only_bounded_files_in_the_model_directory() {
    if !root_or_skip("load_model_reads_only_bounded_files_in_the_model_directory") {
        return;
    }
    let t = TestLab::up("loadmodel");
    let dir = std::env::temp_dir().join(format!("{}-models", t.lab.prefix()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/model-v1.pnm");
    let model = dir.join("current.pnm");
    fs::copy(&shipped, &model).unwrap();
    let len = fs::metadata(&model).unwrap().len();
    // A sparse file over the limit, and a symlink out of the directory.
    let big = dir.join("big.pnm");
    fs::File::create(&big).unwrap().set_len(len + 1).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.pnm")).unwrap();
    let cfg = write_config(
        &t,
        "",
        &format!(
            "[model]\npath = \"{}\"\nmax_bytes = {len}\n",
            model.display()
        ),
    );
    let mut agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    // nsenter execs the agent: the child's pid is the agent's.
    let pid = agent.pid();
    let rss = || -> u64 {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let before = rss();
    for (path, needle) in [
        ("/dev/zero".to_string(), "outside the model directory"),
        (
            dir.join("zero.pnm").display().to_string(),
            "outside the model directory",
        ),
        (big.display().to_string(), "limit"),
        ("/etc/passwd".to_string(), "outside the model directory"),
    ] {
        let out = ctl(&t, &["model", "--load", &path]);
        assert!(!out.status.success(), "{path} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("InvalidArgument") && err.contains(needle),
            "{path}: {err}"
        );
    }
    assert!(agent.alive());
    assert!(
        rss() < before + 64 * 1024,
        "memory grew: {before} kB -> {} kB",
        rss()
    );
    // The model in the directory still loads.
    let out = ctl(&t, &["model", "--load", model.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(agent);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn csv_errors_name_the_right_line_with_windows_line_endings() {
    if !root_or_skip("csv_errors_name_the_right_line_with_windows_line_endings") {
        return;
    }
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/lab-dataset.csv.gz");
    // The shipped CSV is gzip-compressed; its first 50 lines, as text.
    let head: Vec<String> = std::io::BufRead::lines(std::io::BufReader::new(
        phantomnet_agent::train::csvdata::open_text(&shipped).unwrap(),
    ))
    .take(50)
    .collect::<Result<_, _>>()
    .unwrap();
    let mut lines: Vec<&str> = head.iter().map(String::as_str).collect();
    // Line 7 (1-based) gets a non-number, as an Excel user might.
    let bad = format!("x{}", lines[6]);
    lines[6] = &bad;
    let dir = tempfile_dir("csvcrlf");
    let csv = dir.join("data.csv");
    fs::write(&csv, lines.join("\r\n") + "\r\n").unwrap();
    let out = Command::new(agent_bin())
        .args(["train", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data.csv:7: "), "{err}");
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pnt-{name}-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_pin_dir_never_mounts_bpffs_over_an_existing_directory() {
    if !root_or_skip("a_pin_dir_never_mounts_bpffs_over_an_existing_directory") {
        return;
    }
    let fs_type = |p: &std::path::Path| {
        let out = Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let base = tempfile_dir("pinroot");
    let keep = base.join("keep.txt");
    fs::write(&keep, b"operator data").unwrap();
    // A pin directory inside it, as `pin_dir = "/var/lib/phantomnet/bpf"`
    // would be: the bpffs goes on the new directory only.
    let pins = phantomnet_agent::dataplane::PinDir::new(base.join("bpf"));
    pins.prepare().unwrap();
    assert!(keep.exists(), "the parent's files were hidden");
    assert_eq!(fs_type(pins.path()), "bpf_fs");
    assert_ne!(fs_type(&base), "bpf_fs");
    pins.prepare().unwrap();
    nix::mount::umount(pins.path()).unwrap();
    // The non-empty directory itself is refused, with the reason.
    let err = phantomnet_agent::dataplane::PinDir::new(&base)
        .prepare()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty"), "{err}");
    assert!(keep.exists());
    let _ = fs::remove_dir_all(&base);
}
