//! Support for PhantomNet's root-only end-to-end tests: a lab per test
//! (its own namespaces and pin directory, removed on drop), sockets inside
//! a namespace, the agent as a real process, and crafted packets.
pub mod crowdsec;
pub mod deceive;
pub mod nginx;
pub mod observe;

use std::{
    fs,
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use phantomnet_agent::dataplane::{Dataplane, LoadOptions, Maps, ModeRequest, PinDir};
use phantomnet_lab::agent::{AgentRun, AgentSpec};
pub use phantomnet_lab::bpf::prog_run;
pub use phantomnet_lab::lab::{GW_INSIDE_IFACE, GW_XDP_IFACE, Lab, LabOptions, Role, addr};
pub use phantomnet_lab::{packet, traffic};

/// True if running as root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    println!("SKIP {test}: needs root (network namespaces, XDP, bpffs)");
    false
}

/// A lab and a pin directory that belong to one test, removed on drop
/// (pins first, which detaches XDP; then the namespaces).
pub struct TestLab {
    pub lab: Lab,
    pub pins: PinDir,
}

impl TestLab {
    pub fn up(name: &str) -> TestLab {
        TestLab::up_with(name, LabOptions::default())
    }

    pub fn up_with(name: &str, opts: LabOptions) -> TestLab {
        let prefix = format!("pnt-{name}");
        let lab = Lab::new(&prefix, opts);
        let pins = PinDir::new(format!("/sys/fs/bpf/{prefix}"));
        let t = TestLab { lab, pins };
        // Leftovers of an interrupted run of this same test.
        t.remove_files();
        t.lab.up().expect("lab up");
        t
    }

    /// The control socket of this lab's agent.
    pub fn api_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/phantomnet-test/{}.sock", self.lab.prefix()))
    }

    /// The journal of this lab's agent (it outlives agent restarts).
    pub fn journal(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}-journal", self.lab.prefix()))
    }

    fn remove_files(&self) {
        let _ = self.pins.remove_ours();
        let _ = fs::remove_file(self.api_socket());
        let _ = fs::remove_file(self.journal());
        // The socket directory, once no lab uses it.
        if let Some(dir) = self.api_socket().parent() {
            let _ = fs::remove_dir(dir);
        }
        for suffix in ["agent.log", "agent.toml"] {
            let _ = fs::remove_file(
                std::env::temp_dir().join(format!("{}-{suffix}", self.lab.prefix())),
            );
        }
    }

    pub fn netns(&self, role: Role) -> PathBuf {
        self.lab.netns_path(role)
    }

    /// A command to run in the role's network namespace (`nsenter --net=`:
    /// unlike `ip netns exec`, it leaves `/sys`, and so the pins, as they are).
    pub fn nsenter(&self, role: Role) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns(role).display()));
        c
    }

    /// Loads the data plane in-process and attaches it to the gateway's
    /// outside interface.
    pub fn load(&self) -> Dataplane {
        let opts = LoadOptions {
            pins: self.pins.clone(),
            interfaces: vec![GW_XDP_IFACE.to_string()],
            inside_interfaces: Vec::new(),
            mode: ModeRequest::Native,
            ebpf_log_level: log::LevelFilter::Warn,
        };
        in_netns(&self.netns(Role::Gw), || Dataplane::load(&opts)).expect("load the data plane")
    }

    pub fn maps(&self) -> Maps {
        Maps::open(&self.pins).expect("open pinned maps")
    }

    /// Runs `phantomnet-agent --pin-dir <ours> <args>` to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(agent_bin())
            .arg("--pin-dir")
            .arg(self.pins.path())
            .args(args)
            .output()
            .expect("run phantomnet-agent")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        self.remove_files();
        let _ = self.lab.down();
    }
}

/// A pin directory of its own, with the program loaded but attached
/// nowhere: for BPF_PROG_TEST_RUN. Removed on drop.
pub struct TestPins {
    pub pins: PinDir,
}

impl TestPins {
    pub fn new(name: &str) -> TestPins {
        let pins = PinDir::new(format!("/sys/fs/bpf/pnt-{name}"));
        let _ = pins.remove_ours();
        TestPins { pins }
    }

    pub fn load(&self) -> Dataplane {
        Dataplane::load(&LoadOptions {
            pins: self.pins.clone(),
            interfaces: Vec::new(),
            inside_interfaces: Vec::new(),
            mode: ModeRequest::Native,
            ebpf_log_level: log::LevelFilter::Warn,
        })
        .expect("load the data plane")
    }

    pub fn maps(&self) -> Maps {
        Maps::open(&self.pins).expect("open pinned maps")
    }
}

impl Drop for TestPins {
    fn drop(&mut self) {
        let _ = self.pins.remove_ours();
    }
}

/// The agent binary: `PHANTOMNET_AGENT_BIN` (set by `cargo xtask test`),
/// else the workspace's debug build.
pub fn agent_bin() -> PathBuf {
    std::env::var_os("PHANTOMNET_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/phantomnet-agent")
        })
}

/// Runs `f` on a thread inside the network namespace at `netns`. Sockets
/// created there stay in that namespace wherever they are used later.
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let ns = fs::File::open(netns).unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread panicked")
    })
}

/// A UDP socket bound to `src` (port chosen by the kernel) in a namespace.
pub fn udp_from(netns: &Path, src: &str) -> UdpSocket {
    let src: IpAddr = src.parse().expect("source address");
    in_netns(netns, || UdpSocket::bind(SocketAddr::new(src, 0))).expect("bind sender")
}

/// A UDP socket listening on `addr:port` in a namespace.
pub fn udp_sink(netns: &Path, addr: &str, port: u16) -> UdpSocket {
    let addr: IpAddr = addr.parse().expect("sink address");
    let s = in_netns(netns, || UdpSocket::bind(SocketAddr::new(addr, port))).expect("bind sink");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    s
}

/// Sends `n` datagrams, `rate` per second if given (in 10 ms batches),
/// else as fast as the socket takes them.
pub fn send_udp(sock: &UdpSocket, dst: SocketAddr, n: usize, payload: &[u8], rate: Option<u32>) {
    let start = Instant::now();
    for i in 0..n {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
            let now = Instant::now();
            if due > now + Duration::from_millis(10) {
                std::thread::sleep(due - now);
            }
        }
        // A full socket buffer (ENOBUFS) is retried: the test counts what it sent.
        loop {
            match sock.send_to(payload, dst) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(e) => panic!("send to {dst}: {e}"),
            }
        }
    }
}

/// Receives until nothing arrives for `quiet`; returns (source, payload) of each datagram.
pub fn drain(sock: &UdpSocket, quiet: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let mut last = Instant::now();
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                out.push((from, buf[..n].to_vec()));
                last = Instant::now();
            }
            Err(_) if last.elapsed() >= quiet => return out,
            Err(_) => {}
        }
    }
}

/// Drains a sink on a thread of its own while the test sends, so a long
/// flood never overflows the socket's receive buffer.
pub struct Collector {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(SocketAddr, Vec<u8>)>>,
}

impl Collector {
    pub fn start(sock: UdpSocket) -> Collector {
        use std::sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 2048];
            let mut last = Instant::now();
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        out.push((from, buf[..n].to_vec()));
                        last = Instant::now();
                    }
                    Err(_)
                        if flag.load(Ordering::Relaxed)
                            && last.elapsed() >= Duration::from_millis(300) =>
                    {
                        return out;
                    }
                    Err(_) => {}
                }
            }
        });
        Collector { stop, handle }
    }

    /// Stops once nothing has arrived for 300 ms; returns everything received.
    pub fn finish(self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("collector thread")
    }
}

/// Count of datagrams from `src` in a drained batch.
pub fn from_src(received: &[(SocketAddr, Vec<u8>)], src: &str) -> usize {
    let src: IpAddr = src.parse().unwrap();
    received.iter().filter(|(a, _)| a.ip() == src).count()
}

/// `phantomnet-agent run` as a real process inside the test's gateway
/// namespace ([`AgentRun`], the lab's one launcher), with the test's own
/// pins, control socket and journal. Killed on drop; panics with the log
/// when it does not come up.
pub struct AgentProcess {
    run: Option<AgentRun>,
    pub log: PathBuf,
    pub socket: PathBuf,
    pub journal: PathBuf,
}

impl AgentProcess {
    /// Starts the agent and waits until its API and metrics are up.
    pub fn start(t: &TestLab, extra: &[&str]) -> AgentProcess {
        let mut agent = AgentProcess::spawn(t, extra);
        agent.wait_ready();
        agent
    }

    /// Starts the agent without waiting for it.
    pub fn spawn(t: &TestLab, extra: &[&str]) -> AgentProcess {
        let log = std::env::temp_dir().join(format!("{}-agent.log", t.lab.prefix()));
        let socket = t.api_socket();
        let journal = t.journal();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut args = vec!["--pin-dir".to_string(), path(t.pins.path())];
        for a in [
            "run",
            "--iface",
            GW_XDP_IFACE,
            "--inside-iface",
            GW_INSIDE_IFACE,
            "--stats-interval",
            "1",
        ] {
            args.push(a.to_string());
        }
        args.extend(["--api-socket".into(), path(&socket)]);
        args.extend(["--journal".into(), path(&journal)]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let run = AgentRun::spawn(AgentSpec {
            netns: &t.netns(Role::Gw),
            bin: &agent_bin(),
            args,
            log: &log,
            cpu: None,
        })
        .expect("spawn agent");
        AgentProcess {
            run: Some(run),
            log,
            socket,
            journal,
        }
    }

    fn run(&mut self) -> &mut AgentRun {
        self.run.as_mut().expect("running")
    }

    /// Waits until the data plane, the API and metrics are up.
    pub fn wait_ready(&mut self) {
        if let Err(e) = self.run().wait_serving() {
            panic!("{e:#}");
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.run.as_mut().is_some_and(AgentRun::running)
    }

    /// Waits until the agent's log has a line containing `needle`; panics
    /// with the log if it exits or the time runs out.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> String {
        self.run()
            .wait_for_log(needle, limit)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn pid(&self) -> u32 {
        self.run.as_ref().map(AgentRun::pid).expect("running")
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        if let Some(r) = self.run.take() {
            r.kill9();
        }
    }
}

/// A TCP listener that answers every connection with `banner`, until dropped.
pub struct Banner {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Banner {
    pub fn start(t: &TestLab, role: Role, ip: &str, port: u16, banner: &'static [u8]) -> Banner {
        let ip: IpAddr = ip.parse().unwrap();
        let l = in_netns(&t.netns(role), || TcpListener::bind((ip, port))).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(banner);
                    }
                    Err(_) => sleep(Duration::from_millis(5)),
                }
            }
        });
        Banner {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Banner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Connects from `src` (in `role`'s namespace) to `dst` and returns what
/// the server says first.
pub fn who_answers(t: &TestLab, role: Role, src: &str, dst: SocketAddr) -> String {
    let src: IpAddr = src.parse().unwrap();
    in_netns(&t.netns(role), || {
        let sock = if src.is_ipv4() {
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Stream,
                nix::sys::socket::SockFlag::empty(),
                None,
            )
        } else {
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet6,
                nix::sys::socket::SockType::Stream,
                nix::sys::socket::SockFlag::empty(),
                None,
            )
        }
        .unwrap();
        let local = nix::sys::socket::SockaddrStorage::from(SocketAddr::new(src, 0));
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&sock), &local).unwrap();
        let mut stream = TcpStream::from(sock);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let remote = nix::sys::socket::SockaddrStorage::from(dst);
        nix::sys::socket::connect(std::os::fd::AsRawFd::as_raw_fd(&stream), &remote).unwrap();
        // Until the peer closes (the test servers and the honeypot say one
        // thing and close) or, once something came, half a second of
        // silence: a real sshd says its banner and waits for the client's.
        let mut banner = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    banner.extend_from_slice(&chunk[..n]);
                    stream
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                }
                Err(e)
                    if !banner.is_empty()
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    break;
                }
                Err(e) => panic!("no answer from {dst}: {e}"),
            }
        }
        String::from_utf8_lossy(&banner).into_owned()
    })
}

/// PEM files for a CA, a server (`localhost`), a client it signed
/// (`client.crt`/`.key`), and a client signed by another CA (`untrusted`).
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("phantomnet-pki-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let good = ca("PhantomNet test CA");
        let other = ca("Someone else's CA");
        let leaf = |names: Vec<String>, issuer: &CertifiedIssuer<'_, KeyPair>, stem: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, issuer)
                .unwrap();
            fs::write(dir.join(format!("{stem}.crt")), cert.pem()).unwrap();
            fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
        };
        fs::write(dir.join("ca.crt"), good.pem()).unwrap();
        leaf(vec!["localhost".into()], &good, "server");
        leaf(vec!["orchestrator".into()], &good, "client");
        leaf(vec!["intruder".into()], &other, "untrusted");
        Pki { dir }
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
