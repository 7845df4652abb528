//! Running the privileged part of a task as root, whoever invoked it.
//!
//! `cargo xtask demo` and `cargo xtask test` are run as written: as root
//! (with or without sudo installed), or as a normal user with sudo. A normal
//! user builds everything as themselves, so `target/` and `~/.cargo` stay
//! theirs, and only the steps that need root (apt, namespaces, XDP, bpffs)
//! go through `sudo`. sudo resets PATH to its `secure_path`, which does not
//! hold `~/.cargo/bin`, and HOME to root's, which moves rustup's default
//! home; so the toolchain's PATH, `CARGO_HOME` and `RUSTUP_HOME` are handed
//! over explicitly through `env`.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The variables a root child needs to find the invoking user's toolchain.
pub fn toolchain_env() -> Vec<(String, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut env = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        // A user's PATH often lacks the sbin directories root's tools
        // (ip, sysctl, nft, bpftool) live in: append them.
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
            if !dirs.iter().any(|d| d == Path::new(sbin)) {
                dirs.push(PathBuf::from(sbin));
            }
        }
        if let Ok(joined) = std::env::join_paths(dirs) {
            env.push(("PATH".to_string(), joined.to_string_lossy().into_owned()));
        }
    }
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let value = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)));
        if let Some(v) = value {
            env.push((var.to_string(), v.to_string_lossy().into_owned()));
        }
    }
    for var in ["CARGO_TARGET_DIR", "CARGO_TERM_COLOR", "RUST_LOG"] {
        if let Some(v) = std::env::var_os(var) {
            env.push((var.to_string(), v.to_string_lossy().into_owned()));
        }
    }
    env
}

/// The command that runs `program args` as root with `env` set: the program
/// itself when we are root, else `sudo -- env VAR=... program args` with the
/// toolchain's variables first.
pub fn root_command(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Command> {
    if is_root() {
        let mut c = Command::new(program);
        c.args(args).envs(env.iter().copied());
        return Ok(c);
    }
    let sudo = which_sudo().context(
        "this step needs root: run it as root, or install sudo and allow this user to use it",
    )?;
    let mut c = Command::new(sudo);
    c.arg("--").arg("env");
    for (k, v) in toolchain_env() {
        c.arg(format!("{k}={v}"));
    }
    for (k, v) in env {
        c.arg(format!("{k}={v}"));
    }
    c.arg(program).args(args);
    Ok(c)
}

/// Fails early, with the reason, when the privileged steps could not run.
pub fn ensure_root_available() -> Result<()> {
    if is_root() || which_sudo().is_some() {
        return Ok(());
    }
    bail!(
        "the root-only steps need root: run as root, or install sudo and allow this user to use it"
    )
}

fn which_sudo() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sudo"))
        .find(|p| p.is_file())
}

/// Runs `program args` as root (see [`root_command`]); fails on a non-zero exit.
pub fn run_as_root(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    run_as_root_in(program, args, env, None)
}

/// As [`run_as_root`], in `dir`.
pub fn run_as_root_in(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    dir: Option<&Path>,
) -> Result<()> {
    let mut c = root_command(Path::new(program), args, env)?;
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let line = format!("{program} {}", args.join(" "));
    let status = c
        .status()
        .with_context(|| format!("starting `{line}` as root"))?;
    if !status.success() {
        bail!("`{line}` (as root) failed: {status}");
    }
    Ok(())
}

/// Set for a re-executed task: the binaries are built, do not run cargo.
pub const PREBUILT_ENV: &str = "PHANTOMNET_XTASK_PREBUILT";

/// True if `program args` exits 0 when run as root (quietly).
pub fn succeeds_as_root(program: &str, args: &[&str]) -> bool {
    root_command(Path::new(program), args, &[])
        .map(|mut c| {
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or(false)
}

/// Re-runs this xtask, with `args`, as root through sudo, and returns its
/// success. Call only when not root, after building as the user whatever
/// the task builds, so that root's cargo finds it fresh and writes nothing.
pub fn reexec_as_root(args: &[&str]) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let exe = exe.to_str().context("non-UTF-8 xtask path")?.to_string();
    println!(
        "xtask: running `xtask {}` as root through sudo",
        args.join(" ")
    );
    // The user has just built what the task runs: root's run must not
    // rebuild it (that would leave root-owned files in the user's target/).
    run_as_root(&exe, args, &[(PREBUILT_ENV, "1")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_root_command_goes_through_sudo_env_with_the_toolchain() {
        if is_root() || which_sudo().is_none() {
            // As root the program runs itself; checked below.
            let c = root_command(Path::new("/bin/true"), &["x"], &[("A", "1")]);
            if is_root() {
                let c = c.unwrap();
                assert_eq!(c.get_program(), "/bin/true");
                let args: Vec<_> = c.get_args().collect();
                assert_eq!(args, ["x"]);
            } else {
                assert!(c.is_err());
            }
            return;
        }
        let c = root_command(Path::new("/bin/true"), &["x"], &[("A", "1")]).unwrap();
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..2], ["--", "env"]);
        assert!(args.iter().any(|a| a.starts_with("PATH=")));
        assert!(args.iter().any(|a| a.starts_with("RUSTUP_HOME=")));
        assert_eq!(&args[args.len() - 3..], ["A=1", "/bin/true", "x"]);
    }

    #[test]
    fn the_toolchain_env_names_rustup_and_cargo_homes() {
        let env = toolchain_env();
        for var in ["CARGO_HOME", "RUSTUP_HOME"] {
            if std::env::var_os("HOME").is_some() || std::env::var_os(var).is_some() {
                assert!(env.iter().any(|(k, _)| k == var), "{var} missing: {env:?}");
            }
        }
    }
}
