//! PhantomNet's XDP program.
//!
//! For every packet: parse (Ethernet, up to two VLAN tags, IPv4 / IPv6 with
//! extension headers, TCP / UDP / ICMP / ICMPv6), then
//! allowlist → block → signature rules → throttle, count the outcome per
//! CPU, and sample 1 in N packets (metadata plus a 64-byte payload prefix)
//! into a ring buffer, and with probability 1 the packets that open
//! connections, probe ports or start a flow's payload ([`priority`]).
//!
//! Source rules key on the L3 source only, so a packet whose L4 header is
//! cut short is still blocked or throttled; only a packet without a readable
//! IPv4/IPv6 source is "unparsed", and that one passes. Nothing here returns
//! XDP_ABORTED.
//!
//! A second program, `phantomnet_inside`, runs on the inside interfaces:
//! it passes every packet and samples the protected side's refusals of
//! outside hosts ([`observe`]).
//!
//! The entry point is a thin wrapper; each module holds one stage:
//! [`fast`] (a blocked host's drop from its source address alone),
//! [`parse`], [`source`] (allow, block, throttle), [`signature`] (rules
//! about packets to a destination, whatever their source), [`priority`]
//! (which packets are sampled with probability 1) and [`sample`]
//! (counters and the ring buffer).
#![no_std]
#![no_main]

mod fast;
mod observe;
mod parse;
mod priority;
mod rate;
mod sample;
mod signature;
mod source;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, xdp_action},
    btf_maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_xdp_get_buff_len},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use phantomnet_common::{
    AllowEntry, BlockEntry, Config, Counter, KnownGood, Outcome, PacketSample, SigRule, SigState,
    SigStats, ThrottleRule, ThrottleState, V4_KEY_LEN, V6_KEY_LEN, action, capacity, config_flags,
    list_flags, sampling::FlowSlot,
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

/// Host entries: an exact-match hash is one lookup where the trie walks
/// its nodes, and most entries (detections, CrowdSec, feeds) are hosts.
#[btf_map]
static PN_ALLOW_H4: HashMap<[u8; 4], AllowEntry, { capacity::ALLOW_HOST as usize }> =
    HashMap::new();
#[btf_map]
static PN_ALLOW_H6: HashMap<[u8; 16], AllowEntry, { capacity::ALLOW_HOST as usize }> =
    HashMap::new();
/// Not preallocated: a quarter-million slots would pin ~30 MiB of kernel
/// memory per family whether used or not.
#[btf_map]
static PN_BLOCK_H4: HashMap<
    [u8; 4],
    BlockEntry,
    { capacity::BLOCK_HOST as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
#[btf_map]
static PN_BLOCK_H6: HashMap<
    [u8; 16],
    BlockEntry,
    { capacity::BLOCK_HOST as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

#[btf_map]
static PN_SIG_RULES: Array<SigRule, { capacity::SIG_SLOTS as usize }> = Array::new();
#[btf_map]
static PN_SIG_STATE: Array<SigState, { capacity::SIG_SLOTS as usize }> = Array::new();
#[btf_map]
static PN_SIG_STATS: PerCpuArray<SigStats, { capacity::SIG_SLOTS as usize }> = PerCpuArray::new();
#[btf_map]
static PN_GOOD_V4: LruHashMap<[u8; 4], KnownGood, { capacity::KNOWN_GOOD as usize }> =
    LruHashMap::new();
#[btf_map]
static PN_GOOD_V6: LruHashMap<[u8; 16], KnownGood, { capacity::KNOWN_GOOD as usize }> =
    LruHashMap::new();

/// Priority sampling's state (not pinned: losing it on a restart costs a
/// few extra priority samples). Payload-bearing packets seen per flow, a
/// direct-mapped table per CPU (`sampling::FlowSlot`, see [`priority`]).
#[btf_map]
static PN_PRIO_FLOWS: PerCpuArray<FlowSlot, { capacity::PRIORITY_FLOWS as usize }> =
    PerCpuArray::new();
/// Each source's priority-sample bucket (GCRA theoretical arrival time),
/// keyed by its 16-byte address (IPv4 as `::ffff:a.b.c.d`).
#[btf_map]
static PN_PRIO_SRC: LruHashMap<[u8; 16], u64, { capacity::PRIORITY_SOURCES as usize }> =
    LruHashMap::new();
/// Each CPU's priority-sample bucket, all sources together.
#[btf_map]
static PN_PRIO_CPU: PerCpuArray<u64, 1> = PerCpuArray::new();

/// The inside observer's per-CPU bucket for refusal samples (GCRA
/// theoretical arrival time; not pinned, see [`observe`]).
#[btf_map]
static PN_REPLY_CPU: PerCpuArray<u64, 1> = PerCpuArray::new();
/// The inside observer's per-CPU bucket for answer samples.
#[btf_map]
static PN_ANSWER_CPU: PerCpuArray<u64, 1> = PerCpuArray::new();
/// Each outside host's answer-sample bucket (GCRA theoretical arrival
/// time), keyed as `PN_PRIO_SRC` is. Not pinned.
#[btf_map]
static PN_ANSWER_DST: LruHashMap<[u8; 16], u64, { capacity::ANSWER_DESTINATIONS as usize }> =
    LruHashMap::new();
/// The inside observer's counts per CPU: refusals sampled (slot 0) and
/// past the per-CPU bound, not sampled (slot 1); answers sampled (slot 2)
/// and past a bound (slot 3). Not pinned:
/// `bpftool map dump name PN_REPLY_STATS`.
#[btf_map]
static PN_REPLY_STATS: PerCpuArray<Counter, 4> = PerCpuArray::new();

/// One [`parse::Meta`] per CPU: see [`settle`].
#[btf_map]
static PN_SCRATCH: PerCpuArray<parse::Meta, 1> = PerCpuArray::new();

#[xdp(frags)]
pub fn phantomnet(ctx: XdpContext) -> u32 {
    try_phantomnet(&ctx)
}

/// The inside interfaces' program: observe only ([`observe`]).
#[xdp(frags)]
pub fn phantomnet_inside(ctx: XdpContext) -> u32 {
    observe::observe(&ctx);
    xdp_action::XDP_PASS
}

#[inline(always)]
fn try_phantomnet(ctx: &XdpContext) -> u32 {
    let cfg = PN_CONFIG.get(0).copied().unwrap_or_default();
    let dry_run = cfg.flags & config_flags::DRY_RUN != 0;
    let due = sample::sample_due(cfg.sample_every);
    // A blocked host's packet is dropped after its source address alone,
    // unless it is sampled ([`fast`]). A host the fast path found not
    // blocked is not looked up again: its list bit is cleared for the rest.
    // (The answer travels in `lists`, not in a variable of its own: the
    // verifier would walk the rest of the program once per value.)
    let mut lists = cfg.lists;
    if !due {
        match fast::host(ctx, lists) {
            fast::Host::Blocked => return drop_blocked(ctx, dry_run),
            fast::Host::NotBlocked => lists &= !list_flags::BLOCK_HOST,
            fast::Host::Unchecked => {}
        }
    }
    // SAFETY: ctx.ctx is the xdp_md the kernel handed us.
    let pkt_len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    let Some((mut meta, l4)) = parse::parse_l3(ctx) else {
        sample::count(Outcome::Unparsed, pkt_len);
        return xdp_action::XDP_PASS;
    };
    // Expiry is checked on the coarse clock (a jiffy behind at most, and a
    // fraction of the precise clock's cost); rates and samples read the
    // precise one, and only when they need it.
    // SAFETY: helper without arguments.
    let coarse = unsafe { bpf_ktime_get_coarse_ns() };

    // Rules about the source need only the L3 header: a blocked source's
    // packet is dropped here, before the L4 parse, unless it is sampled.
    let allowed = source::allowed(&meta, lists);
    let blocked = !allowed && source::blocked(&meta, lists, coarse);
    if blocked && !due {
        return drop_blocked(ctx, dry_run);
    }
    parse::parse_l4(ctx, &l4, &mut meta);
    let Some(meta) = settle(&meta) else {
        return xdp_action::XDP_PASS;
    };

    let (outcome, act) = if allowed {
        (Outcome::Allowlisted, action::ALLOW)
    } else if blocked {
        (Outcome::BlockDropped, action::BLOCK)
    } else if cfg.sig_slots != 0 && signature::dropped(ctx, meta, pkt_len, cfg.sig_slots, coarse) {
        (Outcome::SignatureDropped, action::SIGNATURE)
    } else if source::throttled(meta, lists, coarse) {
        (Outcome::ThrottleDropped, action::THROTTLE)
    } else {
        (Outcome::Passed, action::PASS)
    };
    sample::count(outcome, pkt_len);

    // A blocked source's packet took the 1-in-N draw alone (it is dropped
    // before the L4 parse unless due); priority applies to the others.
    let mut now = 0;
    let priority = !blocked
        && cfg.sample_every != 0
        && cfg.flags & config_flags::PRIORITY_SAMPLING != 0
        && priority::admit(meta, pkt_len, &mut now);
    if priority || due {
        if now == 0 {
            now = rate::now();
        }
        // A packet the 1-in-N draw took is a uniform sample, eligible or
        // not: the samples without the PRIORITY flag stay exactly the draw,
        // whose counts the agent scales by N. (It was still admitted: it
        // counts toward its flow's first K and the bounds, and says so in
        // `ALSO_PRIORITY`: it would have been sampled anyway, so schema v7
        // weighs it 1, not N.)
        let act = if priority && due {
            act | action::ALSO_PRIORITY
        } else {
            act
        };
        sample::sample(ctx, meta, now, pkt_len, act, dry_run, priority && !due);
    }
    match outcome {
        Outcome::BlockDropped | Outcome::ThrottleDropped | Outcome::SignatureDropped
            if !dry_run =>
        {
            xdp_action::XDP_DROP
        }
        _ => xdp_action::XDP_PASS,
    }
}

/// Counts a blocked source's packet and drops it (passes it in dry run).
#[inline(always)]
fn drop_blocked(ctx: &XdpContext, dry_run: bool) -> u32 {
    // SAFETY: ctx.ctx is the xdp_md the kernel handed us.
    let pkt_len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    sample::count(Outcome::BlockDropped, pkt_len);
    if dry_run {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// Passes the packet's fields through a per-CPU map slot. The verifier
/// cannot know a value read back from a map, so every path through the
/// parser (each header layout, each offset) reaches the rest of the program
/// in one state, and the signature walk's callback is checked once, not
/// once per layout (without it the program exceeds the verifier's budget;
/// settling only when signature rules exist leaves the per-layout states
/// alive after the branch and exceeds it too). The second lookup, opaque
/// to the compiler, keeps it from forwarding the stored values instead of
/// reading them back. A blocked source's packet is dropped before it.
#[inline(always)]
fn settle(meta: &parse::Meta) -> Option<&'static parse::Meta> {
    let slot = PN_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot of a per-CPU array; no other CPU touches it,
    // and an XDP program is not re-entered on one CPU.
    unsafe { slot.write(*meta) };
    let again = PN_SCRATCH.get_ptr(0)?;
    // SAFETY: as above; nothing writes the slot again in this run.
    Some(unsafe { &*again })
}

/// A rule with this expiry is in force at `now` (0 = never expires).
#[inline(always)]
fn live(expires_ns: u64, now: u64) -> bool {
    expires_ns == 0 || now < expires_ns
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
