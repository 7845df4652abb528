//! Rules over gRPC: status, block, throttle, allow, deceive, ListRules.
use tonic::transport::Channel;

use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use phantomnet_tests::{TestLab, addr};

#[allow(unused_imports)]
use super::*;

/// Status: version, interface, model, mode, counters.
pub async fn status(c: &mut AgentClient<Channel>) {
    let s = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert!(!s.version.is_empty());
    assert_eq!(s.interfaces.len(), 1);
    assert_eq!(
        (
            s.interfaces[0].name.as_str(),
            s.interfaces[0].xdp_mode.as_str()
        ),
        ("out0", "native")
    );
    assert!(s.model_version.contains("model-v"), "{}", s.model_version);
    assert_eq!(s.mode, pb::Mode::Enforce as i32);
    assert_eq!(s.counters.len(), phantomnet_common::Outcome::COUNT as usize);
}

/// Block: dropped in the data plane, visible with bpftool.
pub async fn block(t: &TestLab, c: &mut AgentClient<Channel>) {
    let a0 = addr::atk_src4(0);
    let r = c
        .block(pb::BlockRequest {
            cidr: a0.clone(),
            ttl_seconds: 600,
            reason: "api test".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(
        (r.action, r.cidr.as_str()),
        (pb::Action::Block as i32, format!("{a0}/32").as_str())
    );
    assert!(r.expires_in_seconds > 590 && r.expires_in_seconds <= 600);
    assert_eq!(deliver(t, &a0), 0, "blocked over gRPC");
    // A host entry: the exact-match hash.
    let dump = Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(t.pins.map("PN_BLOCK_H4"))
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("\"prefix_len\": 32") && dump.contains("\"reason\": 4"),
        "{dump}"
    );
    c.unblock(pb::PrefixRequest { cidr: a0.clone() })
        .await
        .unwrap();
    assert_eq!(deliver(t, &a0), 10, "unblocked");
}

/// Throttle, allow, deceive; ListRules with a filter and pages.
pub async fn rules(t: &TestLab, c: &mut AgentClient<Channel>) {
    let (a1, a2) = (addr::atk_src4(1), addr::atk_src4(2));
    // Throttle, allow, deceive; ListRules with a filter and pages.
    c.throttle(pb::ThrottleRequest {
        cidr: a1.clone(),
        rate_pps: 5,
        burst: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    c.allow(pb::PrefixRequest {
        cidr: addr::CLI4.into(),
    })
    .await
    .unwrap();
    let (code_, msg) = code(
        c.block(pb::BlockRequest {
            cidr: addr::CLI4.into(),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(code_, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("allowlisted"), "{msg}");
    c.deceive(pb::DeceiveRequest {
        cidr: a2.clone(),
        ttl_seconds: 120,
        ..Default::default()
    })
    .await
    .unwrap();
    let ssh: SocketAddr = format!("{}:22", addr::SRV4).parse().unwrap();
    assert_eq!(who_answers(t, Role::Atk, &a2, ssh), "honeypot");
    let throttles = c
        .list_rules(pb::ListRulesRequest {
            action: pb::Action::Throttle as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(throttles.rules.len(), 1);
    assert_eq!(
        (throttles.rules[0].rate_pps, throttles.rules[0].burst),
        (5, 1)
    );
    let page1 = c
        .list_rules(pb::ListRulesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.rules.len(), 2);
    assert!(!page1.next_page_token.is_empty());
    let page2 = c
        .list_rules(pb::ListRulesRequest {
            page_size: 2,
            page_token: page1.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.rules.len(), 1, "allow + throttle + deceive = 3 rules");
    assert!(page2.next_page_token.is_empty());
    c.undeceive(pb::PrefixRequest { cidr: a2.clone() })
        .await
        .unwrap();
    assert_eq!(who_answers(t, Role::Atk, &a2, ssh), "server");
    c.unthrottle(pb::PrefixRequest { cidr: a1.clone() })
        .await
        .unwrap();
    c.disallow(pb::PrefixRequest {
        cidr: addr::CLI4.into(),
    })
    .await
    .unwrap();
    assert!(all_rules(c).await.is_empty());
}
