//! Types shared by the XDP program (`phantomnet-ebpf`) and the agent.
//!
//! Everything here is `#[repr(C)]`, `Copy`, and laid out without implicit
//! padding (every struct's size is checked at compile time below), so the
//! kernel and userspace agree on every byte and BTF describes every field.
//!
//! Addresses are stored in network byte order exactly as they appear on the
//! wire; the ports of a [`PacketSample`] are in host byte order (the parser
//! converts them); times are `CLOCK_MONOTONIC` nanoseconds, the clock
//! `bpf_ktime_get_ns()` reads.
#![no_std]

pub mod capture;
pub mod rate;
pub mod sampling;
mod vocab;
pub use vocab::{Action, EventAction, RuleKind};

/// Map names. They are the BTF map symbols in the eBPF object, the names
/// `bpftool map show` prints, and the file names of the pins.
pub mod maps {
    /// LPM trie, key data `[u8; 8]` (IPv4, see [`V4_KEY_LEN`](crate::V4_KEY_LEN)) → [`AllowEntry`](crate::AllowEntry).
    pub const ALLOW_V4: &str = "PN_ALLOW_V4";
    /// LPM trie, key data `[u8; 16]` → [`AllowEntry`](crate::AllowEntry).
    pub const ALLOW_V6: &str = "PN_ALLOW_V6";
    /// LPM trie, key data `[u8; 8]` → [`BlockEntry`](crate::BlockEntry).
    pub const BLOCK_V4: &str = "PN_BLOCK_V4";
    /// LPM trie, key data `[u8; 16]` → [`BlockEntry`](crate::BlockEntry).
    pub const BLOCK_V6: &str = "PN_BLOCK_V6";
    /// LPM trie, key data `[u8; 8]` → [`ThrottleRule`](crate::ThrottleRule).
    pub const THROTTLE_RULE_V4: &str = "PN_THR_RULE_V4";
    /// LPM trie, key data `[u8; 16]` → [`ThrottleRule`](crate::ThrottleRule).
    pub const THROTTLE_RULE_V6: &str = "PN_THR_RULE_V6";
    /// LRU hash, `[u8; 4]` source address → [`ThrottleState`](crate::ThrottleState).
    pub const THROTTLE_STATE_V4: &str = "PN_THR_STATE_V4";
    /// LRU hash, `[u8; 16]` source address → [`ThrottleState`](crate::ThrottleState).
    pub const THROTTLE_STATE_V6: &str = "PN_THR_STATE_V6";
    /// Array of one [`Config`](crate::Config).
    pub const CONFIG: &str = "PN_CONFIG";
    /// Per-CPU array indexed by [`Outcome`](crate::Outcome) → [`Counter`](crate::Counter).
    pub const COUNTERS: &str = "PN_COUNTERS";
    /// Ring buffer of [`PacketSample`](crate::PacketSample).
    pub const SAMPLES: &str = "PN_SAMPLES";
    /// Hash, `[u8; 4]` host address → [`AllowEntry`](crate::AllowEntry):
    /// the allowlist's /32 entries, looked up before the LPM trie.
    pub const ALLOW_HOST_V4: &str = "PN_ALLOW_H4";
    /// Hash, `[u8; 16]` host address → [`AllowEntry`](crate::AllowEntry) (/128).
    pub const ALLOW_HOST_V6: &str = "PN_ALLOW_H6";
    /// Hash, `[u8; 4]` → [`BlockEntry`](crate::BlockEntry): /32 blocks.
    pub const BLOCK_HOST_V4: &str = "PN_BLOCK_H4";
    /// Hash, `[u8; 16]` → [`BlockEntry`](crate::BlockEntry): /128 blocks.
    pub const BLOCK_HOST_V6: &str = "PN_BLOCK_H6";
    /// Array of [`SIG_SLOTS`](crate::capacity::SIG_SLOTS) [`SigRule`](crate::SigRule)s.
    pub const SIG_RULES: &str = "PN_SIG_RULES";
    /// Array, one [`SigState`](crate::SigState) per signature slot.
    pub const SIG_STATE: &str = "PN_SIG_STATE";
    /// Per-CPU array, one [`SigStats`](crate::SigStats) per signature slot.
    pub const SIG_STATS: &str = "PN_SIG_STATS";
    /// LRU hash, `[u8; 4]` → [`KnownGood`](crate::KnownGood): sources a
    /// signature rule exempts.
    pub const KNOWN_GOOD_V4: &str = "PN_GOOD_V4";
    /// LRU hash, `[u8; 16]` → [`KnownGood`](crate::KnownGood).
    pub const KNOWN_GOOD_V6: &str = "PN_GOOD_V6";

    /// Every map PhantomNet pins, in a stable order.
    pub const PINNED: [&str; 20] = [
        ALLOW_V4,
        ALLOW_V6,
        BLOCK_V4,
        BLOCK_V6,
        THROTTLE_RULE_V4,
        THROTTLE_RULE_V6,
        THROTTLE_STATE_V4,
        THROTTLE_STATE_V6,
        CONFIG,
        COUNTERS,
        SAMPLES,
        ALLOW_HOST_V4,
        ALLOW_HOST_V6,
        BLOCK_HOST_V4,
        BLOCK_HOST_V6,
        SIG_RULES,
        SIG_STATE,
        SIG_STATS,
        KNOWN_GOOD_V4,
        KNOWN_GOOD_V6,
    ];
}

/// Capacities of the maps, shared so the agent can report "map full" with
/// the real limit.
pub mod capacity {
    pub const ALLOW: u32 = 4096;
    pub const BLOCK: u32 = 65_536;
    pub const THROTTLE_RULE: u32 = 16_384;
    pub const THROTTLE_STATE: u32 = 65_536;
    /// Ring buffer size in bytes (a power of two, a multiple of the page size).
    pub const SAMPLES_BYTES: u32 = 1 << 22;
    /// Host allow entries (/32, /128) per family.
    pub const ALLOW_HOST: u32 = 16_384;
    /// Host block entries (/32, /128) per family. The hash maps are not
    /// preallocated, so an empty one costs nothing and a full one about
    /// 130 bytes of kernel memory per entry.
    pub const BLOCK_HOST: u32 = 262_144;
    /// Signature rules. XDP walks the slots in use (`Config::sig_slots`)
    /// in order, so the cost per packet grows with the rules loaded.
    pub const SIG_SLOTS: u32 = 64;
    /// Known-good sources per family (LRU: the least recently refreshed go first).
    pub const KNOWN_GOOD: u32 = 65_536;
    /// Slots of each CPU's direct-mapped table of flows whose
    /// payload-bearing packets XDP counts for priority sampling (not
    /// pinned; see [`sampling::FlowSlot`](crate::sampling::FlowSlot)). A
    /// power of two: a flow's slot is the low bits of its hash. 512 KiB
    /// per CPU.
    pub const PRIORITY_FLOWS: u32 = 32_768;
    /// Sources with a priority-sample bucket (LRU, not pinned).
    pub const PRIORITY_SOURCES: u32 = 65_536;
    /// The inside observer's per-destination answer buckets (LRU).
    pub const ANSWER_DESTINATIONS: u32 = 65_536;
}

/// The name of the XDP program in the object (its function name).
pub const PROGRAM_NAME: &str = "phantomnet";
/// The observe-only XDP program for the inside (protected) interfaces: it
/// passes every packet and samples the protected side's refusals of
/// outside hosts ([`sample_flags::REPLY`]).
pub const INSIDE_PROGRAM_NAME: &str = "phantomnet_inside";
/// The default directory for pins: maps at `<dir>/<MAP>`, links at `<dir>/links/<ifname>`.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/phantomnet";
/// Sub-directory of the pin directory that holds one pinned XDP link per interface.
pub const LINKS_SUBDIR: &str = "links";

/// Bytes of L4 payload copied into a sample.
pub const SAMPLE_PAYLOAD_LEN: usize = 64;
/// Bytes of operator text kept with a block (`--reason`).
pub const REASON_TEXT_LEN: usize = 32;
/// Most IPv6 extension headers the parser walks before giving up on L4.
pub const MAX_IPV6_EXT_HEADERS: u32 = 8;

/// What the XDP program did with a packet, and the index into `PN_COUNTERS`.
///
/// `Passed`, `Allowlisted`, `BlockDropped`, `ThrottleDropped`, `Unparsed`
/// and `SignatureDropped` are exclusive (every packet lands in exactly
/// one); `Sampled`, `SampleLost`, `PriorityBounded` and `PrioritySampled`
/// count in addition to them. Variants are appended, never renumbered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed, no rule matched.
    Passed = 0,
    /// Source is allowlisted: passed, never dropped or throttled.
    Allowlisted = 1,
    /// Dropped (or, in dry-run, would have been) by a BLOCK entry.
    BlockDropped = 2,
    /// Dropped (or, in dry-run, would have been) by a THROTTLE bucket.
    ThrottleDropped = 3,
    /// No IPv4/IPv6 source could be read (not IP, or truncated before it): passed.
    Unparsed = 4,
    /// A sample was written to the ring buffer.
    Sampled = 5,
    /// A sample was due but the ring buffer was full.
    SampleLost = 6,
    /// Dropped (or, in dry-run, would have been) by a signature rule,
    /// whatever its source: a drop rule, or a rate-limit rule over its rate.
    SignatureDropped = 7,
    /// A priority-eligible packet (see [`sampling`]) past its source's or
    /// its CPU's bound on priority samples: it took the 1-in-N draw instead.
    PriorityBounded = 8,
    /// A priority sample written ([`sample_flags::PRIORITY`]: eligible,
    /// within the bounds, not taken by the 1-in-N draw); also counted in
    /// `Sampled`.
    PrioritySampled = 9,
}

impl Outcome {
    pub const COUNT: u32 = 10;
    pub const ALL: [Outcome; 10] = [
        Outcome::Passed,
        Outcome::Allowlisted,
        Outcome::BlockDropped,
        Outcome::ThrottleDropped,
        Outcome::Unparsed,
        Outcome::Sampled,
        Outcome::SampleLost,
        Outcome::SignatureDropped,
        Outcome::PriorityBounded,
        Outcome::PrioritySampled,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Allowlisted => "allowlisted",
            Outcome::BlockDropped => "block_dropped",
            Outcome::ThrottleDropped => "throttle_dropped",
            Outcome::Unparsed => "unparsed",
            Outcome::Sampled => "sampled",
            Outcome::SampleLost => "sample_lost",
            Outcome::SignatureDropped => "signature_dropped",
            Outcome::PriorityBounded => "priority_bounded",
            Outcome::PrioritySampled => "priority_sampled",
        }
    }
}

/// `PacketSample::action`: what the data plane decided for the sampled packet.
pub mod action {
    pub const PASS: u8 = 0;
    pub const ALLOW: u8 = 1;
    pub const BLOCK: u8 = 2;
    pub const THROTTLE: u8 = 3;
    /// Matched a signature rule and was dropped (not rate-limited through).
    pub const SIGNATURE: u8 = 4;
    /// The low bits of the byte hold the code above
    /// ([`PacketSample::action_code`]).
    pub const CODE_MASK: u8 = 0x7F;
    /// Not a code: the byte's top bit. Set on a uniform sample (no
    /// [`sample_flags::PRIORITY`](super::sample_flags::PRIORITY)) that
    /// priority sampling admitted as well, so its packet would have been
    /// sampled whatever the 1-in-N draw (schema v7's Horvitz–Thompson
    /// weights: [`PacketSample::taken_with_certainty`]). It lives here
    /// because every `flags` bit is taken and the record's 128 bytes are
    /// the capture format; captures made before it was set read as drawn.
    pub const ALSO_PRIORITY: u8 = 0x80;
}

/// `PacketSample::flags` bits.
pub mod sample_flags {
    /// The verdict was not enforced: dry-run mode.
    pub const DRY_RUN: u8 = 1 << 0;
    /// An IP fragment (IPv4 MF/offset, or an IPv6 fragment header).
    pub const FRAGMENT: u8 = 1 << 1;
    /// A non-first fragment: there is no L4 header, ports are 0.
    pub const NON_FIRST_FRAGMENT: u8 = 1 << 2;
    /// The L4 header was cut short, or the IPv6 extension chain was longer
    /// than the parser walks: ports, flags and payload are 0.
    pub const L4_INCOMPLETE: u8 = 1 << 3;
    /// Two VLAN tags (802.1ad / QinQ) were present.
    pub const QINQ: u8 = 1 << 4;
    /// IPv4 header carried options (IHL > 5).
    pub const IP_OPTIONS: u8 = 1 << 5;
    /// Sampled by priority sampling (see [`sampling`](crate::sampling)),
    /// on top of the 1-in-N draw, which did not take it. Without it a
    /// sample was drawn 1 in N (the uniform stratum) and stands for N; the
    /// agent's rates and volumes come from those alone.
    pub const PRIORITY: u8 = 1 << 6;
    /// Taken by the inside observer ([`INSIDE_PROGRAM_NAME`]): a packet
    /// the protected side sent *to* an outside host that refuses it (a TCP
    /// reset, an ICMP or ICMPv6 destination unreachable; see
    /// [`sampling::refusal`](crate::sampling::refusal)). Its source is the
    /// server and its destination the outside host the refusal is about.
    /// Never drawn 1 in N: every refusal is sampled, within a per-CPU
    /// bound ([`sampling::REPLY_RATE_PPS`](crate::sampling::REPLY_RATE_PPS)).
    pub const REPLY: u8 = 1 << 7;
}

/// `Config::flags` bits.
pub mod config_flags {
    /// Count outcomes as if enforced, but pass every packet.
    pub const DRY_RUN: u32 = 1 << 0;
    /// Priority sampling (see [`sampling`](crate::sampling)) on top of the
    /// 1-in-N draw. Clear: plain uniform sampling.
    pub const PRIORITY_SAMPLING: u32 = 1 << 1;
}

/// `Config::lists` bits: which rule maps may hold entries. XDP skips a
/// map whose bit is clear with that one test, so a packet pays only for
/// the lists in use. The agent sets a bit before it relies on an insert
/// and clears it only after finding the map empty (then looks again), so
/// a set bit may be stale (harmless: one wasted lookup) but a clear bit
/// never hides an entry for longer than that re-check.
pub mod list_flags {
    pub const ALLOW_HOST: u32 = 1 << 0;
    pub const ALLOW_PREFIX: u32 = 1 << 1;
    pub const BLOCK_HOST: u32 = 1 << 2;
    pub const BLOCK_PREFIX: u32 = 1 << 3;
    pub const THROTTLE: u32 = 1 << 4;
    /// Every bit.
    pub const ALL: u32 = ALLOW_HOST | ALLOW_PREFIX | BLOCK_HOST | BLOCK_PREFIX | THROTTLE;
}

/// `SigRule::flags` bits.
pub mod sig_flags {
    /// Sources in the known-good maps pass the rule (counted as exempted).
    pub const EXEMPT_KNOWN_GOOD: u8 = 1 << 0;
}

/// `BlockEntry::reason` codes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonCode {
    Unspecified = 0,
    /// An operator on the command line.
    Manual = 1,
    /// The agent's detection pipeline.
    Detection = 2,
    /// A threat-intelligence feed.
    ThreatIntel = 3,
    /// An orchestrator through the control API.
    Api = 4,
    /// The agent's config file (the allowlist).
    Config = 5,
    /// A CrowdSec Local API's decision stream (the agent as a bouncer).
    CrowdSec = 6,
}

impl ReasonCode {
    pub const fn from_u32(v: u32) -> ReasonCode {
        match v {
            1 => ReasonCode::Manual,
            2 => ReasonCode::Detection,
            3 => ReasonCode::ThreatIntel,
            4 => ReasonCode::Api,
            5 => ReasonCode::Config,
            6 => ReasonCode::CrowdSec,
            _ => ReasonCode::Unspecified,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            ReasonCode::Unspecified => "unspecified",
            ReasonCode::Manual => "manual",
            ReasonCode::Detection => "detection",
            ReasonCode::ThreatIntel => "threat-intel",
            ReasonCode::Api => "api",
            ReasonCode::Config => "config",
            ReasonCode::CrowdSec => "crowdsec",
        }
    }
}

/// LPM trie keys are `{ prefix_len: u32, data: [u8; N] }` (aya's `Key<K>`).
///
/// Bytes of address data in an IPv4 LPM key: the 4 address bytes and 4 zero
/// bytes. The kernel stores a trie value right after the key data, so 8 bytes
/// keep the `u64` fields of the values naturally aligned (the XDP program's
/// volatile `BlockEntry::hits` update and the agent's reads rely on it). Prefix lengths stay 0..=32.
pub const V4_KEY_LEN: usize = 8;
/// Bytes of address data in an IPv6 LPM key.
pub const V6_KEY_LEN: usize = 16;

/// Allowlist entry: the source is never dropped or throttled.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowEntry {
    /// When it was added (monotonic ns).
    pub created_ns: u64,
    /// The entry's own prefix length. An LPM lookup returns the longest
    /// covering entry; this tells the agent which one it got.
    pub prefix_len: u32,
    /// Who added it, a [`ReasonCode`]: `Config` entries are the agent
    /// config's `allowlist`, which a restart re-syncs; others are operators'.
    pub reason: u32,
}

/// Block entry: drop every packet from the prefix until `expires_ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// Monotonic ns after which the kernel ignores the entry; 0 = never.
    pub expires_ns: u64,
    /// When it was added (monotonic ns).
    pub created_ns: u64,
    /// Packets dropped by this entry: an approximate count, bumped by XDP
    /// without an atomic (see docs/DATAPLANE.md); `PN_COUNTERS` is exact.
    pub hits: u64,
    /// A [`ReasonCode`].
    pub reason: u32,
    /// The entry's own prefix length (see [`AllowEntry::prefix_len`]).
    pub prefix_len: u32,
    /// Operator text, NUL-padded UTF-8.
    pub reason_text: [u8; REASON_TEXT_LEN],
}

/// Throttle rule for a prefix: every source address inside it gets its own
/// token bucket of `rate_pps` packets/s and `burst` packets.
///
/// The kernel runs the bucket as GCRA (the virtual-scheduling form of a
/// token bucket): `interval_ns = 1e9 / rate_pps` is the cost of one packet
/// and `tolerance_ns = interval_ns * burst` the depth, both precomputed by
/// the agent so the XDP path does no division.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Monotonic ns after which the kernel ignores the rule; 0 = never.
    pub expires_ns: u64,
    pub created_ns: u64,
    pub interval_ns: u64,
    pub tolerance_ns: u64,
    pub rate_pps: u32,
    pub burst: u32,
    /// The entry's own prefix length (see [`AllowEntry::prefix_len`]).
    pub prefix_len: u32,
    /// Who set it, a [`ReasonCode`] (a detection never weakens another's rule).
    pub reason: u32,
}

/// Per-source bucket state (LRU hash): GCRA's theoretical arrival time plus
/// packet counts for operators.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleState {
    pub tat_ns: u64,
    /// The `created_ns` of the rule this bucket was charged under. A rule
    /// replaced or re-created has a new one, and the bucket starts fresh.
    pub rule_created_ns: u64,
    pub passed: u64,
    pub dropped: u64,
}

/// Data-plane configuration, the single element of `PN_CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Sample 1 packet in N into the ring buffer; 0 = sampling off.
    pub sample_every: u32,
    /// [`config_flags`] bits.
    pub flags: u32,
    /// [`list_flags`] bits.
    pub lists: u32,
    /// Signature slots XDP walks: `PN_SIG_RULES[0..sig_slots]` (at most
    /// [`capacity::SIG_SLOTS`]); 0 = no signature rules.
    pub sig_slots: u32,
}

/// A signature rule: drops or rate-limits every packet that matches,
/// whatever its source (the answer to spoofed and distributed floods).
///
/// A field matches when the packet's value lies in the rule's range (or
/// under its mask); a rule with every field open matches every packet to
/// its destination. Ports, lengths and flags of a packet without an L4
/// header read as 0. See docs/DATAPLANE.md for the text form.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigRule {
    /// Monotonic ns after which XDP ignores the rule; 0 = never.
    pub expires_ns: u64,
    pub created_ns: u64,
    /// Rate limit over all matching packets, GCRA as for throttles:
    /// `interval_ns = 1e9 / rate_pps`; 0 = drop every match.
    pub interval_ns: u64,
    pub tolerance_ns: u64,
    /// Destination address (IPv4 in the first 4 bytes), compared under
    /// `dst_prefix_len`.
    pub dst_addr: [u8; 16],
    /// Leading L4 payload bytes the packet must carry (`payload_len` of them).
    pub payload: [u8; 8],
    /// The agent's id for the rule; 0 marks a free slot.
    pub id: u32,
    /// Packets/s let through (0 = drop); kept for display.
    pub rate_pps: u32,
    /// Who set it, a [`ReasonCode`].
    pub reason: u32,
    /// Inclusive frame length range (the bytes XDP sees).
    pub len_min: u16,
    pub len_max: u16,
    /// Inclusive destination port range.
    pub dport_min: u16,
    pub dport_max: u16,
    pub dst_prefix_len: u8,
    /// 4 or 6.
    pub family: u8,
    /// IP protocol; 0 = any.
    pub protocol: u8,
    /// TCP flags: matches when `flags & tcp_flags_mask == tcp_flags_value`.
    pub tcp_flags_mask: u8,
    pub tcp_flags_value: u8,
    /// Inclusive TTL / hop-limit range.
    pub ttl_min: u8,
    pub ttl_max: u8,
    /// 0..=8 bytes of `payload` to compare.
    pub payload_len: u8,
    /// [`sig_flags`] bits.
    pub flags: u8,
    pub _pad: [u8; 3],
}

/// A signature slot's rate-limit state (shared by all CPUs; updated
/// without a lock, like [`ThrottleState`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigState {
    pub tat_ns: u64,
    /// The `created_ns` of the rule the state belongs to: a new rule in the
    /// slot starts fresh.
    pub rule_created_ns: u64,
}

/// Per CPU, per signature slot: what the rule did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigStats {
    /// Packets that matched the rule.
    pub matched: u64,
    /// Matched and dropped.
    pub dropped: u64,
    /// Matched, but the source is known-good: passed.
    pub exempted: u64,
    /// The `created_ns` of the rule the counts belong to.
    pub rule_created_ns: u64,
}

/// A known-good source: exempt from signature rules that say so.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownGood {
    /// When the agent last vouched for it (monotonic ns).
    pub refreshed_ns: u64,
    /// Packets it passed exempted (approximate: bumped without an atomic).
    pub exempted: u64,
}

/// Packets and bytes for one outcome on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// One sampled packet, as written to `PN_SAMPLES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSample {
    /// `bpf_ktime_get_ns()` when the packet was seen.
    pub timestamp_ns: u64,
    pub ifindex: u32,
    /// Bytes on the wire as XDP saw them (all fragments of a multi-buffer frame).
    pub packet_len: u32,
    /// Source address; IPv4 uses the first 4 bytes.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    /// Ports in host byte order (0 without an L4 header or for ICMP).
    pub src_port: u16,
    pub dst_port: u16,
    /// L4 payload bytes as the IP header declares them.
    pub payload_len: u16,
    /// Innermost VLAN id, 0 if untagged.
    pub vlan_id: u16,
    /// 4 or 6.
    pub family: u8,
    /// IP protocol / IPv6 upper-layer next header.
    pub protocol: u8,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).
    pub tcp_flags: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// An [`action`] code.
    pub action: u8,
    /// Valid bytes at the start of `payload` (0..=64).
    pub payload_valid: u8,
    /// [`sample_flags`] bits.
    pub flags: u8,
    /// ICMP / ICMPv6 type, 0 otherwise.
    pub icmp_type: u8,
    pub payload: [u8; SAMPLE_PAYLOAD_LEN],
}

impl PacketSample {
    /// Every field zero: the base the agent's own samples (Analyze, pcap
    /// import, tests) are built on with `..PacketSample::ZERO`.
    pub const ZERO: PacketSample = PacketSample {
        timestamp_ns: 0,
        ifindex: 0,
        packet_len: 0,
        src_addr: [0; 16],
        dst_addr: [0; 16],
        src_port: 0,
        dst_port: 0,
        payload_len: 0,
        vlan_id: 0,
        family: 0,
        protocol: 0,
        tcp_flags: 0,
        ttl: 0,
        action: 0,
        payload_valid: 0,
        flags: 0,
        icmp_type: 0,
        payload: [0; SAMPLE_PAYLOAD_LEN],
    };

    /// The [`action`] code, without [`action::ALSO_PRIORITY`].
    pub const fn action_code(&self) -> u8 {
        self.action & action::CODE_MASK
    }

    /// Whether the packet opens a TCP connection: SYN set, ACK clear.
    pub const fn opens_connection(&self) -> bool {
        self.protocol == IPPROTO_TCP
            && self.tcp_flags & TCP_SYN != 0
            && self.tcp_flags & TCP_ACK == 0
    }

    /// Whether the packet was sampled with probability 1: a priority
    /// sample, or a uniform one that priority sampling admitted too. The
    /// other samples were drawn 1 in N and each stands for N packets.
    pub const fn taken_with_certainty(&self) -> bool {
        self.flags & sample_flags::PRIORITY != 0 || self.action & action::ALSO_PRIORITY != 0
    }
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

// No implicit padding anywhere: the sizes are the sums of the fields.
const _: () = assert!(core::mem::size_of::<AllowEntry>() == 16);
const _: () = assert!(core::mem::size_of::<BlockEntry>() == 8 * 3 + 4 * 2 + REASON_TEXT_LEN);
const _: () = assert!(core::mem::size_of::<ThrottleRule>() == 8 * 4 + 4 * 4);
const _: () = assert!(core::mem::size_of::<ThrottleState>() == 32);
const _: () = assert!(core::mem::size_of::<Config>() == 16);
const _: () = assert!(core::mem::size_of::<SigRule>() == 8 * 4 + 16 + 8 + 4 * 3 + 2 * 4 + 9 + 3);
const _: () = assert!(core::mem::size_of::<SigState>() == 16);
const _: () = assert!(core::mem::size_of::<SigStats>() == 32);
const _: () = assert!(core::mem::size_of::<KnownGood>() == 16);
const _: () = assert!(core::mem::size_of::<Counter>() == 16);
const _: () = assert!(
    core::mem::size_of::<PacketSample>() == 8 + 4 + 4 + 16 + 16 + 2 * 4 + 8 + SAMPLE_PAYLOAD_LEN
);

#[cfg(feature = "user")]
impl PacketSample {
    fn ip(&self, raw: &[u8; 16]) -> core::net::IpAddr {
        if self.family == 6 {
            core::net::Ipv6Addr::from(*raw).into()
        } else {
            core::net::Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).into()
        }
    }

    /// The source address (IPv4 from the first 4 bytes unless `family` is 6).
    pub fn src_ip(&self) -> core::net::IpAddr {
        self.ip(&self.src_addr)
    }

    /// The destination address, as [`PacketSample::src_ip`].
    pub fn dst_ip(&self) -> core::net::IpAddr {
        self.ip(&self.dst_addr)
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: every type is repr(C), Copy, made only of integers and arrays
    // of integers, with no padding (asserted above); any bit pattern is valid.
    unsafe impl aya::Pod for AllowEntry {}
    unsafe impl aya::Pod for BlockEntry {}
    unsafe impl aya::Pod for ThrottleRule {}
    unsafe impl aya::Pod for ThrottleState {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for SigRule {}
    unsafe impl aya::Pod for SigState {}
    unsafe impl aya::Pod for SigStats {}
    unsafe impl aya::Pod for KnownGood {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for PacketSample {}
}
