//! Signature rules: packets to a destination that share an attack's traits
//! (protocol, TCP flags, TTL, length, port, a payload prefix) are dropped or
//! rate-limited whatever their source, which is what stops a spoofed or
//! botnet flood that no per-source rule can. Sources in the known-good
//! maps pass a rule that exempts them.
//!
//! XDP walks slots `0..Config::sig_slots` in order and the first matching
//! live rule decides; a new rule takes the lowest free slot.
//!
//! The walk runs in a `bpf_loop` callback over a scalar copy of the packet's
//! fields: the verifier checks the callback's body once, where an inline
//! 64-iteration loop is re-checked for every path through the parser and
//! exceeds its instruction budget.
use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{bpf_loop, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use phantomnet_common::{SigRule, SigStats, capacity, sig_flags};

use crate::{
    PN_GOOD_V4, PN_GOOD_V6, PN_SIG_RULES, PN_SIG_STATE, PN_SIG_STATS, live, parse::Meta, rate,
};

/// What the walk compares: the packet's fields, no packet pointers.
#[repr(C)]
struct Scan {
    dst: [u8; 16],
    src: [u8; 16],
    /// The first 8 payload bytes (little-endian), if the frame holds them.
    payload: u64,
    now: u64,
    /// Payload bytes `payload` holds validly: 0..=8.
    payload_avail: u32,
    len: u16,
    dport: u16,
    family: u8,
    proto: u8,
    tcp_flags: u8,
    ttl: u8,
    /// Set by the walk: 1 = dropped.
    dropped: u8,
    _pad: [u8; 7],
}

/// The packet matched a rule that drops it (a drop rule, or a rate-limit
/// rule over its rate).
#[inline(always)]
pub(crate) fn dropped(ctx: &XdpContext, meta: &Meta, pkt_len: u64, slots: u32, now: u64) -> bool {
    let n = if slots > capacity::SIG_SLOTS {
        capacity::SIG_SLOTS
    } else {
        slots
    };
    let mut payload = 0u64;
    let mut payload_avail = 0u32;
    if meta.payload_off != 0 && meta.payload_len != 0 {
        // Up to 8 bytes: what the IP header declares and the frame holds.
        // Through the helper, not a packet pointer: a direct read would make
        // the verifier track the payload offset precisely and check the
        // rest of the program once per parser path.
        let room = pkt_len.saturating_sub(meta.payload_off as u64);
        let mut n = meta.payload_len as u64;
        if room < n {
            n = room;
        }
        if n > 8 {
            n = 8;
        }
        let mut bytes = [0u8; 8];
        // The helper's length must be a constant the verifier can bound:
        // 8 at once, or byte by byte when the frame ends sooner.
        let mut ok = n != 0;
        if n == 8 {
            // SAFETY: `bytes` has room for 8 bytes.
            ok = unsafe {
                bpf_xdp_load_bytes(
                    ctx.ctx,
                    meta.payload_off as u32,
                    bytes.as_mut_ptr().cast(),
                    8,
                )
            } == 0;
        } else {
            for i in 0..7usize {
                if i as u64 >= n {
                    break;
                }
                let mut b = [0u8; 1];
                // SAFETY: `b` has room for the one byte asked for.
                let rc = unsafe {
                    bpf_xdp_load_bytes(
                        ctx.ctx,
                        (meta.payload_off + i) as u32,
                        b.as_mut_ptr().cast(),
                        1,
                    )
                };
                if rc != 0 {
                    ok = false;
                    break;
                }
                bytes[i] = b[0];
            }
        }
        if ok {
            payload = u64::from_le_bytes(bytes);
            payload_avail = n as u32;
        }
    }
    let mut scan = Scan {
        dst: meta.dst,
        src: meta.src,
        payload,
        now,
        payload_avail,
        len: if pkt_len > u16::MAX as u64 {
            u16::MAX
        } else {
            pkt_len as u16
        },
        dport: meta.dport,
        family: meta.family,
        proto: meta.proto,
        tcp_flags: meta.tcp_flags,
        ttl: meta.ttl,
        dropped: 0,
        _pad: [0; 7],
    };
    // SAFETY: `scan_slot` has the callback signature bpf_loop expects, and
    // `scan` outlives the call.
    unsafe {
        bpf_loop(n, scan_slot as *mut c_void, (&raw mut scan).cast(), 0);
    }
    scan.dropped != 0
}

/// One slot of the walk: 1 stops it (the first matching rule decided).
#[inline(never)]
extern "C" fn scan_slot(index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the `Scan` that `dropped` passed.
    let scan = unsafe { &mut *ctx.cast::<Scan>() };
    let Some(rule) = PN_SIG_RULES.get(index) else {
        return 1;
    };
    if rule.id == 0 || !live(rule.expires_ns, scan.now) || !matches(rule, scan) {
        return 0;
    }
    let stats = PN_SIG_STATS.get_ptr_mut(index);
    count(stats, rule, |s| s.matched += 1);
    if rule.flags & sig_flags::EXEMPT_KNOWN_GOOD != 0 && known_good(scan) {
        count(stats, rule, |s| s.exempted += 1);
        return 1;
    }
    if rule.interval_ns != 0 && admit(index, rule, rate::now()) {
        return 1;
    }
    count(stats, rule, |s| s.dropped += 1);
    scan.dropped = 1;
    1
}

/// Bumps this CPU's counts for the slot, starting them over when the slot
/// holds a new rule.
#[inline(always)]
fn count(stats: Option<*mut SigStats>, rule: &SigRule, f: impl FnOnce(&mut SigStats)) {
    if let Some(s) = stats {
        // SAFETY: this CPU's slot of a per-CPU array; no other CPU touches it.
        let s = unsafe { &mut *s };
        if s.rule_created_ns != rule.created_ns {
            *s = SigStats {
                rule_created_ns: rule.created_ns,
                ..SigStats::default()
            };
        }
        f(s);
    }
}

#[inline(always)]
fn matches(rule: &SigRule, p: &Scan) -> bool {
    rule.family == p.family
        && (rule.protocol == 0 || rule.protocol == p.proto)
        && p.len >= rule.len_min
        && p.len <= rule.len_max
        && p.dport >= rule.dport_min
        && p.dport <= rule.dport_max
        && p.ttl >= rule.ttl_min
        && p.ttl <= rule.ttl_max
        && p.tcp_flags & rule.tcp_flags_mask == rule.tcp_flags_value
        && dst_in(rule, p)
        && payload_matches(rule, p)
}

#[inline(always)]
fn dst_in(rule: &SigRule, meta: &Scan) -> bool {
    let len = rule.dst_prefix_len as u32;
    if meta.family == 4 {
        if len == 0 {
            return true;
        }
        let len = if len > 32 { 32 } else { len };
        let a = u32::from_be_bytes([meta.dst[0], meta.dst[1], meta.dst[2], meta.dst[3]]);
        let b = u32::from_be_bytes([
            rule.dst_addr[0],
            rule.dst_addr[1],
            rule.dst_addr[2],
            rule.dst_addr[3],
        ]);
        // len is 1..=32: the shift is 0..=31.
        (a ^ b) & (u32::MAX << (32 - len)) == 0
    } else {
        let len = if len > 128 { 128 } else { len };
        let (ah, al) = halves(&meta.dst);
        let (bh, bl) = halves(&rule.dst_addr);
        let mh = if len == 0 {
            0
        } else if len >= 64 {
            u64::MAX
        } else {
            u64::MAX << (64 - len)
        };
        let ml = if len <= 64 {
            0
        } else {
            u64::MAX << (128 - len)
        };
        ((ah ^ bh) & mh) | ((al ^ bl) & ml) == 0
    }
}

#[inline(always)]
fn halves(a: &[u8; 16]) -> (u64, u64) {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

/// The first `payload_len` (≤ 8) payload bytes equal the rule's; a packet
/// with fewer payload bytes in its frame does not match.
#[inline(always)]
fn payload_matches(rule: &SigRule, p: &Scan) -> bool {
    let n = rule.payload_len as u32;
    if n == 0 {
        return true;
    }
    if p.payload_avail < n {
        return false;
    }
    let mask = if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (n * 8)) - 1
    };
    (p.payload ^ u64::from_le_bytes(rule.payload)) & mask == 0
}

/// The source is in the known-good map (its exemption is counted there).
#[inline(always)]
fn known_good(scan: &Scan) -> bool {
    let entry = if scan.family == 4 {
        let mut addr = [0u8; 4];
        addr.copy_from_slice(&scan.src[..4]);
        PN_GOOD_V4.get_ptr_mut(addr)
    } else {
        PN_GOOD_V6.get_ptr_mut(scan.src)
    };
    match entry {
        Some(e) => {
            // SAFETY: a live map value pointer; a statistic, bumped without
            // an atomic (concurrent CPUs may lose an increment).
            unsafe { (*e).exempted += 1 };
            true
        }
        None => false,
    }
}

/// GCRA over every packet the rule matched (all sources together), the
/// state shared by all CPUs without a lock, like a throttle's bucket.
#[inline(always)]
fn admit(slot: u32, rule: &SigRule, now: u64) -> bool {
    let Some(state) = PN_SIG_STATE.get_ptr_mut(slot) else {
        return false;
    };
    // SAFETY: a live array value pointer.
    let state = unsafe { &mut *state };
    if state.rule_created_ns != rule.created_ns {
        state.rule_created_ns = rule.created_ns;
        state.tat_ns = now;
    }
    rate::gcra(&mut state.tat_ns, rule.interval_ns, rule.tolerance_ns, now)
}
