use super::*;
use crate::correlate::SignatureSet;
use crate::features::index;
use crate::models::artifact_tests::small_model;
use phantomnet_common::IPPROTO_TCP;

fn sample(ts: u64, src_last: u8, payload: &[u8]) -> PacketSample {
    let mut p = [0u8; 64];
    p[..payload.len()].copy_from_slice(payload);
    PacketSample {
        timestamp_ns: ts,
        ifindex: 1,
        packet_len: 60 + payload.len() as u32,
        src_addr: [192, 0, 2, src_last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        src_port: 50000,
        dst_port: 80,
        payload_len: payload.len() as u16,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: 0x18,
        ttl: 64,
        payload_valid: payload.len() as u8,
        payload: p,
        ..PacketSample::ZERO
    }
}

#[test]
fn process_runs_every_stage_and_explains_itself() {
    let model = Arc::new(small_model(31));
    let feed = ThreatFeed::parse("192.0.2.9 botnet-c2\n").unwrap();
    let correlator = Correlator::new(SignatureSet::builtin(), Arc::new(feed));
    let mut d = Detector::new(DetectorConfig::default(), model.clone(), correlator).unwrap();
    let mut last = None;
    for i in 0..20u64 {
        last = Some(
            d.process(&sample(i * 10_000_000, 9, b"GET /?q=1 UNION SELECT pw"))
                .unwrap(),
        );
    }
    let dec = last.unwrap();
    assert_eq!(dec.source.to_string(), "192.0.2.9");
    // Features came from the flow state: 20 samples over 0.19 s.
    assert!(dec.features.get(crate::features::index::BURST_RATE_10S) > 1.9);
    // The scores are the model's on these very features.
    assert_eq!(dec.scores, model.score(&dec.features));
    // Correlator: listed in the feed + SQL injection.
    assert_eq!(dec.threat.feed_label.as_deref(), Some("botnet-c2"));
    assert!(
        dec.threat
            .signatures
            .contains(crate::correlate::SignatureCategory::SqlInjection)
    );
    let expected_threat = 0.2 * dec.scores.anomaly + 0.3 + 0.5;
    assert!((dec.threat.score - expected_threat).abs() < 1e-12);
    // The tree's rule matches its inputs.
    let tree = DecisionTree::default();
    let (a, r) = tree.decide(
        dec.scores.prediction,
        dec.scores.confidence,
        dec.scores.anomaly,
        dec.threat.score,
    );
    assert_eq!((dec.action, dec.rule), (a, r));
    let text = dec.to_string();
    assert!(text.contains(&format!("rule {}", r.number())), "{text}");
    assert!(
        text.contains("sql_injection") && text.contains("botnet-c2"),
        "{text}"
    );
    assert_eq!(d.flows().len(), 1);
}

#[test]
fn a_source_is_rescored_while_young_at_growth_points_and_once_a_second() {
    // Young (a source seen only through priority samples has none): every
    // sample.
    assert!((0..=YOUNG_SOURCE_SAMPLES).all(|n| rescore_due(n, 2)));
    let growth: Vec<u64> = (YOUNG_SOURCE_SAMPLES + 1..=300u64)
        .filter(|&n| rescore_due(n, 2))
        .collect();
    assert_eq!(growth, [48, 72, 108, 162, 243]);
    // The first sample of a second, whatever the count.
    assert!(rescore_due(50, 1));
    assert!(!rescore_due(50, 7));
    assert!(rescore_due(1, 1));
}

#[test]
fn observe_scores_on_change_and_on_every_signature_hit() {
    let mut d = Detector::new(
        DetectorConfig {
            scoring: Scoring::OnChange,
            ..DetectorConfig::default()
        },
        Arc::new(small_model(1)),
        Correlator::new(SignatureSet::builtin(), Arc::new(ThreatFeed::empty())),
    )
    .unwrap();
    // 100 samples 1 ms apart from one source (all within one second):
    // every one while the source is young, then at its growth points only.
    let base = 5_000_000_000u64;
    let scored: Vec<usize> = (0..100)
        .filter(|&i| {
            d.observe(&sample(base + i as u64 * 1_000_000, 9, b""))
                .unwrap()
                .is_some()
        })
        .collect();
    let young = YOUNG_SOURCE_SAMPLES as usize;
    let expected: Vec<usize> = (0..young).chain([47, 71]).collect();
    assert_eq!(scored, expected);
    // A payload with a signature is scored whenever it comes.
    let hit = d
        .observe(&sample(base + 100_000_000, 9, b"GET /?id=1 union select 1"))
        .unwrap()
        .expect("scored");
    assert!(!hit.threat.signatures.is_empty());
    // Schema v3 counts it in the source's window: that sample and the
    // ones after it carry it, scored or not in between.
    assert_eq!(hit.features.get(index::SIGNATURE_HITS), 1.0);
    d.observe(&sample(base + 101_000_000, 9, b"id=1' or '1'='1"))
        .unwrap();
    let next = d
        .observe(&sample(base + 1_000_000_000, 9, b"GET / HTTP/1.1"))
        .unwrap()
        .expect("first sample of a second");
    assert_eq!(next.features.get(index::SIGNATURE_HITS), 2.0);
    assert_eq!(
        packet_features(&sample(0, 9, b"../../etc/passwd"))
            .unwrap()
            .get(index::SIGNATURE_HITS),
        1.0,
        "Analyze of one sample counts its own match"
    );
    // The first sample in the second after is scored.
    assert!(
        d.observe(&sample(base + 2_000_000_000, 9, b""))
            .unwrap()
            .is_some()
    );
}

#[test]
fn priority_samples_feed_distinct_counts_and_are_scored_on_a_signature() {
    let prio = |ts: u64, port: u16, payload: &[u8]| PacketSample {
        flags: phantomnet_common::sample_flags::PRIORITY,
        tcp_flags: phantomnet_common::TCP_SYN,
        dst_port: port,
        ..sample(ts, 7, payload)
    };
    for scoring in [Scoring::EverySample, Scoring::OnChange] {
        let mut d = Detector::new(
            DetectorConfig {
                scoring,
                flow: FlowConfig {
                    sample_every: 16,
                    ..FlowConfig::default()
                },
                ..DetectorConfig::default()
            },
            Arc::new(small_model(3)),
            Correlator::builtin(),
        )
        .unwrap();
        // A slow scan seen only through priority samples: no probe is
        // scored on its own, every one counts toward distinct ports.
        for i in 0..40u64 {
            let dec = d
                .observe(&prio(9_000_000_000 + i * 50_000_000, 1000 + i as u16, b""))
                .unwrap();
            assert!(dec.is_none(), "{scoring}: probe {i} scored");
        }
        assert_eq!(d.flows().len(), 1);
        // A priority sample whose payload matches a signature is scored,
        // on finite features: rates of 0 (no uniform sample yet) and
        // the probes' distinct ports.
        let hit = d
            .observe(&prio(11_000_000_000, 2000, b"GET /?id=1 union select 1"))
            .unwrap()
            .expect("a signature hit is scored");
        assert!(hit.features.as_array().iter().all(|v| v.is_finite()));
        assert_eq!(hit.features.get(crate::features::index::EVENT_RATE_1M), 0.0);
        assert!(hit.features.get(crate::features::index::UNIQUE_DST_PORTS) > 35.0);
        assert!(!hit.threat.signatures.is_empty());
    }
}

#[test]
fn a_model_trained_on_priority_samples_scores_every_one() {
    let mut model = small_model(3);
    model.meta.scores_priority = true;
    // Scoring on change (the default) as much as every sample: a source
    // seen only through priority samples has no uniform sample in its
    // window, which is young, not "no growth point".
    assert_eq!(DetectorConfig::default().scoring, Scoring::OnChange);
    let mut d = Detector::new(
        DetectorConfig {
            flow: FlowConfig {
                sample_every: 16,
                ..FlowConfig::default()
            },
            ..DetectorConfig::default()
        },
        Arc::new(model),
        Correlator::builtin(),
    )
    .unwrap();
    // A slow scan's probes, each a priority sample: each is scored,
    // and the distinct ports (an estimate) grow with them.
    let mut ports = Vec::new();
    for i in 0..20u64 {
        let probe = PacketSample {
            flags: phantomnet_common::sample_flags::PRIORITY,
            tcp_flags: phantomnet_common::TCP_SYN,
            dst_port: 1000 + i as u16,
            ..sample(9_000_000_000 + i * 400_000_000, 7, b"")
        };
        let dec = d.observe(&probe).unwrap().expect("scored");
        assert_eq!(dec.features.get(crate::features::index::EVENT_RATE_1M), 0.0);
        ports.push(dec.features.get(crate::features::index::UNIQUE_DST_PORTS));
    }
    assert!(ports.windows(2).all(|w| w[1] >= w[0]), "{ports:?}");
    assert!(ports[19] >= 18.0, "{ports:?}");
    // Swapping in a model trained on uniform rows stops it.
    d.set_model(Arc::new(small_model(3)));
    let probe = PacketSample {
        flags: phantomnet_common::sample_flags::PRIORITY,
        tcp_flags: phantomnet_common::TCP_SYN,
        dst_port: 3000,
        ..sample(18_000_000_000, 7, b"")
    };
    assert!(d.observe(&probe).unwrap().is_none());
}

#[test]
fn an_ipv6_source_is_decided_as_its_prefix() {
    let model = Arc::new(small_model(31));
    let mut d = Detector::new(DetectorConfig::default(), model, Correlator::builtin()).unwrap();
    let v6 = |ts: u64, addr: &str| PacketSample {
        family: 6,
        src_addr: addr.parse::<std::net::Ipv6Addr>().unwrap().octets(),
        ..sample(ts, 0, b"")
    };
    d.process(&v6(0, "2001:db8:bad::1")).unwrap();
    let dec = d.process(&v6(1_000_000, "2001:db8:bad::2:3")).unwrap();
    assert_eq!(dec.source.to_string(), "2001:db8:bad::/64");
    assert!(dec.to_string().starts_with("2001:db8:bad::/64 "), "{dec}");
    assert_eq!(d.flows().len(), 1);
    // Per address again with /128.
    d.set_ipv6_source_prefix(128);
    let dec = d.process(&v6(2_000_000, "2001:db8:bad::2:3")).unwrap();
    assert_eq!(dec.source.to_string(), "2001:db8:bad::2:3");
    let v4 = d.process(&sample(3_000_000, 9, b"")).unwrap();
    assert_eq!(v4.source.to_string(), "192.0.2.9");
}

#[test]
fn non_finite_thresholds_are_refused_at_construction() {
    let cfg = DetectorConfig {
        thresholds: Thresholds {
            high: f64::NAN,
            ..Thresholds::default()
        },
        ..DetectorConfig::default()
    };
    assert!(Detector::new(cfg, Arc::new(small_model(32)), Correlator::builtin()).is_err());
}

#[test]
fn analyze_matches_process_and_touches_no_flow_state() {
    let model = Arc::new(small_model(32));
    let mut d = Detector::new(
        DetectorConfig::default(),
        model.clone(),
        Correlator::builtin(),
    )
    .unwrap();
    let dec = d
        .process(&sample(1_000_000_000, 9, b"GET /?q=' OR 1=1--"))
        .unwrap();
    let flows_before = d.flows().len();
    let a = d.analyze(Some(dec.source.addr()), dec.features, b"GET /?q=' OR 1=1--");
    assert_eq!(d.flows().len(), flows_before);
    assert_eq!((a.action, a.rule), (dec.action, dec.rule));
    assert_eq!(a.scores, dec.scores);
    assert_eq!(a.threat.score, dec.threat.score);
}

#[test]
fn bad_thresholds_are_refused_and_the_old_ones_stay() {
    let mut d = Detector::new(
        DetectorConfig::default(),
        Arc::new(small_model(32)),
        Correlator::builtin(),
    )
    .unwrap();
    let bad = Thresholds {
        medium: 0.9,
        high: 0.8,
        ..Thresholds::default()
    };
    assert!(d.set_thresholds(bad).is_err());
    assert_eq!(d.thresholds(), Thresholds::default());
    let good = Thresholds {
        high: 0.95,
        ..Thresholds::default()
    };
    d.set_thresholds(good).unwrap();
    assert_eq!(d.thresholds(), good);
}

#[test]
fn a_refusal_is_never_scored_and_counts_against_the_source_it_refuses() {
    let model = Arc::new(small_model(31));
    let correlator = Correlator::new(SignatureSet::builtin(), Arc::new(ThreatFeed::empty()));
    let mut d = Detector::new(DetectorConfig::default(), model, correlator).unwrap();
    let first = d
        .observe(&sample(0, 9, b""))
        .unwrap()
        .expect("a young source is scored");
    assert_eq!(first.features.get(index::SERVER_REFUSALS), 0.0);
    // The server's resets of 192.0.2.9.
    let mut rst = sample(1_000, 9, b"");
    (rst.src_addr, rst.dst_addr) = (rst.dst_addr, rst.src_addr);
    rst.tcp_flags = phantomnet_common::TCP_RST;
    rst.flags = phantomnet_common::sample_flags::REPLY;
    for i in 0..3 {
        rst.timestamp_ns = 1_000 + i;
        assert!(d.observe(&rst).unwrap().is_none());
    }
    // The server (198.51.100.1) is no source; 192.0.2.9's next scoring
    // carries the three refusals.
    assert_eq!(d.flows().len(), 1);
    let next = d.observe(&sample(2_000_000, 9, b"")).unwrap().unwrap();
    assert_eq!(next.source.to_string(), "192.0.2.9");
    assert_eq!(next.features.get(index::SERVER_REFUSALS), 3.0);
    assert_eq!(
        d.process(&sample(3_000_000, 9, b""))
            .unwrap()
            .features
            .get(index::SERVER_REFUSALS),
        3.0
    );
}
