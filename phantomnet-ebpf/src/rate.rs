//! GCRA (a token bucket in virtual-scheduling form), shared by throttles,
//! rate-limited signature rules and priority-sample bounds, and the
//! precise clock it runs on.
use aya_ebpf::helpers::bpf_ktime_get_ns;

/// The precise monotonic clock (rates need it; expiry uses the coarse one).
#[inline(always)]
pub(crate) fn now() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

/// The rate rule itself is `phantomnet_common::rate::gcra`, so the agent's
/// replay emulates exactly what runs here.
pub(crate) use phantomnet_common::rate::gcra;
