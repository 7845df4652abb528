//! `phantomnet-agent` as a real process inside a lab namespace: entered with
//! `nsenter --net` (not `ip netns exec`, which remounts /sys and hides the
//! pins), stderr to a log file, killed with its process group on drop. The
//! one launcher the demo, the dataset recorder, the benchmarks and the
//! root-only tests share.
use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::proc::Bg;

/// How to start one agent.
pub struct AgentSpec<'a> {
    /// The network namespace's path (`Lab::netns_path`).
    pub netns: &'a Path,
    pub bin: &'a Path,
    /// Everything after the binary: global options, `run`, its options.
    pub args: Vec<String>,
    /// Where its stderr (the tracing log) goes; truncated at start.
    pub log: &'a Path,
    /// Pin it to this CPU (`taskset -c`), for benchmarks.
    pub cpu: Option<u32>,
}

/// A running agent.
pub struct AgentRun {
    proc: Bg,
    log: PathBuf,
}

/// The log line once the data plane is attached.
pub const READY_DATAPLANE: &str = "data plane ready";
/// The log line once the API and metrics listeners are bound.
pub const READY_SERVING: &str = "metrics on /metrics";

impl AgentRun {
    pub fn spawn(spec: AgentSpec<'_>) -> Result<AgentRun> {
        let log = fs::File::create(spec.log)
            .with_context(|| format!("creating {}", spec.log.display()))?;
        let mut c = match spec.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string(), "nsenter"]);
                c
            }
            None => Command::new("nsenter"),
        };
        c.arg(format!("--net={}", spec.netns.display()))
            .arg(spec.bin)
            .args(&spec.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Ok(AgentRun {
            proc: Bg::spawn(c, "phantomnet-agent")?,
            log: spec.log.to_path_buf(),
        })
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn pid(&self) -> u32 {
        self.proc.id()
    }

    pub fn running(&mut self) -> bool {
        self.proc.running()
    }

    /// Waits until the log has a line containing `needle` and returns it;
    /// fails with the whole log if the agent exits or `limit` passes first.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Ok(f) = fs::File::open(&self.log)
                && let Some(line) = BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .find(|l| l.contains(needle))
            {
                return Ok(line);
            }
            let exited = !self.proc.running();
            if exited || start.elapsed() > limit {
                bail!(
                    "the agent's log never said {needle:?} ({}):\n{}",
                    if exited { "it exited" } else { "timed out" },
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the data plane, the API and metrics are up.
    pub fn wait_serving(&mut self) -> Result<()> {
        self.wait_for_log(READY_DATAPLANE, Duration::from_secs(30))?;
        self.wait_for_log(READY_SERVING, Duration::from_secs(30))
            .map(drop)
    }

    /// SIGTERM, then SIGKILL after `grace`; true if it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.proc.stop_with(Signal::SIGTERM, grace)
    }

    /// SIGKILL, as a crash would, and reaps it.
    pub fn kill9(mut self) {
        self.proc.kill();
    }
}
