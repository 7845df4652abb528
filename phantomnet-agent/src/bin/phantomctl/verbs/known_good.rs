//! `phantomctl known-good add | remove | list`: the sources signature rules
//! with `--exempt-known-good` let through.
use anyhow::Result;
use phantomnet_agent::api::{
    convert,
    pb::{self, agent_client::AgentClient},
};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{
    cli::KnownGoodCmd,
    render::{Output, known_good_json, print_known_good},
};

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    cmd: KnownGoodCmd,
) -> Result<()> {
    match cmd {
        KnownGoodCmd::Add { address } => {
            let r = c
                .add_known_good(pb::KnownGoodRequest { address })
                .await?
                .into_inner();
            out.emit(json!({"known_good": r.address}), || {
                println!("known-good {}", r.address)
            });
        }
        KnownGoodCmd::Remove { address } => {
            let r = c
                .remove_known_good(pb::KnownGoodRequest { address })
                .await?
                .into_inner();
            out.emit(json!({"removed": r.address}), || {
                println!("no longer known-good: {}", r.address)
            });
        }
        KnownGoodCmd::List => {
            let mut sources = Vec::new();
            let mut token = String::new();
            loop {
                let r = c
                    .list_known_good(pb::ListKnownGoodRequest {
                        page_size: convert::MAX_PAGE,
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                sources.extend(r.sources);
                if r.next_page_token.is_empty() {
                    break;
                }
                token = r.next_page_token;
            }
            out.emit(
                Value::Array(sources.iter().map(known_good_json).collect()),
                || {
                    for s in &sources {
                        print_known_good(s);
                    }
                },
            );
        }
    }
    Ok(())
}
