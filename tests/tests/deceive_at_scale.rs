//! DECEIVE at scale, against the real kernel and real `nft` in the
//! gateway namespace: the worker that keeps `nft` off the decision loop
//! (a detection's DECEIVE answers at once, then settles into nftables or
//! falls back to THROTTLE), and the host sets that keep a transaction's
//! cost flat as more sources are deceived.
use std::net::{IpAddr, SocketAddr};

use phantomnet_agent::{
    dataplane::Prefix,
    decide::Action,
    enforce::{Applied, EnforcePolicy, Executor},
};
use phantomnet_common::RuleKind;
use phantomnet_tests::{
    Banner, Role, TestLab, addr,
    deceive::{assert_enforced, installed, p, ssh_banners, ssh4},
    root_or_skip, who_answers,
};

#[test]
fn a_deferred_deceive_answers_at_once_then_settles_into_nft_or_falls_back() {
    if !root_or_skip("a_deferred_deceive_answers_at_once_then_settles_into_nft_or_falls_back") {
        return;
    }
    let t = TestLab::up("defer");
    let _dp = t.load();
    let _banners = ssh_banners(&t);
    let mut ex = Executor::new(t.maps(), Ok(installed(&t)), EnforcePolicy::default());
    ex.defer_deceives().unwrap();
    let ssh4 = ssh4();
    let a0 = addr::atk_src4(0);
    let ip0: IpAddr = a0.parse().unwrap();
    let has_throttle = |ex: &Executor, ip: IpAddr| {
        ex.maps()
            .rules()
            .unwrap()
            .iter()
            .any(|r| r.kind == RuleKind::Throttle && r.prefix == Prefix::host(ip))
    };

    // The detector throttled it first; now it proposes DECEIVE.
    ex.apply(ip0, Action::Throttle, "rule 2").unwrap();
    assert!(has_throttle(&ex, ip0));
    assert_enforced(
        &ex.apply(ip0, Action::Deceive, "rule 4").unwrap(),
        Action::Deceive,
    );
    // In force for the executor at once, queued or not.
    assert_eq!(
        ex.apply(ip0, Action::Deceive, "rule 4").unwrap(),
        Applied::Unchanged {
            in_force: Action::Deceive
        }
    );
    // Listing waits for the queue: nft holds it, and settling removed the
    // detector's throttle, so the source reaches the honeypot.
    let listed = ex.deceived().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].source, a0);
    assert!(ex.settle().is_empty(), "nothing was refused");
    assert!(!has_throttle(&ex, ip0), "the detector's throttle went");
    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "honeypot");

    // nft refuses (our table is gone): `apply` had already answered, so the
    // refusal comes out of `settle`, fallen back to THROTTLE.
    let gone = t
        .nsenter(Role::Gw)
        .args(["nft", "delete", "table", "inet", "phantomnet"])
        .status()
        .unwrap();
    assert!(gone.success());
    let ip1: IpAddr = addr::atk_src4(1).parse().unwrap();
    assert!(matches!(
        ex.apply(ip1, Action::Deceive, "rule 4").unwrap(),
        Applied::Enforced {
            action: Action::Deceive,
            ..
        }
    ));
    // Waits for the queue; the listing itself fails without the table.
    assert!(ex.deceived().is_err());
    let refused = ex.settle();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let r = &refused[0];
    assert_eq!(r.source.addr(), ip1);
    assert_eq!(r.reason, "rule 4");
    assert!(r.why.contains("No such file or directory"), "{}", r.why);
    assert!(
        matches!(
            r.fallback,
            Ok(Applied::Enforced {
                action: Action::Throttle,
                ..
            })
        ),
        "{:?}",
        r.fallback
    );
    assert!(has_throttle(&ex, ip1));
    assert!(ex.settle().is_empty(), "handed out once");
    // Remembered, as an inline failure is: not retried, THROTTLE stays.
    assert_eq!(
        ex.apply(ip1, Action::Deceive, "rule 4").unwrap(),
        Applied::Unchanged {
            in_force: Action::Throttle
        }
    );
}

/// `nft -j list set` of one of the agent's sets in the gateway: the
/// sources it holds.
fn set_members(t: &TestLab, set: &str) -> String {
    let out = t
        .nsenter(Role::Gw)
        .args(["nft", "list", "set", "inet", "phantomnet", set])
        .output()
        .unwrap();
    assert!(out.status.success(), "listing {set}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What nftables lists as deceived, as text (`192.0.2.10`, `…/64`).
fn deceived_sources(ex: &mut Executor) -> Vec<String> {
    ex.deceived()
        .unwrap()
        .into_iter()
        .map(|d| d.source)
        .collect()
}

#[test]
fn hosts_and_64s_go_to_hash_sets_prefixes_to_an_interval_set_older_entries_still_count() {
    if !root_or_skip(
        "hosts_and_64s_go_to_hash_sets_prefixes_to_an_interval_set_older_entries_still_count",
    ) {
        return;
    }
    let t = TestLab::up("dsets");
    let _dp = t.load();
    let _banners = ssh_banners(&t);
    let ssh4 = ssh4();
    let mut ex = Executor::new(t.maps(), Ok(installed(&t)), EnforcePolicy::default());
    let (a0, a1, a2) = (addr::atk_src4(0), addr::atk_src4(1), addr::atk_src4(2));

    ex.deceive(&p(&a0), None).unwrap();
    ex.deceive(&p("192.0.2.32/28"), None).unwrap();
    let hosts = set_members(&t, "deceived_hosts_v4");
    let prefixes = set_members(&t, "deceived_v4");
    assert!(
        hosts.contains(&a0) && !hosts.contains("192.0.2.32"),
        "{hosts}"
    );
    assert!(
        prefixes.contains("192.0.2.32/28") && !prefixes.contains(&a0),
        "{prefixes}"
    );
    assert_eq!(who_answers(&t, Role::Atk, &a0, ssh4), "honeypot");

    // A host an agent from before the host sets put in the interval set:
    // it still reaches the honeypot, is listed and adopted, and can be
    // undeceived.
    let old = t
        .nsenter(Role::Gw)
        .args(["nft", "add", "element", "inet", "phantomnet", "deceived_v4"])
        .arg(format!("{{ {a1} timeout 900s }}"))
        .status()
        .unwrap();
    assert!(old.success());
    assert_eq!(who_answers(&t, Role::Atk, &a1, ssh4), "honeypot");
    let mut ex = Executor::new(t.maps(), Ok(installed(&t)), EnforcePolicy::default());
    let listed = deceived_sources(&mut ex);
    assert!(listed.contains(&a0) && listed.contains(&a1), "{listed:?}");
    assert!(listed.contains(&"192.0.2.32/28".to_string()), "{listed:?}");
    let ip1: IpAddr = a1.parse().unwrap();
    assert_eq!(
        ex.apply(ip1, Action::Deceive, "rule 4").unwrap(),
        Applied::Unchanged {
            in_force: Action::Deceive
        },
        "adopted from the interval set"
    );
    ex.undeceive(&p(&a1)).unwrap();
    assert!(!set_members(&t, "deceived_v4").contains(&a1));
    assert_eq!(who_answers(&t, Role::Atk, &a1, ssh4), "server");
    let err = ex.undeceive(&p(&a2)).unwrap_err();
    assert!(err.to_string().contains("is not deceived"), "{err}");

    // An IPv6 source is its /64: a hash set of network addresses, looked up
    // with the source masked to 64 bits.
    let _srv6 = Banner::start(&t, Role::Srv, addr::SRV6, 22, b"server");
    let _hp6 = Banner::start(&t, Role::Hp, addr::HP6, 2222, b"honeypot");
    let ssh6: SocketAddr = format!("[{}]:22", addr::SRV6).parse().unwrap();
    let net = Prefix::masked(addr::atk_src6(0).parse().unwrap(), 64);
    ex.deceive(&net, None).unwrap();
    let nets = set_members(&t, "deceived_nets64_v6");
    assert!(nets.contains(&net.addr().to_string()), "{nets}");
    assert!(!set_members(&t, "deceived_v6").contains(&net.addr().to_string()));
    for i in [0, 5] {
        assert_eq!(
            who_answers(&t, Role::Atk, &addr::atk_src6(i), ssh6),
            "honeypot",
            "every address of the /64"
        );
    }
    let listed = deceived_sources(&mut ex);
    assert!(listed.contains(&net.to_string()), "{listed:?}");
    ex.undeceive(&net).unwrap();
    assert_eq!(
        who_answers(&t, Role::Atk, &addr::atk_src6(0), ssh6),
        "server"
    );
}
