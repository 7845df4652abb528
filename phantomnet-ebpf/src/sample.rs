//! Per-CPU outcome counters and the samples written to the ring buffer
//! (drawn 1 in N, or chosen by [`crate::priority`]; the inside observer's
//! refusals, [`crate::observe`], count in `Sampled` and `SampleLost` too).
use aya_ebpf::{
    helpers::{bpf_get_prandom_u32, generated::bpf_xdp_load_bytes},
    programs::XdpContext,
};
use phantomnet_common::{Outcome, SAMPLE_PAYLOAD_LEN, sample_flags};

use crate::{PN_COUNTERS, PN_SAMPLES, parse::Meta};

#[inline(always)]
pub(crate) fn count(outcome: Outcome, len: u64) {
    if let Some(c) = PN_COUNTERS.get_ptr_mut(outcome as u32) {
        // SAFETY: per-CPU slot; no other CPU touches it.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

#[inline(always)]
pub(crate) fn sample_due(every: u32) -> bool {
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
pub(crate) fn sample(
    ctx: &XdpContext,
    meta: &Meta,
    now: u64,
    pkt_len: u64,
    act: u8,
    dry_run: bool,
    priority: bool,
) -> bool {
    let Some(mut entry) = PN_SAMPLES.reserve(0) else {
        count(Outcome::SampleLost, pkt_len);
        return false;
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
        // Word copies: a 16-byte array copy at alignment 1 becomes a call
        // to `memmove`, a byte loop in BPF. Both ends are 8-aligned: `Meta`
        // is, and a PacketSample's addresses sit at offsets 16 and 32 of
        // an 8-aligned ring-buffer record.
        (&raw mut (*s).src_addr)
            .cast::<[u64; 2]>()
            .write(meta.src.as_ptr().cast::<[u64; 2]>().read());
        (&raw mut (*s).dst_addr)
            .cast::<[u64; 2]>()
            .write(meta.dst.as_ptr().cast::<[u64; 2]>().read());
        (*s).src_port = meta.sport;
        (*s).dst_port = meta.dport;
        (*s).payload_len = meta.payload_len;
        (*s).vlan_id = meta.vlan;
        (*s).family = meta.family;
        (*s).protocol = meta.proto;
        (*s).tcp_flags = meta.tcp_flags;
        (*s).ttl = meta.ttl;
        (*s).action = act;
        (*s).flags = meta.flags
            | if dry_run { sample_flags::DRY_RUN } else { 0 }
            | if priority { sample_flags::PRIORITY } else { 0 };
        (*s).icmp_type = meta.icmp_type;
        let payload = (&raw mut (*s).payload).cast::<u64>();
        // Volatile, so the compiler keeps eight word stores instead of
        // turning them into a call to `memset` (a byte loop in BPF).
        for i in 0..SAMPLE_PAYLOAD_LEN / 8 {
            payload.add(i).write_volatile(0);
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
    if priority {
        count(Outcome::PrioritySampled, pkt_len);
    }
    true
}
