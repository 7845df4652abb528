//! Debian's nginx serving a directory over HTTPS inside a namespace, until
//! dropped. nginx answers conditional requests itself (`ETag`,
//! `Last-Modified`, 304), which is what the threat-feed tests exercise.
use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::in_netns;

pub struct Nginx {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

impl Nginx {
    /// Serves `root` on `127.0.0.1:port` (HTTPS with `cert`/`key`) in `netns`.
    pub fn start(
        name: &str,
        netns: &Path,
        root: &Path,
        port: u16,
        cert: &Path,
        key: &Path,
    ) -> Nginx {
        let dir = std::env::temp_dir().join(format!("phantomnet-nginx-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("nginx.conf");
        let d = dir.display();
        fs::write(
            &conf,
            format!(
                r#"# The test's own nginx: nothing outside {d}.
daemon off;
master_process on;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
    }}
}}
"#,
                cert = cert.display(),
                key = key.display(),
                root = root.display(),
            ),
        )
        .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["nginx", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let n = Nginx {
            child: Some(child),
            dir,
            port,
        };
        let start = Instant::now();
        while !in_netns(netns, || TcpStream::connect(("127.0.0.1", port)).is_ok()) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx never listened:\n{}",
                fs::read_to_string(n.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    /// `https://localhost:PORT/FILE`.
    pub fn url(&self, file: &str) -> String {
        format!("https://localhost:{}/{file}", self.port)
    }

    /// The status codes nginx answered for `file`, in order.
    pub fn statuses(&self, file: &str) -> Vec<u16> {
        let log = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let needle = format!("GET /{file} ");
        log.lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| l.split('"').nth(2)?.split_whitespace().next()?.parse().ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: nginx's master stops its worker and exits.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
