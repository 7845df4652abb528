//! `bpftool` on loaded programs and pinned links, read through its JSON
//! output (`-j`).
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd;

/// What one `bpftool prog run` reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgRun {
    /// The program's return value (an XDP action).
    pub retval: u32,
    /// Mean ns per run over the repeats.
    pub duration_ns: u64,
}

/// Why a `bpftool prog run` did not run: the kernel's or bpftool's refusal
/// (a frame too short for the test-run API, say), or a failure to run it.
#[derive(Debug)]
pub enum ProgRunError {
    /// bpftool ran and reported an error (its JSON `error` member).
    Refused(String),
    Failed(anyhow::Error),
}

impl std::fmt::Display for ProgRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgRunError::Refused(e) => write!(f, "bpftool refused the run: {e}"),
            ProgRunError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for ProgRunError {}

/// `bpftool -j prog run id <id> data_in <frame> repeat <n>` (BPF_PROG_TEST_RUN).
pub fn prog_run(prog_id: u32, frame: &[u8], repeat: u32) -> Result<ProgRun, ProgRunError> {
    let path = std::env::temp_dir().join(format!(
        "phantomnet-frame-{}-{prog_id}.bin",
        std::process::id()
    ));
    std::fs::write(&path, frame)
        .with_context(|| format!("writing {}", path.display()))
        .map_err(ProgRunError::Failed)?;
    let out = std::process::Command::new("bpftool")
        .args(["-j", "prog", "run", "id", &prog_id.to_string(), "data_in"])
        .arg(&path)
        .args(["repeat", &repeat.to_string()])
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out
        .context("running bpftool")
        .map_err(ProgRunError::Failed)?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| {
            format!(
                "bpftool said {:?} / {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .map_err(ProgRunError::Failed)?;
    if let Some(err) = v.get("error") {
        return Err(ProgRunError::Refused(err.to_string()));
    }
    let field = |k: &str| {
        v[k].as_u64()
            .with_context(|| format!("bpftool's reply has no {k}: {v}"))
            .map_err(ProgRunError::Failed)
    };
    Ok(ProgRun {
        retval: u32::try_from(field("retval")?).map_err(|e| ProgRunError::Failed(e.into()))?,
        duration_ns: field("duration")?,
    })
}

/// The best (lowest) mean ns per run of `rounds` runs of `repeat` each.
pub fn best_duration_ns(prog_id: u32, frame: &[u8], repeat: u32, rounds: u32) -> Result<u64> {
    let mut best = u64::MAX;
    for _ in 0..rounds.max(1) {
        let r = prog_run(prog_id, frame, repeat)?;
        best = best.min(r.duration_ns);
    }
    Ok(best)
}

/// The program id behind a pinned link.
pub fn link_prog_id(link: &Path) -> Result<u32> {
    let link = link.to_str().context("non-UTF-8 link path")?;
    let v: Value = serde_json::from_str(&cmd::output(
        "bpftool",
        &["-j", "link", "show", "pinned", link],
    )?)
    .context("bpftool link show")?;
    v["prog_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .with_context(|| format!("no prog_id in {v}"))
}

/// The ids of loaded programs whose name starts with `prefix`, ascending.
pub fn prog_ids_named(prefix: &str) -> Result<Vec<u32>> {
    let v: Value = serde_json::from_str(&cmd::output("bpftool", &["-j", "prog", "show"])?)
        .context("bpftool prog show")?;
    let Some(progs) = v.as_array() else {
        bail!("bpftool prog show: not a list: {v}");
    };
    let mut ids: Vec<u32> = progs
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .filter_map(|p| u32::try_from(p["id"].as_u64()?).ok())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}
