//! The sliding windows of one source (`flow/window.rs`): rates, gaps,
//! distinct counts, expiry, and schema v2's connection features.
use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_SYN};

use crate::flow::SourceWindows;

const NS: u64 = 1_000_000_000;

fn pkt(ts_ns: u64, len: u32, dst_last: u8, dport: u16, proto: u8, flags: u8) -> PacketSample {
    PacketSample {
        timestamp_ns: ts_ns,
        ifindex: 1,
        packet_len: len,
        src_addr: [192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: [198, 51, 100, dst_last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        src_port: 40000,
        dst_port: dport,
        family: 4,
        protocol: proto,
        tcp_flags: flags,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

#[test]
fn steady_rate_is_measured_and_scaled_by_sampling() {
    let mut w = SourceWindows::new();
    // 10 packets/s for 120 s, starting at t = 1000 s.
    let start = 1000 * NS;
    for i in 0..1200u64 {
        w.record(&pkt(start + i * NS / 10, 100, 1, 80, IPPROTO_UDP, 0));
    }
    let s = w.stats(1);
    assert!((s.event_rate_1m - 10.0).abs() < 0.3, "{}", s.event_rate_1m);
    assert!(
        (s.burst_rate_10s - 10.0).abs() < 0.3,
        "{}",
        s.burst_rate_10s
    );
    // Gap sums are f32 (docs/FEATURES.md): 1e-6 relative, not 1e-9.
    assert!((s.inter_arrival_mean - 0.1).abs() < 1e-7);
    assert!(s.inter_arrival_std < 1e-6);
    assert_eq!(s.packet_size_variance, 0.0);
    assert_eq!(s.unique_dst_ips, 1.0);
    assert_eq!(s.unique_dst_ports, 1.0);
    assert_eq!(s.syn_ratio, 0.0);
    let s8 = w.stats(8);
    assert!((s8.event_rate_1m - 80.0).abs() < 2.4);
    assert!((s8.inter_arrival_mean - 0.1 / 8.0).abs() < 1e-8);
}

#[test]
fn burst_window_forgets_after_ten_seconds_and_long_window_after_sixty() {
    let mut w = SourceWindows::new();
    let t0 = 500 * NS;
    for i in 0..100u64 {
        w.record(&pkt(t0 + i * NS / 100, 60, 1, 80, IPPROTO_TCP, TCP_SYN));
    }
    let hot = w.stats(1);
    assert!(hot.burst_rate_10s > 9.0, "{}", hot.burst_rate_10s);
    assert_eq!(hot.syn_ratio, 1.0);
    // One packet 20 s later: the burst has left the 10 s window, not the 60 s one.
    w.record(&pkt(t0 + 20 * NS, 60, 1, 80, IPPROTO_TCP, TCP_ACK));
    let later = w.stats(1);
    assert!(later.burst_rate_10s < 0.2, "{}", later.burst_rate_10s);
    assert!(later.event_rate_1m > 1.5, "{}", later.event_rate_1m);
    assert!((later.syn_ratio - 100.0 / 101.0).abs() < 1e-12);
    // 70 s after that: everything old is gone.
    w.record(&pkt(t0 + 90 * NS, 60, 2, 443, IPPROTO_UDP, 0));
    let cold = w.stats(1);
    assert!(cold.event_rate_1m < 0.02);
    assert_eq!(cold.syn_ratio, 0.0);
    assert_eq!(cold.unique_dst_ips, 1.0);
    assert_eq!(cold.unique_dst_ports, 1.0);
    assert!((cold.inter_arrival_mean - 70.0).abs() < 1e-5);
}

#[test]
fn scans_raise_distinct_counts_and_size_variance() {
    let mut w = SourceWindows::new();
    for i in 0..50u64 {
        let len = if i % 2 == 0 { 60 } else { 1500 };
        w.record(&pkt(
            NS * 10 + i * NS / 10,
            len,
            i as u8,
            1000 + i as u16,
            IPPROTO_TCP,
            TCP_SYN,
        ));
    }
    let s = w.stats(1);
    assert!(
        (45.0..=56.0).contains(&s.unique_dst_ips),
        "{}",
        s.unique_dst_ips
    );
    assert!(
        (45.0..=56.0).contains(&s.unique_dst_ports),
        "{}",
        s.unique_dst_ports
    );
    assert!((s.packet_size_variance - 720.0 * 720.0).abs() < 1.0);
}

#[test]
fn connection_features_tell_a_download_from_a_syn_flood() {
    use phantomnet_common::{TCP_FIN, TCP_RST};
    let t0 = 1000 * NS;
    // A download's client: one SYN, then 999 pure ACKs, 1 ms apart.
    let mut dl = SourceWindows::new();
    dl.record(&pkt(t0, 74, 1, 80, IPPROTO_TCP, TCP_SYN));
    for i in 1..1000u64 {
        dl.record(&pkt(t0 + i * NS / 1000, 66, 1, 80, IPPROTO_TCP, TCP_ACK));
    }
    let s = dl.stats(1);
    assert_eq!(s.ack_only_share, 1.0);
    assert_eq!((s.payload_share, s.rst_share, s.fin_share), (0.0, 0.0, 0.0));
    assert_eq!(s.packets_per_conn, 1000.0);
    assert_eq!(s.bytes_per_conn, 74.0 + 999.0 * 66.0);
    assert!(
        (s.new_conn_rate - 1.0 / 55.999).abs() < 1e-6,
        "{}",
        s.new_conn_rate
    );
    // A SYN flood: every packet a new connection, then the kernel's RSTs.
    let mut flood = SourceWindows::new();
    for i in 0..600u64 {
        let flags = if i % 2 == 0 { TCP_SYN } else { TCP_RST };
        flood.record(&pkt(t0 + i * NS / 300, 54, 1, 80, IPPROTO_TCP, flags));
    }
    let s = flood.stats(1);
    assert_eq!(s.packets_per_conn, 2.0);
    assert!(
        (s.new_conn_rate - 300.0 / 56.0).abs() < 0.1,
        "{}",
        s.new_conn_rate
    );
    assert!((s.rst_share - 0.5).abs() < 0.05, "{}", s.rst_share);
    assert_eq!((s.ack_only_share, s.payload_share), (0.0, 0.0));
    // The first 32 samples' shares are their exact mean (to 1/255).
    let mut w = SourceWindows::new();
    for i in 0..8u64 {
        let mut p = pkt(t0 + i * NS, 200, 1, 80, IPPROTO_TCP, TCP_ACK | TCP_FIN);
        p.payload_len = if i < 2 { 100 } else { 0 };
        w.record(&p);
    }
    let s = w.stats(1);
    assert!(
        (s.payload_share - 0.25).abs() <= 1.0 / 255.0,
        "{}",
        s.payload_share
    );
    assert_eq!(s.fin_share, 1.0);
    assert_eq!(s.ack_only_share, 0.0, "a FIN is not a pure ACK");
    // A source silent for over a minute starts over.
    let mut p = pkt(t0 + 100 * NS, 60, 1, 53, IPPROTO_UDP, 0);
    p.payload_len = 32;
    w.record(&p);
    let s = w.stats(1);
    assert_eq!((s.payload_share, s.fin_share), (1.0, 0.0));
    assert_eq!((s.new_conn_rate, s.packets_per_conn), (0.0, 1.0));
}

#[test]
fn reordered_timestamps_count_as_now() {
    let mut w = SourceWindows::new();
    w.record(&pkt(100 * NS, 60, 1, 80, IPPROTO_UDP, 0));
    w.record(&pkt(99 * NS, 60, 1, 80, IPPROTO_UDP, 0));
    assert_eq!(w.last_ns(), 100 * NS);
    let s = w.stats(1);
    assert_eq!(s.inter_arrival_mean, 0.0);
    assert!(s.burst_rate_10s > 0.0);
}
