//! Signature-rule requests and replies, and the status each domain error
//! becomes.
use std::time::Duration;

use phantomnet_common::{KnownGood, ReasonCode, capacity, maps, sig_flags};
use tonic::Code;

use super::*;
use crate::dataplane::Expiry;

fn refused<T: std::fmt::Debug>(r: Result<T, Status>) -> (Code, String) {
    let s = r.expect_err("should be refused");
    (s.code(), s.message().to_string())
}

#[test]
fn a_signature_request_names_each_bad_field() {
    let sig = signature("tcp dst 203.0.113.10/32 dport 80 flags SYN/SYN+ACK len 54-60").unwrap();
    assert_eq!(sig.dst_port, Some((80, 80)));
    for bad in [
        "",
        "  ",
        "tcp 203.0.113.10/32",
        "udp dst 203.0.113.10/33",
        "tcp dst 10.0.0.1/32 dport 9-8",
    ] {
        let (code, msg) = refused(signature(bad));
        assert_eq!(code, Code::InvalidArgument, "{bad:?}");
        assert!(msg.starts_with("rule: "), "{bad:?}: {msg}");
    }
    assert_eq!(signature_ttl(0).unwrap(), None, "0 = until removed");
    assert_eq!(signature_ttl(60).unwrap(), Some(Duration::from_secs(60)));
    let (code, msg) = refused(signature_ttl(MAX_TTL_SECS + 1));
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("ttl_seconds: "), "{msg}");
    assert_eq!(signature_rate(0).unwrap(), 0, "0 = drop");
    assert_eq!(signature_rate(MAX_RATE_PPS).unwrap(), MAX_RATE_PPS);
    assert!(
        refused(signature_rate(MAX_RATE_PPS + 1))
            .1
            .starts_with("rate_pps: ")
    );
    assert!(refused(signature_id(0)).1.starts_with("id: "));
    assert_eq!(signature_id(7).unwrap(), 7);
    assert!(
        refused(ip("address", "10.0.0.0/8"))
            .1
            .starts_with("address: ")
    );
}

#[test]
fn signature_errors_map_to_precise_codes() {
    let dp = |e: DataplaneError| status(CoreError::Enforce(EnforceError::Dataplane(e)));
    let full = dp(DataplaneError::MapFull {
        map: maps::SIG_RULES,
        capacity: capacity::SIG_SLOTS,
    });
    assert_eq!(full.code(), Code::ResourceExhausted);
    assert!(
        full.message().contains("PN_SIG_RULES"),
        "{}",
        full.message()
    );
    let missing = dp(DataplaneError::NotFound {
        kind: "signature",
        prefix: "id 9".into(),
    });
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("id 9"));
    let rate = dp(DataplaneError::InvalidArgument {
        field: "rate",
        reason: "too fast".into(),
    });
    assert_eq!(
        (rate.code(), rate.message()),
        (Code::InvalidArgument, "rate_pps: too fast")
    );
    let ttl = dp(DataplaneError::InvalidArgument {
        field: "ttl",
        reason: "must be positive".into(),
    });
    assert_eq!(ttl.message(), "ttl_seconds: must be positive");
    // A match field the data plane refuses is the rule's fault.
    let bad = status(CoreError::BadSignature {
        field: "dport",
        reason: "81 > 80".into(),
    });
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::InvalidArgument, "rule: signature dport: 81 > 80")
    );
    let unloaded = status(CoreError::Dataplane(DataplaneError::NotLoaded {
        path: "/sys/fs/bpf/x".into(),
    }));
    assert_eq!(unloaded.code(), Code::Internal);
}

fn view(remaining: Option<Duration>) -> SignatureView {
    let sig: Signature = "udp dst 203.0.113.0/24 dport 53 len 554 payload 5858"
        .parse()
        .unwrap();
    let mut rule = sig.to_rule();
    rule.id = 3;
    rule.rate_pps = 100;
    rule.reason = ReasonCode::Api as u32;
    rule.flags = sig_flags::EXEMPT_KNOWN_GOOD;
    SignatureView {
        slot: 1,
        rule,
        expires: Expiry::NEVER,
        remaining,
        matched: 10,
        dropped: 6,
        exempted: 2,
    }
}

#[test]
fn a_signature_rule_goes_out_with_its_text_counts_and_author() {
    let r = signature_rule(&view(Some(Duration::from_millis(89_500))));
    assert_eq!(
        r,
        pb::SignatureRule {
            id: 3,
            slot: 1,
            rule: "udp dst 203.0.113.0/24 dport 53 len 554 payload 5858".into(),
            rate_pps: 100,
            expires_in_seconds: 89,
            expired: false,
            exempt_known_good: true,
            matched: 10,
            dropped: 6,
            exempted: 2,
            reason: "api".into(),
        }
    );
    assert_eq!(
        signature(&r.rule).unwrap(),
        Signature::from_rule(&view(None).rule),
        "the text it lists is text AddSignature takes, for the same rule"
    );
    let never = signature_rule(&view(None));
    assert_eq!((never.expires_in_seconds, never.expired), (0, false));
    let almost = signature_rule(&view(Some(Duration::from_millis(300))));
    assert_eq!((almost.expires_in_seconds, almost.expired), (1, false));
    let gone = signature_rule(&view(Some(Duration::ZERO)));
    assert_eq!((gone.expires_in_seconds, gone.expired), (0, true));
}

#[test]
fn a_known_good_source_says_how_long_ago_it_was_vouched_for() {
    let g = KnownGoodView {
        addr: "2001:db8::7".parse().unwrap(),
        entry: KnownGood {
            refreshed_ns: 1_000_000_000,
            exempted: 4,
        },
    };
    let s = known_good_source(&g, 6_500_000_000);
    assert_eq!(
        (s.address.as_str(), s.exempted, s.refreshed_seconds_ago),
        ("2001:db8::7", 4, 5)
    );
    assert_eq!(known_good_source(&g, 0).refreshed_seconds_ago, 0);
}
