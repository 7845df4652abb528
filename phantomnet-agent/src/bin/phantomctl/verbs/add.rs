//! `phantomctl block | throttle | deceive | allow`: put a rule in force.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use tonic::transport::Channel;

use crate::render::{Output, print_rule, rule_json};

/// A rule to put in force, as the command line gave it.
pub(crate) enum Add {
    Block(pb::BlockRequest),
    Throttle(pb::ThrottleRequest),
    Deceive(pb::DeceiveRequest),
    Allow(pb::PrefixRequest),
}

pub(crate) async fn run(c: &mut AgentClient<Channel>, out: &Output, add: Add) -> Result<()> {
    let reply = match add {
        Add::Block(r) => c.block(r).await?,
        Add::Throttle(r) => c.throttle(r).await?,
        Add::Deceive(r) => c.deceive(r).await?,
        Add::Allow(r) => c.allow(r).await?,
    };
    let rule = reply.into_inner().rule.unwrap_or_default();
    out.emit(rule_json(&rule), || print_rule(&rule));
    Ok(())
}
