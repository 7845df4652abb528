//! The held-out corpus's real servers on the protected server (`srv`),
//! dual-stack, each a Debian package's daemon in the foreground, killed
//! (with its workers or sessions) on drop:
//!
//! - `nginx`: static pages with their CSS, JS and images, two large files
//!   for bulk downloads, `/healthz`, nginx's own `/nginx_status`
//!   (`stub_status`, the second corpus's status pollers), a JSON endpoint `/api/` (POSTs are read
//!   and answered with a fixed JSON object), `/upload` (the body is read
//!   and discarded) and `/admin/` behind HTTP basic auth; on :80 and on a
//!   second port chosen per run;
//! - OpenSSH's `sshd` on :22 and on a second port, with a throwaway host
//!   key; root may log in with a throwaway key only (passwords are tried,
//!   and always refused, so password guessing gets real failures);
//! - `dnsmasq`, authoritative for `lab.example` (`--local`), with no
//!   upstream (`--no-resolv`);
//! - `iperf3 -s` on a port chosen per run, and iperf 2 (`iperf -s -V`,
//!   both families) 100 above it (the second corpus's throughput tests);
//! - `chronyd` as an NTP server (`local stratum 8`, `-x`: it never touches
//!   the clock).
//!
//! Everything they read or write is under one work directory.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};

use super::Rng;
use crate::cmd;
use crate::lab::{Lab, Role, addr};
use crate::proc::Bg;
use crate::traffic::sshd::{self, p};

/// The ports the servers listen on besides the well-known ones.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// nginx's second port (8000–8999).
    pub http_alt: u16,
    /// sshd's second port (2200–2299).
    pub ssh_alt: u16,
    /// iperf3's port (5201–5299).
    pub iperf: u16,
}

impl Ports {
    pub fn draw(rng: &mut Rng) -> Ports {
        Ports {
            http_alt: rng.range(8000, 8999) as u16,
            ssh_alt: rng.range(2200, 2299) as u16,
            iperf: rng.range(5201, 5299) as u16,
        }
    }

    /// iperf 2's port: 100 above iperf3's (not drawn, so adding it left
    /// every earlier seed's plan as it was).
    pub fn iperf2(&self) -> u16 {
        self.iperf + 100
    }
}

/// The pages `index.html` links (each page also uses `/static/site.css`,
/// `/static/vendor.js`, `/static/app.js`, `/img/logo.svg` and three images).
pub const PAGES: &[&str] = &[
    "/index.html",
    "/about.html",
    "/products.html",
    "/docs/guide.html",
    "/news/article-1.html",
    "/news/article-2.html",
    "/news/article-3.html",
    "/contact.html",
];
/// Images (`/img/photo-N.jpg`, N in 1..=IMAGES).
pub const IMAGES: u32 = 8;
/// The large files for bulk downloads and their sizes.
pub const LARGE_FILES: &[(&str, usize)] = &[
    ("/files/large-1.bin", 16 << 20),
    ("/files/large-2.bin", 8 << 20),
];
/// The basic-auth user (its password is drawn per run and in no guess list).
pub const ADMIN_USER: &str = "admin";
/// The names dnsmasq answers in `lab.example` (A and AAAA: the server).
pub const DNS_NAMES: &[&str] = &[
    "www", "api", "mail", "ntp", "ssh", "cdn", "static", "vpn", "git", "wiki",
];

/// The running servers.
pub struct HeldoutServers {
    procs: Vec<Bg>,
    pub ports: Ports,
    /// The private key root's `authorized_keys` (ours, not the system's) holds.
    pub client_key: PathBuf,
}

/// Random bytes from the run's generator (images, large files).
fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

fn page(title: &str, body_words: usize, rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "gateway", "network", "service", "customer", "release", "update", "support", "pricing",
        "garden", "coffee", "weekend", "report", "travel", "music", "library", "station",
    ];
    let mut text = String::new();
    for i in 0..body_words {
        text.push_str(WORDS[rng.range(0, WORDS.len() as u32 - 1) as usize]);
        text.push(if i % 14 == 13 { '.' } else { ' ' });
    }
    let imgs: String = (0..3)
        .map(|_| format!("<img src=\"/img/photo-{}.jpg\">\n", rng.range(1, IMAGES)))
        .collect();
    let links: String = PAGES
        .iter()
        .map(|p| format!("<a href=\"{p}\">{p}</a>\n"))
        .collect();
    format!(
        "<!doctype html>\n<html><head><title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"/static/site.css\">\n\
         <script src=\"/static/vendor.js\"></script><script src=\"/static/app.js\"></script>\n\
         </head><body><img src=\"/img/logo.svg\"><h1>{title}</h1>\n<p>{text}</p>\n{imgs}{links}</body></html>\n"
    )
}

/// The static site under `www`.
fn write_site(www: &Path, rng: &mut Rng) -> Result<()> {
    for d in ["static", "img", "files", "news", "docs", "admin"] {
        fs::create_dir_all(www.join(d))?;
    }
    for (i, pg) in PAGES.iter().enumerate() {
        let words = rng.range(200, 2500) as usize;
        fs::write(
            www.join(pg.trim_start_matches('/')),
            page(&format!("Page {i}"), words, rng),
        )?;
    }
    fs::copy(www.join("index.html"), www.join("index.htm"))?;
    let css: String = (0..rng.range(150, 600))
        .map(|i| {
            format!(
                ".c{i} {{ margin: {}px; color: #{:06x}; }}\n",
                i % 17,
                i * 7919
            )
        })
        .collect();
    fs::write(www.join("static/site.css"), css)?;
    for (name, lines) in [
        ("app.js", rng.range(300, 900)),
        ("vendor.js", rng.range(1500, 3000)),
    ] {
        let js: String = (0..lines)
            .map(|i| format!("function f{i}(a, b) {{ return a * {i} + b; }}\n"))
            .collect();
        fs::write(www.join("static").join(name), js)?;
    }
    fs::write(
        www.join("img/logo.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\"><circle cx=\"32\" cy=\"32\" r=\"30\"/></svg>\n",
    )?;
    for i in 1..=IMAGES {
        let n = rng.range(8 << 10, 160 << 10) as usize;
        fs::write(www.join(format!("img/photo-{i}.jpg")), random_bytes(rng, n))?;
    }
    for (path, size) in LARGE_FILES {
        fs::write(
            www.join(path.trim_start_matches('/')),
            random_bytes(rng, *size),
        )?;
    }
    fs::write(www.join("admin/index.html"), "admin console\n")?;
    Ok(())
}

fn nginx_conf(dir: &Path, ports: Ports) -> String {
    let d = p(dir);
    let listen: String = [80, ports.http_alt]
        .iter()
        .map(|port| format!("    listen {port}; listen [::]:{port};\n"))
        .collect();
    format!(
        "worker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log {d}/nginx-access.log;\n  include /etc/nginx/mime.types;\n\
           client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;\n\
           fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;\n\
           keepalive_timeout 30s; keepalive_requests 1000;\n\
           server {{\n{listen}\
             root {d}/www;\n    client_max_body_size 64m;\n\
             location = /healthz {{ default_type text/plain; return 200 \"ok\\n\"; }}\n\
             location = /nginx_status {{ stub_status; }}\n\
             location /api/ {{ default_type application/json; return 200 '{{\"ok\":true,\"items\":[1,2,3]}}'; }}\n\
             location = /upload {{ client_body_buffer_size 1m; return 201 \"stored\\n\"; }}\n\
             location /admin/ {{ auth_basic \"lab admin\"; auth_basic_user_file {d}/htpasswd; }}\n\
           }}\n}}\n"
    )
}

fn chrony_conf(dir: &Path) -> String {
    let d = p(dir);
    format!(
        "local stratum 8\nallow all\nbindaddress {}\nbindaddress {}\ncmdport 0\n\
         pidfile {d}/chronyd.pid\n",
        addr::SRV4,
        addr::SRV6
    )
}

impl HeldoutServers {
    /// Writes the site, keys and configs under `dir` and starts every
    /// server in `srv`; returns once each listens.
    pub fn start(lab: &Lab, dir: &Path, ports: Ports, rng: &mut Rng) -> Result<HeldoutServers> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("tmp"))?;
        write_site(&dir.join("www"), rng)?;
        let password = format!("lab-{:016x}", rng.next_u64());
        cmd::output(
            "htpasswd",
            &["-bc", &p(&dir.join("htpasswd")), ADMIN_USER, &password],
        )?;
        let sshd_conf = sshd::prepare(dir, &[22, ports.ssh_alt])?;
        fs::write(dir.join("nginx.conf"), nginx_conf(dir, ports))?;
        fs::write(dir.join("chrony.conf"), chrony_conf(dir))?;
        let dns_records: Vec<String> = DNS_NAMES
            .iter()
            .map(|n| {
                format!(
                    "--host-record={n}.lab.example,{},{}",
                    addr::SRV4,
                    addr::SRV6
                )
            })
            .collect();
        let iperf_port = ports.iperf.to_string();
        let iperf2_port = ports.iperf2().to_string();
        let conf = |name: &str| p(&dir.join(name));
        let mut dnsmasq = vec![
            "dnsmasq".to_string(),
            "--keep-in-foreground".into(),
            "--log-facility=-".into(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--no-poll".into(),
            "--pid-file=".into(),
            "--user=root".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={},{}", addr::SRV4, addr::SRV6),
            "--local=/lab.example/".into(),
            "--mx-host=lab.example,mail.lab.example,10".into(),
            "--txt-record=lab.example,v=spf1 mx -all".into(),
            "--srv-host=_ldap._tcp.lab.example,wiki.lab.example,389".into(),
        ];
        dnsmasq.extend(dns_records);
        let commands: Vec<(&str, Vec<String>)> = vec![
            (
                "nginx",
                ["nginx", "-c", &conf("nginx.conf"), "-g", "daemon off;"]
                    .map(String::from)
                    .to_vec(),
            ),
            ("sshd", sshd::argv(&sshd_conf)),
            ("dnsmasq", dnsmasq),
            (
                "iperf3",
                ["iperf3", "-s", "-p", &iperf_port]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                "iperf",
                ["iperf", "-s", "-V", "-p", &iperf2_port]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                "chronyd",
                [
                    "chronyd",
                    "-d",
                    "-x",
                    "-u",
                    "root",
                    "-f",
                    &conf("chrony.conf"),
                ]
                .map(String::from)
                .to_vec(),
            ),
        ];
        let mut procs = Vec::new();
        for (name, argv) in commands {
            let log = fs::File::create(dir.join(format!("{name}.log")))?;
            let mut c = crate::traffic::in_ns(
                lab,
                Role::Srv,
                &argv.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
            procs.push(Bg::spawn(c, name)?);
        }
        let servers = HeldoutServers {
            procs,
            ports,
            client_key: dir.join("client_ed25519"),
        };
        let tcp = [
            80,
            ports.http_alt,
            22,
            ports.ssh_alt,
            ports.iperf,
            ports.iperf2(),
        ];
        crate::traffic::servers::wait_listening(lab, &tcp, &[53, 123], dir)
            .context("the held-out servers did not start")?;
        Ok(servers)
    }

    /// How many servers run.
    pub fn count(&self) -> usize {
        self.procs.len()
    }
}
