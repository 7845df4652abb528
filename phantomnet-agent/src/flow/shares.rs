//! Schema v2's running packet-kind shares of one source (FEATURES.md,
//! "Schema v2").
use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

/// The running shares (schema v2) are the exact mean of a source's first
/// `SHARE_SPAN` uniform samples in its window, then an exponential moving
/// average with weight 1/`SHARE_SPAN`.
const SHARE_SPAN: u64 = 32;
/// A share of 1 in the `u8` fixed point of [`Shares`].
const SHARE_ONE: i32 = u8::MAX as i32;
/// `ceil(2^16 / k)` for k in 1..=32: `(x * RECIP[k]) >> 16` is exactly
/// `x / k` for every x below 2^9 (the error, under x / 2^16, stays below
/// 1/k), and costs a multiplication where four divisions per sample cost
/// a quarter of the flow update (`flow/update`, BENCHMARKS.md).
const RECIP: [u32; SHARE_SPAN as usize + 1] = {
    let mut r = [0u32; SHARE_SPAN as usize + 1];
    let mut k = 1;
    while k <= SHARE_SPAN as usize {
        r[k] = (1u32 << 16).div_ceil(k as u32);
        k += 1;
    }
    r
};
/// Schema v2's packet-kind shares of one source, each a running mean in
/// `u8` fixed point (0 = none, 255 = all): 4 bytes, where windowed counts
/// like `Coarse`'s would cost 96 (the flow table has no bytes to spare:
/// these 4 were freed by packing the 60 s window's size sums, DETECTION.md
/// "Flow state").
///
/// Over the first [`SHARE_SPAN`] uniform samples in the source's 60 s
/// window each share is their mean; after that each sample moves it 1/32 of
/// the way to 0 or 1, and at least one step (1/255), so a steady stream
/// reaches exactly 0 or 1. A source whose 60 s window emptied starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Shares {
    /// Payload-bearing, pure ACK, RST, FIN.
    q: [u8; 4],
}

impl Shares {
    /// Moves the shares towards this sample's kinds; `n` is the number of
    /// uniform samples in the window, this one included.
    pub(super) fn add(&mut self, s: &PacketSample, n: u64) {
        let tcp = s.protocol == IPPROTO_TCP;
        let f = s.tcp_flags;
        let kinds = [
            s.payload_len > 0,
            tcp && f & TCP_ACK != 0 && f & (TCP_SYN | TCP_FIN | TCP_RST) == 0 && s.payload_len == 0,
            tcp && f & TCP_RST != 0,
            tcp && f & TCP_FIN != 0,
        ];
        let k = n.clamp(1, SHARE_SPAN) as usize;
        for (q, kind) in self.q.iter_mut().zip(kinds) {
            let d = if kind { SHARE_ONE } else { 0 } - *q as i32;
            *q = (*q as i32 + step(d, k)) as u8;
        }
    }

    pub(super) fn get(&self, i: usize) -> f64 {
        self.q[i] as f64 / SHARE_ONE as f64
    }
}

/// `d / k` rounded to nearest (halves away from 0), and at least one step
/// towards the target: `d` in -255..=255, `k` in 1..=32.
fn step(d: i32, k: usize) -> i32 {
    let x = d.unsigned_abs() + (k as u32) / 2;
    match ((x * RECIP[k]) >> 16) as i32 {
        0 => d.signum(),
        q => q * d.signum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomnet_common::IPPROTO_UDP;

    fn sample(protocol: u8, tcp_flags: u8, payload_len: u16) -> PacketSample {
        PacketSample {
            protocol,
            tcp_flags,
            payload_len,
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn the_reciprocal_step_is_the_rounded_division() {
        for k in 1..=SHARE_SPAN as i32 {
            for d in -SHARE_ONE..=SHARE_ONE {
                let exact = match (d + d.signum() * (k / 2)) / k {
                    0 => d.signum(),
                    q => q,
                };
                assert_eq!(step(d, k as usize), exact, "{d} / {k}");
            }
        }
    }

    #[test]
    fn exact_mean_first_then_a_moving_average_that_reaches_0_and_1() {
        let mut s = Shares::default();
        let ack = sample(IPPROTO_TCP, TCP_ACK, 0);
        let data = sample(IPPROTO_TCP, TCP_ACK, 100);
        for n in 1..=4 {
            s.add(if n % 2 == 1 { &data } else { &ack }, n);
        }
        assert!((s.get(0) - 0.5).abs() <= 1.0 / 255.0, "{}", s.get(0));
        assert!((s.get(1) - 0.5).abs() <= 1.0 / 255.0, "{}", s.get(1));
        for n in 5..400 {
            s.add(&ack, n);
        }
        assert_eq!((s.get(0), s.get(1)), (0.0, 1.0));
        // n = 1: a fresh window starts over.
        let udp = sample(IPPROTO_UDP, TCP_RST | TCP_FIN, 8);
        s.add(&udp, 1);
        assert_eq!(
            (s.get(0), s.get(1), s.get(2), s.get(3)),
            (1.0, 0.0, 0.0, 0.0)
        );
        let rst = sample(IPPROTO_TCP, TCP_RST | TCP_ACK, 0);
        s.add(&rst, 2);
        assert!((s.get(2) - 0.5).abs() <= 1.0 / 255.0);
        assert_eq!(s.get(1), 0.0, "an RST is not a pure ACK");
    }
}
