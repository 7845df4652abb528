use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::lab::addr;

fn plan_of(seed: u64, corpus: Corpus) -> Plan {
    let mut rng = Rng::new(seed);
    let ports = Ports::draw(&mut rng);
    let ctx = Ctx {
        ports,
        work: Path::new("/nonexistent/run"),
        key: Path::new("/nonexistent/key"),
    };
    plan(&mut rng, &ctx, 2, corpus)
}

fn argvs(p: &Plan) -> Vec<Vec<String>> {
    p.attacks
        .iter()
        .chain(&p.benign)
        .map(|r| r.argv.clone())
        .collect()
}

#[test]
fn a_seed_repeats_its_plan_and_another_seed_does_not() {
    for c in Corpus::ALL {
        assert_eq!(argvs(&plan_of(7, c)), argvs(&plan_of(7, c)), "{c}");
        assert_ne!(argvs(&plan_of(7, c)), argvs(&plan_of(8, c)), "{c}");
    }
}

#[test]
fn rng_range_is_inclusive_and_bounded() {
    let mut rng = Rng::new(1);
    let draws: Vec<u32> = (0..2000).map(|_| rng.range(3, 9)).collect();
    assert!(draws.iter().all(|d| (3..=9).contains(d)));
    assert!(draws.contains(&3) && draws.contains(&9));
    let f: Vec<f64> = (0..2000).map(|_| rng.float(0.5, 2.0)).collect();
    assert!(f.iter().all(|x| (0.5..2.0).contains(x)));
}

#[test]
fn every_plan_has_eight_kinds_of_each_and_bounded_runs() {
    for (seed, c) in (0..40).flat_map(|s| Corpus::ALL.map(|c| (s, c))) {
        let p = plan_of(seed, c);
        let attack: BTreeSet<_> = p.attacks.iter().map(|r| r.scenario).collect();
        let benign: BTreeSet<_> = p.benign.iter().map(|r| r.scenario).collect();
        assert!(attack.len() >= 8, "seed {seed}: {attack:?}");
        assert!(benign.len() >= 8, "seed {seed}: {benign:?}");
        assert!(p.attacks.iter().all(Run::is_attack));
        assert!(!p.benign.iter().any(Run::is_attack));
        for r in p.attacks.iter().chain(&p.benign) {
            assert!(
                r.secs > 0.0 && r.secs <= 60.0,
                "seed {seed}: {} bound {}",
                r.scenario,
                r.secs
            );
            assert!(!r.argv.is_empty() && !r.sources.is_empty(), "{r:?}");
        }
    }
}

/// Every address the training recording (and the lab's own hosts) uses.
fn training_sources() -> BTreeSet<String> {
    let mut t: BTreeSet<String> = addr::CLI_SRC4.iter().map(|s| s.to_string()).collect();
    t.extend([addr::CLI6, addr::ATK4, addr::ATK6].map(String::from));
    for i in 0..addr::ATK_SOURCES {
        t.insert(addr::atk_src4(i));
        t.insert(addr::atk_src6(i));
    }
    for i in 0..addr::CLI_SOURCES {
        t.insert(addr::cli_src4(i));
        t.insert(addr::cli_src6(i));
    }
    t
}

#[test]
fn sources_are_fresh_and_each_belongs_to_one_scenario() {
    let training = training_sources();
    for (seed, c) in (0..10).flat_map(|s| Corpus::ALL.map(|c| (s, c))) {
        let p = plan_of(seed, c);
        let mut owner: BTreeMap<String, &str> = BTreeMap::new();
        for r in p.attacks.iter().chain(&p.benign) {
            for src in &r.sources {
                assert!(!training.contains(src), "{src} is a training source");
                let o = owner.entry(src.clone()).or_insert(r.scenario);
                assert_eq!(*o, r.scenario, "{src} runs two scenarios");
            }
        }
        // And each host's sources are its own.
        let names: BTreeSet<_> = p.hosts.iter().map(|h| h.name.clone()).collect();
        assert_eq!(names.len(), p.hosts.len());
        // Each host's IPv6 address is in a /64 of its own, none of them a
        // training /64, so the agent's default grouping (/64) keeps every
        // host a source of its own.
        let net64 = |a: &str| {
            let o = a.parse::<std::net::Ipv6Addr>().unwrap().segments();
            [o[0], o[1], o[2], o[3]]
        };
        let training64: BTreeSet<_> = training
            .iter()
            .filter(|a| a.contains(':'))
            .map(|a| net64(a))
            .collect();
        let host64: BTreeSet<_> = p.hosts.iter().map(|h| net64(&h.v6)).collect();
        assert_eq!(host64.len(), p.hosts.len(), "two hosts share a /64");
        assert!(host64.is_disjoint(&training64), "a host in a training /64");
        let text = labels(&p, "test");
        assert_eq!(text.lines().count(), owner.len() + 1);
    }
}

/// The words of every run's command line and script, split at anything
/// that is not a letter, digit or `_`, so `kdig` is not `dig`.
fn words(p: &Plan) -> BTreeSet<String> {
    p.attacks
        .iter()
        .chain(&p.benign)
        .flat_map(|r| r.argv.iter())
        .flat_map(|a| {
            a.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn corpus_names_round_trip_and_unknown_ones_are_refused() {
    for c in Corpus::ALL {
        assert_eq!(c.name().parse::<Corpus>(), Ok(c));
    }
    let e = "third".parse::<Corpus>().unwrap_err();
    assert!(e.contains("third") && e.contains("second"), "{e}");
}

#[test]
fn the_second_corpus_runs_no_tool_of_the_first_or_of_training() {
    // The client programs the training recording runs
    // (tests/lab/src/traffic/run.rs and tests/lab/scripts/).
    const TRAINING: &[&str] = &[
        "nmap", "hping3", "fping", "curl", "wget", "python3", "scapy", "paramiko",
    ];
    for seed in 0..10 {
        let first = plan_of(seed, Corpus::First);
        let second = plan_of(seed, Corpus::Second);
        let tools = |p: &Plan| -> BTreeSet<&str> {
            p.attacks.iter().chain(&p.benign).map(|r| r.tool).collect()
        };
        let (t1, t2) = (tools(&first), tools(&second));
        // One program is shared: Debian's only slow-rate HTTP tool,
        // slowhttptest, run in another mode (slow read, `-X`, against the
        // first's slow headers, `-H`).
        let shared: Vec<_> = t1.intersection(&t2).collect();
        assert_eq!(shared, [&"slowhttptest"], "seed {seed}");
        let modes = |p: &Plan| -> BTreeSet<String> {
            p.attacks
                .iter()
                .filter(|r| r.tool == "slowhttptest")
                .map(|r| r.argv[1].clone())
                .collect()
        };
        assert_eq!(modes(&first), BTreeSet::from(["-H".to_string()]));
        assert_eq!(modes(&second), BTreeSet::from(["-X".to_string()]));
        let t1: BTreeSet<&str> = t1.into_iter().filter(|t| *t != "slowhttptest").collect();
        // Not named as a tool, and not run by any command line or script
        // either (the first corpus's scripts run curl, wget, dig, ssh,
        // ping; its hosts' tools are the names in `t1`).
        let w2 = words(&second);
        let mut banned: BTreeSet<&str> = t1.iter().copied().collect();
        banned.extend(TRAINING);
        banned.extend(["dig", "ping", "ab", "hey", "chronyd", "iperf3"]);
        banned.remove("ssh"); // rsync's transport: `-e "ssh -i …"`
        let hit: Vec<_> = banned.iter().filter(|b| w2.contains(**b)).collect();
        assert!(
            hit.is_empty(),
            "seed {seed}: the second corpus runs {hit:?}"
        );
        // And it still has at least 8 kinds of each, IPv6 among them.
        let v6 = |runs: &[Run]| {
            runs.iter()
                .filter(|r| r.sources.iter().any(|s| s.contains(':')))
                .count()
        };
        assert!(v6(&second.attacks) >= 8 && v6(&second.benign) >= 8);
    }
}

#[test]
fn every_second_corpus_poller_uses_the_status_endpoint_not_healthz() {
    let p = plan_of(3, Corpus::Second);
    let text: String = p
        .benign
        .iter()
        .flat_map(|r| r.argv.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!text.contains("/healthz"));
    assert!(text.contains(STATUS));
}
