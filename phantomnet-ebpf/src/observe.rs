//! The inside interface, observed and never enforced on. Two kinds of the
//! protected side's packets to outside hosts are sampled into the ring
//! buffer with `sample_flags::REPLY`; every packet passes.
//!
//! - **Refusals** (a TCP reset, an ICMP or ICMPv6 destination unreachable:
//!   `sampling::refusal`): every one, up to a per-CPU bound.
//! - **Answers** (a segment of an established TCP connection, a UDP
//!   datagram: `sampling::answer`): every one up to a per-destination
//!   bound (a burst of 8, then 20 a second) and a per-CPU one.
//!
//! What it is for: an ACK flood's packets look like a download's ACK
//! stream from the outside; the server refuses the first with resets and
//! answers the second with data. The agent counts both against the host
//! they are sent to (docs/FEATURES.md, `server_refusals` and
//! `server_answers`).
use aya_ebpf::{helpers::generated::bpf_xdp_get_buff_len, programs::XdpContext};
use phantomnet_common::{action, sample_flags, sampling};

use crate::{
    PN_ANSWER_CPU, PN_ANSWER_DST, PN_CONFIG, PN_REPLY_CPU, PN_REPLY_STATS, parse, rate, sample,
};

/// `PN_REPLY_STATS` slots: refusals sampled and past the bound, answers
/// sampled and past a bound.
const REFUSALS_SAMPLED: u32 = 0;
const REFUSALS_BOUNDED: u32 = 1;
const ANSWERS_SAMPLED: u32 = 2;
const ANSWERS_BOUNDED: u32 = 3;

#[inline(always)]
pub(crate) fn observe(ctx: &XdpContext) {
    // Sampling off (`sample_every` 0) is off for replies too.
    if PN_CONFIG.get(0).is_none_or(|c| c.sample_every == 0) {
        return;
    }
    let Some((mut meta, l4)) = parse::parse_l3(ctx) else {
        return;
    };
    parse::parse_l4(ctx, &l4, &mut meta);
    let no_l4 = sample_flags::NON_FIRST_FRAGMENT | sample_flags::L4_INCOMPLETE;
    let has_l4 = meta.flags & no_l4 == 0;
    let refusal = sampling::refusal(meta.proto, meta.tcp_flags, meta.icmp_type, has_l4);
    if !refusal && !sampling::answer(meta.proto, meta.tcp_flags, has_l4) {
        return;
    }
    // SAFETY: ctx.ctx is the xdp_md the kernel handed us.
    let pkt_len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    let now = rate::now();
    let (admitted, sampled, bounded) = if refusal {
        (
            cpu_admits(
                PN_REPLY_CPU.get_ptr_mut(0),
                sampling::REPLY_INTERVAL_NS,
                sampling::REPLY_TOLERANCE_NS,
                now,
            ),
            REFUSALS_SAMPLED,
            REFUSALS_BOUNDED,
        )
    } else {
        (
            destination_admits(&meta, now)
                && cpu_admits(
                    PN_ANSWER_CPU.get_ptr_mut(0),
                    sampling::ANSWER_CPU_INTERVAL_NS,
                    sampling::ANSWER_CPU_TOLERANCE_NS,
                    now,
                ),
            ANSWERS_SAMPLED,
            ANSWERS_BOUNDED,
        )
    };
    if !admitted {
        count(bounded, pkt_len);
        return;
    }
    meta.flags |= sample_flags::REPLY;
    if sample::sample(ctx, &meta, now, pkt_len, action::PASS, false, false) {
        count(sampled, pkt_len);
    }
}

/// A per-CPU GCRA bucket: charged if it admits.
#[inline(always)]
fn cpu_admits(cpu: Option<*mut u64>, interval: u64, tolerance: u64, now: u64) -> bool {
    let Some(cpu) = cpu else {
        return false;
    };
    // SAFETY: this CPU's slot of a per-CPU array; no other CPU touches
    // it, and an XDP program is not re-entered on one CPU.
    let mut tat = unsafe { *cpu };
    if !rate::gcra(&mut tat, interval, tolerance, now) {
        return false;
    }
    // SAFETY: as above.
    unsafe { *cpu = tat };
    true
}

/// The destination's own answer bucket, keyed as `PN_PRIO_SRC` is.
#[inline(always)]
fn destination_admits(meta: &parse::Meta, now: u64) -> bool {
    // SAFETY: `Meta` is 8-aligned and its destination sits at offset 16:
    // a word read of 16 plain bytes.
    let dst = unsafe { meta.dst.as_ptr().cast::<[u64; 2]>().read() };
    rate::host_admits(
        &PN_ANSWER_DST,
        &rate::host_key(meta.family, dst),
        sampling::ANSWER_DEST_INTERVAL_NS,
        sampling::ANSWER_DEST_TOLERANCE_NS,
        now,
    )
}

#[inline(always)]
fn count(slot: u32, len: u64) {
    if let Some(c) = PN_REPLY_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot; no other CPU touches it.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}
