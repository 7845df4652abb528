//! Priority sampling: the packets a detector must see (connection
//! openers, scan probes, the first payload packets of each flow) are
//! sampled with probability 1, within a per-source and a per-CPU bound.
//! The classification is `phantomnet_common::sampling`'s; this module
//! keeps the state it needs (the per-flow count and the two buckets).
use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use phantomnet_common::{
    Outcome, sample_flags,
    sampling::{self, Class},
};

use crate::{PN_PRIO_CPU, PN_PRIO_FLOWS, PN_PRIO_SRC, parse::Meta, rate, sample};

/// What the decision needs: the packet's fields, no packet pointers.
#[repr(C)]
struct Decide {
    /// Addresses as words: copied with two loads and stores each (a byte
    /// array copy can become a call to `memmove`, a byte loop in BPF).
    src: [u64; 2],
    dst: [u64; 2],
    now: u64,
    pkt_len: u64,
    sport: u16,
    dport: u16,
    family: u8,
    proto: u8,
    /// A [`Class`] (not `Uniform`).
    class: u8,
    /// Set by the decision: 1 = a priority sample.
    admitted: u8,
}

/// Whether this packet is admitted as a priority sample (it is flagged
/// one only if the 1-in-N draw did not take it). Counts a packet that was
/// eligible but past a bound as [`Outcome::PriorityBounded`] (it then
/// takes the 1-in-N draw like any other). `now` is set when the precise
/// clock was read (an eligible packet not already past its flow's first
/// K) and handed back for the sample's timestamp; it stays 0 otherwise.
///
/// The classification is inline and touches no map, so a pure ACK pays a
/// few compares. The rest runs in a one-iteration `bpf_loop` callback, as
/// the signature walk does: the verifier checks its branches (three map
/// lookups, two buckets) once, instead of once for every state the rest of
/// the program reaches it in, which exceeds its 1M-instruction budget.
#[inline(always)]
pub(crate) fn admit(meta: &Meta, pkt_len: u64, now: &mut u64) -> bool {
    let no_l4 = sample_flags::NON_FIRST_FRAGMENT | sample_flags::L4_INCOMPLETE;
    let class = sampling::priority_class(
        meta.proto,
        meta.tcp_flags,
        meta.payload_len,
        meta.icmp_type,
        meta.flags & no_l4 == 0,
    );
    if class == Class::Uniform {
        // Pure ACKs and the like: no map is touched.
        return false;
    }
    let mut d = Decide {
        // SAFETY: `Meta` is 8-aligned and its addresses sit at offsets 0
        // and 16: word reads of 16 plain bytes.
        src: unsafe { meta.src.as_ptr().cast::<[u64; 2]>().read() },
        dst: unsafe { meta.dst.as_ptr().cast::<[u64; 2]>().read() },
        now: 0,
        pkt_len,
        sport: meta.sport,
        dport: meta.dport,
        family: meta.family,
        proto: meta.proto,
        class: class as u8,
        admitted: 0,
    };
    // SAFETY: `decide` has the callback signature bpf_loop expects, and
    // `d` outlives the call.
    unsafe {
        bpf_loop(1, decide as *mut c_void, (&raw mut d).cast(), 0);
    }
    *now = d.now;
    d.admitted != 0
}

#[inline(never)]
extern "C" fn decide(_index: u32, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the `Decide` that `admit` passed.
    let d = unsafe { &mut *ctx.cast::<Decide>() };
    // A payload packet of a flow past its first K is the common case (every
    // later TCP data segment and UDP datagram): one array slot, no clock.
    let mut hash = 0;
    if d.class == Class::FirstPayload as u8 {
        hash = sampling::flow_hash(
            &bytes(d.src),
            &bytes(d.dst),
            d.sport,
            d.dport,
            d.proto,
            d.family,
        );
        let Some(slot) = PN_PRIO_FLOWS.get_ptr(sampling::flow_slot(hash)) else {
            return 1;
        };
        // SAFETY: this CPU's slot of a per-CPU array; no other CPU touches
        // it, and an XDP program is not re-entered on one CPU.
        if unsafe { (*slot).exhausted(hash) } {
            return 1;
        }
    }
    d.now = rate::now();
    // The CPU's bucket is only peeked at here and charged below, once the
    // packet is known to be a priority sample.
    let Some(cpu) = PN_PRIO_CPU.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's slot; as above.
    let mut cpu_tat = unsafe { *cpu };
    let mut peek = cpu_tat;
    if !rate::gcra(
        &mut peek,
        sampling::CPU_INTERVAL_NS,
        sampling::CPU_TOLERANCE_NS,
        d.now,
    ) {
        sample::count(Outcome::PriorityBounded, d.pkt_len);
        return 1;
    }
    if d.class == Class::FirstPayload as u8 {
        // Looked up again rather than kept across the helper calls (the
        // verifier loses a pointer kept that way); an inlined array index.
        if let Some(slot) = PN_PRIO_FLOWS.get_ptr_mut(sampling::flow_slot(hash)) {
            // SAFETY: as above.
            unsafe { (*slot).count(hash) };
        }
    }
    if !source_admits(d) {
        sample::count(Outcome::PriorityBounded, d.pkt_len);
        return 1;
    }
    rate::gcra(
        &mut cpu_tat,
        sampling::CPU_INTERVAL_NS,
        sampling::CPU_TOLERANCE_NS,
        d.now,
    );
    // SAFETY: as above.
    unsafe { *cpu = cpu_tat };
    d.admitted = 1;
    1
}

/// The source's own bucket (GCRA in an LRU map shared by the CPUs,
/// `rate::host_admits`), keyed by its 16-byte address.
#[inline(always)]
fn source_admits(d: &Decide) -> bool {
    rate::host_admits(
        &PN_PRIO_SRC,
        &rate::host_key(d.family, d.src),
        sampling::SOURCE_INTERVAL_NS,
        sampling::SOURCE_TOLERANCE_NS,
        d.now,
    )
}

/// Two words as the 16 bytes they hold in memory (little-endian).
#[inline(always)]
fn bytes(words: [u64; 2]) -> [u8; 16] {
    // SAFETY: two u64 are 16 plain bytes.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
}
