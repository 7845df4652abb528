//! Schema v6's `server_errors`: of the protected side's answers to a
//! source, the HTTP responses with a 4xx or 5xx status, counted in a run
//! of their own beside the answer run: it lasts while errors keep coming,
//! reads 0 once 60 s pass without one, and never outlives the answers.
use phantomnet_common::{
    IPPROTO_TCP, PacketSample, SAMPLE_PAYLOAD_LEN, TCP_ACK, TCP_PSH, sample_flags,
};

use super::replies::{NS, SERVER, ack, v4};
use crate::flow::{FlowConfig, FlowTable, WindowStats};

/// The server's segment to `192.0.2.<dst>` whose payload starts with
/// `text`, cut to the sample's prefix as the data plane cuts it.
fn answer(dst: u8, ts: u64, text: &str) -> PacketSample {
    let mut payload = [0; SAMPLE_PAYLOAD_LEN];
    let n = text.len().min(SAMPLE_PAYLOAD_LEN);
    payload[..n].copy_from_slice(&text.as_bytes()[..n]);
    PacketSample {
        timestamp_ns: ts,
        packet_len: 54 + text.len() as u32,
        src_addr: v4(SERVER),
        dst_addr: v4([192, 0, 2, dst]),
        src_port: 80,
        dst_port: 40000,
        payload_len: text.len() as u16,
        payload_valid: n as u8,
        payload,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_ACK | TCP_PSH,
        flags: sample_flags::REPLY,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

const DENIED: &str =
    "HTTP/1.1 401 Unauthorized\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n";
const OK: &str =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n";
const MISSING: &str = "HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\n\r\n";

/// (`server_answers`, `server_errors`) of `192.0.2.<src>` as of `at`.
fn side(t: &FlowTable, src: u8, at: u64) -> (f64, f64) {
    let stats = t.with_server_side(&ack(src, at), at, WindowStats::default());
    (stats.server_answers, stats.server_errors)
}

#[test]
fn error_responses_count_apart_from_the_other_answers() {
    let mut t = FlowTable::new(FlowConfig::default());
    t.record(&ack(1, NS));
    t.record(&ack(2, NS));
    // A guesser: every answer a 401, and the ACKs between carry no status.
    for i in 0..6 {
        t.record_reply(&answer(1, NS + i * NS / 10, DENIED));
        t.record_reply(&answer(1, NS + i * NS / 10 + 1, ""));
    }
    // A health checker: 200s, one stray 404 (its icon).
    for i in 0..6 {
        t.record_reply(&answer(2, NS + i * NS / 10, OK));
    }
    t.record_reply(&answer(2, 2 * NS, MISSING));
    // A body segment that happens to hold a status line is no response.
    t.record_reply(&answer(2, 2 * NS + 1, "<pre>HTTP/1.1 500 x</pre>"));
    assert_eq!(side(&t, 1, 3 * NS), (12.0, 6.0));
    assert_eq!(side(&t, 2, 3 * NS), (8.0, 1.0));
    // The detector's path reads the same as `with_server_side`.
    let (_, stats) = t.observe(&ack(1, 3 * NS));
    assert_eq!((stats.server_answers, stats.server_errors), (12.0, 6.0));
}

#[test]
fn the_error_run_ends_on_its_own_and_with_the_answers() {
    let mut t = FlowTable::new(FlowConfig::default());
    t.record(&ack(1, NS));
    t.record_reply(&answer(1, NS, DENIED));
    t.record_reply(&answer(1, 2 * NS, DENIED));
    // 200s every 20 s for 25 min: the answers run on, the errors end 60 s
    // after the last 401 and never read live again, though the run's 7-bit
    // stamp wraps after 21 min.
    for k in 1..=75u64 {
        let at = 2 * NS + k * 20 * NS;
        t.record_reply(&answer(1, at, OK));
        let (answers, errors) = side(&t, 1, at);
        assert_eq!(answers, (k + 2) as f64);
        assert_eq!(errors, if k < 3 { 2.0 } else { 0.0 }, "at {k}");
    }
    // A new error starts a new run of 1.
    let at = 2 * NS + 1520 * NS;
    t.record_reply(&answer(1, at, MISSING));
    assert_eq!(side(&t, 1, at).1, 1.0);
    // Answers stop: both runs read 0 once 60 s pass (runs end by 10 s
    // generations: 50 to 60 s after the latest), then start afresh.
    assert_eq!(side(&t, 1, at + 45 * NS), (78.0, 1.0));
    assert_eq!(side(&t, 1, at + 60 * NS), (0.0, 0.0));
    t.record_reply(&answer(1, at + 61 * NS, OK));
    assert_eq!(side(&t, 1, at + 61 * NS), (1.0, 0.0));
}
