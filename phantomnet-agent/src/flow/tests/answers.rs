//! Schema v5's `server_answers`: the protected side's answers to a source
//! (`sample_flags::REPLY` samples of established TCP segments and UDP
//! datagrams, addressed *to* it), counted in a run that lasts while they
//! keep coming and reads 0 once 60 s pass without one; kept in a table of
//! their own, capped, for tracked sources only.
use phantomnet_common::{
    IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, sample_flags,
};

use super::replies::{NS, SERVER, ack, v4};
use crate::flow::{FlowConfig, FlowTable, MAX_ANSWERED, WindowStats};

/// The server's packet to `dst` with `flags`, as the inside observer
/// samples it.
fn reply(dst: u8, ts: u64, flags: u8) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        packet_len: 1514,
        src_addr: v4(SERVER),
        dst_addr: v4([192, 0, 2, dst]),
        src_port: 80,
        dst_port: 40000,
        payload_len: 1448,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: flags,
        flags: sample_flags::REPLY,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

fn data(dst: u8, ts: u64) -> PacketSample {
    reply(dst, ts, TCP_ACK | TCP_PSH)
}

/// (`server_refusals`, `server_answers`) of `s`'s source as of `at`.
fn side(t: &FlowTable, s: &PacketSample, at: u64) -> (f64, f64) {
    let stats = t.with_server_side(s, at, WindowStats::default());
    (stats.server_refusals, stats.server_answers)
}

#[test]
fn answers_count_against_the_answered_source_only_if_it_is_tracked() {
    let mut t = FlowTable::new(FlowConfig::default());
    assert!(!t.record_reply(&data(1, NS)), "untracked: not counted");
    assert_eq!(t.answered(), 0, "and no entry made");
    t.record(&ack(1, NS));
    t.record(&ack(2, NS));
    for i in 0..4 {
        assert!(t.record_reply(&data(1, NS + i)));
    }
    let mut dns = data(1, NS + 5);
    dns.protocol = IPPROTO_UDP;
    dns.tcp_flags = 0;
    assert!(t.record_reply(&dns), "a UDP datagram is an answer");
    // A SYN-ACK is neither an answer nor a refusal; a reset is a refusal.
    assert!(!t.record_reply(&reply(1, NS + 6, TCP_SYN | TCP_ACK)));
    assert!(t.record_reply(&reply(1, NS + 7, TCP_RST)));
    assert_eq!(side(&t, &ack(1, 2 * NS), 2 * NS), (1.0, 5.0));
    assert_eq!(side(&t, &ack(2, 2 * NS), 2 * NS), (0.0, 0.0));
    assert_eq!(t.answered(), 1);
    // A sample that is not the inside observer's is not a reply.
    let mut outside = data(2, NS);
    outside.flags = 0;
    assert!(!t.record_reply(&outside));
}

#[test]
fn a_run_lasts_while_answers_come_and_a_stale_one_never_reads_live() {
    let mut t = FlowTable::new(FlowConfig::default());
    t.record(&ack(1, NS));
    // An answer every 30 s for 5 min: one run of 11.
    for k in 0..=10 {
        t.record_reply(&data(1, NS + k * 30 * NS));
    }
    let last = NS + 300 * NS;
    assert_eq!(side(&t, &ack(1, 0), last).1, 11.0);
    assert_eq!(side(&t, &ack(1, 0), last + 50 * NS).1, 11.0);
    assert_eq!(side(&t, &ack(1, 0), last + 70 * NS).1, 0.0);
    // 128 generations (21 min 20 s) on, the 7-bit stamp comes round, and
    // no sample of the source came in between: still 0.
    assert_eq!(side(&t, &ack(1, 0), last + 1280 * NS).1, 0.0);
    // An answer then starts a new run.
    t.record_reply(&data(1, last + 1280 * NS));
    assert_eq!(side(&t, &ack(1, 0), last + 1280 * NS).1, 1.0);
    // Reordered across CPUs: an older answer counts without ending it.
    t.record_reply(&data(1, last + 1270 * NS));
    assert_eq!(side(&t, &ack(1, 0), last + 1280 * NS).1, 2.0);
    for i in 0..1000 {
        t.record_reply(&data(1, last + 1281 * NS + i));
    }
    assert_eq!(side(&t, &ack(1, 0), last + 1282 * NS).1, 255.0);
}

#[test]
fn the_answers_table_is_capped_least_recently_answered_first_out() {
    let mut t = FlowTable::new(FlowConfig {
        max_sources: 3,
        ..FlowConfig::default()
    });
    for src in 1..=3 {
        t.record(&ack(src, NS));
        t.record_reply(&data(src, NS));
    }
    assert_eq!(t.answered(), 3);
    // Source 4 evicts source 1 from the flow table; its answer evicts the
    // least recently answered entry (source 1's) from the answers table.
    t.record(&ack(4, 2 * NS));
    t.record_reply(&data(4, 2 * NS));
    assert_eq!(t.answered(), 3);
    assert_eq!(side(&t, &ack(4, 0), 2 * NS).1, 1.0);
    assert_eq!(side(&t, &ack(2, 0), 2 * NS).1, 1.0);
    assert_eq!(side(&t, &ack(1, 0), 2 * NS).1, 0.0);
    // The default cap.
    assert_eq!(
        FlowTable::new(FlowConfig::default()).answered_cap(),
        MAX_ANSWERED
    );
}

#[test]
fn an_ipv6_answer_counts_against_the_sources_prefix() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut a = ack(0, NS);
    a.family = 6;
    a.src_addr = "2001:db8:bad:1::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    t.record(&a);
    let mut r = data(0, NS);
    r.family = 6;
    r.src_addr = "2001:db8:203::10"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    // Another address of the same /64.
    r.dst_addr = "2001:db8:bad:1::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert!(t.record_reply(&r));
    assert_eq!(side(&t, &a, NS), (0.0, 1.0));
}
