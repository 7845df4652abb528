//! `phantomctl unblock | unthrottle | disallow | undeceive`: take a rule out.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use phantomnet_common::RuleKind;
use serde_json::json;
use tonic::transport::Channel;

use crate::render::Output;

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    kind: RuleKind,
    cidr: &str,
) -> Result<()> {
    let req = pb::PrefixRequest {
        cidr: cidr.to_string(),
    };
    let (verb, r) = match kind {
        RuleKind::Block => ("unblocked", c.unblock(req).await?),
        RuleKind::Throttle => ("unthrottled", c.unthrottle(req).await?),
        RuleKind::Allow => ("disallowed", c.disallow(req).await?),
        RuleKind::Deceive => ("undeceived", c.undeceive(req).await?),
    };
    let r = r.into_inner();
    out.emit(json!({"removed": r.cidr}), || println!("{verb} {}", r.cidr));
    Ok(())
}
