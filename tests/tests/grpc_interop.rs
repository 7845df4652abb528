//! Stock gRPC clients from outside Rust against a real agent process: Python
//! grpcio (gRPC C-core, the stack Python, C++, Ruby and PHP share) on its
//! default channel options, over the Unix socket and over TCP with mutual
//! TLS. The client is `tests/interop/grpcio_client.py`, run by the
//! virtualenv that `cargo xtask setup` makes (see `xtask/src/prereq.rs`).
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use phantomnet_tests::{AgentProcess, GW_XDP_IFACE, Pki, Role, TestLab, root_or_skip};

/// `PHANTOMNET_GRPCIO_PYTHON`, or the interpreter of the setup's virtualenv.
fn python() -> PathBuf {
    let p = std::env::var_os("PHANTOMNET_GRPCIO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(xtask::prereq::GRPCIO_VENV).join("bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask setup` (it installs grpcio into {})",
        p.display(),
        xtask::prereq::GRPCIO_VENV
    );
    p
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Runs the grpcio client (in `netns` if given) and returns its output,
/// panicking with its stderr and the agent's log if any check failed.
fn grpcio(agent: &AgentProcess, netns: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg(python());
            c
        }
        None => Command::new(python()),
    };
    let out: Output = cmd
        .arg(repo("tests/interop/grpcio_client.py"))
        .arg(repo("proto"))
        .args(args)
        .output()
        .expect("run the grpcio client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "grpcio client {args:?} failed ({}):\n{stdout}\n{}\nagent log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&agent.log).unwrap_or_default()
    );
    stdout
}

/// Every check the client makes printed its line.
fn assert_all_checks(out: &str) {
    for line in [
        "health (server): SERVING",
        "health phantomnet.v1.Agent: SERVING",
        "reflection v1: ",
        "reflection v1alpha: ",
        "status: version ",
        "block: ",
        "unblock: ",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "no {line:?} in:\n{out}"
        );
    }
}

#[test]
fn grpcio_on_default_options_over_unix_and_mtls() {
    if !root_or_skip("grpcio_on_default_options_over_unix_and_mtls") {
        return;
    }
    let t = TestLab::up("grpc-interop");
    let pki = Pki::new("grpc-interop");
    let cfg = std::env::temp_dir().join(format!("{}-agent.toml", t.lab.prefix()));
    std::fs::write(
        &cfg,
        format!(
            "[dataplane]\ninterfaces = [\"{GW_XDP_IFACE}\"]\npin_dir = \"{}\"\n\n[api.tcp]\nlisten = \"127.0.0.1:50443\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            t.pins.path().display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
            pki.path("ca.crt").display()
        ),
    )
    .unwrap();
    let agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);

    // The Unix socket, from the root namespace, as an operator would.
    let unix = format!("unix://{}", t.api_socket().display());
    let out = grpcio(&agent, None, &[&unix, "198.51.100.7"]);
    assert_all_checks(&out);
    assert!(out.contains("block: 198.51.100.7/32 listed"), "{out}");

    // TCP with mutual TLS, on the gateway namespace's loopback; the server
    // certificate names localhost, the client presents its own.
    let (ca, cert, key) = (
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key"),
    );
    let out = grpcio(
        &agent,
        Some(&t.netns(Role::Gw)),
        &[
            "localhost:50443",
            "2001:db8::7",
            ca.to_str().unwrap(),
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
    );
    assert_all_checks(&out);
    assert!(out.contains("block: 2001:db8::7/128 listed"), "{out}");
}
