//! Analyze, the model, thresholds, mode and sampling over gRPC.
use tonic::transport::Channel;

use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use phantomnet_tests::addr;

#[allow(unused_imports)]
use super::*;

/// Analyze: a feature vector and a sample; nothing is enforced.
pub async fn analyze(c: &mut AgentClient<Channel>) {
    let a0 = addr::atk_src4(0);
    let before = all_rules(c).await;
    let a = c
        .analyze(pb::AnalyzeRequest {
            input: Some(pb::analyze_request::Input::Features(pb::FeatureVector {
                values: vec![
                    60.0, 1.0, 1.0, 1.0, 5.0, 5.0, 0.2, 0.01, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 64.0,
                ],
            })),
            source: a0.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(a.rule.starts_with("rule "), "{}", a.rule);
    // The reply has the shipped (v7) model's width; a 15-value request
    // leaves the features beyond v1 at 0.
    assert_eq!(a.features.len(), 29);
    assert!(
        a.features[15..].iter().all(|&v| v == 0.0),
        "{:?}",
        a.features
    );
    let sqli = c
        .analyze(pb::AnalyzeRequest {
            input: Some(pb::analyze_request::Input::Sample(pb::Sample {
                src: a0.clone(),
                dst: addr::SRV4.into(),
                src_port: 40000,
                dst_port: 80,
                protocol: 6,
                tcp_flags: 0x18,
                ttl: 64,
                packet_length: 120,
                payload: b"GET /?id=1' UNION SELECT password FROM users-- HTTP/1.1".to_vec(),
            })),
            source: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sqli.signatures.is_empty(), "{sqli:?}");
    assert!(sqli.threat > 0.0 && !sqli.explanation.is_empty());
    assert_eq!(all_rules(c).await, before, "Analyze enforces nothing");
}

/// Model: info, and a bad file never replaces the running model.
pub async fn model(c: &mut AgentClient<Channel>) {
    let m = c
        .get_model(pb::GetModelRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((m.schema_version, m.feature_names.len()), (7, 29));
    let bad = std::env::temp_dir().join("phantomnet-not-a-model.pnm");
    fs::write(&bad, b"definitely not a model").unwrap();
    let (code_, msg) = code(
        c.load_model(pb::LoadModelRequest {
            path: bad.display().to_string(),
        })
        .await,
    );
    assert_eq!(code_, Code::InvalidArgument, "{msg}");
    assert!(
        msg.starts_with("path: ") && msg.contains("outside the model directory"),
        "{msg}"
    );
    let (code_, _) = code(
        c.load_model(pb::LoadModelRequest {
            path: "/nonexistent/model.pnm".into(),
        })
        .await,
    );
    assert!(matches!(code_, Code::InvalidArgument | Code::NotFound));
    let _ = fs::remove_file(&bad);
    assert_eq!(
        c.get_model(pb::GetModelRequest {})
            .await
            .unwrap()
            .into_inner()
            .version,
        m.version
    );
    let reloaded = c
        .load_model(pb::LoadModelRequest {
            path: models_dir().display().to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reloaded.training_data_sha256, m.training_data_sha256);
}

/// Thresholds, mode, sampling.
pub async fn settings(c: &mut AgentClient<Channel>) {
    // Thresholds, mode, sampling.
    let t0 = c
        .get_thresholds(pb::GetThresholdsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            t0.low,
            t0.medium_confidence,
            t0.medium,
            t0.high_confidence,
            t0.high
        ),
        (0.3, 0.6, 0.5, 0.8, 0.8)
    );
    let t1 = c
        .set_thresholds(pb::Thresholds { high: 0.9, ..t0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t1.high, 0.9);
    c.set_mode(pb::SetModeRequest {
        mode: pb::Mode::DryRun as i32,
    })
    .await
    .unwrap();
    c.set_sampling(pb::SetSamplingRequest { every: 4 })
        .await
        .unwrap();
    let s = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((s.mode, s.sample_every), (pb::Mode::DryRun as i32, 4));
    c.set_sampling(pb::SetSamplingRequest { every: 0 })
        .await
        .unwrap();
}
