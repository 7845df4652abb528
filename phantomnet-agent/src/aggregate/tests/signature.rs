//! Signature text form, `matches` per field, and synthesis refusing to cut
//! normal clients.

use std::net::IpAddr;

use phantomnet_common::{
    IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN,
};

use super::*;
use crate::aggregate::signature::SigSample;
use crate::aggregate::synth::{Scope, synthesize};
use crate::aggregate::{Signature, SignatureBasis, SynthConfig};

fn sig() -> Signature {
    Signature {
        family: 4,
        dst: IpAddr::from([10, 0, 0, 2]),
        dst_prefix_len: 32,
        protocol: Some(IPPROTO_TCP),
        tcp_flags: Some((TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN, TCP_SYN)),
        ttl: Some((40, 70)),
        packet_len: Some((54, 60)),
        dst_port: Some((80, 80)),
        payload_prefix: None,
    }
}

#[test]
fn display_is_the_compact_form_and_parses_back() {
    let s = sig();
    assert_eq!(
        s.to_string(),
        "tcp dst 10.0.0.2/32 dport 80 flags SYN/FIN+SYN+RST+ACK ttl 40-70 len 54-60"
    );
    let forms = [
        s.clone(),
        Signature {
            family: 6,
            dst: "2001:db8::".parse().unwrap(),
            dst_prefix_len: 64,
            protocol: Some(IPPROTO_UDP),
            tcp_flags: None,
            ttl: Some((64, 64)),
            packet_len: Some((554, 554)),
            dst_port: Some((1000, 2000)),
            payload_prefix: Some(b"XXXXXXXX".to_vec()),
        },
        Signature {
            protocol: None,
            tcp_flags: None,
            ttl: None,
            packet_len: None,
            dst_port: None,
            dst: IpAddr::from([10, 0, 0, 0]),
            dst_prefix_len: 24,
            ..s.clone()
        },
        Signature {
            protocol: Some(47),
            tcp_flags: None,
            ..s.clone()
        },
        Signature {
            tcp_flags: Some((TCP_ACK | TCP_SYN, 0)),
            ..s.clone()
        },
    ];
    for f in forms {
        let text = f.to_string();
        assert_eq!(text.parse::<Signature>(), Ok(f), "{text}");
    }
    // The operator's order and spelling need not be the display's.
    let typed: Signature =
        "TCP dst 10.0.0.2 len 54-60 ttl 40-70 flags syn/syn+ack+rst+fin dport 80"
            .parse()
            .unwrap();
    assert_eq!(typed, sig());
    let hex: Signature = "tcp dst 10.0.0.2/32 flags 0x02/0x17".parse().unwrap();
    assert_eq!(hex.tcp_flags, Some((0x17, 0x02)));
}

#[test]
fn bad_tokens_are_named() {
    let cases = [
        ("", ""),
        ("gre dst 10.0.0.2", "gre"),
        ("tcp to 10.0.0.2", "to"),
        ("tcp", "tcp"),
        ("tcp dst 10.0.0.300", "10.0.0.300"),
        ("tcp dst 10.0.0.2/24", "10.0.0.2/24"),
        ("tcp dst 10.0.0.2 dport 90000", "90000"),
        ("tcp dst 10.0.0.2 dport 90-80", "90-80"),
        ("tcp dst 10.0.0.2 ttl 300", "300"),
        ("tcp dst 10.0.0.2 len", "len"),
        ("tcp dst 10.0.0.2 flags SYN", "SYN"),
        ("tcp dst 10.0.0.2 flags SYN/BOGUS", "SYN/BOGUS"),
        ("tcp dst 10.0.0.2 flags SYN/ACK", "SYN/ACK"),
        ("udp dst 10.0.0.2 flags SYN/SYN", "flags"),
        ("tcp dst 10.0.0.2 payload 123", "123"),
        ("tcp dst 10.0.0.2 payload zz", "zz"),
        (
            "tcp dst 10.0.0.2 payload 001122334455667788",
            "001122334455667788",
        ),
        ("tcp dst 10.0.0.2 ttl 5 ttl 6", "ttl"),
        ("tcp dst 10.0.0.2 sport 80", "sport"),
    ];
    for (text, token) in cases {
        let err = text.parse::<Signature>().expect_err(text);
        assert_eq!(err.token, token, "{text}: {err}");
        assert!(err.to_string().contains(&format!("`{token}`")), "{err}");
    }
}

fn packet() -> PacketSample {
    let mut s = tcp(0, v4([192, 0, 2, 1]), [10, 0, 0, 2], 80);
    s.tcp_flags = TCP_SYN;
    s.packet_len = 54;
    s.ttl = 64;
    s
}

/// A named change to a packet.
type Change = (&'static str, fn(&mut PacketSample));

#[test]
fn matches_checks_each_field() {
    let s = sig();
    assert!(s.matches(&packet()));
    let miss: [Change; 9] = [
        ("other host", |p| p.dst_addr = v4([10, 0, 0, 3])),
        ("ipv6", |p| p.family = 6),
        ("udp", |p| p.protocol = IPPROTO_UDP),
        ("SYN+ACK", |p| p.tcp_flags = TCP_SYN | TCP_ACK),
        ("no SYN", |p| p.tcp_flags = 0),
        ("ttl 39", |p| p.ttl = 39),
        ("ttl 71", |p| p.ttl = 71),
        ("len 61", |p| p.packet_len = 61),
        ("port 81", |p| p.dst_port = 81),
    ];
    for (what, change) in miss {
        let mut p = packet();
        change(&mut p);
        assert!(!s.matches(&p), "{what}");
    }
    let hit: [Change; 5] = [
        ("flags outside the mask", |p| {
            p.tcp_flags = TCP_SYN | 0x08 | 0x40
        }),
        ("ttl 40", |p| p.ttl = 40),
        ("ttl 70", |p| p.ttl = 70),
        ("len 60", |p| p.packet_len = 60),
        ("garbage after the IPv4 address", |p| p.dst_addr[12] = 9),
    ];
    for (what, change) in hit {
        let mut p = packet();
        change(&mut p);
        assert!(s.matches(&p), "{what}");
    }
    // A frame longer than u16 never falls in a u16 range.
    let mut p = packet();
    p.packet_len = 65_536 + 54;
    assert!(!s.matches(&p));
    // Prefix destinations, payload prefixes, "any".
    let mut wide = sig();
    wide.dst = IpAddr::from([10, 0, 0, 0]);
    wide.dst_prefix_len = 24;
    wide.protocol = None;
    wide.tcp_flags = None;
    wide.payload_prefix = Some(b"GET ".to_vec());
    let mut p = packet();
    p.dst_addr = v4([10, 0, 0, 200]);
    assert!(!wide.matches(&p), "no payload");
    p.payload[..4].copy_from_slice(b"GET ");
    p.payload_valid = 3;
    assert!(!wide.matches(&p), "payload shorter than the prefix");
    p.payload_valid = 4;
    assert!(wide.matches(&p));
    p.protocol = IPPROTO_UDP;
    assert!(wide.matches(&p), "any protocol");
    p.dst_addr = v4([10, 0, 1, 200]);
    assert!(!wide.matches(&p), "outside the /24");
}

fn scope() -> Scope {
    Scope {
        family: 4,
        dst: IpAddr::from([10, 0, 0, 2]),
        prefix_len: 32,
        protocol: IPPROTO_TCP,
        port: Some(80),
    }
}

#[test]
fn no_signature_when_the_attack_looks_like_the_clients() {
    // An HTTP flood from real stacks: the same packets as the clients'.
    let mut r = rng(10);
    let cl = clients(&mut r, 50);
    let mut gen_ = web_client(&cl, 80, [10, 0, 0, 2]);
    let baseline: Vec<SigSample> = (0..128).map(|i| SigSample::of(&gen_(&mut r, i))).collect();
    let attack: Vec<SigSample> = (0..256).map(|i| SigSample::of(&gen_(&mut r, i))).collect();
    assert_eq!(
        synthesize(scope(), &attack, &baseline, 0.0, &SynthConfig::default()),
        None
    );
}

#[test]
fn a_thin_baseline_gives_the_attacks_traits_that_spare_what_it_has() {
    let mut r = rng(11);
    let mut flood = syn_flood([10, 0, 0, 2], 80);
    let attack: Vec<SigSample> = (0..256).map(|i| SigSample::of(&flood(&mut r, i))).collect();
    let cl = clients(&mut r, 5);
    let mut web = web_client(&cl, 80, [10, 0, 0, 2]);
    let few: Vec<SigSample> = (0..10).map(|i| SigSample::of(&web(&mut r, i))).collect();
    let cfg = SynthConfig::default();
    assert_eq!(
        SignatureBasis::of(few.len(), &cfg),
        SignatureBasis::AttackTraits
    );
    // Too few baseline samples to prove a field discriminates: every field
    // tight in the attack, none matching the samples there are.
    let thin = synthesize(scope(), &attack, &few, 0.0, &cfg).expect("the attack's traits");
    assert_eq!(
        thin.to_string(),
        "tcp dst 10.0.0.2/32 dport 80 flags SYN/SYN+PSH+ACK ttl 64 len 54-60"
    );
    assert!(few.iter().all(|s| !thin.matches_sig(s)));
    // No baseline at all: the same traits, with every flag bit the
    // attack agrees on (none can be shown common among clients).
    let none = synthesize(scope(), &attack, &[], 0.0, &cfg).expect("the attack's traits");
    assert_eq!((none.ttl, none.packet_len), (thin.ttl, thin.packet_len));
    assert_eq!(none.tcp_flags, Some((0xff, TCP_SYN)));
    // One of the few samples shaped like the flood: whatever is left
    // matches none of them.
    let mut poisoned = few.clone();
    poisoned.push(attack[0]);
    let p = synthesize(scope(), &attack, &poisoned, 0.0, &cfg).expect("a narrower signature");
    assert!(poisoned.iter().all(|s| !p.matches_sig(s)), "{p}");
    // A flood shaped like the clients has no trait of its own: nothing
    // narrower than the target, so no signature (the caller rate-limits).
    let like: Vec<SigSample> = (0..256).map(|i| SigSample::of(&web(&mut r, i))).collect();
    assert_eq!(synthesize(scope(), &like, &[], 0.0, &cfg), None);
    let enough: Vec<SigSample> = (0..64).map(|i| SigSample::of(&web(&mut r, i))).collect();
    assert_eq!(
        SignatureBasis::of(enough.len(), &cfg),
        SignatureBasis::Baseline
    );
    assert!(synthesize(scope(), &attack, &enough, 0.0, &cfg).is_some());
    assert_eq!(synthesize(scope(), &attack[..10], &enough, 0.0, &cfg), None);
}

#[test]
fn a_field_that_does_not_discriminate_is_left_out() {
    // Flood and clients both at TTL 64 and both bare SYNs: only the length
    // tells them apart, so it is the only field.
    let mut r = rng(12);
    let mut flood = syn_flood([10, 0, 0, 2], 80);
    let attack: Vec<SigSample> = (0..256).map(|i| SigSample::of(&flood(&mut r, i))).collect();
    let baseline: Vec<SigSample> = (0..128)
        .map(|i| {
            let mut s = flood(&mut r, i);
            s.packet_len = 74;
            SigSample::of(&s)
        })
        .collect();
    let sig = synthesize(scope(), &attack, &baseline, 0.0, &SynthConfig::default()).unwrap();
    assert_eq!(sig.to_string(), "tcp dst 10.0.0.2/32 dport 80 len 54-60");
}
