//! `phantomctl status`: version, interfaces, mode, model, counters.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::render::Output;

pub(crate) async fn run(c: &mut AgentClient<Channel>, out: &Output) -> Result<()> {
    let s = c.status(pb::StatusRequest {}).await?.into_inner();
    let counters: serde_json::Map<String, Value> = s
        .counters
        .iter()
        .map(|o| {
            (
                o.outcome.clone(),
                json!({"packets": o.packets, "bytes": o.bytes}),
            )
        })
        .collect();
    let mode = if s.mode == pb::Mode::DryRun as i32 {
        "dry-run"
    } else {
        "enforce"
    };
    let ifaces: Vec<Value> = s
        .interfaces
        .iter()
        .map(|i| json!({"name": i.name, "ifindex": i.ifindex, "xdp_mode": i.xdp_mode}))
        .collect();
    out.emit(
        json!({"version": s.version, "interfaces": ifaces, "uptime_seconds": s.uptime_seconds,
               "counters": counters, "model_version": s.model_version, "mode": mode,
               "sample_every": s.sample_every, "samples_read": s.samples_read, "decisions": s.decisions}),
        || {
            println!(
                "PhantomNet agent {} — up {}s, mode {mode}",
                s.version, s.uptime_seconds
            );
            for i in &s.interfaces {
                println!(
                    "  interface {} (ifindex {}, {} XDP)",
                    i.name, i.ifindex, i.xdp_mode
                );
            }
            println!(
                "  model: {}",
                if s.model_version.is_empty() {
                    "none"
                } else {
                    &s.model_version
                }
            );
            println!(
                "  sampling 1 in {}, {} samples read, {} decisions",
                s.sample_every, s.samples_read, s.decisions
            );
            for o in &s.counters {
                println!(
                    "  {:<17} {:>12} packets {:>14} bytes",
                    o.outcome, o.packets, o.bytes
                );
            }
        },
    );
    Ok(())
}
