use std::time::Duration;

use super::DataplaneError;

/// `CLOCK_MONOTONIC` in ns: the clock `bpf_ktime_get_ns()` reads, so
/// userspace and the XDP program agree on expiry times.
pub fn monotonic_now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// When an entry stops applying, as stored in a map: 0 = never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry(pub u64);

impl Expiry {
    pub const NEVER: Expiry = Expiry(0);

    /// `now + ttl`, or never for `None`. A zero TTL or one that overflows the
    /// clock is rejected.
    pub fn after(ttl: Option<Duration>, now_ns: u64) -> Result<Expiry, DataplaneError> {
        let Some(ttl) = ttl else {
            return Ok(Expiry::NEVER);
        };
        let bad = |reason: &str| DataplaneError::InvalidArgument {
            field: "ttl",
            reason: reason.to_string(),
        };
        if ttl.is_zero() {
            return Err(bad("must be positive (omit it for no expiry)"));
        }
        let ns = u64::try_from(ttl.as_nanos()).map_err(|_| bad("too large"))?;
        now_ns
            .checked_add(ns)
            .map(Expiry)
            .ok_or_else(|| bad("too large: the expiry would overflow the clock"))
    }

    /// Time left at `now_ns`: `None` = never expires, `Some(ZERO)` = expired.
    pub fn remaining(self, now_ns: u64) -> Option<Duration> {
        (self.0 != 0).then(|| Duration::from_nanos(self.0.saturating_sub(now_ns)))
    }

    pub fn is_live(self, now_ns: u64) -> bool {
        self.0 == 0 || now_ns < self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rules() {
        assert_eq!(Expiry::after(None, 5).unwrap(), Expiry::NEVER);
        assert_eq!(
            Expiry::after(Some(Duration::from_secs(2)), 10).unwrap(),
            Expiry(2_000_000_010)
        );
        assert!(Expiry::after(Some(Duration::ZERO), 10).is_err());
        let err = Expiry::after(Some(Duration::from_secs(u64::MAX)), 10).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let err = Expiry::after(Some(Duration::from_nanos(u64::MAX - 5)), 10).unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
    }

    #[test]
    fn remaining_and_liveness() {
        assert_eq!(Expiry::NEVER.remaining(100), None);
        assert!(Expiry::NEVER.is_live(u64::MAX));
        let e = Expiry(1_000);
        assert_eq!(e.remaining(400), Some(Duration::from_nanos(600)));
        assert_eq!(e.remaining(2_000), Some(Duration::ZERO));
        assert!(e.is_live(999));
        assert!(!e.is_live(1_000));
    }
}
