//! Samples carry correct field values for real TCP, UDP and ICMP traffic.
use std::{
    io::Write,
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    time::Duration,
};

use phantomnet_agent::dataplane::monotonic_now_ns;
use phantomnet_common::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, action};
use phantomnet_tests::{
    GW_XDP_IFACE, Role, TestLab, addr, drain, from_src, in_netns, root_or_skip, send_udp, udp_from,
    udp_sink,
};

#[test]
fn traffic_passes_and_is_sampled_with_correct_fields() {
    if !root_or_skip("traffic_passes_and_is_sampled_with_correct_fields") {
        return;
    }
    let t = TestLab::up("sample");
    let mut dp = t.load();
    t.maps().set_sampling(1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut reader = dp.take_samples().unwrap();
    let ifindex = in_netns(&t.netns(Role::Gw), || {
        nix::net::if_::if_nametoindex(GW_XDP_IFACE)
    })
    .unwrap();
    let t0 = monotonic_now_ns();

    // UDP over IPv4 and IPv6.
    let payload = b"phantomnet-sample-payload";
    let sink4 = udp_sink(&t.netns(Role::Srv), addr::SRV4, 5000);
    let sink6 = udp_sink(&t.netns(Role::Srv), addr::SRV6, 5000);
    let tx4 = udp_from(&t.netns(Role::Cli), addr::CLI4);
    let tx6 = udp_from(&t.netns(Role::Cli), addr::CLI6);
    send_udp(
        &tx4,
        format!("{}:5000", addr::SRV4).parse().unwrap(),
        10,
        payload,
        None,
    );
    send_udp(
        &tx6,
        format!("[{}]:5000", addr::SRV6).parse().unwrap(),
        10,
        payload,
        None,
    );
    assert_eq!(
        from_src(&drain(&sink4, Duration::from_millis(200)), addr::CLI4),
        10,
        "traffic passes"
    );
    assert_eq!(
        from_src(&drain(&sink6, Duration::from_millis(200)), addr::CLI6),
        10,
        "traffic passes"
    );

    // A TCP connection with a 100-byte request: more than the 64-byte prefix.
    let listener = in_netns(&t.netns(Role::Srv), || {
        TcpListener::bind((addr::SRV4, 8080))
    })
    .unwrap();
    let request = [b'G'; 100];
    let client = in_netns(&t.netns(Role::Cli), || {
        TcpStream::connect_timeout(
            &SocketAddr::new(addr::SRV4.parse().unwrap(), 8080),
            Duration::from_secs(2),
        )
    })
    .unwrap();
    let client_port = client.local_addr().unwrap().port();
    (&client).write_all(&request).unwrap();
    let (_conn, _) = listener.accept().unwrap();

    // ICMP echo.
    let ns = t.lab.ns(Role::Cli);
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-s",
            "40",
            addr::SRV4,
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stderr)
    );

    std::thread::sleep(Duration::from_millis(100));
    let mut samples = Vec::new();
    reader.drain(&mut samples);
    let t1 = monotonic_now_ns();
    for s in &samples {
        assert_eq!(s.ifindex, ifindex);
        assert!(
            (t0..=t1).contains(&s.timestamp_ns),
            "timestamp in the test window"
        );
        assert_eq!(s.action, action::PASS);
        assert_eq!(s.vlan_id, 0);
    }

    let udp4: Vec<_> = samples
        .iter()
        .filter(|s| s.protocol == IPPROTO_UDP && s.family == 4)
        .collect();
    assert_eq!(udp4.len(), 10);
    for s in &udp4 {
        assert_eq!(s.src_ip(), addr::CLI4.parse::<IpAddr>().unwrap());
        assert_eq!(s.dst_ip(), addr::SRV4.parse::<IpAddr>().unwrap());
        assert_eq!(s.src_port, tx4.local_addr().unwrap().port());
        assert_eq!(s.dst_port, 5000);
        assert_eq!(s.ttl, 64, "TTL as it arrives at the gateway");
        assert_eq!(s.packet_len as usize, 14 + 20 + 8 + payload.len());
        assert_eq!(s.payload_len as usize, payload.len());
        assert_eq!(s.payload_valid as usize, payload.len());
        assert_eq!(&s.payload[..payload.len()], payload);
        assert!(
            s.payload[payload.len()..].iter().all(|&b| b == 0),
            "the rest is zeroed"
        );
        assert_eq!(s.flags, 0);
    }

    let udp6: Vec<_> = samples
        .iter()
        .filter(|s| s.protocol == IPPROTO_UDP && s.family == 6)
        .collect();
    assert_eq!(udp6.len(), 10);
    for s in &udp6 {
        assert_eq!(s.src_ip(), addr::CLI6.parse::<IpAddr>().unwrap());
        assert_eq!(s.dst_ip(), addr::SRV6.parse::<IpAddr>().unwrap());
        assert_eq!(s.ttl, 64, "hop limit");
        assert_eq!(s.packet_len as usize, 14 + 40 + 8 + payload.len());
        assert_eq!(&s.payload[..payload.len()], payload);
    }

    let tcp: Vec<_> = samples
        .iter()
        .filter(|s| s.protocol == IPPROTO_TCP && s.src_port == client_port)
        .collect();
    let syn = tcp
        .iter()
        .find(|s| s.tcp_flags == TCP_SYN)
        .expect("a SYN sample");
    assert_eq!(syn.dst_port, 8080);
    assert_eq!(syn.payload_valid, 0);
    let data = tcp
        .iter()
        .find(|s| s.payload_len == 100)
        .expect("the request's sample");
    assert_eq!(
        data.payload_valid, 64,
        "a 64-byte prefix of the 100-byte payload"
    );
    assert!(data.payload.iter().all(|&b| b == b'G'));

    let icmp: Vec<_> = samples
        .iter()
        .filter(|s| s.protocol == IPPROTO_ICMP)
        .collect();
    assert_eq!(icmp.len(), 2);
    assert!(icmp.iter().all(|s| s.icmp_type == 8 && s.payload_len == 40));
    assert_eq!(reader.stats().malformed, 0);
}
