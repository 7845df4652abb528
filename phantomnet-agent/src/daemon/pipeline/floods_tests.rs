//! The flood pipeline against synthetic sample streams, through a
//! recorder in place of the executor.

use super::*;
use crate::aggregate::tests::{
    EVERY, Origin, at_rate, clients, ip, merge, rng, syn_flood, web_client,
};

/// Records what the pipeline asked of the executor.
#[derive(Default)]
struct Recorder {
    dry_run: bool,
    /// The known-good map refuses writes.
    vouch_fails: bool,
    /// Every signature slot taken.
    full: bool,
    vouched: Vec<IpAddr>,
    added: Vec<SignatureRequest>,
    removed: Vec<u32>,
}

impl FloodActions for Recorder {
    fn dry_run(&self) -> bool {
        self.dry_run
    }
    fn vouch(&mut self, sources: &[IpAddr]) -> Result<usize, EnforceError> {
        if self.vouch_fails {
            return Err(EnforceError::Dataplane(DataplaneError::MapFull {
                map: phantomnet_common::maps::SIG_RULES,
                capacity: 64,
            }));
        }
        self.vouched.extend_from_slice(sources);
        Ok(sources.len())
    }
    fn add_signature(&mut self, req: &SignatureRequest) -> Result<u32, EnforceError> {
        if self.full {
            return Err(EnforceError::Dataplane(DataplaneError::MapFull {
                map: phantomnet_common::maps::SIG_RULES,
                capacity: 64,
            }));
        }
        self.added.push(req.clone());
        Ok(7)
    }
    fn remove_signature(&mut self, id: u32) -> Result<(), EnforceError> {
        self.removed.push(id);
        Ok(())
    }
}

const DST: [u8; 4] = [10, 0, 0, 2];

/// 60 s of web clients; a spoofed SYN flood at 10,000 packets/s from
/// 30 to 40 s.
fn flood_among_clients() -> (Vec<(PacketSample, Origin)>, Vec<IpAddr>) {
    let mut r = rng(11);
    let cl = clients(&mut r, 40);
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
    let benign = cl.iter().map(|(a, _)| ip(a)).collect();
    (stream, benign)
}

/// The first rule a fresh `Floods` installs for `stream`.
fn first_rule(stream: &[(PacketSample, Origin)]) -> Option<SignatureRequest> {
    let mut floods = Floods::default();
    let mut rec = Recorder::default();
    drive(&mut floods, &mut rec, stream);
    rec.added.into_iter().next()
}

fn drive(
    floods: &mut Floods,
    rec: &mut Recorder,
    stream: &[(PacketSample, Origin)],
) -> Vec<NewEvent> {
    let mut records = Vec::new();
    // Batches as the ring buffer delivers them.
    for chunk in stream.chunks(64) {
        for (s, _) in chunk {
            floods.observe(s, EVERY);
        }
        records.extend(floods.act(rec));
    }
    records
}

#[test]
fn a_spoofed_flood_is_one_drop_rule_that_spares_the_clients_and_goes_when_it_ends() {
    let (stream, benign) = flood_among_clients();
    let mut floods = Floods::default();
    let mut rec = Recorder::default();
    let records = drive(&mut floods, &mut rec, &stream);

    // One rule, a synthesized drop that exempts known-good sources and
    // matches the flood's samples but no client's.
    let first = rec.added.first().expect("a rule was installed");
    assert_eq!((first.rate_pps, first.exempt_known_good), (0, true));
    assert_eq!(first.ttl, Some(RULE_TTL));
    assert!(
        rec.added.iter().all(|a| a.signature == first.signature),
        "refreshes only"
    );
    let sig = &first.signature;
    let (mut flood, mut caught, mut clients_caught) = (0, 0, 0);
    for (s, o) in &stream {
        match o {
            Origin::Attack => {
                flood += 1;
                caught += usize::from(sig.matches(s));
            }
            Origin::Benign => clients_caught += usize::from(sig.matches(s)),
        }
    }
    assert!(caught * 100 >= flood * 99, "{caught} of {flood}: {sig}");
    assert_eq!(clients_caught, 0, "{sig}");
    // Clients seen before the flood were vouched for; no spoofed source.
    assert!(!rec.vouched.is_empty());
    assert!(
        rec.vouched.iter().all(|a| benign.contains(a)),
        "{:?}",
        rec.vouched
    );
    // Removed when the attack ended; one record at each end.
    assert_eq!(rec.removed, vec![7]);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(
        records[0].reason.contains("signature rule 7"),
        "{}",
        records[0].reason
    );
    assert_eq!(records[0].action, EventAction::Apply(Action::Block));
    assert!(
        records[1].reason.contains("removed"),
        "{}",
        records[1].reason
    );
    assert_eq!(floods.active(), 0);
}

#[test]
fn full_signature_slots_are_counted_journaled_and_change_nothing() {
    let (stream, _) = flood_among_clients();
    let mut floods = Floods::default();
    let mut rec = Recorder {
        full: true,
        ..Recorder::default()
    };
    let records = drive(&mut floods, &mut rec, &stream);
    assert!(rec.added.is_empty() && rec.removed.is_empty());
    assert_eq!(floods.take_full(), vec![phantomnet_common::maps::SIG_RULES]);
    assert!(floods.take_full().is_empty(), "taken once");
    assert!(
        records[0].reason.contains("failed"),
        "{}",
        records[0].reason
    );
    assert_eq!(records[0].action, EventAction::Apply(Action::Log));
}

#[test]
fn dry_run_journals_what_it_would_install_and_writes_nothing() {
    let (stream, _) = flood_among_clients();
    let mut floods = Floods::default();
    let mut rec = Recorder {
        dry_run: true,
        ..Recorder::default()
    };
    let records = drive(&mut floods, &mut rec, &stream);
    assert!(rec.added.is_empty() && rec.vouched.is_empty() && rec.removed.is_empty());
    assert!(
        records[0].reason.contains("dry-run: would install"),
        "{}",
        records[0].reason
    );
}

#[test]
fn a_flood_on_an_unlearned_target_rate_limits_the_target() {
    // No baseline: the flood starts with the agent.
    let mut r = rng(12);
    let stream = merge(vec![at_rate(
        &mut r,
        0.0,
        20.0,
        10_000.0,
        Origin::Attack,
        syn_flood(DST, 80),
    )]);
    let mut floods = Floods::default();
    let mut rec = Recorder::default();
    drive(&mut floods, &mut rec, &stream);
    let Some(first) = rec.added.first() else {
        // The detector's warm-up may hold a flood that starts with it;
        // then nothing may be installed at all, and nothing was.
        assert!(rec.vouched.is_empty());
        return;
    };
    if first.rate_pps != 0 {
        let s = &first.signature;
        assert_eq!(
            (s.dst, s.dst_port, s.protocol),
            (
                ip(&crate::aggregate::tests::v4(DST)),
                Some((80, 80)),
                Some(6)
            )
        );
        assert!(s.tcp_flags.is_none() && s.packet_len.is_none());
    }
}
/// A bulk transfer bursting while the flood runs puts far more of the
/// target's normal traffic among the attack's samples than its average
/// rate says; the signature must still be found (it once fell back to
/// a rate limit, as the demo showed).
#[test]
fn a_flood_during_a_bulk_burst_still_gets_a_signature() {
    use phantomnet_common::{TCP_ACK, TCP_PSH};
    let mut r = rng(13);
    let cl = clients(&mut r, 40);
    let bulk_src = cl[0].0;
    let bulk = |r: &mut rand_chacha::ChaCha8Rng, ts: u64| {
        let mut s = crate::aggregate::tests::tcp(ts, bulk_src, DST, 80);
        s.src_port = 45_000;
        s.tcp_flags = TCP_ACK | TCP_PSH;
        s.packet_len = 1514;
        s.payload_len = 1448;
        s.ttl = cl[0].1;
        let _ = r;
        s
    };
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            60.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(&mut r, 5.0, 12.0, 40_000.0, Origin::Benign, bulk),
        at_rate(&mut r, 30.0, 38.0, 40_000.0, Origin::Benign, bulk),
        at_rate(
            &mut r,
            30.5,
            36.0,
            100_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
    ]);
    let first = first_rule(&stream).expect("a rule");
    assert_eq!(first.rate_pps, 0, "{}", first.signature);
    for (s, o) in &stream {
        if *o == Origin::Benign {
            assert!(
                !first.signature.matches(s),
                "{} matches a client",
                first.signature
            );
        }
    }
}

/// A single-source SYN flood earlier (the per-source path throttled it:
/// its later samples carry THROTTLE) must not stay in the baseline, or
/// a later spoofed SYN flood's signature would be refused for matching
/// "normal" traffic (the demo showed it).
#[test]
fn an_attack_the_per_source_path_handled_leaves_the_baseline() {
    let mut r = rng(14);
    let cl = clients(&mut r, 40);
    let attacker = crate::aggregate::tests::v4([192, 0, 2, 12]);
    let single = move |r: &mut rand_chacha::ChaCha8Rng, ts: u64| {
        let mut s = syn_flood(DST, 80)(r, ts);
        s.src_addr = attacker;
        // Throttled 20 ms after it started.
        if ts > 10_020_000_000 {
            s.action = phantomnet_common::action::THROTTLE;
        }
        s
    };
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            60.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(&mut r, 10.0, 15.0, 300.0, Origin::Benign, single),
        at_rate(
            &mut r,
            40.5,
            48.0,
            10_000.0,
            Origin::Attack,
            syn_flood(DST, 80),
        ),
    ]);
    let first = first_rule(&stream).expect("a rule");
    assert_eq!(first.rate_pps, 0, "{}", first.signature);
    assert_eq!(first.signature.packet_len, Some((54, 60)));
}

/// A botnet whose members start one by one crosses the threshold only
/// after its first packets were admitted into the baseline as normal;
/// its signature must still be found (the lab's distributed flood of
/// 50 hping3 processes showed it).
#[test]
fn a_botnet_that_ramps_up_still_gets_a_signature() {
    let mut r = rng(15);
    let cl = clients(&mut r, 5);
    let mut parts = vec![at_rate(
        &mut r,
        0.0,
        60.0,
        120.0,
        Origin::Benign,
        web_client(&cl, 80, DST),
    )];
    // 100 packets/s each, one more every 0.2 s: the 1,000 packets/s
    // floor is crossed only two seconds in.
    for i in 0..50u8 {
        let bot = crate::aggregate::tests::v4([192, 0, 2, 100 + i]);
        let start = 30.0 + f64::from(i) * 0.2;
        parts.push(at_rate(
            &mut r,
            start,
            45.0,
            100.0,
            Origin::Attack,
            move |r, ts| {
                let mut s = syn_flood(DST, 80)(r, ts);
                s.src_addr = bot;
                s
            },
        ));
    }
    let stream = merge(parts);
    let first = first_rule(&stream).expect("a rule");
    assert_eq!(first.rate_pps, 0, "{}", first.signature);
    assert_eq!(first.signature.packet_len, Some((54, 60)));
}

/// The detector recognises a flood when its first tick completes; a
/// flood that starts on a tick boundary fills that whole tick, which
/// must not reach the baseline its signature is checked against (it
/// once did, and such floods got only a rate limit).
#[test]
fn a_flood_starting_on_any_offset_in_a_tick_gets_a_signature() {
    for off in [30.0f64, 30.25, 30.5, 30.9, 31.0, 47.0] {
        let mut r = rng(11);
        let cl = clients(&mut r, 40);
        let stream = merge(vec![
            at_rate(
                &mut r,
                0.0,
                70.0,
                400.0,
                Origin::Benign,
                web_client(&cl, 80, DST),
            ),
            at_rate(
                &mut r,
                off,
                off + 10.0,
                10_000.0,
                Origin::Attack,
                syn_flood(DST, 80),
            ),
        ]);
        let mut floods = Floods::default();
        let mut rec = Recorder::default();
        drive(&mut floods, &mut rec, &stream);
        let first = rec
            .added
            .first()
            .unwrap_or_else(|| panic!("{off}: no rule"));
        assert_eq!(first.rate_pps, 0, "{off}: {}", first.signature);
        assert_eq!(first.signature.packet_len, Some((54, 60)), "{off}");
        assert!(first.signature.tcp_flags.is_some(), "{off}");
    }
}

/// The lab's distributed flood 3 s after its clients started: too few
/// baseline samples to check a signature against. The attack's own traits
/// are dropped, with the clients (their handshakes seen in priority
/// samples) vouched for and exempt; the journal says what the rule rests
/// on. If they cannot be vouched for, the target is rate-limited instead.
#[test]
fn a_thin_baseline_drops_the_attacks_traits_only_with_the_clients_exempt() {
    use crate::aggregate::tests::lab_flood::{lab_bot, lab_clients};
    let mut r = rng(16);
    let dns = at_rate(&mut r, 0.0, 30.0, 160.0, Origin::Benign, |r, ts| {
        let src = crate::aggregate::tests::v4([198, 51, 100, 30]);
        let _ = r;
        crate::aggregate::tests::udp(ts, src, [203, 0, 113, 53], 53, 40, None)
    });
    // The clients' requests, as the data plane's priority samples (first
    // payloads): what the known-good tracker sees of their handshakes.
    let requests = at_rate(&mut r, 4.0, 30.0, 480.0, Origin::Benign, |r, ts| {
        let src = crate::aggregate::tests::v4([198, 51, 100, 20 + (ts % 5) as u8]);
        let mut s = crate::aggregate::tests::tcp(ts, src, [203, 0, 113, 10], 80);
        s.src_port = rand::Rng::random_range(r, 32_768..61_000);
        s.tcp_flags = phantomnet_common::TCP_ACK | phantomnet_common::TCP_PSH;
        s.packet_len = 211;
        s.payload_len = 145;
        s.flags = phantomnet_common::sample_flags::PRIORITY;
        s
    });
    let mut parts = vec![dns, requests, lab_clients(&mut r, 4.0, 30.0)];
    for i in 0..50 {
        parts.push(lab_bot(&mut r, i, 7.0, 14.0));
    }
    let stream = merge(parts);

    let mut floods = Floods::default();
    let mut rec = Recorder::default();
    let records = drive(&mut floods, &mut rec, &stream);
    let first = rec.added.first().expect("a rule");
    assert_eq!(first.rate_pps, 0, "{}", first.signature);
    assert_eq!(
        first.signature.packet_len,
        Some((54, 54)),
        "{}",
        first.signature
    );
    let mut clients: Vec<IpAddr> = rec.vouched.clone();
    clients.sort();
    clients.dedup();
    assert_eq!(clients.len(), 5, "{clients:?}");
    assert!(
        records[0].reason.contains("own traits"),
        "{}",
        records[0].reason
    );

    let mut floods = Floods::default();
    let mut rec = Recorder {
        vouch_fails: true,
        ..Recorder::default()
    };
    drive(&mut floods, &mut rec, &stream);
    let first = rec.added.first().expect("a rule");
    assert_ne!(first.rate_pps, 0, "{}", first.signature);
    let s = &first.signature;
    assert!(s.tcp_flags.is_none() && s.packet_len.is_none(), "{s}");
    assert!(
        rec.added.iter().all(|a| a.rate_pps != 0),
        "no upgrade to the traits without the exemption"
    );
}

#[test]
fn the_inside_observers_refusals_are_never_counted_as_traffic() {
    // The same flood, but as REPLY samples (what the inside observer
    // writes): the protected side's packets, not traffic to it.
    let (stream, _) = flood_among_clients();
    let replies: Vec<(PacketSample, Origin)> = stream
        .iter()
        .map(|(s, o)| {
            let mut r = *s;
            r.flags |= phantomnet_common::sample_flags::REPLY;
            (r, *o)
        })
        .collect();
    let mut floods = Floods::default();
    let mut rec = Recorder::default();
    let records = drive(&mut floods, &mut rec, &replies);
    assert!(rec.added.is_empty(), "{:?}", rec.added.first());
    assert!(rec.vouched.is_empty());
    assert!(records.is_empty());
    // The very same samples without the flag do install the rule.
    assert!(first_rule(&stream).is_some());
}
