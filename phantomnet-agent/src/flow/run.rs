//! A run: a count of events that lasts while they keep coming and ends
//! 60 s after the latest. Schema v4's `server_refusals` and schema v5's
//! `server_answers` are runs; the count saturates at 255 and the latest
//! event's 10 s generation is kept modulo 128 (7 bits), so a run fits in
//! 15 bits (docs/FEATURES.md).

/// Generations (10 s each, the distinct counters') a run outlives its
/// latest event: 60 s, as the signature run.
const GENERATIONS: u32 = 6;
/// Generations a run's stamp may be ahead of the time it is read or added
/// to (an event reordered across CPUs, older than the run's latest):
/// within them the run is live, and an older event counts without moving
/// the stamp.
const AHEAD: u32 = 2;
const GEN_NS: u64 = 10_000_000_000;
/// A run is over at the latest this long after its latest event.
pub(super) const MAX_AGE_NS: u64 = GENERATIONS as u64 * GEN_NS;
/// The stamp's width: a generation modulo 128 (21 min).
pub(super) const STAMP_MASK: u32 = 0x7F;

/// A run's count (0..=255) and stamp (0..=127).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Run {
    pub count: u32,
    pub stamp: u32,
}

/// The 10 s generation of `ts`, modulo 128 (a run's stamp).
fn generation(ts: u64) -> u32 {
    ((ts / GEN_NS) as u32) & STAMP_MASK
}

/// Whether a run whose stamp is `age` generations (modulo 128) behind the
/// time it is read is live: under six behind, or at most [`AHEAD`] ahead.
fn live(age: u32) -> bool {
    !(GENERATIONS..STAMP_MASK + 1 - AHEAD).contains(&age)
}

impl Run {
    /// The run after one more event at `ts`. The age is taken modulo 128
    /// generations: one six to 63 generations newer than the run's latest
    /// starts a new run; one older (64 to 127: reordered across CPUs)
    /// counts without moving the stamp.
    pub fn add(self, ts: u64) -> Run {
        let g = generation(ts);
        let age = g.wrapping_sub(self.stamp) & STAMP_MASK;
        let (count, stamp) = if self.count == 0 || (GENERATIONS..64).contains(&age) {
            (1, g)
        } else if age < GENERATIONS {
            (self.count + 1, g)
        } else {
            (self.count + 1, self.stamp)
        };
        Run {
            count: count.min(255),
            stamp,
        }
    }

    /// The count as of `now`: 0 once six generations (60 s) passed without
    /// an event. The stamp wraps after 21 min, so the table clears an
    /// expired run at the source's next sample ([`Run::expired`]); a source
    /// with no sample for a multiple of 21 min, with a run before, reads
    /// as that run again (at most 255) until its next sample clears it.
    pub fn count_at(self, now: u64) -> u32 {
        if live(generation(now).wrapping_sub(self.stamp) & STAMP_MASK) {
            self.count
        } else {
            0
        }
    }

    /// Whether the run holds a count that has expired as of `ts`.
    pub fn expired(self, ts: u64) -> bool {
        self.count != 0 && self.count_at(ts) == 0
    }
}
