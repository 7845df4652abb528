use std::{path::Path, sync::Arc};

use phantomnet_common::PacketSample;

use super::*;
use crate::{capture::CaptureWriter, models::ModelHandle};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

fn tcp(ts: u64, src: [u8; 4], sport: u16, dport: u16, flags: u8, len: u32) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        packet_len: len,
        src_addr: v4(src),
        dst_addr: v4([203, 0, 113, 10]),
        src_port: sport,
        dst_port: dport,
        family: 4,
        protocol: 6,
        tcp_flags: flags,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

/// A SYN flood from 192.0.2.12 (2,000 SYNs at 1,000/s) while a client,
/// 198.51.100.10, opens a connection to :80 every 500 ms.
fn write_capture(path: &Path) {
    let mut w = CaptureWriter::create(path).unwrap();
    let t0 = 1_000_000_000u64;
    let mut all = Vec::new();
    for i in 0..2000u64 {
        all.push(tcp(
            t0 + i * 1_000_000,
            [192, 0, 2, 12],
            1024 + (i % 5000) as u16,
            80,
            0x02,
            60,
        ));
    }
    for i in 0..5u64 {
        let t = t0 + i * 500_000_000;
        let sport = 40000 + i as u16;
        all.push(tcp(t, [198, 51, 100, 10], sport, 80, 0x02, 74));
        all.push(tcp(t + 300_000, [198, 51, 100, 10], sport, 80, 0x10, 66));
        all.push(tcp(t + 400_000, [198, 51, 100, 10], sport, 80, 0x18, 420));
    }
    all.sort_by_key(|s| s.timestamp_ns);
    for s in &all {
        w.write(s).unwrap();
    }
    w.flush().unwrap();
}

fn run(capture: &Path, sample_every: u32, seed: u64) -> Result<Report, ReplayError> {
    run_with(
        capture,
        sample_every,
        seed,
        crate::detect::Scoring::EverySample,
    )
}

fn run_with(
    capture: &Path,
    sample_every: u32,
    seed: u64,
    scoring: crate::detect::Scoring,
) -> Result<Report, ReplayError> {
    run_scored(capture, sample_every, seed, scoring, |_| {})
}

fn run_scored(
    capture: &Path,
    sample_every: u32,
    seed: u64,
    scoring: crate::detect::Scoring,
    on_decision: impl FnMut(&Scored<'_>),
) -> Result<Report, ReplayError> {
    let labels = LabelRules::from_args(&[
        "192.0.2.12=syn_flood".into(),
        "198.51.100.10=benign_http".into(),
    ])
    .unwrap();
    let mut config = Config::default();
    config.detection.scoring = scoring;
    let model = ModelHandle::open(Path::new(SHIPPED)).unwrap().current();
    replay_with(
        &ReplayInput {
            capture: capture.to_path_buf(),
            labels: &labels,
            config: &config,
            policy: config.enforcement.policy(),
            model,
            feed: Arc::new(ThreatFeed::empty()),
            recorded_every: 1,
            sample_every,
            seed,
            marks: Marks::AsRecorded,
        },
        on_decision,
    )
}

#[test]
fn a_replay_is_deterministic_and_judges_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("lab.pncap");
    write_capture(&cap);
    let a = run(&cap, 16, 7).unwrap();
    let b = run(&cap, 16, 7).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(a.counts.records, 2015);
    // At 1-in-16 with priority sampling (the default config): the flood's
    // SYNs are connection openers, sampled within the per-source bound
    // (a burst of 64, then 200/s) on top of the 1-in-16 draw.
    assert!((400..700).contains(&a.counts.sampled), "{:?}", a.counts);
    let flood = a
        .sources
        .iter()
        .find(|s| s.scenario == "syn_flood")
        .unwrap();
    assert_eq!(flood.packets, 2000);
    let first = flood.first.as_ref().expect("the SYN flood is enforced");
    // Enforced within the first second, having let fewer packets through
    // than it sent.
    assert!(first.after_ms < 1000.0, "{first:?}");
    assert!(first.packets_before < 1000, "{first:?}");
    assert_eq!(a.attack_sources, 1);
    assert_eq!(a.attack_enforced, 1);
    assert_eq!(a.benign_sources, 1);
    // Another seed draws other samples: a different but equally complete
    // report.
    let c = run(&cap, 16, 8).unwrap();
    assert_eq!(c.counts.records, a.counts.records);
    assert_ne!(c.counts.sampled, 0);
    // At 1-in-1, every record reaches the detector and is scored.
    let full = run(&cap, 1, 7).unwrap();
    assert_eq!(full.counts.sampled, 2015);
    assert_eq!(full.counts.decisions, 2015);
    // Scored on change, the flood's 2,000 SYNs take a few dozen scorings
    // (its first 32 while young, then growth points and one a second),
    // and it is enforced as early: at the packet that makes the evidence
    // rule's count.
    let full = run_with(&cap, 1, 7, crate::detect::Scoring::OnChange).unwrap();
    let flood = full
        .sources
        .iter()
        .find(|s| s.scenario == "syn_flood")
        .unwrap();
    assert!(flood.decided >= 32 && flood.decided <= 60, "{flood:?}");
    assert!(
        flood.first.as_ref().unwrap().packets_before
            <= u64::from(crate::enforce::DEFAULT_MIN_EVIDENCE),
        "{flood:?}"
    );
}

#[test]
fn a_rate_that_cannot_be_emulated_and_marks_of_a_full_capture_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("lab.pncap");
    write_capture(&cap);
    let labels = LabelRules::default();
    let config = Config::default();
    let model = ModelHandle::open(Path::new(SHIPPED)).unwrap().current();
    let err = replay(&ReplayInput {
        capture: cap.clone(),
        labels: &labels,
        config: &config,
        policy: config.enforcement.policy(),
        model,
        feed: Arc::new(ThreatFeed::empty()),
        recorded_every: 4,
        sample_every: 6,
        seed: 1,
        marks: Marks::AsRecorded,
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("only a capture of every packet"),
        "{err}"
    );
    // Marks to rebuild or strip exist only in a 1-in-N capture.
    let err = replay(&ReplayInput {
        capture: cap,
        labels: &labels,
        config: &config,
        policy: config.enforcement.policy(),
        model: ModelHandle::open(Path::new(SHIPPED)).unwrap().current(),
        feed: Arc::new(ThreatFeed::empty()),
        recorded_every: 1,
        sample_every: 16,
        seed: 1,
        marks: Marks::Rebuild,
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--marks rebuild: only a capture recorded at 1-in-N"),
        "{err}"
    );
}

#[test]
fn a_broken_capture_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("bad.pncap");
    std::fs::write(&cap, b"not a capture at all").unwrap();
    let err = run(&cap, 1, 1).unwrap_err();
    assert!(
        err.to_string().contains("not a PhantomNet capture"),
        "{err}"
    );
}

#[test]
fn every_scoring_is_reported_and_agrees_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("lab.pncap");
    write_capture(&cap);
    /// A `Scored` kept past the callback.
    #[derive(Debug)]
    struct Row(String, String, bool, f64, u8, bool, Option<Action>);
    let mut rows: Vec<Row> = Vec::new();
    let mut csv = vec![Scored::csv_header()];
    let report = run_scored(&cap, 16, 7, crate::detect::Scoring::OnChange, |s| {
        rows.push(Row(
            s.source.to_string(),
            s.scenario.to_string(),
            s.attack_source,
            s.after_ms,
            s.rule,
            s.past_evidence,
            s.put_in_force,
        ));
        csv.push(s.csv_row());
    })
    .unwrap();
    // One row per scoring; as many past the evidence rule as the report.
    assert_eq!(rows.len() as u64, report.counts.decisions);
    let past = rows.iter().filter(|r| r.5).count() as u64;
    assert_eq!(past, report.counts.past_evidence);
    // Each source's first row with something put in force is its first
    // enforcement in the report: same time and rule.
    for s in &report.sources {
        let first = rows.iter().find(|r| r.0 == s.source && r.6.is_some());
        match (&s.first, first) {
            (Some(f), Some(r)) => {
                assert_eq!((f.after_ms, f.rule), (r.3, r.4), "{}", s.source);
                assert_eq!(r.1, s.scenario);
                assert_eq!(r.2, s.attack);
            }
            (None, None) => {}
            (f, r) => panic!("{}: report {f:?}, rows {r:?}", s.source),
        }
    }
    assert!(report.sources.iter().any(|s| s.first.is_some()));
    // The CSV: a header and one line per scoring, every line as wide.
    let width = Scored::csv_header().split(',').count();
    assert_eq!(csv.len(), rows.len() + 1);
    assert!(csv.iter().all(|l| l.split(',').count() == width), "{csv:?}");
    // After the decision's 12 columns, the scored feature row, every value
    // a finite number, one column per feature.
    assert_eq!(width, 12 + crate::features::FEATURE_COUNT);
    assert!(csv[0].ends_with(crate::features::FEATURE_NAMES[crate::features::FEATURE_COUNT - 1]));
    assert!(csv[1..].iter().all(|l| {
        l.split(',')
            .skip(12)
            .all(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
    }));
    assert!(
        csv[1..]
            .iter()
            .any(|l| l.starts_with("192.0.2.12,syn_flood,1,"))
    );
}
