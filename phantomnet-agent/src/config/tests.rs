use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

const MINIMAL: &str = "[dataplane]\ninterfaces = [\"eth0\"]\n";

/// `MINIMAL` plus `extra` appended (which may reopen `[dataplane]` keys only
/// via a full table of its own, so tests put dataplane keys inline).
pub(super) fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

pub(super) fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(c) => panic!("expected an error for:\n{text}\ngot {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_file_gets_every_default() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.dataplane.interfaces, vec!["eth0".to_string()]);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.pin_dir, Path::new("/sys/fs/bpf/phantomnet"));
    assert_eq!(c.dataplane.sample_every, 16);
    assert!(c.dataplane.priority_sampling);
    assert!(!c.dataplane.dry_run);
    assert_eq!(
        (
            c.thresholds.low,
            c.thresholds.medium_confidence,
            c.thresholds.medium,
            c.thresholds.high_confidence,
            c.thresholds.high
        ),
        (0.3, 0.6, 0.5, 0.8, 0.8)
    );
    let e = c.enforcement;
    assert_eq!(
        (
            e.block_ttl_secs,
            e.throttle_ttl_secs,
            e.deceive_ttl_secs,
            e.throttle_rate_pps,
            e.throttle_burst
        ),
        (3600, 600, 900, 100, 20)
    );
    assert!(c.honeypots.is_empty());
    assert!(c.allowlist.is_empty());
    assert_eq!(c.intel.feed, None);
    assert_eq!(c.model.path, None);
    assert_eq!(c.api.socket, Path::new("/run/phantomnet/agent.sock"));
    assert_eq!(c.api.tcp, None);
    assert_eq!(
        c.metrics.listen,
        "127.0.0.1:9477".parse::<SocketAddr>().unwrap()
    );
    assert!(!c.metrics.allow_remote);
    assert_eq!(c.journal.path, Path::new("/var/lib/phantomnet/journal"));
    assert_eq!(c.journal.max_age_secs, 7 * 24 * 3600);
    assert_eq!(c.journal.max_bytes, 256 * 1024 * 1024);

    // Config::default() is the same, less the interfaces.
    let mut d = Config::default();
    assert!(d.dataplane.interfaces.is_empty());
    d.dataplane.interfaces = vec!["eth0".into()];
    assert_eq!(d, c);
}

#[test]
fn default_needs_interfaces_to_validate() {
    let mut c = Config::default();
    let e = c.validate().unwrap_err();
    assert_eq!(e.key(), Some("dataplane.interfaces"));
    c.dataplane.interfaces.push("ens3".into());
    c.validate().unwrap();
}

#[test]
fn every_key_parses_and_converts() {
    let text = r#"
allowlist = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]
[dataplane]
interfaces = ["eth0", "veth-lab.100"]
xdp_mode = "generic"
pin_dir = "/sys/fs/bpf/pn2"
sample_every = 0
priority_sampling = false
dry_run = true
[enforcement]
block_ttl_secs = 2592000
[[honeypot]]
port = 22
target = "10.9.0.2:2222"
[[honeypot]]
port = 22
target = "[2001:db8::2]:2222"
[api.tcp]
listen = "[::]:9443"
cert = "/c.pem"
key = "/k.pem"
client_ca = "/ca.pem"
[metrics]
listen = "0.0.0.0:9477"
allow_remote = true
"#;
    let c = Config::from_toml_str(text).unwrap();
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Generic);
    assert_eq!(
        crate::dataplane::ModeRequest::from(c.dataplane.xdp_mode),
        crate::dataplane::ModeRequest::Generic
    );
    assert_eq!(c.dataplane.sample_every, 0);
    assert!(!c.dataplane.priority_sampling);
    assert!(c.dataplane.dry_run);
    assert_eq!(c.enforcement.block_ttl_secs, MAX_TTL_SECS);
    let nets: Vec<String> = c.allowlist.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128"]
    );
    assert_eq!(c.honeypots.len(), 2);
    assert!(c.honeypots[1].target.is_ipv6());
    let tcp = c.api.tcp.unwrap();
    assert_eq!(tcp.listen, "[::]:9443".parse::<SocketAddr>().unwrap());
    assert_eq!(tcp.client_ca, Path::new("/ca.pem"));
    assert_eq!(
        c.journal.retention().max_age,
        std::time::Duration::from_secs(7 * 24 * 3600)
    );
}

#[test]
fn every_validation_error_names_its_key() {
    let df = |k: &str| format!("[dataplane]\ninterfaces = [\"eth0\"]\n{k}\n");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "[dataplane]\ninterfaces = []\n".into(),
            "dataplane.interfaces",
            "at least one",
        ),
        ("".into(), "dataplane.interfaces", "at least one"),
        (
            "[dataplane]\ninterfaces = [\"eth0\", \"a-very-long-name0\"]\n".into(),
            "dataplane.interfaces[1]",
            "15 bytes",
        ),
        (
            "[dataplane]\ninterfaces = [\"eth/0\"]\n".into(),
            "dataplane.interfaces[0]",
            "not a valid interface name",
        ),
        (
            "[dataplane]\ninterfaces = [\"eth0\", \"eth0\"]\n".into(),
            "dataplane.interfaces[1]",
            "twice",
        ),
        (
            df("inside_interfaces = [\"in0\", \"in0\"]"),
            "dataplane.inside_interfaces[1]",
            "twice",
        ),
        (
            df("inside_interfaces = [\"eth0\"]"),
            "dataplane.inside_interfaces[0]",
            "enforced on or observed, not both",
        ),
        (
            df("inside_interfaces = [\"in 0\"]"),
            "dataplane.inside_interfaces[0]",
            "not a valid interface name",
        ),
        (
            df("pin_dir = \"relative/dir\""),
            "dataplane.pin_dir",
            "absolute",
        ),
        (
            with("[thresholds]\nlow = 1.5\n"),
            "thresholds.low",
            "outside [0, 1]",
        ),
        (
            with("[thresholds]\nhigh_confidence = -0.1\n"),
            "thresholds.high_confidence",
            "outside [0, 1]",
        ),
        (
            with("[thresholds]\nmedium = nan\n"),
            "thresholds.medium",
            "outside [0, 1]",
        ),
        (
            with("[thresholds]\nmedium = 0.9\nhigh = 0.7\n"),
            "thresholds.medium",
            "thresholds.high",
        ),
        (
            with("[thresholds]\nmedium_confidence = 0.9\nhigh_confidence = 0.85\n"),
            "thresholds.medium_confidence",
            "thresholds.high_confidence",
        ),
        (
            with("[thresholds]\nlow = 0.6\n"),
            "thresholds.low",
            "thresholds.medium",
        ),
        (
            with("[enforcement]\nblock_ttl_secs = 0\n"),
            "enforcement.block_ttl_secs",
            "outside",
        ),
        (
            with("[enforcement]\nthrottle_ttl_secs = 2592001\n"),
            "enforcement.throttle_ttl_secs",
            "30 days",
        ),
        (
            with("[enforcement]\ndeceive_ttl_secs = 0\n"),
            "enforcement.deceive_ttl_secs",
            "outside",
        ),
        (
            with("[enforcement]\nthrottle_rate_pps = 0\n"),
            "enforcement.throttle_rate_pps",
            "greater than 0",
        ),
        (
            with("[enforcement]\nthrottle_burst = 0\n"),
            "enforcement.throttle_burst",
            "greater than 0",
        ),
        (
            with("[enforcement]\nmin_evidence = 0\n"),
            "enforcement.min_evidence",
            "outside 1..=1000",
        ),
        (
            with("[enforcement]\nevidence_window_secs = 0\n"),
            "enforcement.evidence_window_secs",
            "outside 1..=3600",
        ),
        (
            with("[enforcement]\nflood_rule_ttl_secs = 5\n"),
            "enforcement.flood_rule_ttl_secs",
            "outside 15..=3600",
        ),
        (
            with("[enforcement]\nipv6_source_prefix = 24\n"),
            "enforcement.ipv6_source_prefix",
            "24 is outside 32..=128",
        ),
        (
            with("[enforcement]\nipv6_source_prefix = 129\n"),
            "enforcement.ipv6_source_prefix",
            "outside 32..=128",
        ),
        (
            with("[[honeypot]]\nport = 0\ntarget = \"10.0.0.1:22\"\n"),
            "honeypot[0].port",
            "1..=65535",
        ),
        (
            with("[[honeypot]]\nport = 22\ntarget = \"10.0.0.1:0\"\n"),
            "honeypot[0].target",
            "port 0",
        ),
        (
            with(
                "[[honeypot]]\nport = 22\ntarget = \"[::1]:22\"\n\
                 [[honeypot]]\nport = 80\ntarget = \"10.0.0.1:80\"\n\
                 [[honeypot]]\nport = 22\ntarget = \"[2001:db8::1]:2222\"\n",
            ),
            "honeypot[2].port",
            "IPv6 honeypot (honeypot[0])",
        ),
        (
            with("[api]\nsocket = \"agent.sock\"\n"),
            "api.socket",
            "absolute",
        ),
        (
            with(
                "[api.tcp]\nlisten = \"0.0.0.0:0\"\ncert = \"/c\"\nkey = \"/k\"\nclient_ca = \"/ca\"\n",
            ),
            "api.tcp.listen",
            "port",
        ),
        (
            with(
                "[api.tcp]\nlisten = \"0.0.0.0:9443\"\ncert = \"\"\nkey = \"/k\"\nclient_ca = \"/ca\"\n",
            ),
            "api.tcp.cert",
            "empty",
        ),
        (
            with("[metrics]\nlisten = \"0.0.0.0:9477\"\n"),
            "metrics.listen",
            "allow_remote",
        ),
        (
            with("[journal]\nmax_bytes = 1048575\n"),
            "journal.max_bytes",
            "1 MiB",
        ),
        (
            with("[journal]\nmax_age_secs = 0\n"),
            "journal.max_age_secs",
            "greater than 0",
        ),
        (
            with("[journal]\npath = \"journal.db\"\n"),
            "journal.path",
            "absolute",
        ),
        (with("[intel]\nfeed = \"\"\n"), "intel.feed", "empty"),
        (with("[model]\npath = \"\"\n"), "model.path", "empty"),
    ];
    for (text, key, reason) in cases {
        let e = err(&text);
        assert!(
            matches!(e, ConfigError::Invalid { .. }),
            "{text}: expected a validation error, got {e:?}"
        );
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        let shown = e.to_string();
        assert!(shown.contains(key), "message {shown:?} lacks key {key}");
        assert!(
            shown.contains(reason),
            "message {shown:?} lacks reason {reason:?}"
        );
        assert!(shown.starts_with("<string>: "), "{shown}");
    }
}

#[test]
fn ipv6_and_ipv4_honeypots_may_share_a_port_but_not_a_family() {
    let ok = with(
        "[[honeypot]]\nport = 22\ntarget = \"10.0.0.2:22\"\n\
         [[honeypot]]\nport = 22\ntarget = \"[fd00::2]:22\"\n",
    );
    assert_eq!(Config::from_toml_str(&ok).unwrap().honeypots.len(), 2);
    let dup = with(
        "[[honeypot]]\nport = 22\ntarget = \"10.0.0.2:22\"\n\
         [[honeypot]]\nport = 22\ntarget = \"10.0.0.3:2222\"\n",
    );
    let e = err(&dup);
    assert_eq!(e.key(), Some("honeypot[1].port"));
    assert!(e.to_string().contains("IPv4"), "{e}");
}

#[test]
fn allowlist_errors_name_the_entry_index() {
    let host_bits = "allowlist = [\"10.0.0.0/8\", \"192.168.1.1/24\"]\n".to_string() + MINIMAL;
    let e = err(&host_bits);
    assert_eq!(e.key(), Some("allowlist[1]"), "{e}");
    let shown = e.to_string();
    assert!(shown.contains("host bits"), "{shown}");
    assert!(
        shown.contains("192.168.1.0/24"),
        "suggests the network: {shown}"
    );
    assert!(shown.contains("line 1"), "{shown}");

    let garbage = "allowlist = [\"::1\", \"fe80::/10\", \"not-an-ip\"]\n".to_string() + MINIMAL;
    let e = err(&garbage);
    assert_eq!(e.key(), Some("allowlist[2]"), "{e}");
    assert!(e.to_string().contains("not-an-ip"), "{e}");

    let v6_bits = "allowlist = [\"2001:db8::1/32\"]\n".to_string() + MINIMAL;
    assert_eq!(err(&v6_bits).key(), Some("allowlist[0]"));
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let cases = [
        ("bogus = 1\n".to_string() + MINIMAL, "bogus"),
        (
            "[dataplane]\ninterfaces = [\"eth0\"]\ninterface = \"eth1\"\n".to_string(),
            "dataplane.interface",
        ),
        (with("[api.tls]\nca = \"/ca\"\n"), "api.tls"),
        (
            with(
                "[api.tcp]\nlisten = \"127.0.0.1:9443\"\ncert = \"/c\"\nkey = \"/k\"\nclient_ca = \"/ca\"\nca = \"/x\"\n",
            ),
            "api.tcp.ca",
        ),
        (
            with("[[honeypot]]\nport = 22\ntarget = \"10.0.0.2:22\"\nproto = \"tcp\"\n"),
            "honeypot[0].proto",
        ),
        (with("[journal]\nmax_size = 5\n"), "journal.max_size"),
        (
            with("[thresholds]\ncritical = 0.9\n"),
            "thresholds.critical",
        ),
    ];
    for (text, key) in cases {
        let e = err(&text);
        assert!(
            matches!(e, ConfigError::Parse { .. }),
            "{text}: expected a parse error, got {e:?}"
        );
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        let shown = e.to_string();
        assert!(shown.contains("unknown field"), "{shown}");
        assert!(shown.contains(key), "{shown}");
    }
}

#[test]
fn priority_sampling_must_be_a_bool() {
    let e = err("[dataplane]\ninterfaces = [\"eth0\"]\npriority_sampling = \"yes\"\n");
    assert_eq!(e.key(), Some("dataplane.priority_sampling"), "{e}");
    match &e {
        ConfigError::Parse { line, .. } => assert_eq!(*line, Some(3), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn detection_scoring_takes_its_two_names_and_refuses_others() {
    let ok = Config::from_toml_str(&with("[detection]\nscoring = \"on-change\"\n")).unwrap();
    assert_eq!(ok.detection.scoring, crate::detect::Scoring::OnChange);
    assert_eq!(
        Config::default().detection.scoring,
        crate::detect::Scoring::OnChange
    );
    let every = Config::from_toml_str(&with("[detection]\nscoring = \"every-sample\"\n")).unwrap();
    assert_eq!(every.detection.scoring, crate::detect::Scoring::EverySample);
    let e = err(&with("[detection]\nscoring = \"sometimes\"\n"));
    assert_eq!(e.key(), Some("detection.scoring"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("every-sample") && shown.contains("on-change"),
        "{shown}"
    );
}

#[test]
fn type_and_syntax_errors_carry_key_and_line() {
    let e = err("[dataplane]\ninterfaces = [\"eth0\"]\nsample_every = -1\n");
    assert_eq!(e.key(), Some("dataplane.sample_every"));
    match &e {
        ConfigError::Parse { line, .. } => assert_eq!(*line, Some(3), "{e}"),
        other => panic!("{other:?}"),
    }

    let e = err(&with("[dataplane.extra\n"));
    match &e {
        ConfigError::Parse { line, key, .. } => {
            assert_eq!(*line, Some(3), "{e}");
            assert_eq!(*key, None);
        }
        other => panic!("{other:?}"),
    }

    let e = err(&with("[dataplane]\nxdp_mode = \"turbo\"\n"));
    // Reopening [dataplane] is itself a TOML error; either way, an error.
    assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");

    let e = err("[dataplane]\ninterfaces = [\"eth0\"]\nxdp_mode = \"turbo\"\n");
    assert_eq!(e.key(), Some("dataplane.xdp_mode"));
    assert!(e.to_string().contains("turbo"), "{e}");

    let e = err(&with(
        "[[honeypot]]\nport = 70000\ntarget = \"10.0.0.1:1\"\n",
    ));
    assert_eq!(e.key(), Some("honeypot[0].port"), "{e}");

    let e = err(&with("[[honeypot]]\nport = 22\ntarget = \"10.0.0.1\"\n"));
    assert_eq!(e.key(), Some("honeypot[0].target"), "{e}");

    let e = err(&with(
        "[api.tcp]\nlisten = \"127.0.0.1:9443\"\ncert = \"/c\"\nkey = \"/k\"\n",
    ));
    assert_eq!(e.key(), Some("api.tcp"), "{e}");
    assert!(e.to_string().contains("client_ca"), "{e}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert_eq!(e.file(), missing);
    assert!(e.to_string().contains("nope.toml"), "{e}");

    let bad = write(
        dir.path(),
        "bad.toml",
        &with("[metrics]\nlisten = \"192.0.2.1:9477\"\n"),
    );
    let e = Config::load(&bad).unwrap_err();
    assert_eq!(e.file(), bad);
    assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
    assert_eq!(e.key(), Some("metrics.listen"));

    let unknown = write(dir.path(), "unknown.toml", &with("[journal]\nsize = 1\n"));
    let e = Config::load(&unknown).unwrap_err();
    assert_eq!(e.file(), unknown);
    assert_eq!(e.key(), Some("journal.size"));
}

#[test]
fn bad_reload_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "agent.toml",
        "[dataplane]\ninterfaces = [\"eth0\"]\nsample_every = 8\n",
    );
    let handle = ConfigHandle::load(&path).unwrap();
    let before = handle.current();
    assert_eq!(before.dataplane.sample_every, 8);

    // Invalid value, unknown key, broken syntax, missing file: all rejected.
    for bad in [
        "[dataplane]\ninterfaces = [\"eth0\"]\nsample_every = 4\n[thresholds]\nhigh = 2.0\n",
        "[dataplane]\ninterfaces = [\"eth0\"]\nsample_every = 4\nsurprise = true\n",
        "[dataplane\ninterfaces = [\"eth0\"]\n",
    ] {
        std::fs::write(&path, bad).unwrap();
        assert!(handle.reload(&path).is_err(), "{bad}");
        assert_eq!(handle.current().dataplane.sample_every, 8);
        assert_eq!(*handle.current(), *before);
    }
    assert!(handle.reload(dir.path().join("gone.toml")).is_err());
    assert_eq!(*handle.current(), *before);

    std::fs::write(
        &path,
        "[dataplane]\ninterfaces = [\"eth1\"]\nsample_every = 4\n",
    )
    .unwrap();
    let new = handle.reload(&path).unwrap();
    assert_eq!(new.dataplane.sample_every, 4);
    assert_eq!(
        handle.current().dataplane.interfaces,
        vec!["eth1".to_string()]
    );
    // A snapshot taken before the reload is unchanged.
    assert_eq!(before.dataplane.sample_every, 8);
}

#[test]
fn the_example_file_parses() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/agent.example.toml");
    let c = Config::load(&example).unwrap();
    assert_eq!(c.dataplane.interfaces, vec!["eth0", "eth1"]);
    assert_eq!(c.allowlist.len(), 3);
    assert_eq!(c.honeypots.len(), 3);
    assert!(c.api.tcp.is_some());
    assert!(c.intel.feed.is_some() && c.model.path.is_some());
    // Everything the example shows as a default is the default.
    let d = Config {
        dataplane: c.dataplane.clone(),
        allowlist: c.allowlist.clone(),
        honeypots: c.honeypots.clone(),
        intel: c.intel.clone(),
        model: c.model.clone(),
        api: ApiConfig {
            tcp: c.api.tcp.clone(),
            ..ApiConfig::default()
        },
        ..Config::default()
    };
    assert_eq!(d, c);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.sample_every, 16);
}

/// The config embedded in the Kubernetes DaemonSet's ConfigMap parses and
/// validates (the block under `agent.toml: |`, indented four spaces).
#[test]
fn the_daemonset_config_is_valid() {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/kubernetes/phantomnet-daemonset.yaml"),
    )
    .unwrap();
    let block: String = manifest
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("agent.toml: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(block.contains("[dataplane]"), "found the block:\n{block}");
    let cfg = Config::from_toml_str(&block).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.dataplane.interfaces, ["eth1"]);
    assert_eq!(cfg.allowlist.len(), 1);
    assert_eq!(cfg.honeypots.len(), 2);
    assert!(cfg.dataplane.dry_run);
}
