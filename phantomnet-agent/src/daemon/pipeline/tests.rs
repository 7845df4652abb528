//! The pipeline's bookkeeping under a spoofed flood, with a real detector
//! (a small trained model) and the executor replaced by a closure.
use std::sync::{Arc, Mutex};

use phantomnet_common::{IPPROTO_TCP, TCP_SYN, maps};

use super::sieve::{ROUTINE_BURST, ROUTINE_PER_SEC, SUMMARY_RULE};
use super::*;
use crate::{
    correlate::{Correlator, SignatureSet, ThreatFeed},
    detect::{Detector, DetectorConfig},
    models::artifact_tests::small_model,
};

/// A SYN from a new source each time (`hping3 --flood --rand-source`).
fn spoofed(i: u32, ts_ns: u64) -> PacketSample {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&(0x0a00_0000 + i).to_be_bytes());
    PacketSample {
        timestamp_ns: ts_ns,
        ifindex: 1,
        packet_len: 60,
        src_addr: src,
        dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        src_port: 1024 + (i % 60_000) as u16,
        dst_port: 80,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_SYN,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

fn detector() -> Detector {
    let correlator = Correlator::new(SignatureSet::builtin(), Arc::new(ThreatFeed::empty()));
    Detector::new(
        DetectorConfig::default(),
        Arc::new(small_model(7)),
        correlator,
    )
    .unwrap()
}

/// The value of one rendered series.
fn series(m: &Metrics, name: &str) -> f64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn a_spoofed_flood_of_100k_sources_journals_within_the_budget() {
    let mut det = detector();
    let metrics = Metrics::new();
    let policy = EnforcePolicy::default();
    let mut st = PipelineState::default();
    let t0 = Instant::now();
    let ttl = Duration::from_secs(600);
    let (mut records, mut summaries) = (0u64, 0u64);
    // 100,000 sources, one sample each, over 20 s (5,000 a second).
    const N: u32 = 100_000;
    let step_us = 200;
    for i in 0..N {
        let offset = Duration::from_micros(u64::from(i) * step_us);
        let mut d = det.process(&spoofed(i, offset.as_nanos() as u64)).unwrap();
        // Half the sources are called attacks whatever the model says, so
        // both the awaiting-evidence and the LOG paths are exercised.
        if i % 2 == 0 {
            d.action = Action::Throttle;
        }
        let now = t0 + offset;
        let out = step(&mut st, &d, &policy, &metrics, now, |_, action, _| {
            Ok(match action {
                Action::Log => Applied::Logged,
                action => Applied::Enforced { action, ttl },
            })
        });
        assert!(
            out.announce.is_none(),
            "one sample is never enough evidence"
        );
        records += u64::from(out.record.is_some());
        if i % 1024 == 1023 {
            // The end of a batch.
            let s = st.sieve.summary(now, 0);
            assert!(s.as_ref().is_none_or(|e| e.rule == SUMMARY_RULE));
            summaries += u64::from(s.is_some());
        }
    }
    let span = Duration::from_micros(u64::from(N) * step_us).as_secs_f64();
    let budget = ROUTINE_BURST + ROUTINE_PER_SEC * span;
    assert!(records as f64 <= budget + 1.0, "{records} > {budget}");
    assert!(summaries <= 2, "{summaries}");
    // Without the budget every source would have had its record.
    let suppressed = series(
        &metrics,
        "phantomnet_journal_suppressed_total{record=\"routine\"}",
    );
    assert_eq!(records + suppressed as u64, u64::from(N));
    // Every per-source structure stayed at or under its cap.
    assert!(st.evidence.len() <= EVIDENCE_CAP);
    assert!(st.sieve.remembered() <= GATE_CAP);
    let cap = det.flows().config().max_sources;
    assert_eq!(det.flows().len(), cap.min(N as usize));
}

/// Log lines written while `f` runs.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(sub, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

/// A detector, fresh metrics and pipeline state, and a policy that
/// enforces on the first attack call: for tests that set the action
/// themselves.
fn enforce_at_once() -> (Detector, Metrics, EnforcePolicy, PipelineState, Instant) {
    let policy = EnforcePolicy {
        min_evidence: 1,
        ..EnforcePolicy::default()
    };
    (
        detector(),
        Metrics::new(),
        policy,
        PipelineState::default(),
        Instant::now(),
    )
}

#[test]
fn a_full_map_is_a_metric_and_one_log_line_per_interval() {
    let (mut det, metrics, policy, mut st, t0) = enforce_at_once();
    let mut records = 0;
    let text = logged(|| {
        // 10,000 sources over 25 s, each enforced at once into a full map.
        for i in 0..10_000u32 {
            let offset = Duration::from_micros(u64::from(i) * 2500);
            let mut d = det.process(&spoofed(i, offset.as_nanos() as u64)).unwrap();
            d.action = Action::Block;
            let out = step(&mut st, &d, &policy, &metrics, t0 + offset, |_, _, _| {
                Err(EnforceError::Dataplane(DataplaneError::MapFull {
                    map: maps::BLOCK_V4,
                    capacity: 65_536,
                }))
            });
            records += usize::from(out.record.is_some());
        }
    });
    assert_eq!(
        series(&metrics, "phantomnet_map_full_total{map=\"PN_BLOCK_V4\"}"),
        10_000.0
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("enforcement failed"))
        .collect();
    // At 0 s, 10 s and 20 s.
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains("failures=4000"), "{}", lines[1]);
    // Failures are routine records: within the routine budget.
    assert!(records as f64 <= ROUTINE_BURST + ROUTINE_PER_SEC * 25.0 + 1.0);
}

#[test]
fn a_deceive_that_falls_back_to_throttle_is_announced_as_the_throttle() {
    let (mut det, metrics, policy, mut st, t0) = enforce_at_once();
    let mut d = det.process(&spoofed(1, 0)).unwrap();
    d.action = Action::Deceive;
    let ttl = Duration::from_secs(300);
    let fallback = |_: Source, action: Action, _: &str| {
        assert_eq!(action, Action::Deceive);
        Ok(Applied::Fallback {
            wanted: Action::Deceive,
            enforced: Action::Throttle,
            ttl,
            why: "no IPv4 honeypot is configured".into(),
        })
    };
    let out = step(&mut st, &d, &policy, &metrics, t0, fallback);
    // What is in force is what CrowdSec's watcher and the metrics hear of.
    let e = out.announce.expect("a fallback is an enforcement");
    assert_eq!(
        (e.action, e.ttl, e.source),
        (Action::Throttle, ttl, d.source)
    );
    assert_eq!(
        series(
            &metrics,
            &format!(
                "phantomnet_enforcements_total{{action=\"THROTTLE\",rule=\"rule-{}\"}}",
                d.rule.number()
            )
        ),
        1.0
    );
    let r = out.record.expect("journaled");
    assert!(
        r.reason
            .contains("DECEIVE not applicable (no IPv4 honeypot is configured); enforced THROTTLE"),
        "{}",
        r.reason
    );
    // The executor then keeps the THROTTLE (Unchanged): nothing new.
    let out = step(&mut st, &d, &policy, &metrics, t0, |_, _, _| {
        Ok(Applied::Unchanged {
            in_force: Action::Throttle,
        })
    });
    assert!(out.announce.is_none());
}

#[test]
fn a_deferred_deceive_nft_refused_is_journaled_and_announced_as_its_throttle() {
    let metrics = Metrics::new();
    let source = Source::host("192.0.2.77".parse().unwrap());
    let ttl = Duration::from_secs(600);
    let refused = |fallback| crate::enforce::DeceiveRefused {
        source,
        reason: "rule 4".into(),
        why: "nft failed: Error: No such file or directory".into(),
        fallback,
    };
    let mut heard = Vec::new();
    let r = refused_record(
        &metrics,
        |e| heard.push(e),
        refused(Ok(Applied::Enforced {
            action: Action::Throttle,
            ttl,
        })),
    );
    assert_eq!(heard.len(), 1);
    assert_eq!(
        (
            heard[0].source,
            heard[0].action,
            heard[0].ttl,
            heard[0].rule
        ),
        (source, Action::Throttle, ttl, 4)
    );
    assert_eq!(
        series(
            &metrics,
            "phantomnet_enforcements_total{action=\"THROTTLE\",rule=\"rule-4\"}"
        ),
        1.0
    );
    assert_eq!(r.source, source.addr());
    assert_eq!(r.action, EventAction::Apply(Action::Throttle));
    assert_eq!(r.rule, "rule 4");
    assert_eq!(
        r.reason,
        "192.0.2.77 THROTTLE: DECEIVE refused by nftables (nft failed: Error: No such file \
         or directory); enforced THROTTLE for 600s instead"
    );

    // Something at least as strong was in force: recorded, nothing announced.
    let mut heard = Vec::new();
    let r = refused_record(
        &metrics,
        |e| heard.push(e),
        refused(Ok(Applied::Unchanged {
            in_force: Action::Block,
        })),
    );
    assert!(heard.is_empty());
    assert_eq!(r.action, EventAction::Apply(Action::Block));
    assert!(r.reason.ends_with("; BLOCK stays in force"), "{}", r.reason);
}
