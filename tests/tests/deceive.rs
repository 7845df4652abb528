//! The response executor against the real kernel: DECEIVE through real nft
//! rules in the gateway namespace (a TCP connection to the protected server
//! lands on the honeypot), priorities, the allowlist, refresh, dry-run, and
//! a broken nft that leaves BLOCK working.
use std::{net::IpAddr, net::SocketAddr, process::Command, thread::sleep, time::Duration};

use phantomnet_agent::{
    dataplane::Prefix,
    decide::Action,
    enforce::{Applied, Deceiver, EnforceError, EnforcePolicy, Executor, Honeypot},
};
use phantomnet_common::{ReasonCode, RuleKind};
use phantomnet_tests::{
    Banner, Role, TestLab, addr,
    deceive::{assert_enforced, honeypots, installed, p, ssh_banners, ssh4},
    root_or_skip, who_answers,
};

fn nft_table(t: &TestLab) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.lab.ns(Role::Gw),
            "nft",
            "list",
            "table",
            "inet",
            "phantomnet",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deceived_source_reaches_the_honeypot_until_undeceived_or_expired() {
    if !root_or_skip("deceived_source_reaches_the_honeypot_until_undeceived_or_expired") {
        return;
    }
    let t = TestLab::up("deceive");
    let _dp = t.load();
    let _srv4 = Banner::start(&t, Role::Srv, addr::SRV4, 22, b"server");
    let _srv6 = Banner::start(&t, Role::Srv, addr::SRV6, 22, b"server");
    let _hp4 = Banner::start(&t, Role::Hp, addr::HP4, 2222, b"honeypot");
    let _hp6 = Banner::start(&t, Role::Hp, addr::HP6, 2222, b"honeypot");
    let deceiver = Deceiver::new(honeypots()).in_netns(t.netns(Role::Gw));
    deceiver.install().unwrap();
    deceiver.install().expect("install is idempotent");
    let mut ex = Executor::new(t.maps(), Ok(deceiver), EnforcePolicy::default());
    let ssh4: SocketAddr = format!("{}:22", addr::SRV4).parse().unwrap();
    let ssh6: SocketAddr = format!("[{}]:22", addr::SRV6).parse().unwrap();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    let a6 = addr::atk_src6(0);

    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "server");
    let applied = ex
        .apply(a0.parse::<IpAddr>().unwrap(), Action::Deceive, "test")
        .unwrap();
    assert_enforced(&applied, Action::Deceive);
    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "honeypot");
    assert_eq!(
        who_answers(&t, Role::Atk, &a1, ssh4),
        "server",
        "only the deceived source"
    );
    assert_eq!(who_answers(&t, Role::Cli, addr::CLI4, ssh4), "server");
    let table = nft_table(&t);
    assert!(table.contains(&a0) && table.contains("expires"), "{table}");
    let listed = ex.deceived().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].source, a0);
    assert!(listed[0].remaining.unwrap() > Duration::from_secs(800));
    assert_eq!(listed[0].connections, 1, "one connection redirected so far");
    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "honeypot");
    assert_eq!(ex.deceived().unwrap()[0].connections, 2);

    ex.undeceive(&p(&a0)).unwrap();
    assert_eq!(
        who_answers(&t, Role::Atk, &a0, ssh4),
        "server",
        "undeceived"
    );
    let err = ex.undeceive(&p(&a0)).unwrap_err();
    assert!(err.to_string().contains("is not deceived"), "{err}");

    // IPv6, and expiry by the element's own timeout with nobody acting.
    ex.deceive(&p(&a6), Some(Duration::from_secs(2))).unwrap();
    ex.deceive(&p(&a1), Some(Duration::from_secs(2))).unwrap();
    assert_eq!(who_answers(&t, Role::Atk, &a6, ssh6), "honeypot");
    assert_eq!(who_answers(&t, Role::Atk, &a1, ssh4), "honeypot");
    sleep(Duration::from_millis(2600));
    assert_eq!(who_answers(&t, Role::Atk, &a6, ssh6), "server", "expired");
    assert_eq!(who_answers(&t, Role::Atk, &a1, ssh4), "server", "expired");
    assert!(ex.deceived().unwrap().is_empty());

    // A whole prefix.
    ex.deceive(&p(addr::ATK_NET4), None).unwrap();
    assert_eq!(
        who_answers(&t, Role::Atk, &addr::atk_src4(7), ssh4),
        "honeypot"
    );
    assert!(nft_table(&t).contains("192.0.2.0/24"));
}

#[test]
fn executor_keeps_priorities_the_allowlist_and_refreshes() {
    if !root_or_skip("executor_keeps_priorities_the_allowlist_and_refreshes") {
        return;
    }
    let t = TestLab::up("executor");
    let _dp = t.load();
    let policy = EnforcePolicy {
        block_ttl: Duration::from_secs(4),
        ..EnforcePolicy::default()
    };
    let deceiver = Deceiver::new(honeypots()).in_netns(t.netns(Role::Gw));
    deceiver.install().unwrap();
    let mut ex = Executor::new(t.maps(), Ok(deceiver), policy);
    let a0: IpAddr = addr::atk_src4(0).parse().unwrap();
    let kinds = |ex: &Executor| -> Vec<String> {
        ex.maps()
            .rules()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.kind.name(), r.prefix))
            .collect()
    };

    assert!(matches!(
        ex.apply(a0, Action::Throttle, "r2").unwrap(),
        Applied::Enforced {
            action: Action::Throttle,
            ..
        }
    ));
    assert!(matches!(
        ex.apply(a0, Action::Throttle, "r2").unwrap(),
        Applied::Unchanged {
            in_force: Action::Throttle,
            ..
        }
    ));
    assert_eq!(kinds(&ex), ["THROTTLE 192.0.2.10/32"]);
    let r = &ex.maps().rules().unwrap()[0];
    assert_eq!((r.rate_pps, r.burst), (100, 20));
    assert!(matches!(
        ex.apply(a0, Action::Block, "rule 3").unwrap(),
        Applied::Enforced {
            action: Action::Block,
            ..
        }
    ));
    assert!(kinds(&ex).contains(&"BLOCK 192.0.2.10/32".to_string()));
    assert!(
        matches!(
            ex.apply(a0, Action::Throttle, "r5").unwrap(),
            Applied::Unchanged {
                in_force: Action::Block,
                ..
            }
        ),
        "no downgrade before expiry"
    );
    assert!(matches!(
        ex.apply(a0, Action::Deceive, "r4").unwrap(),
        Applied::Unchanged {
            in_force: Action::Block,
            ..
        }
    ));
    let block = ex
        .maps()
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.kind == RuleKind::Block)
        .unwrap();
    assert_eq!(block.reason.as_ref().unwrap().1, "rule 3");

    // Refresh: past half its TTL the same action extends the expiry.
    let first_expiry = block.expires.0;
    sleep(Duration::from_millis(2200));
    assert!(matches!(
        ex.apply(a0, Action::Block, "rule 3").unwrap(),
        Applied::Refreshed {
            action: Action::Block,
            ..
        }
    ));
    let block = ex
        .maps()
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.kind == RuleKind::Block)
        .unwrap();
    assert!(
        block.expires.0 > first_expiry + 2_000_000_000,
        "expiry extended"
    );

    // Allowlist: never acted on.
    let cli: IpAddr = addr::CLI4.parse().unwrap();
    ex.allow(&p("198.51.100.0/24"), ReasonCode::Manual).unwrap();
    assert!(matches!(
        ex.apply(cli, Action::Block, "x").unwrap(),
        Applied::Allowlisted { .. }
    ));
    assert!(matches!(
        ex.deceive(&p(addr::CLI4), None),
        Err(EnforceError::Allowlisted { .. })
    ));
    assert!(!kinds(&ex).iter().any(|k| k.contains("198.51.100.10")));

    // Dry-run: recorded, not enforced.
    ex.set_dry_run(true);
    let a1: IpAddr = addr::atk_src4(1).parse().unwrap();
    assert_eq!(
        ex.apply(a1, Action::Block, "x").unwrap(),
        Applied::DryRun {
            action: Action::Block
        }
    );
    assert!(!kinds(&ex).iter().any(|k| k.contains("192.0.2.11")));
    ex.set_dry_run(false);
    assert_eq!(ex.apply(a1, Action::Log, "x").unwrap(), Applied::Logged);

    // DECEIVE lifts a throttle of the same source: XDP must let it through.
    let a2: IpAddr = addr::atk_src4(2).parse().unwrap();
    ex.apply(a2, Action::Throttle, "r2").unwrap();
    assert!(matches!(
        ex.apply(a2, Action::Deceive, "r4").unwrap(),
        Applied::Enforced {
            action: Action::Deceive,
            ..
        }
    ));
    assert!(!kinds(&ex).contains(&"THROTTLE 192.0.2.12/32".to_string()));
}

#[test]
fn a_deceive_that_cannot_apply_falls_back_to_throttle_and_is_remembered() {
    if !root_or_skip("a_deceive_that_cannot_apply_falls_back_to_throttle_and_is_remembered") {
        return;
    }
    let t = TestLab::up("nftfail");
    let _dp = t.load();
    let rules = |ex: &Executor| -> Vec<(&'static str, String)> {
        ex.maps()
            .rules()
            .unwrap()
            .iter()
            .map(|r| (r.kind.name(), r.prefix.to_string()))
            .collect()
    };
    // The table was never installed in the gateway namespace: nft refuses.
    let deceiver = Deceiver::new(honeypots()).in_netns(t.netns(Role::Gw));
    let mut ex = Executor::new(t.maps(), Ok(deceiver), EnforcePolicy::default());
    let a0: IpAddr = addr::atk_src4(0).parse().unwrap();
    match ex.apply(a0, Action::Deceive, "x").unwrap() {
        Applied::Fallback {
            wanted: Action::Deceive,
            enforced: Action::Throttle,
            why,
            ..
        } => assert!(
            why.contains("No such file or directory"),
            "nft's reason: {why}"
        ),
        other => panic!("expected a fallback to THROTTLE, got {other:?}"),
    }
    assert_eq!(rules(&ex), [("THROTTLE", "192.0.2.10/32".to_string())]);
    // Remembered: the next DECEIVE proposal does not try nft again, and the
    // THROTTLE in force stays as it is (nothing new to journal).
    assert_eq!(
        ex.apply(a0, Action::Deceive, "x").unwrap(),
        Applied::Unchanged {
            in_force: Action::Throttle
        }
    );
    assert!(ex.apply(a0, Action::Block, "x").is_ok());

    // No nft at all: the same fallback, with the reason.
    let mut ex = Executor::new(
        t.maps(),
        Err("nft: not found".into()),
        EnforcePolicy::default(),
    );
    let a1: IpAddr = addr::atk_src4(1).parse().unwrap();
    match ex.apply(a1, Action::Deceive, "x").unwrap() {
        Applied::Fallback { why, .. } => {
            assert!(
                why.contains("DECEIVE is unavailable: nft: not found"),
                "{why}"
            )
        }
        other => panic!("expected a fallback, got {other:?}"),
    }
    // No honeypot for the family: the same, and the API's deceive is a
    // precondition error (FAILED_PRECONDITION), not an outage.
    let v4_only: Vec<Honeypot> = honeypots().into_iter().take(1).collect();
    let d = Deceiver::new(v4_only).in_netns(t.netns(Role::Gw));
    d.install().unwrap();
    let mut ex = Executor::new(t.maps(), Ok(d), EnforcePolicy::default());
    let a6: IpAddr = addr::atk_src6(0).parse().unwrap();
    assert!(matches!(
        ex.apply(a6, Action::Deceive, "x").unwrap(),
        Applied::Fallback { .. }
    ));
    assert!(matches!(
        ex.deceive(&Prefix::host(a6), None),
        Err(EnforceError::DeceiveNotConfigured(_))
    ));
    assert_eq!(
        rules(&ex),
        [
            ("BLOCK", "192.0.2.10/32".to_string()),
            ("THROTTLE", "192.0.2.10/32".to_string()),
            ("THROTTLE", "192.0.2.11/32".to_string()),
            ("THROTTLE", format!("{}/128", addr::atk_src6(0))),
        ]
    );
}

#[test]
fn a_detection_never_weakens_or_shortens_an_operators_rule() {
    if !root_or_skip("a_detection_never_weakens_or_shortens_an_operators_rule") {
        return;
    }
    let t = TestLab::up("precedence");
    let _dp = t.load();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    // The operator, with the offline CLI (straight into the pins): a
    // permanent block of a0, and a strict 10 pps throttle of the whole /24.
    for args in [
        vec!["block", a0.as_str()],
        vec!["throttle", "192.0.2.0/24", "--rate", "10"],
    ] {
        let out = t.cli(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A freshly started executor (as after a restart) sees them in the pins.
    let mut ex = Executor::new(t.maps(), Err("none".into()), EnforcePolicy::default());
    let ip0: IpAddr = a0.parse().unwrap();
    let ip1: IpAddr = a1.parse().unwrap();
    assert_eq!(
        ex.apply(ip0, Action::Block, "rule 3").unwrap(),
        Applied::Unchanged {
            in_force: Action::Block
        }
    );
    assert_eq!(
        ex.apply(ip1, Action::Throttle, "rule 5").unwrap(),
        Applied::Unchanged {
            in_force: Action::Throttle
        },
        "the detector's 100 pps must not replace the operator's 10 pps"
    );
    let rules = ex.maps().rules().unwrap();
    let block = rules.iter().find(|r| r.kind == RuleKind::Block).unwrap();
    assert_eq!(block.remaining, None, "still permanent: {block:?}");
    assert_eq!(block.reason.as_ref().unwrap().0, ReasonCode::Manual);
    let thr: Vec<_> = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Throttle)
        .collect();
    assert_eq!(thr.len(), 1, "no detector /32 inside the /24: {thr:?}");
    assert_eq!(thr[0].rate_pps, 10);
    // A stricter detection inside a looser operator rule is added, and
    // when the operator's rule is shorter, a detector BLOCK adds its own.
    let out = t.cli(&["throttle", "192.0.2.0/24", "--rate", "1000"]);
    assert!(out.status.success());
    assert!(matches!(
        ex.apply(ip1, Action::Throttle, "rule 5").unwrap(),
        Applied::Enforced { .. }
    ));
    // Only an explicit operator command shortens or removes.
    let out = t.cli(&["unblock", &a0]);
    assert!(out.status.success());
    assert!(matches!(
        ex.apply(ip0, Action::Block, "rule 3").unwrap(),
        Applied::Enforced { .. }
    ));
    let block = ex
        .maps()
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.kind == RuleKind::Block)
        .unwrap();
    assert_eq!(block.reason.as_ref().unwrap().0, ReasonCode::Detection);
    assert!(block.remaining.is_some());
}

#[test]
fn allowlisted_sources_are_never_deceived() {
    if !root_or_skip("allowlisted_sources_are_never_deceived") {
        return;
    }
    let t = TestLab::up("deceiveallow");
    let _dp = t.load();
    let _banners = ssh_banners(&t);
    let mut ex = Executor::new(t.maps(), Ok(installed(&t)), EnforcePolicy::default());
    let ssh4 = ssh4();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    // The attacker's /24 is deceived, but one address inside it is allowlisted.
    ex.allow(&p(&format!("{a1}/32")), ReasonCode::Manual)
        .unwrap();
    ex.deceive(&p("192.0.2.0/24"), None).unwrap();
    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "honeypot");
    assert_eq!(
        who_answers(&t, Role::Atk, &a1, ssh4),
        "server",
        "an allowlisted source inside a deceived prefix was redirected"
    );
    // Allowing a source that is deceived ends its deception.
    let a2 = addr::atk_src4(2);
    // A detection inside the deceived prefix keeps it (no overlapping element).
    assert_eq!(
        ex.apply(a2.parse::<IpAddr>().unwrap(), Action::Deceive, "r4")
            .unwrap(),
        Applied::Unchanged {
            in_force: Action::Deceive
        }
    );
    ex.undeceive(&p("192.0.2.0/24")).unwrap();
    ex.deceive(&p(&a2), None).unwrap();
    assert_eq!(who_answers(&t, Role::Atk, &a2, ssh4), "honeypot");
    ex.allow(&p(&a2), ReasonCode::Manual).unwrap();
    assert_eq!(who_answers(&t, Role::Atk, &a2, ssh4), "server");
    assert!(
        !ex.deceived().unwrap().iter().any(|d| d.source == a2),
        "the deception of an allowlisted source stays listed"
    );
    // Removed from the allowlist, it is deceivable again.
    ex.disallow(&p(&format!("{a1}/32"))).unwrap();
    ex.deceive(&p(&a1), None).unwrap();
    assert_eq!(who_answers(&t, Role::Atk, &a1, ssh4), "honeypot");
}
