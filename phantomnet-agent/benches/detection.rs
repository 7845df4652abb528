//! Detection benchmarks (criterion):
//! - `flow/update`: one flow-table update (window stats included), 10k sources;
//! - `forest/single_row`, `forest/batch_1000`: compact-forest attack probability;
//! - `smartcore/single_row`: smartcore's own predict on one row (for reference);
//! - `iforest/single_row`: isolation-forest score;
//! - `detect/full_path`: sample → flow → features → models → correlator → decision;
//! - `detect/observe`: the live path's detector step: the flow update, and
//!   a scoring only when the source's window has changed (`Detector::observe`);
//! - `pipeline/whole_path_*`: one sample from the ring buffer's bytes to the
//!   executor's verdict (decode, `observe`, evidence, journal sieve, the
//!   executor's precedence rule in memory as `replay` runs it), at the
//!   simulated capture's own rates and with time compressed 100×.
//!
//! The model is trained here on a labeled CSV: `PN_BENCH_CSV` names it; if
//! the file does not exist it is generated first from a simulated, seeded
//! lab capture through the same `dataset` code the CLI uses, so
//! `benches/sklearn_compare.py` can train scikit-learn on the same rows.
//! `PN_BENCH_TREES` (default 200) sets the forest size. With
//! `PN_BENCH_MODEL` naming a model artifact (the shipped `models/*.pnm`),
//! that model is loaded instead and scores the CSV's rows, scaled by its own
//! scaler (the CSV must have its schema); `smartcore/single_row` is then
//! left out, as the artifact holds no smartcore forest.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phantomnet_agent::capture::CaptureWriter;
use phantomnet_agent::config::Config;
use phantomnet_agent::correlate::{Correlator, SignatureSet, ThreatFeed};
use phantomnet_agent::daemon::pipeline::{PipelineState, SampleClock, step};
use phantomnet_agent::dataplane::decode_sample;
use phantomnet_agent::detect::{Detector, DetectorConfig, Scoring};
use phantomnet_agent::features::FEATURE_COUNT;
use phantomnet_agent::flow::{FlowConfig, FlowTable};
use phantomnet_agent::metrics::Metrics;
use phantomnet_agent::models::forest::{fit_smartcore, to_matrix};
use phantomnet_agent::models::{
    CompactForest, ForestParams, IsolationForest, IsolationParams, Model, ModelParams,
    StandardScaler,
};
use phantomnet_agent::replay::Enforcer;
use phantomnet_agent::train::csvdata::read_csv;
use phantomnet_agent::train::dataset::{Input, Pass, build_dataset};
use phantomnet_agent::train::labels::LabelRules;
use phantomnet_agent::train::progress::Progress;
use phantomnet_common::capture::{RECORD_LEN, encode};
use phantomnet_common::{
    IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_PSH, TCP_SYN, sample_flags,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NS: u64 = 1_000_000_000;

fn fill(rng: &mut ChaCha8Rng, s: &mut PacketSample, text: Option<&[u8]>, len: u16) {
    s.payload_len = len;
    let n = (len as usize).min(64);
    let n = match text {
        Some(t) => {
            let n = n.min(t.len());
            s.payload[..n].copy_from_slice(&t[..n]);
            n
        }
        None => {
            rng.fill(&mut s.payload[..n]);
            n
        }
    };
    s.payload_valid = n as u8;
    s.packet_len = len as u32 + 54;
}

fn sample(rng: &mut ChaCha8Rng, ts: u64, src: [u8; 4], kind: u8) -> PacketSample {
    let mut s = PacketSample {
        timestamp_ns: ts,
        ifindex: 2,
        src_port: rng.random_range(1024..65535),
        dst_port: 443,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_ACK | TCP_PSH,
        ttl: if rng.random_bool(0.5) { 64 } else { 128 } - rng.random_range(0..12),
        ..PacketSample::ZERO
    };
    s.src_addr[..4].copy_from_slice(&src);
    s.dst_addr[..4].copy_from_slice(&[10, 0, 0, rng.random_range(1..4)]);
    match kind {
        // Benign web: TLS records or plain HTTP.
        0 => {
            let len = rng.random_range(0..1400);
            if rng.random_bool(0.2) {
                s.dst_port = 80;
                fill(rng, &mut s, Some(b"GET /index.html HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0"), len);
            } else {
                fill(rng, &mut s, None, len);
            }
            if rng.random_bool(0.05) {
                s.tcp_flags = TCP_SYN;
                fill(rng, &mut s, None, 0);
            }
        }
        // Benign DNS.
        1 => {
            s.protocol = IPPROTO_UDP;
            s.tcp_flags = 0;
            s.dst_port = 53;
            let len = rng.random_range(30..90);
            fill(rng, &mut s, None, len);
        }
        // SYN flood.
        2 => {
            s.tcp_flags = TCP_SYN;
            s.dst_port = 80;
            fill(rng, &mut s, None, 0);
        }
        // Port scan.
        3 => {
            s.tcp_flags = TCP_SYN;
            s.dst_port = rng.random_range(1..10000);
            s.dst_addr[3] = rng.random_range(1..255);
            fill(rng, &mut s, None, 0);
        }
        // UDP flood.
        4 => {
            s.protocol = IPPROTO_UDP;
            s.tcp_flags = 0;
            s.dst_port = rng.random_range(1..65535);
            fill(rng, &mut s, None, 1400);
        }
        // Web attacks.
        _ => {
            s.dst_port = 80;
            let p: &[&[u8]] = &[
                b"GET /item?id=1 UNION SELECT user,pass FROM users-- HTTP/1.1",
                b"GET /../../../../etc/passwd HTTP/1.1\r\nUser-Agent: nikto",
                b"POST /ping host=127.0.0.1;cat /etc/shadow HTTP/1.1",
                b"GET /search?q=<script>alert(document.cookie)</script>",
            ];
            let t = p[rng.random_range(0..p.len())];
            let len = rng.random_range(60..400);
            fill(rng, &mut s, Some(t), len);
        }
    }
    s
}

/// A simulated 90 s lab capture: 150 benign sources, 12 attackers (~30k samples).
fn simulate(seed: u64) -> Vec<PacketSample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let t0 = 10_000 * NS;
    for b in 0..150u32 {
        let src = [198, 51, (100 + b / 250) as u8, (b % 250 + 1) as u8];
        let kind = u8::from(b % 5 == 0);
        let mut t = t0 + rng.random_range(0..5 * NS);
        // Mean gap 0.2–2 s, with occasional page-load bursts.
        let mean = rng.random_range(0.2..2.0);
        while t < t0 + 90 * NS {
            out.push(sample(&mut rng, t, src, kind));
            let gap = if rng.random_bool(0.2) {
                0.01
            } else {
                -mean * (1.0 - rng.random::<f64>()).ln()
            };
            t += (gap * NS as f64) as u64 + 1;
        }
    }
    for a in 0..12u8 {
        let src = [192, 0, 2, 10 + a];
        let kind = 2 + a % 4;
        let rate = match kind {
            2 | 4 => 40.0,
            3 => 20.0,
            _ => 3.0,
        };
        let mut t = t0 + rng.random_range(0..30 * NS);
        let end = t + rng.random_range(30..60) * NS;
        while t < end.min(t0 + 90 * NS) {
            out.push(sample(&mut rng, t, src, kind));
            t += (-(1.0 - rng.random::<f64>()).ln() / rate * NS as f64) as u64 + 1;
        }
    }
    out.sort_by_key(|s| s.timestamp_ns);
    out
}

fn bench_csv() -> PathBuf {
    let path = std::env::var_os("PN_BENCH_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("phantomnet-bench.csv"));
    if !path.exists() {
        let cap = path.with_extension("pncap");
        let mut w = CaptureWriter::create(&cap).expect("create capture");
        for s in simulate(2024) {
            w.write(&s).expect("write capture");
        }
        w.flush().expect("flush");
        drop(w);
        let rules = LabelRules::from_args(&["192.0.2.0/24=attack".into()]).expect("rules");
        build_dataset(
            &[Input::Capture(cap)],
            &rules,
            FlowConfig::default(),
            &[Pass::AS_RECORDED],
            &path,
            &Progress::hidden(),
        )
        .expect("dataset");
    }
    path
}

struct Fixture {
    model: Arc<Model>,
    smartcore: Option<phantomnet_agent::models::forest::SmartForest>,
    scaled: Vec<[f64; FEATURE_COUNT]>,
    samples: Vec<PacketSample>,
}

fn fixture(csv: &Path) -> Fixture {
    let ds = read_csv(csv).expect("read bench csv");
    if let Some(path) = std::env::var_os("PN_BENCH_MODEL") {
        let model = Model::load(Path::new(&path)).expect("load PN_BENCH_MODEL");
        assert_eq!(
            model.scaler.width(),
            ds.schema.count(),
            "the CSV's schema is not the model's"
        );
        let scaled: Vec<_> = ds
            .rows
            .iter()
            .map(|r| model.scaler.transformed(r))
            .collect();
        eprintln!(
            "bench model: {} ({} rows of the CSV), {} trees, {} nodes",
            Path::new(&path).display(),
            ds.len(),
            model.forest.n_trees(),
            model.forest.n_nodes()
        );
        return Fixture {
            model: Arc::new(model),
            smartcore: None,
            scaled,
            samples: simulate(7),
        };
    }
    let trees: u16 = std::env::var("PN_BENCH_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let width = ds.schema.count();
    let scaler = StandardScaler::fit(&ds.rows, width);
    let scaled: Vec<_> = ds.rows.iter().map(|r| scaler.transformed(r)).collect();
    let params = ModelParams {
        forest: ForestParams {
            n_trees: trees,
            trees_per_job: trees, // one smartcore forest, so smartcore can be timed on the same trees
            ..ForestParams::default()
        },
        isolation: IsolationParams::default(),
        test_fraction: 0.2,
        folds: 0,
        seed: 42,
    };
    let mut parts =
        fit_smartcore(&scaled, width, &ds.labels, &params.forest, &|_| {}).expect("fit");
    let forest = CompactForest::from_smartcore(&parts).expect("convert");
    let isolation = IsolationForest::fit(&scaled, width, &params.isolation).expect("iforest");
    eprintln!(
        "bench model: {} rows ({} attack), {} trees, {} nodes",
        ds.len(),
        ds.count_label(1),
        forest.n_trees(),
        forest.n_nodes()
    );
    let meta = Model::meta(
        ds.schema,
        params,
        String::new(),
        ds.len(),
        serde_json::Value::Null,
        String::new(),
    );
    let model = Arc::new(Model::new(meta, scaler, forest, isolation).expect("model"));
    Fixture {
        model,
        smartcore: Some(parts.remove(0)),
        scaled,
        samples: simulate(7),
    }
}

/// The payload signatures on one sampled prefix: a request without a
/// query (the automaton only), a search query (decoded, one value judged),
/// and sqlmap's probe (two values judged by libinjection, the most a
/// payload gets).
fn signature_benches(c: &mut Criterion) {
    let set = SignatureSet::builtin();
    for (name, payload) in [
        (
            "signatures/plain_request",
            &b"GET /index.html HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: c"[..],
        ),
        (
            "signatures/search_query",
            b"GET /search?q=rock+and+roll&page=2 HTTP/1.1\r\nHost: www.exampl",
        ),
        (
            "signatures/sqlmap_probe",
            b"GET /d?id=991%29%20AND%201010%3D6362&q=%28SELECT%20%28CASE%20W",
        ),
    ] {
        c.bench_function(name, |b| b.iter(|| black_box(set.scan(black_box(payload)))));
    }
}

fn benches(c: &mut Criterion) {
    signature_benches(c);
    let csv = bench_csv();
    let f = fixture(&csv);
    let n = f.scaled.len();

    c.bench_function("flow/update", |b| {
        let mut table = FlowTable::new(FlowConfig::default());
        let mut i = 0usize;
        b.iter(|| {
            let s = &f.samples[i % f.samples.len()];
            i += 1;
            black_box(table.observe(black_box(s)).1);
        })
    });

    // An inside observer's answer to a tracked source: counted in its
    // answer run and, after `httparse` reads the status line, in its error
    // run (schema v6). 1,024 sources, answers in turn.
    for (name, text) in [
        (
            "flow/record_reply/http_401",
            &b"HTTP/1.1 401 Unauthorized\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026"[..],
        ),
        ("flow/record_reply/data_segment", &[0x5A; 64][..]),
    ] {
        let mut table = FlowTable::new(FlowConfig::default());
        let answers: Vec<PacketSample> = (0..1024u32)
            .map(|k| {
                let src = [198, 51, (k >> 8) as u8, k as u8];
                let mut ack = PacketSample {
                    timestamp_ns: 1_000_000_000,
                    packet_len: 54,
                    family: 4,
                    protocol: IPPROTO_TCP,
                    tcp_flags: TCP_ACK,
                    src_port: 40000,
                    dst_port: 80,
                    ttl: 64,
                    ..PacketSample::ZERO
                };
                ack.src_addr[..4].copy_from_slice(&src);
                ack.dst_addr[..4].copy_from_slice(&[203, 0, 113, 10]);
                table.record(&ack);
                let mut answer = PacketSample {
                    flags: sample_flags::REPLY,
                    tcp_flags: TCP_ACK | TCP_PSH,
                    src_port: 80,
                    dst_port: 40000,
                    src_addr: ack.dst_addr,
                    dst_addr: ack.src_addr,
                    packet_len: 54 + text.len() as u32,
                    payload_len: text.len() as u16,
                    ..ack
                };
                // The data plane copies the payload's first 64 bytes.
                let n = text.len().min(answer.payload.len());
                answer.payload[..n].copy_from_slice(&text[..n]);
                answer.payload_valid = n as u8;
                answer
            })
            .collect();
        c.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                let mut a = answers[i % answers.len()];
                a.timestamp_ns += i as u64 * 1_000;
                i += 1;
                black_box(table.record_reply(black_box(&a)));
            })
        });
    }

    c.bench_function("forest/single_row", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(
                f.model
                    .forest
                    .attack_probability(black_box(&f.scaled[i % n])),
            )
        })
    });

    let batch: Vec<_> = f.scaled.iter().take(1000).copied().collect();
    c.bench_function("forest/batch_1000", |b| {
        let mut out = Vec::with_capacity(batch.len());
        b.iter(|| {
            f.model
                .forest
                .attack_probability_batch(black_box(&batch), &mut out);
            black_box(out.last().copied())
        })
    });

    if let Some(smartcore) = &f.smartcore {
        c.bench_function("smartcore/single_row", |b| {
            let mut i = 0usize;
            b.iter_batched(
                || {
                    i += 1;
                    to_matrix(&[f.scaled[i % n]], f.model.scaler.width()).expect("matrix")
                },
                |m| black_box(smartcore.predict(&m).expect("predict")),
                BatchSize::SmallInput,
            )
        });
    }

    c.bench_function("iforest/single_row", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            black_box(f.model.isolation.score(black_box(&f.scaled[i % n])))
        })
    });

    c.bench_function("detect/full_path", |b| {
        let feed = ThreatFeed::parse("192.0.2.10 lab-attacker\n203.0.113.0/24 botnet 0.8\n")
            .expect("feed");
        let correlator = Correlator::new(SignatureSet::builtin(), Arc::new(feed));
        let mut det = Detector::new(DetectorConfig::default(), f.model.clone(), correlator)
            .expect("detector");
        let mut i = 0usize;
        b.iter(|| {
            let s = &f.samples[i % f.samples.len()];
            i += 1;
            black_box(det.process(black_box(s)).expect("decision").action)
        })
    });

    pipeline_benches(c, &f);
}

/// The stream's samples as the ring buffer hands them over (raw records),
/// with its time compressed `compress`×; and the stream's span.
fn raw_stream(samples: &[PacketSample], compress: u64) -> (Vec<[u8; RECORD_LEN]>, u64) {
    let t0 = samples[0].timestamp_ns;
    let raw: Vec<[u8; RECORD_LEN]> = samples
        .iter()
        .map(|s| {
            let mut s = *s;
            s.timestamp_ns = t0 + (s.timestamp_ns - t0) / compress;
            *encode(&s)
        })
        .collect();
    let span = (samples[samples.len() - 1].timestamp_ns - t0) / compress + 1_000_000;
    (raw, span)
}

fn on_change() -> DetectorConfig {
    DetectorConfig {
        scoring: Scoring::OnChange,
        ..DetectorConfig::default()
    }
}

fn pipeline_benches(c: &mut Criterion, f: &Fixture) {
    c.bench_function("detect/observe", |b| {
        let mut det =
            Detector::new(on_change(), f.model.clone(), Correlator::builtin()).expect("detector");
        let n = f.samples.len();
        let span = f.samples[n - 1].timestamp_ns - f.samples[0].timestamp_ns + NS;
        let mut i = 0usize;
        b.iter(|| {
            let mut s = f.samples[i % n];
            s.timestamp_ns += (i / n) as u64 * span;
            i += 1;
            black_box(det.observe(black_box(&s)).expect("observe").is_some())
        })
    });
    for (name, compress, scoring) in [
        ("pipeline/whole_path_lab_rates", 1u64, Scoring::OnChange),
        ("pipeline/whole_path_100x_rates", 100, Scoring::OnChange),
        (
            "pipeline/whole_path_100x_rates_every_sample",
            100,
            Scoring::EverySample,
        ),
    ] {
        let (raw, span) = raw_stream(&f.samples, compress);
        let n = raw.len();
        c.bench_function(name, |b| {
            let det_config = DetectorConfig {
                scoring,
                ..DetectorConfig::default()
            };
            let mut det = Detector::new(det_config, f.model.clone(), Correlator::builtin())
                .expect("detector");
            let config = Config::default();
            let policy = config.enforcement.policy();
            let mut enforcer = Enforcer::new(policy, Vec::new(), [true, true]);
            let metrics = Metrics::new();
            let first = decode_sample(&raw[0]).expect("record").timestamp_ns;
            let mut state = PipelineState::with_clock(SampleClock::anchored(first));
            let mut i = 0usize;
            b.iter(|| {
                let mut s = decode_sample(black_box(&raw[i % n])).expect("record");
                s.timestamp_ns += (i / n) as u64 * span;
                i += 1;
                match det.observe(&s).expect("observe") {
                    Some(d) => {
                        let now = state.at(d.timestamp_ns);
                        let out = step(&mut state, &d, &policy, &metrics, now, |src, a, _| {
                            Ok(enforcer.apply(src, a, now))
                        });
                        black_box(out.record.is_some())
                    }
                    None => false,
                }
            })
        });
    }
}

criterion_group! {
    name = detection;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = benches
}
criterion_main!(detection);
