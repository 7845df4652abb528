//! Samples carry correct field values for real TCP, UDP and ICMP traffic;
//! at 1 in 16, priority sampling still delivers every probe of a slow scan,
//! a single injection request and each UDP probe (as a priority sample,
//! unless the 1-in-N draw took it: then it is a uniform one), and bounds a
//! heavy hitter without crowding out another source.
use std::{
    collections::BTreeSet,
    io::Write,
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use phantomnet_agent::dataplane::monotonic_now_ns;
use phantomnet_common::{
    IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Outcome, PacketSample, TCP_ACK, TCP_SYN, action,
    sample_flags,
};
use phantomnet_tests::{
    AgentProcess, Banner, GW_XDP_IFACE, Role, TestLab, addr, drain, from_src, in_netns,
    root_or_skip, send_udp, udp_from, udp_sink,
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
        assert_eq!(s.action_code(), action::PASS);
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

/// Runs `args` in `role`'s namespace, bounded by `secs` (then killed).
fn run_in(t: &TestLab, role: Role, secs: u32, args: &[&str]) -> Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.lab.ns(role),
            "timeout",
            "--kill-after=2",
        ])
        .arg(secs.to_string())
        .args(args)
        .output()
        .expect("run a tool in the lab")
}

/// Every sample the agent has captured so far (it flushes each batch).
fn captured(path: &Path) -> Vec<PacketSample> {
    std::thread::sleep(Duration::from_millis(1500));
    phantomnet_lab::capture::read(path).expect("read the capture")
}

fn capture_path(t: &TestLab) -> PathBuf {
    std::env::temp_dir().join(format!("{}-prio.pncap", t.lab.prefix()))
}

fn is_syn(s: &PacketSample) -> bool {
    s.protocol == IPPROTO_TCP && s.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

fn from(s: &PacketSample, src: &str) -> bool {
    s.src_ip() == src.parse::<IpAddr>().unwrap()
}

fn priority(s: &PacketSample) -> bool {
    s.flags & sample_flags::PRIORITY != 0
}

/// Of samples the 1-in-N draw could have taken alone (at 1 in 16), how many
/// it may have taken with ~0 chance of a false failure: a packet it takes is
/// a uniform sample, never a priority one.
fn few_drawn(n: usize) -> usize {
    n / 16 + 6
}

/// The `stats` line of one outcome, from the offline CLI.
fn outcome_count(t: &TestLab, o: Outcome) -> u64 {
    t.maps().counters().unwrap().get(o).packets
}

#[test]
fn priority_sampling_sees_scans_injections_and_udp_probes_at_1_in_16() {
    if !root_or_skip("priority_sampling_sees_scans_injections_and_udp_probes_at_1_in_16") {
        return;
    }
    let t = TestLab::up("prio");
    let cap = capture_path(&t);
    let _ = std::fs::remove_file(&cap);
    let cap_s = cap.to_string_lossy().into_owned();
    let _agent = AgentProcess::start(&t, &["--sample-rate", "16", "--capture", &cap_s]);
    let cfg = t.maps().config().unwrap();
    assert_eq!(cfg.sample_every, 16);
    assert_ne!(
        cfg.flags & phantomnet_common::config_flags::PRIORITY_SAMPLING,
        0,
        "on by default"
    );
    let http = Banner::start(
        &t,
        Role::Srv,
        addr::SRV4,
        8080,
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );

    // A slow SYN scan: 30 ports, one probe per 100 ms (hping3).
    let scan = run_in(
        &t,
        Role::Atk,
        20,
        &[
            "hping3",
            "-q",
            "-S",
            "-p",
            "++1000",
            "-c",
            "30",
            "-i",
            "u100000",
            addr::SRV4,
        ],
    );
    assert!(
        scan.status.success() || scan.status.code() == Some(1),
        "hping3: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    // A UDP probe per port: 20 ports, one per 100 ms.
    let udp = run_in(
        &t,
        Role::Atk,
        20,
        &[
            "hping3",
            "-q",
            "--udp",
            "-p",
            "++2000",
            "-c",
            "20",
            "-i",
            "u100000",
            addr::SRV4,
        ],
    );
    assert!(
        udp.status.success() || udp.status.code() == Some(1),
        "hping3: {}",
        String::from_utf8_lossy(&udp.stderr)
    );
    // One HTTP request with an injection payload.
    let url = format!(
        "http://{}:8080/item?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        addr::SRV4
    );
    let curl = run_in(&t, Role::Cli, 10, &["curl", "-s", "-o", "/dev/null", &url]);
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    drop(http);

    let samples = captured(&cap);
    let scan_ports: BTreeSet<u16> = samples
        .iter()
        .filter(|s| from(s, addr::ATK4) && is_syn(s) && (1000..1030).contains(&s.dst_port))
        .map(|s| s.dst_port)
        .collect();
    let drawn = |pick: &dyn Fn(&PacketSample) -> bool| {
        samples.iter().filter(|s| pick(s) && !priority(s)).count()
    };
    let scan_drawn =
        drawn(&|s| from(s, addr::ATK4) && is_syn(s) && (1000..1030).contains(&s.dst_port));
    assert!(
        scan_drawn <= few_drawn(30),
        "{scan_drawn} SYN probes drawn 1 in 16"
    );
    assert_eq!(
        scan_ports,
        (1000..1030).collect::<BTreeSet<u16>>(),
        "every probe of the slow scan reaches the samples"
    );
    // A SYN probe the draw took was admitted as well (openers are bounded
    // per source only, and the scan stays inside the bound) and says so
    // (`action::ALSO_PRIORITY`): schema v7 weighs every one 1, never 16.
    let uncertain: Vec<u16> = samples
        .iter()
        .filter(|s| from(s, addr::ATK4) && is_syn(s) && !s.taken_with_certainty())
        .map(|s| s.dst_port)
        .collect();
    assert!(
        uncertain.is_empty(),
        "SYN probes weighed as drawn 1 in 16: {uncertain:?} ({scan_drawn} drawn)"
    );
    let udp_ports: BTreeSet<u16> = samples
        .iter()
        .filter(|s| {
            from(s, addr::ATK4) && s.protocol == IPPROTO_UDP && (2000..2020).contains(&s.dst_port)
        })
        .map(|s| s.dst_port)
        .collect();
    let udp_drawn = drawn(&|s| {
        from(s, addr::ATK4) && s.protocol == IPPROTO_UDP && (2000..2020).contains(&s.dst_port)
    });
    assert!(
        udp_drawn <= few_drawn(20),
        "{udp_drawn} UDP probes drawn 1 in 16"
    );
    assert_eq!(
        udp_ports,
        (2000..2020).collect::<BTreeSet<u16>>(),
        "every UDP probe reaches the samples"
    );
    let injection: Vec<&PacketSample> = samples
        .iter()
        .filter(|s| {
            from(s, addr::CLI4)
                && s.dst_port == 8080
                && s.payload_valid > 0
                && s.payload.starts_with(b"GET /item?id=1%27%20UNION")
        })
        .collect();
    assert_eq!(injection.len(), 1, "the one injection request is sampled");
    // Its connection's SYN too.
    let syn = samples
        .iter()
        .filter(|s| from(s, addr::CLI4) && is_syn(s) && s.dst_port == 8080)
        .count();
    assert_eq!(syn, 1, "the injection's SYN is sampled");
    let client_drawn = drawn(&|s| from(s, addr::CLI4) && s.dst_port == 8080 && is_syn(s))
        + usize::from(!priority(injection[0]));
    // Priority samples are counted apart (and in `sampled`): at least the
    // probes and the request's two packets, less those the draw took.
    let prio = outcome_count(&t, Outcome::PrioritySampled);
    let expected = (30 + 20 + 2 - scan_drawn - udp_drawn - client_drawn) as u64;
    assert!(prio >= expected, "priority_sampled = {prio} < {expected}");
    assert!(outcome_count(&t, Outcome::Sampled) >= prio);
    let _ = std::fs::remove_file(&cap);
}

#[test]
fn a_heavy_hitter_is_bounded_and_does_not_crowd_out_another_sources_probes() {
    if !root_or_skip("a_heavy_hitter_is_bounded_and_does_not_crowd_out_another_sources_probes") {
        return;
    }
    let t = TestLab::up("prhh");
    let cap = capture_path(&t);
    let _ = std::fs::remove_file(&cap);
    let cap_s = cap.to_string_lossy().into_owned();
    let _agent = AgentProcess::start(&t, &["--sample-rate", "16", "--capture", &cap_s]);
    let bounded0 = outcome_count(&t, Outcome::PriorityBounded);

    // 50,000 SYNs from one source as fast as hping3 goes, while another
    // source sends 20 SYN probes, one per 100 ms.
    let ns = t.lab.ns(Role::Atk);
    let mut hitter = Command::new("ip")
        .args(["netns", "exec", &ns, "timeout", "--kill-after=2", "30"])
        .args(["hping3", "-q", "-S", "-p", "80", "-c", "50000", "-i", "u10"])
        .arg(addr::SRV4)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hping3");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = monotonic_now_ns();
    let probes = run_in(
        &t,
        Role::Cli,
        20,
        &[
            "hping3",
            "-q",
            "-S",
            "-p",
            "++3000",
            "-c",
            "20",
            "-i",
            "u100000",
            addr::SRV4,
        ],
    );
    assert!(
        probes.status.success() || probes.status.code() == Some(1),
        "hping3: {}",
        String::from_utf8_lossy(&probes.stderr)
    );
    let status = hitter.wait().expect("hping3 flood");
    let t1 = monotonic_now_ns();
    assert!(status.code() != Some(124), "the flood finished in time");

    let samples = captured(&cap);
    let probe_ports: BTreeSet<u16> = samples
        .iter()
        .filter(|s| from(s, addr::CLI4) && is_syn(s) && (3000..3020).contains(&s.dst_port))
        .map(|s| s.dst_port)
        .collect();
    assert_eq!(
        probe_ports,
        (3000..3020).collect::<BTreeSet<u16>>(),
        "every probe of the other source reaches the samples during the flood"
    );
    let hitter_syns: Vec<&PacketSample> = samples
        .iter()
        .filter(|s| from(s, addr::ATK4) && is_syn(s) && s.dst_port == 80)
        .collect();
    let prio = hitter_syns.iter().filter(|s| priority(s)).count() as f64;
    let uniform = hitter_syns.len() as f64 - prio;
    // The bound: a burst of 64, then 200/s, over the flood's duration (as
    // long as the test window, plus slack for two CPUs racing on the
    // lockless bucket).
    let secs = (t1 - t0) as f64 / 1e9 + 0.3;
    let bound = 64.0 + 200.0 * secs;
    assert!(
        prio <= bound * 1.2 + 10.0,
        "{prio} priority samples of the hitter, bound {bound:.0} over {secs:.1} s"
    );
    // The rest of its SYNs took the 1-in-16 draw: about 50,000 / 16.
    assert!(
        (2000.0..=4500.0).contains(&uniform),
        "{uniform} uniform samples of 50,000 SYNs at 1 in 16"
    );
    let bounded = outcome_count(&t, Outcome::PriorityBounded) - bounded0;
    assert!(bounded > 40_000, "priority_bounded = {bounded}");
    println!(
        "hitter: {prio} priority + {uniform} uniform samples over {secs:.1} s; priority_bounded {bounded}"
    );
    let _ = std::fs::remove_file(&cap);
}
