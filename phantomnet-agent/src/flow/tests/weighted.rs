//! Horvitz–Thompson weights: a priority sample (taken with probability 1)
//! stands for one packet, a 1-in-N sample for N.
use phantomnet_common::{
    IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_SYN, sample_flags::PRIORITY,
};

use crate::flow::SourceWindows;

const NS: u64 = 1_000_000_000;

fn pkt(ts_ns: u64, len: u32, proto: u8, tcp_flags: u8, flags: u8) -> PacketSample {
    PacketSample {
        timestamp_ns: ts_ns,
        packet_len: len,
        src_addr: [192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_port: 80,
        family: 4,
        protocol: proto,
        tcp_flags,
        flags,
        ..PacketSample::ZERO
    }
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

#[test]
fn a_priority_sample_counts_one_packet_and_a_uniform_one_n() {
    let (mut p, mut u) = (SourceWindows::new(), SourceWindows::new());
    for i in 0..10u64 {
        let t = 100 * NS + i * NS / 10;
        p.record(&pkt(t, 60, IPPROTO_TCP, TCP_SYN, PRIORITY), 16);
        u.record(&pkt(t, 60, IPPROTO_TCP, TCP_SYN, 0), 16);
    }
    let (sp, su) = (p.stats(16), u.stats(16));
    assert!(same_bits(sp.event_rate_1m * 16.0, su.event_rate_1m));
    assert!(same_bits(sp.burst_rate_10s * 16.0, su.burst_rate_10s));
    // Gaps divide by the later sample's weight: 0.1 s between priority
    // samples is 0.1 s between packets; between 1-in-16 samples, 1/160 s.
    assert!((sp.inter_arrival_mean - 0.1).abs() < 1e-6, "{sp:?}");
    assert!((su.inter_arrival_mean - 0.1 / 16.0).abs() < 1e-7, "{su:?}");
    assert_eq!(sp.syn_ratio, 1.0);
}

#[test]
fn syn_ratio_rate_and_size_variance_are_weighted() {
    let mut w = SourceWindows::new();
    let t0 = 200 * NS;
    // One second of a download's ACK stream seen 1 in 16 (60 samples of
    // 1,000 bytes: 960 packets) and 4 SYNs seen with priority.
    for i in 0..60u64 {
        w.record(&pkt(t0 + i * NS / 60, 1000, IPPROTO_TCP, TCP_ACK, 0), 16);
    }
    for i in 0..4u64 {
        w.record(
            &pkt(t0 + i * NS / 4, 60, IPPROTO_TCP, TCP_SYN, PRIORITY),
            16,
        );
    }
    let s = w.stats(16);
    let packets = 60.0 * 16.0 + 4.0;
    assert!(
        (s.syn_ratio - 4.0 / packets).abs() < 1e-15,
        "{}",
        s.syn_ratio
    );
    let mean = (60.0 * 16.0 * 1000.0 + 4.0 * 60.0) / packets;
    let var = (60.0 * 16.0 * 1e6 + 4.0 * 3600.0) / packets - mean * mean;
    assert!(
        (s.packet_size_variance - var).abs() < 1e-6,
        "{} vs {var}",
        s.packet_size_variance
    );
    // Unweighted, the 4 SYNs would be 6% of the TCP samples and the
    // variance 4 times larger.
    assert!(s.syn_ratio < 0.005);
    // The window spans 55 s plus the time into the current 5 s slot (the
    // last sample is 59/60 s after t0, a multiple of 5 s).
    let span = 55.0 + 59.0 / 60.0;
    assert!(
        (s.event_rate_1m - packets / span).abs() < 1e-9,
        "{} vs {}",
        s.event_rate_1m,
        packets / span
    );
}

#[test]
fn at_one_in_one_the_priority_flag_changes_nothing() {
    let (mut a, mut b) = (SourceWindows::new(), SourceWindows::new());
    for i in 0..500u64 {
        let t = 300 * NS + i * i * NS / 997;
        let len = 60 + (i * 37 % 1400) as u32;
        let (proto, fl) = if i % 3 == 0 {
            (IPPROTO_UDP, 0)
        } else {
            (IPPROTO_TCP, if i % 5 == 0 { TCP_SYN } else { TCP_ACK })
        };
        let flag = if i % 2 == 0 { PRIORITY } else { 0 };
        a.record(&pkt(t, len, proto, fl, flag), 1);
        b.record(&pkt(t, len, proto, fl, 0), 1);
        let (sa, sb) = (a.stats(1), b.stats(1));
        for (x, y) in [
            (sa.event_rate_1m, sb.event_rate_1m),
            (sa.burst_rate_10s, sb.burst_rate_10s),
            (sa.inter_arrival_mean, sb.inter_arrival_mean),
            (sa.inter_arrival_std, sb.inter_arrival_std),
            (sa.syn_ratio, sb.syn_ratio),
            (sa.packet_size_variance, sb.packet_size_variance),
        ] {
            assert!(same_bits(x, y), "sample {i}: {sa:?} vs {sb:?}");
        }
    }
}

#[test]
fn uniform_samples_are_stored_the_same_whatever_n_they_were_drawn_at() {
    let (mut a, mut b) = (SourceWindows::new(), SourceWindows::new());
    for i in 0..300u64 {
        let s = pkt(
            400 * NS + i * NS / 7,
            100 + i as u32,
            IPPROTO_TCP,
            TCP_ACK,
            0,
        );
        a.record(&s, 1);
        b.record(&s, 16);
    }
    assert_eq!(a, b);
}
