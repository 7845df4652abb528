use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::lab::addr;

fn plan_for(seed: u64) -> Plan {
    let mut rng = Rng::new(seed);
    let ports = Ports::draw(&mut rng);
    let ctx = Ctx {
        ports,
        work: Path::new("/nonexistent/run"),
        key: Path::new("/nonexistent/key"),
    };
    plan(&mut rng, &ctx, 2)
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
    assert_eq!(argvs(&plan_for(7)), argvs(&plan_for(7)));
    assert_ne!(argvs(&plan_for(7)), argvs(&plan_for(8)));
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
    for seed in 0..40 {
        let p = plan_for(seed);
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
    for seed in 0..10 {
        let p = plan_for(seed);
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
