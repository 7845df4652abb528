//! The pipeline's clock is the samples' own time: a sample stamped by the
//! data plane (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) is judged at the
//! instant it was seen, not when its batch happened to be read. So the
//! evidence window, the journal sieve and the replay (`replay`) see the
//! same times for the same samples: a replayed capture gives the live
//! agent's decisions, however the ring buffer batched them.
use std::time::{Duration, Instant};

use crate::dataplane::monotonic_now_ns;

/// Maps a sample timestamp (ns on CLOCK_MONOTONIC) to an [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct SampleClock {
    anchor: Instant,
    anchor_ns: u64,
}

impl SampleClock {
    /// The live clock: `Instant::now()` and CLOCK_MONOTONIC (the clock
    /// `bpf_ktime_get_ns` reads) read together. `Instant` is
    /// CLOCK_MONOTONIC on Linux, but its value is opaque, so the two are
    /// paired once.
    pub fn live() -> SampleClock {
        let anchor = Instant::now();
        SampleClock {
            anchor,
            anchor_ns: monotonic_now_ns(),
        }
    }

    /// A clock on which `ns` is now: a replay's first sample.
    pub fn anchored(ns: u64) -> SampleClock {
        SampleClock {
            anchor: Instant::now(),
            anchor_ns: ns,
        }
    }

    /// The instant a sample stamped `ns` was seen. Before the anchor (a
    /// sample older than the agent's start), it is the anchor.
    pub fn at(&self, ns: u64) -> Instant {
        self.anchor + Duration::from_nanos(ns.saturating_sub(self.anchor_ns))
    }
}

impl Default for SampleClock {
    fn default() -> Self {
        Self::live()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_times_keep_their_distances() {
        let c = SampleClock::anchored(5_000_000_000);
        let a = c.at(5_000_000_000);
        let b = c.at(7_500_000_000);
        assert_eq!(b - a, Duration::from_millis(2500));
        // Older than the anchor: the anchor.
        assert_eq!(c.at(1), a);
    }

    #[test]
    fn the_live_clock_puts_a_fresh_timestamp_near_now() {
        let c = SampleClock::live();
        let ns = monotonic_now_ns();
        let at = c.at(ns);
        let now = Instant::now();
        let gap = if at > now { at - now } else { now - at };
        assert!(gap < Duration::from_millis(100), "{gap:?}");
    }
}
