//! PhantomNet's developer tasks: prerequisites, privilege, the demo, the
//! dataset recorder, benchmarks and install. The namespace lab they run in
//! is the `phantomnet-lab` crate, which the root-only tests share.
pub mod bench;
pub mod bench_path;
pub mod cmd;
pub mod dataset;
pub mod demo;
pub mod demo_clients;
pub mod demo_flood;
pub mod evaluate;
pub mod heldout;
pub mod install;
pub mod plan;
pub mod prereq;
pub mod privilege;
pub mod tte;
