//! The protected server's listeners (`srv`), dual-stack, and the wait until
//! a set of ports listens there (both labs use it).
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::in_ns;
use super::sshd::Sshd;
use crate::cmd;
use crate::lab::{Lab, Role};
use crate::proc::Bg;

/// The listeners on the protected server (`srv`), dual-stack.
const SERVER_PY: &str = include_str!("../../scripts/lab_servers.py");

/// The server's listeners, running until dropped.
pub struct Servers {
    _proc: Bg,
    _sshd: Sshd,
}

impl Servers {
    /// Ports the servers listen on (TCP 80, 22, 9000; UDP 53, 5000). On
    /// :22 is OpenSSH's `sshd` (see [`Sshd`]), the rest are `lab_servers.py`.
    pub const HTTP: u16 = 80;
    pub const SSH: u16 = 22;
    pub const BULK: u16 = 9000;
    pub const DNS: u16 = 53;
    pub const UDP_SINK: u16 = 5000;

    /// Starts them in `srv` and waits until they listen.
    pub fn start(lab: &Lab) -> Result<Servers> {
        let sshd = Sshd::start(lab, Self::SSH)?;
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
            Ok(l) if l.trim() == "ready" => Ok(Servers {
                _proc: proc,
                _sshd: sshd,
            }),
            Ok(l) => bail!("the lab servers did not start (said {l:?})"),
            Err(_) => bail!("the lab servers did not start within 10 s"),
        }
    }
}

/// Waits until `srv` listens on every TCP port in `tcp` and UDP port in
/// `udp` (15 s at most); the error names what is missing and where the
/// logs are.
pub(crate) fn wait_listening(lab: &Lab, tcp: &[u16], udp: &[u16], logs: &Path) -> Result<()> {
    let start = Instant::now();
    let ns = lab.ns(Role::Srv);
    loop {
        let t = cmd::output("ip", &["netns", "exec", &ns, "ss", "-Hltn"]).unwrap_or_default();
        let u = cmd::output("ip", &["netns", "exec", &ns, "ss", "-Hlun"]).unwrap_or_default();
        let has = |text: &str, port: u16| {
            let pat = format!(":{port} ");
            text.lines().any(|l| l.contains(&pat))
        };
        let missing: Vec<String> = tcp
            .iter()
            .filter(|p| !has(&t, **p))
            .map(|p| format!("tcp/{p}"))
            .chain(
                udp.iter()
                    .filter(|p| !has(&u, **p))
                    .map(|p| format!("udp/{p}")),
            )
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!(
                "not listening after 15 s: {} (logs in {})",
                missing.join(", "),
                logs.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
