//! Background processes: each in its own process group, killed (group and
//! all) on drop.
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

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
        eprintln!("lab: {} did not exit after {sig}; killing it", self.what);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
        false
    }
}

impl Bg {
    /// SIGKILL to the group, and reaps the process.
    pub fn kill(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
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
