//! Schema v3's `signature_hits`: the count of a source's samples whose
//! payload matched a signature, kept while matches keep coming and dropped
//! once 60 s pass without one.
use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, sample_flags};

use crate::flow::{FlowConfig, FlowTable};

const NS: u64 = 1_000_000_000;

fn sample(ts: u64, priority: bool) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        ifindex: 1,
        packet_len: 300,
        src_addr: [203, 0, 113, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        src_port: 40000,
        dst_port: 80,
        payload_len: 246,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_ACK,
        flags: if priority { sample_flags::PRIORITY } else { 0 },
        ttl: 64,
        ..PacketSample::ZERO
    }
}

fn hits(t: &mut FlowTable, ts: u64, priority: bool, matched: bool) -> f64 {
    let every = t.config().sample_every;
    let entry = t.record_matched(&sample(ts, priority), matched);
    entry.windows.stats_at(every, ts).signature_hits
}

#[test]
fn matches_count_from_either_stratum_and_only_when_matched() {
    let mut t = FlowTable::new(FlowConfig::default());
    assert_eq!(
        hits(&mut t, NS, true, true),
        1.0,
        "a priority sample's match counts"
    );
    assert_eq!(
        hits(&mut t, 2 * NS, false, false),
        1.0,
        "no match: unchanged"
    );
    // The first uniform sample restarts the rate windows, not the run.
    assert_eq!(hits(&mut t, 3 * NS, false, true), 2.0);
    assert_eq!(hits(&mut t, 3 * NS, true, true), 3.0);
    // A plain `record` never counts one.
    t.record(&sample(4 * NS, false));
    assert_eq!(hits(&mut t, 4 * NS, false, false), 3.0);
}

#[test]
fn a_run_lasts_while_matches_keep_coming_and_ends_60_s_after_the_last() {
    let mut t = FlowTable::new(FlowConfig::default());
    // One match every 40 s for 400 s: the run never lapses.
    for k in 0..10u64 {
        assert_eq!(hits(&mut t, k * 40 * NS, false, true), (k + 1) as f64);
    }
    // Traffic without matches: the run stands for under 60 s (six 10 s
    // generations after the last match's), then drops to 0.
    assert_eq!(hits(&mut t, 360 * NS + 45 * NS, false, false), 10.0);
    assert_eq!(hits(&mut t, 360 * NS + 70 * NS, false, false), 0.0);
    assert_eq!(hits(&mut t, 360 * NS + 75 * NS, false, true), 1.0);
}

#[test]
fn a_long_silence_clears_the_run_whatever_the_stamp_byte_says() {
    let mut t = FlowTable::new(FlowConfig::default());
    assert_eq!(hits(&mut t, 5 * NS, false, true), 1.0);
    // 2,560 s later the stamp's low byte is the same generation again: the
    // run must still have ended.
    assert_eq!(hits(&mut t, 5 * NS + 2_560 * NS, false, false), 0.0);
    let mut t = FlowTable::new(FlowConfig::default());
    assert_eq!(hits(&mut t, 5 * NS, true, true), 1.0);
    assert_eq!(hits(&mut t, 5 * NS + 2_560 * NS, true, false), 0.0);
}

#[test]
fn saturates_at_255() {
    let mut t = FlowTable::new(FlowConfig::default());
    for k in 0..300u64 {
        hits(&mut t, k * 1_000_000, false, true);
    }
    assert_eq!(hits(&mut t, 301 * 1_000_000, false, false), 255.0);
}
