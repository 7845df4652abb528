//! Known-good sources: the benign clients of a flooded service are
//! exempt, the spoofed sources never are, and the tables stay bounded.

use std::collections::HashSet;
use std::net::IpAddr;

use phantomnet_common::TCP_SYN;

use super::*;
use crate::aggregate::{KnownGood, KnownGoodConfig};

const DST: [u8; 4] = [10, 0, 0, 2];

#[test]
fn benign_clients_are_exempt_and_spoofed_sources_are_not() {
    let mut r = rng(21);
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
            45.0,
            10_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
        at_rate(&mut r, 30.5, 45.0, 2_000.0, Origin::Attack, |r, ts| {
            // Spoofed packets with ACK and payload: the kind that would qualify.
            let mut s = tcp(ts, random_src(r), DST, 80);
            s.tcp_flags = phantomnet_common::TCP_ACK;
            s.payload_len = 100;
            s.packet_len = 166;
            s
        }),
    ]);
    let mut kg = KnownGood::new(KnownGoodConfig::default());
    for (s, _) in &stream {
        kg.observe(s);
    }
    let (_, events) = run(&stream);
    let report = started(&events)[0].1.clone();
    let sig = report.signature.clone().unwrap();
    let exempt: HashSet<IpAddr> = kg
        .exemptions_for(&sig, report.first_ns, 10_000)
        .into_iter()
        .collect();
    let benign: HashSet<IpAddr> = cl.iter().map(|(src, _)| ip(src)).collect();
    let attackers: HashSet<IpAddr> = stream
        .iter()
        .filter(|(_, o)| *o == Origin::Attack)
        .map(|(s, _)| ip(&s.src_addr))
        .collect();
    assert!(
        exempt.is_subset(&benign),
        "{:?}",
        exempt.difference(&benign)
    );
    assert!(exempt.is_disjoint(&attackers));
    // Each client sent ~18 data samples in the 30 s before the flood.
    assert_eq!(
        exempt.len(),
        benign.len(),
        "{} of {}",
        exempt.len(),
        benign.len()
    );
    // Sources confirmed only after the attack began are not exempt from it.
    assert!(kg.exemptions_for(&sig, 1, 10_000).is_empty());
    // Nor are they exempt from a rule on another destination.
    let mut other = sig.clone();
    other.dst = IpAddr::from([10, 0, 0, 9]);
    assert!(
        kg.exemptions_for(&other, report.first_ns, 10_000)
            .is_empty()
    );
}

#[test]
fn syn_and_bare_ack_floods_never_touch_the_candidates() {
    let mut r = rng(22);
    let mut kg = KnownGood::new(KnownGoodConfig::default());
    let mut flood = syn_flood(DST, 80);
    for i in 0..10_000 {
        let mut s = flood(&mut r, i * 1_000_000);
        kg.observe(&s);
        s.tcp_flags = phantomnet_common::TCP_ACK;
        kg.observe(&s);
        s.tcp_flags = TCP_SYN | phantomnet_common::TCP_ACK;
        s.payload_len = 10;
        kg.observe(&s);
    }
    assert_eq!(kg.candidates_len(), 0);
    assert!(kg.is_empty());
}

#[test]
fn a_client_needs_three_samples_over_a_second_and_the_caps_hold() {
    let cfg = KnownGoodConfig {
        max_candidates: 100,
        max_known: 10,
        ..KnownGoodConfig::default()
    };
    let mut kg = KnownGood::new(cfg);
    let data = |src: u8, ts: u64| {
        let mut s = tcp(ts, v4([198, 51, 100, src]), DST, 80);
        s.tcp_flags = phantomnet_common::TCP_ACK | phantomnet_common::TCP_PSH;
        s.payload_len = 200;
        s
    };
    kg.observe(&data(1, 0));
    kg.observe(&data(1, 100));
    kg.observe(&data(1, 200));
    assert!(
        !kg.is_known(IpAddr::from([198, 51, 100, 1])),
        "three samples within 200 ns"
    );
    kg.observe(&data(1, S));
    assert!(kg.is_known(IpAddr::from([198, 51, 100, 1])));
    for src in 2..=60 {
        for k in 0..3 {
            kg.observe(&data(src, k * S));
        }
    }
    assert_eq!(kg.len(), 10, "capped");
    assert!(kg.candidates_len() <= 100);
    // The most recent are kept.
    assert!(kg.is_known(IpAddr::from([198, 51, 100, 60])));
    assert!(!kg.is_known(IpAddr::from([198, 51, 100, 1])));
}
