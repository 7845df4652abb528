//! The journal over gRPC: ListEvents filters and pages, WatchEvents.
use tonic::transport::Channel;

use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use phantomnet_tests::{TestLab, addr};

#[allow(unused_imports)]
use super::*;

/// The journal recorded every operator action; filters and pages work.
pub async fn journal(c: &mut AgentClient<Channel>) {
    let a0 = addr::atk_src4(0);
    let ev = c
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<i32> = ev
        .events
        .iter()
        .filter(|e| e.rule == "api")
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&(pb::Action::Block as i32))
            && actions.contains(&(pb::Action::Deceive as i32)),
        "{actions:?}"
    );
    let blocks = c
        .list_events(pb::ListEventsRequest {
            action: pb::Action::Block as i32,
            source_prefix: a0.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(blocks.events.len(), 1);
    assert_eq!(blocks.events[0].source, a0);
    let first = c
        .list_events(pb::ListEventsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let second = c
        .list_events(pb::ListEventsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        second.events[0].id < first.events[0].id,
        "newest first, no repeats"
    );
}

/// WatchEvents sees a new decision as it happens.
pub async fn watch(t: &TestLab, c: &mut AgentClient<Channel>) {
    // WatchEvents sees a new decision as it happens.
    let mut watch = c
        .watch_events(pb::WatchEventsRequest {
            source_prefix: "192.0.2.0/24".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut c2 = client(t).await;
    c2.block(pb::BlockRequest {
        cidr: addr::atk_src4(3),
        ttl_seconds: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.source.as_str(), e.action),
        (addr::atk_src4(3).as_str(), pb::Action::Block as i32)
    );
}
