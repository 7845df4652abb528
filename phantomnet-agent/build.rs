//! Builds the XDP object with aya-build (nightly, `-Z build-std=core`,
//! `bpfel-unknown-none`, BTF kept) and leaves it in OUT_DIR for
//! `include_bytes_aligned!`; generates the gRPC code from `proto/`.
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
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // The control API's code and its descriptor set (for server reflection),
    // with protoc from Debian's protobuf-compiler (installed by xtask setup).
    println!("cargo:rerun-if-changed=../proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("phantomnet_descriptor.bin"))
        .compile_protos(&["../proto/phantomnet/v1/agent.proto"], &["../proto"])?;
    let obj = out.join("phantomnet");
    if !obj.exists() {
        fs::write(&obj, [])?;
    }
    Ok(())
}
