//! Builds the XDP object with aya-build (nightly, `-Z build-std=core`,
//! `bpfel-unknown-none`, BTF kept) and leaves it in OUT_DIR for
//! `include_bytes_aligned!`.
//!
//! `AYA_BUILD_SKIP=1` skips the eBPF build (aya-build honours it) for work on
//! the userspace-only modules; an empty object is left in its place and the
//! loader refuses it with a clear error at run time.
use std::{fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let ebpf_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../phantomnet-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "phantomnet-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )?;
    // The eBPF crate's source is tracked by aya-build; the common crate too.
    println!("cargo:rerun-if-changed=../phantomnet-common/src");
    let obj = PathBuf::from(std::env::var("OUT_DIR")?).join("phantomnet");
    if !obj.exists() {
        fs::write(&obj, [])?;
    }
    Ok(())
}
