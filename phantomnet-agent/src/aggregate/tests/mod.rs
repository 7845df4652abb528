//! Synthetic sample streams and the scenarios of issue 11. Every stream is
//! built from a seeded RNG, so every run sees the same samples.

mod heavy_clients;
mod known_good;
pub(crate) mod lab_flood;
mod scenarios;
mod signature;

use std::net::{IpAddr, Ipv4Addr};

use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_PSH, TCP_SYN};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{AggregateConfig, AggregateDetector, AttackEvent};

pub(crate) const S: u64 = 1_000_000_000;
/// The data plane's sampling rate in every scenario.
pub(crate) const EVERY: u32 = 16;

pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub(crate) fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..4].copy_from_slice(&a);
    r
}

pub(crate) fn ip(raw: &[u8; 16]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
}

/// A random public-looking IPv4 source (what `--rand-source` sends).
pub(crate) fn random_src(r: &mut ChaCha8Rng) -> [u8; 16] {
    v4([
        r.random_range(1..224),
        r.random(),
        r.random(),
        r.random_range(1..255),
    ])
}

/// Who sent a sample, so tests can tell attack from benign afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Benign,
    Attack,
}

/// Samples of a traffic source at `pps` packets/s (so `pps / EVERY`
/// samples/s) in `[from, to)` seconds, at uniform random times.
pub(crate) fn at_rate(
    r: &mut ChaCha8Rng,
    from: f64,
    to: f64,
    pps: f64,
    origin: Origin,
    mut make: impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample,
) -> Vec<(PacketSample, Origin)> {
    let n = ((to - from) * pps / f64::from(EVERY)).round() as usize;
    (0..n)
        .map(|_| {
            let ts = ((from + r.random::<f64>() * (to - from)) * S as f64) as u64;
            (make(r, ts), origin)
        })
        .collect()
}

/// A TCP sample toward `dst:port`.
pub(crate) fn tcp(ts: u64, src: [u8; 16], dst: [u8; 4], port: u16) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        src_addr: src,
        dst_addr: v4(dst),
        src_port: 40_000,
        dst_port: port,
        family: 4,
        protocol: IPPROTO_TCP,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

/// Benign web clients: Linux/curl-like SYNs with options (74 bytes), then
/// data (PSH+ACK with payload) and pure ACKs with timestamps (66 bytes).
/// Each client keeps its own TTL (its OS's initial TTL less its hops).
pub(crate) fn web_client(
    clients: &[([u8; 16], u8)],
    port: u16,
    dst: [u8; 4],
) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    let clients = clients.to_vec();
    move |r, ts| {
        let (src, ttl) = clients[r.random_range(0..clients.len())];
        let mut s = tcp(ts, src, dst, port);
        s.src_port = r.random_range(32_768..61_000);
        s.ttl = ttl;
        match r.random_range(0..10) {
            0 => {
                s.tcp_flags = TCP_SYN;
                s.packet_len = 74;
            }
            1..=5 => {
                s.tcp_flags = TCP_ACK | TCP_PSH;
                let len = r.random_range(60..1400u16);
                s.payload_len = len;
                s.packet_len = 66 + u32::from(len);
                let text = b"GET /index.html HTTP/1.1\r\nHost: shop.example\r\n";
                s.payload[..text.len()].copy_from_slice(text);
                s.payload_valid = 64;
            }
            _ => {
                s.tcp_flags = TCP_ACK;
                s.packet_len = 66;
            }
        }
        s
    }
}

/// `n` benign clients in two documentation networks, each with a TTL a
/// real OS would arrive with.
pub(crate) fn clients(r: &mut ChaCha8Rng, n: usize) -> Vec<([u8; 16], u8)> {
    (0..n)
        .map(|i| {
            let net = if i % 2 == 0 {
                [198, 51, 100]
            } else {
                [203, 0, 113]
            };
            let src = v4([net[0], net[1], net[2], (i / 2 + 1) as u8]);
            let initial = [64u8, 128, 255][r.random_range(0..3)];
            (src, initial - r.random_range(2..20u8))
        })
        .collect()
}

/// hping3 `-S --flood --rand-source -p 80`: SYNs without options (54 bytes,
/// 60 once padded to the Ethernet minimum), TTL 64, a new source each time.
pub(crate) fn syn_flood(
    dst: [u8; 4],
    port: u16,
) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    move |r, ts| {
        let mut s = tcp(ts, random_src(r), dst, port);
        s.src_port = r.random();
        s.tcp_flags = TCP_SYN;
        s.packet_len = if r.random_bool(0.7) { 54 } else { 60 };
        s
    }
}

/// hping3 `-A --flood --rand-source`: bare ACKs, no payload.
pub(crate) fn ack_flood(
    dst: [u8; 4],
    port: u16,
) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    move |r, ts| {
        let mut s = syn_flood(dst, port)(r, ts);
        s.tcp_flags = TCP_ACK;
        s
    }
}

/// hping3 `--udp -d 512 --flood --rand-source`: fixed length, fixed payload.
pub(crate) fn udp_flood(
    dst: [u8; 4],
    port: u16,
) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    move |r, ts| udp(ts, random_src(r), dst, port, 512, Some(b'X'))
}

/// A UDP sample; `fill` = a constant payload byte, else random bytes.
pub(crate) fn udp(
    ts: u64,
    src: [u8; 16],
    dst: [u8; 4],
    port: u16,
    len: u16,
    fill: Option<u8>,
) -> PacketSample {
    let mut s = PacketSample {
        timestamp_ns: ts,
        src_addr: src,
        dst_addr: v4(dst),
        src_port: 53_000,
        dst_port: port,
        payload_len: len,
        packet_len: 42 + u32::from(len),
        family: 4,
        protocol: IPPROTO_UDP,
        ttl: 64,
        payload_valid: len.min(64) as u8,
        ..PacketSample::ZERO
    };
    let n = usize::from(len.min(64));
    match fill {
        Some(b) => s.payload[..n].fill(b),
        None => {
            for (i, byte) in s.payload[..n].iter_mut().enumerate() {
                *byte = (i as u8).wrapping_mul(31).wrapping_add(ts as u8);
            }
        }
    }
    s
}

/// DNS-like queries: random id, then the standard-query header.
pub(crate) fn dns_client(
    clients: &[([u8; 16], u8)],
    dst: [u8; 4],
) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    let clients = clients.to_vec();
    move |r, ts| {
        let (src, ttl) = clients[r.random_range(0..clients.len())];
        let len = r.random_range(28..60u16);
        let mut s = udp(ts, src, dst, 53, len, None);
        s.ttl = ttl;
        s.payload[..2].copy_from_slice(&r.random::<[u8; 2]>());
        s.payload[2..6].copy_from_slice(&[0x01, 0x00, 0x00, 0x01]);
        s
    }
}

/// Merges streams in time order.
pub(crate) fn merge(parts: Vec<Vec<(PacketSample, Origin)>>) -> Vec<(PacketSample, Origin)> {
    let mut all: Vec<_> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(s, _)| s.timestamp_ns);
    all
}

/// Runs a stream through a default detector; returns each event with the
/// sample time at which it came out.
pub(crate) fn run(
    stream: &[(PacketSample, Origin)],
) -> (AggregateDetector, Vec<(u64, AttackEvent)>) {
    let mut d = AggregateDetector::new(AggregateConfig::default());
    let mut out = Vec::new();
    let mut events = Vec::new();
    for (s, _) in stream {
        d.process(s, EVERY, &mut events);
        out.extend(events.drain(..).map(|e| (s.timestamp_ns, e)));
    }
    if let Some((last, _)) = stream.last() {
        d.advance(last.timestamp_ns + 60 * S, &mut events);
        out.extend(events.drain(..).map(|e| (last.timestamp_ns + 60 * S, e)));
    }
    (d, out)
}

pub(crate) fn started(events: &[(u64, AttackEvent)]) -> Vec<(u64, &super::AttackReport)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            AttackEvent::Started(r) => Some((*t, r)),
            _ => None,
        })
        .collect()
}

#[test]
fn bytes_per_entry_are_what_the_docs_say() {
    // docs/DETECTION.md ("Aggregate detection", memory) quotes these figures.
    use super::KnownGood;
    let cfg = AggregateConfig::default();
    let key = std::hint::black_box(AggregateDetector::BYTES_PER_KEY);
    let host = AggregateDetector::bytes_per_host(cfg.baseline_reservoir);
    let attack = AggregateDetector::bytes_per_attack(cfg.attack_reservoir);
    let (cand, known) = (KnownGood::BYTES_PER_CANDIDATE, KnownGood::BYTES_PER_KNOWN);
    println!("key {key} host {host} attack {attack} candidate {cand} known {known}");
    assert!((300..=360).contains(&key), "{key}");
    assert!((4_000..=7_000).contains(&host), "{host}");
    assert!((9_000..=13_000).contains(&attack), "{attack}");
    assert!(
        (100..=200).contains(&cand) && (100..=200).contains(&known),
        "{cand} {known}"
    );
}
