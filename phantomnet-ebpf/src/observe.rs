//! The inside interface, observed and never enforced on: the protected
//! side's refusals of outside hosts (a TCP reset, an ICMP or ICMPv6
//! destination unreachable: `sampling::refusal`) are sampled into the ring
//! buffer with `sample_flags::REPLY`, every one of them up to a per-CPU
//! bound. Every packet passes.
//!
//! What it is for: an ACK flood's or an ACK scan's packets look like a
//! download's ACK stream from the outside; the server answers the first
//! with resets and the second with data. The agent counts the refusals
//! against the host they are sent to (docs/FEATURES.md, `server_refusals`).
use aya_ebpf::{helpers::generated::bpf_xdp_get_buff_len, programs::XdpContext};
use phantomnet_common::{action, sample_flags, sampling};

use crate::{PN_CONFIG, PN_REPLY_CPU, PN_REPLY_STATS, parse, rate, sample};

/// `PN_REPLY_STATS` slots.
const SAMPLED: u32 = 0;
const BOUNDED: u32 = 1;

#[inline(always)]
pub(crate) fn observe(ctx: &XdpContext) {
    // Sampling off (`sample_every` 0) is off for refusals too.
    if PN_CONFIG.get(0).is_none_or(|c| c.sample_every == 0) {
        return;
    }
    let Some((mut meta, l4)) = parse::parse_l3(ctx) else {
        return;
    };
    parse::parse_l4(ctx, &l4, &mut meta);
    let no_l4 = sample_flags::NON_FIRST_FRAGMENT | sample_flags::L4_INCOMPLETE;
    if !sampling::refusal(
        meta.proto,
        meta.tcp_flags,
        meta.icmp_type,
        meta.flags & no_l4 == 0,
    ) {
        return;
    }
    // SAFETY: ctx.ctx is the xdp_md the kernel handed us.
    let pkt_len = unsafe { bpf_xdp_get_buff_len(ctx.ctx) };
    let now = rate::now();
    let Some(cpu) = PN_REPLY_CPU.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot of a per-CPU array; no other CPU touches
    // it, and an XDP program is not re-entered on one CPU.
    let mut tat = unsafe { *cpu };
    if !rate::gcra(
        &mut tat,
        sampling::REPLY_INTERVAL_NS,
        sampling::REPLY_TOLERANCE_NS,
        now,
    ) {
        count(BOUNDED, pkt_len);
        return;
    }
    // SAFETY: as above.
    unsafe { *cpu = tat };
    meta.flags |= sample_flags::REPLY;
    if sample::sample(ctx, &meta, now, pkt_len, action::PASS, false, false) {
        count(SAMPLED, pkt_len);
    }
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
