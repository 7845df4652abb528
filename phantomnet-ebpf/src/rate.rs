//! GCRA (a token bucket in virtual-scheduling form), shared by throttles,
//! rate-limited signature rules and the priority-sample and answer-sample
//! bounds; the per-host bucket those bounds keep in an LRU map; and the
//! precise clock it runs on.
use aya_ebpf::{btf_maps::LruHashMap, helpers::bpf_ktime_get_ns};

/// The precise monotonic clock (rates need it; expiry uses the coarse one).
#[inline(always)]
pub(crate) fn now() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bpf_ktime_get_ns() }
}

/// The rate rule itself is `phantomnet_common::rate::gcra`, so the agent's
/// replay emulates exactly what runs here.
pub(crate) use phantomnet_common::rate::gcra;

/// A host's 16-byte key in a map of per-host buckets: an IPv6 address as it
/// is, an IPv4 address (the first word's low 32 bits: BPF is little-endian)
/// as `::ffff:a.b.c.d`, so that one map holds both families. Built as two
/// words, as `parse::v4_addr` builds its addresses: a byte-wise array would
/// be a call to `memset`, a byte loop in BPF.
#[inline(always)]
pub(crate) fn host_key(family: u8, addr: [u64; 2]) -> [u8; 16] {
    let words = if family == 6 {
        addr
    } else {
        [0, 0xffff_0000 | ((addr[0] & 0xffff_ffff) << 32)]
    };
    // SAFETY: two u64 are 16 plain bytes.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
}

/// The GCRA bucket of `key` in an LRU map of per-host buckets (the value is
/// the theoretical arrival time), charged if it admits. The map is shared by
/// the CPUs and updated without a lock, as throttles are
/// (docs/DATAPLANE.md): two CPUs racing on one host may both be admitted
/// once, which a bound tolerates. A host not in the map starts with this
/// packet charged.
#[inline(always)]
pub(crate) fn host_admits<const N: usize, const F: usize>(
    map: &LruHashMap<[u8; 16], u64, N, F>,
    key: &[u8; 16],
    interval: u64,
    tolerance: u64,
    now: u64,
) -> bool {
    match map.get_ptr_mut(key) {
        Some(tat) => {
            // SAFETY: a value of the map (see above on concurrent CPUs).
            let mut t = unsafe { *tat };
            let ok = gcra(&mut t, interval, tolerance, now);
            if ok {
                // SAFETY: as above.
                unsafe { *tat = t };
            }
            ok
        }
        None => {
            let _ = map.insert(key, &(now + interval), 0);
            true
        }
    }
}
