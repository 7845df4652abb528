//! Man pages and shell completions, generated from a binary's clap
//! definition so they never drift from `--help` (clap_mangen, clap_complete).
//! Each binary exposes this as a hidden `generate-docs --out DIR`, which
//! `cargo xtask install` runs and installs from.
//!
//! Layout under `DIR`:
//! - `man/man1/NAME.1`, and `NAME-SUB.1` for every visible subcommand;
//! - `completions/bash/NAME`, `completions/zsh/_NAME`, `completions/fish/NAME.fish`.
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct DocgenError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, DocgenError> {
    let io = |source| DocgenError {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, bytes).map_err(io)?;
    Ok(path)
}

fn man_page(cmd: Command) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

/// Writes every man page and completion script for `cmd` under `dir`;
/// returns the files written.
pub fn write_all(mut cmd: Command, dir: &Path) -> Result<Vec<PathBuf>, DocgenError> {
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    let man = dir.join("man/man1");
    let render = |c: Command, path: PathBuf| {
        let bytes = man_page(c).map_err(|source| DocgenError {
            path: path.clone(),
            source,
        })?;
        write(path, &bytes)
    };
    written.push(render(cmd.clone(), man.join(format!("{name}.1")))?);
    // clap's generated `help` subcommand gets no page of its own.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let full = format!("{name}-{}", sub.get_name());
        let page = sub
            .clone()
            .name(full.clone())
            .bin_name(full.replace('-', " "));
        written.push(render(page, man.join(format!("{full}.1")))?);
    }
    for (shell, file) in [
        (Shell::Bash, format!("bash/{name}")),
        (Shell::Zsh, format!("zsh/_{name}")),
        (Shell::Fish, format!("fish/{name}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, &name, &mut out);
        written.push(write(dir.join("completions").join(file), &out)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn demo() -> Command {
        Command::new("democtl")
            .about("A demo")
            .subcommand(
                Command::new("block")
                    .about("Block a prefix")
                    .arg(Arg::new("cidr")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn pages_cover_visible_subcommands_and_completions_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(demo(), dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "man/man1/democtl.1",
                "man/man1/democtl-block.1",
                "completions/bash/democtl",
                "completions/zsh/_democtl",
                "completions/fish/democtl.fish"
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/man1/democtl-block.1")).unwrap();
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains(".TH democtl-block 1"), "{page}");
        assert!(page.contains("Block a prefix"));
        let bash = std::fs::read_to_string(dir.path().join("completions/bash/democtl")).unwrap();
        assert!(bash.contains("block"), "{bash}");
    }
}
