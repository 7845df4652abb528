//! `phantomctl signature add | remove | list`: signature rules.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{
    cli::SignatureCmd,
    render::{Output, print_signature, print_signature_header, signature_json},
};

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    cmd: SignatureCmd,
) -> Result<()> {
    match cmd {
        SignatureCmd::Add {
            rule,
            ttl,
            rate,
            exempt_known_good,
        } => {
            let r = c
                .add_signature(pb::AddSignatureRequest {
                    rule,
                    ttl_seconds: ttl,
                    rate_pps: rate,
                    exempt_known_good,
                })
                .await?
                .into_inner()
                .rule
                .unwrap_or_default();
            out.emit(signature_json(&r), || {
                print_signature_header();
                print_signature(&r);
            });
        }
        SignatureCmd::Remove { id } => {
            let r = c
                .remove_signature(pb::RemoveSignatureRequest { id })
                .await?
                .into_inner();
            out.emit(json!({"removed": r.id}), || {
                println!("removed signature {}", r.id)
            });
        }
        SignatureCmd::List => {
            let rules = c
                .list_signatures(pb::ListSignaturesRequest {})
                .await?
                .into_inner()
                .rules;
            out.emit(
                Value::Array(rules.iter().map(signature_json).collect()),
                || {
                    print_signature_header();
                    for r in &rules {
                        print_signature(r);
                    }
                },
            );
        }
    }
    Ok(())
}
