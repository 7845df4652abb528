//! The data plane's sampling, emulated over a capture that holds every
//! packet (recorded at 1-in-1), so one recording can be judged (`replay`)
//! and trained on (`dataset --emulate-every`) at any rate.
//!
//! It follows `phantomnet-ebpf/src/main.rs` and `priority.rs`: each packet
//! takes the uniform 1-in-N draw; with priority sampling on, a packet of a
//! priority class (`phantomnet_common::sampling`: connection openers and
//! probes, each flow's first payload packets) is also admitted within the
//! per-source and per-CPU bounds, and counts toward them and its flow's
//! first packets whether or not the draw took it. A drawn packet is a
//! uniform sample; an admitted one the draw did not take is a priority
//! sample (`sample_flags::PRIORITY`); a drawn one it also admitted carries
//! `action::ALSO_PRIORITY`. What it cannot know is left out: the
//! kernel's per-CPU buckets become one (as if every packet came in on one
//! CPU), blocked sources (which the kernel samples 1-in-N only) are not
//! known offline, and the 1-in-N draw uses a seeded generator.
use std::num::NonZeroUsize;

use lru::LruCache;
use phantomnet_common::{
    PacketSample, action, capacity,
    rate::gcra,
    sample_flags,
    sampling::{self, Class, FlowSlot, Reply},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The kernel's per-source bucket map's capacity (`PN_PRIO_SRC`).
const SOURCES: usize = 65_536;

/// The emulated sampler.
pub struct Sampler {
    /// 1 in this many (1: every packet, nothing emulated).
    every: u32,
    priority: bool,
    rng: ChaCha8Rng,
    /// One CPU's direct-mapped flow table (`PN_PRIO_FLOWS`).
    flows: Vec<FlowSlot>,
    sources: LruCache<[u8; 16], u64>,
    cpu: u64,
    /// The inside observer's per-CPU refusal bucket (`PN_REPLY_CPU`).
    replies: u64,
    /// Its per-CPU answer bucket (`PN_ANSWER_CPU`) and per-destination
    /// ones (`PN_ANSWER_DST`).
    answers: u64,
    answered: LruCache<[u8; 16], u64>,
}

/// An address as the kernel keys its per-host buckets: IPv6 as it is,
/// IPv4 as `::ffff:a.b.c.d` (the sample holds it in its first 4 bytes).
fn mapped(family: u8, addr: &[u8; 16]) -> [u8; 16] {
    if family == 6 {
        return *addr;
    }
    let mut m = [0u8; 16];
    m[10] = 0xff;
    m[11] = 0xff;
    m[12..].copy_from_slice(&addr[..4]);
    m
}

impl Sampler {
    pub fn new(every: u32, priority: bool, seed: u64) -> Sampler {
        Sampler {
            every: every.max(1),
            priority,
            rng: ChaCha8Rng::seed_from_u64(seed),
            flows: vec![FlowSlot::default(); capacity::PRIORITY_FLOWS as usize],
            sources: LruCache::new(NonZeroUsize::new(SOURCES).expect("non-zero")),
            cpu: 0,
            replies: 0,
            answers: 0,
            answered: LruCache::new(
                NonZeroUsize::new(capacity::ANSWER_DESTINATIONS as usize).expect("non-zero"),
            ),
        }
    }

    /// The sample the data plane would have written for this packet, if
    /// any.
    pub fn take(&mut self, packet: &PacketSample) -> Option<PacketSample> {
        match sampling::reply_of(packet) {
            Some(Reply::Refusal) => return self.refusal(packet),
            Some(Reply::Answer) => return self.answer(packet),
            None if packet.flags & sample_flags::REPLY != 0 => return None,
            None => {}
        }
        if self.every == 1 {
            return Some(*packet);
        }
        let due = self.rng.random_range(0..self.every) == 0;
        let admitted = self.priority && self.admit(packet);
        let mut s = *packet;
        if due {
            s.flags &= !sample_flags::PRIORITY;
            s.action = s.action_code() | if admitted { action::ALSO_PRIORITY } else { 0 };
            Some(s)
        } else if admitted {
            s.flags |= sample_flags::PRIORITY;
            Some(s)
        } else {
            None
        }
    }

    /// The inside observer's refusal samples are never drawn 1 in N:
    /// every one is kept within the per-CPU bound (`observe.rs`), at any
    /// rate, so a recording at 1-in-1 replays them as they would be
    /// sampled live.
    fn refusal(&mut self, p: &PacketSample) -> Option<PacketSample> {
        gcra(
            &mut self.replies,
            sampling::REPLY_INTERVAL_NS,
            sampling::REPLY_TOLERANCE_NS,
            p.timestamp_ns,
        )
        .then_some(*p)
    }

    /// The inside observer's answer samples are never drawn 1 in N either:
    /// every one is kept within the destination's bound and then the
    /// CPU's (`observe.rs`). A recording at 1-in-1 holds them already
    /// bounded, so this keeps them as they are.
    fn answer(&mut self, p: &PacketSample) -> Option<PacketSample> {
        let now = p.timestamp_ns;
        let key = mapped(p.family, &p.dst_addr);
        let dest = match self.answered.get_mut(&key) {
            Some(tat) => gcra(
                tat,
                sampling::ANSWER_DEST_INTERVAL_NS,
                sampling::ANSWER_DEST_TOLERANCE_NS,
                now,
            ),
            None => {
                self.answered
                    .put(key, now + sampling::ANSWER_DEST_INTERVAL_NS);
                true
            }
        };
        (dest
            && gcra(
                &mut self.answers,
                sampling::ANSWER_CPU_INTERVAL_NS,
                sampling::ANSWER_CPU_TOLERANCE_NS,
                now,
            ))
        .then_some(*p)
    }

    /// `priority::admit`'s decision: a payload packet of a flow past its
    /// first K is out at once; otherwise the CPU's bucket is peeked at, the
    /// flow's packet counted, the source's bucket charged, and then the
    /// CPU's.
    fn admit(&mut self, p: &PacketSample) -> bool {
        let class = sampling::class_of(p);
        if class == Class::Uniform {
            return false;
        }
        let mut flow = None;
        if class == Class::FirstPayload {
            let hash = sampling::flow_hash(
                &p.src_addr,
                &p.dst_addr,
                p.src_port,
                p.dst_port,
                p.protocol,
                p.family,
            );
            let slot = sampling::flow_slot(hash) as usize;
            if self.flows[slot].exhausted(hash) {
                return false;
            }
            flow = Some((slot, hash));
        }
        let now = p.timestamp_ns;
        let mut peek = self.cpu;
        if !gcra(
            &mut peek,
            sampling::CPU_INTERVAL_NS,
            sampling::CPU_TOLERANCE_NS,
            now,
        ) {
            return false;
        }
        if let Some((slot, hash)) = flow {
            self.flows[slot].count(hash);
        }
        let tat = self.sources.get_or_insert_mut(p.src_addr, || 0);
        if !gcra(
            tat,
            sampling::SOURCE_INTERVAL_NS,
            sampling::SOURCE_TOLERANCE_NS,
            now,
        ) {
            return false;
        }
        gcra(
            &mut self.cpu,
            sampling::CPU_INTERVAL_NS,
            sampling::CPU_TOLERANCE_NS,
            now,
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use phantomnet_common::{IPPROTO_TCP, TCP_ACK, TCP_SYN};

    use super::*;

    fn tcp(ts: u64, sport: u16, dport: u16, flags: u8, payload: u16) -> PacketSample {
        let mut s = PacketSample {
            timestamp_ns: ts,
            family: 4,
            protocol: IPPROTO_TCP,
            src_port: sport,
            dst_port: dport,
            tcp_flags: flags,
            payload_len: payload,
            ..PacketSample::ZERO
        };
        s.src_addr[..4].copy_from_slice(&[192, 0, 2, 1]);
        s
    }

    #[test]
    fn openers_and_first_payloads_always_pure_acks_one_in_n() {
        let mut s = Sampler::new(16, true, 1);
        // A slow scan: 30 SYNs, 100 ms apart; every one is taken.
        let taken = (0..30u64)
            .filter(|&i| {
                s.take(&tcp(i * 100_000_000, 40000, i as u16 + 1, TCP_SYN, 0))
                    .is_some()
            })
            .count();
        assert_eq!(taken, 30);
        // A flow's first two payload packets are priority samples, or drawn.
        let t0 = 10_000_000_000;
        for i in 0..2 {
            assert!(s.take(&tcp(t0 + i, 50000, 80, TCP_ACK, 400)).is_some());
        }
        // 1,600 pure ACKs: about 100 drawn, none flagged.
        let acks: Vec<PacketSample> = (0..1600u64)
            .filter_map(|i| s.take(&tcp(t0 + 1000 + i * 1000, 50000, 80, TCP_ACK, 0)))
            .collect();
        assert!((60..=140).contains(&acks.len()), "{}", acks.len());
        assert!(acks.iter().all(|a| a.flags & sample_flags::PRIORITY == 0));
    }

    #[test]
    fn refusals_pass_at_any_rate_within_the_cpu_bound_and_take_no_draw() {
        let reply = |ts: u64| {
            let mut r = tcp(ts, 80, 40000, phantomnet_common::TCP_RST, 0);
            r.flags = sample_flags::REPLY;
            r
        };
        // Interleaved with pure ACKs, every refusal passes, unflagged
        // otherwise; the ACKs' draw is the same as without them.
        let (mut with, mut without) = (Sampler::new(16, true, 7), Sampler::new(16, true, 7));
        let mut drawn = (0, 0);
        for i in 0..1000u64 {
            let a = tcp(i * 1_000_000, 50000, 80, TCP_ACK, 0);
            let r = with
                .take(&reply(i * 1_000_000 + 1))
                .expect("a refusal passes");
            assert_eq!(r.flags, sample_flags::REPLY);
            drawn.0 += with.take(&a).is_some() as u32;
            drawn.1 += without.take(&a).is_some() as u32;
        }
        assert_eq!(drawn.0, drawn.1);
        // 20,000 refusals in 0.1 s: the burst (2,000) and 20,000/s pass.
        let mut s = Sampler::new(1, true, 1);
        let passed = (0..20_000u64)
            .filter(|&i| s.take(&reply(i * 5_000)).is_some())
            .count();
        assert!((3_990..=4_010).contains(&passed), "{passed}");
    }

    #[test]
    fn answers_pass_within_their_destinations_bound_and_take_no_draw() {
        let answer = |ts: u64, dst: u8| {
            let mut r = tcp(ts, 80, 40000, TCP_ACK, 1000);
            r.dst_addr[..4].copy_from_slice(&[192, 0, 2, dst]);
            r.flags = sample_flags::REPLY;
            r
        };
        // 1,000 answers to one host in 1 s, at 1-in-16: its burst (8) and
        // 20/s pass, unflagged otherwise, and the ACKs' draw is the same
        // as without them.
        let (mut with, mut without) = (Sampler::new(16, true, 7), Sampler::new(16, true, 7));
        let (mut passed, mut drawn) = (0, (0, 0));
        for i in 0..1000u64 {
            if let Some(a) = with.take(&answer(i * 1_000_000 + 1, 1)) {
                assert_eq!(a.flags, sample_flags::REPLY);
                passed += 1;
            }
            let ack = tcp(i * 1_000_000, 50000, 80, TCP_ACK, 0);
            drawn.0 += with.take(&ack).is_some() as u32;
            drawn.1 += without.take(&ack).is_some() as u32;
        }
        assert_eq!(drawn.0, drawn.1);
        assert!((27..=29).contains(&passed), "{passed}");
        // Another host has a bucket of its own.
        assert!(with.take(&answer(1_000_000_000, 2)).is_some());
        // A SYN-ACK the observer would never sample is not taken.
        let mut synack = answer(1_000_000_001, 3);
        synack.tcp_flags = phantomnet_common::TCP_SYN | TCP_ACK;
        assert!(with.take(&synack).is_none());
    }

    #[test]
    fn a_heavy_hitter_is_bounded_per_source() {
        let mut s = Sampler::new(16, true, 1);
        // 50,000 SYNs in 1 s from one source: the burst (64) and 200/s pass
        // as priority samples, the rest takes the draw.
        let flagged = (0..50_000u64)
            .filter_map(|i| s.take(&tcp(i * 20_000, (i % 60000) as u16, 80, TCP_SYN, 0)))
            .filter(|x| x.flags & sample_flags::PRIORITY != 0)
            .count();
        assert!((240..=280).contains(&flagged), "{flagged}");
        // Off: the uniform draw alone.
        let mut off = Sampler::new(16, false, 1);
        let none_flagged = (0..1000u64)
            .filter_map(|i| off.take(&tcp(i, 1, 80, TCP_SYN, 0)))
            .all(|x| x.flags & sample_flags::PRIORITY == 0);
        assert!(none_flagged);
    }
}
