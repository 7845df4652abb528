//! Invalid requests: each names its field, and none changes anything.
#[allow(unused_imports)]
use super::*;

#[test]
fn invalid_requests_name_the_field_and_change_nothing() {
    if !root_or_skip("invalid_requests_name_the_field_and_change_nothing") {
        return;
    }
    let t = TestLab::up("apibad");
    let cfg = write_config(&t, "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    rt().block_on(async {
        let mut c = client(&t).await;
        c.block(pb::BlockRequest {
            cidr: "192.0.2.0/24".into(),
            ttl_seconds: 600,
            reason: "keep".into(),
        })
        .await
        .unwrap();
        let rules = all_rules(&mut c).await;
        let thresholds = c
            .get_thresholds(pb::GetThresholdsRequest {})
            .await
            .unwrap()
            .into_inner();
        let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();

        let long = "x".repeat(40);
        let cases: Vec<(&str, Result<(), tonic::Status>)> = vec![
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.0/33".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.7/24".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "cidr",
                c.throttle(pb::ThrottleRequest {
                    cidr: "not-an-ip".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "ttl_seconds",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.1".into(),
                    ttl_seconds: u64::MAX,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "reason",
                c.block(pb::BlockRequest {
                    cidr: "192.0.2.1".into(),
                    reason: long.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "rate_pps",
                c.throttle(pb::ThrottleRequest {
                    cidr: "192.0.2.1".into(),
                    rate_pps: 2_000_000_000,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "action",
                c.list_rules(pb::ListRulesRequest {
                    action: 42,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            // Valid Action values that name no rule kind: LOG puts none in
            // force, UNBLOCK is an event's, not a rule's.
            (
                "action",
                c.list_rules(pb::ListRulesRequest {
                    action: pb::Action::Log as i32,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "action",
                c.list_rules(pb::ListRulesRequest {
                    action: pb::Action::Unblock as i32,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "page_size",
                c.list_rules(pb::ListRulesRequest {
                    page_size: 5000,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "page_token",
                c.list_rules(pb::ListRulesRequest {
                    page_token: "abc".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "source_prefix",
                c.list_events(pb::ListEventsRequest {
                    source_prefix: "x".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "verdict",
                c.list_events(pb::ListEventsRequest {
                    verdict: 9,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "since_unix_ns",
                c.list_events(pb::ListEventsRequest {
                    since_unix_ns: 10,
                    until_unix_ns: 5,
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "input",
                c.analyze(pb::AnalyzeRequest {
                    input: None,
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "features",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                        values: vec![1.0; 14],
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "features",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                        values: {
                            let mut v = vec![1.0; 15];
                            v[3] = f64::NAN;
                            v
                        },
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "sample.src",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                        src: "x".into(),
                        dst: addr::SRV4.into(),
                        ..Default::default()
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "sample.dst_port",
                c.analyze(pb::AnalyzeRequest {
                    input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                        src: addr::CLI4.into(),
                        dst: addr::SRV4.into(),
                        dst_port: 70000,
                        ..Default::default()
                    })),
                    source: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "path",
                c.load_model(pb::LoadModelRequest {
                    path: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "high",
                c.set_thresholds(pb::Thresholds {
                    high: 1.5,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "medium",
                c.set_thresholds(pb::Thresholds {
                    medium: 0.9,
                    high: 0.8,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "medium_confidence",
                c.set_thresholds(pb::Thresholds {
                    medium_confidence: 0.95,
                    high_confidence: 0.8,
                    ..thresholds
                })
                .await
                .map(drop),
            ),
            (
                "mode",
                c.set_mode(pb::SetModeRequest { mode: 0 }).await.map(drop),
            ),
        ];
        for (field, r) in cases {
            let (code_, msg) = code(r);
            assert_eq!(code_, Code::InvalidArgument, "{field}: {msg}");
            assert!(
                msg.starts_with(&format!("{field}: ")),
                "expected the message to name {field}: {msg}"
            );
        }
        // Not-found is its own code, and changes nothing either.
        let (code_, _) = code(
            c.unblock(pb::PrefixRequest {
                cidr: "198.51.100.0/24".into(),
            })
            .await,
        );
        assert_eq!(code_, Code::NotFound);
        let (code_, _) = code(
            c.undeceive(pb::PrefixRequest {
                cidr: "198.51.100.9".into(),
            })
            .await,
        );
        assert_eq!(code_, Code::NotFound);

        assert_eq!(all_rules(&mut c).await, rules, "no rule changed");
        assert_eq!(
            c.get_thresholds(pb::GetThresholdsRequest {})
                .await
                .unwrap()
                .into_inner(),
            thresholds
        );
        let after = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(
            (after.mode, after.sample_every),
            (status.mode, status.sample_every)
        );
    });
}
