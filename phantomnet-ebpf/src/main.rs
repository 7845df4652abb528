//! PhantomNet's XDP program.
//!
//! For every packet: parse (Ethernet, up to two VLAN tags, IPv4 / IPv6 with
//! extension headers, TCP / UDP / ICMP / ICMPv6), then
//! allowlist → block → throttle, count the outcome per CPU, and sample 1 in N
//! packets (metadata plus a 64-byte payload prefix) into a ring buffer.
//!
//! Enforcement keys on the L3 source only, so a packet whose L4 header is
//! cut short is still blocked or throttled; only a packet without a readable
//! IPv4/IPv6 source is "unparsed", and that one passes. Nothing here returns
//! XDP_ABORTED.
//!
//! Header fields are read at fixed offsets with one bounds check per read.
//! (A header-struct crate such as network-types would add a dependency for a
//! dozen offsets, and its field API has changed between every release.)
#![no_std]
#![no_main]

use core::mem::size_of;

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, LpmTrie, LruHashMap, PerCpuArray, RingBuf, lpm_trie::Key},
    helpers::{
        bpf_get_prandom_u32, bpf_ktime_get_ns,
        generated::{bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    },
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use phantomnet_common::{
    AllowEntry, BlockEntry, Config, Counter, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPPROTO_UDP, MAX_IPV6_EXT_HEADERS, Outcome, PacketSample, SAMPLE_PAYLOAD_LEN, ThrottleRule,
    ThrottleState, V4_KEY_LEN, V6_KEY_LEN, action, capacity, config_flags, sample_flags,
};

// ---- maps (names are phantomnet_common::maps::*) ---------------------------

#[btf_map]
static PN_ALLOW_V4: LpmTrie<[u8; V4_KEY_LEN], AllowEntry, { capacity::ALLOW as usize }> =
    LpmTrie::new();
#[btf_map]
static PN_ALLOW_V6: LpmTrie<[u8; V6_KEY_LEN], AllowEntry, { capacity::ALLOW as usize }> =
    LpmTrie::new();
#[btf_map]
static PN_BLOCK_V4: LpmTrie<[u8; V4_KEY_LEN], BlockEntry, { capacity::BLOCK as usize }> =
    LpmTrie::new();
#[btf_map]
static PN_BLOCK_V6: LpmTrie<[u8; V6_KEY_LEN], BlockEntry, { capacity::BLOCK as usize }> =
    LpmTrie::new();
#[btf_map]
static PN_THR_RULE_V4: LpmTrie<
    [u8; V4_KEY_LEN],
    ThrottleRule,
    { capacity::THROTTLE_RULE as usize },
> = LpmTrie::new();
#[btf_map]
static PN_THR_RULE_V6: LpmTrie<
    [u8; V6_KEY_LEN],
    ThrottleRule,
    { capacity::THROTTLE_RULE as usize },
> = LpmTrie::new();
#[btf_map]
static PN_THR_STATE_V4: LruHashMap<[u8; 4], ThrottleState, { capacity::THROTTLE_STATE as usize }> =
    LruHashMap::new();
#[btf_map]
static PN_THR_STATE_V6: LruHashMap<[u8; 16], ThrottleState, { capacity::THROTTLE_STATE as usize }> =
    LruHashMap::new();
#[btf_map]
static PN_CONFIG: Array<Config, 1> = Array::new();
#[btf_map]
static PN_COUNTERS: PerCpuArray<Counter, { Outcome::COUNT as usize }> = PerCpuArray::new();
#[btf_map]
static PN_SAMPLES: RingBuf<PacketSample, { capacity::SAMPLES_BYTES as usize }> = RingBuf::new();

// ---- wire constants ---------------------------------------------------------

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_NONE: u8 = 59;
const NEXTHDR_DEST: u8 = 60;
/// Headers past this offset are not walked; it keeps every packet offset
/// small and bounded for the verifier.
const MAX_L4_OFFSET: usize = 512;

/// What the parser learned. Lives on the BPF stack; copied into a sample
/// only when one is due.
struct Meta {
    src: [u8; 16],
    dst: [u8; 16],
    /// Offset of the L4 payload in the packet; 0 = none.
    payload_off: usize,
    /// L4 payload bytes per the IP header.
    payload_len: u16,
    sport: u16,
    dport: u16,
    vlan: u16,
    family: u8,
    proto: u8,
    tcp_flags: u8,
    ttl: u8,
    flags: u8,
    icmp_type: u8,
}

#[xdp(frags)]
pub fn phantomnet(ctx: XdpContext) -> u32 {
    try_phantomnet(&ctx)
}

#[inline(always)]
fn try_phantomnet(ctx: &XdpContext) -> u32 {
    // SAFETY: ctx.ctx is the xdp_md the kernel handed us.
    let pkt_len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    let Some(meta) = parse(ctx) else {
        count(Outcome::Unparsed, pkt_len);
        return xdp_action::XDP_PASS;
    };
    let cfg = PN_CONFIG.get(0).copied().unwrap_or_default();
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };

    let (outcome, act) = enforce(&meta, now);
    count(outcome, pkt_len);

    let dry_run = cfg.flags & config_flags::DRY_RUN != 0;
    if sample_due(cfg.sample_every) {
        sample(ctx, &meta, now, pkt_len, act, dry_run);
    }
    match outcome {
        Outcome::BlockDropped | Outcome::ThrottleDropped if !dry_run => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

// ---- parsing ----------------------------------------------------------------

/// Reads a `T` at `off` bytes into the linear part of the packet, or `None`
/// if it does not fit.
#[inline(always)]
fn load<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if off > MAX_L4_OFFSET + 64 || start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { ((start + off) as *const T).read_unaligned() })
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
fn parse(ctx: &XdpContext) -> Option<Meta> {
    let eth: [u8; ETH_HLEN] = load(ctx, 0)?;
    let mut ether_type = be16([eth[12], eth[13]]);
    let mut off = ETH_HLEN;
    let mut vlan = 0u16;
    let mut flags = 0u8;
    // Up to two tags: 802.1ad (S-tag) then 802.1Q (C-tag), or 802.1Q twice.
    for depth in 0..2 {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let tag: [u8; 4] = load(ctx, off)?;
        vlan = be16([tag[0], tag[1]]) & 0x0FFF;
        ether_type = be16([tag[2], tag[3]]);
        off += 4;
        if depth == 1 {
            flags |= sample_flags::QINQ;
        }
    }
    let mut meta = Meta {
        src: [0; 16],
        dst: [0; 16],
        payload_off: 0,
        payload_len: 0,
        sport: 0,
        dport: 0,
        vlan,
        family: 0,
        proto: 0,
        tcp_flags: 0,
        ttl: 0,
        flags,
        icmp_type: 0,
    };
    let (l4_off, l3_payload) = match ether_type {
        ETH_P_IP => parse_ipv4(ctx, off, &mut meta)?,
        ETH_P_IPV6 => parse_ipv6(ctx, off, &mut meta)?,
        _ => {
            debug!(ctx, "unparsed ethertype {:x}", ether_type);
            return None;
        }
    };
    if let Some(l4_off) = l4_off {
        parse_l4(ctx, l4_off, l3_payload, &mut meta);
    }
    Some(meta)
}

/// Fills the IPv4 fields; returns the L4 offset (None for a non-first
/// fragment) and the L3 payload length. `None` only if the 20-byte header
/// itself is unreadable or not IPv4.
#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, off: usize, meta: &mut Meta) -> Option<(Option<usize>, u16)> {
    let h: [u8; IPV4_HLEN] = load(ctx, off)?;
    let ihl = (h[0] & 0x0F) as usize * 4;
    if h[0] >> 4 != 4 || ihl < IPV4_HLEN {
        return None;
    }
    meta.family = 4;
    meta.ttl = h[8];
    meta.proto = h[9];
    meta.src[..4].copy_from_slice(&h[12..16]);
    meta.dst[..4].copy_from_slice(&h[16..20]);
    if ihl > IPV4_HLEN {
        meta.flags |= sample_flags::IP_OPTIONS;
    }
    let frag = be16([h[6], h[7]]);
    let l3_payload = be16([h[2], h[3]]).saturating_sub(ihl as u16);
    if frag & 0x3FFF != 0 {
        meta.flags |= sample_flags::FRAGMENT;
    }
    if frag & 0x1FFF != 0 {
        meta.flags |= sample_flags::NON_FIRST_FRAGMENT;
        return Some((None, l3_payload));
    }
    Some((Some(off + ihl), l3_payload))
}

/// Fills the IPv6 fields and walks up to `MAX_IPV6_EXT_HEADERS` extension
/// headers; returns the L4 offset (None without one) and its length.
#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, off: usize, meta: &mut Meta) -> Option<(Option<usize>, u16)> {
    let h: [u8; IPV6_HLEN] = load(ctx, off)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    meta.family = 6;
    meta.ttl = h[7];
    meta.src.copy_from_slice(&h[8..24]);
    meta.dst.copy_from_slice(&h[24..40]);
    let mut remaining = be16([h[4], h[5]]);
    let mut next = h[6];
    let mut off = off + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                let Some(eh) = load::<[u8; 2]>(ctx, off) else {
                    meta.flags |= sample_flags::L4_INCOMPLETE;
                    return Some((None, 0));
                };
                // The length format is the CURRENT header's: AH counts
                // 4-byte units minus 2, the others 8-byte units minus 1.
                let len = if next == NEXTHDR_AUTH {
                    (eh[1] as usize + 2) * 4
                } else {
                    (eh[1] as usize + 1) * 8
                };
                next = eh[0];
                len
            }
            NEXTHDR_FRAGMENT => {
                let Some(fh) = load::<[u8; 8]>(ctx, off) else {
                    meta.flags |= sample_flags::L4_INCOMPLETE;
                    return Some((None, 0));
                };
                meta.flags |= sample_flags::FRAGMENT;
                if be16([fh[2], fh[3]]) >> 3 != 0 {
                    meta.flags |= sample_flags::NON_FIRST_FRAGMENT;
                    meta.proto = fh[0];
                    return Some((None, remaining.saturating_sub(8)));
                }
                next = fh[0];
                8
            }
            NEXTHDR_NONE => {
                meta.proto = next;
                return Some((None, 0));
            }
            _ => {
                meta.proto = next;
                return Some((Some(off), remaining));
            }
        };
        off += len;
        remaining = remaining.saturating_sub(len as u16);
        if off > MAX_L4_OFFSET {
            break;
        }
    }
    // Chain longer than we walk: the source is known, the L4 header is not.
    meta.proto = next;
    meta.flags |= sample_flags::L4_INCOMPLETE;
    Some((None, 0))
}

#[inline(always)]
fn parse_l4(ctx: &XdpContext, off: usize, l3_payload: u16, meta: &mut Meta) {
    let hdr_len = match meta.proto {
        IPPROTO_TCP => {
            let Some(t) = load::<[u8; 20]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            let doff = (t[12] >> 4) as usize * 4;
            if doff < 20 {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            }
            meta.sport = be16([t[0], t[1]]);
            meta.dport = be16([t[2], t[3]]);
            meta.tcp_flags = t[13];
            doff
        }
        IPPROTO_UDP => {
            let Some(u) = load::<[u8; 8]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            meta.sport = be16([u[0], u[1]]);
            meta.dport = be16([u[2], u[3]]);
            8
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let Some(i) = load::<[u8; 4]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            meta.icmp_type = i[0];
            8
        }
        _ => 0,
    };
    meta.payload_off = off + hdr_len;
    meta.payload_len = l3_payload.saturating_sub(hdr_len as u16);
}

// ---- enforcement --------------------------------------------------------------

#[inline(always)]
fn live(expires_ns: u64, now: u64) -> bool {
    expires_ns == 0 || now < expires_ns
}

/// Allowlist, then block, then throttle. Returns the outcome and the action
/// code recorded in a sample.
#[inline(always)]
fn enforce(meta: &Meta, now: u64) -> (Outcome, u8) {
    if meta.family == 4 {
        let mut data = [0u8; V4_KEY_LEN];
        data[..4].copy_from_slice(&meta.src[..4]);
        let key = Key::new((V4_KEY_LEN * 8) as u32, data);
        let mut addr = [0u8; 4];
        addr.copy_from_slice(&meta.src[..4]);
        decide(
            &key,
            &PN_ALLOW_V4,
            &PN_BLOCK_V4,
            &PN_THR_RULE_V4,
            &PN_THR_STATE_V4,
            &addr,
            now,
        )
    } else {
        let key = Key::new((V6_KEY_LEN * 8) as u32, meta.src);
        decide(
            &key,
            &PN_ALLOW_V6,
            &PN_BLOCK_V6,
            &PN_THR_RULE_V6,
            &PN_THR_STATE_V6,
            &meta.src,
            now,
        )
    }
}

/// Expired entries a lookup deletes before it gives up (and passes); the
/// agent's housekeeping removes any deeper chain.
const MAX_EXPIRED_PER_LOOKUP: u32 = 4;

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

#[inline(always)]
fn decide<const K: usize, const A: usize, const B: usize, const R: usize, const S: usize>(
    key: &Key<[u8; K]>,
    allow: &LpmTrie<[u8; K], AllowEntry, A>,
    block: &LpmTrie<[u8; K], BlockEntry, B>,
    rules: &LpmTrie<[u8; K], ThrottleRule, R>,
    states: &LruHashMap<[u8; S], ThrottleState, { capacity::THROTTLE_STATE as usize }>,
    addr: &[u8; S],
    now: u64,
) -> (Outcome, u8) {
    if allow.get(key).is_some() {
        return (Outcome::Allowlisted, action::ALLOW);
    }
    if let Some(entry) = live_match(block, key, now, |e| (e.expires_ns, e.prefix_len)) {
        // A statistic for operators, bumped without an atomic (the BPF
        // target has no fetch-add in stable core): concurrent CPUs may lose
        // an increment. The exact per-CPU totals are in PN_COUNTERS.
        // SAFETY: the pointer is the trie node's value, which the kernel
        // lets programs write.
        unsafe {
            let hits = (&raw const entry.hits).cast_mut();
            hits.write_volatile(hits.read_volatile() + 1);
        }
        return (Outcome::BlockDropped, action::BLOCK);
    }
    if let Some(rule) = live_match(rules, key, now, |r| (r.expires_ns, r.prefix_len))
        && !admit(states, addr, rule, now)
    {
        return (Outcome::ThrottleDropped, action::THROTTLE);
    }
    (Outcome::Passed, action::PASS)
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
            let start = if state.tat_ns > now {
                state.tat_ns
            } else {
                now
            };
            let next = start + rule.interval_ns;
            if next - now > rule.tolerance_ns {
                state.dropped += 1;
                false
            } else {
                state.tat_ns = next;
                state.passed += 1;
                true
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

// ---- counters and samples ------------------------------------------------------

#[inline(always)]
fn count(outcome: Outcome, len: u64) {
    if let Some(c) = PN_COUNTERS.get_ptr_mut(outcome as u32) {
        // SAFETY: per-CPU slot; no other CPU touches it.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

#[inline(always)]
fn sample_due(every: u32) -> bool {
    match every {
        0 => false,
        1 => true,
        n => {
            // SAFETY: helper without arguments.
            let r = unsafe { bpf_get_prandom_u32() };
            r % n == 0
        }
    }
}

#[inline(always)]
fn sample(ctx: &XdpContext, meta: &Meta, now: u64, pkt_len: u64, act: u8, dry_run: bool) {
    let Some(mut entry) = PN_SAMPLES.reserve(0) else {
        count(Outcome::SampleLost, pkt_len);
        return;
    };
    let s = entry.as_mut_ptr();
    // Payload bytes to copy: what the IP header declares, what the frame
    // holds, and the sample's capacity, whichever is least. Kept in a u64 so
    // the bounds check below lands on the register passed to the helper.
    let mut valid: u64 = 0;
    if meta.payload_off != 0 && (meta.payload_off as u64) < pkt_len {
        valid = pkt_len - meta.payload_off as u64;
        if (meta.payload_len as u64) < valid {
            valid = meta.payload_len as u64;
        }
        if valid > SAMPLE_PAYLOAD_LEN as u64 {
            valid = SAMPLE_PAYLOAD_LEN as u64;
        }
    }
    // SAFETY: `s` points at a reserved, writable PacketSample-sized record.
    unsafe {
        (*s).timestamp_ns = now;
        (*s).ifindex = ctx.ingress_ifindex() as u32;
        (*s).packet_len = pkt_len as u32;
        (*s).src_addr = meta.src;
        (*s).dst_addr = meta.dst;
        (*s).src_port = meta.sport;
        (*s).dst_port = meta.dport;
        (*s).payload_len = meta.payload_len;
        (*s).vlan_id = meta.vlan;
        (*s).family = meta.family;
        (*s).protocol = meta.proto;
        (*s).tcp_flags = meta.tcp_flags;
        (*s).ttl = meta.ttl;
        (*s).action = act;
        (*s).flags = meta.flags | if dry_run { sample_flags::DRY_RUN } else { 0 };
        (*s).icmp_type = meta.icmp_type;
        let payload = (&raw mut (*s).payload).cast::<u64>();
        for i in 0..SAMPLE_PAYLOAD_LEN / 8 {
            payload.add(i).write_unaligned(0);
        }
        if valid >= 1 && valid <= SAMPLE_PAYLOAD_LEN as u64 {
            let rc = bpf_xdp_load_bytes(
                ctx.ctx,
                meta.payload_off as u32,
                payload.cast(),
                valid as u32,
            );
            if rc != 0 {
                valid = 0;
            }
        }
        (*s).payload_valid = valid as u8;
    }
    entry.submit(0);
    count(Outcome::Sampled, pkt_len);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
