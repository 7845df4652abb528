//! Rebuild the object when bpf-linker changes (it is the linker for this
//! crate, configured in .cargo/config.toml for the bpf targets).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
