//! Expiry and rule replacement in the kernel, through the loaded program
//! with BPF_PROG_TEST_RUN: an expired entry never masks a covering one (for
//! blocks and throttles), a replaced throttle rule starts every bucket
//! fresh, and the IPv6 walk sizes an Authentication Header in its own units.
use std::{thread::sleep, time::Duration};

use phantomnet_agent::dataplane::{Maps, Prefix, ThrottleParams};
use phantomnet_common::{IPPROTO_TCP, Outcome, ReasonCode, RuleKind, TCP_SYN};
use phantomnet_tests::{
    TestPins,
    packet::{self, ETH_IP, ETH_IPV6, Frame},
    prog_run, root_or_skip,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const SRC4: [u8; 4] = [192, 0, 2, 10];
const DST4: [u8; 4] = [203, 0, 113, 10];

fn frame() -> Vec<u8> {
    Frame::eth(&[], ETH_IP)
        .ipv4(
            SRC4,
            DST4,
            IPPROTO_TCP,
            &[],
            0,
            &packet::tcp(40000, 80, TCP_SYN, b""),
        )
        .bytes
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn run(id: u32, frame: &[u8], n: u32) -> u32 {
    prog_run(id, frame, n).unwrap().retval
}

fn dropped(maps: &Maps, o: Outcome) -> u64 {
    maps.counters().unwrap().get(o).packets
}

#[test]
fn an_expired_entry_never_masks_a_covering_one() {
    if !root_or_skip("an_expired_entry_never_masks_a_covering_one") {
        return;
    }
    let pins = TestPins::new("expiry");
    let dp = pins.load();
    let mut maps = pins.maps();
    let id = dp.program_id().unwrap();
    let f = frame();
    // A permanent /24 block, and a 1 s /32 block inside it.
    maps.block(&p("192.0.2.0/24"), None, ReasonCode::Manual, "")
        .unwrap();
    maps.block(
        &p("192.0.2.10/32"),
        Some(Duration::from_secs(1)),
        ReasonCode::Detection,
        "",
    )
    .unwrap();
    assert_eq!(run(id, &f, 1), XDP_DROP);
    sleep(Duration::from_millis(1300));
    assert_eq!(
        run(id, &f, 1),
        XDP_DROP,
        "the expired /32 unmasked the /24's block"
    );
    let blocks: Vec<String> = maps
        .rules()
        .unwrap()
        .iter()
        .filter(|r| r.kind == RuleKind::Block)
        .map(|r| r.prefix.to_string())
        .collect();
    assert_eq!(blocks, ["192.0.2.0/24"], "the expired entry was deleted");
    maps.unblock(&p("192.0.2.0/24")).unwrap();
    assert_eq!(run(id, &f, 1), XDP_PASS);

    // Throttles: a strict permanent /24 (1 packet/s), a loose 1 s /32.
    let thr = |rate, burst, ttl| ThrottleParams {
        rate_pps: rate,
        burst: Some(burst),
        ttl,
    };
    maps.throttle(&p("192.0.2.0/24"), thr(1, 1, None)).unwrap();
    maps.throttle(
        &p("192.0.2.10/32"),
        thr(1_000_000, 1000, Some(Duration::from_secs(1))),
    )
    .unwrap();
    let before = dropped(&maps, Outcome::ThrottleDropped);
    run(id, &f, 100);
    assert_eq!(
        dropped(&maps, Outcome::ThrottleDropped),
        before,
        "the loose /32 applies"
    );
    sleep(Duration::from_millis(1300));
    let before = dropped(&maps, Outcome::ThrottleDropped);
    run(id, &f, 100);
    let now_dropped = dropped(&maps, Outcome::ThrottleDropped) - before;
    assert!(
        now_dropped >= 98,
        "after the /32 expired the /24's 1 pps must apply: {now_dropped} of 100 dropped"
    );
    drop(dp);
}

#[test]
fn a_replaced_throttle_rule_starts_every_bucket_fresh() {
    if !root_or_skip("a_replaced_throttle_rule_starts_every_bucket_fresh") {
        return;
    }
    let pins = TestPins::new("rethrottle");
    let dp = pins.load();
    let mut maps = pins.maps();
    let id = dp.program_id().unwrap();
    let f = frame();
    let prefix = p("192.0.2.10/32");
    // 1 packet/s with a burst of 5,000: a flood of 5,000 is admitted and
    // pushes the bucket's schedule ~5,000 s (83 min) into the future.
    let params = |rate, burst| ThrottleParams {
        rate_pps: rate,
        burst: Some(burst),
        ttl: None,
    };
    maps.throttle(&prefix, params(1, 5000)).unwrap();
    run(id, &f, 5000);
    let s = maps.throttle_state("192.0.2.10".parse().unwrap()).unwrap();
    assert!(s.passed >= 4999, "{s:?}");
    // The operator raises the rate. Without a fresh bucket the old debt
    // (83 min ≫ the new 10 ms tolerance) would drop everything for 83 min.
    maps.throttle(&prefix, params(1000, 10)).unwrap();
    let before = dropped(&maps, Outcome::ThrottleDropped);
    assert_eq!(
        run(id, &f, 1),
        XDP_PASS,
        "locked out by the old rule's bucket"
    );
    run(id, &f, 5);
    assert_eq!(
        dropped(&maps, Outcome::ThrottleDropped),
        before,
        "within the new burst"
    );
    drop(dp);
}

#[test]
fn an_ipv6_authentication_header_is_sized_in_its_own_units() {
    if !root_or_skip("an_ipv6_authentication_header_is_sized_in_its_own_units") {
        return;
    }
    let pins = TestPins::new("ipv6ah");
    let mut dp = pins.load();
    let mut maps = pins.maps();
    maps.set_sampling(1).unwrap();
    let id = dp.program_id().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut reader = {
        let _g = rt.enter();
        dp.take_samples().unwrap()
    };
    let src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    for (name, ext) in [
        ("AH", vec![(packet::NH_AUTH, packet::ah_header(12))]),
        (
            "HOP then AH",
            vec![
                (packet::NH_HOP, packet::ext_header(0)),
                (packet::NH_AUTH, packet::ah_header(16)),
            ],
        ),
        (
            "AH then DEST",
            vec![
                (packet::NH_AUTH, packet::ah_header(12)),
                (packet::NH_DEST, packet::ext_header(1)),
            ],
        ),
    ] {
        let f = Frame::eth(&[], ETH_IPV6).ipv6(
            src6,
            dst6,
            &ext,
            IPPROTO_TCP,
            &packet::tcp(40001, 443, TCP_SYN, b"hello"),
        );
        assert_eq!(run(id, &f.bytes, 1), XDP_PASS);
        let mut samples = Vec::new();
        reader.drain(&mut samples);
        let s = samples
            .last()
            .unwrap_or_else(|| panic!("{name}: no sample"));
        assert_eq!(
            (s.protocol, s.src_port, s.dst_port, s.tcp_flags),
            (IPPROTO_TCP, 40001, 443, TCP_SYN),
            "{name}: L4 mis-located"
        );
        assert_eq!(&s.payload[..5], b"hello", "{name}");
    }
    drop(dp);
}

#[test]
fn pruning_expired_rules_never_scans_the_bucket_map() {
    if !root_or_skip("pruning_expired_rules_never_scans_the_bucket_map") {
        return;
    }
    let pins = TestPins::new("prune");
    let dp = pins.load();
    let mut maps = pins.maps();
    let id = dp.program_id().unwrap();
    let ttl = Some(Duration::from_secs(1));
    let params = ThrottleParams {
        rate_pps: 10,
        burst: Some(5),
        ttl,
    };
    // 1,000 short rules, and one for the test source, which gets a bucket.
    for i in 0..1000u32 {
        let a = std::net::Ipv4Addr::from(0x0A01_0000 + i);
        maps.throttle(&Prefix::host(a.into()), params).unwrap();
    }
    maps.throttle(&p("192.0.2.10/32"), params).unwrap();
    run(id, &frame(), 3);
    let src = "192.0.2.10".parse().unwrap();
    assert!(maps.throttle_state(src).is_some());
    sleep(Duration::from_millis(1200));
    assert_eq!(maps.prune_expired().unwrap(), 1001);
    assert!(maps.rules().unwrap().is_empty());
    // The bucket was not looked for: the state map is aged by the kernel's
    // LRU, and a new rule starts it fresh (see the test above).
    assert!(
        maps.throttle_state(src).is_some(),
        "pruning scanned the bucket map"
    );
    drop(dp);
}
