//! Priority samples (`sample_flags::PRIORITY`) in the flow windows: rates,
//! the SYN ratio, size variance and gaps are the uniform stratum's alone;
//! priority samples add only distinct destinations.
use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK, TCP_SYN, sample_flags};

use crate::flow::{FlowConfig, FlowTable, SourceWindows, WindowStats};

const NS: u64 = 1_000_000_000;
const PRIORITY: u8 = sample_flags::PRIORITY;

fn pkt(ts: u64, len: u32, dport: u16, proto: u8, tcp: u8, flags: u8) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        ifindex: 1,
        packet_len: len,
        src_addr: [203, 0, 113, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst_addr: [
            198,
            51,
            100,
            (dport % 7) as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ],
        src_port: 40000,
        dst_port: dport,
        family: 4,
        protocol: proto,
        tcp_flags: tcp,
        flags,
        ttl: 64,
        ..PacketSample::ZERO
    }
}

/// Everything but the distinct counts, bit for bit.
fn same_rates(a: &WindowStats, b: &WindowStats) {
    let bits = |s: &WindowStats| {
        [
            s.event_rate_1m,
            s.burst_rate_10s,
            s.inter_arrival_mean,
            s.inter_arrival_std,
            s.packet_size_variance,
            s.syn_ratio,
        ]
        .map(f64::to_bits)
    };
    assert_eq!(bits(a), bits(b), "{a:?}\n{b:?}");
}

fn finite(s: &WindowStats) -> bool {
    [
        s.event_rate_1m,
        s.burst_rate_10s,
        s.inter_arrival_mean,
        s.inter_arrival_std,
        s.packet_size_variance,
        s.unique_dst_ips,
        s.unique_dst_ports,
        s.syn_ratio,
    ]
    .iter()
    .all(|v| v.is_finite())
}

#[test]
fn priority_samples_leave_rates_ratios_and_variance_but_raise_distinct_ports() {
    // The same uniform stream (mixed sizes, SYNs and ACKs to port 443) into
    // two windows; one also gets a SYN probe to a new port between every
    // two uniform samples (75 s of them), some with reordered timestamps.
    let (mut plain, mut with) = (SourceWindows::new(), SourceWindows::new());
    let t0 = 1_000 * NS;
    for i in 0..600u64 {
        let t = t0 + i * NS / 8;
        let (len, tcp) = if i % 3 == 0 {
            (60, TCP_SYN)
        } else {
            (1400, TCP_ACK)
        };
        let u = pkt(t, len, 443, IPPROTO_TCP, tcp, 0);
        plain.record(&u);
        with.record(&u);
        let probe_t = if i % 5 == 0 { t - NS } else { t + NS / 16 };
        with.record(&pkt(
            probe_t,
            40,
            1000 + i as u16,
            IPPROTO_TCP,
            TCP_SYN,
            PRIORITY,
        ));
        for every in [1, 16] {
            let (a, b) = (plain.stats(every), with.stats(every));
            same_rates(&a, &b);
            assert!(b.unique_dst_ports >= a.unique_dst_ports);
        }
        assert_eq!(plain.samples_60s(), with.samples_60s());
        assert_eq!(plain.samples_this_second(), with.samples_this_second());
        assert_eq!(plain.last_ns(), with.last_ns());
    }
    let (a, b) = (plain.stats(16), with.stats(16));
    assert_eq!(a.unique_dst_ports, 1.0);
    // 60 s of probes at 8/s would saturate the 256-bit counter; it is full.
    assert!(b.unique_dst_ports > 300.0, "{}", b.unique_dst_ports);
    assert!(b.unique_dst_ips > a.unique_dst_ips);
    // Scaled by N, from the uniform stratum: 8 samples/s stand for 128/s.
    assert!((a.event_rate_1m - 128.0).abs() < 5.0, "{}", a.event_rate_1m);
    // Uniform SYNs one in three, whatever the 480 priority SYNs in the window.
    assert!((b.syn_ratio - 1.0 / 3.0).abs() < 0.02, "{}", b.syn_ratio);
}

#[test]
fn without_priority_flags_stats_at_the_sample_time_are_stats() {
    let mut w = SourceWindows::new();
    for i in 0..300u64 {
        let s = pkt(
            50 * NS + i * 7 * NS / 13,
            60 + i as u32,
            80,
            IPPROTO_UDP,
            0,
            0,
        );
        w.record(&s);
        let (a, b) = (w.stats(16), w.stats_at(16, s.timestamp_ns));
        assert_eq!(a, b);
    }
}

#[test]
fn a_source_with_only_priority_samples_has_an_entry_and_finite_features() {
    let mut t = FlowTable::new(FlowConfig {
        sample_every: 16,
        ..FlowConfig::default()
    });
    for i in 0..30u64 {
        let s = pkt(
            7 * NS + i * NS / 2,
            40,
            2000 + i as u16,
            IPPROTO_TCP,
            TCP_SYN,
            PRIORITY,
        );
        let (entry, stats) = t.observe(&s);
        assert!(entry.windows.is_empty(), "no uniform sample yet");
        assert_eq!(entry.windows.samples_60s(), 0);
        assert!(finite(&stats), "{stats:?}");
        assert_eq!(stats.event_rate_1m, 0.0);
        assert_eq!(stats.syn_ratio, 0.0);
        assert_eq!(stats.inter_arrival_mean, 0.0);
        assert!(stats.unique_dst_ports >= (i + 1) as f64 * 0.9, "{stats:?}");
    }
    assert_eq!(t.len(), 1);
    // Its first uniform sample: rates as for a first sample, the probes
    // still counted.
    let (_, stats) = t.observe(&pkt(22 * NS, 40, 2100, IPPROTO_TCP, TCP_SYN, 0));
    assert!(finite(&stats));
    assert_eq!(stats.syn_ratio, 1.0);
    assert_eq!(stats.inter_arrival_mean, 0.0);
    assert!(stats.unique_dst_ports >= 28.0, "{stats:?}");
}

#[test]
fn a_priority_sample_sees_the_uniform_windows_as_of_its_own_time() {
    let mut w = SourceWindows::new();
    // A flood of uniform samples for 10 s.
    for i in 0..1000u64 {
        w.record(&pkt(
            100 * NS + i * NS / 100,
            60,
            80,
            IPPROTO_TCP,
            TCP_SYN,
            0,
        ));
    }
    let hot = w.stats(16);
    assert!(hot.burst_rate_10s > 1000.0);
    // 30 s later a probe: the 10 s window has emptied, the 60 s one not.
    let probe = pkt(140 * NS, 40, 22, IPPROTO_TCP, TCP_SYN, PRIORITY);
    w.record(&probe);
    let s = w.stats_at(16, probe.timestamp_ns);
    assert_eq!(s.burst_rate_10s, 0.0);
    // 1,000 samples times 16 over the 55 s span ending at the probe.
    assert!(
        (s.event_rate_1m - 16_000.0 / 55.0).abs() < 1e-9,
        "{}",
        s.event_rate_1m
    );
    assert_eq!(s.unique_dst_ports, 2.0);
    // Schema v7's census counts the probe once and the flood's samples
    // 16 times each, over the 50 s span ending at the probe (its 10 s
    // generation has just begun).
    let census = (16_001.0 / 50.0, 16_001.0 / 50.0, 1.0);
    assert_eq!(
        (s.est_packet_rate, s.est_conn_rate, s.est_packets_per_conn),
        census
    );
    // The uniform clock did not move.
    assert_eq!(w.last_ns(), 109_990_000_000);
    assert_eq!(
        w.stats(16),
        WindowStats {
            unique_dst_ips: 2.0,
            unique_dst_ports: 2.0,
            est_packet_rate: census.0,
            est_conn_rate: census.1,
            est_packets_per_conn: census.2,
            ..hot
        }
    );
    // 5 minutes later: nothing of the flood is left.
    let late = pkt(440 * NS, 40, 23, IPPROTO_TCP, TCP_SYN, PRIORITY);
    w.record(&late);
    let s = w.stats_at(16, late.timestamp_ns);
    assert!(finite(&s));
    assert_eq!(
        (s.event_rate_1m, s.syn_ratio, s.packet_size_variance),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(s.unique_dst_ports, 1.0);
    // Over 140 s ahead of the uniform clock: the source is back to having
    // no uniform sample in its windows.
    assert!(w.is_empty());
    assert_eq!(w.samples_60s(), 0);
    assert_eq!(w.stats(16), s);
}

#[test]
fn a_slow_scan_counts_every_probe_between_sparse_uniform_samples() {
    // A probe every 2 s for 200 s; one in 16 of them happens to be a uniform
    // sample, the rest are priority samples. The distinct ports at each
    // probe are the probes of the last 50-60 s.
    let mut w = SourceWindows::new();
    for i in 0..100u64 {
        let flags = if i % 16 == 5 { 0 } else { PRIORITY };
        let s = pkt(
            1000 * NS + i * 2 * NS,
            40,
            3000 + i as u16,
            IPPROTO_TCP,
            TCP_SYN,
            flags,
        );
        w.record(&s);
        let st = w.stats_at(16, s.timestamp_ns);
        assert!(finite(&st));
        let expect = (i + 1).min(25) as f64;
        assert!(
            st.unique_dst_ports >= expect * 0.85 && st.unique_dst_ports <= 31.0 * 1.15,
            "probe {i}: {} distinct ports",
            st.unique_dst_ports
        );
    }
}

#[test]
fn the_window_takes_the_default_cap_bytes_whatever_the_clock_state() {
    // The clock's state rides in the timestamp word (see `Clock`).
    assert_eq!(std::mem::size_of::<SourceWindows>(), 496);
}
