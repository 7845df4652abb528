//! `phantomctl model [--load PATH]`: the running model, or swap one in.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::render::Output;

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    load: Option<&str>,
) -> Result<()> {
    let m = match load {
        Some(path) => {
            c.load_model(pb::LoadModelRequest {
                path: path.to_string(),
            })
            .await?
        }
        None => c.get_model(pb::GetModelRequest {}).await?,
    }
    .into_inner();
    let metrics: serde_json::Map<String, Value> = m
        .metrics
        .iter()
        .map(|x| (x.name.clone(), json!(x.value)))
        .collect();
    out.emit(
        json!({"version": m.version, "schema_version": m.schema_version, "feature_names": m.feature_names,
               "created_at": m.created_at, "training_data_sha256": m.training_data_sha256,
               "metrics": metrics, "path": m.path}),
        || {
            println!(
                "model {} (schema v{}, {} features), created {}",
                m.version,
                m.schema_version,
                m.feature_names.len(),
                m.created_at
            );
            println!("  path {}", m.path);
            for x in m
                .metrics
                .iter()
                .filter(|x| x.name.contains("f1") || x.name.contains("auc"))
            {
                println!("  {} = {:.4}", x.name, x.value);
            }
        },
    );
    Ok(())
}
