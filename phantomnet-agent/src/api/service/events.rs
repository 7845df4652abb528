//! The journal: past events and the live stream.
use tokio_stream::{StreamExt, wrappers::BroadcastStream};
use tonic::{Request, Response, Status};

use super::{AgentService, EventStream};
use crate::{
    api::{
        convert::{self, invalid},
        pb,
    },
    journal::EventQuery,
};

pub(super) async fn list_events(
    svc: &AgentService,
    req: Request<pb::ListEventsRequest>,
) -> Result<Response<pb::ListEventsReply>, Status> {
    let r = req.into_inner();
    let source = if r.source_prefix.is_empty() {
        None
    } else {
        let p = convert::prefix("source_prefix", &r.source_prefix)?;
        Some(ipnet::IpNet::new(p.addr(), p.prefix_len()).map_err(|e| invalid("source_prefix", e))?)
    };
    if r.until_unix_ns != 0 && r.since_unix_ns > r.until_unix_ns {
        return Err(invalid("since_unix_ns", "after until_unix_ns"));
    }
    let q = EventQuery {
        since: (r.since_unix_ns != 0).then_some(r.since_unix_ns),
        until: (r.until_unix_ns != 0).then_some(r.until_unix_ns),
        source,
        action: convert::action_filter(r.action)?,
        verdict: convert::verdict_filter(r.verdict)?.map(|v| convert::verdict_name(v).to_string()),
        page_size: convert::page_size(r.page_size)?,
        page_token: convert::page_token(&r.page_token)?,
    };
    let (events, next) = svc.blocking(move |c| c.events(&q)).await?;
    Ok(Response::new(pb::ListEventsReply {
        events: events.iter().map(convert::event).collect(),
        next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
    }))
}

pub(super) async fn watch_events(
    svc: &AgentService,
    req: Request<pb::WatchEventsRequest>,
) -> Result<Response<EventStream>, Status> {
    let r = req.into_inner();
    let source = if r.source_prefix.is_empty() {
        None
    } else {
        Some(convert::prefix("source_prefix", &r.source_prefix)?)
    };
    let action = convert::action_filter(r.action)?;
    let stream = BroadcastStream::new(svc.core.subscribe()).filter_map(move |item| {
        // A watcher too slow to keep up skips what it missed.
        let e = item.ok()?;
        if source.is_some_and(|p| !p.contains(e.source)) {
            return None;
        }
        if action.is_some_and(|a| a != e.action) {
            return None;
        }
        Some(Ok(convert::event(&e)))
    });
    Ok(Response::new(Box::pin(stream)))
}
