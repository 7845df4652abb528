//! Aggregate detection benchmarks (criterion):
//! - `aggregate/process_mixed`: one sample through `AggregateDetector::process`,
//!   a stream of benign web clients and a spoofed SYN flood (new source per
//!   sample), with an attack in progress;
//! - `aggregate/known_good_observe`: one sample through `KnownGood::observe`.
//!
//! `cargo bench -p phantomnet-agent --bench aggregate`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use phantomnet_agent::aggregate::{AggregateConfig, AggregateDetector, KnownGood, KnownGoodConfig};
use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, TCP_PSH, TCP_SYN};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EVERY: u32 = 16;

/// 60 s of samples: 400 pps of clients throughout, 10,000 pps of flood from 30 s.
fn stream() -> Vec<PacketSample> {
    let mut r = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::new();
    for ms in 0..60_000u64 {
        let flood = if ms >= 30_000 {
            10_000 / EVERY as u64
        } else {
            0
        };
        let n = 400 / EVERY as u64 + flood;
        // Spread the second's samples over its 1,000 ms.
        let per_ms = n as f64 / 1000.0;
        let count = (per_ms * (ms % 1000 + 1) as f64) as u64 - (per_ms * (ms % 1000) as f64) as u64;
        for _ in 0..count {
            let benign = r.random_bool(25.0 / n as f64);
            let mut s = PacketSample {
                timestamp_ns: ms * 1_000_000,
                dst_addr: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                src_port: r.random(),
                dst_port: 80,
                family: 4,
                protocol: IPPROTO_TCP,
                ttl: 64,
                ..PacketSample::ZERO
            };
            if benign {
                s.src_addr[..4].copy_from_slice(&[198, 51, 100, r.random_range(1..50)]);
                s.tcp_flags = TCP_ACK | TCP_PSH;
                s.payload_len = 300;
                s.packet_len = 366;
                s.ttl = 57;
            } else {
                s.src_addr[..4].copy_from_slice(&r.random::<[u8; 4]>());
                s.tcp_flags = TCP_SYN;
                s.packet_len = 54;
            }
            out.push(s);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let samples = stream();
    let mut g = c.benchmark_group("aggregate");
    g.bench_function("process_mixed", |b| {
        let mut d = AggregateDetector::new(AggregateConfig::default());
        let mut events = Vec::new();
        let mut i = 0usize;
        // Time only moves forward: replay the stream shifted by its length each lap.
        let span = samples.last().map_or(1, |s| s.timestamp_ns + 1_000_000);
        let mut lap = 0u64;
        b.iter(|| {
            let mut s = samples[i];
            s.timestamp_ns += lap * span;
            d.process(black_box(&s), EVERY, &mut events);
            events.clear();
            i += 1;
            if i == samples.len() {
                i = 0;
                lap += 1;
            }
        });
    });
    g.bench_function("known_good_observe", |b| {
        let mut kg = KnownGood::new(KnownGoodConfig::default());
        let mut i = 0usize;
        b.iter(|| {
            kg.observe(black_box(&samples[i]));
            i = (i + 1) % samples.len();
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
