//! Which packets the data plane samples, and what each sample stands for.
//!
//! The XDP program samples every packet 1 in N (`Config::sample_every`)
//! at random. On top of that, with `config_flags::PRIORITY_SAMPLING` set,
//! it samples with probability 1 the packets a detector must not miss:
//!
//! - [`Class::Control`]: every TCP segment without ACK (a SYN, and the
//!   FIN, NULL and XMAS probes of a scan) or with RST;
//! - [`Class::FirstPayload`]: a packet that carries data (TCP with payload
//!   and ACK, any UDP datagram, any ICMP/ICMPv6 message), *if* it is among
//!   the first [`FIRST_PAYLOAD_PACKETS`] such packets of its flow (the
//!   kernel keeps a per-flow count, keyed by [`flow_hash`]);
//! - everything else ([`Class::Uniform`]: a pure ACK, a fragment without
//!   its L4 header, other protocols) is only ever sampled 1 in N.
//!
//! A source's priority samples are bounded ([`SOURCE_RATE_PPS`],
//! [`SOURCE_BURST`]) and so are each CPU's ([`CPU_RATE_PPS`],
//! [`CPU_BURST`]); past a bound the packet takes the 1-in-N draw like any
//! other and is counted as `Outcome::PriorityBounded`. A priority sample
//! carries [`sample_flags::PRIORITY`](crate::sample_flags::PRIORITY); a
//! packet the 1-in-N draw takes is a uniform sample, never a priority one,
//! even if it is eligible. So the samples without the flag are exactly the
//! 1-in-N draw over all packets (the uniform stratum: scaled by N, its
//! counts are unbiased), and priority samples come on top of it.
//!
//! Everything here is pure and `no_std`: the kernel calls it per packet,
//! and userspace can call it to emulate the data plane's choice offline
//! (state-free parts only: the per-flow count and the bounds are the
//! caller's to keep).
use crate::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketSample, TCP_ACK};
use crate::{TCP_RST, TCP_SYN, sample_flags};

/// K: the first K payload-bearing packets of each flow are priority
/// samples. Two covers a request and its continuation (an HTTP request
/// whose headers and body arrive in two segments; a DNS query and its
/// retry); the flow's later packets are the bulk the 1-in-N draw sees well.
pub const FIRST_PAYLOAD_PACKETS: u32 = 2;

/// Per-source bound on priority samples: 200 per second, after a burst of
/// 64. 200/s is over 10× the connection rate of a busy browser (a page
/// load opens a few dozen connections, each a SYN plus
/// [`FIRST_PAYLOAD_PACKETS`] payload packets) and 2,000× a slow scan's
/// (one probe every few seconds down to one per 100 ms); 64 lets a page
/// load's burst through. A flood from one source is held to 200 samples/s
/// on top of its 1-in-N samples, so it cannot fill the ring buffer.
pub const SOURCE_RATE_PPS: u64 = 200;
/// Per-source burst (see [`SOURCE_RATE_PPS`]).
pub const SOURCE_BURST: u64 = 64;
/// GCRA interval of the per-source bound.
pub const SOURCE_INTERVAL_NS: u64 = 1_000_000_000 / SOURCE_RATE_PPS;
/// GCRA tolerance of the per-source bound.
pub const SOURCE_TOLERANCE_NS: u64 = SOURCE_INTERVAL_NS * SOURCE_BURST;

/// Per-CPU bound on priority samples, all sources together: 10,000 per
/// second after a burst of 1,000. A flood from many (spoofed) sources
/// passes every per-source bound; this keeps its priority samples to a
/// small addition to the 1-in-N samples a CPU busy with it already
/// produces (at 1 in 16, a CPU handling 1 Mpps writes 62,500 samples/s).
pub const CPU_RATE_PPS: u64 = 10_000;
/// Per-CPU burst (see [`CPU_RATE_PPS`]).
pub const CPU_BURST: u64 = 1_000;
/// GCRA interval of the per-CPU bound.
pub const CPU_INTERVAL_NS: u64 = 1_000_000_000 / CPU_RATE_PPS;
/// GCRA tolerance of the per-CPU bound.
pub const CPU_TOLERANCE_NS: u64 = CPU_INTERVAL_NS * CPU_BURST;

/// Per-CPU bound on the inside observer's refusal samples
/// ([`sample_flags::REPLY`](crate::sample_flags::REPLY)): 20,000 per
/// second after a burst of 2,000. Every refusal is sampled up to it (they
/// are counted, not estimated: one is what separates a stray ACK from a
/// connection's); an ACK flood from many spoofed sources makes the
/// protected side answer each one, and this keeps those answers a bounded
/// addition to the ring buffer. Past it a refusal is not sampled (the
/// observer counts it in `PN_REPLY_STATS`).
pub const REPLY_RATE_PPS: u64 = 20_000;
/// Per-CPU burst of refusal samples (see [`REPLY_RATE_PPS`]).
pub const REPLY_BURST: u64 = 2_000;
/// GCRA interval of the refusal bound.
pub const REPLY_INTERVAL_NS: u64 = 1_000_000_000 / REPLY_RATE_PPS;
/// GCRA tolerance of the refusal bound.
pub const REPLY_TOLERANCE_NS: u64 = REPLY_INTERVAL_NS * REPLY_BURST;

/// Per-destination bound on the inside observer's answer samples
/// ([`answer`]): 20 per second after a burst of 8, for each outside host
/// the protected side answers. The first answers of a conversation are
/// what tells a download's ACK stream from an ACK flood, and a few a
/// second are enough to keep saying so; a heavy download takes its 20,
/// not the CPU's budget.
pub const ANSWER_DEST_RATE_PPS: u64 = 20;
/// Per-destination burst of answer samples (see [`ANSWER_DEST_RATE_PPS`]).
pub const ANSWER_DEST_BURST: u64 = 8;
/// GCRA interval of the per-destination answer bound.
pub const ANSWER_DEST_INTERVAL_NS: u64 = 1_000_000_000 / ANSWER_DEST_RATE_PPS;
/// GCRA tolerance of the per-destination answer bound.
pub const ANSWER_DEST_TOLERANCE_NS: u64 = ANSWER_DEST_INTERVAL_NS * ANSWER_DEST_BURST;
/// Per-CPU bound on answer samples, all destinations together: 10,000 per
/// second after a burst of 1,000 (a bucket of its own: answers never take
/// the refusals' budget).
pub const ANSWER_CPU_RATE_PPS: u64 = 10_000;
/// Per-CPU burst of answer samples (see [`ANSWER_CPU_RATE_PPS`]).
pub const ANSWER_CPU_BURST: u64 = 1_000;
/// GCRA interval of the per-CPU answer bound.
pub const ANSWER_CPU_INTERVAL_NS: u64 = 1_000_000_000 / ANSWER_CPU_RATE_PPS;
/// GCRA tolerance of the per-CPU answer bound.
pub const ANSWER_CPU_TOLERANCE_NS: u64 = ANSWER_CPU_INTERVAL_NS * ANSWER_CPU_BURST;

/// ICMP (IPv4) destination unreachable.
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
/// ICMPv6 destination unreachable.
pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;

/// Whether a packet the protected side sends is a refusal of the host it
/// is sent to: a TCP segment with RST (a closed port, or a segment of no
/// connection: what a server answers to every probe of an ACK scan and
/// every packet of an ACK flood), or an ICMP / ICMPv6 destination
/// unreachable (a closed UDP port, an unreachable service). `l4` as for
/// [`priority_class`]: a packet without a readable L4 header is not one.
#[inline(always)]
pub const fn refusal(proto: u8, tcp_flags: u8, icmp_type: u8, l4: bool) -> bool {
    if !l4 {
        return false;
    }
    match proto {
        IPPROTO_TCP => tcp_flags & TCP_RST != 0,
        IPPROTO_ICMP => icmp_type == ICMP_DEST_UNREACHABLE,
        IPPROTO_ICMPV6 => icmp_type == ICMPV6_DEST_UNREACHABLE,
        _ => false,
    }
}

/// Whether a packet the protected side sends is an answer to the host it
/// is sent to: a TCP segment of an established connection (ACK set, SYN
/// and RST clear: data, a pure ACK, a FIN) or a UDP datagram. A SYN-ACK is
/// not one (a SYN flood and a SYN scan draw those), nor is anything ICMP
/// (an echo flood draws echo replies). `l4` as for [`priority_class`].
#[inline(always)]
pub const fn answer(proto: u8, tcp_flags: u8, l4: bool) -> bool {
    if !l4 {
        return false;
    }
    match proto {
        IPPROTO_TCP => tcp_flags & TCP_ACK != 0 && tcp_flags & (TCP_SYN | TCP_RST) == 0,
        IPPROTO_UDP => true,
        _ => false,
    }
}

/// What an inside observer's sample ([`sample_flags::REPLY`]) says about
/// the outside host it is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// [`refusal`]: the protected side refuses the host.
    Refusal,
    /// [`answer`]: the protected side converses with it.
    Answer,
}

/// The [`Reply`] a recorded sample is, if it is an inside observer's
/// sample of either kind (the observer samples nothing else).
pub const fn reply_of(s: &PacketSample) -> Option<Reply> {
    if s.flags & sample_flags::REPLY == 0 {
        return None;
    }
    let l4 = s.flags & (sample_flags::NON_FIRST_FRAGMENT | sample_flags::L4_INCOMPLETE) == 0;
    if refusal(s.protocol, s.tcp_flags, s.icmp_type, l4) {
        Some(Reply::Refusal)
    } else if answer(s.protocol, s.tcp_flags, l4) {
        Some(Reply::Answer)
    } else {
        None
    }
}

/// How a packet may be sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// 1 in N only.
    Uniform = 0,
    /// Priority (probability 1, within the bounds): TCP without ACK or with RST.
    Control = 1,
    /// Priority if among its flow's first [`FIRST_PAYLOAD_PACKETS`]
    /// payload-bearing packets; 1 in N after that.
    FirstPayload = 2,
}

/// The class of a packet from its header fields: `proto` the IP protocol,
/// `tcp_flags` the TCP flags byte, `payload_len` the L4 payload length the
/// IP header declares, `icmp_type` unused today (every ICMP message is a
/// [`Class::FirstPayload`]; kept so a narrower rule needs no API change).
/// `l4` is false when the packet has no readable L4 header (a non-first
/// fragment, a cut header: `sample_flags::NON_FIRST_FRAGMENT` or
/// `L4_INCOMPLETE`), whose flags and ports read as 0: it is
/// [`Class::Uniform`], so a fragment flood is not mistaken for NULL probes.
#[inline(always)]
pub const fn priority_class(
    proto: u8,
    tcp_flags: u8,
    payload_len: u16,
    icmp_type: u8,
    l4: bool,
) -> Class {
    let _ = icmp_type;
    if !l4 {
        return Class::Uniform;
    }
    match proto {
        IPPROTO_TCP => {
            if tcp_flags & TCP_ACK == 0 || tcp_flags & TCP_RST != 0 {
                Class::Control
            } else if payload_len > 0 {
                Class::FirstPayload
            } else {
                Class::Uniform
            }
        }
        IPPROTO_UDP | IPPROTO_ICMP | IPPROTO_ICMPV6 => Class::FirstPayload,
        _ => Class::Uniform,
    }
}

/// [`priority_class`] of a recorded sample.
pub const fn class_of(s: &PacketSample) -> Class {
    let no_l4 = sample_flags::NON_FIRST_FRAGMENT | sample_flags::L4_INCOMPLETE;
    priority_class(
        s.protocol,
        s.tcp_flags,
        s.payload_len,
        s.icmp_type,
        s.flags & no_l4 == 0,
    )
}

/// The key of a flow in the kernel's per-flow count: a 64-bit hash of the
/// directional 5-tuple. Addresses are the 16-byte fields of a sample
/// (IPv4 in the first 4 bytes, the rest zero); ports in host order (0 for
/// ICMP). Fixed and unkeyed, so userspace computes the same key.
#[inline(always)]
pub const fn flow_hash(
    src: &[u8; 16],
    dst: &[u8; 16],
    sport: u16,
    dport: u16,
    proto: u8,
    family: u8,
) -> u64 {
    let mut h = mix(words(src, 0) ^ 0x9E37_79B9_7F4A_7C15);
    h = mix(h ^ words(src, 8));
    h = mix(h ^ words(dst, 0));
    h = mix(h ^ words(dst, 8));
    let tail = ((sport as u64) << 32) | ((dport as u64) << 16) | ((proto as u64) << 8);
    mix(h ^ tail ^ family as u64)
}

/// One slot of the per-CPU, direct-mapped flow table that counts each
/// flow's payload-bearing packets (`PN_PRIO_FLOWS`; the replay's sampler
/// keeps one such table too). A flow's slot is [`flow_slot`] of its
/// [`flow_hash`]; the slot remembers the last flow that used it. A new
/// flow takes the slot over, and a flow whose slot was taken starts its
/// count again (at most [`FIRST_PAYLOAD_PACKETS`] more priority samples,
/// within the source's and the CPU's bounds).
///
/// Direct-mapped rather than an LRU hash: an array slot is found with an
/// index the verifier inlines, where a hash map costs a helper call, a
/// hash of the key and a bucket walk on every TCP data segment and UDP
/// datagram. What it gives up is only exactness after a collision, which
/// the bounds already cap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlot {
    pub hash: u64,
    pub seen: u32,
    pub _pad: u32,
}

impl FlowSlot {
    /// This slot holds `hash`'s flow, and it has had its first K.
    #[inline(always)]
    pub const fn exhausted(&self, hash: u64) -> bool {
        self.hash == hash && self.seen >= FIRST_PAYLOAD_PACKETS
    }

    /// Counts one payload-bearing packet of `hash`'s flow (taking the slot
    /// over if another flow held it).
    #[inline(always)]
    pub fn count(&mut self, hash: u64) {
        if self.hash == hash {
            self.seen = self.seen.saturating_add(1);
        } else {
            self.hash = hash;
            self.seen = 1;
        }
    }
}

/// The slot of a flow in the direct-mapped table (the hash's low bits).
#[inline(always)]
pub const fn flow_slot(hash: u64) -> u32 {
    (hash as u32) & (crate::capacity::PRIORITY_FLOWS - 1)
}

#[inline(always)]
const fn words(b: &[u8; 16], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

/// SplitMix64's finaliser.
#[inline(always)]
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TCP_FIN, TCP_PSH, TCP_SYN};

    const TCP: u8 = IPPROTO_TCP;

    #[test]
    fn connection_openers_and_probes_are_control() {
        for flags in [
            TCP_SYN,
            0,
            TCP_FIN,
            TCP_FIN | TCP_PSH | 0x20,
            TCP_RST,
            TCP_RST | TCP_ACK,
        ] {
            assert_eq!(priority_class(TCP, flags, 0, 0, true), Class::Control);
        }
        // A SYN with data (TCP Fast Open) is still a connection opener.
        assert_eq!(priority_class(TCP, TCP_SYN, 100, 0, true), Class::Control);
    }

    #[test]
    fn resets_and_destination_unreachables_are_refusals() {
        assert!(refusal(TCP, TCP_RST, 0, true));
        assert!(refusal(TCP, TCP_RST | TCP_ACK, 0, true));
        assert!(!refusal(TCP, TCP_SYN | TCP_ACK, 0, true));
        assert!(!refusal(TCP, TCP_ACK | TCP_PSH, 0, true));
        assert!(!refusal(TCP, TCP_RST, 0, false), "no L4 header: not one");
        assert!(refusal(IPPROTO_ICMP, 0, 3, true));
        assert!(!refusal(IPPROTO_ICMP, 0, 0, true), "an echo reply");
        assert!(!refusal(IPPROTO_ICMP, 0, 11, true), "time exceeded");
        assert!(refusal(IPPROTO_ICMPV6, 0, 1, true));
        assert!(!refusal(IPPROTO_ICMPV6, 0, 129, true), "an echo reply");
        assert!(!refusal(IPPROTO_UDP, 0, 0, true));
        assert_eq!(REPLY_INTERVAL_NS, 50_000);
        assert_eq!(REPLY_TOLERANCE_NS, 100_000_000);
    }

    #[test]
    fn data_is_first_payload_and_pure_acks_uniform() {
        assert_eq!(
            priority_class(TCP, TCP_ACK | TCP_PSH, 1, 0, true),
            Class::FirstPayload
        );
        assert_eq!(priority_class(TCP, TCP_ACK, 0, 0, true), Class::Uniform);
        assert_eq!(
            priority_class(TCP, TCP_ACK | TCP_FIN, 0, 0, true),
            Class::Uniform
        );
        assert_eq!(
            priority_class(IPPROTO_UDP, 0, 0, 0, true),
            Class::FirstPayload
        );
        assert_eq!(
            priority_class(IPPROTO_ICMP, 0, 56, 8, true),
            Class::FirstPayload
        );
        assert_eq!(
            priority_class(IPPROTO_ICMPV6, 0, 0, 135, true),
            Class::FirstPayload
        );
        assert_eq!(priority_class(47, 0, 100, 0, true), Class::Uniform);
    }

    #[test]
    fn packets_without_l4_are_uniform() {
        assert_eq!(priority_class(TCP, 0, 0, 0, false), Class::Uniform);
        assert_eq!(priority_class(IPPROTO_UDP, 0, 0, 0, false), Class::Uniform);
        let s = PacketSample {
            protocol: TCP,
            flags: sample_flags::NON_FIRST_FRAGMENT,
            ..PacketSample::ZERO
        };
        assert_eq!(class_of(&s), Class::Uniform);
        let s = PacketSample {
            protocol: TCP,
            tcp_flags: TCP_SYN,
            ..PacketSample::ZERO
        };
        assert_eq!(class_of(&s), Class::Control);
    }

    #[test]
    fn a_flow_slot_counts_its_flow_and_is_taken_over_by_another() {
        assert!(crate::capacity::PRIORITY_FLOWS.is_power_of_two());
        assert_eq!(flow_slot(u64::MAX), crate::capacity::PRIORITY_FLOWS - 1);
        assert_eq!(core::mem::size_of::<FlowSlot>(), 16);
        let mut slot = FlowSlot::default();
        let (a, b) = (0xA1, 0xB2);
        for _ in 0..FIRST_PAYLOAD_PACKETS {
            assert!(!slot.exhausted(a));
            slot.count(a);
        }
        assert!(slot.exhausted(a));
        // Another flow in the same slot starts from one; the first one,
        // back later, starts again.
        assert!(!slot.exhausted(b));
        slot.count(b);
        assert_eq!(slot.seen, 1);
        assert!(!slot.exhausted(a));
    }

    #[test]
    fn flow_hash_separates_directions_ports_and_families() {
        let a = [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let b = [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let h = flow_hash(&a, &b, 40000, 80, TCP, 4);
        assert_eq!(h, flow_hash(&a, &b, 40000, 80, TCP, 4));
        assert_ne!(h, flow_hash(&b, &a, 40000, 80, TCP, 4));
        assert_ne!(h, flow_hash(&a, &b, 80, 40000, TCP, 4));
        assert_ne!(h, flow_hash(&a, &b, 40000, 81, TCP, 4));
        assert_ne!(h, flow_hash(&a, &b, 40000, 80, IPPROTO_UDP, 4));
        assert_ne!(h, flow_hash(&a, &b, 40000, 80, TCP, 6));
    }

    #[test]
    fn established_segments_and_datagrams_are_answers() {
        for flags in [TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_FIN] {
            assert!(answer(TCP, flags, true), "flags {flags:#x}");
        }
        for flags in [TCP_SYN | TCP_ACK, TCP_RST | TCP_ACK, TCP_RST, TCP_SYN, 0] {
            assert!(!answer(TCP, flags, true), "flags {flags:#x}");
        }
        assert!(answer(IPPROTO_UDP, 0, true));
        assert!(!answer(IPPROTO_UDP, 0, false), "no L4 header: not one");
        assert!(!answer(IPPROTO_ICMP, 0, true), "an echo reply is not one");
        assert!(!answer(IPPROTO_ICMPV6, 0, true));
    }

    #[test]
    fn a_reply_sample_is_a_refusal_or_an_answer_and_nothing_else_is_either() {
        let reply = |protocol, tcp_flags, icmp_type| PacketSample {
            protocol,
            tcp_flags,
            icmp_type,
            flags: sample_flags::REPLY,
            ..PacketSample::ZERO
        };
        assert_eq!(reply_of(&reply(TCP, TCP_RST, 0)), Some(Reply::Refusal));
        assert_eq!(
            reply_of(&reply(IPPROTO_ICMP, 0, ICMP_DEST_UNREACHABLE)),
            Some(Reply::Refusal)
        );
        assert_eq!(reply_of(&reply(TCP, TCP_ACK, 0)), Some(Reply::Answer));
        assert_eq!(reply_of(&reply(IPPROTO_UDP, 0, 0)), Some(Reply::Answer));
        assert_eq!(reply_of(&reply(TCP, TCP_SYN | TCP_ACK, 0)), None);
        let mut cut = reply(TCP, TCP_ACK, 0);
        cut.flags |= sample_flags::L4_INCOMPLETE;
        assert_eq!(reply_of(&cut), None);
        let mut outside = reply(TCP, TCP_RST, 0);
        outside.flags = 0;
        assert_eq!(reply_of(&outside), None, "not the inside observer's");
    }

    #[test]
    fn bounds_are_exact_integers() {
        assert_eq!(ANSWER_DEST_INTERVAL_NS, 50_000_000);
        assert_eq!(ANSWER_DEST_TOLERANCE_NS, 400_000_000);
        assert_eq!(ANSWER_CPU_INTERVAL_NS, 100_000);
        assert_eq!(ANSWER_CPU_TOLERANCE_NS, 100_000_000);
        assert_eq!(SOURCE_INTERVAL_NS, 5_000_000);
        assert_eq!(SOURCE_TOLERANCE_NS, 320_000_000);
        assert_eq!(CPU_INTERVAL_NS, 100_000);
        assert_eq!(CPU_TOLERANCE_NS, 100_000_000);
    }
}
