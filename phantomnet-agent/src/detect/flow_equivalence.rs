//! The compact windows against the old ones (`reference.rs`), sample by
//! sample, on long seeded-random streams; and a schema-v1 model on both
//! feature vectors.
//!
//! Rates, size variance, distinct counts and the SYN ratio must be equal
//! bit for bit. The two inter-arrival features come from `f32` gap sums
//! (docs/FEATURES.md): within [`MEAN_TOL`] / [`STD_TOL`], and the v1 model
//! shipped until the second revision of 2026-12-06 (a test fixture: the
//! reference computes schema v1 only, so a model reading v2's or v3's
//! features would compare those, not the compact layout) must score and
//! decide the same on ≥ 99.9 % of the vectors.

use std::path::Path;

use phantomnet_common::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_SYN};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::decide::{DecisionTree, Thresholds};
use crate::features::{FEATURE_COUNT, extract, index};
use crate::flow::tests::reference::OldWindows;
use crate::flow::{SourceWindows, WindowStats};
use crate::models::Model;

/// Relative error allowed on the mean inter-arrival time.
const MEAN_TOL: f64 = 1e-4;
/// Error allowed on the inter-arrival standard deviation, relative to the
/// mean (a steady stream's deviation is ~0 and so has no scale of its own).
const STD_TOL: f64 = 1e-3;

const NS: u64 = 1_000_000_000;

/// How one source sends.
#[derive(Clone, Copy)]
enum Timing {
    /// Fixed period with tiny jitter.
    Steady(u64),
    /// Bursts of µs-spaced packets separated by pauses of seconds.
    Bursty,
    /// Log-uniform gaps from 1 µs to ~40 s.
    Wild,
}

struct Source {
    timing: Timing,
    addr: u8,
    /// Constant size, or varied.
    size: Option<u32>,
    proto: u8,
    scan: bool,
    burst_left: u32,
    t: u64,
}

fn gap(rng: &mut ChaCha8Rng, s: &mut Source) -> u64 {
    match s.timing {
        Timing::Steady(p) => p + rng.random_range(0..=p / 1000),
        Timing::Bursty => {
            if s.burst_left == 0 {
                s.burst_left = rng.random_range(1..2_000);
                rng.random_range(NS / 2..12 * NS)
            } else {
                s.burst_left -= 1;
                rng.random_range(1_000..50_000)
            }
        }
        Timing::Wild => {
            let e: f64 = rng.random_range(3.0..10.6);
            10f64.powf(e) as u64
        }
    }
}

fn sample(rng: &mut ChaCha8Rng, s: &mut Source) -> PacketSample {
    s.t += gap(rng, s);
    let mut ts = s.t;
    if rng.random_bool(0.02) {
        // Reordered across CPUs: slightly in the past.
        ts = ts.saturating_sub(rng.random_range(0..2_000_000));
    }
    let len = match s.size {
        Some(l) => l,
        None if rng.random_bool(0.01) => 9_000,
        None => rng.random_range(40..=1_514),
    };
    let proto = if rng.random_bool(0.05) {
        [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP][rng.random_range(0..3)]
    } else {
        s.proto
    };
    let flags = match rng.random_range(0..4) {
        0 => TCP_SYN,
        1 => TCP_SYN | TCP_ACK,
        2 => TCP_ACK,
        _ => 0x18,
    };
    let (dst_last, dport) = if s.scan {
        (rng.random::<u8>(), rng.random::<u16>())
    } else {
        (
            rng.random_range(1..4),
            [80, 443, 53][rng.random_range(0..3)],
        )
    };
    let family = if s.addr.is_multiple_of(5) { 6 } else { 4 };
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&[198, 51, 100, dst_last]);
    dst[15] = dst_last;
    PacketSample {
        timestamp_ns: ts,
        ifindex: 1,
        packet_len: len,
        src_addr: [192, 0, 2, s.addr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: dst,
        src_port: rng.random_range(1..65_535),
        dst_port: dport,
        family,
        protocol: proto,
        tcp_flags: flags,
        ttl: rng.random_range(30..=128),
        ..PacketSample::ZERO
    }
}

fn sources(rng: &mut ChaCha8Rng) -> Vec<Source> {
    let start = rng.random_range(0..1_000_000) * NS;
    let timings = [
        Timing::Steady(100_000_000),
        Timing::Steady(1_000_000),
        Timing::Steady(20_000),
        Timing::Steady(7 * NS),
        Timing::Bursty,
        Timing::Bursty,
        Timing::Wild,
        Timing::Wild,
    ];
    timings
        .iter()
        .enumerate()
        .map(|(i, &timing)| Source {
            timing,
            addr: i as u8,
            size: if i % 2 == 0 {
                Some(rng.random_range(40..=1_500))
            } else {
                None
            },
            proto: [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP][i % 3],
            scan: i % 3 == 1,
            burst_left: 0,
            t: start,
        })
        .collect()
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// Worst errors seen on the two inter-arrival features.
#[derive(Default)]
struct Errors {
    mean_rel: f64,
    std_rel: f64,
    compared: u64,
}

fn compare(new: &WindowStats, old: &WindowStats, errs: &mut Errors, ctx: &dyn Fn() -> String) {
    assert!(same_bits(new.event_rate_1m, old.event_rate_1m), "{}", ctx());
    assert!(
        same_bits(new.burst_rate_10s, old.burst_rate_10s),
        "{}",
        ctx()
    );
    assert!(
        same_bits(new.packet_size_variance, old.packet_size_variance),
        "{} {} {}",
        ctx(),
        new.packet_size_variance,
        old.packet_size_variance
    );
    assert!(
        same_bits(new.unique_dst_ips, old.unique_dst_ips),
        "{}",
        ctx()
    );
    assert!(
        same_bits(new.unique_dst_ports, old.unique_dst_ports),
        "{}",
        ctx()
    );
    assert!(same_bits(new.syn_ratio, old.syn_ratio), "{}", ctx());
    let m = old.inter_arrival_mean;
    let mean_rel = if m == 0.0 {
        assert_eq!(new.inter_arrival_mean, 0.0, "{}", ctx());
        0.0
    } else {
        (new.inter_arrival_mean - m).abs() / m
    };
    let std_rel = if m == 0.0 {
        assert_eq!(new.inter_arrival_std, 0.0, "{}", ctx());
        0.0
    } else {
        (new.inter_arrival_std - old.inter_arrival_std).abs() / m
    };
    assert!(mean_rel <= MEAN_TOL, "{} mean {new:?} vs {old:?}", ctx());
    assert!(std_rel <= STD_TOL, "{} std {new:?} vs {old:?}", ctx());
    errs.mean_rel = errs.mean_rel.max(mean_rel);
    errs.std_rel = errs.std_rel.max(std_rel);
    errs.compared += 1;
}

/// Runs `n` samples of seed `seed` through both implementations, checking
/// every sample, and returns the (new, old) feature vectors.
fn run(
    seed: u64,
    n: usize,
    errs: &mut Errors,
) -> Vec<([f64; FEATURE_COUNT], [f64; FEATURE_COUNT])> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut srcs = sources(&mut rng);
    let mut new: Vec<SourceWindows> = (0..srcs.len()).map(|_| SourceWindows::new()).collect();
    let mut old: Vec<OldWindows> = (0..srcs.len()).map(|_| OldWindows::new()).collect();
    let mut vectors = Vec::with_capacity(n);
    for k in 0..n {
        // Bursty sources dominate the sample count, as floods do.
        let i = rng.random_range(0..srcs.len());
        let s = sample(&mut rng, &mut srcs[i]);
        new[i].record(&s);
        old[i].record(&s);
        assert_eq!(new[i].last_ns(), old[i].last_ns());
        for every in [1, 16] {
            let (a, b) = (new[i].stats(every), old[i].stats(every));
            compare(&a, &b, errs, &|| {
                format!("seed {seed} sample {k} source {i} 1/{every}")
            });
            if every == 16 {
                let (fa, fb) = (extract(&s, &a).unwrap(), extract(&s, &b).unwrap());
                vectors.push((*fa.as_array(), *fb.as_array()));
            }
        }
    }
    vectors
}

#[test]
fn compact_windows_match_the_old_ones_on_random_streams() {
    let mut errs = Errors::default();
    let mut vectors = Vec::new();
    for seed in 0..6 {
        vectors.extend(run(seed, 60_000, &mut errs));
    }
    for (a, b) in &vectors {
        for f in 0..15 {
            if f != index::INTER_ARRIVAL_MEAN && f != index::INTER_ARRIVAL_STD {
                assert!(same_bits(a[f], b[f]), "feature {f}");
            }
        }
    }
    println!(
        "{} window comparisons; worst inter-arrival mean error {:.3e} (relative), std error {:.3e} (of the mean)",
        errs.compared, errs.mean_rel, errs.std_rel
    );
    agreement(&vectors);
}

/// The v1 fixture model's prediction and the decision tree's action (no
/// threat score) on both vectors of each pair.
fn agreement(vectors: &[([f64; FEATURE_COUNT], [f64; FEATURE_COUNT])]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-schema-v1.pnm");
    let model = Model::load(&path).expect("the v1 fixture model");
    assert_eq!(model.schema().unwrap(), crate::features::Schema::V1);
    let tree = DecisionTree::new(Thresholds::default()).unwrap();
    let (mut same_pred, mut same_action, mut identical) = (0usize, 0usize, 0usize);
    for (a, b) in vectors {
        // The reference computes schema v1 only.
        if a[..15] == b[..15] {
            identical += 1;
        }
        let fa = crate::features::FeatureVector::new(*a).unwrap();
        let fb = crate::features::FeatureVector::new(*b).unwrap();
        let (sa, sb) = (model.score(&fa), model.score(&fb));
        same_pred += (sa.prediction == sb.prediction) as usize;
        let da = tree.decide(sa.prediction, sa.confidence, sa.anomaly, 0.0);
        let db = tree.decide(sb.prediction, sb.confidence, sb.anomaly, 0.0);
        same_action += (da == db) as usize;
    }
    let n = vectors.len() as f64;
    println!(
        "{} vectors: {:.4} % bit-identical, predictions agree on {:.4} %, actions on {:.4} %",
        vectors.len(),
        100.0 * identical as f64 / n,
        100.0 * same_pred as f64 / n,
        100.0 * same_action as f64 / n
    );
    assert!(same_pred as f64 >= 0.999 * n);
    assert!(same_action as f64 >= 0.999 * n);
}
