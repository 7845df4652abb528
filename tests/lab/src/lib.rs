//! The namespace lab that PhantomNet's demo, dataset recorder, benchmarks
//! and root-only tests all run in. Everything here is bounded and stays in
//! namespaces it creates (or on loopback):
//!
//! - [`lab`]: the namespaces, veths and addresses (`Lab`, `Role`, `addr`);
//! - [`proc`]: background processes, killed with their group on drop;
//! - [`agent`]: `phantomnet-agent` as a process in the gateway namespace;
//! - [`bpf`]: `bpftool prog run` on a loaded program;
//! - [`packet`]: crafted Ethernet frames;
//! - [`capture`]: the agent's capture files, read with the common format;
//! - [`traffic`]: the lab's servers and bounded real-tool traffic, whose
//!   scripts live in `scripts/`;
//! - [`cmd`]: external commands with their command line in every error.
//!
//! It depends on `phantomnet-common` only, not on the agent: `cargo xtask`
//! uses it before the agent (and its eBPF toolchain) can be built.
pub mod agent;
pub mod bpf;
pub mod capture;
pub mod cmd;
pub mod lab;
pub mod packet;
pub mod proc;
pub mod traffic;
