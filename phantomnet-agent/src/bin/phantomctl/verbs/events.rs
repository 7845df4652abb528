//! `phantomctl events`: journaled events, newest first, or a live stream.
use anyhow::Result;
use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use serde_json::Value;
use tonic::transport::Channel;

use phantomnet_agent::api::convert;
use phantomnet_common::EventAction;

use crate::render::{Output, event_json, print_event};

pub(crate) async fn run(
    c: &mut AgentClient<Channel>,
    out: &Output,
    source: Option<&str>,
    a: Option<EventAction>,
    limit: u32,
    follow: bool,
) -> Result<()> {
    let source = source.unwrap_or_default().to_string();
    let act = a.map_or(pb::Action::Unspecified, convert::pb_event_action) as i32;
    if follow {
        let mut stream = c
            .watch_events(pb::WatchEventsRequest {
                source_prefix: source,
                action: act,
            })
            .await?
            .into_inner();
        while let Some(e) = stream.message().await? {
            out.emit(event_json(&e), || print_event(&e));
        }
    } else {
        let r = c
            .list_events(pb::ListEventsRequest {
                source_prefix: source,
                action: act,
                page_size: limit,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.emit(
            Value::Array(r.events.iter().map(event_json).collect()),
            || {
                for e in &r.events {
                    print_event(e);
                }
            },
        );
    }
    Ok(())
}
