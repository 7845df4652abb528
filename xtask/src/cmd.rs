//! Running external commands (the lab's helpers), and cargo builds.
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
pub use phantomnet_lab::cmd::{output, run, run_env, succeeds};

use phantomnet_lab::cmd::render;

/// Builds the release agent binaries (`phantomnet-agent`, `phantomctl`) and
/// returns the path of `phantomnet-agent`; `phantomctl` sits beside it.
pub fn build_release_agent(root: &std::path::Path) -> Result<std::path::PathBuf> {
    let bin = root.join("target/release/phantomnet-agent");
    if std::env::var_os(crate::privilege::PREBUILT_ENV).is_some() {
        if !bin.is_file() || !bin.with_file_name("phantomctl").is_file() {
            bail!("{} is not built", bin.display());
        }
        return Ok(bin);
    }
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "phantomnet-agent",
            "--bins",
        ],
    )?;
    Ok(bin)
}

/// Builds the integration-test binaries of `pkg_args` (e.g. `-p NAME`)
/// without running them, and returns (test name, executable), by name.
pub fn test_executables(pkg_args: &[&str]) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut args = vec![
        "test",
        "--locked",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ];
    args.extend_from_slice(pkg_args);
    let line = render("cargo", &args);
    let out = Command::new("cargo")
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed: {}", out.status);
    }
    let mut tests = Vec::new();
    for msg in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(msg) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
            continue;
        }
        let is_test = v["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|x| x == "test"));
        if let (true, Some(exe), Some(name)) = (
            is_test,
            v["executable"].as_str(),
            v["target"]["name"].as_str(),
        ) {
            tests.push((name.to_string(), std::path::PathBuf::from(exe)));
        }
    }
    tests.sort();
    if tests.is_empty() {
        bail!("`{line}` built no test binaries");
    }
    Ok(tests)
}
