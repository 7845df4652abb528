//! The inside observer: XDP on the gateway's inside interface passes every
//! packet and samples, with `sample_flags::REPLY`, the protected server's
//! refusals of outside hosts (TCP resets, ICMP and ICMPv6 destination
//! unreachables: every one) and its answers (segments of established
//! connections: within a per-destination bound), and nothing else; the
//! flow table counts them against the outside source they are sent to
//! (schema v4's `server_refusals`, v5's `server_answers`).
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use phantomnet_agent::{
    dataplane::{Dataplane, LoadOptions, ModeRequest},
    flow::{FlowConfig, FlowTable},
};
use phantomnet_common::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, PacketSample, TCP_RST, TCP_SYN, sample_flags,
    sampling::{self, Reply},
};
use phantomnet_tests::{
    GW_INSIDE_IFACE, GW_XDP_IFACE, Role, TestLab, addr, in_netns, root_or_skip, send_udp, udp_from,
};

const CLOSED_TCP: u16 = 7001;
const CLOSED_UDP: u16 = 7002;
const OPEN_TCP: u16 = 7003;

#[test]
fn the_servers_refusals_are_sampled_as_replies_and_counted_against_the_source() {
    if !root_or_skip("the_servers_refusals_are_sampled_as_replies_and_counted_against_the_source") {
        return;
    }
    let t = TestLab::up("inside");
    let opts = LoadOptions {
        pins: t.pins.clone(),
        interfaces: vec![GW_XDP_IFACE.to_string()],
        inside_interfaces: vec![GW_INSIDE_IFACE.to_string()],
        mode: ModeRequest::Native,
        ebpf_log_level: log::LevelFilter::Warn,
    };
    let mut dp: Dataplane =
        in_netns(&t.netns(Role::Gw), || Dataplane::load(&opts)).expect("load the data plane");
    assert_eq!(dp.inside_interfaces().len(), 1);
    assert!(!dp.inside_interfaces()[0].adopted);
    t.maps().set_sampling(1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut reader = dp.take_samples().unwrap();

    // Refused: 5 connections to a closed TCP port (a RST each) and UDP to a
    // closed port (ICMP port unreachable), over IPv4 and IPv6.
    let atk = t.netns(Role::Atk);
    for dst in [
        format!("{}:{CLOSED_TCP}", addr::SRV4),
        format!("[{}]:{CLOSED_TCP}", addr::SRV6),
    ] {
        let dst: SocketAddr = dst.parse().unwrap();
        for _ in 0..5 {
            let r = in_netns(&atk, || {
                TcpStream::connect_timeout(&dst, Duration::from_secs(2))
            });
            assert_eq!(
                r.unwrap_err().kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{dst} refuses"
            );
        }
    }
    for (src, dst) in [
        (addr::ATK4, format!("{}:{CLOSED_UDP}", addr::SRV4)),
        (addr::ATK6, format!("[{}]:{CLOSED_UDP}", addr::SRV6)),
    ] {
        let tx = udp_from(&atk, src);
        send_udp(&tx, dst.parse().unwrap(), 1, b"probe", None);
    }
    // Answered: a whole connection from the client, with 4 MB of data
    // back (far more segments than the destination's burst) and an
    // orderly close: no refusal, and answers within the bound.
    const DOWNLOAD: usize = 4_000_000;
    let listener = in_netns(&t.netns(Role::Srv), || {
        TcpListener::bind((addr::SRV4, OPEN_TCP))
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&vec![7u8; DOWNLOAD]).unwrap();
    });
    let dst: SocketAddr = format!("{}:{OPEN_TCP}", addr::SRV4).parse().unwrap();
    let started = Instant::now();
    let mut c = in_netns(&t.netns(Role::Cli), || TcpStream::connect(dst)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), DOWNLOAD);
    server.join().unwrap();
    drop(c);
    std::thread::sleep(Duration::from_millis(300));

    let mut samples: Vec<PacketSample> = Vec::new();
    reader.drain(&mut samples);
    let replies: Vec<&PacketSample> = samples
        .iter()
        .filter(|s| sampling::reply_of(s) == Some(Reply::Refusal))
        .collect();
    let answers: Vec<&PacketSample> = samples
        .iter()
        .filter(|s| sampling::reply_of(s) == Some(Reply::Answer))
        .collect();
    assert_eq!(
        replies.len() + answers.len(),
        samples
            .iter()
            .filter(|s| s.flags & sample_flags::REPLY != 0)
            .count(),
        "every reply sample is a refusal or an answer"
    );
    let ip = |s: &PacketSample, dst: bool| {
        let a = if dst { &s.dst_addr } else { &s.src_addr };
        phantomnet_agent::flow::SourceKey::from_raw(s.family, a)
            .ip()
            .to_string()
    };
    // Every refusal is the server's of the attacker, and each kind is
    // there: 5 resets per family, an unreachable per family.
    for s in &replies {
        assert_eq!(
            ip(s, false),
            if s.family == 6 {
                addr::SRV6
            } else {
                addr::SRV4
            }
        );
        assert_eq!(
            ip(s, true),
            if s.family == 6 {
                addr::ATK6
            } else {
                addr::ATK4
            }
        );
        assert!(
            (s.protocol == IPPROTO_TCP && s.tcp_flags & TCP_RST != 0)
                || (s.protocol == IPPROTO_ICMP && s.icmp_type == 3)
                || (s.protocol == IPPROTO_ICMPV6 && s.icmp_type == 1),
            "not a refusal: {s:?}"
        );
    }
    let count = |family: u8, proto: u8| {
        replies
            .iter()
            .filter(|s| s.family == family && s.protocol == proto)
            .count()
    };
    assert_eq!(count(4, IPPROTO_TCP), 5, "IPv4 resets");
    assert_eq!(count(6, IPPROTO_TCP), 5, "IPv6 resets");
    assert_eq!(count(4, IPPROTO_ICMP), 1, "ICMP port unreachable");
    assert_eq!(count(6, IPPROTO_ICMPV6), 1, "ICMPv6 port unreachable");
    // The client's connection was seen from the outside (sampled at
    // 1-in-1), and the server's answers to it are answer samples: from the
    // open port to the client, never a SYN-ACK, the first 8 of far more
    // segments and then 20 a second at most.
    assert!(samples.iter().any(|s| s.flags & sample_flags::REPLY == 0
        && ip(s, false) == addr::CLI4
        && s.dst_port == OPEN_TCP));
    for s in &answers {
        assert_eq!(ip(s, false), addr::SRV4);
        assert_eq!(ip(s, true), addr::CLI4);
        assert_eq!(s.src_port, OPEN_TCP);
        assert_eq!(s.tcp_flags & TCP_SYN, 0, "a SYN-ACK is no answer: {s:?}");
    }
    let bound = sampling::ANSWER_DEST_BURST as f64
        + 1.0
        + took.as_secs_f64() * sampling::ANSWER_DEST_RATE_PPS as f64;
    assert!(
        answers.len() >= sampling::ANSWER_DEST_BURST as usize && answers.len() as f64 <= bound,
        "{} answers sampled in {took:?} (bound {bound:.1})",
        answers.len()
    );

    // Through the flow table: the attacker's sources carry the refusals
    // and no answer, the client's the answers and no refusal, and the
    // server is no source at all.
    let mut table = FlowTable::new(FlowConfig::default());
    for s in &samples {
        if s.flags & sample_flags::REPLY != 0 {
            table.record_reply(s);
        } else {
            table.record(s);
        }
    }
    let last = samples.iter().map(|s| s.timestamp_ns).max().unwrap();
    let of = |src: &str| {
        let s = samples
            .iter()
            .find(|s| s.flags & sample_flags::REPLY == 0 && ip(s, false) == src)
            .unwrap_or_else(|| panic!("no sample from {src}"));
        let stats = table.with_server_side(s, last, Default::default());
        (stats.server_refusals, stats.server_answers)
    };
    assert_eq!(of(addr::ATK4), (6.0, 0.0), "5 resets and an unreachable");
    assert_eq!(of(addr::ATK6), (6.0, 0.0));
    assert_eq!(of(addr::CLI4), (0.0, answers.len() as f64));
    assert!(
        !samples
            .iter()
            .any(|s| s.flags & sample_flags::REPLY == 0 && ip(s, false) == addr::SRV4),
        "the inside interface's own traffic is never a source sample"
    );

    // Sampling off is off for replies too.
    t.maps().set_sampling(0).unwrap();
    let dst: SocketAddr = format!("{}:{CLOSED_TCP}", addr::SRV4).parse().unwrap();
    for _ in 0..3 {
        let r = in_netns(&atk, || {
            TcpStream::connect_timeout(&dst, Duration::from_secs(2))
        });
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut after = Vec::new();
    reader.drain(&mut after);
    assert!(
        after.is_empty(),
        "{} samples with sampling off",
        after.len()
    );
}
