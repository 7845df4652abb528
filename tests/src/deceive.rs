//! What the DECEIVE tests share: the lab's honeypots, the agent's table
//! installed in a test's gateway, banners that say who answered.
use std::net::SocketAddr;

use phantomnet_agent::{
    dataplane::Prefix,
    decide::Action,
    enforce::{Applied, Deceiver, Honeypot},
};

use crate::{Banner, Role, TestLab, addr};

/// The lab's SSH honeypots, one per family (port 22 → the honeypot's 2222).
pub fn honeypots() -> Vec<Honeypot> {
    vec![
        Honeypot {
            port: 22,
            target: format!("{}:2222", addr::HP4).parse().unwrap(),
        },
        Honeypot {
            port: 22,
            target: format!("[{}]:2222", addr::HP6).parse().unwrap(),
        },
    ]
}

/// A prefix or address literal (`192.0.2.0/24`, `192.0.2.10`).
pub fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// The agent's DECEIVE table, installed in `t`'s gateway with [`honeypots`].
pub fn installed(t: &TestLab) -> Deceiver {
    let d = Deceiver::new(honeypots()).in_netns(t.netns(Role::Gw));
    d.install().expect("installing the DECEIVE table");
    d
}

/// SSH banners that say who answered: the protected server (`server`) and
/// the IPv4 honeypot (`honeypot`). Stopped when dropped.
pub fn ssh_banners(t: &TestLab) -> [Banner; 2] {
    [
        Banner::start(t, Role::Srv, addr::SRV4, 22, b"server"),
        Banner::start(t, Role::Hp, addr::HP4, 2222, b"honeypot"),
    ]
}

/// The protected server's SSH port.
pub fn ssh4() -> SocketAddr {
    format!("{}:22", addr::SRV4).parse().unwrap()
}

/// Asserts that `apply` newly enforced `action`.
#[track_caller]
pub fn assert_enforced(applied: &Applied, action: Action) {
    assert!(
        matches!(applied, Applied::Enforced { action: a, .. } if *a == action),
        "expected {action} enforced, got {applied:?}"
    );
}
