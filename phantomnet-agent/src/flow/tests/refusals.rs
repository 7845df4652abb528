//! Schema v4's `server_refusals`: the protected side's refusals of a
//! source (`sample_flags::REPLY` samples, addressed *to* it), counted in a
//! run that lasts while they keep coming and reads 0 once 60 s pass
//! without one; kept in the flow table's link words, so it survives
//! moves in the recency list and is reset when the slot is reused.
use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_RST, sample_flags};

use super::replies::{NS, SERVER, ack, v4};
use crate::flow::{FlowConfig, FlowTable, SourceKey, WindowStats};

/// `server_refusals` of `s`'s source as of `at`.
fn refusals(t: &FlowTable, s: &PacketSample, at: u64) -> f64 {
    t.with_server_side(s, at, WindowStats::default())
        .server_refusals
}

/// The server's reset of `dst`.
fn rst(dst: u8, ts: u64) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        packet_len: 54,
        src_addr: v4(SERVER),
        dst_addr: v4([192, 0, 2, dst]),
        src_port: 80,
        dst_port: 40000,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_RST,
        flags: sample_flags::REPLY,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

#[test]
fn refusals_count_against_the_refused_source_only_if_it_is_tracked() {
    let mut t = FlowTable::new(FlowConfig::default());
    // Untracked: no entry is made for a refused address (resets to
    // spoofed addresses must not fill the table).
    assert!(!t.record_reply(&rst(1, NS)));
    assert_eq!(t.len(), 0);
    t.record(&ack(1, NS));
    t.record(&ack(2, NS));
    for i in 0..5 {
        assert!(t.record_reply(&rst(1, NS + i)));
    }
    assert_eq!(refusals(&t, &ack(1, 2 * NS), 2 * NS), 5.0);
    assert_eq!(refusals(&t, &ack(2, 2 * NS), 2 * NS), 0.0);
    // The server itself never becomes a source.
    assert_eq!(t.len(), 2);
    assert!(t.get(&SourceKey::from_raw(4, &v4(SERVER))).is_none());
    // `observe` reports it as of the sample's time.
    let (_, stats) = t.observe(&ack(1, 3 * NS));
    assert_eq!(stats.server_refusals, 5.0);
}

#[test]
fn a_run_lasts_while_refusals_come_and_ends_60_s_after_the_last() {
    let mut t = FlowTable::new(FlowConfig::default());
    t.record(&ack(1, NS));
    // One refusal every 30 s for 5 minutes: one run.
    for k in 0..10u64 {
        t.record_reply(&rst(1, NS + k * 30 * NS));
    }
    let last = NS + 9 * 30 * NS;
    assert_eq!(refusals(&t, &ack(1, last), last), 10.0);
    // Read 50 s later it still holds; 70 s later the run is over.
    assert_eq!(refusals(&t, &ack(1, 0), last + 50 * NS), 10.0);
    assert_eq!(refusals(&t, &ack(1, 0), last + 70 * NS), 0.0);
    // Long after (the stamp is the 10 s generation modulo 128): still 0
    // at 11 and 20 minutes.
    assert_eq!(refusals(&t, &ack(1, 0), last + 660 * NS), 0.0);
    assert_eq!(refusals(&t, &ack(1, 0), last + 1200 * NS), 0.0);
    // A new refusal after that starts a new run.
    t.record_reply(&rst(1, last + 70 * NS));
    assert_eq!(refusals(&t, &ack(1, 0), last + 70 * NS), 1.0);
    // The source's next sample after the run expired clears it, so 128
    // generations (21 min 20 s) later the stamp does not come round live.
    t.record(&ack(1, last + 200 * NS));
    assert_eq!(refusals(&t, &ack(1, 0), last + 70 * NS + 1280 * NS), 0.0);
}

#[test]
fn an_older_refusal_counts_without_moving_the_run_and_the_count_saturates() {
    let mut t = FlowTable::new(FlowConfig::default());
    t.record(&ack(1, NS));
    t.record_reply(&rst(1, 40 * NS));
    // Reordered across CPUs: 25 s older than the run's latest.
    t.record_reply(&rst(1, 15 * NS));
    assert_eq!(refusals(&t, &ack(1, 0), 40 * NS), 2.0);
    // The run's stamp stayed at 40 s: it still ends 60 s after that.
    assert_eq!(refusals(&t, &ack(1, 0), 95 * NS), 2.0);
    assert_eq!(refusals(&t, &ack(1, 0), 105 * NS), 0.0);
    for i in 0..1000 {
        t.record_reply(&rst(1, 200 * NS + i));
    }
    assert_eq!(refusals(&t, &ack(1, 0), 201 * NS), 255.0);
}

#[test]
fn the_run_survives_recency_moves_and_is_reset_when_the_slot_is_reused() {
    let mut t = FlowTable::new(FlowConfig {
        max_sources: 2,
        ..FlowConfig::default()
    });
    t.record(&ack(1, NS));
    t.record(&ack(2, NS));
    t.record_reply(&rst(1, NS));
    t.record_reply(&rst(2, NS));
    t.record_reply(&rst(2, NS));
    // Moving both to the front and back rewrites their links.
    t.record(&ack(1, 2 * NS));
    t.record(&ack(2, 2 * NS));
    t.record(&ack(1, 2 * NS));
    assert_eq!(refusals(&t, &ack(1, 0), 3 * NS), 1.0);
    assert_eq!(refusals(&t, &ack(2, 0), 3 * NS), 2.0);
    let order: Vec<_> = t.keys_by_recency().collect();
    assert_eq!(order.len(), 2);
    // Source 3 evicts source 2 (least recent) and takes its slot fresh.
    t.record(&ack(3, 3 * NS));
    assert_eq!(t.evictions(), 1);
    assert_eq!(refusals(&t, &ack(3, 0), 3 * NS), 0.0);
    assert_eq!(refusals(&t, &ack(2, 0), 3 * NS), 0.0);
    assert_eq!(refusals(&t, &ack(1, 0), 3 * NS), 1.0);
    assert_eq!(t.keys_by_recency().count(), 2);
}

#[test]
fn an_ipv6_refusal_counts_against_the_sources_prefix() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut a = ack(0, NS);
    a.family = 6;
    a.src_addr = "2001:db8:bad:1::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    a.dst_addr = "2001:db8:203::10"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    t.record(&a);
    let mut r = rst(0, NS);
    r.family = 6;
    r.src_addr = a.dst_addr;
    // Another address of the same /64.
    r.dst_addr = "2001:db8:bad:1::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert!(t.record_reply(&r));
    assert_eq!(refusals(&t, &a, NS), 1.0);
}
