//! GCRA (a token bucket in virtual-scheduling form), shared by throttles
//! and rate-limited signature rules, and the precise clock it runs on.
use aya_ebpf::helpers::bpf_ktime_get_ns;

/// The precise monotonic clock (rates need it; expiry uses the coarse one).
#[inline(always)]
pub(crate) fn now() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

/// One packet against a bucket whose theoretical arrival time is `tat`:
/// admitted (and `tat` advanced by `interval_ns`) unless that would put it
/// more than `tolerance_ns` ahead of `now`.
#[inline(always)]
pub(crate) fn gcra(tat: &mut u64, interval_ns: u64, tolerance_ns: u64, now: u64) -> bool {
    let start = if *tat > now { *tat } else { now };
    let next = start + interval_ns;
    if next - now > tolerance_ns {
        false
    } else {
        *tat = next;
        true
    }
}
