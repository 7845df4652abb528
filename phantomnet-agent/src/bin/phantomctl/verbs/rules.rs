//! `phantomctl rules [--action KIND]`: every rule in force (all pages).
use anyhow::Result;
use phantomnet_agent::api::{
    convert,
    pb::{self, agent_client::AgentClient},
};
use phantomnet_common::RuleKind;
use serde_json::Value;
use tonic::transport::Channel;

use crate::render::{Output, print_rule, rule_json};

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    kind: Option<RuleKind>,
) -> Result<()> {
    let mut rules = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .list_rules(pb::ListRulesRequest {
                action: kind.map_or(pb::Action::Unspecified, convert::pb_rule_kind) as i32,
                page_size: convert::MAX_PAGE,
                page_token: token,
            })
            .await?
            .into_inner();
        rules.extend(r.rules);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    out.emit(Value::Array(rules.iter().map(rule_json).collect()), || {
        for r in &rules {
            print_rule(r);
        }
    });
    Ok(())
}
