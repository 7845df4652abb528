//! `phantomctl thresholds [--low ..]`: show, or change some of, the decision thresholds.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::json;
use tonic::transport::Channel;

use crate::render::Output;

/// The values to set; `None` keeps the running one.
pub(crate) struct Changes {
    pub(crate) low: Option<f64>,
    pub(crate) medium_confidence: Option<f64>,
    pub(crate) medium: Option<f64>,
    pub(crate) high_confidence: Option<f64>,
    pub(crate) high: Option<f64>,
}

pub(crate) async fn run(c: &mut AgentClient<Channel>, out: &Output, ch: Changes) -> Result<()> {
    let Changes {
        low,
        medium_confidence,
        medium,
        high_confidence,
        high,
    } = ch;
    let mut t = c
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    let set = [low, medium_confidence, medium, high_confidence, high]
        .iter()
        .any(|v| v.is_some());
    if set {
        t.low = low.unwrap_or(t.low);
        t.medium_confidence = medium_confidence.unwrap_or(t.medium_confidence);
        t.medium = medium.unwrap_or(t.medium);
        t.high_confidence = high_confidence.unwrap_or(t.high_confidence);
        t.high = high.unwrap_or(t.high);
        t = c.set_thresholds(t).await?.into_inner();
    }
    out.emit(
        json!({"low": t.low, "medium_confidence": t.medium_confidence, "medium": t.medium,
           "high_confidence": t.high_confidence, "high": t.high}),
        || {
            println!(
                "low {} medium_confidence {} medium {} high_confidence {} high {}",
                t.low, t.medium_confidence, t.medium, t.high_confidence, t.high
            )
        },
    );
    Ok(())
}
