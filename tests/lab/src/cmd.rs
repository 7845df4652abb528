//! Running external commands with their command line in every error.
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// A command line as errors print it.
pub fn render(program: &str, args: &[&str]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs a command with inherited stdio; fails on a non-zero exit.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    run_env(program, args, &[])
}

/// As [`run`], with extra environment variables.
pub fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let line = render(program, args);
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("starting `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed: {status}");
    }
    Ok(())
}

/// Runs a command quietly and returns its output; fails on a non-zero exit
/// with the command's stderr in the message.
pub fn output(program: &str, args: &[&str]) -> Result<String> {
    let line = render(program, args);
    let out = raw(program, args).with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command quietly; true if it exited 0 (false if it could not start).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    raw(program, args)
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn raw(program: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
}
