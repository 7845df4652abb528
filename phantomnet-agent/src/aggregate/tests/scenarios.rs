//! The detection scenarios: floods are one attack each, found within a
//! second, with a signature that spares the benign clients; busy or
//! growing benign traffic is no attack; state stays bounded.

use std::net::IpAddr;

use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN};

use super::*;
use crate::aggregate::{AggregateKey, AttackEvent, KnownGood, KnownGoodConfig};
use crate::dataplane::Prefix;

const DST: [u8; 4] = [10, 0, 0, 2];

pub(super) fn service(port: u16, protocol: u8) -> AggregateKey {
    AggregateKey::Service {
        dst: IpAddr::from(DST),
        protocol,
        port,
    }
}

/// The one attack `events` started: on `key`, within 1 s of sample time
/// of a flood that begins at 30.5 s.
pub(super) fn the_flood_attack(
    events: &[(u64, AttackEvent)],
    key: AggregateKey,
) -> &super::super::AttackReport {
    let starts = started(events);
    assert_eq!(starts.len(), 1, "one attack: {starts:#?}");
    let (at, report) = starts[0];
    assert_eq!(report.key, key);
    assert!(
        at <= 31_500_000_000,
        "started at {at} ns, the flood at 30.5 s"
    );
    report
}

/// Runs `benign` for 0..90 s plus `flood` in 30.5..45 s and checks the
/// outcome the issue asks for: exactly one attack, keyed by `key`, started
/// within 1 s of sample time, whose signature matches ≥ 99 % of the flood
/// samples and none of the benign ones, and which ends after the flood.
fn one_flood(stream: Vec<(phantomnet_common::PacketSample, Origin)>, key: AggregateKey) {
    let (_, events) = run(&stream);
    let report = the_flood_attack(&events, key);
    let sig = report.signature.as_ref().expect("a signature");
    let (mut flood, mut flood_hit, mut benign_hit) = (0usize, 0usize, 0usize);
    for (s, origin) in &stream {
        match origin {
            Origin::Attack => {
                flood += 1;
                flood_hit += usize::from(sig.matches(s));
            }
            Origin::Benign => benign_hit += usize::from(sig.matches(s)),
        }
    }
    assert!(
        flood_hit as f64 >= 0.99 * flood as f64,
        "{sig}: {flood_hit} of {flood} flood samples"
    );
    assert_eq!(benign_hit, 0, "{sig} matches benign samples");
    let ended: Vec<_> = events
        .iter()
        .filter_map(|(t, e)| match e {
            AttackEvent::Ended(r) => Some((*t, r)),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    let (end_at, end) = ended[0];
    assert_eq!(end.id, report.id);
    assert!((55 * S..=60 * S).contains(&end_at), "ended at {end_at}");
    // Counts for the journal: ~10,000 pps for 14.5 s, nearly all sources new.
    assert!(
        (120_000..=160_000).contains(&end.est_packets),
        "{}",
        end.est_packets
    );
    assert!(
        end.est_distinct_sources >= 7_000,
        "{}",
        end.est_distinct_sources
    );
    assert!(end.last_ns >= 44 * S && end.first_ns >= 30 * S);
    println!("{sig}");
}

#[test]
fn spoofed_syn_flood_is_one_attack_with_a_signature_that_spares_clients() {
    let mut r = rng(1);
    let cl = clients(&mut r, 50);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            90.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(
            &mut r,
            0.0,
            90.0,
            100.0,
            Origin::Benign,
            web_client(&cl, 443, DST),
        ),
        at_rate(
            &mut r,
            30.5,
            45.0,
            10_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
    ]);
    one_flood(stream, service(80, IPPROTO_TCP));
}

#[test]
fn priority_samples_change_nothing_the_uniform_stratum_decides() {
    // The SYN flood scenario, plus a priority copy of every tenth SYN (as
    // the data plane adds on top of the 1-in-N draw): the same events, at
    // the same times, with the same volumes and signature.
    let mut r = rng(1);
    let cl = clients(&mut r, 50);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            90.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(
            &mut r,
            30.5,
            45.0,
            5_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
    ]);
    let mut with = Vec::with_capacity(stream.len() * 11 / 10);
    for (i, (s, o)) in stream.iter().enumerate() {
        with.push((*s, *o));
        if i % 10 == 0 && s.tcp_flags & TCP_SYN != 0 {
            let mut p = *s;
            p.flags |= phantomnet_common::sample_flags::PRIORITY;
            p.dst_port = 8443;
            with.push((p, *o));
        }
    }
    assert!(
        with.len() > stream.len() + 100,
        "{} {}",
        with.len(),
        stream.len()
    );
    let (d0, e0) = run(&stream);
    let (d1, e1) = run(&with);
    assert!(!started(&e0).is_empty());
    assert_eq!(e0, e1);
    assert_eq!(d0.stats(), d1.stats());
}

#[test]
fn spoofed_udp_flood_is_one_attack_with_a_length_and_payload_signature() {
    let mut r = rng(2);
    let cl = clients(&mut r, 40);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            90.0,
            300.0,
            Origin::Benign,
            dns_client(&cl, DST),
        ),
        at_rate(
            &mut r,
            0.0,
            90.0,
            200.0,
            Origin::Benign,
            web_client(&cl, 443, DST),
        ),
        at_rate(
            &mut r,
            30.5,
            45.0,
            10_000.0,
            Origin::Attack,
            udp_flood(DST, 53),
        ),
    ]);
    one_flood(stream, service(53, IPPROTO_UDP));
}

#[test]
fn spoofed_ack_flood_is_one_attack_with_a_signature_that_spares_clients() {
    let mut r = rng(3);
    let cl = clients(&mut r, 50);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            90.0,
            500.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(
            &mut r,
            30.5,
            45.0,
            10_000.0,
            Origin::Attack,
            ack_flood(DST, 80),
        ),
    ]);
    one_flood(stream, service(80, IPPROTO_TCP));
}

#[test]
fn syn_flood_signature_has_the_fields_that_tell_hping3_from_curl() {
    let mut r = rng(1);
    let cl = clients(&mut r, 50);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            60.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(
            &mut r,
            30.5,
            40.0,
            10_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
    ]);
    let (_, events) = run(&stream);
    let sig = started(&events)[0].1.signature.clone().unwrap();
    assert_eq!(sig.dst_port, Some((80, 80)));
    assert_eq!(sig.packet_len, Some((54, 60)), "{sig}");
    let (mask, value) = sig.tcp_flags.unwrap();
    assert_eq!(value, TCP_SYN);
    assert!(mask & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK, "{sig}");
    // Clients arrive with TTLs 44-253; the flood's 64 alone tells little, so
    // a TTL of 64 is either absent or exactly 64.
    assert!(sig.ttl.is_none() || sig.ttl == Some((64, 64)), "{sig}");
}

#[test]
fn a_busy_steady_service_is_not_an_attack() {
    let mut r = rng(4);
    let cl = clients(&mut r, 250);
    let stream = merge(vec![at_rate(
        &mut r,
        0.0,
        120.0,
        20_000.0,
        Origin::Benign,
        web_client(&cl, 443, [10, 0, 0, 3]),
    )]);
    let (d, events) = run(&stream);
    assert!(started(&events).is_empty(), "{events:#?}");
    let base = d
        .baseline_pps(&AggregateKey::Service {
            dst: IpAddr::from([10, 0, 0, 3]),
            protocol: IPPROTO_TCP,
            port: 443,
        })
        .unwrap();
    assert!((17_000.0..23_000.0).contains(&base), "baseline {base}");
}

#[test]
fn a_benign_rate_that_doubles_slowly_is_not_an_attack() {
    let mut r = rng(5);
    let cl = clients(&mut r, 250);
    // 4,000 pps rising to 8,000 over three minutes, in one-second steps.
    let parts = (0..180)
        .map(|sec| {
            let pps = 4_000.0 + 4_000.0 * f64::from(sec) / 180.0;
            let f = sec as f64;
            at_rate(
                &mut r,
                f,
                f + 1.0,
                pps,
                Origin::Benign,
                web_client(&cl, 80, DST),
            )
        })
        .collect();
    let (_, events) = run(&merge(parts));
    assert!(started(&events).is_empty(), "{events:#?}");
}

/// 50 real (non-spoofed) sources, each 200 pps, together 10,000 pps.
fn botnet(
    r: &mut ChaCha8Rng,
    sources: &[[u8; 16]],
) -> Vec<(phantomnet_common::PacketSample, Origin)> {
    let mut parts = Vec::new();
    for &src in sources {
        parts.push(at_rate(
            r,
            30.5,
            45.0,
            200.0,
            Origin::Attack,
            move |r, ts| {
                let mut s = tcp(ts, src, DST, 80);
                s.src_port = r.random();
                s.tcp_flags = TCP_SYN;
                s.packet_len = 60;
                s.ttl = 50;
                s
            },
        ));
    }
    merge(parts)
}

#[test]
fn a_distributed_flood_from_fifty_sources_is_one_attack() {
    let mut r = rng(6);
    let cl = clients(&mut r, 50);
    let bots: Vec<[u8; 16]> = (0..50).map(|_| random_src(&mut r)).collect();
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            70.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        botnet(&mut r, &bots),
    ]);
    let (_, events) = run(&stream);
    let starts = started(&events);
    assert_eq!(starts.len(), 1, "{starts:#?}");
    assert_eq!(starts[0].1.key, service(80, IPPROTO_TCP));
    let d = starts[0].1.est_distinct_sources;
    assert!((40..=60).contains(&d), "{d} distinct sources");
}

#[test]
fn fifty_sources_in_one_slash_24_are_a_source_prefix_aggregate() {
    let mut r = rng(7);
    let cl = clients(&mut r, 50);
    let bots: Vec<[u8; 16]> = (1..=50).map(|i| v4([192, 0, 2, i])).collect();
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            70.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        botnet(&mut r, &bots),
    ]);
    let (_, events) = run(&stream);
    let prefixes: Vec<_> = started(&events)
        .into_iter()
        .filter(|(_, r)| matches!(r.key, AggregateKey::SrcPrefix { .. }))
        .collect();
    assert_eq!(prefixes.len(), 1, "{prefixes:#?}");
    let expected = AggregateKey::SrcPrefix {
        prefix: "192.0.2.0/24".parse::<Prefix>().unwrap(),
    };
    assert_eq!(prefixes[0].1.key, expected);
    assert!(prefixes[0].0 <= 31_500_000_000);
    // A source-prefix attack has no destination to write a signature for.
    assert!(prefixes[0].1.signature.is_none());
}

#[test]
fn a_random_port_flood_is_one_host_attack() {
    let mut r = rng(8);
    let cl = clients(&mut r, 50);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            70.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(&mut r, 30.5, 45.0, 10_000.0, Origin::Attack, |r, ts| {
            let mut s = udp(ts, random_src(r), DST, 0, 100, Some(0));
            s.dst_port = r.random_range(1024..65535);
            s
        }),
    ]);
    let (_, events) = run(&stream);
    let starts = started(&events);
    assert_eq!(starts.len(), 1, "{starts:#?}");
    assert_eq!(
        starts[0].1.key,
        AggregateKey::Host {
            dst: IpAddr::from(DST),
            protocol: IPPROTO_UDP
        }
    );
    assert!(starts[0].0 <= 32 * S);
}

#[test]
fn a_million_spoofed_sources_keep_every_table_within_its_cap() {
    let cfg = AggregateConfig::default();
    let mut d = AggregateDetector::new(cfg.clone());
    let mut kg = KnownGood::new(KnownGoodConfig::default());
    let mut events = Vec::new();
    let mut r = rng(9);
    let cl = clients(&mut r, 50);
    let benign_key = service(443, IPPROTO_TCP);
    // 30 s of a benign service first, so it has a baseline to lose.
    let benign = merge(vec![at_rate(
        &mut r,
        0.0,
        30.0,
        400.0,
        Origin::Benign,
        web_client(&cl, 443, DST),
    )]);
    for (s, _) in benign {
        d.process(&s, EVERY, &mut events);
        kg.observe(&s);
    }
    let known_before = kg.len();
    let base = d.baseline_pps(&benign_key).unwrap();
    // 1,000,000 distinct sources (an odd multiplier is a bijection on u32),
    // UDP with payload so that each also lands in the known-good candidates.
    for i in 0..1_000_000u64 {
        let a = (i as u32)
            .wrapping_mul(0x9E37_79B1)
            .wrapping_add(0x0100_0000);
        let ts = 30 * S + i * 10_000; // 100,000 samples/s for 10 s
        let mut s = udp(ts, v4(a.to_be_bytes()), DST, 53, 512, Some(b'X'));
        s.dst_addr = v4([10, 0, (i % 7) as u8, 2]);
        d.process(&s, EVERY, &mut events);
        kg.observe(&s);
        if i % 100_000 == 0 {
            let st = d.stats();
            assert!(st.keys <= cfg.max_keys && st.hosts <= cfg.max_hosts);
            assert!(kg.candidates_len() <= KnownGoodConfig::default().max_candidates);
        }
    }
    let st = d.stats();
    println!("{st:?}");
    // One attack per flooded service, nothing on the benign one.
    let keys: Vec<_> = d.active_attacks().into_iter().map(|a| a.key).collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(!keys.contains(&benign_key));
    assert!(st.keys <= cfg.max_keys, "{}", st.keys);
    assert!(st.hosts <= cfg.max_hosts);
    assert!(st.active_attacks <= cfg.max_attacks);
    assert!(st.key_evictions > 900_000, "the source prefixes churned");
    assert_eq!(
        kg.len(),
        known_before,
        "no spoofed source became known-good"
    );
    assert!(kg.candidates_len() <= KnownGoodConfig::default().max_candidates);
    // The benign service's key was protected, not flushed by the churn.
    let after = d.baseline_pps(&benign_key).expect("baseline kept");
    assert!(after > 0.0 && after <= base * 1.01, "{base} → {after}");
}
