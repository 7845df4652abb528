//! Malformed and unusual packets fed to the loaded program with
//! BPF_PROG_TEST_RUN (`bpftool prog run`). None aborts, each is counted
//! under the specified outcome, and each verdict is the specified one:
//! a packet passes unless its (readable) IPv4/IPv6 source is blocked.
use phantomnet_agent::dataplane::{Counters, Dataplane, Maps, Prefix, SampleReader};
use phantomnet_common::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Outcome, PacketSample, ReasonCode,
    TCP_SYN, sample_flags,
};
use phantomnet_tests::{
    TestPins,
    packet::{self, ETH_8021AD, ETH_8021Q, ETH_IP, ETH_IPV6, Frame},
    prog_run, root_or_skip,
};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

const SRC4: [u8; 4] = [192, 0, 2, 10];
const DST4: [u8; 4] = [203, 0, 113, 10];
const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

struct Bench {
    _pins: TestPins,
    dp: Dataplane,
    maps: Maps,
    id: u32,
    reader: SampleReader,
    _rt: tokio::runtime::Runtime,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let pins = TestPins::new(name);
        let mut dp = pins.load();
        let mut maps = pins.maps();
        maps.set_sampling(1).unwrap();
        let id = dp.program_id().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reader = {
            let _g = rt.enter();
            dp.take_samples().unwrap()
        };
        Bench {
            _pins: pins,
            dp,
            maps,
            id,
            reader,
            _rt: rt,
        }
    }

    /// Runs one frame; asserts the verdict and that exactly one exclusive
    /// outcome counted it (bytes included). Returns its sample, if any.
    fn check(
        &mut self,
        what: &str,
        frame: &[u8],
        verdict: u32,
        outcome: Outcome,
    ) -> Option<PacketSample> {
        let before = self.maps.counters().unwrap();
        let ret = prog_run(self.id, frame, 1)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .retval;
        assert_ne!(ret, XDP_ABORTED, "{what}: aborted");
        assert_eq!(ret, verdict, "{what}: verdict");
        let after = self.maps.counters().unwrap();
        for o in [
            Outcome::Passed,
            Outcome::Allowlisted,
            Outcome::BlockDropped,
            Outcome::ThrottleDropped,
            Outcome::Unparsed,
        ] {
            let d = delta(&before, &after, o);
            let want = if o == outcome {
                (1, frame.len() as u64)
            } else {
                (0, 0)
            };
            assert_eq!(d, want, "{what}: {} (packets, bytes)", o.name());
        }
        let mut samples = Vec::new();
        self.reader.drain(&mut samples);
        assert!(samples.len() <= 1, "{what}: one sample at most");
        let sampled = delta(&before, &after, Outcome::Sampled).0;
        assert_eq!(sampled as usize, samples.len(), "{what}: sampled counter");
        samples.pop()
    }
}

fn delta(a: &Counters, b: &Counters, o: Outcome) -> (u64, u64) {
    (
        b.get(o).packets - a.get(o).packets,
        b.get(o).bytes - a.get(o).bytes,
    )
}

fn v4_tcp() -> Frame {
    Frame::eth(&[], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_TCP,
        &[],
        0,
        &packet::tcp(40000, 80, TCP_SYN, b"0123456789"),
    )
}

fn v6_udp_ext() -> Frame {
    let ext = [
        (packet::NH_HOP, packet::ext_header(0)),
        (packet::NH_ROUTING, packet::ext_header(1)),
        (packet::NH_DEST, packet::ext_header(0)),
    ];
    Frame::eth(&[], ETH_IPV6).ipv6(
        SRC6,
        DST6,
        &ext,
        IPPROTO_UDP,
        &packet::udp(40001, 53, b"query"),
    )
}

fn qinq_v4_udp() -> Frame {
    Frame::eth(&[(ETH_8021AD, 100), (ETH_8021Q, 200)], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_UDP,
        &[],
        0,
        &packet::udp(40002, 5000, b"qinq"),
    )
}

fn v4_options_icmp() -> Frame {
    // IHL 8: 12 bytes of options (NOPs and an end-of-list).
    let opts = [1u8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    Frame::eth(&[], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_ICMP,
        &opts,
        0,
        &packet::icmp_echo(8, b"ping-payload"),
    )
}

/// The offset at which the source address is readable: the end of the
/// fixed IPv4 (20) or IPv6 (40) header.
fn l3_ready(f: &Frame) -> usize {
    let (name, off) = *f
        .offsets
        .iter()
        .find(|(n, _)| *n == "ipv4" || *n == "ipv6")
        .unwrap();
    off + if name == "ipv4" { 20 } else { 40 }
}

#[test]
fn truncated_at_every_length_never_aborts() {
    if !root_or_skip("truncated_at_every_length_never_aborts") {
        return;
    }
    let mut b = Bench::new("trunc");
    for (name, frame) in [
        ("ipv4/tcp", v4_tcp()),
        ("ipv6+ext/udp", v6_udp_ext()),
        ("qinq/ipv4/udp", qinq_v4_udp()),
        ("ipv4+options/icmp", v4_options_icmp()),
    ] {
        let ready = l3_ready(&frame);
        for blocked in [false, true] {
            if blocked {
                let src = if name.starts_with("ipv6") {
                    "2001:db8:bad::10"
                } else {
                    "192.0.2.10"
                };
                b.maps
                    .block(
                        &src.parse::<Prefix>().unwrap(),
                        None,
                        ReasonCode::Manual,
                        "",
                    )
                    .unwrap();
            }
            // Below 14 bytes the kernel refuses the frame before XDP runs.
            for len in [0, 1, 13] {
                let err = prog_run(b.id, &frame.bytes[..len], 1).unwrap_err();
                assert!(
                    matches!(&err, phantomnet_lab::bpf::ProgRunError::Refused(e) if e.contains("Invalid argument")),
                    "{name}[..{len}]: {err}"
                );
            }
            for len in 14..=frame.bytes.len() {
                let cut = &frame.bytes[..len];
                let what = format!("{name} cut at {len} (blocked: {blocked})");
                let (verdict, outcome) = match (len >= ready, blocked) {
                    (false, _) => (XDP_PASS, Outcome::Unparsed),
                    (true, false) => (XDP_PASS, Outcome::Passed),
                    (true, true) => (XDP_DROP, Outcome::BlockDropped),
                };
                let s = b.check(&what, cut, verdict, outcome);
                if let Some(s) = s {
                    let full_l4 = frame.offsets.iter().find(|(n, _)| *n == "l4").unwrap().1 + 8;
                    if len < full_l4 {
                        assert_eq!(
                            (s.src_port, s.dst_port),
                            (0, 0),
                            "{what}: no ports from a cut L4 header"
                        );
                    }
                }
            }
            let rules = b.maps.rules().unwrap();
            for r in rules {
                b.maps.unblock(&r.prefix).unwrap();
            }
        }
    }
    drop(b.dp);
}

/// With sampling off a blocked host's packet takes the data plane's fast
/// path (EtherType, IP version, source address; no full parse). Every
/// layout and every cut gives the full path's answer, the bytes counted
/// are the whole frame's, the entry counts each drop, and an allowlist
/// entry added later still wins over the host's block.
#[test]
fn a_blocked_host_is_dropped_from_its_address_alone() {
    if !root_or_skip("a_blocked_host_is_dropped_from_its_address_alone") {
        return;
    }
    let mut b = Bench::new("fast");
    b.maps.set_sampling(0).unwrap();
    let jumbo = Frame::eth(&[], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_UDP,
        &[],
        0,
        &packet::udp(5, 6, &vec![0x4A; 9000 - 42]),
    );
    let hits = |b: &Bench, prefix: &Prefix| {
        b.maps
            .rules()
            .unwrap()
            .into_iter()
            .find(|r| &r.prefix == prefix)
            .map(|r| r.hits)
            .unwrap()
    };
    for (name, frame) in [
        ("ipv4/tcp", v4_tcp()),
        ("ipv6+ext/udp", v6_udp_ext()),
        ("qinq/ipv4/udp", qinq_v4_udp()),
        ("ipv4+options/icmp", v4_options_icmp()),
        ("jumbo 9000", jumbo),
    ] {
        let (host, cover): (Prefix, Prefix) = if name.starts_with("ipv6") {
            (
                "2001:db8:bad::10".parse().unwrap(),
                "2001:db8:bad::/48".parse().unwrap(),
            )
        } else {
            (
                "192.0.2.10".parse().unwrap(),
                "192.0.2.0/24".parse().unwrap(),
            )
        };
        b.maps.block(&host, None, ReasonCode::Manual, "").unwrap();
        let ready = l3_ready(&frame);
        let mut drops = 0;
        for len in 14..=frame.bytes.len().min(200) {
            let what = format!("{name} cut at {len}, host blocked");
            if len >= ready {
                b.check(&what, &frame.bytes[..len], XDP_DROP, Outcome::BlockDropped);
                drops += 1;
            } else {
                b.check(&what, &frame.bytes[..len], XDP_PASS, Outcome::Unparsed);
            }
        }
        let what = format!("{name} whole, host blocked");
        b.check(&what, &frame.bytes, XDP_DROP, Outcome::BlockDropped);
        drops += 1;
        assert_eq!(hits(&b, &host), drops, "{name}: the entry's hit count");
        // An allowlist entry over a blocked host: the allowlist wins.
        b.maps.allow(&cover).unwrap();
        let what = format!("{name}, blocked host inside an allowed prefix");
        b.check(&what, &frame.bytes, XDP_PASS, Outcome::Allowlisted);
        b.maps.disallow(&cover).unwrap();
        b.maps.allow(&host).unwrap();
        let what = format!("{name}, blocked host also allowed");
        b.check(&what, &frame.bytes, XDP_PASS, Outcome::Allowlisted);
        b.maps.disallow(&host).unwrap();
        assert_eq!(hits(&b, &host), drops, "{name}: no hit while allowed");
        b.maps.unblock(&host).unwrap();
        b.check(
            &format!("{name}, unblocked"),
            &frame.bytes,
            XDP_PASS,
            Outcome::Passed,
        );
    }
    drop(b.dp);
}

#[test]
fn headers_are_walked_as_specified() {
    if !root_or_skip("headers_are_walked_as_specified") {
        return;
    }
    let mut b = Bench::new("walk");

    // IPv4 options: the L4 header is found after IHL*4 bytes.
    let s = b
        .check(
            "ipv4 options",
            &v4_options_icmp().bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!((s.protocol, s.icmp_type), (IPPROTO_ICMP, 8));
    assert_ne!(s.flags & sample_flags::IP_OPTIONS, 0);
    assert_eq!(&s.payload[..12], b"ping-payload");

    // VLAN in VLAN.
    let s = b
        .check("qinq", &qinq_v4_udp().bytes, XDP_PASS, Outcome::Passed)
        .unwrap();
    assert_eq!((s.vlan_id, s.src_port, s.dst_port), (200, 40002, 5000));
    assert_ne!(s.flags & sample_flags::QINQ, 0);
    let single = Frame::eth(&[(ETH_8021Q, 42)], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_UDP,
        &[],
        0,
        &packet::udp(1, 2, b"x"),
    );
    let s = b
        .check("single vlan", &single.bytes, XDP_PASS, Outcome::Passed)
        .unwrap();
    assert_eq!((s.vlan_id, s.flags & sample_flags::QINQ), (42, 0));

    // IPv4 fragments: the first has ports, a later one has none.
    let first = Frame::eth(&[], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_UDP,
        &[],
        0x2000,
        &packet::udp(7, 9, b"frag"),
    );
    let s = b
        .check(
            "ipv4 first fragment",
            &first.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!((s.src_port, s.dst_port), (7, 9));
    assert_eq!(
        s.flags & (sample_flags::FRAGMENT | sample_flags::NON_FIRST_FRAGMENT),
        sample_flags::FRAGMENT
    );
    let later = Frame::eth(&[], ETH_IP).ipv4(SRC4, DST4, IPPROTO_UDP, &[], 185, &[0xEE; 40]);
    let s = b
        .check(
            "ipv4 later fragment",
            &later.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!((s.src_port, s.dst_port, s.payload_valid), (0, 0, 0));
    assert_ne!(s.flags & sample_flags::NON_FIRST_FRAGMENT, 0);

    // IPv6 extension chains.
    let s = b
        .check(
            "ipv6 hop+routing+dest",
            &v6_udp_ext().bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!(
        (s.family, s.protocol, s.src_port, s.dst_port),
        (6, IPPROTO_UDP, 40001, 53)
    );
    assert_eq!(&s.payload[..5], b"query");
    let frag0 = Frame::eth(&[], ETH_IPV6).ipv6(
        SRC6,
        DST6,
        &[(packet::NH_FRAGMENT, packet::frag_header(0, true))],
        IPPROTO_UDP,
        &packet::udp(11, 12, b"f"),
    );
    let s = b
        .check(
            "ipv6 first fragment",
            &frag0.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!((s.src_port, s.dst_port), (11, 12));
    assert_ne!(s.flags & sample_flags::FRAGMENT, 0);
    let frag1 = Frame::eth(&[], ETH_IPV6).ipv6(
        SRC6,
        DST6,
        &[(packet::NH_FRAGMENT, packet::frag_header(100, false))],
        IPPROTO_UDP,
        &[0xAB; 24],
    );
    let s = b
        .check(
            "ipv6 later fragment",
            &frag1.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!((s.src_port, s.dst_port, s.protocol), (0, 0, IPPROTO_UDP));
    assert_ne!(s.flags & sample_flags::NON_FIRST_FRAGMENT, 0);
    let long: Vec<_> = (0..9)
        .map(|_| (packet::NH_DEST, packet::ext_header(0)))
        .collect();
    let chain =
        Frame::eth(&[], ETH_IPV6).ipv6(SRC6, DST6, &long, IPPROTO_UDP, &packet::udp(1, 2, b"deep"));
    let s = b
        .check(
            "ipv6 chain longer than walked",
            &chain.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_ne!(s.flags & sample_flags::L4_INCOMPLETE, 0);
    assert_eq!((s.src_port, s.dst_port), (0, 0));
    let none = Frame::eth(&[], ETH_IPV6).ipv6(SRC6, DST6, &[], packet::NH_NONE, &[]);
    let s = b
        .check(
            "ipv6 no next header",
            &none.bytes,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!(s.protocol, packet::NH_NONE);
    let echo6 = Frame::eth(&[], ETH_IPV6).ipv6(
        SRC6,
        DST6,
        &[],
        IPPROTO_ICMPV6,
        &packet::icmp_echo(128, b"v6"),
    );
    let s = b
        .check("icmpv6 echo", &echo6.bytes, XDP_PASS, Outcome::Passed)
        .unwrap();
    assert_eq!(s.icmp_type, 128);

    // Not IP, and IP headers that lie about themselves.
    let mut arp = Frame::eth(&[], 0x0806).bytes;
    arp.extend([0u8; 28]);
    assert!(b.check("arp", &arp, XDP_PASS, Outcome::Unparsed).is_none());
    let mut bad_version = v4_tcp().bytes;
    bad_version[14] = 0x55;
    assert!(
        b.check("ipv4 version 5", &bad_version, XDP_PASS, Outcome::Unparsed)
            .is_none()
    );
    let mut bad_ihl = v4_tcp().bytes;
    bad_ihl[14] = 0x44;
    assert!(
        b.check("ipv4 ihl 4", &bad_ihl, XDP_PASS, Outcome::Unparsed)
            .is_none()
    );
    let mut short_doff = v4_tcp().bytes;
    short_doff[14 + 20 + 12] = 0x20; // data offset 2 words < 5
    let s = b
        .check("tcp data offset 8", &short_doff, XDP_PASS, Outcome::Passed)
        .unwrap();
    assert_ne!(s.flags & sample_flags::L4_INCOMPLETE, 0);
    let mut lying_len = v4_tcp().bytes;
    lying_len[16..18].copy_from_slice(&60000u16.to_be_bytes()); // total length > frame
    let s = b
        .check(
            "ipv4 total length past the frame",
            &lying_len,
            XDP_PASS,
            Outcome::Passed,
        )
        .unwrap();
    assert_eq!(s.payload_valid, 10, "only the bytes the frame has");

    // Jumbo (multi-buffer): the whole frame is counted, the prefix sampled.
    let jumbo = Frame::eth(&[], ETH_IP).ipv4(
        SRC4,
        DST4,
        IPPROTO_UDP,
        &[],
        0,
        &packet::udp(5, 6, &vec![0x4A; 9000 - 42]),
    );
    assert_eq!(jumbo.bytes.len(), 9000);
    let s = b
        .check("jumbo 9000", &jumbo.bytes, XDP_PASS, Outcome::Passed)
        .unwrap();
    assert_eq!(
        (s.packet_len, s.payload_len, s.payload_valid),
        (9000, 9000 - 42, 64)
    );
    b.maps
        .block(
            &"192.0.2.10".parse::<Prefix>().unwrap(),
            None,
            ReasonCode::Manual,
            "",
        )
        .unwrap();
    b.check(
        "jumbo 9000 blocked",
        &jumbo.bytes,
        XDP_DROP,
        Outcome::BlockDropped,
    );
    b.check(
        "later fragment blocked",
        &later.bytes,
        XDP_DROP,
        Outcome::BlockDropped,
    );
    drop(b.dp);
}

#[test]
fn a_full_map_is_a_clear_error_and_keeps_its_entries() {
    if !root_or_skip("a_full_map_is_a_clear_error_and_keeps_its_entries") {
        return;
    }
    let pins = TestPins::new("full");
    let _dp = pins.load();
    let mut maps = pins.maps();
    // Prefixes fill the trie; host entries (/32) fill the exact-match hash.
    for (len, cap, name) in [
        (31u8, phantomnet_common::capacity::ALLOW, "PN_ALLOW_V4"),
        (32, phantomnet_common::capacity::ALLOW_HOST, "PN_ALLOW_H4"),
    ] {
        let nth = |i: u32| -> Prefix {
            let step = 1u32 << (32 - u32::from(len));
            let [a, b, c, d] = (0x0A00_0000u32 + i * step).to_be_bytes();
            format!("{a}.{b}.{c}.{d}/{len}").parse().unwrap()
        };
        for i in 0..cap {
            maps.allow(&nth(i))
                .unwrap_or_else(|e| panic!("/{len} entry {i}: {e}"));
        }
        let err = maps.allow(&nth(cap)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("map {name} is full ({cap} entries); existing entries are unchanged")
        );
        let rules = maps.rules().unwrap();
        assert_eq!(
            rules
                .iter()
                .filter(|r| r.prefix.prefix_len() == len)
                .count(),
            cap as usize,
            "every existing /{len} entry is still there"
        );
        assert!(rules.iter().all(|r| r.prefix != nth(cap)));
        // Replacing an existing entry still works on a full map.
        maps.allow(&nth(0)).unwrap();
    }
}
