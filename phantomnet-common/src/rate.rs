//! GCRA (a token bucket in virtual-scheduling form): the one rate rule the
//! data plane's throttles, rate-limited signature rules and priority-sample
//! bounds use, and the agent's replay emulates.

/// One packet against a bucket whose theoretical arrival time is `tat`:
/// admitted (and `tat` advanced by `interval_ns`) unless that would put it
/// more than `tolerance_ns` ahead of `now`.
#[inline(always)]
pub fn gcra(tat: &mut u64, interval_ns: u64, tolerance_ns: u64, now: u64) -> bool {
    let start = if *tat > now { *tat } else { now };
    let next = start + interval_ns;
    if next - now > tolerance_ns {
        false
    } else {
        *tat = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut tat = 0;
        // Interval 10, tolerance 30: three at once, then one every 10.
        let admitted = (0..5).filter(|_| gcra(&mut tat, 10, 30, 100)).count();
        assert_eq!(admitted, 3);
        assert!(!gcra(&mut tat, 10, 30, 105));
        assert!(gcra(&mut tat, 10, 30, 110));
    }
}
