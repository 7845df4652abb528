//! Threat-feed benchmarks (criterion):
//! - `feeds/parse_firehol_300k`: parse a 300,000-entry FireHOL netset
//!   (250,000 hosts and 50,000 /24s, 4 MB) into a feed;
//! - `feeds/merge_2x150k`: merge two 150,000-entry feeds into one;
//! - `feeds/lookup_hit`, `feeds/lookup_miss`: one source looked up in the
//!   300,000-entry feed (what the correlator does per decision).
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use phantomnet_agent::correlate::{FeedFormat, ThreatFeed, feed_format};

fn netset(hosts: u32, nets: u32, base: u32) -> String {
    let mut text = String::from("# synthetic netset\n");
    for i in 0..hosts {
        text.push_str(&format!("{}\n", Ipv4Addr::from(base + i * 7)));
    }
    for i in 0..nets {
        text.push_str(&format!("{}/24\n", Ipv4Addr::from(0x6440_0000 + (i << 8))));
    }
    text
}

fn feeds(c: &mut Criterion) {
    let text = netset(250_000, 50_000, 0x0a00_0000);
    let mut g = c.benchmark_group("feeds");
    g.sample_size(10);
    g.bench_function("parse_firehol_300k", |b| {
        b.iter(|| feed_format::parse(black_box(&text), FeedFormat::Firehol, "big", 1.0).unwrap())
    });
    let a = feed_format::parse(
        &netset(150_000, 0, 0x0a00_0000),
        FeedFormat::Firehol,
        "a",
        1.0,
    )
    .unwrap();
    let b2 = feed_format::parse(
        &netset(150_000, 0, 0x0b00_0000),
        FeedFormat::Firehol,
        "b",
        0.5,
    )
    .unwrap();
    g.bench_function("merge_2x150k", |b| {
        b.iter(|| ThreatFeed::merge([black_box(&a), black_box(&b2)]))
    });
    let big = feed_format::parse(&text, FeedFormat::Firehol, "big", 1.0).unwrap();
    g.sample_size(100);
    let hit = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + 7 * 1234));
    let miss = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    g.bench_function("lookup_hit", |b| {
        b.iter(|| black_box(big.lookup(black_box(hit))).is_some())
    });
    g.bench_function("lookup_miss", |b| {
        b.iter(|| black_box(big.lookup(black_box(miss))).is_some())
    });
    g.finish();
}

criterion_group!(benches, feeds);
criterion_main!(benches);
