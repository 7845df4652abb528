//! `phantomctl mode` and `phantomctl sampling`: the data plane's run-time switches.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::json;
use tonic::transport::Channel;

use crate::{cli::ModeArg, render::Output};

pub(crate) async fn set_mode(
    c: &mut AgentClient<Channel>,
    out: &Output,
    mode: ModeArg,
) -> Result<()> {
    let (m, name) = match mode {
        ModeArg::Enforce => (pb::Mode::Enforce, "enforce"),
        ModeArg::DryRun => (pb::Mode::DryRun, "dry-run"),
    };
    c.set_mode(pb::SetModeRequest { mode: m as i32 }).await?;
    out.emit(json!({"mode": name}), || println!("mode: {name}"));
    Ok(())
}

pub(crate) async fn set_sampling(
    c: &mut AgentClient<Channel>,
    out: &Output,
    every: u32,
) -> Result<()> {
    let r = c
        .set_sampling(pb::SetSamplingRequest { every })
        .await?
        .into_inner();
    out.emit(json!({"every": r.every}), || {
        println!("sampling: 1 in {}", r.every)
    });
    Ok(())
}
