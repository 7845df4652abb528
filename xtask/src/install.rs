//! `cargo xtask install`: the deploy steps of README's "Deploying on a
//! gateway", as one command. Builds the release binaries as the invoking
//! user, generates their man pages and shell completions from the clap
//! definitions (`generate-docs`), and installs with coreutils' `install`,
//! as root through sudo when the destination needs it. An existing
//! `/etc/phantomnet/agent.toml` is never overwritten.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{cmd, privilege};

/// One file to install: source, destination (absolute, before DESTDIR), mode.
struct Item {
    src: PathBuf,
    dst: PathBuf,
    mode: &'static str,
}

const BINARIES: &[&str] = &["phantomnet-agent", "phantomctl"];

fn plan(root: &Path, release: &Path, docs: &Path, prefix: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut add = |src: PathBuf, dst: PathBuf, mode| items.push(Item { src, dst, mode });
    for b in BINARIES {
        add(release.join(b), prefix.join("bin").join(b), "0755");
    }
    let man = docs.join("man/man1");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&man)
        .with_context(|| format!("reading {}", man.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pages.sort();
    for p in pages {
        let name = p.file_name().context("man page name")?.to_owned();
        add(p, prefix.join("share/man/man1").join(name), "0644");
    }
    for b in BINARIES {
        let c = docs.join("completions");
        add(
            c.join(format!("bash/{b}")),
            prefix.join(format!("share/bash-completion/completions/{b}")),
            "0644",
        );
        add(
            c.join(format!("zsh/_{b}")),
            prefix.join(format!("share/zsh/site-functions/_{b}")),
            "0644",
        );
        add(
            c.join(format!("fish/{b}.fish")),
            prefix.join(format!("share/fish/vendor_completions.d/{b}.fish")),
            "0644",
        );
    }
    for m in ["model-v1.pnm", "registry.json"] {
        add(
            root.join("models").join(m),
            PathBuf::from("/var/lib/phantomnet/models").join(m),
            "0644",
        );
    }
    Ok(items)
}

/// `dst` under `destdir`, if any.
fn staged(destdir: Option<&Path>, dst: &Path) -> PathBuf {
    match destdir {
        Some(d) => d.join(dst.strip_prefix("/").unwrap_or(dst)),
        None => dst.to_path_buf(),
    }
}

pub fn install(root: &Path, prefix: &Path, destdir: Option<&Path>) -> Result<()> {
    let agent = cmd::build_release_agent(root)?;
    let release = agent.parent().context("release dir")?.to_path_buf();
    let docs = root.join("target/dist");
    for b in BINARIES {
        let out = docs.to_str().context("non-UTF-8 path")?;
        cmd::run(
            release.join(b).to_str().context("non-UTF-8 path")?,
            &["generate-docs", "--out", out],
        )?;
    }
    // Into a DESTDIR the user can write to, no root is needed.
    let need_root = destdir.is_none() && !privilege::is_root();
    let run = |args: &[&str]| -> Result<()> {
        if need_root {
            privilege::run_as_root("install", args, &[])
        } else {
            cmd::run("install", args)
        }
    };
    let s = |p: &Path| p.to_string_lossy().into_owned();
    for item in plan(root, &release, &docs, prefix)? {
        let dst = staged(destdir, &item.dst);
        run(&["-D", "-m", item.mode, &s(&item.src), &s(&dst)])?;
        println!("installed {}", dst.display());
    }
    // The unit names the binary by its installed path.
    let unit = std::fs::read_to_string(root.join("deploy/systemd/phantomnet-agent.service"))?
        .replace("/usr/local/bin/", &format!("{}/", s(&prefix.join("bin"))));
    let unit_src = docs.join("phantomnet-agent.service");
    std::fs::write(&unit_src, unit)?;
    let unit_dst = staged(
        destdir,
        Path::new("/etc/systemd/system/phantomnet-agent.service"),
    );
    run(&["-D", "-m", "0644", &s(&unit_src), &s(&unit_dst)])?;
    println!("installed {}", unit_dst.display());
    let config = staged(destdir, Path::new("/etc/phantomnet/agent.toml"));
    if config.exists() {
        println!("kept {} (exists)", config.display());
    } else {
        let example = root.join("config/agent.example.toml");
        run(&["-D", "-m", "0640", &s(&example), &s(&config)])?;
        println!(
            "installed {} (from the example: set interfaces, honeypots, allowlist)",
            config.display()
        );
    }
    if destdir.is_none() {
        println!(
            "next: edit /etc/phantomnet/agent.toml, then `systemctl daemon-reload && systemctl enable --now phantomnet-agent`"
        );
    }
    Ok(())
}
