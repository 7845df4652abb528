//! The shipped binaries generate a man page per visible subcommand and
//! completion scripts that name them; bash accepts its script.
use std::path::Path;
use std::process::Command;

fn generate(bin: &str, out: &Path) {
    let st = Command::new(bin)
        .args(["generate-docs", "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success(), "{bin} generate-docs: {st}");
}

fn check(bin: &str, name: &str, subcommands: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    generate(bin, dir.path());
    let man = dir.path().join("man/man1");
    let top = std::fs::read_to_string(man.join(format!("{name}.1"))).unwrap();
    assert!(top.contains(&format!(".TH {name} 1")), "{top}");
    for sub in subcommands {
        let page = man.join(format!("{name}-{sub}.1"));
        assert!(page.is_file(), "no man page {}", page.display());
        assert!(top.contains(sub), "{name}.1 does not list {sub}");
    }
    assert!(
        !man.join(format!("{name}-generate-docs.1")).exists(),
        "the hidden generator got a page"
    );
    let bash = dir.path().join(format!("completions/bash/{name}"));
    let text = std::fs::read_to_string(&bash).unwrap();
    for sub in subcommands {
        assert!(text.contains(sub), "bash completion lacks {sub}");
    }
    let st = Command::new("bash").arg("-n").arg(&bash).status().unwrap();
    assert!(st.success(), "bash -n {}: {st}", bash.display());
    for f in [format!("zsh/_{name}"), format!("fish/{name}.fish")] {
        let p = dir.path().join("completions").join(f);
        assert!(
            std::fs::metadata(&p).unwrap().len() > 100,
            "{}",
            p.display()
        );
    }
}

#[test]
fn phantomctl_docs() {
    check(
        env!("CARGO_BIN_EXE_phantomctl"),
        "phantomctl",
        &[
            "status", "block", "throttle", "deceive", "allow", "rules", "events", "model", "mode",
        ],
    );
}

#[test]
fn phantomnet_agent_docs() {
    check(
        env!("CARGO_BIN_EXE_phantomnet-agent"),
        "phantomnet-agent",
        &["run", "block", "list", "train", "detach"],
    );
}
