//! The library's modules are layered in the order `lib.rs` declares them
//! (CONTRIBUTING.md, "Where things are"): no module's code names a module
//! declared after it. Doc comments may point anywhere.
use std::path::Path;

fn modules_in_order() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a file's code (not its comments) names through
/// `crate::`: paths `crate::m::...` and `use crate::{m::..., n, ...}`.
fn named_modules(code: &str, known: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a use group: at brace depth 0 only.
            let mut depth = 0;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    c if depth == 0 && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ => {
                        if depth == 0 && !word.is_empty() {
                            found.push(std::mem::take(&mut word));
                        }
                    }
                }
                if depth > 0 {
                    // `m::{...}`: the names inside are not top level.
                    word.clear();
                }
            }
            if !word.is_empty() {
                found.push(word);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found.retain(|m| known.contains(m));
    found
}

#[test]
fn no_module_names_one_declared_after_it() {
    let order = modules_in_order();
    assert!(order.len() > 10, "lib.rs modules: {order:?}");
    let rank = |m: &str| order.iter().position(|x| x == m);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = rank(&top) else {
            continue; // lib.rs, the binaries
        };
        let code: String = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for m in named_modules(&code, &order) {
            if rank(&m).is_some_and(|r| r > own) {
                bad.push(format!("{} names crate::{m}", rel.display()));
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.is_empty(),
        "modules pointing up the layers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scanner_sees_use_groups_and_paths() {
    let known: Vec<String> = ["api", "daemon", "journal", "metrics"]
        .map(String::from)
        .to_vec();
    let code = "use crate::{daemon::{AgentCore, api}, journal::NewEvent};\nfn f() { crate::metrics::m(); }";
    let mut got = named_modules(code, &known);
    got.sort();
    assert_eq!(got, ["daemon", "journal", "metrics"]);
}
