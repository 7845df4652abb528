//! What a DECEIVE costs in nftables (criterion; root only, else it says so
//! and measures nothing). In a network namespace of its own
//! (`pnbench-deceive-<pid>`, removed at the end), the agent's own table is
//! installed with `Deceiver::install` and fed the agent's own transactions
//! (`Deceiver::deceive_many`: add, delete, add with the timeout, per source):
//!
//! - `deceive/1_source`: one source, one transaction (what an inline
//!   DECEIVE cost the decision loop per new source);
//! - `deceive/256_sources_one_transaction`: what the DECEIVE worker sends
//!   when 256 sources queued behind a slow call;
//! - `deceive/256_sources_one_at_a_time`: the same sources, a transaction each;
//! - `deceive/256_v6_prefixes_one_transaction`: 256 IPv6 /64s (what an
//!   IPv6 source is by default), which go to the /64 hash set;
//! - the `…_set_4096` variants: the same with 4,096 other hosts (or /64s)
//!   already deceived (both have hash sets; in the interval sets they had
//!   until 2026-12-06, a transaction cost more as the set grew).
//!
//! Each iteration re-deceives the same sources, so the set's size stays put.
use std::{net::IpAddr, process::Command, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use phantomnet_agent::{
    dataplane::Prefix,
    enforce::{Deceiver, Honeypot},
};

struct Netns(String);

impl Netns {
    fn add() -> Option<Netns> {
        let name = format!("pnbench-deceive-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Netns(name))
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sources(first: u32, n: u32) -> Vec<(Prefix, Duration)> {
    (first..first + n)
        .map(|i| {
            let a = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            (Prefix::host(a), Duration::from_secs(900))
        })
        .collect()
}

/// `n` IPv6 /64s, 2001:db8:<i>::/64 from `first`.
fn v6_nets(first: u32, n: u32) -> Vec<(Prefix, Duration)> {
    (first..first + n)
        .map(|i| {
            let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
            (
                Prefix::new(IpAddr::V6(a), 64).unwrap(),
                Duration::from_secs(900),
            )
        })
        .collect()
}

/// Deceives `items`, 256 a transaction: the sets the benchmarks then
/// write into hold that many more.
fn fill(d: &Deceiver, items: &[(Prefix, Duration)]) {
    for chunk in items.chunks(256) {
        d.deceive_many(chunk).expect("filling the set");
    }
}

fn deceive(c: &mut Criterion) {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("deceive benchmarks: need root (a network namespace and nft); skipped");
        return;
    }
    let Some(ns) = Netns::add() else {
        eprintln!("deceive benchmarks: `ip netns add` failed; skipped");
        return;
    };
    let honeypots = ["203.0.113.130:2222", "[2001:db8:204::130]:2222"].map(|t| Honeypot {
        port: 22,
        target: t.parse().unwrap(),
    });
    let d = Deceiver::new(honeypots.to_vec()).in_netns(ns.path());
    d.install().expect("installing the table");
    let one = sources(0, 1);
    let many = sources(1, 256);
    let mut g = c.benchmark_group("deceive");
    g.sample_size(10);
    for suffix in ["", "_set_4096"] {
        if !suffix.is_empty() {
            fill(&d, &sources(100_000, 4096));
        }
        g.bench_function(format!("1_source{suffix}"), |b| {
            b.iter(|| d.deceive_many(&one).unwrap())
        });
        g.bench_function(format!("256_sources_one_transaction{suffix}"), |b| {
            b.iter(|| d.deceive_many(&many).unwrap())
        });
        g.bench_function(format!("256_sources_one_at_a_time{suffix}"), |b| {
            b.iter(|| {
                for s in &many {
                    d.deceive_many(std::slice::from_ref(s)).unwrap();
                }
            })
        });
    }
    // IPv6 sources are /64 prefixes by default: the /64 set.
    let nets = v6_nets(1, 256);
    for suffix in ["", "_set_4096"] {
        if !suffix.is_empty() {
            fill(&d, &v6_nets(100_000, 4096));
        }
        g.bench_function(format!("256_v6_prefixes_one_transaction{suffix}"), |b| {
            b.iter(|| d.deceive_many(&nets).unwrap())
        });
    }
    g.finish();
    drop(ns);
}

criterion_group!(benches, deceive);
criterion_main!(benches);
