//! Rules about a source address: allowlist, block and throttle.
//!
//! Each list is a hash of host entries (/32, /128), looked up first, and an
//! LPM trie of prefixes. A list whose bit in `Config::lists` is clear is
//! empty and costs one flag test. A host entry is always the longest match,
//! so looking it up first gives the same answer as one trie holding both.
use aya_ebpf::{
    btf_maps::{HashMap, LpmTrie, LruHashMap, lpm_trie::Key},
    helpers::generated::bpf_ktime_get_coarse_ns,
};
use phantomnet_common::{
    BlockEntry, ThrottleRule, ThrottleState, V4_KEY_LEN, V6_KEY_LEN, capacity, list_flags,
};

use crate::{
    PN_ALLOW_H4, PN_ALLOW_H6, PN_ALLOW_V4, PN_ALLOW_V6, PN_BLOCK_H4, PN_BLOCK_H6, PN_BLOCK_V4,
    PN_BLOCK_V6, PN_THR_RULE_V4, PN_THR_RULE_V6, PN_THR_STATE_V4, PN_THR_STATE_V6, live,
    parse::Meta, rate,
};

/// Expired entries a lookup deletes before it gives up (and passes); the
/// agent's housekeeping removes any deeper chain.
const MAX_EXPIRED_PER_LOOKUP: u32 = 4;

#[inline(always)]
fn v4(meta: &Meta) -> ([u8; 4], Key<[u8; V4_KEY_LEN]>) {
    let mut addr = [0u8; 4];
    addr.copy_from_slice(&meta.src[..4]);
    (addr, v4_key(&addr))
}

#[inline(always)]
fn v4_key(addr: &[u8; 4]) -> Key<[u8; V4_KEY_LEN]> {
    let mut data = [0u8; V4_KEY_LEN];
    data[..4].copy_from_slice(addr);
    Key::new((V4_KEY_LEN * 8) as u32, data)
}

#[inline(always)]
fn v6(meta: &Meta) -> Key<[u8; V6_KEY_LEN]> {
    Key::new((V6_KEY_LEN * 8) as u32, meta.src)
}

/// The source is allowlisted: never dropped, throttled or matched by a
/// signature rule.
#[inline(always)]
pub(crate) fn allowed(meta: &Meta, lists: u32) -> bool {
    if meta.family == 4 {
        let (addr, _) = v4(meta);
        allowed_v4(&addr, lists)
    } else {
        allowed_v6(&meta.src, lists)
    }
}

#[inline(always)]
pub(crate) fn allowed_v4(addr: &[u8; 4], lists: u32) -> bool {
    (lists & list_flags::ALLOW_HOST != 0 && PN_ALLOW_H4.get_ptr(addr).is_some())
        || (lists & list_flags::ALLOW_PREFIX != 0 && PN_ALLOW_V4.get(&v4_key(addr)).is_some())
}

#[inline(always)]
pub(crate) fn allowed_v6(addr: &[u8; 16], lists: u32) -> bool {
    (lists & list_flags::ALLOW_HOST != 0 && PN_ALLOW_H6.get_ptr(addr).is_some())
        || (lists & list_flags::ALLOW_PREFIX != 0
            && PN_ALLOW_V6
                .get(&Key::new((V6_KEY_LEN * 8) as u32, *addr))
                .is_some())
}

/// A live block entry covers the source (and its hit count is bumped).
#[inline(always)]
pub(crate) fn blocked(meta: &Meta, lists: u32, now: u64) -> bool {
    if meta.family == 4 {
        let (addr, key) = v4(meta);
        (lists & list_flags::BLOCK_HOST != 0 && host_blocked(&PN_BLOCK_H4, &addr))
            || (lists & list_flags::BLOCK_PREFIX != 0 && prefix_blocked(&PN_BLOCK_V4, &key, now))
    } else {
        (lists & list_flags::BLOCK_HOST != 0 && host_blocked(&PN_BLOCK_H6, &meta.src))
            || (lists & list_flags::BLOCK_PREFIX != 0
                && prefix_blocked(&PN_BLOCK_V6, &v6(meta), now))
    }
}

/// The source is over its throttle rule's rate. `now` (coarse) is for
/// expiry; the bucket reads the precise clock.
#[inline(always)]
pub(crate) fn throttled(meta: &Meta, lists: u32, now: u64) -> bool {
    if lists & list_flags::THROTTLE == 0 {
        return false;
    }
    if meta.family == 4 {
        let (addr, key) = v4(meta);
        matches!(live_match(&PN_THR_RULE_V4, &key, now, |r| (r.expires_ns, r.prefix_len)),
            Some(rule) if !admit(&PN_THR_STATE_V4, &addr, rule, rate::now()))
    } else {
        matches!(live_match(&PN_THR_RULE_V6, &v6(meta), now, |r| (r.expires_ns, r.prefix_len)),
            Some(rule) if !admit(&PN_THR_STATE_V6, &meta.src, rule, rate::now()))
    }
}

/// Counts a drop on the entry: a statistic for operators, bumped without
/// an atomic (the BPF target has no fetch-add in stable core), so
/// concurrent CPUs may lose an increment. The exact per-CPU totals are in
/// PN_COUNTERS.
#[inline(always)]
fn bump_hits(entry: *const BlockEntry) {
    // SAFETY: the pointer is a map value the kernel handed us, which
    // programs may write.
    unsafe {
        let hits = (&raw const (*entry).hits).cast_mut();
        hits.write_volatile(hits.read_volatile() + 1);
    }
}

/// A live host entry for `addr` (its hit count is bumped). The coarse
/// clock is read only for an entry with an expiry.
#[inline(always)]
pub(crate) fn host_blocked<const S: usize, const M: usize, const F: usize>(
    map: &HashMap<[u8; S], BlockEntry, M, F>,
    addr: &[u8; S],
) -> bool {
    let Some(entry) = map.get_ptr(addr) else {
        return false;
    };
    // SAFETY: a live map value pointer for this key.
    let expires = unsafe { (*entry).expires_ns };
    // SAFETY: helper without arguments.
    if expires == 0 || unsafe { bpf_ktime_get_coarse_ns() } < expires {
        bump_hits(entry);
        return true;
    }
    // Expired: the entry no longer applies; delete it so it stops costing
    // a lookup (a failed delete, a racing CPU's, is harmless).
    let _ = map.remove(addr);
    false
}

#[inline(always)]
fn prefix_blocked<const K: usize, const N: usize>(
    trie: &LpmTrie<[u8; K], BlockEntry, N>,
    key: &Key<[u8; K]>,
    now: u64,
) -> bool {
    match live_match(trie, key, now, |e| (e.expires_ns, e.prefix_len)) {
        Some(entry) => {
            bump_hits(entry);
            true
        }
        None => false,
    }
}

/// The longest LIVE entry covering `key`. An expired longest match must not
/// mask a covering rule (nor unmask one): it is deleted — the kernel
/// already ignores it — and the trie asked again.
#[inline(always)]
fn live_match<'a, const K: usize, V, const N: usize>(
    trie: &'a LpmTrie<[u8; K], V, N>,
    key: &Key<[u8; K]>,
    now: u64,
    expiry_and_len: impl Fn(&V) -> (u64, u32),
) -> Option<&'a V> {
    for _ in 0..MAX_EXPIRED_PER_LOOKUP {
        let v = trie.get(key)?;
        let (expires, len) = expiry_and_len(v);
        if live(expires, now) {
            return Some(v);
        }
        // The kernel's trie delete compares only the first `len` bits of
        // the key, so the packet's full address with the entry's length
        // names the entry. (Key is packed: copy its data out.) A failed
        // delete (a racing CPU deleted it first) is harmless.
        let _ = trie.remove(&Key::new(len, key.data));
    }
    None
}

/// GCRA (token bucket in virtual-scheduling form) for one source address.
///
/// The state is shared by all CPUs and updated without a lock: two CPUs
/// that handle the same source in the same instant can both admit a packet
/// and one of the two `tat` updates is lost, so a source can get at most
/// (CPUs handling it − 1) extra packets per such collision. See
/// docs/DATAPLANE.md.
#[inline(always)]
fn admit<const S: usize>(
    states: &LruHashMap<[u8; S], ThrottleState, { capacity::THROTTLE_STATE as usize }>,
    addr: &[u8; S],
    rule: &ThrottleRule,
    now: u64,
) -> bool {
    match states.get_ptr_mut(addr) {
        Some(state) => {
            // SAFETY: a live map value pointer for this key.
            let state = unsafe { &mut *state };
            if state.rule_created_ns != rule.created_ns {
                // The rule was replaced (or re-created): a fresh bucket, so
                // an old rate's debt never locks the source out.
                state.rule_created_ns = rule.created_ns;
                state.tat_ns = now;
            }
            if rate::gcra(&mut state.tat_ns, rule.interval_ns, rule.tolerance_ns, now) {
                state.passed += 1;
                true
            } else {
                state.dropped += 1;
                false
            }
        }
        None => {
            let fresh = ThrottleState {
                tat_ns: now + rule.interval_ns,
                rule_created_ns: rule.created_ns,
                passed: 1,
                dropped: 0,
            };
            // A failed insert (a racing CPU inserted first) only loses this
            // packet's charge; the packet passes either way.
            let _ = states.insert(addr, fresh, 0);
            true
        }
    }
}
