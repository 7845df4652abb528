//! Schema v7's Horvitz–Thompson counts: every sample weighted by the
//! inverse of the probability it was taken with, over the 60 s window.
//!
//! The rate windows ([`super::window`]) count the uniform stratum alone (a
//! 1-in-N draw over all packets, scaled by N), which is unbiased but, for a
//! young or slow source, rests on a handful of samples: at 1 in 16 a
//! source's first scorings see one uniform ACK and nothing of the
//! connection openers and first payload packets that priority sampling took
//! with probability 1 (FEATURES.md, "Sampling-rate correction"). Here the
//! two strata are kept apart:
//!
//! - **taken once** (weight 1): priority samples, and uniform samples that
//!   priority sampling admitted as well
//!   ([`PacketSample::taken_with_certainty`]: their packet would have been
//!   sampled whatever the draw);
//! - **drawn** (weight N): the other uniform samples, each standing for
//!   the N − 1 packets of its kind the draw passed over.
//!
//! `N · drawn + once` estimates the source's packets without bias, and far
//! more closely than `N · uniform` when most of a source's packets are
//! openers, probes or first payloads (a scan, a poller, a connection's
//! first milliseconds). Connection openers (TCP SYN without ACK) likewise.
//!
//! Kept per 10 s generation of the distinct counters' clock, which every
//! sample moves (a source seen only through priority samples has its
//! counts): six generations, 48 bytes, paid for by the destination-address
//! counter's narrower bitmap (DETECTION.md, "Flow state"). Counts saturate
//! at `u16::MAX` per generation (6,553 samples a second of one stratum).
use phantomnet_common::PacketSample;

use super::distinct::GENERATIONS;

/// A source's census: samples and connection openers per stratum and
/// generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Weight-1 samples.
    once: [u16; GENERATIONS],
    /// Weight-1 samples that open a connection.
    once_syn: [u16; GENERATIONS],
    /// Weight-N samples.
    drawn: [u16; GENERATIONS],
    /// Weight-N samples that open a connection.
    drawn_syn: [u16; GENERATIONS],
}

/// The census estimates over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CensusStats {
    /// Estimated packets per second.
    pub packet_rate: f64,
    /// Estimated connection openers per second.
    pub conn_rate: f64,
    /// Estimated packets per connection opened (`packets / max(openers, 1)`).
    pub packets_per_conn: f64,
}

impl Census {
    /// Adds `s` to generation `g`.
    pub fn add(&mut self, g: usize, s: &PacketSample) {
        let i = g % GENERATIONS;
        let (count, opened) = if s.taken_with_certainty() {
            (&mut self.once, &mut self.once_syn)
        } else {
            (&mut self.drawn, &mut self.drawn_syn)
        };
        count[i] = count[i].saturating_add(1);
        if s.opens_connection() {
            opened[i] = opened[i].saturating_add(1);
        }
    }

    /// Clears generation `g` (the slot about to be reused).
    pub fn clear_generation(&mut self, g: usize) {
        let i = g % GENERATIONS;
        self.once[i] = 0;
        self.once_syn[i] = 0;
        self.drawn[i] = 0;
        self.drawn_syn[i] = 0;
    }

    /// The estimates at 1 in `sample_every`, over `span_secs` seconds (the
    /// live generations' span).
    pub fn stats(&self, sample_every: u32, span_secs: f64) -> CensusStats {
        let n = sample_every.max(1) as f64;
        let sum = |a: &[u16; GENERATIONS]| a.iter().map(|&c| c as f64).sum::<f64>();
        let packets = sum(&self.once) + n * sum(&self.drawn);
        let opened = sum(&self.once_syn) + n * sum(&self.drawn_syn);
        if packets == 0.0 {
            return CensusStats::default();
        }
        CensusStats {
            packet_rate: packets / span_secs,
            conn_rate: opened / span_secs,
            packets_per_conn: packets / opened.max(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN, action, sample_flags};

    use super::*;

    fn syn(flags: u8, action: u8) -> PacketSample {
        PacketSample {
            protocol: IPPROTO_TCP,
            tcp_flags: TCP_SYN,
            flags,
            action,
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn drawn_samples_weigh_n_and_certain_ones_weigh_one() {
        let mut c = Census::default();
        // A priority SYN, a drawn SYN the priority class also admitted, a
        // drawn UDP datagram and a drawn ACK, over 50 s.
        c.add(0, &syn(sample_flags::PRIORITY, action::PASS));
        c.add(1, &syn(0, action::PASS | action::ALSO_PRIORITY));
        c.add(
            2,
            &PacketSample {
                protocol: IPPROTO_UDP,
                ..PacketSample::ZERO
            },
        );
        c.add(
            3,
            &PacketSample {
                protocol: IPPROTO_TCP,
                tcp_flags: TCP_ACK,
                ..PacketSample::ZERO
            },
        );
        let s = c.stats(16, 50.0);
        assert_eq!(s.packet_rate, (2.0 + 32.0) / 50.0);
        assert_eq!(s.conn_rate, 2.0 / 50.0);
        assert_eq!(s.packets_per_conn, 17.0);
        // At 1 in 1 every sample weighs 1.
        assert_eq!(c.stats(1, 50.0).packets_per_conn, 2.0);
        // A drawn SYN without the mark stands for N openers.
        c.add(3, &syn(0, action::PASS));
        let s = c.stats(16, 50.0);
        assert_eq!(s.conn_rate, 18.0 / 50.0);
        assert_eq!(s.packets_per_conn, 50.0 / 18.0);
    }

    #[test]
    fn cleared_generations_and_an_empty_census_count_nothing() {
        let mut c = Census::default();
        assert_eq!(c.stats(16, 55.0), CensusStats::default());
        c.add(7, &syn(sample_flags::PRIORITY, action::PASS));
        c.add(8, &syn(0, action::PASS));
        c.clear_generation(7 + GENERATIONS);
        let s = c.stats(16, 50.0);
        assert_eq!((s.packet_rate, s.packets_per_conn), (16.0 / 50.0, 1.0));
        for _ in 0..70_000 {
            c.add(8, &syn(0, action::PASS));
        }
        assert_eq!(c.stats(1, 1.0).packet_rate, u16::MAX as f64);
    }
}
