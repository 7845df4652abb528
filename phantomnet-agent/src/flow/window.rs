use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, TCP_SYN};

use super::WindowStats;
use super::distinct::{DistinctCounter, hash_bytes, mix};

const NS: u64 = 1_000_000_000;
/// The 10 s window: ten 1 s slots.
const FINE_SLOTS: usize = 10;
const FINE_NS: u64 = NS;
/// The 60 s window: twelve 5 s slots.
const COARSE_SLOTS: usize = 12;
const COARSE_NS: u64 = 5 * NS;
/// Distinct counters: six 10 s generations.
const GEN_NS: u64 = 10 * NS;

/// Sums over one 5 s slot of the 60 s window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    count: u32,
    tcp: u32,
    syn: u32,
    gaps: u32,
    size_sum: f64,
    size_sq: f64,
    gap_sum: f64,
    gap_sq: f64,
}

/// The sliding windows of one source: a ring of ten 1 s packet counts for
/// the 10 s window, a ring of twelve 5 s buckets of sums for the 60 s
/// window, and windowed distinct counters for destination addresses and
/// ports. Updating costs O(1) amortised (a time jump clears at most one
/// ring's worth of slots) and never allocates.
///
/// The windows cover whole slots: the 60 s window spans the current 5 s
/// slot plus the 11 before it (55–60 s), and rates divide by that exact
/// span; the 10 s window likewise spans 9–10 s.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceWindows {
    fine: [u32; FINE_SLOTS],
    coarse: [Bucket; COARSE_SLOTS],
    dst_ips: DistinctCounter,
    dst_ports: DistinctCounter,
    /// Latest timestamp seen (samples older than it count as "now").
    last_ns: u64,
    samples: u64,
}

impl SourceWindows {
    pub fn new() -> Self {
        SourceWindows {
            fine: [0; FINE_SLOTS],
            coarse: [Bucket::default(); COARSE_SLOTS],
            dst_ips: DistinctCounter::new(),
            dst_ports: DistinctCounter::new(),
            last_ns: 0,
            samples: 0,
        }
    }

    /// Samples recorded since the source was first tracked.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Latest timestamp recorded.
    pub fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// Adds one sample. A timestamp older than the latest one (reordered
    /// samples from several CPUs) is counted at the latest time.
    pub fn record(&mut self, s: &PacketSample) {
        let ts = if self.samples == 0 {
            s.timestamp_ns
        } else {
            s.timestamp_ns.max(self.last_ns)
        };
        let gap = if self.samples == 0 {
            None
        } else {
            Some((ts - self.last_ns) as f64 / NS as f64)
        };
        if self.samples == 0 {
            self.advance_all_fresh();
        } else {
            self.advance(ts);
        }
        self.last_ns = ts;
        self.samples += 1;

        self.fine[((ts / FINE_NS) % FINE_SLOTS as u64) as usize] += 1;
        let b = &mut self.coarse[((ts / COARSE_NS) % COARSE_SLOTS as u64) as usize];
        b.count += 1;
        let len = s.packet_len as f64;
        b.size_sum += len;
        b.size_sq += len * len;
        if s.protocol == IPPROTO_TCP {
            b.tcp += 1;
            if s.tcp_flags & TCP_SYN != 0 && s.tcp_flags & TCP_ACK == 0 {
                b.syn += 1;
            }
        }
        if let Some(g) = gap {
            b.gaps += 1;
            b.gap_sum += g;
            b.gap_sq += g * g;
        }
        let generation = (ts / GEN_NS) as usize;
        let dst_len = if s.family == 6 { 16 } else { 4 };
        self.dst_ips
            .insert(generation, hash_bytes(&s.dst_addr[..dst_len]));
        self.dst_ports
            .insert(generation, mix(s.dst_port as u64 ^ 0x5A5A_0000));
    }

    fn advance_all_fresh(&mut self) {
        self.fine = [0; FINE_SLOTS];
        self.coarse = [Bucket::default(); COARSE_SLOTS];
        self.dst_ips.clear();
        self.dst_ports.clear();
    }

    /// Clears the slots that the move from `last_ns` to `ts` expires.
    fn advance(&mut self, ts: u64) {
        let (old, new) = (self.last_ns / FINE_NS, ts / FINE_NS);
        for s in (old + 1)..=new.min(old + FINE_SLOTS as u64) {
            self.fine[(s % FINE_SLOTS as u64) as usize] = 0;
        }
        let (old, new) = (self.last_ns / COARSE_NS, ts / COARSE_NS);
        for s in (old + 1)..=new.min(old + COARSE_SLOTS as u64) {
            self.coarse[(s % COARSE_SLOTS as u64) as usize] = Bucket::default();
        }
        let (old, new) = (self.last_ns / GEN_NS, ts / GEN_NS);
        let gens = DistinctCounter::GENERATIONS as u64;
        for g in (old + 1)..=new.min(old + gens) {
            self.dst_ips.clear_generation(g as usize);
            self.dst_ports.clear_generation(g as usize);
        }
    }

    /// The window statistics as of the latest sample, with rates and
    /// inter-arrival times corrected for 1-in-`sample_every` sampling.
    pub fn stats(&self, sample_every: u32) -> WindowStats {
        if self.samples == 0 {
            return WindowStats::default();
        }
        let scale = sample_every.max(1) as f64;
        let now = self.last_ns;
        let fine_count: u64 = self.fine.iter().map(|&c| c as u64).sum();
        let fine_span = (FINE_SLOTS as u64 - 1) as f64 + (now % FINE_NS) as f64 / NS as f64;
        let coarse_span =
            ((COARSE_SLOTS as u64 - 1) * COARSE_NS + now % COARSE_NS) as f64 / NS as f64;
        let mut t = Bucket::default();
        for b in &self.coarse {
            t.count += b.count;
            t.tcp += b.tcp;
            t.syn += b.syn;
            t.gaps += b.gaps;
            t.size_sum += b.size_sum;
            t.size_sq += b.size_sq;
            t.gap_sum += b.gap_sum;
            t.gap_sq += b.gap_sq;
        }
        let (iat_mean, iat_std) = if t.gaps > 0 {
            let n = t.gaps as f64;
            let mean = t.gap_sum / n;
            let var = (t.gap_sq / n - mean * mean).max(0.0);
            (mean / scale, var.sqrt() / scale)
        } else {
            (0.0, 0.0)
        };
        let size_var = if t.count > 0 {
            let n = t.count as f64;
            let mean = t.size_sum / n;
            (t.size_sq / n - mean * mean).max(0.0)
        } else {
            0.0
        };
        WindowStats {
            event_rate_1m: t.count as f64 * scale / coarse_span,
            burst_rate_10s: fine_count as f64 * scale / fine_span,
            inter_arrival_mean: iat_mean,
            inter_arrival_std: iat_std,
            packet_size_variance: size_var,
            unique_dst_ips: self.dst_ips.estimate(),
            unique_dst_ports: self.dst_ports.estimate(),
            syn_ratio: if t.tcp > 0 {
                t.syn as f64 / t.tcp as f64
            } else {
                0.0
            },
        }
    }
}

impl Default for SourceWindows {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomnet_common::IPPROTO_UDP;

    pub(crate) fn pkt(
        ts_ns: u64,
        len: u32,
        dst_last: u8,
        dport: u16,
        proto: u8,
        flags: u8,
    ) -> PacketSample {
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
        assert!((s.inter_arrival_mean - 0.1).abs() < 1e-9);
        assert!(s.inter_arrival_std < 1e-6);
        assert_eq!(s.packet_size_variance, 0.0);
        assert_eq!(s.unique_dst_ips, 1.0);
        assert_eq!(s.unique_dst_ports, 1.0);
        assert_eq!(s.syn_ratio, 0.0);
        let s8 = w.stats(8);
        assert!((s8.event_rate_1m - 80.0).abs() < 2.4);
        assert!((s8.inter_arrival_mean - 0.1 / 8.0).abs() < 1e-9);
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
        assert!((cold.inter_arrival_mean - 70.0).abs() < 1e-9);
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
    fn reordered_timestamps_count_as_now() {
        let mut w = SourceWindows::new();
        w.record(&pkt(100 * NS, 60, 1, 80, IPPROTO_UDP, 0));
        w.record(&pkt(99 * NS, 60, 1, 80, IPPROTO_UDP, 0));
        assert_eq!(w.last_ns(), 100 * NS);
        let s = w.stats(1);
        assert_eq!(s.inter_arrival_mean, 0.0);
        assert!(s.burst_rate_10s > 0.0);
    }
}
