use super::*;

fn params(rate: u32, burst: Option<u32>) -> ThrottleParams {
    ThrottleParams {
        rate_pps: rate,
        burst,
        ttl: None,
    }
}

#[test]
fn throttle_rule_is_precomputed_for_the_kernel() {
    let r = params(200, Some(10))
        .to_rule(24, 1_000, ReasonCode::Manual)
        .unwrap();
    assert_eq!(r.interval_ns, 5_000_000);
    assert_eq!(r.tolerance_ns, 50_000_000);
    assert_eq!(
        (r.rate_pps, r.burst, r.prefix_len, r.expires_ns),
        (200, 10, 24, 0)
    );
    // Default burst: a tenth of a second, at least one packet.
    assert_eq!(
        params(1000, None)
            .to_rule(32, 0, ReasonCode::Manual)
            .unwrap()
            .burst,
        100
    );
    assert_eq!(
        params(5, None)
            .to_rule(32, 0, ReasonCode::Manual)
            .unwrap()
            .burst,
        1
    );
}

#[test]
fn throttle_rule_rejects_bad_input() {
    for (p, msg) in [
        (params(0, None), "rate: must be at least 1"),
        (params(2_000_000_000, None), "rate: must be at most"),
        (params(10, Some(0)), "burst: must be at least 1"),
    ] {
        let e = p.to_rule(32, 0, ReasonCode::Manual).unwrap_err();
        assert!(e.to_string().contains(msg), "{e}");
    }
    // The deepest bucket at the slowest rate still fits the clock.
    let r = params(1, Some(u32::MAX))
        .to_rule(32, 0, ReasonCode::Manual)
        .unwrap();
    assert_eq!(r.tolerance_ns, 1_000_000_000 * u64::from(u32::MAX));
    let p = ThrottleParams {
        rate_pps: 10,
        burst: None,
        ttl: Some(Duration::ZERO),
    };
    assert!(
        p.to_rule(32, 0, ReasonCode::Manual)
            .unwrap_err()
            .to_string()
            .contains("ttl")
    );
}

#[test]
fn reason_text_is_bounded() {
    assert_eq!(
        reason_text(&reason_bytes("ssh brute force").unwrap()),
        "ssh brute force"
    );
    let long = "x".repeat(REASON_TEXT_LEN + 1);
    assert!(
        reason_bytes(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 32")
    );
    assert!(reason_bytes("a\0b").is_err());
    assert_eq!(
        reason_text(&reason_bytes(&"y".repeat(32)).unwrap()).len(),
        32
    );
}
