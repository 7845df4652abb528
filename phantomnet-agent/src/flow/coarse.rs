//! The 60 s window's twelve 5 s buckets (`Coarse`): counts, sums and gaps
//! per bucket. `window.rs` keeps the rings' clocks and reads them.

/// The 60 s window: twelve 5 s slots.
pub(super) const COARSE_SLOTS: usize = 12;
/// Largest sum of squared packet lengths one 5 s bucket holds (39 bits:
/// `size_sq_lo`, the top 4 bits of `size_lo` and 3 bits of `size_hi`).
const SIZE_SQ_MAX: u64 = (1 << 39) - 1;
/// Largest sum of packet lengths one 5 s bucket holds (28 bits of
/// `size_lo`: 65,535 samples of 4,096 bytes).
const SIZE_SUM_MAX: u32 = (1 << 28) - 1;
/// The bit of a bucket's `size_hi` nibble that marks the bucket holding
/// the source's first sample (that sample has no gap before it).
const FIRST: u8 = 0x8;

/// The twelve 5 s buckets of the 60 s window, field by field (arrays of
/// 2- and 4-byte values, so no padding anywhere).
///
/// Counts and size sums are exact integers: `stats` turns them into `f64`
/// exactly as the old `f64` sums did (every partial sum stays below 2^53),
/// so rates, the SYN ratio and the size variance are bit-for-bit what they
/// were. A bucket takes at most `u16::MAX` samples, a size sum below 2^28
/// (65,535 samples of 4,096 bytes) and a sum of squared sizes below 2^39
/// (≈ 244,000 samples of 1,500 bytes; with frames of up to 2,896 bytes only
/// the sample count can bind); a
/// sample beyond any of these is left out of the bucket altogether, so the
/// bucket stays a consistent subsample (see `docs/FEATURES.md`). Gaps are
/// the one lossy part: `f32` sums, and squared deviations kept per bucket
/// (Welford) rather than raw squares, so that a steady stream's standard
/// deviation does not drown in cancellation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Coarse {
    /// Samples in the bucket.
    pub(super) count: [u16; COARSE_SLOTS],
    /// TCP samples.
    pub(super) tcp: [u16; COARSE_SLOTS],
    /// TCP samples with SYN set and ACK clear.
    pub(super) syn: [u16; COARSE_SLOTS],
    /// Sum of `packet_len` (bytes, low 28 bits) and bits 32..36 of the sum
    /// of `packet_len²` (top 4 bits).
    pub(super) size_lo: [u32; COARSE_SLOTS],
    /// Low 32 bits of the sum of `packet_len²`.
    pub(super) size_sq_lo: [u32; COARSE_SLOTS],
    /// A nibble per bucket (bucket `i` in byte `i / 2`, low nibble first):
    /// bits 36..39 of the sum of `packet_len²` (low 3 bits) and [`FIRST`].
    /// Packed so the schema-v2 shares cost no memory (DETECTION.md).
    pub(super) size_hi: [u8; COARSE_SLOTS / 2],
    /// Sum of the gaps before the bucket's samples (seconds, unscaled). A
    /// bucket's gap count is its sample count, less one if it holds the
    /// source's first sample: nothing else needs storing.
    pub(super) gap_sum: [f32; COARSE_SLOTS],
    /// Sum of squared deviations of those gaps from their bucket mean (s²).
    pub(super) gap_m2: [f32; COARSE_SLOTS],
    /// Schema v3: `[hits, generation]`. `hits` counts the source's samples
    /// whose payload matched a signature (uniform and priority alike: a
    /// single injection request is usually a priority sample, a flow's
    /// first payload packet), saturating at 255; `generation` is the low
    /// byte of the distinct counters' 10 s generation of the latest match.
    /// The count runs on while matches keep coming and drops to 0 once six
    /// generations (60 s) pass without one ([`super::SourceWindows`] keeps it).
    ///
    /// Not a bucket: it lives here because these two bytes were this
    /// struct's padding, so the flow table's 531 bytes per source stay as
    /// they were. [`Coarse::restart`] keeps it.
    pub(super) signature: [u8; 2],
}

impl Coarse {
    pub(super) const ZERO: Coarse = Coarse {
        count: [0; COARSE_SLOTS],
        tcp: [0; COARSE_SLOTS],
        syn: [0; COARSE_SLOTS],
        size_lo: [0; COARSE_SLOTS],
        size_sq_lo: [0; COARSE_SLOTS],
        size_hi: [0; COARSE_SLOTS / 2],
        gap_sum: [0.0; COARSE_SLOTS],
        gap_m2: [0.0; COARSE_SLOTS],
        signature: [0; 2],
    };

    /// Empties every bucket (fresh rate windows), keeping the signature run,
    /// which follows the distinct counters' clock.
    pub(super) fn restart(&mut self) {
        *self = Coarse {
            signature: self.signature,
            ..Coarse::ZERO
        };
    }

    pub(super) fn clear(&mut self, i: usize) {
        self.count[i] = 0;
        self.tcp[i] = 0;
        self.syn[i] = 0;
        self.size_lo[i] = 0;
        self.size_sq_lo[i] = 0;
        self.set_nibble(i, 0);
        self.gap_sum[i] = 0.0;
        self.gap_m2[i] = 0.0;
    }

    pub(super) fn size_sq(&self, i: usize) -> u64 {
        (((self.nibble(i) & !FIRST) as u64) << 36)
            | (((self.size_lo[i] >> 28) as u64) << 32)
            | self.size_sq_lo[i] as u64
    }

    pub(super) fn size_sum(&self, i: usize) -> u32 {
        self.size_lo[i] & SIZE_SUM_MAX
    }

    fn nibble(&self, i: usize) -> u8 {
        (self.size_hi[i / 2] >> (4 * (i % 2))) & 0xF
    }

    fn set_nibble(&mut self, i: usize, v: u8) {
        let shift = 4 * (i % 2);
        let b = &mut self.size_hi[i / 2];
        *b = (*b & !(0xF << shift)) | ((v & 0xF) << shift);
    }

    fn holds_first(&self, i: usize) -> bool {
        self.nibble(i) & FIRST != 0
    }

    /// Gaps recorded in bucket `i`.
    pub(super) fn gaps(&self, i: usize) -> u32 {
        self.count[i] as u32 - self.holds_first(i) as u32
    }

    /// Adds one sample to bucket `i`; `gap` is `None` for the source's
    /// first sample. A bucket that cannot take it exactly leaves it out.
    pub(super) fn add(&mut self, i: usize, len: u32, tcp: bool, syn: bool, gap: Option<f64>) {
        let Some(count) = self.count[i].checked_add(1) else {
            return;
        };
        let Some(size_sum) = self
            .size_sum(i)
            .checked_add(len)
            .filter(|&s| s <= SIZE_SUM_MAX)
        else {
            return;
        };
        let size_sq = self.size_sq(i).saturating_add(len as u64 * len as u64);
        if size_sq > SIZE_SQ_MAX {
            return;
        }
        let n_old = self.gaps(i);
        self.count[i] = count;
        self.size_lo[i] = size_sum | (((size_sq >> 32) & 0xF) as u32) << 28;
        self.size_sq_lo[i] = size_sq as u32;
        let first = self.nibble(i) & FIRST;
        self.set_nibble(i, first | (size_sq >> 36) as u8);
        if tcp {
            self.tcp[i] += 1; // tcp <= count <= u16::MAX
            if syn {
                self.syn[i] += 1;
            }
        }
        match gap {
            None => self.set_nibble(i, self.nibble(i) | FIRST),
            Some(g) => {
                // Welford's update of the bucket's sum of squared deviations:
                // delta² · n_old / n_new is never negative.
                let n_old = n_old as f64;
                let mean = if n_old > 0.0 {
                    self.gap_sum[i] as f64 / n_old
                } else {
                    0.0
                };
                let delta = g - mean;
                self.gap_sum[i] = (self.gap_sum[i] as f64 + g) as f32;
                self.gap_m2[i] =
                    (self.gap_m2[i] as f64 + delta * delta * n_old / (n_old + 1.0)) as f32;
            }
        }
    }
}
