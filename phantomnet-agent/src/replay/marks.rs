//! `action::ALSO_PRIORITY` in a capture recorded before the data plane set
//! it (the held-out recordings up to the twenty-second), so that schema
//! v7's census can be replayed over it without bias (docs/FEATURES.md,
//! "Schema v7"; docs/HELDOUT.md, "The twenty-third recording").
//!
//! A uniform sample (neither `PRIORITY` nor `REPLY`) gets the mark when
//! priority sampling would have admitted it as well, by the classes of
//! [`sampling::class_of`]: a [`Class::Control`] packet always; a
//! [`Class::FirstPayload`] one while its directional 5-tuple
//! ([`sampling::flow_hash`]) has had fewer than
//! [`sampling::FIRST_PAYLOAD_PACKETS`] such samples. Every one of a flow's
//! first payload packets is in a 1-in-N capture, as a priority sample or
//! as a drawn one, so the count is exact. What it cannot see are the
//! per-source and per-CPU bounds and the kernel's flow-slot collisions.
//!
//! Offline only: the flow counts grow with the flows the capture holds
//! (at most one entry per record), as the replay's other records do.
use std::collections::HashMap;

use clap::ValueEnum;
use phantomnet_common::{
    PacketSample, action, sample_flags,
    sampling::{self, Class},
};
use serde::Serialize;

/// What the replay does with the capture's `ALSO_PRIORITY` marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Marks {
    /// Keep them as the data plane wrote them.
    #[default]
    AsRecorded,
    /// Rebuild them from the sampling classes and the capture's own
    /// per-flow order (a capture recorded before the mark existed).
    Rebuild,
    /// Clear them all (replay a marked capture as an unmarked one).
    Strip,
}

impl Marks {
    /// Its command-line form, as clap derives it (`as-recorded`, …).
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// What rebuilding found, over the uniform samples of the capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RebuiltMarks {
    /// Uniform (drawn) samples.
    pub uniform: u64,
    /// Of them, marked by the rebuild.
    pub marked: u64,
    /// Of them, where the rebuilt mark equals the one recorded (all of
    /// them unmarked in a capture from before the mark).
    pub agreed: u64,
}

/// Applies [`Marks`] to each record, in capture order.
#[derive(Debug, Default)]
pub struct Remarker {
    marks: Marks,
    /// Payload-class samples seen per flow (its 64-bit hash).
    flows: HashMap<u64, u32>,
    rebuilt: RebuiltMarks,
}

impl Remarker {
    pub fn new(marks: Marks) -> Remarker {
        Remarker {
            marks,
            ..Remarker::default()
        }
    }

    /// The rebuild's counts (`None` unless rebuilding).
    pub fn rebuilt(&self) -> Option<RebuiltMarks> {
        (self.marks == Marks::Rebuild).then_some(self.rebuilt)
    }

    /// Sets or clears `s`'s mark as [`Marks`] says.
    pub fn apply(&mut self, s: &mut PacketSample) {
        match self.marks {
            Marks::AsRecorded => {}
            Marks::Strip => s.action = s.action_code(),
            Marks::Rebuild => self.rebuild(s),
        }
    }

    fn rebuild(&mut self, s: &mut PacketSample) {
        if s.flags & sample_flags::REPLY != 0 {
            return;
        }
        let drawn = s.flags & sample_flags::PRIORITY == 0;
        let admitted = match sampling::class_of(s) {
            Class::Uniform => false,
            Class::Control => true,
            Class::FirstPayload => {
                let key = sampling::flow_hash(
                    &s.src_addr,
                    &s.dst_addr,
                    s.src_port,
                    s.dst_port,
                    s.protocol,
                    s.family,
                );
                let seen = self.flows.entry(key).or_insert(0);
                let first = *seen < sampling::FIRST_PAYLOAD_PACKETS;
                if first {
                    *seen += 1;
                }
                first
            }
        };
        if !drawn {
            return;
        }
        let had = s.action & action::ALSO_PRIORITY != 0;
        self.rebuilt.uniform += 1;
        self.rebuilt.marked += u64::from(admitted);
        self.rebuilt.agreed += u64::from(admitted == had);
        s.action = s.action_code() | if admitted { action::ALSO_PRIORITY } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_PSH, TCP_SYN};

    use super::*;

    fn tcp_sample(sport: u16, flags: u8, payload: u16, priority: bool) -> PacketSample {
        PacketSample {
            family: 4,
            protocol: IPPROTO_TCP,
            src_addr: [192, 0, 2, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst_addr: [198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            src_port: sport,
            dst_port: 80,
            tcp_flags: flags,
            payload_len: payload,
            flags: if priority { sample_flags::PRIORITY } else { 0 },
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn rebuild_marks_drawn_openers_and_a_flows_first_payloads_only() {
        let mut r = Remarker::new(Marks::Rebuild);
        // A drawn SYN: priority would have taken it.
        let mut syn = tcp_sample(40_000, TCP_SYN, 0, false);
        r.apply(&mut syn);
        assert!(syn.taken_with_certainty());
        // The flow's first payload packet was a priority sample, the second
        // drawn: both count, the drawn one is marked; the third is not.
        let mut first = tcp_sample(40_000, TCP_ACK | TCP_PSH, 100, true);
        r.apply(&mut first);
        assert_eq!(
            first.action & action::ALSO_PRIORITY,
            0,
            "not a uniform sample"
        );
        let mut second = tcp_sample(40_000, TCP_ACK | TCP_PSH, 100, false);
        r.apply(&mut second);
        assert!(second.action & action::ALSO_PRIORITY != 0);
        let mut third = tcp_sample(40_000, TCP_ACK | TCP_PSH, 100, false);
        r.apply(&mut third);
        assert_eq!(third.action & action::ALSO_PRIORITY, 0);
        // Another flow (source port) starts its own count; a pure ACK is
        // never priority.
        let mut other = tcp_sample(40_001, TCP_ACK, 10, false);
        r.apply(&mut other);
        assert!(other.action & action::ALSO_PRIORITY != 0);
        let mut ack = tcp_sample(40_001, TCP_ACK, 0, false);
        ack.action = action::PASS | action::ALSO_PRIORITY;
        r.apply(&mut ack);
        assert_eq!(ack.action, action::PASS, "a wrong mark is cleared");
        assert_eq!(
            r.rebuilt(),
            Some(RebuiltMarks {
                uniform: 5,
                marked: 3,
                agreed: 1,
            })
        );
    }

    #[test]
    fn replies_are_left_alone_and_strip_clears_every_mark() {
        let mut r = Remarker::new(Marks::Rebuild);
        let mut reply = PacketSample {
            protocol: IPPROTO_UDP,
            flags: sample_flags::REPLY,
            ..PacketSample::ZERO
        };
        r.apply(&mut reply);
        assert_eq!(reply.action, 0);
        assert_eq!(r.rebuilt().map(|m| m.uniform), Some(0));

        let mut s = Remarker::new(Marks::Strip);
        let mut marked = tcp_sample(1, TCP_SYN, 0, false);
        marked.action = action::BLOCK | action::ALSO_PRIORITY;
        s.apply(&mut marked);
        assert_eq!(marked.action, action::BLOCK);
        assert_eq!(s.rebuilt(), None);

        let mut kept = Remarker::new(Marks::AsRecorded);
        let mut m = tcp_sample(1, TCP_SYN, 0, false);
        m.action = action::PASS | action::ALSO_PRIORITY;
        kept.apply(&mut m);
        assert_eq!(m.action, action::PASS | action::ALSO_PRIORITY);
    }
}
