//! OpenSSH's `sshd` on the protected server (`srv`), for both labs: a
//! throwaway host key, and root may log in with a throwaway client key only.
//! Password authentication is on and every password is refused (no
//! password is set, root takes keys only), so password guessing gets real
//! key exchanges and real failures.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Result;

use crate::cmd;
use crate::lab::{Lab, Role, addr};
use crate::proc::Bg;

/// A path as a command-line or config-file argument (the labs' paths are
/// ASCII).
pub(crate) fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The config listening on `ports` on the server's two addresses, with
/// every file under `dir`.
fn config(dir: &Path, ports: &[u16]) -> String {
    let d = p(dir);
    let ports: String = ports.iter().map(|p| format!("Port {p}\n")).collect();
    format!(
        "{ports}ListenAddress {v4}\nListenAddress {v6}\n\
         HostKey {d}/ssh_host_ed25519_key\nPidFile none\nUsePAM no\nUseDNS no\nStrictModes no\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication yes\n\
         KbdInteractiveAuthentication no\nAuthorizedKeysFile {d}/authorized_keys\n\
         MaxStartups 100:30:200\nMaxAuthTries 6\nLoginGraceTime 15\nPrintMotd no\n\
         Subsystem sftp internal-sftp\n",
        v4 = addr::SRV4,
        v6 = addr::SRV6,
    )
}

/// Writes the host key, the client key (`client_ed25519`, authorised for
/// root) and `sshd_config` under `dir`; returns the config's path.
pub(crate) fn prepare(dir: &Path, ports: &[u16]) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    for key in ["ssh_host_ed25519_key", "client_ed25519"] {
        let kp = dir.join(key);
        let _ = fs::remove_file(&kp);
        let _ = fs::remove_file(dir.join(format!("{key}.pub")));
        cmd::output(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "pnlab",
                "-f",
                &p(&kp),
            ],
        )?;
    }
    fs::copy(dir.join("client_ed25519.pub"), dir.join("authorized_keys"))?;
    let conf = dir.join("sshd_config");
    fs::write(&conf, config(dir, ports))?;
    // sshd's privilege-separation directory (systemd's tmpfiles makes it).
    fs::create_dir_all("/run/sshd")?;
    Ok(conf)
}

/// The command line that runs `sshd` in the foreground with `conf`.
pub(crate) fn argv(conf: &Path) -> Vec<String> {
    ["/usr/sbin/sshd", "-D", "-e", "-f", &p(conf)]
        .map(String::from)
        .to_vec()
}

/// The training lab's `sshd` work directory (keys, config, log).
fn lab_dir(lab: &Lab) -> PathBuf {
    std::env::temp_dir().join(format!("{}-sshd", lab.prefix()))
}

/// The private key the training lab's `sshd` takes for root.
pub(crate) fn client_key(lab: &Lab) -> PathBuf {
    lab_dir(lab).join("client_ed25519")
}

/// The training lab's `sshd` on :22, running until dropped; its work
/// directory (keys, config, log) is removed then.
pub struct Sshd {
    proc: Option<Bg>,
    dir: PathBuf,
}

impl Sshd {
    pub fn start(lab: &Lab, port: u16) -> Result<Sshd> {
        let dir = lab_dir(lab);
        let _ = fs::remove_dir_all(&dir);
        // The guard first, so a failure below (ssh-keygen, the spawn)
        // still removes the directory.
        let mut sshd = Sshd { proc: None, dir };
        let conf = prepare(&sshd.dir, &[port])?;
        let log = fs::File::create(sshd.dir.join("sshd.log"))?;
        let argv = argv(&conf);
        let mut c = super::in_ns(
            lab,
            Role::Srv,
            &argv.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        sshd.proc = Some(Bg::spawn(c, "sshd")?);
        super::servers::wait_listening(lab, &[port], &[], &sshd.dir)?;
        Ok(sshd)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The process group first (sshd and its sessions), then its files.
        drop(self.proc.take());
        let _ = fs::remove_dir_all(&self.dir);
    }
}
