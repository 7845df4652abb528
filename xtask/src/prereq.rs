//! Installs what building and testing PhantomNet needs, idempotently:
//! every step first checks whether its result is already there.
use anyhow::{Context, Result};

use crate::cmd;

/// Debian packages: the eBPF linker's LLVM, the kernel tools the tests and
/// the demo drive, and the traffic tools.
pub const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "bpftool",
    "nftables",
    "iproute2",
    "iputils-ping",
    "hping3",
    "nmap",
    "python3-scapy",
    "fping",
    "tcpdump",
    "protobuf-compiler",
    "xdp-tools",
    "curl",
    "netcat-openbsd",
    "python3",
    "python3-venv",
    // A real HTTPS server with ETag / If-Modified-Since for the threat-feed
    // tests, and Prometheus (promtool, a server querying the dashboard's
    // expressions) for the dashboard test. Services are not started: see
    // `apt()`.
    "nginx",
    "prometheus",
    // The held-out corpus (`record-heldout`, docs/HELDOUT.md): real servers
    // (OpenSSH, dnsmasq without its service package, iperf3, chrony), the
    // attack tools training never uses (masscan, hydra, sqlmap,
    // slowhttptest, ab from apache2-utils, hey; nping comes with nmap) and
    // the benign clients (wget, dig, ssh). Their services are not started.
    "openssh-server",
    "openssh-client",
    // The training lab's SSH clients against its sshd: password guessing
    // and an administrator's key logins, both with paramiko (the held-out
    // corpus's SSH clients are hydra and OpenSSH's).
    "python3-paramiko",
    "dnsmasq-base",
    "iperf3",
    "chrony",
    "masscan",
    "hydra",
    "sqlmap",
    "slowhttptest",
    "apache2-utils",
    "hey",
    "wget",
    "bind9-dnsutils",
    // The second held-out corpus (`record-heldout --corpus second`): tools
    // neither training nor the first corpus uses. Attacks: pnscan, medusa,
    // patator, wfuzz (and its word lists), gobuster, siege, T50,
    // mausezahn (netsniff-ng); benign: Chromium, lynx, w3m, httping,
    // Nagios plugins, rsync, aria2c, iperf 2, kdig, HTTPie.
    "pnscan",
    "medusa",
    "patator",
    "wfuzz",
    "gobuster",
    "siege",
    "t50",
    "netsniff-ng",
    "chromium",
    "lynx",
    "w3m",
    "httping",
    "monitoring-plugins-basic",
    "rsync",
    "aria2",
    "iperf",
    "knot-dnsutils",
    "httpie",
];

/// The bpf-linker that builds against Debian's LLVM 22 (see README).
pub const BPF_LINKER_VERSION: &str = "0.13.0";

pub use crate::privilege::is_root;
use crate::privilege::{run_as_root, run_as_root_in};

fn apt_installed(pkg: &str) -> bool {
    cmd::output("dpkg-query", &["-W", "-f=${Status}", pkg])
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if missing.is_empty() {
        println!("prereq: apt packages present");
        return Ok(());
    }
    println!("prereq: installing {missing:?}");
    // Debian starts a package's service on install (nginx on :80,
    // Prometheus on :9090). Nothing here should listen outside the tests'
    // namespaces, so while installing, `policy-rc.d` answers 101 ("action
    // forbidden"), the interface Debian defines for this; one already in
    // place (containers ship one) is left as it is.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        run_as_root(
            "sh",
            &[
                "-c",
                "printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d",
            ],
            &[],
        )?;
    }
    let installed = install_packages(&missing);
    if ours {
        run_as_root("rm", &["-f", "/usr/sbin/policy-rc.d"], &[])?;
    }
    installed
}

fn install_packages(missing: &[&str]) -> Result<()> {
    run_as_root("apt-get", &["update", "-qq"], &[])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing);
    run_as_root("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])
}

fn rust_nightly() -> Result<()> {
    let toolchains = cmd::output("rustup", &["toolchain", "list"])?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("prereq: installing the nightly toolchain");
        cmd::run(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        )?;
    }
    let components = cmd::output(
        "rustup",
        &["component", "list", "--installed", "--toolchain", "nightly"],
    )?;
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        println!("prereq: adding rust-src to nightly");
        cmd::run(
            "rustup",
            &["component", "add", "rust-src", "--toolchain", "nightly"],
        )?;
    }
    println!("prereq: nightly with rust-src present");
    Ok(())
}

fn bpf_linker() -> Result<()> {
    let have = cmd::output("bpf-linker", &["--version"]).unwrap_or_default();
    if have.contains(BPF_LINKER_VERSION) {
        println!("prereq: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    println!("prereq: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (a few minutes)");
    cmd::run_env(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--locked",
            "--force",
            "--no-default-features",
            "--features",
            "llvm-22",
        ],
        &[("LLVM_PREFIX", "/usr/lib/llvm-22")],
    )
    .context("installing bpf-linker")
}

/// The virtualenv with Python grpcio from PyPI, for the gRPC interop test
/// (tests/tests/grpc_interop.rs); project-owned, outside the system Python.
pub const GRPCIO_VENV: &str = "/var/lib/phantomnet-ci/grpc-venv";
const GRPCIO_PACKAGES: &[&str] = &[
    "grpcio",
    "grpcio-tools",
    "grpcio-reflection",
    "grpcio-health-checking",
];

fn grpcio_venv() -> Result<()> {
    let python = format!("{GRPCIO_VENV}/bin/python");
    let probe = "import grpc, grpc_tools, grpc_reflection, grpc_health";
    // The tests use it as root: probe it as root.
    if crate::privilege::succeeds_as_root(&python, &["-c", probe]) {
        println!("prereq: grpcio virtualenv present ({GRPCIO_VENV})");
        return Ok(());
    }
    println!("prereq: installing grpcio into {GRPCIO_VENV}");
    // Debian's interpreter (python3, python3-venv above), whatever else is
    // on PATH; --clear replaces a broken or foreign virtualenv.
    run_as_root(
        "/usr/bin/python3",
        &["-m", "venv", "--clear", GRPCIO_VENV],
        &[],
    )?;
    let mut args = vec!["-m", "pip", "install", "-q"];
    args.extend(GRPCIO_PACKAGES);
    run_as_root(&python, &args, &[]).context("installing grpcio from PyPI")
}

/// Where `crowdsec()` extracts Debian's CrowdSec package; the CrowdSec tests
/// run its `usr/bin/crowdsec` and `usr/bin/cscli` from here.
pub const CROWDSEC_DIR: &str = "/var/lib/phantomnet-ci/crowdsec";

/// CrowdSec's Local API for the CrowdSec tests. The package is extracted,
/// not installed: its post-install step registers with CrowdSec's online
/// service, which fails (and fails the install) without network.
fn crowdsec() -> Result<()> {
    let dir = std::path::Path::new(CROWDSEC_DIR);
    if dir.join("usr/bin/crowdsec").exists() && dir.join("usr/bin/cscli").exists() {
        println!("prereq: crowdsec extracted in {CROWDSEC_DIR}");
        return Ok(());
    }
    let debs = dir.join("deb");
    println!("prereq: downloading and extracting crowdsec into {CROWDSEC_DIR}");
    let debs_s = debs.to_str().context("non-UTF-8 path")?;
    run_as_root("mkdir", &["-p", debs_s], &[])?;
    // `apt-get download` writes into its working directory.
    run_as_root_in(
        "apt-get",
        &["download", "-qq", "crowdsec"],
        &[],
        Some(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let deb = deb.to_str().context("non-UTF-8 .deb path")?;
    run_as_root("dpkg-deb", &["-x", deb, CROWDSEC_DIR], &[])
}

/// Everything, in dependency order.
pub fn setup() -> Result<()> {
    apt()?;
    rust_nightly()?;
    bpf_linker()?;
    grpcio_venv()?;
    crowdsec()?;
    Ok(())
}
