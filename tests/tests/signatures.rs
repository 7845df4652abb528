//! Host entries in the exact-match maps, the list bits, and signature
//! rules, fed crafted frames through the loaded program with
//! BPF_PROG_TEST_RUN (`bpftool prog run`): which packets each rule drops,
//! which it passes, and what it counts.
use std::{net::IpAddr, time::Duration};

use phantomnet_agent::dataplane::{Counters, DataplaneError, Maps, Prefix};
use phantomnet_common::{
    IPPROTO_TCP, IPPROTO_UDP, Outcome, ReasonCode, SigRule, TCP_ACK, TCP_SYN, capacity, list_flags,
    sig_flags,
};
use phantomnet_tests::{
    TestPins,
    packet::{self, ETH_IP, Frame},
    prog_run, root_or_skip,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const VICTIM: [u8; 4] = [203, 0, 113, 10];

fn tcp_frame(src: [u8; 4], dst: [u8; 4], flags: u8, payload: &[u8]) -> Vec<u8> {
    Frame::eth(&[], ETH_IP)
        .ipv4(
            src,
            dst,
            IPPROTO_TCP,
            &[],
            0,
            &packet::tcp(40000, 80, flags, payload),
        )
        .bytes
}

fn udp_frame(src: [u8; 4], payload: &[u8]) -> Vec<u8> {
    Frame::eth(&[], ETH_IP)
        .ipv4(
            src,
            VICTIM,
            IPPROTO_UDP,
            &[],
            0,
            &packet::udp(40000, 53, payload),
        )
        .bytes
}

fn delta(a: &Counters, b: &Counters, o: Outcome) -> u64 {
    b.get(o).packets - a.get(o).packets
}

/// Runs `frame` `repeat` times; returns the last verdict and the change in
/// every exclusive outcome.
fn run(maps: &Maps, id: u32, frame: &[u8], repeat: u32) -> (u32, [u64; 6]) {
    let before = maps.counters().unwrap();
    let ret = prog_run(id, frame, repeat).unwrap().retval;
    let after = maps.counters().unwrap();
    let d = |o| delta(&before, &after, o);
    (
        ret,
        [
            d(Outcome::Passed),
            d(Outcome::Allowlisted),
            d(Outcome::BlockDropped),
            d(Outcome::ThrottleDropped),
            d(Outcome::Unparsed),
            d(Outcome::SignatureDropped),
        ],
    )
}

/// [Passed, Allowlisted, BlockDropped, ThrottleDropped, Unparsed, SignatureDropped]
fn only(o: Outcome, n: u64) -> [u64; 6] {
    let mut v = [0; 6];
    let i = match o {
        Outcome::Passed => 0,
        Outcome::Allowlisted => 1,
        Outcome::BlockDropped => 2,
        Outcome::ThrottleDropped => 3,
        Outcome::Unparsed => 4,
        Outcome::SignatureDropped => 5,
        other => panic!("{other:?} is not exclusive"),
    };
    v[i] = n;
    v
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[test]
fn host_entries_live_in_the_exact_match_maps_and_empty_lists_are_skipped() {
    if !root_or_skip("host_entries_live_in_the_exact_match_maps_and_empty_lists_are_skipped") {
        return;
    }
    let pins = TestPins::new("hosts");
    let dp = pins.load();
    let id = dp.program_id().unwrap();
    let mut maps = pins.maps();
    let src = [192, 0, 2, 10];
    let frame = tcp_frame(src, VICTIM, TCP_SYN, b"x");
    assert_eq!(
        maps.config().unwrap().lists,
        0,
        "a fresh data plane has no lists in use"
    );
    assert_eq!(
        run(&maps, id, &frame, 1),
        (XDP_PASS, only(Outcome::Passed, 1))
    );

    // A /32 goes to the host hash, and its bit is set.
    maps.block(&p("192.0.2.10/32"), None, ReasonCode::Manual, "host")
        .unwrap();
    assert_eq!(maps.config().unwrap().lists, list_flags::BLOCK_HOST);
    assert_eq!(
        run(&maps, id, &frame, 3),
        (XDP_DROP, only(Outcome::BlockDropped, 3))
    );
    let rules = maps.rules().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].prefix, rules[0].hits), (p("192.0.2.10/32"), 3));
    let covering = maps.block_in_force(IpAddr::from(src)).unwrap();
    assert_eq!(covering.prefix, p("192.0.2.10/32"));
    assert!(maps.block_at(&p("192.0.2.10/32")).is_some());

    // A covering /24 in the trie; removing the host entry leaves the /24.
    maps.block(&p("192.0.2.0/24"), None, ReasonCode::Manual, "net")
        .unwrap();
    assert_eq!(
        maps.config().unwrap().lists,
        list_flags::BLOCK_HOST | list_flags::BLOCK_PREFIX
    );
    maps.unblock(&p("192.0.2.10/32")).unwrap();
    assert_eq!(
        run(&maps, id, &frame, 1),
        (XDP_DROP, only(Outcome::BlockDropped, 1))
    );
    assert_eq!(
        maps.block_in_force(IpAddr::from(src)).unwrap().prefix,
        p("192.0.2.0/24")
    );

    // A host allow entry beats the /24 block.
    maps.allow(&p("192.0.2.10/32")).unwrap();
    assert_eq!(
        run(&maps, id, &frame, 1),
        (XDP_PASS, only(Outcome::Allowlisted, 1))
    );
    assert_eq!(
        maps.allowlisted_by(&p("192.0.2.10/32")),
        Some(p("192.0.2.10/32"))
    );
    assert_eq!(maps.allowlisted_by(&p("192.0.2.0/24")), None);
    maps.disallow(&p("192.0.2.10/32")).unwrap();

    // An expired host entry never masks the covering prefix: XDP deletes it.
    maps.block(
        &p("192.0.2.10/32"),
        Some(Duration::from_secs(1)),
        ReasonCode::Manual,
        "short",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        run(&maps, id, &frame, 1),
        (XDP_DROP, only(Outcome::BlockDropped, 1))
    );
    assert!(
        maps.block_at(&p("192.0.2.10/32")).is_none(),
        "XDP removed the expired host entry"
    );

    // A list the agent empties loses its bit at once; one XDP emptied (the
    // expired host entry) keeps a stale bit until the next sync.
    maps.unblock(&p("192.0.2.0/24")).unwrap();
    assert_eq!(maps.config().unwrap().lists, list_flags::BLOCK_HOST);
    assert_eq!(maps.sync_lists().unwrap(), 0);
    assert_eq!(maps.config().unwrap().lists, 0);
    assert_eq!(
        run(&maps, id, &frame, 1),
        (XDP_PASS, only(Outcome::Passed, 1))
    );
    // An IPv6 host entry likewise.
    maps.block(&p("2001:db8::1/128"), None, ReasonCode::Manual, "")
        .unwrap();
    assert_eq!(maps.config().unwrap().lists, list_flags::BLOCK_HOST);
    assert_eq!(maps.rules().unwrap()[0].prefix, p("2001:db8::1/128"));
}

/// hping3-style SYNs (no options: a 54-byte frame) to the victim's port 80.
fn syn_rule() -> SigRule {
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&VICTIM);
    SigRule {
        family: 4,
        dst_addr: dst,
        dst_prefix_len: 32,
        protocol: IPPROTO_TCP,
        tcp_flags_mask: 0x17,
        tcp_flags_value: TCP_SYN,
        len_min: 54,
        len_max: 60,
        dport_min: 80,
        dport_max: 80,
        ttl_min: 0,
        ttl_max: 255,
        reason: ReasonCode::Detection as u32,
        ..SigRule::default()
    }
}

#[test]
fn a_signature_rule_drops_matching_packets_from_any_source_and_spares_the_rest() {
    if !root_or_skip("a_signature_rule_drops_matching_packets_from_any_source_and_spares_the_rest")
    {
        return;
    }
    let pins = TestPins::new("sig");
    let dp = pins.load();
    let id = dp.program_id().unwrap();
    let mut maps = pins.maps();
    let view = maps.add_signature(syn_rule(), None).unwrap();
    assert_eq!((view.slot, view.rule.id), (0, 1));
    assert_eq!(maps.config().unwrap().sig_slots, 1);

    // Spoofed SYNs from anywhere: dropped.
    for src in [[198, 51, 100, 7], [10, 9, 8, 7], [1, 2, 3, 4]] {
        let f = tcp_frame(src, VICTIM, TCP_SYN, b"");
        assert_eq!(f.len(), 54);
        assert_eq!(
            run(&maps, id, &f, 1),
            (XDP_DROP, only(Outcome::SignatureDropped, 1))
        );
    }
    // A real client's SYN carries options (here: 20 more bytes), an ACK has
    // other flags, and another host is not the rule's destination.
    let spared = [
        tcp_frame([198, 51, 100, 7], VICTIM, TCP_SYN, &[0u8; 20]),
        tcp_frame([198, 51, 100, 7], VICTIM, TCP_ACK, b""),
        tcp_frame([198, 51, 100, 7], [203, 0, 113, 11], TCP_SYN, b""),
        udp_frame([198, 51, 100, 7], b""),
    ];
    for f in &spared {
        assert_eq!(run(&maps, id, f, 1), (XDP_PASS, only(Outcome::Passed, 1)));
    }
    let v = &maps.signatures().unwrap()[0];
    assert_eq!((v.matched, v.dropped, v.exempted), (3, 3, 0));

    // Known-good sources pass a rule that exempts them.
    let mut exempting = syn_rule();
    exempting.flags = sig_flags::EXEMPT_KNOWN_GOOD;
    let refreshed = maps.add_signature(exempting, None).unwrap();
    assert_eq!(refreshed.rule.id, 1, "same match fields: replaced in place");
    maps.vouch(IpAddr::from([198, 51, 100, 7])).unwrap();
    let good = tcp_frame([198, 51, 100, 7], VICTIM, TCP_SYN, b"");
    assert_eq!(
        run(&maps, id, &good, 2),
        (XDP_PASS, only(Outcome::Passed, 2))
    );
    let spoofed = tcp_frame([198, 51, 100, 8], VICTIM, TCP_SYN, b"");
    assert_eq!(
        run(&maps, id, &spoofed, 1),
        (XDP_DROP, only(Outcome::SignatureDropped, 1))
    );
    let v = &maps.signatures().unwrap()[0];
    assert_eq!((v.matched, v.dropped, v.exempted), (6, 4, 2));
    assert_eq!(maps.known_good().unwrap()[0].entry.exempted, 2);

    // Allowlisted sources never meet a signature rule; dry-run counts only.
    maps.allow(&p("198.51.100.8/32")).unwrap();
    assert_eq!(
        run(&maps, id, &spoofed, 1),
        (XDP_PASS, only(Outcome::Allowlisted, 1))
    );
    maps.set_dry_run(true).unwrap();
    let other = tcp_frame([198, 51, 100, 9], VICTIM, TCP_SYN, b"");
    assert_eq!(
        run(&maps, id, &other, 1),
        (XDP_PASS, only(Outcome::SignatureDropped, 1))
    );
    maps.set_dry_run(false).unwrap();

    // Removed: the slot is free and the walk is off.
    maps.remove_signature(1).unwrap();
    assert_eq!(maps.config().unwrap().sig_slots, 0);
    assert_eq!(
        run(&maps, id, &other, 1),
        (XDP_PASS, only(Outcome::Passed, 1))
    );
    assert!(matches!(
        maps.remove_signature(1),
        Err(DataplaneError::NotFound { .. })
    ));
}

#[test]
fn a_rate_limit_rule_lets_its_rate_through_and_payload_prefixes_match() {
    if !root_or_skip("a_rate_limit_rule_lets_its_rate_through_and_payload_prefixes_match") {
        return;
    }
    let pins = TestPins::new("sigrate");
    let dp = pins.load();
    let id = dp.program_id().unwrap();
    let mut maps = pins.maps();
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&VICTIM);
    let mut payload = [0u8; 8];
    payload[..5].copy_from_slice(b"FLOOD");
    let rule = SigRule {
        family: 4,
        dst_addr: dst,
        dst_prefix_len: 24,
        protocol: IPPROTO_UDP,
        len_max: u16::MAX,
        dport_max: u16::MAX,
        ttl_max: 255,
        payload,
        payload_len: 5,
        rate_pps: 10,
        ..SigRule::default()
    };
    maps.add_signature(rule, None).unwrap();
    // 200 packets in well under a second: a 10 packets/s rule with a
    // one-packet burst lets at most a couple through.
    let flood = udp_frame([192, 0, 2, 99], b"FLOOD-0123456789");
    let (ret, d) = run(&maps, id, &flood, 200);
    assert_eq!(ret, XDP_DROP);
    assert_eq!(d[0] + d[5], 200, "{d:?}");
    assert!(d[0] >= 1 && d[0] <= 3, "passed {d:?}");
    // Other payloads are not the rule's.
    let benign = udp_frame([192, 0, 2, 99], b"query-0123456789");
    assert_eq!(
        run(&maps, id, &benign, 5),
        (XDP_PASS, only(Outcome::Passed, 5))
    );
    // A payload shorter than the prefix does not match.
    let short = udp_frame([192, 0, 2, 99], b"FLO");
    assert_eq!(
        run(&maps, id, &short, 1),
        (XDP_PASS, only(Outcome::Passed, 1))
    );

    // An expired rule no longer applies, and pruning frees its slot.
    maps.remove_signature(1).unwrap();
    maps.add_signature(rule, Some(Duration::from_secs(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        run(&maps, id, &flood, 3),
        (XDP_PASS, only(Outcome::Passed, 3))
    );
    assert_eq!(maps.prune_expired_signatures().unwrap(), 1);
    assert!(maps.signatures().unwrap().is_empty());
}

#[test]
fn signature_slots_are_bounded_and_bad_rules_change_nothing() {
    if !root_or_skip("signature_slots_are_bounded_and_bad_rules_change_nothing") {
        return;
    }
    let pins = TestPins::new("sigfull");
    let _dp = pins.load();
    let mut maps = pins.maps();
    let mut bad = syn_rule();
    bad.len_min = 61;
    let e = maps.add_signature(bad, None).unwrap_err();
    assert!(e.to_string().contains("invalid len"), "{e}");
    assert!(maps.signatures().unwrap().is_empty());
    assert_eq!(maps.config().unwrap().sig_slots, 0);
    for port in 0..capacity::SIG_SLOTS as u16 {
        let mut r = syn_rule();
        (r.dport_min, r.dport_max) = (port, port);
        maps.add_signature(r, None).unwrap();
    }
    assert_eq!(maps.config().unwrap().sig_slots, capacity::SIG_SLOTS);
    let mut r = syn_rule();
    (r.dport_min, r.dport_max) = (9999, 9999);
    let e = maps.add_signature(r, None).unwrap_err();
    assert!(matches!(e, DataplaneError::MapFull { .. }), "{e}");
    assert_eq!(
        maps.signatures().unwrap().len(),
        capacity::SIG_SLOTS as usize
    );
    // Freeing the last slot shrinks the walk; a middle one leaves a hole
    // that the next rule fills.
    maps.remove_signature(capacity::SIG_SLOTS).unwrap();
    assert_eq!(maps.config().unwrap().sig_slots, capacity::SIG_SLOTS - 1);
    maps.remove_signature(10).unwrap();
    let v = maps.add_signature(r, None).unwrap();
    assert_eq!(v.slot, 9);
    // Ids follow the highest installed one.
    assert_eq!(v.rule.id, capacity::SIG_SLOTS);
}
