//! The detector: analysing one input, the model, the thresholds.
use std::path::PathBuf;

use tonic::{Request, Response, Status};

use super::AgentService;
use crate::{
    api::{
        convert::{self, invalid},
        pb,
    },
    detect,
    features::FeatureVector,
};

pub(super) async fn analyze(
    svc: &AgentService,
    req: Request<pb::AnalyzeRequest>,
) -> Result<Response<pb::AnalyzeReply>, Status> {
    let r = req.into_inner();
    let source = if r.source.is_empty() {
        None
    } else {
        Some(convert::ip("source", &r.source)?)
    };
    let (features, payload, source) = match r.input {
        None => return Err(invalid("input", "one of features or sample is required")),
        Some(pb::analyze_request::Input::Features(f)) => {
            let fv = FeatureVector::from_slice(&f.values).map_err(|e| invalid("features", e))?;
            (fv, Vec::new(), source)
        }
        Some(pb::analyze_request::Input::Sample(s)) => {
            let sample = convert::sample(&s)?;
            let fv = detect::packet_features(&sample).map_err(|e| invalid("sample", e))?;
            let src = source.or_else(|| s.src.parse().ok());
            (fv, s.payload, src)
        }
    };
    // The reply's features are those the active model reads: its schema's
    // width (a v1 model's 15, a v2 model's 22, a v3 model's 23), not the zeros a 15-value
    // request leaves in the rest.
    let (a, width) = svc
        .blocking(move |c| {
            let a = c.analyze(source, features, &payload)?;
            Ok((a, c.model_info()?.feature_names.len()))
        })
        .await?;
    Ok(Response::new(pb::AnalyzeReply {
        action: convert::pb_action(a.action) as i32,
        rule: a.rule.to_string(),
        prediction: u32::from(a.scores.prediction),
        confidence: a.scores.confidence,
        anomaly: a.scores.anomaly,
        threat: a.threat.score,
        verdict: convert::pb_verdict(a.threat.verdict) as i32,
        signatures: a
            .threat
            .signatures
            .iter()
            .map(|s| format!("{s:?}"))
            .collect(),
        feed_label: a
            .threat
            .feed_label
            .as_deref()
            .unwrap_or_default()
            .to_string(),
        features: a.features.as_array()[..width.min(a.features.as_array().len())].to_vec(),
        explanation: format!(
            "{} by {}: prediction {}, confidence {:.3}, anomaly {:.3}, threat {:.3} ({})",
            a.action,
            a.rule,
            a.scores.prediction,
            a.scores.confidence,
            a.scores.anomaly,
            a.threat.score,
            a.threat.verdict
        ),
    }))
}

pub(super) async fn get_model(
    svc: &AgentService,
    _: Request<pb::GetModelRequest>,
) -> Result<Response<pb::ModelInfo>, Status> {
    let m = svc.blocking(|c| c.model_info()).await?;
    Ok(Response::new(convert::model_info(m)))
}

pub(super) async fn load_model(
    svc: &AgentService,
    req: Request<pb::LoadModelRequest>,
) -> Result<Response<pb::ModelInfo>, Status> {
    let path = req.into_inner().path;
    if path.is_empty() {
        return Err(invalid("path", "required"));
    }
    let path = PathBuf::from(path);
    let m = svc.blocking(move |c| c.load_model(&path)).await?;
    Ok(Response::new(convert::model_info(m)))
}

pub(super) async fn get_thresholds(
    svc: &AgentService,
    _: Request<pb::GetThresholdsRequest>,
) -> Result<Response<pb::Thresholds>, Status> {
    let t = svc.blocking(|c| c.thresholds()).await?;
    Ok(Response::new(convert::pb_thresholds(&t)))
}

pub(super) async fn set_thresholds(
    svc: &AgentService,
    req: Request<pb::Thresholds>,
) -> Result<Response<pb::Thresholds>, Status> {
    let t = convert::thresholds(&req.into_inner())?;
    let t = svc.blocking(move |c| c.set_thresholds(t)).await?;
    Ok(Response::new(convert::pb_thresholds(&t)))
}
