//! Enforcement over real traffic: UDP from the lab's clients and attackers
//! through the gateway's XDP hook to a socket on the protected server.
use std::{
    net::SocketAddr,
    thread::sleep,
    time::{Duration, Instant},
};

use phantomnet_agent::dataplane::{Prefix, ThrottleParams};
use phantomnet_common::{Outcome, ReasonCode};
use phantomnet_tests::{
    Collector, LabOptions, Role, TestLab, addr, drain, from_src, root_or_skip, send_udp, udp_from,
    udp_sink,
};

const PORT: u16 = 5000;
const QUIET: Duration = Duration::from_millis(300);

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn dst4() -> SocketAddr {
    format!("{}:{PORT}", addr::SRV4).parse().unwrap()
}

fn dst6() -> SocketAddr {
    format!("[{}]:{PORT}", addr::SRV6).parse().unwrap()
}

/// Sends `n` datagrams from each source and returns how many of each arrived.
fn deliver(t: &TestLab, sources: &[(Role, &str)], n: usize, v6: bool) -> Vec<usize> {
    let (sink_addr, dst) = if v6 {
        (addr::SRV6, dst6())
    } else {
        (addr::SRV4, dst4())
    };
    let sink = udp_sink(&t.netns(Role::Srv), sink_addr, PORT);
    for (role, src) in sources {
        let tx = udp_from(&t.netns(*role), src);
        send_udp(&tx, dst, n, b"phantomnet-test", None);
    }
    let got = drain(&sink, QUIET);
    sources.iter().map(|(_, src)| from_src(&got, src)).collect()
}

#[test]
fn block_host_drops_only_that_source() {
    if !root_or_skip("block_host_drops_only_that_source") {
        return;
    }
    let t = TestLab::up("blk32");
    let _dp = t.load();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    let sources = [
        (Role::Atk, a0.as_str()),
        (Role::Atk, a1.as_str()),
        (Role::Cli, addr::CLI4),
    ];
    assert_eq!(
        deliver(&t, &sources, 20, false),
        [20, 20, 20],
        "all pass before the block"
    );

    t.maps()
        .block(&p(&a0), None, ReasonCode::Manual, "test")
        .unwrap();
    assert_eq!(deliver(&t, &sources, 20, false), [0, 20, 20]);
    let rules = t.maps().rules().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].hits, 20, "the entry counts its drops");
}

#[test]
fn block_prefix_drops_the_whole_range() {
    if !root_or_skip("block_prefix_drops_the_whole_range") {
        return;
    }
    let t = TestLab::up("blk24");
    let _dp = t.load();
    let a0 = addr::atk_src4(0);
    let a9 = addr::atk_src4(9);
    t.maps()
        .block(&p(addr::ATK_NET4), None, ReasonCode::Manual, "")
        .unwrap();
    let sources = [
        (Role::Atk, a0.as_str()),
        (Role::Atk, a9.as_str()),
        (Role::Cli, addr::CLI4),
    ];
    assert_eq!(deliver(&t, &sources, 20, false), [0, 0, 20]);
    let c = t.maps().counters().unwrap();
    assert_eq!(c.get(Outcome::BlockDropped).packets, 40);
}

#[test]
fn block_ipv6_source() {
    if !root_or_skip("block_ipv6_source") {
        return;
    }
    let t = TestLab::up("blk6");
    let _dp = t.load();
    let a0 = addr::atk_src6(0);
    let a1 = addr::atk_src6(1);
    t.maps()
        .block(&p(&a0), None, ReasonCode::Manual, "")
        .unwrap();
    let sources = [
        (Role::Atk, a0.as_str()),
        (Role::Atk, a1.as_str()),
        (Role::Cli, addr::CLI6),
    ];
    assert_eq!(deliver(&t, &sources, 20, true), [0, 20, 20]);
    // A /64 covers both attacker sources but not the client.
    t.maps()
        .block(&p(addr::ATK_NET6), None, ReasonCode::Manual, "")
        .unwrap();
    assert_eq!(deliver(&t, &sources, 20, true), [0, 0, 20]);
}

#[test]
fn expired_block_stops_dropping_without_userspace() {
    if !root_or_skip("expired_block_stops_dropping_without_userspace") {
        return;
    }
    let t = TestLab::up("expiry");
    let dp = t.load();
    let a0 = addr::atk_src4(0);
    let sources = [(Role::Atk, a0.as_str())];
    let set_at = Instant::now();
    t.maps()
        .block(
            &p(&a0),
            Some(Duration::from_secs(2)),
            ReasonCode::Manual,
            "",
        )
        .unwrap();
    assert_eq!(deliver(&t, &sources, 10, false), [0]);
    assert!(
        set_at.elapsed() < Duration::from_secs(2),
        "the first check ran within the TTL"
    );
    // No agent runs; the loaded program handle is dropped too. Only the
    // kernel's timestamp check can lift the block.
    drop(dp);
    sleep(Duration::from_secs(2).saturating_sub(set_at.elapsed()) + Duration::from_millis(200));
    assert_eq!(deliver(&t, &sources, 10, false), [10]);
    // The first packet past the expiry found it expired and deleted it, so
    // that it can never mask a covering entry (tests/tests/expiry.rs).
    let rules = t.maps().rules().unwrap();
    assert!(
        rules.is_empty(),
        "the expired entry is still in the map: {rules:?}"
    );
}

#[test]
fn allowlist_beats_a_covering_block() {
    if !root_or_skip("allowlist_beats_a_covering_block") {
        return;
    }
    let t = TestLab::up("allow");
    let _dp = t.load();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    let mut maps = t.maps();
    maps.allow(&p(&a0)).unwrap();
    maps.block(&p(addr::ATK_NET4), None, ReasonCode::Manual, "")
        .unwrap();
    maps.throttle(
        &p(addr::ATK_NET4),
        ThrottleParams {
            rate_pps: 1,
            burst: Some(1),
            ttl: None,
        },
    )
    .unwrap();
    let sources = [(Role::Atk, a0.as_str()), (Role::Atk, a1.as_str())];
    assert_eq!(deliver(&t, &sources, 20, false), [20, 0]);
    let c = maps.counters().unwrap();
    assert_eq!(c.get(Outcome::Allowlisted).packets, 20);
    assert_eq!(c.get(Outcome::BlockDropped).packets, 20);
    // A block entirely inside the allowlist is refused outright.
    let err = maps
        .block(&p(&a0), None, ReasonCode::Manual, "")
        .unwrap_err();
    assert!(err.to_string().contains("allowlisted"), "{err}");
}

#[test]
fn throttle_holds_the_rate_within_20_percent() {
    if !root_or_skip("throttle_holds_the_rate_within_20_percent") {
        return;
    }
    let t = TestLab::up("throttle");
    let _dp = t.load();
    const RATE: u32 = 200;
    const FLOOD_PPS: u32 = 1000;
    const SECS: u32 = 5;
    let a0 = addr::atk_src4(0);
    t.maps()
        .throttle(
            &p(addr::ATK_NET4),
            ThrottleParams {
                rate_pps: RATE,
                burst: Some(10),
                ttl: None,
            },
        )
        .unwrap();
    let sink = Collector::start(udp_sink(&t.netns(Role::Srv), addr::SRV4, PORT));
    let flood = udp_from(&t.netns(Role::Atk), &a0);
    let benign = udp_from(&t.netns(Role::Cli), addr::CLI4);
    let sent = (FLOOD_PPS * SECS) as usize;
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| send_udp(&flood, dst4(), sent, b"flood", Some(FLOOD_PPS)));
        s.spawn(|| send_udp(&benign, dst4(), 50, b"benign", Some(10)));
    });
    let elapsed = started.elapsed().as_secs_f64();
    let got = sink.finish();
    let passed = from_src(&got, &a0) as f64;
    let expected = f64::from(RATE) * elapsed;
    assert!(
        (expected * 0.8..=expected * 1.2).contains(&passed),
        "{passed} of {sent} flood packets passed in {elapsed:.2}s; expected {expected:.0} ± 20%"
    );
    assert_eq!(
        from_src(&got, addr::CLI4),
        50,
        "an unthrottled source is untouched"
    );
    let state = t.maps().throttle_state(a0.parse().unwrap()).unwrap();
    assert_eq!(
        state.passed + state.dropped,
        sent as u64,
        "the bucket saw every packet"
    );
    assert_eq!(state.passed as f64, passed);
    let c = t.maps().counters().unwrap();
    assert_eq!(c.get(Outcome::ThrottleDropped).packets, state.dropped);
}

#[test]
fn counters_match_the_traffic_sent() {
    if !root_or_skip("counters_match_the_traffic_sent") {
        return;
    }
    // IPv4 only and permanent neighbours: nothing but our datagrams crosses XDP.
    let t = TestLab::up_with("counters", LabOptions { ipv6: false });
    let _dp = t.load();
    let mut maps = t.maps();
    maps.set_sampling(1).unwrap();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    maps.block(&p(&a0), None, ReasonCode::Manual, "").unwrap();
    maps.allow(&p(&a1)).unwrap();
    let payload = [0x5Au8; 100];
    let sink = udp_sink(&t.netns(Role::Srv), addr::SRV4, PORT);
    send_udp(
        &udp_from(&t.netns(Role::Cli), addr::CLI4),
        dst4(),
        100,
        &payload,
        None,
    );
    send_udp(
        &udp_from(&t.netns(Role::Atk), &a0),
        dst4(),
        50,
        &payload,
        None,
    );
    send_udp(
        &udp_from(&t.netns(Role::Atk), &a1),
        dst4(),
        30,
        &payload,
        None,
    );
    let got = drain(&sink, QUIET);
    assert_eq!(
        (
            from_src(&got, addr::CLI4),
            from_src(&got, &a0),
            from_src(&got, &a1)
        ),
        (100, 0, 30)
    );

    let frame = 14 + 20 + 8 + payload.len() as u64;
    let c = maps.counters().unwrap();
    let pb = |o| (c.get(o).packets, c.get(o).bytes);
    assert_eq!(pb(Outcome::Passed), (100, 100 * frame));
    assert_eq!(pb(Outcome::BlockDropped), (50, 50 * frame));
    assert_eq!(pb(Outcome::Allowlisted), (30, 30 * frame));
    assert_eq!(pb(Outcome::ThrottleDropped), (0, 0));
    assert_eq!(pb(Outcome::Unparsed), (0, 0));
    assert_eq!(
        c.get(Outcome::Sampled).packets + c.get(Outcome::SampleLost).packets,
        180
    );
}

#[test]
fn dry_run_passes_everything_while_counting() {
    if !root_or_skip("dry_run_passes_everything_while_counting") {
        return;
    }
    let t = TestLab::up("dryrun");
    let _dp = t.load();
    let mut maps = t.maps();
    let a0 = addr::atk_src4(0);
    let a1 = addr::atk_src4(1);
    maps.block(&p(&a0), None, ReasonCode::Manual, "").unwrap();
    maps.throttle(
        &p(&a1),
        ThrottleParams {
            rate_pps: 1,
            burst: Some(1),
            ttl: None,
        },
    )
    .unwrap();
    maps.set_dry_run(true).unwrap();
    let sources = [(Role::Atk, a0.as_str()), (Role::Atk, a1.as_str())];
    assert_eq!(
        deliver(&t, &sources, 40, false),
        [40, 40],
        "dry-run drops nothing"
    );
    let c = maps.counters().unwrap();
    assert_eq!(
        c.get(Outcome::BlockDropped).packets,
        40,
        "would-be block drops counted"
    );
    assert_eq!(
        c.get(Outcome::ThrottleDropped).packets,
        39,
        "all but the one-packet burst"
    );

    maps.set_dry_run(false).unwrap();
    let got = deliver(&t, &sources, 40, false);
    assert_eq!(got[0], 0, "enforcing again: blocked");
    assert!(
        got[1] <= 1,
        "enforcing again: throttled to its 1-packet bucket, got {}",
        got[1]
    );
}
