//! Signature rules and known-good sources over gRPC and phantomctl: a rule
//! drops matching traffic from any source and counts it (ListSignatures,
//! bpftool, /metrics), known-good sources pass an exempting rule, invalid
//! requests name their field and change nothing, 64 slots full is
//! RESOURCE_EXHAUSTED, and removal lets the traffic through again.
use tonic::transport::Channel;

use phantomnet_agent::api::pb::{self, agent_client::AgentClient};
use phantomnet_tests::{TestLab, addr};

#[allow(unused_imports)]
use super::*;

/// What `deliver` sends: UDP to the server's port 5000. (Not its 3-byte
/// payload: XDP reads a payload prefix as 8 bytes and finds none in a frame
/// that ends sooner, as these unpadded veth frames do.)
const RULE: &str = "udp dst 203.0.113.10/32 dport 5000";

async fn listed(c: &mut AgentClient<Channel>) -> Vec<pb::SignatureRule> {
    c.list_signatures(pb::ListSignaturesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules
}

async fn known_good(c: &mut AgentClient<Channel>) -> Vec<(String, u64)> {
    c.list_known_good(pb::ListKnownGoodRequest::default())
        .await
        .unwrap()
        .into_inner()
        .sources
        .into_iter()
        .map(|s| (s.address, s.exempted))
        .collect()
}

/// id, slot, rule, rate, exempt_known_good, matched, dropped, exempted.
type Fixed = (u32, u32, String, u32, bool, u64, u64, u64);

/// What a listing says that no clock changes.
fn fixed(rules: &[pb::SignatureRule]) -> Vec<Fixed> {
    rules
        .iter()
        .map(|r| {
            (
                r.id,
                r.slot,
                r.rule.clone(),
                r.rate_pps,
                r.exempt_known_good,
                r.matched,
                r.dropped,
                r.exempted,
            )
        })
        .collect()
}

fn ctl(t: &TestLab, args: &[&str]) -> std::process::Output {
    Command::new(phantomnet_tests::agent_bin().with_file_name("phantomctl"))
        .arg("--socket")
        .arg(t.api_socket())
        .args(args)
        .output()
        .unwrap()
}

fn add(rule: &str, ttl_seconds: u64, exempt_known_good: bool) -> pb::AddSignatureRequest {
    pb::AddSignatureRequest {
        rule: rule.into(),
        ttl_seconds,
        rate_pps: 0,
        exempt_known_good,
    }
}

/// A rule added over gRPC: in the map, dropping any source's matching
/// packets, counted; refreshed in place with a known-good exemption.
pub async fn rules(t: &TestLab, c: &mut AgentClient<Channel>) {
    assert!(listed(c).await.is_empty());
    let r = c
        .add_signature(add(RULE, 600, false))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!(
        (r.id, r.slot, r.rule.as_str(), r.rate_pps, r.reason.as_str()),
        (1, 0, RULE, 0, "api")
    );
    assert!(r.expires_in_seconds > 590 && r.expires_in_seconds <= 600);
    let dump = Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(t.pins.map("PN_SIG_RULES"))
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("\"dport_min\": 5000") && dump.contains("\"reason\": 4"),
        "{dump}"
    );

    // Any source: an attacker's and a client's packets alike.
    let atk = addr::atk_src4(3);
    assert_eq!(deliver(t, &atk), 0, "dropped by the signature rule");
    assert_eq!(deliver(t, addr::CLI4), 0, "whatever the source");
    let l = listed(c).await;
    assert_eq!(fixed(&l), [(1, 0, RULE.into(), 0, false, 20, 20, 0)]);

    // Known-good: the same match fields refresh the rule in place (same id,
    // counts kept), now exempting the vouched-for client.
    c.add_known_good(pb::KnownGoodRequest {
        address: addr::CLI4.into(),
    })
    .await
    .unwrap();
    let r = c
        .add_signature(add(RULE, 600, true))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!((r.id, r.exempt_known_good, r.matched), (1, true, 20));
    assert_eq!(deliver(t, addr::CLI4), 10, "known-good passes");
    assert_eq!(deliver(t, &atk), 0, "the attacker still does not");
    let l = listed(c).await;
    assert_eq!(fixed(&l), [(1, 0, RULE.into(), 0, true, 40, 30, 10)]);
    let good = known_good(c).await;
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].0, addr::CLI4);
    // Counted without an atomic in the kernel: approximate, never more.
    assert!((1..=10).contains(&good[0].1), "{good:?}");

    // phantomctl reads the same.
    let out = ctl(t, &["--json", "signature", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &v[0]["id"],
            &v[0]["rule"],
            &v[0]["dropped"],
            &v[0]["exempted"]
        ),
        (&1.into(), &RULE.into(), &30.into(), &10.into()),
        "{v}"
    );
    let out = ctl(t, &["signature", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("  ID SLOT"), "{table}");
    assert!(
        table.contains(RULE) && table.contains("known-good exempt"),
        "{table}"
    );
    let out = ctl(t, &["--json", "known-good", "list"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["address"], addr::CLI4, "{v}");

    // Metrics, after one counters publication.
    std::thread::sleep(Duration::from_millis(1200));
    let body = metrics_text(t);
    let labels = format!("{{id=\"1\",rule=\"{RULE}\"}}");
    for (name, want) in [
        ("phantomnet_signature_matched_total", 40.0),
        ("phantomnet_signature_dropped_total", 30.0),
        ("phantomnet_signature_exempted_total", 10.0),
    ] {
        assert_eq!(
            metric(&body, &format!("{name}{labels}")),
            Some(want),
            "{name}:\n{body}"
        );
    }
    assert_eq!(metric(&body, "phantomnet_signature_rules"), Some(1.0));
    let outcome = metric(
        &body,
        "phantomnet_xdp_packets_total{outcome=\"signature_dropped\",interface=\"out0\"}",
    );
    assert!(outcome.is_some_and(|n| n >= 30.0), "{outcome:?}:\n{body}");
}

/// Each bad field is INVALID_ARGUMENT naming it, an unknown id or address
/// NOT_FOUND; none changes a rule or a known-good source.
pub async fn invalid(t: &TestLab, c: &mut AgentClient<Channel>) {
    let rules = fixed(&listed(c).await);
    let good = known_good(c).await;
    let cases: Vec<(Code, &str, Result<(), tonic::Status>)> = vec![
        (
            Code::InvalidArgument,
            "rule: ",
            c.add_signature(add("", 0, false)).await.map(drop),
        ),
        (
            Code::InvalidArgument,
            "rule: ",
            c.add_signature(add("udp dst 203.0.113.10/33", 0, false))
                .await
                .map(drop),
        ),
        (
            Code::InvalidArgument,
            "rule: ",
            c.add_signature(add("udp dst 203.0.113.10/32 flags SYN/SYN", 0, false))
                .await
                .map(drop),
        ),
        (
            Code::InvalidArgument,
            "rule: ",
            c.add_signature(add("tcp dst 203.0.113.10/32 dport 90-80", 0, false))
                .await
                .map(drop),
        ),
        (
            Code::InvalidArgument,
            "ttl_seconds: ",
            c.add_signature(add("udp dst 203.0.113.10/32 dport 7", u64::MAX, false))
                .await
                .map(drop),
        ),
        (
            Code::InvalidArgument,
            "rate_pps: ",
            c.add_signature(pb::AddSignatureRequest {
                rate_pps: 2_000_000_000,
                ..add("udp dst 203.0.113.10/32 dport 7", 0, false)
            })
            .await
            .map(drop),
        ),
        (
            Code::InvalidArgument,
            "id: ",
            c.remove_signature(pb::RemoveSignatureRequest { id: 0 })
                .await
                .map(drop),
        ),
        (
            Code::NotFound,
            "no signature entry for id 999",
            c.remove_signature(pb::RemoveSignatureRequest { id: 999 })
                .await
                .map(drop),
        ),
        (
            Code::InvalidArgument,
            "address: ",
            c.add_known_good(pb::KnownGoodRequest {
                address: "192.0.2.0/24".into(),
            })
            .await
            .map(drop),
        ),
        (
            Code::NotFound,
            "no known-good entry",
            c.remove_known_good(pb::KnownGoodRequest {
                address: addr::atk_src4(9),
            })
            .await
            .map(drop),
        ),
    ];
    for (want, prefix, r) in cases {
        let (got, msg) = code(r);
        assert_eq!(got, want, "{prefix}: {msg}");
        assert!(msg.starts_with(prefix), "{prefix:?}: {msg}");
    }
    assert_eq!(fixed(&listed(c).await), rules, "no rule changed");
    assert_eq!(known_good(c).await, good, "no known-good source changed");

    // phantomctl reports the code and the field, and exits non-zero.
    let out = ctl(t, &["signature", "add", "udp dst nowhere"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("InvalidArgument: rule: "), "{err}");
}

/// 64 rules fill the slots: the 65th is RESOURCE_EXHAUSTED, and the rules
/// in force stay as they were.
pub async fn full(c: &mut AgentClient<Channel>) {
    let before = fixed(&listed(c).await);
    assert_eq!(before.len(), 1);
    let mut ids = Vec::new();
    for port in 6001..6064 {
        let r = c
            .add_signature(add(
                &format!("udp dst 203.0.113.10/32 dport {port}"),
                60,
                false,
            ))
            .await
            .unwrap()
            .into_inner()
            .rule
            .unwrap();
        ids.push(r.id);
    }
    assert_eq!(listed(c).await.len(), 64);
    let (got, msg) = code(
        c.add_signature(add("udp dst 203.0.113.10/32 dport 7000", 60, false))
            .await,
    );
    assert_eq!(got, Code::ResourceExhausted, "{msg}");
    assert!(msg.contains("PN_SIG_RULES"), "{msg}");
    let now = listed(c).await;
    assert_eq!(now.len(), 64);
    assert!(!now.iter().any(|r| r.rule.contains("dport 7000")));
    for id in ids {
        c.remove_signature(pb::RemoveSignatureRequest { id })
            .await
            .unwrap();
    }
    assert_eq!(fixed(&listed(c).await), before);
}

/// Removed over gRPC, the traffic passes again and the rule's series go;
/// phantomctl adds and removes one too.
pub async fn remove(t: &TestLab, c: &mut AgentClient<Channel>) {
    let atk = addr::atk_src4(3);
    let r = c
        .remove_signature(pb::RemoveSignatureRequest { id: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.id, 1);
    assert!(listed(c).await.is_empty());
    assert_eq!(deliver(t, &atk), 10, "passes once the rule is gone");

    let out = ctl(
        t,
        &[
            "--json",
            "signature",
            "add",
            RULE,
            "--ttl",
            "60",
            "--rate",
            "5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&v["rule"], &v["rate_pps"]),
        (&RULE.into(), &5.into()),
        "{v}"
    );
    assert!(
        v["expires_in_seconds"]
            .as_u64()
            .is_some_and(|s| s > 50 && s <= 60),
        "{v}"
    );
    let id = v["id"].as_u64().unwrap().to_string();
    let out = ctl(t, &["signature", "remove", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("removed signature {id}")
    );
    assert!(listed(c).await.is_empty());

    let out = ctl(t, &["known-good", "remove", addr::CLI4]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(known_good(c).await.is_empty());

    std::thread::sleep(Duration::from_millis(1200));
    let body = metrics_text(t);
    assert_eq!(
        metric(&body, "phantomnet_signature_rules"),
        Some(0.0),
        "{body}"
    );
    assert!(
        !body.contains("phantomnet_signature_dropped_total{"),
        "a removed rule's series stay:\n{body}"
    );
}
